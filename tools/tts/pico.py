"""SVOX Pico (``pico2wave``): the small Android-era voices, British and American, both female."""

from __future__ import annotations

import random

import numpy as np

from .engine import Settings, SettingsMap, Voice, have, read_wav_16k, run, tmp_path

ENGINE = "pico"
_LICENCE = "Apache-2.0 (Debian non-free: its lingware has no source)"
VOICES: tuple[Voice, ...] = (
    Voice("en-GB", _LICENCE, True, "F", "GB", "libttspico-utils (non-free)"),
    Voice("en-US", _LICENCE, True, "F", "US", "libttspico-utils (non-free)"),
)
SPEED_RANGE = (75, 125)  # percent, through pico's <speed> markup
PITCH_RANGE = (85, 120)  # percent, through pico's <pitch> markup
HOLD_OUT_VOICES = False


def random_settings(voice: str, rng: random.Random) -> Settings:
    return (("speed", float(rng.randint(*SPEED_RANGE))), ("pitch", float(rng.randint(*PITCH_RANGE))))


def available() -> bool:
    return have("pico2wave")


def synthesize(text: str, voice: str, settings: SettingsMap) -> np.ndarray:
    wav = tmp_path("pico.wav")  # pico2wave insists on a .wav name
    markup = (f"<speed level='{int(settings['speed'])}'><pitch level='{int(settings['pitch'])}'>"
              f"{text}</pitch></speed>")
    run(["pico2wave", "-l", voice, "-w", wav, markup])
    return read_wav_16k(wav)
