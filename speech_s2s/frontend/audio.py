"""Audio loading: any file soundfile, ffmpeg or librosa can read -> 16 kHz mono float32.

`load_audio` reads a whole file; `stream_audio` yields it block by block (resampled as it goes),
so memory stays bounded however long the recording is.
"""

from __future__ import annotations

import io
import math
import shutil
import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile

# Every model in this package hears 16 kHz audio, the rate of LibriSpeech.
SAMPLE_RATE = 16000
BLOCK_SECONDS = 30.0  # what stream_audio reads at a time: large enough to amortise, small enough to bound memory
STDIN = "-"  # the input name that means standard input
PCM_SCALE = 32768.0  # signed 16-bit full scale


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
        import torch  # here, not at the top: the command line's start-up and usage errors never load torch
        import torchaudio.functional

        mono = torchaudio.functional.resample(torch.from_numpy(mono), rate, SAMPLE_RATE).numpy()
    return mono


def check_readable(path: str | Path) -> None:
    """Raise AudioError naming the file if it is missing, a folder, unreadable or empty."""
    path = Path(path)
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    try:
        with open(path, "rb") as handle:
            empty = handle.read(1) == b""
    except FileNotFoundError:
        raise AudioError(f"{path}: no such file") from None
    except OSError as error:
        raise AudioError(f"{path}: {(error.strerror or type(error).__name__).lower()}") from None
    if empty:
        raise AudioError(f"{path}: empty file")


def load_audio(path: str | Path) -> np.ndarray:
    """Load `path` as 16 kHz mono float32 samples in [-1, 1]. Raises AudioError naming the file."""
    path = Path(path)
    check_readable(path)
    samples, rate = _read_any(path)
    if samples.size == 0:
        raise AudioError(f"{path}: holds no audio samples")
    if not np.isfinite(samples).all():
        raise AudioError(f"{path}: holds NaN or infinite samples")
    return to_mono_16k(samples, rate)


def audio_info(path: str | Path) -> tuple[int, int, float] | None:
    """(sample rate, channels, seconds) from the file's header, or None where the header does not
    say (formats read through ffmpeg, standard input)."""
    if str(path) == STDIN:
        return None
    try:
        info = soundfile.info(str(path))
    except Exception:
        return None
    return info.samplerate, info.channels, info.frames / info.samplerate


def pcm16_samples(data: bytes) -> np.ndarray:
    """Raw signed 16-bit little-endian PCM (an even number of bytes) -> float32 samples in [-1, 1)."""
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / np.float32(PCM_SCALE)


