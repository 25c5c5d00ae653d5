import numpy as np
import pytest
import soundfile

from speech_s2s.frontend.audio import SAMPLE_RATE, AudioError, load_audio


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


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000])
def test_stream_resampler_matches_resampling_the_whole_signal(rate):
    import torch
    import torchaudio

    from speech_s2s.frontend.audio import StreamResampler

    rng = np.random.default_rng(rate)
    signal = rng.normal(0, 0.3, 3 * rate + 123).astype(np.float32)
    expected = torchaudio.functional.resample(torch.from_numpy(signal), rate, SAMPLE_RATE).numpy()
    resampler, pieces, start = StreamResampler(rate), [], 0
    while start < len(signal):
        size = int(rng.integers(1, 5000))
        pieces.append(resampler.push(signal[start : start + size]))
        start += size
    pieces.append(resampler.flush())
    np.testing.assert_allclose(np.concatenate(pieces), expected, atol=1e-5)


def test_streamed_file_equals_the_file_read_whole(tmp_path):
    from speech_s2s.frontend.audio import stream_audio

    path = tmp_path / "long.wav"
    soundfile.write(path, np.random.default_rng(0).normal(0, 0.1, (44100 * 5, 2)).astype(np.float32), 44100, subtype="FLOAT")
    blocks = list(stream_audio(path, block_seconds=1.3))
    assert len(blocks) > 3
    np.testing.assert_allclose(np.concatenate(blocks), load_audio(path), atol=1e-5)


def test_formats_soundfile_cannot_read_stream_through_ffmpeg(tmp_path):
    import shutil
    import subprocess

    from speech_s2s.frontend.audio import stream_audio

    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg not installed")
    wav, m4a = tmp_path / "a.wav", tmp_path / "a.m4a"
    t = np.arange(SAMPLE_RATE * 2) / SAMPLE_RATE
    soundfile.write(wav, (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), SAMPLE_RATE)
    subprocess.run(["ffmpeg", "-loglevel", "error", "-i", str(wav), str(m4a)], check=True)
    samples = np.concatenate(list(stream_audio(m4a)))
    assert abs(len(samples) - 2 * SAMPLE_RATE) < 0.1 * SAMPLE_RATE and 0.2 < np.abs(samples).max() < 0.4


def test_a_folder_and_an_unreadable_file_say_so(tmp_path, monkeypatch):
    from speech_s2s.frontend import audio

    with pytest.raises(AudioError, match=f"^{tmp_path}: is a folder, not an audio file$"):
        load_audio(tmp_path)
    path = tmp_path / "locked.wav"
    path.write_bytes(b"RIFF")

    def denied(*args, **kwargs):  # tests run as root, for whom chmod 000 denies nothing
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(audio, "open", denied, raising=False)
    with pytest.raises(AudioError, match=f"^{path}: permission denied$"):
        load_audio(path)


def test_a_flac_cut_short_is_an_audio_error_naming_the_file(tmp_path):
    from speech_s2s.frontend.audio import stream_audio

    whole = tmp_path / "whole.flac"
    soundfile.write(whole, np.random.default_rng(0).normal(0, 0.1, SAMPLE_RATE * 4).astype(np.float32), SAMPLE_RATE)
    cut = tmp_path / "cut.flac"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])
    with pytest.raises(AudioError, match=f"^{cut}: damaged or cut short after"):
        list(stream_audio(cut))
