"""Festival (``text2wave``): diphone voices kal, ked, rab, the HTS voice slt, and the MBROLA voices us1-3, en1."""

from __future__ import annotations

import glob
import random

import numpy as np

from .engine import Settings, SettingsMap, Voice, have, read_wav_16k, run, tmp_path

ENGINE = "festival"
_FREE = "BSD-style (Festival/CSTR/CMU voice licence)"
_MBROLA = "MBROLA database licence (non-commercial, non-military)"
VOICES: tuple[Voice, ...] = (
    Voice("voice_kal_diphone", _FREE, True, "M", "US", "festival festvox-kallpc16k"),
    Voice("voice_ked_diphone", _FREE, True, "M", "US", "festival festvox-kdlpc16k"),
    Voice("voice_cmu_us_slt_arctic_hts", "BSD-style (CMU ARCTIC, EST)", True, "F", "US",
          "festival festvox-us-slt-hts"),
    Voice("voice_rab_diphone", _FREE, True, "M", "GB", "festival festvox-rablpc16k (contrib)"),
    Voice("voice_us1_mbrola", _MBROLA, False, "F", "US", "festival festvox-us1 mbrola-us1"),
    Voice("voice_us2_mbrola", _MBROLA, False, "M", "US", "festival festvox-us2 mbrola-us2"),
    Voice("voice_us3_mbrola", _MBROLA, False, "M", "US", "festival festvox-us3 mbrola-us3"),
    Voice("voice_en1_mbrola", _MBROLA, False, "M", "GB", "festival festvox-en1 mbrola-en1"),
)
STRETCH_RANGE = (0.85, 1.25)  # Duration_Stretch: >1 is slower
HOLD_OUT_VOICES = False
_VOICE_DIRS = "/usr/share/festival/voices/*/{}"


def random_settings(voice: str, rng: random.Random) -> Settings:
    return (("duration_stretch", round(rng.uniform(*STRETCH_RANGE), 2)),)


def voice_installed(voice: str) -> bool:
    return bool(glob.glob(_VOICE_DIRS.format(voice.removeprefix("voice_"))))


def available() -> bool:
    return have("text2wave") and all(voice_installed(v.name) for v in VOICES)


def synthesize(text: str, voice: str, settings: SettingsMap) -> np.ndarray:
    wav, txt = tmp_path("festival.wav"), tmp_path("festival.txt")
    with open(txt, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    stretch = settings["duration_stretch"]
    cmd = ["text2wave", "-o", wav, "-eval", f"({voice})", "-eval", f"(Parameter.set 'Duration_Stretch {stretch})"]
    if voice.endswith("_hts"):
        # HTS voices ignore Duration_Stretch; hts_engine's "-r" is a speed rate.
        cmd += ["-eval", f"(set! hts_engine_params (append hts_engine_params (list (list \"-r\" {1.0 / stretch:.4f}))))"]
    run(cmd + [txt])
    return read_wav_16k(wav)
