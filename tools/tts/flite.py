"""flite (CMU): its four built-in 16 kHz voices, with duration stretch and mean-F0 changes."""

from __future__ import annotations

import random

import numpy as np

from .engine import Settings, SettingsMap, Voice, have, read_wav_16k, run, tmp_path

ENGINE = "flite"
_LICENCE = "BSD-style (CMU flite licence)"
# voice -> its default mean F0 (Hz), which pitch factors scale.
DEFAULT_F0: dict[str, float] = {"kal16": 105.0, "awb": 110.0, "rms": 105.0, "slt": 170.0}
VOICES: tuple[Voice, ...] = (
    Voice("kal16", _LICENCE, True, "M", "US", "flite"),
    Voice("awb", _LICENCE, True, "M", "Scottish", "flite"),
    Voice("rms", _LICENCE, True, "M", "US", "flite"),
    Voice("slt", _LICENCE, True, "F", "US", "flite"),
)
STRETCH_RANGE = (0.8, 1.3)  # duration_stretch: >1 is slower
PITCH_FACTOR_RANGE = (0.85, 1.2)
HOLD_OUT_VOICES = False


def random_settings(voice: str, rng: random.Random) -> Settings:
    return (("duration_stretch", round(rng.uniform(*STRETCH_RANGE), 2)),
            ("pitch_factor", round(rng.uniform(*PITCH_FACTOR_RANGE), 2)))


def available() -> bool:
    return have("flite")


def synthesize(text: str, voice: str, settings: SettingsMap) -> np.ndarray:
    wav = tmp_path("flite.wav")
    cmd = ["flite", "-voice", voice, "--setf", f"duration_stretch={settings['duration_stretch']}"]
    if settings.get("pitch_factor", 1.0) != 1.0:
        cmd += ["--setf", f"int_f0_target_mean={DEFAULT_F0[voice] * settings['pitch_factor']:.1f}"]
    run(cmd + ["-t", text, "-o", wav])
    return read_wav_16k(wav)
