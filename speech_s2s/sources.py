"""Live audio sources for streaming recognition: a microphone, a file replayed in real time, raw PCM on stdin.

Every source is an iterable of 16 kHz mono float32 blocks of about `block_seconds` (20-100 ms),
ending when its audio does (a microphone never ends: stop it with Ctrl-C or `close()`). Each
counts the audio it had to drop (`dropped_seconds`) instead of failing: a live source that
cannot keep up loses audio, it does not stop.

A microphone that cannot be opened (no PortAudio library, no input device, no device of that
name) raises `SourceError` with one line naming what is available and how to fix it.
"""

from __future__ import annotations

import queue
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from speech_s2s.frontend.audio import SAMPLE_RATE, StreamResampler, pcm16_samples, stream_audio

BLOCK_SECONDS = 0.05  # 50 ms blocks: small next to the 300-500 ms between partial results
# A sound card's period. PortAudio's ALSA input holds two, so through PulseAudio 50 ms blocks gave
# 100 ms of input latency and 20 ms blocks 40 ms; the end of an utterance waits for its block. Median
# end of speech -> final, tools/bench_stream_microphone.py, two runs each: 50 ms 649, 666 ms; 20 ms
# 621, 588 ms; 10 ms 700, 716 ms (a wake-up every 10 ms costs more than it saves on two cores).
MICROPHONE_BLOCK_SECONDS = 0.02
QUEUE_SECONDS = 10.0  # microphone audio held while the recogniser is busy; older audio is dropped beyond this


class SourceError(RuntimeError):
    """An audio source could not be opened; the message (one line) says what exists and how to fix it."""


@dataclass(frozen=True)
class InputDevice:
    index: int
    name: str
    channels: int  # input channels
    sample_rate: float  # the device's default rate
    default: bool  # the system's default input


def _sounddevice():
    """The sounddevice module, or a SourceError saying what to install."""
    try:
        import sounddevice
    except ImportError:
        raise SourceError("microphone input needs the sounddevice package: pip install 'speech_s2s[mic]'") from None
    except OSError:  # sounddevice raises OSError when it cannot load the PortAudio library
        raise SourceError("no PortAudio library found: install it (Debian/Ubuntu: apt-get install libportaudio2; "
                          "macOS: brew install portaudio), or use --file F or - (raw PCM on standard input)") from None
    return sounddevice


def list_devices() -> list[InputDevice]:
    """The input devices PortAudio sees (raises SourceError when PortAudio is missing)."""
    sd = _sounddevice()
    try:
        default = sd.default.device[0]
        devices = sd.query_devices()
    except Exception as error:  # PortAudio errors are sounddevice.PortAudioError
        raise SourceError(f"cannot list audio devices ({error})") from None
    if isinstance(default, str):
        default = -1
    return [InputDevice(i, d["name"], d["max_input_channels"], d["default_samplerate"], i == default)
            for i, d in enumerate(devices) if d["max_input_channels"] > 0]


def format_devices(devices: list[InputDevice]) -> str:
    """One line per device, the default marked with '*'."""
    return "\n".join(f"{'*' if d.default else ' '} {d.index:3d}  {d.name}  ({d.channels} in, {d.sample_rate:g} Hz)" for d in devices)


def _available(devices: list[InputDevice]) -> str:
    return ", ".join(f"{d.index}: {d.name}" for d in devices)


def find_device(devices: list[InputDevice], device: str | int | None) -> InputDevice:
    """The input device meant by an index, a (case-insensitive, partial) name, or None (the default)."""
    if not devices:
        raise SourceError("no audio input device found: connect a microphone or start a sound server (PulseAudio, PipeWire), "
                          "or use --file F or - (raw PCM on standard input)")
    if device is None:
        chosen = [d for d in devices if d.default] or devices[:1]
        return chosen[0]
    if isinstance(device, int) or str(device).strip().isdigit():
        index = int(device)
        for d in devices:
            if d.index == index:
                return d
        raise SourceError(f"no input device {index}; the input devices are {_available(devices)} (see --list-devices)")
    name = str(device).lower()
    exact = [d for d in devices if d.name.lower() == name]
    matches = exact or [d for d in devices if name in d.name.lower()]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise SourceError(f"no input device named {device!r}; the input devices are {_available(devices)} (see --list-devices)")
    raise SourceError(f"{device!r} names {len(matches)} input devices ({_available(matches)}): give its index or a longer name")


