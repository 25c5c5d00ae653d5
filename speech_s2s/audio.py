"""Audio loading: any file soundfile or librosa can read -> 16 kHz mono float32."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio.functional

# Every model in this package hears 16 kHz audio, the rate of LibriSpeech.
SAMPLE_RATE = 16000


class AudioError(ValueError):
    """A file could not be turned into usable audio; the message names the file."""


def _read_any(path: Path) -> tuple[np.ndarray, int]:
    """Return (samples [S, C] float32, rate). soundfile first; librosa (audioread/ffmpeg) as fallback."""
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        return samples, rate
    except Exception as soundfile_error:  # libsndfile raises several types for unreadable files
        first_reason = str(soundfile_error).splitlines()[0] if str(soundfile_error) else type(soundfile_error).__name__
    try:
        import librosa  # slower import; only needed for formats libsndfile lacks

        with warnings.catch_warnings():  # librosa re-tries soundfile and warns; we already know it failed
            warnings.simplefilter("ignore")
            samples, rate = librosa.load(str(path), sr=None, mono=False)
    except Exception:
        samples = np.zeros(0, dtype=np.float32)
    if samples.size == 0:  # ffmpeg "decodes" some junk to nothing: that is not audio either
        raise AudioError(f"{path}: not a readable audio file ({first_reason})")
    samples = np.atleast_2d(samples).T.astype(np.float32)  # librosa gives [C, S]
    return samples, int(rate)


def to_mono_16k(samples: np.ndarray, rate: int) -> np.ndarray:
    """Mix [S, C] or [S] samples down to mono and resample to SAMPLE_RATE (torchaudio's sinc resampler)."""
    mono = samples.mean(axis=1) if samples.ndim == 2 else samples
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if rate != SAMPLE_RATE:
        mono = torchaudio.functional.resample(torch.from_numpy(mono), rate, SAMPLE_RATE).numpy()
    return mono


def load_audio(path: str | Path) -> np.ndarray:
    """Load `path` as 16 kHz mono float32 samples in [-1, 1]. Raises AudioError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file")
    samples, rate = _read_any(path)
    if samples.size == 0:
        raise AudioError(f"{path}: holds no audio samples")
    if not np.isfinite(samples).all():
        raise AudioError(f"{path}: holds NaN or infinite samples")
    return to_mono_16k(samples, rate)
