"""One job -> 16 kHz audio: synthesise, change vocal-tract length, speed-perturb, trim and level."""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np

from . import ENGINES
from .engine import SAMPLE_RATE, SYNTH_TIMEOUT_S, resample
from .plan import Job

SILENCE_THRESHOLD_DB = -40.0  # relative to the loudest 10 ms frame
VTL_MIN_CHANGE = 0.005  # factors closer to 1 than this are not applied


def vtl_shift(audio: np.ndarray, factor: float) -> np.ndarray:
    """Scale every frequency (formants and F0) by ``factor`` and keep the duration.

    A shorter vocal tract has higher formants; resampling scales formants and F0 together, so pitch is varied
    independently through each engine's own pitch setting. sox stretches the time first (WSOLA, tuned for
    speech) by ``factor``, then plays the result ``factor`` times faster (resampling), which restores it.
    """
    if abs(factor - 1.0) < VTL_MIN_CHANGE:
        return audio
    if shutil.which("sox") is None:
        raise RuntimeError("sox is needed for vocal-tract length changes (apt package sox)")
    raw = ["-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1", "-r", str(SAMPLE_RATE)]
    cmd = ["sox", "-V1", *raw, "-", *raw, "-",
           "tempo", "-s", f"{1.0 / factor:.5f}", "speed", f"{factor:.5f}", "rate", "-h", str(SAMPLE_RATE)]
    proc = subprocess.run(cmd, input=np.ascontiguousarray(audio, dtype="<f4").tobytes(), capture_output=True,
                          timeout=SYNTH_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"sox exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-300:]}")
    return np.frombuffer(proc.stdout, dtype="<f4").astype(np.float32)


def semitones(factor: float) -> float:
    return 12.0 * math.log2(factor)


def trim_silence(audio: np.ndarray, sr: int, keep_s: float, threshold_db: float = SILENCE_THRESHOLD_DB) -> np.ndarray:
    """Cut leading/trailing silence, keeping at most ``keep_s`` seconds at each end."""
    frame = max(1, int(0.01 * sr))
    n = len(audio) // frame
    if n == 0:
        return audio
    energy = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    loud = np.nonzero(20 * np.log10(energy / (energy.max() + 1e-12)) > threshold_db)[0]
    if len(loud) == 0:
        return audio
    keep = int(keep_s * sr)
    start = max(0, loud[0] * frame - keep)
    end = min(len(audio), (loud[-1] + 1) * frame + keep)
    out = audio[start:end]
    # Pad with true silence if the engine left less than keep_s at an edge.
    pad_l = max(0, keep - loud[0] * frame)
    pad_r = max(0, keep - (len(audio) - (loud[-1] + 1) * frame))
    return np.pad(out, (pad_l, pad_r))


def render(job: Job) -> np.ndarray:
    """Synthesise one job as float32 16 kHz audio, levelled to the job's peak."""
    settings = job.speaker.params
    vtl = settings.pop("vtl", 1.0)
    audio = ENGINES[job.speaker.engine].synthesize(job.text.lower(), job.speaker.voice, settings)
    if audio.size == 0 or not np.all(np.isfinite(audio)):
        raise RuntimeError("empty or non-finite audio")
    audio = vtl_shift(audio.astype(np.float32), vtl)
    # Speed perturbation (Kaldi style): pretend the signal was recorded at
    # SAMPLE_RATE * speed and resample; tempo and pitch change together.
    audio = resample(audio, SAMPLE_RATE * job.speed, SAMPLE_RATE)
    audio = audio - float(np.mean(audio))
    audio = trim_silence(audio, SAMPLE_RATE, job.edge_silence)
    peak = float(np.max(np.abs(audio)))
    if peak < 1e-4:
        raise RuntimeError("silent audio")
    audio = audio * (job.peak / peak)
    dur = len(audio) / SAMPLE_RATE
    n_words = len(job.text.split())
    if dur < 0.1 * n_words or dur > 2.0 * n_words + 2.0:
        raise RuntimeError(f"implausible duration {dur:.2f}s for {n_words} words")
    return audio
