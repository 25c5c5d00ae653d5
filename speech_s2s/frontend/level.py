"""Input level: speech far quieter (or louder) than anything the model trained on is brought into range.

Log-mel features carry the recording's level, and global mean/variance normalisation keeps it: the
bundled model, trained on corpora whose active level (below) spans about -21 to -14 dB, reads a
held-out dev set played 30 dB quieter as no words at all (99.96 % WER, nearly all deletions), and
the real-voice dev set 20 dB quieter at 101.1 % instead of 95.2 % (greedy). Scaling each segment's
level into the training range before its features gives 42.2 % and 95.6 %, and speech already
inside the range is passed through untouched. docs/history/real-voice.md has the figures and the command.

The level is measured as speech is, not as the file's mean: the RMS of the loudest half of its
25 ms frames, so the pauses a segment holds do not make it look quieter.

The range is the model's own: training measures it on the training audio (`training_range`) and
the model file states it (`input_level_db` in its metadata); a fine-tune keeps its start's. A
model file that states none (the bundled model, older models) gets LevelConfig's defaults, which
are the bundled model's band.

S samples.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

FRAME = 400  # 25 ms at 16 kHz


@dataclass(frozen=True)
class LevelConfig:
    # The bundled model's training audio, used for any model whose file states no range: 10th
    # percentile of utterances' active level -20.9 dB, 90th -13.7 dB. The upper bound sits above
    # it, where a measured band of -21..-12 left every dev set as it was or slightly better (a
    # band of -24..-12 was less help for quiet speech).
    low_db: float = -21.0
    high_db: float = -12.0
    max_gain_db: float = 40.0  # never lift more than this: below it is noise, not speech
    peak_limit: float = 0.99  # a lift stops short of clipping


def active_level_db(samples: np.ndarray) -> float | None:
    """RMS level (dB full scale) of the loudest half of the 25 ms frames of samples [S]; None when
    there is less than one frame or only digital silence."""
    frames = len(samples) // FRAME
    if frames == 0:
        return None
    energy = np.square(samples[: frames * FRAME].astype(np.float64)).reshape(frames, FRAME).mean(axis=1)
    loudest = np.sort(energy)[frames // 2 :]
    mean = float(loudest.mean())
    return 10 * math.log10(mean) if mean > 0 else None


def gain_into_range(samples: np.ndarray, config: LevelConfig = LevelConfig()) -> float:
    """The factor that moves samples' active level into [low_db, high_db] (1.0 if it is there)."""
    level = active_level_db(samples)
    if level is None or config.low_db <= level <= config.high_db:
        return 1.0
    target = config.low_db if level < config.low_db else config.high_db
    gain = 10 ** (min(target - level, config.max_gain_db) / 20)
    if gain > 1.0:
        peak = float(np.abs(samples).max())
        gain = max(1.0, min(gain, config.peak_limit / peak))
    return gain


def into_range(samples: np.ndarray, config: LevelConfig | None = LevelConfig()) -> np.ndarray:
    """samples [S] float32 with their active level in range: the same array when it already is
    (or when config is None), else a scaled copy."""
    if config is None:
        return samples
    gain = gain_into_range(samples, config)
    return samples if gain == 1.0 else (samples * np.float32(gain)).astype(np.float32)


def training_range(levels_db: Sequence[float]) -> tuple[float, float]:
    """The band of active levels (dB) a model's training utterances span: from the 10th percentile
    to 1 dB above the 90th, each rounded outward to a whole dB. On 300 utterances of the bundled
    model's training corpora (commit 0f11f22: 10th -20.9, 90th -13.7) this is -21..-12, the band that
    measured best (LevelConfig); on 500 of the phase 1 mix (with the short utterances) of the campaign
    folder begun on 2026-11-30, -22..-11."""
    if not levels_db:
        raise ValueError("no levels to take a range from")
    low, high = np.percentile(np.asarray(levels_db, dtype=np.float64), [10, 90])
    return float(math.floor(low)), float(math.ceil(high) + 1)


def measure_training_range(audio_files: Iterable[str | Path], limit: int = 500, seed: int = 0) -> tuple[float, float] | None:
    """`training_range` of a seeded sample of at most `limit` files (reading every file of a large
    corpus would add minutes to each training start for a figure that a few hundred settle); None
    when none of them holds speech-like sound. An unreadable file is left out of the sample."""
    from speech_s2s.frontend.audio import AudioError, load_audio

    files = list(audio_files)
    sample = random.Random(seed).sample(files, min(limit, len(files)))
    levels = []
    for path in sample:
        try:
            level = active_level_db(load_audio(path))
        except AudioError:
            continue
        if level is not None:
            levels.append(level)
    return training_range(levels) if levels else None


def level_config(range_db: tuple[float, float] | None) -> LevelConfig:
    """The correction for a model whose file states `range_db` (None: the defaults, the bundled model's)."""
    config = LevelConfig()
    return config if range_db is None else replace(config, low_db=range_db[0], high_db=range_db[1])


def decoding_level(range_db: tuple[float, float] | None, keep_level: bool) -> LevelConfig | None:
    """What decoding does to speech for a model whose file states `range_db`: scale it into that band
    (level_config), or nothing when the caller keeps the recorded level (`--keep-level`). Every decoding
    path asks here, so that a resumed run's signature and its decoding agree."""
    return None if keep_level else level_config(range_db)
