"""MBROLA diphone voices driven by espeak-ng's front end (``espeak-ng -v mb-us1``).

The native English voices (us1-3, en1) and, at a low share, foreign MBROLA voices reading English with
their own phone set (``mb-de1-en``: a German-accented English speaker).
"""

from __future__ import annotations

import os
import random

import numpy as np

from .engine import Settings, SettingsMap, Voice, have, read_wav_16k, run, tmp_path

ENGINE = "mbrola"
_LICENCE = "MBROLA database licence (non-commercial, non-military); espeak-ng GPL-3.0-or-later"
NATIVE: tuple[Voice, ...] = (
    Voice("mb-us1", _LICENCE, False, "F", "US", "espeak-ng mbrola mbrola-us1"),
    Voice("mb-us2", _LICENCE, False, "M", "US", "espeak-ng mbrola mbrola-us2"),
    Voice("mb-us3", _LICENCE, False, "M", "US", "espeak-ng mbrola mbrola-us3"),
    Voice("mb-en1", _LICENCE, False, "M", "GB", "espeak-ng mbrola mbrola-en1"),
)
ACCENTED: tuple[Voice, ...] = (
    Voice("mb-de1-en", _LICENCE, False, "F", "German-accented", "espeak-ng mbrola mbrola-de1"),
    Voice("mb-de2-en", _LICENCE, False, "M", "German-accented", "espeak-ng mbrola mbrola-de2"),
    Voice("mb-fr1-en", _LICENCE, False, "M", "French-accented", "espeak-ng mbrola mbrola-fr1"),
    Voice("mb-fr4-en", _LICENCE, False, "F", "French-accented", "espeak-ng mbrola mbrola-fr4"),
    Voice("mb-nl2-en", _LICENCE, False, "M", "Dutch-accented", "espeak-ng mbrola mbrola-nl2"),
    Voice("mb-sw1-en", _LICENCE, False, "M", "Swedish-accented", "espeak-ng mbrola mbrola-sw1"),
    Voice("mb-sw2-en", _LICENCE, False, "F", "Swedish-accented", "espeak-ng mbrola mbrola-sw2"),
)
VOICES: tuple[Voice, ...] = NATIVE + ACCENTED
# Speakers per voice, relative: accented voices get a third of a native voice's share.
VOICE_WEIGHTS: dict[str, float] = {**{v.name: 3.0 for v in NATIVE}, **{v.name: 1.0 for v in ACCENTED}}
SPEED_RANGE = (130, 180)  # words per minute
PITCH_RANGE = (30, 70)
HOLD_OUT_VOICES = False
MBROLA_DIR = "/usr/share/mbrola"


def random_settings(voice: str, rng: random.Random) -> Settings:
    return (("speed", float(rng.randint(*SPEED_RANGE))), ("pitch", float(rng.randint(*PITCH_RANGE))))


def database(voice: str) -> str:
    """``mb-de1-en`` -> ``de1``: the MBROLA database a voice needs."""
    return voice.split("-")[1]


def available() -> bool:
    return have("espeak-ng", "mbrola") and all(
        os.path.isfile(os.path.join(MBROLA_DIR, database(v.name), database(v.name))) for v in VOICES)


def synthesize(text: str, voice: str, settings: SettingsMap) -> np.ndarray:
    wav = tmp_path("mbrola.wav")
    run(["espeak-ng", "-v", voice, "-s", str(int(settings["speed"])), "-p", str(int(settings["pitch"])),
         "-w", wav, text])
    return read_wav_16k(wav)