class StreamResampler:
    """Resamples a stream to SAMPLE_RATE block by block, matching torchaudio's resampling of the
    whole signal (to float rounding): each block is resampled with `margin` input samples of real
    neighbours on both sides, and only its middle is kept. Blocks and margins are whole multiples
    of the rates' reduced ratio, so every block's outputs fall on the whole signal's output grid.
    `block_seconds` trades cost for latency: live sources use ~50 ms blocks."""

    def __init__(self, rate: int, block_seconds: float = 1.0):
        self.rate = rate
        divisor = math.gcd(rate, SAMPLE_RATE)
        self.up, self.down = SAMPLE_RATE // divisor, rate // divisor
        self.margin = self.down * math.ceil(256 / self.down)  # well beyond the sinc kernel's reach
        self.block = self.down * max(1, round(block_seconds * rate / self.down))
        self._buffer = np.zeros(self.margin, dtype=np.float32)  # torchaudio pads the start with zeros
        self._real = 0  # real (not padding) samples in the buffer after the left margin

    def _resample(self, samples: np.ndarray) -> np.ndarray:
        import torch  # as in to_mono_16k
        import torchaudio.functional

        return torchaudio.functional.resample(torch.from_numpy(samples), self.rate, SAMPLE_RATE).numpy()

    def push(self, samples: np.ndarray) -> np.ndarray:
        if self.rate == SAMPLE_RATE:
            return samples
        self._buffer = np.concatenate([self._buffer, samples.astype(np.float32)])
        self._real += len(samples)
        keep = self.margin * self.up // self.down
        pieces = []
        while len(self._buffer) >= 2 * self.margin + self.block:
            out = self._resample(self._buffer[: 2 * self.margin + self.block])
            pieces.append(out[keep : keep + self.block * self.up // self.down])
            self._buffer = self._buffer[self.block :]
            self._real -= self.block
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)

    def flush(self) -> np.ndarray:
        if self.rate == SAMPLE_RATE or self._real <= 0:
            return np.zeros(0, dtype=np.float32)
        padded = np.concatenate([self._buffer, np.zeros(self.margin, dtype=np.float32)])  # and the end with zeros
        keep = self.margin * self.up // self.down
        out = self._resample(padded)[keep : keep + math.ceil(self._real * self.up / self.down)]
        self._real = 0
        return out


def _ffmpeg_blocks(source: str | Path | BinaryIO, name: str, block: int) -> Iterator[np.ndarray]:
    """Decode anything ffmpeg reads to 16 kHz mono float32, streamed through a pipe."""
    command = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", "pipe:0" if not isinstance(source, (str, Path)) else str(source),
               "-f", "f32le", "-ac", "1", "-ar", str(SAMPLE_RATE), "pipe:1"]
    process = subprocess.Popen(command, stdin=subprocess.PIPE if not isinstance(source, (str, Path)) else subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if not isinstance(source, (str, Path)):
        import threading

        def feed() -> None:
            try:
                shutil.copyfileobj(source, process.stdin)
            except (BrokenPipeError, OSError):
                pass
            finally:
                process.stdin.close()

        threading.Thread(target=feed, daemon=True).start()
    produced = False
    try:
        while True:
            data = process.stdout.read(4 * block)
            if not data:
                break
            produced = True
            yield np.frombuffer(data[: len(data) // 4 * 4], dtype="<f4").copy()
    finally:
        process.stdout.close()
        error = process.stderr.read().decode(errors="replace").strip().splitlines()
        process.wait()
    if process.returncode != 0 or not produced:
        reason = error[-1] if error else "decodes to no audio"
        raise AudioError(f"{name}: not a readable audio file ({reason})")


def stream_audio(path: str | Path, block_seconds: float = BLOCK_SECONDS) -> Iterator[np.ndarray]:
    """Yield `path` as 16 kHz mono float32 blocks of about block_seconds (the last may be shorter).

    soundfile streams WAV/FLAC/OGG/MP3 itself; anything else goes through ffmpeg when it is
    installed (else librosa reads it whole). `-` reads an audio file from standard input.
    Raises AudioError naming the file, before the first block or when a bad block is reached.
    """
    if str(path) == STDIN:
        yield from _stream_stdin(block_seconds)
        return
    path = Path(path)
    check_readable(path)
    try:
        handle = soundfile.SoundFile(str(path))
    except Exception as soundfile_error:
        reason = str(soundfile_error).splitlines()[0] if str(soundfile_error) else type(soundfile_error).__name__
        if shutil.which("ffmpeg"):
            try:
                yield from _checked(_ffmpeg_blocks(path, str(path), int(block_seconds * SAMPLE_RATE)), str(path))
            except AudioError:
                raise AudioError(f"{path}: not a readable audio file ({reason})") from None
        else:
            yield load_audio(path)
        return
    with handle:
        yield from _checked(_soundfile_blocks(handle, block_seconds, str(path)), str(path))


def _soundfile_blocks(handle: soundfile.SoundFile, block_seconds: float, name: str) -> Iterator[np.ndarray]:
    resampler = StreamResampler(handle.samplerate)
    frames = max(1, int(block_seconds * handle.samplerate))
    while True:
        try:
            block = handle.read(frames, dtype="float32", always_2d=True)
        except Exception as error:  # libsndfile reports damage it meets mid-file (a cut FLAC: "decoder lost sync")
            reason = str(error).splitlines()[0].removeprefix("Error : ") if str(error) else type(error).__name__
            raise AudioError(f"{name}: damaged or cut short after {handle.tell() / handle.samplerate:.1f} s ({reason})") from None
        if len(block) == 0:
            break
        yield resampler.push(block.mean(axis=1))
    yield resampler.flush()


def _checked(blocks: Iterator[np.ndarray], name: str) -> Iterator[np.ndarray]:
    """Pass blocks on, skipping empty ones; NaN/inf samples and a file of no samples are errors."""
    total = 0
    for block in blocks:
        if not np.isfinite(block).all():
            raise AudioError(f"{name}: holds NaN or infinite samples")
        if len(block):
            total += len(block)
            yield block
    if total == 0:
        raise AudioError(f"{name}: holds no audio samples")


def _stream_stdin(block_seconds: float) -> Iterator[np.ndarray]:
    source = sys.stdin.buffer
    if shutil.which("ffmpeg"):
        yield from _checked(_ffmpeg_blocks(source, "standard input", int(block_seconds * SAMPLE_RATE)), "standard input")
        return
    data = source.read()
    if not data:
        raise AudioError("standard input: empty")
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as handle:
            yield from _checked(_soundfile_blocks(handle, block_seconds, "standard input"), "standard input")
    except soundfile.LibsndfileError as error:
        raise AudioError(f"standard input: not a readable audio file ({str(error).splitlines()[0]})") from None
