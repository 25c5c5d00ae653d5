"""Live audio sources: file replay, raw PCM on stdin, device lookup (the real microphone: test_stream_microphone.py)."""

import io
import time

import numpy as np
import pytest
import soundfile

from speech_s2s.builder import BUNDLED_SAMPLE
from speech_s2s.frontend.audio import SAMPLE_RATE, load_audio
from speech_s2s.sources import (
    FileSource,
    InputDevice,
    SourceError,
    StdinSource,
    find_device,
)


def test_file_source_replays_the_whole_file_in_small_blocks():
    blocks = list(FileSource(BUNDLED_SAMPLE, fast=True, block_seconds=0.05))
    assert all(len(b) == 800 for b in blocks[:-1]) and 0 < len(blocks[-1]) <= 800
    np.testing.assert_array_equal(np.concatenate(blocks), load_audio(BUNDLED_SAMPLE))


def test_file_source_in_real_time_takes_as_long_as_the_audio(tmp_path):
    path = tmp_path / "half.wav"
    soundfile.write(path, np.zeros(SAMPLE_RATE // 2, dtype=np.float32), SAMPLE_RATE)
    start = time.monotonic()
    total = sum(len(b) for b in FileSource(path))
    assert total == SAMPLE_RATE // 2 and 0.45 < time.monotonic() - start < 1.5


@pytest.mark.parametrize("rate", [16000, 8000, 44100])
def test_stdin_source_reads_raw_s16le_at_any_rate(rate):
    rng = np.random.default_rng(0)
    pcm = (rng.normal(0, 3000, rate * 2)).astype("<i2")
    data = pcm.tobytes() + b"\x01"  # a stray odd byte at the end is ignored
    samples = np.concatenate(list(StdinSource(rate, io.BytesIO(data))))
    assert abs(len(samples) - 2 * SAMPLE_RATE) <= 1
    if rate == SAMPLE_RATE:
        np.testing.assert_array_equal(samples, pcm / 32768.0)


def test_devices_are_found_by_index_name_or_default():
    devices = [InputDevice(0, "HDA Intel PCH: ALC3246 Analog (hw:0,0)", 2, 48000.0, False),
               InputDevice(5, "pulse", 32, 44100.0, False), InputDevice(7, "default", 32, 44100.0, True)]
    assert find_device(devices, None).index == 7
    assert find_device(devices, "5").name == "pulse"
    assert find_device(devices, "alc3246").index == 0
    assert find_device(devices, "default").index == 7  # an exact name wins over a partial one
    with pytest.raises(SourceError, match=r"^no input device named 'usb'; the input devices are 0: HDA.*5: pulse, 7: default"):
        find_device(devices, "usb")
    with pytest.raises(SourceError, match="^no input device 3;"):
        find_device(devices, 3)
    with pytest.raises(SourceError, match="^no audio input device found: connect a microphone"):
        find_device([], None)
