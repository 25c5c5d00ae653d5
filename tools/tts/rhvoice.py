"""RHVoice (statistical parametric, HTS-style): the most human-sounding offline English voices here."""

from __future__ import annotations

import glob
import random

import numpy as np

from .engine import (
    SAMPLE_RATE,
    Settings,
    SettingsMap,
    Voice,
    have,
    read_wav_16k,
    run,
    tmp_path,
)

ENGINE = "rhvoice"
_ARCTIC = "LGPL-2.1-or-later (voice built from CMU ARCTIC, BSD-style)"
_NC = "CC-BY-NC-ND-4.0"
_PACKAGES = "rhvoice rhvoice-english (non-free)"
VOICES: tuple[Voice, ...] = (
    Voice("alan", _ARCTIC, True, "M", "Scottish", _PACKAGES),
    Voice("bdl", _ARCTIC, True, "M", "US", _PACKAGES),
    Voice("clb", _ARCTIC, True, "F", "US", _PACKAGES),
    Voice("slt", _ARCTIC, True, "F", "US", _PACKAGES),
    Voice("evgeniy-eng", _NC, False, "M", "Russian-accented", _PACKAGES),
    Voice("lyubov", _NC, False, "F", "US", _PACKAGES),
)
RATE_RANGE = (75, 130)  # percent of the voice's normal rate
PITCH_RANGE = (80, 125)  # percent of the voice's normal pitch
HOLD_OUT_VOICES = False
_VOICE_DIRS = ("/usr/share/RHVoice/voices/{}", "/usr/local/share/RHVoice/voices/{}")


def random_settings(voice: str, rng: random.Random) -> Settings:
    return (("rate", float(rng.randint(*RATE_RANGE))), ("pitch", float(rng.randint(*PITCH_RANGE))))


def available() -> bool:
    return have("RHVoice-test") and all(
        any(glob.glob(d.format(v.name)) for d in _VOICE_DIRS) for v in VOICES)


def synthesize(text: str, voice: str, settings: SettingsMap) -> np.ndarray:
    wav = tmp_path("rhvoice.wav")
    run(["RHVoice-test", "-p", voice, "-R", str(SAMPLE_RATE), "-r", str(int(settings["rate"])),
         "-t", str(int(settings["pitch"])), "-o", wav], stdin=text.encode("utf-8"))
    return read_wav_16k(wav)
