"""What every engine module shares: the voice record, subprocess and WAV helpers, resampling.

An engine module (``espeak``, ``flite``, ``festival``, ``piper``, ``rhvoice``, ``mbrola``, ``pico``,
``kokoro``) exposes:

- ``ENGINE``: its name, as written in ``--engines`` and in ``SPEAKERS.TXT``;
- ``VOICES``: a tuple of :class:`Voice` (name, licence, free or not, gender, accent, apt packages);
- optionally ``speaker_voices()``, the voice strings a speaker may use, and ``gender(voice)``, ``"M"`` or
  ``"F"`` for ``SPEAKERS.TXT``, where they are not simply the VOICES' names and genders (espeak adds
  variants such as ``en-us+f3``); :func:`speaker_voices` and :func:`gender` answer for every module;
- optionally ``voice_parts(voice)``, the voices a voice string is made of (kokoro's blends), which the plan
  holds out of train together when a dev speaker uses one of them; :func:`voice_parts` answers for every module;
- optionally ``INSTALL_HINT``, what the corpus tool says when ``available()`` is false;
- ``random_settings(voice, rng)``: one speaker's fixed settings, as sorted ``(name, value)`` pairs;
- ``available()``: whether it runs on this machine (binaries and data present);
- ``synthesize(text, voice, settings) -> np.ndarray``: float32 mono audio at :data:`SAMPLE_RATE`.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from types import ModuleType

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000  # the corpus rate (LibriSpeech's)
SYNTH_TIMEOUT_S = 120  # one sentence never takes this long; a hung engine is killed

Settings = tuple[tuple[str, float], ...]
SettingsMap = Mapping[str, float]


@dataclasses.dataclass(frozen=True)
class Voice:
    """One voice of an engine, with what the model card needs to know about it."""

    name: str
    licence: str
    free: bool  # an open licence: use (commercial too), change and share; "non-commercial" is not free
    gender: str  # "M" or "F"
    accent: str  # e.g. "US", "GB", "German-accented"
    packages: str  # apt (or pip) packages that provide it


_TMPDIR: str | None = None


def tmp_path(name: str) -> str:
    """A path in this process's private scratch directory (in /dev/shm when it can be)."""
    global _TMPDIR
    if _TMPDIR is None:
        base = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
        _TMPDIR = tempfile.mkdtemp(prefix="ttscorpus-", dir=base)
        atexit.register(shutil.rmtree, _TMPDIR, True)
    return os.path.join(_TMPDIR, f"{os.getpid()}-{name}")


def reset_tmpdir() -> None:
    """Forget the parent's scratch directory (call in a freshly forked worker)."""
    global _TMPDIR
    _TMPDIR = None


def run(cmd: list[str], stdin: bytes | None = None) -> bytes:
    """Run an engine command; raise with the end of its stderr when it fails. Returns stdout."""
    proc = subprocess.run(cmd, input=stdin, capture_output=True, timeout=SYNTH_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {proc.stderr.decode(errors='replace')[-300:]}")
    return proc.stdout


def have(*commands: str) -> bool:
    return all(shutil.which(c) is not None for c in commands)


def resample(audio: np.ndarray, sr_in: float, sr_out: int) -> np.ndarray:
    """High-quality resampling (soxr if available, else librosa)."""
    if abs(sr_in - sr_out) < 1e-6:
        return audio
    try:
        import soxr

        return soxr.resample(audio, sr_in, sr_out, quality="HQ").astype(np.float32)
    except ImportError:
        import librosa

        return librosa.resample(audio, orig_sr=sr_in, target_sr=sr_out).astype(np.float32)


def read_wav_16k(path: str) -> np.ndarray:
    """Read a WAV an engine wrote, as float32 mono at SAMPLE_RATE."""
    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    return resample(audio.mean(axis=1), sr, SAMPLE_RATE)


def settings_map(settings: Settings | SettingsMap) -> dict[str, float]:
    return dict(settings.items() if isinstance(settings, Mapping) else settings)


def speaker_voices(engine: ModuleType) -> list[str]:
    """The voice strings a speaker of this engine module may use."""
    own = getattr(engine, "speaker_voices", None)
    return own() if own is not None else [v.name for v in engine.VOICES]


def voice_parts(engine: ModuleType, voice: str) -> set[str]:
    """The voices a speaker's voice string of this engine module is made of: itself, or a blend's voices."""
    own = getattr(engine, "voice_parts", None)
    return own(voice) if own is not None else {voice}


def gender(engine: ModuleType, voice: str) -> str:
    """"M" or "F" for a voice string of this engine module (a voice it does not list reads as "M")."""
    own = getattr(engine, "gender", None)
    return own(voice) if own is not None else next((v.gender for v in engine.VOICES if v.name == voice), "M")
