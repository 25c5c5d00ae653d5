import librosa
import numpy as np
import torch

from speech_s2s.frontend.features import (
    FeatureConfig,
    GlobalMVN,
    LogMel,
    SpecAugmentConfig,
    spec_augment,
)


def test_mel_power_matches_librosa():
    config = FeatureConfig()
    samples = np.random.default_rng(0).normal(0, 0.1, 24000).astype(np.float32)
    expected = librosa.feature.melspectrogram(
        y=samples, sr=config.sample_rate, n_fft=config.n_fft, hop_length=config.hop_length, win_length=config.n_fft,
        n_mels=config.n_mels, center=True, pad_mode="constant", power=2.0,
    )
    ours = LogMel(config).power(torch.from_numpy(samples)[None])[0].numpy()
    assert ours.shape == expected.shape == (80, 1 + 24000 // 160)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-6 * expected.max())


def test_padded_batch_gives_each_utterance_its_own_frames():
    logmel = LogMel()
    rng = np.random.default_rng(1)
    waves = [torch.from_numpy(rng.normal(0, 0.1, n).astype(np.float32)) for n in (16000, 9999, 4321)]
    batch = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
    feats, lengths = logmel(batch, torch.tensor([w.shape[0] for w in waves]))
    for b, wave in enumerate(waves):
        alone, alone_length = logmel(wave[None], torch.tensor([wave.shape[0]]))
        assert int(lengths[b]) == int(alone_length[0]) == 1 + wave.shape[0] // 160
        torch.testing.assert_close(feats[b, : lengths[b]], alone[0], rtol=1e-5, atol=1e-5)
        assert torch.all(feats[b, lengths[b] :] == 0)


def test_spec_augment_masks_inside_lengths_and_is_seeded():
    feats = torch.ones(2, 100, 80)
    lengths = torch.tensor([100, 50])
    config = SpecAugmentConfig(freq_masks=2, freq_width=10, time_masks=2, time_width=20, time_width_ratio=0.2)
    first = spec_augment(feats, lengths, config, torch.Generator().manual_seed(3))
    again = spec_augment(feats, lengths, config, torch.Generator().manual_seed(3))
    assert torch.equal(first, again)
    assert (first == 0).any() and (first == 1).any()
    # no time mask wider than 20% of the utterance: some of every bin survives in each frame that is not time-masked
    masked_frames = (first[1] == 0).all(dim=1).sum()
    assert masked_frames <= 2 * 10


def test_streaming_features_equal_offline_features_whatever_the_blocks():
    from speech_s2s.frontend.features import StreamingLogMel

    logmel = LogMel()
    streaming = StreamingLogMel(logmel)
    rng = np.random.default_rng(2)
    for length in (12345, 16000, 399, 1):
        samples = rng.normal(0, 0.1, length).astype(np.float32)
        offline, _ = logmel(torch.from_numpy(samples)[None], torch.tensor([length]))
        pieces, start = [], 0
        while start < length:
            size = int(rng.integers(1, 2000))
            pieces.append(streaming.push(samples[start : start + size]))
            start += size
        pieces.append(streaming.flush())
        online = torch.cat(pieces)
        assert online.shape == offline[0].shape
        torch.testing.assert_close(online, offline[0], rtol=1e-4, atol=1e-4)


def test_utterance_mean_cancels_a_fixed_channel_and_ignores_padding():
    torch.manual_seed(0)
    normaliser = GlobalMVN(4, utterance_mean=True)
    normaliser.set_stats(torch.tensor([-3.0, -2.0, -1.0, 0.0]), torch.tensor([2.0, 1.0, 0.5, 4.0]))
    speech = torch.randn(1, 7, 4)
    tilt = torch.tensor([1.5, -0.5, 0.25, 3.0])  # a microphone's colouring: a constant offset of log-mel
    plain = normaliser(speech, torch.tensor([7]))
    torch.testing.assert_close(normaliser(speech + tilt, torch.tensor([7])), plain)
    torch.testing.assert_close(plain.sum(1), torch.zeros(1, 4), atol=1e-5, rtol=0)
    padded = torch.cat([speech, torch.full((1, 3, 4), 50.0)], dim=1)  # padding frames change nothing
    batch = normaliser(torch.cat([padded, torch.randn(1, 10, 4)]), torch.tensor([7, 10]))
    torch.testing.assert_close(batch[:1, :7], plain)
    assert (batch[0, 7:] == 0).all()
    without = GlobalMVN(4)
    without.set_stats(normaliser.mean, normaliser.std)
    torch.testing.assert_close(without(speech, torch.tensor([7])), (speech - normaliser.mean) / normaliser.std)


def test_running_normalisation_is_the_mean_of_the_utterance_so_far_whatever_the_blocks():
    torch.manual_seed(1)
    normaliser = GlobalMVN(3, utterance_mean=True)
    normaliser.set_stats(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.5, 1.0, 2.0]))
    frames = torch.randn(9, 3)
    globally = (frames - normaliser.mean) / normaliser.std
    expected = globally - globally.cumsum(0) / torch.arange(1, 10)[:, None]
    state, parts = None, []
    for start, stop in [(0, 1), (1, 1), (1, 5), (5, 9)]:
        part, state = normaliser.running(frames[start:stop], state)
        parts.append(part)
    torch.testing.assert_close(torch.cat(parts), expected)
    # the last frame's running mean is the whole utterance's: the offline normalisation's last frame
    torch.testing.assert_close(torch.cat(parts)[-1], normaliser(frames[None], torch.tensor([9]))[0, -1])
    normaliser.utterance_mean = False
    torch.testing.assert_close(normaliser.running(frames, None)[0], globally)