class MicrophoneSource:
    """A sound card input through PortAudio (sounddevice). The callback only copies audio into a
    bounded queue; blocks are resampled to 16 kHz (when the device cannot deliver 16 kHz itself)
    as they are taken out. Overflows (the driver's and a full queue's) are counted, never fatal."""

    def __init__(self, device: str | int | None = None, block_seconds: float = MICROPHONE_BLOCK_SECONDS,
                 queue_seconds: float = QUEUE_SECONDS):
        self._sd = _sounddevice()
        self.device = find_device(list_devices(), device)
        self.block_seconds = block_seconds
        self.rate = self._choose_rate()
        self.name = self.device.name
        self._queue: queue.Queue[np.ndarray] = queue.Queue(maxsize=max(1, round(queue_seconds / block_seconds)))
        self.overflows = 0  # times the driver reported lost input
        self._dropped_samples = 0  # at the device rate
        self._stream = None

    def _choose_rate(self) -> int:
        """16 kHz when the device takes it (no resampling), else its own default rate."""
        try:
            self._sd.check_input_settings(self.device.index, channels=1, samplerate=SAMPLE_RATE, dtype="float32")
            return SAMPLE_RATE
        except Exception:
            return int(self.device.sample_rate)

    @property
    def dropped_seconds(self) -> float:
        return self._dropped_samples / self.rate

    def _callback(self, indata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        if status.input_overflow:
            self.overflows += 1
        try:
            self._queue.put_nowait(indata[:, 0].copy())
        except queue.Full:
            self._dropped_samples += frames

    def start(self) -> None:
        """Open and start the input stream (iterating starts it too)."""
        if self._stream is not None:
            return
        try:
            self._stream = self._sd.InputStream(
                device=self.device.index, channels=1, samplerate=self.rate, dtype="float32",
                blocksize=max(1, round(self.block_seconds * self.rate)), callback=self._callback,
                # the device's low input latency (PulseAudio: 9 ms, against 35 ms for PortAudio's default
                # "high"): captions wait on every buffer, and the callback only copies into a queue
                latency="low",
            )
            self._stream.start()
        except Exception as error:
            self._stream = None
            raise SourceError(f"cannot open input device {self.device.index} ({self.device.name}) at {self.rate} Hz: "
                              f"{str(error).splitlines()[0]}; try another --device (see --list-devices)") from None

    def close(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None

    def __iter__(self) -> Iterator[np.ndarray]:
        resampler = StreamResampler(self.rate, block_seconds=self.block_seconds)
        self.start()
        try:
            while self._stream is not None:
                try:
                    blocks = [self._queue.get(timeout=0.5)]
                except queue.Empty:
                    continue  # a stalled device: keep waiting (Ctrl-C stops)
                while not self._queue.empty():  # what arrived while the recogniser was busy, in one push
                    blocks.append(self._queue.get_nowait())
                out = resampler.push(np.concatenate(blocks) if len(blocks) > 1 else blocks[0])
                if len(out):
                    yield out
        finally:
            self.close()


class FileSource:
    """Any audio file, replayed at the speed of speech (fast=False) or as fast as it can be read."""

    def __init__(self, path: str | Path, fast: bool = False, block_seconds: float = BLOCK_SECONDS):
        self.path = path
        self.name = str(path)
        self.fast = fast
        self.block = max(1, round(block_seconds * SAMPLE_RATE))
        self.dropped_seconds = 0.0  # a file never drops audio; replay just falls behind

    def __iter__(self) -> Iterator[np.ndarray]:
        start, sent = time.monotonic(), 0
        pending = np.zeros(0, dtype=np.float32)
        for big in stream_audio(self.path):
            pending = np.concatenate([pending, big])
            while len(pending) >= self.block:
                block, pending = pending[: self.block], pending[self.block :]
                sent += len(block)
                self._wait_until(start + sent / SAMPLE_RATE)
                yield block
        if len(pending):
            self._wait_until(start + (sent + len(pending)) / SAMPLE_RATE)
            yield pending

    def _wait_until(self, moment: float) -> None:
        """Real time: a block is handed out when its last sample would have been spoken."""
        if not self.fast:
            delay = moment - time.monotonic()
            if delay > 0:
                time.sleep(delay)


class StdinSource:
    """Raw signed 16-bit little-endian mono PCM (e.g. `arecord -f S16_LE -r 16000 -c 1 -t raw`),
    at `rate` Hz (resampled to 16 kHz when it differs)."""

    def __init__(self, rate: int = SAMPLE_RATE, stream: BinaryIO | None = None, block_seconds: float = BLOCK_SECONDS):
        self.rate = rate
        self.name = "standard input"
        self.stream = stream
        self.frames = max(1, round(block_seconds * rate))
        self.dropped_seconds = 0.0

    def __iter__(self) -> Iterator[np.ndarray]:
        stream = self.stream if self.stream is not None else sys.stdin.buffer
        resampler = StreamResampler(self.rate, block_seconds=self.frames / self.rate)
        carry = b""  # an odd byte left between reads
        while True:
            data = stream.read(2 * self.frames)
            if not data:
                break
            data, carry = carry + data, b""
            if len(data) % 2:
                data, carry = data[:-1], data[-1:]
            out = resampler.push(pcm16_samples(data))
            if len(out):
                yield out
        tail = resampler.flush()
        if len(tail):
            yield tail
