"""espeak-ng's own formant voices: robotic but many accents and variants; cheap. Kept a minority of train."""

from __future__ import annotations

import random

import numpy as np

from .engine import Settings, SettingsMap, Voice, have, read_wav_16k, run, tmp_path

ENGINE = "espeak"
_LICENCE = "GPL-3.0-or-later"
_PACKAGES = "espeak-ng"
# Base voices (accents); each speaker adds one of VARIANTS ("en-us+f3").
ACCENTS: dict[str, str] = {
    "en": "GB", "en-us": "US", "en-gb-scotland": "Scottish", "en-gb-x-rp": "GB RP", "en-029": "Caribbean",
    "en-gb-x-gbclan": "Lancashire", "en-gb-x-gbcwmd": "West Midlands", "en-us-nyc": "New York",
}
VARIANTS: tuple[str, ...] = (
    "m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5", "klatt", "klatt2", "klatt3",
)
VOICES: tuple[Voice, ...] = tuple(
    Voice(f"{name}+variants", _LICENCE, True, "M/F", accent, _PACKAGES) for name, accent in ACCENTS.items()
)
SPEED_RANGE = (140, 195)  # words per minute
PITCH_RANGE = (25, 75)  # espeak's 0-99 scale
# A variant is the speaker's identity: the voices of dev and test speakers are never reused in train.
HOLD_OUT_VOICES = True


def speaker_voices() -> list[str]:
    return [f"{name}+{variant}" for name in ACCENTS for variant in VARIANTS]


def gender(voice: str) -> str:
    return "F" if "+f" in voice.lower() else "M"


def random_settings(voice: str, rng: random.Random) -> Settings:
    return (("speed", float(rng.randint(*SPEED_RANGE))), ("pitch", float(rng.randint(*PITCH_RANGE))))


def available() -> bool:
    return have("espeak-ng")


def synthesize(text: str, voice: str, settings: SettingsMap) -> np.ndarray:
    wav = tmp_path("espeak.wav")
    run(["espeak-ng", "-v", voice, "-s", str(int(settings["speed"])), "-p", str(int(settings["pitch"])),
         "-w", wav, text])
    return read_wav_16k(wav)
