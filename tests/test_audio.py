import numpy as np
import pytest
import soundfile

from speech_s2s.audio import SAMPLE_RATE, AudioError, load_audio


def test_stereo_44k_becomes_16k_mono_with_the_same_tone(tmp_path):
    rate, seconds, frequency = 44100, 1.0, 440.0
    t = np.arange(int(rate * seconds)) / rate
    left = 0.5 * np.sin(2 * np.pi * frequency * t)
    path = tmp_path / "stereo.wav"
    soundfile.write(path, np.stack([left, left], axis=1), rate)
    samples = load_audio(path)
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert abs(len(samples) - SAMPLE_RATE * seconds) <= 1
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / len(samples) - frequency) < 2
    assert 0.45 < np.abs(samples[1000:-1000]).max() < 0.55


def test_flac_at_16k_is_read_unchanged(tmp_path):
    samples = (np.random.default_rng(0).uniform(-0.5, 0.5, 8000)).astype(np.float32)
    path = tmp_path / "a.flac"
    soundfile.write(path, samples, SAMPLE_RATE, subtype="PCM_16")
    np.testing.assert_allclose(load_audio(path), samples, atol=1 / 2**15)


@pytest.mark.parametrize(
    "content, message",
    [(b"", "empty file"), (b"this is not audio at all" * 10, "not a readable audio file")],
)
def test_bad_files_raise_one_line_error_naming_the_file(tmp_path, content, message):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioError) as error:
        load_audio(path)
    assert str(path) in str(error.value) and message in str(error.value)
    assert "\n" not in str(error.value)


def test_audio_file_with_no_samples(tmp_path):
    path = tmp_path / "silent.wav"
    soundfile.write(path, np.zeros((0, 1), dtype=np.float32), SAMPLE_RATE)
    with pytest.raises(AudioError, match="no audio samples"):
        load_audio(path)


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        load_audio(tmp_path / "nope.flac")
