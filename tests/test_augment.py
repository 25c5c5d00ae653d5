import dataclasses

import numpy as np
import pytest
import soundfile
import torch
from conftest import MINI_CORPUS, tiny_model_with_mini_features
from scipy import signal

from speech_s2s.data.augment import (
    AugmentConfig,
    Augmenter,
    add_noise,
    babble,
    band_limit,
    biquad,
    clip,
    codec_round_trip,
    coloured_noise,
    equalise,
    load_rir_bank,
    mu_law,
    preset,
    reverberate,
    speed_perturb,
    telephone,
    vtlp,
)
from speech_s2s.data.augmented_batches import AugmentedBatches, load_waveforms
from speech_s2s.frontend.audio import SAMPLE_RATE, load_audio
from speech_s2s.training.loop import TrainConfig, fit

SPEECH = sorted(MINI_CORPUS.rglob("*.flac"))[0]


def tone(freq: float, seconds: float = 1.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE)).astype(np.float32)


def peak_frequency(x: np.ndarray) -> float:
    return float(np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)[np.argmax(np.abs(np.fft.rfft(x * np.hanning(len(x)))))])


def power_above(x: np.ndarray, freq: float) -> float:
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    return float(spectrum[np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE) > freq].sum())


def snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean((noisy - clean).astype(np.float64) ** 2)))


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturbation_changes_length_and_pitch_by_the_factor(factor):
    y = speed_perturb(tone(1000), factor)
    assert abs(len(y) - SAMPLE_RATE / factor) <= 1
    assert abs(peak_frequency(y) - 1000 * factor) <= 2


@pytest.mark.parametrize("alpha", [0.9, 1.1])
def test_vtlp_moves_frequencies_by_alpha_below_the_knee_and_keeps_the_length(alpha):
    x = tone(1000)
    y = vtlp(x, alpha)
    assert len(y) == len(x)
    assert abs(peak_frequency(y) - 1000 * alpha) <= 5
    np.testing.assert_allclose(vtlp(x, 1.0), x)


def test_reverberation_with_a_unit_impulse_is_the_identity_and_a_room_smears_the_signal():
    x = load_audio(SPEECH)
    np.testing.assert_allclose(reverberate(x, np.array([1.0])), x, atol=1e-6)
    np.testing.assert_allclose(reverberate(x, np.array([0.0, 0.0, 1.0, 0.0])), x, atol=1e-6)  # aligned on the direct path
    decay = np.random.default_rng(0).standard_normal(4000) * np.exp(-np.arange(4000) / 800)
    decay[0] = 5.0
    y = reverberate(x, decay)
    assert len(y) == len(x) and abs(np.mean(y**2) / np.mean(x**2) - 1) < 1e-3
    assert snr_db(x, y) < 10


@pytest.mark.parametrize("snr", [-5.0, 0.0, 12.5, 30.0])
def test_noise_is_added_at_the_requested_snr(snr):
    x = load_audio(SPEECH)
    noise = coloured_noise(len(x) // 3, "pink", np.random.default_rng(1))  # shorter noise is tiled
    assert abs(snr_db(x, add_noise(x, noise, snr)) - snr) < 0.05


def test_noise_colours_tilt_the_spectrum_and_babble_is_speech():
    rng = np.random.default_rng(0)
    low_share = {c: 1 - power_above(n, 500) / power_above(n, 0) for c in ("white", "pink", "brown") for n in [coloured_noise(SAMPLE_RATE, c, rng)]}
    assert low_share["white"] < 0.1 < low_share["pink"] < low_share["brown"]
    speech = [load_audio(p) for p in sorted(MINI_CORPUS.rglob("*.flac"))]
    mix = babble(speech, 2 * SAMPLE_RATE, 3, rng)
    assert mix.shape == (2 * SAMPLE_RATE,) and np.isfinite(mix).all() and np.std(mix) > 0


def test_band_limit_removes_the_energy_outside_the_band():
    x = coloured_noise(2 * SAMPLE_RATE, "white", np.random.default_rng(0))
    y = band_limit(x, 300.0, 4000.0)
    assert power_above(y, 4800) < 1e-3 * power_above(x, 4800)
    assert power_above(y, 0) - power_above(y, 200) < 1e-3 * (power_above(x, 0) - power_above(x, 200))
    assert power_above(y, 1000) - power_above(y, 3000) > 0.9 * (power_above(x, 1000) - power_above(x, 3000))


def test_telephone_round_trip_keeps_the_phone_band_only():
    x = coloured_noise(2 * SAMPLE_RATE, "white", np.random.default_rng(0)) * 0.1
    for use_mu_law in (False, True):
        y = telephone(x, use_mu_law)
        assert len(y) == len(x)
        assert power_above(y, 4000) < 1e-3 * power_above(y, 0)
    ramp = np.linspace(-1, 1, 1001, dtype=np.float32)
    error = np.abs(mu_law(ramp) - ramp)
    assert len(np.unique(mu_law(ramp))) <= 256 and error.max() < 0.025  # coarse steps near full scale
    assert error[np.abs(ramp) < 0.01].max() < 0.001  # fine steps near silence


def test_peaking_eq_boosts_its_centre_frequency_by_its_gain():
    _, response = signal.sosfreqz(biquad("peak", 1000.0, 6.0, 1.0)[None], worN=[1000.0, 7000.0], fs=SAMPLE_RATE)
    np.testing.assert_allclose(20 * np.log10(np.abs(response)), [6.0, 0.0], atol=0.1)
    for kind, boosted, flat in (("lowshelf", 50.0, 7000.0), ("highshelf", 7000.0, 50.0)):
        _, response = signal.sosfreqz(biquad(kind, 1000.0, -9.0)[None], worN=[boosted, flat], fs=SAMPLE_RATE)
        np.testing.assert_allclose(20 * np.log10(np.abs(response)), [-9.0, 0.0], atol=0.3)
    assert equalise(tone(1000), biquad("peak", 1000.0, 6.0)[None]).dtype == np.float32


@pytest.mark.parametrize("codec", ["mp3", "opus"])
def test_codec_round_trip_keeps_length_and_timing_but_changes_the_samples(codec):
    x = load_audio(SPEECH)
    y = codec_round_trip(x, codec, 0.9)
    assert len(y) == len(x) and not np.array_equal(x, y)
    assert np.corrcoef(x, y)[0, 1] > 0.8  # not shifted in time


def test_clipping_flattens_the_peaks_at_full_scale():
    y = clip(tone(100) / 0.5, 6.0)
    assert np.abs(y).max() == 1.0 and np.mean(np.abs(y) == 1.0) > 0.2


@pytest.fixture
def sources(tmp_path):
    """A noise directory (one 'music' file at 8 kHz, as asterisk-moh-opsound-wav ships) and a tiny RIR bank."""
    (tmp_path / "noise").mkdir()
    soundfile.write(tmp_path / "noise" / "music.wav", np.sin(np.arange(24000) * 0.3) * 0.3, 8000)
    rng = np.random.default_rng(0)
    rirs = np.stack([np.r_[np.zeros(5), 1.0, rng.standard_normal(2000) * np.exp(-np.arange(2000) / d)] for d in (100, 400)])
    np.savez(tmp_path / "rirs.npz", rirs=rirs, lengths=[2006, 2006], sample_rate=SAMPLE_RATE)
    return dict(noise_dirs=(str(tmp_path / "noise"),), rir_bank=str(tmp_path / "rirs.npz"))


def always(**sources) -> AugmentConfig:
    """Every component switched on, so each random path runs."""
    probabilities = {f.name: 1.0 for f in dataclasses.fields(AugmentConfig) if f.name.endswith("_prob")}
    return AugmentConfig(**probabilities, **sources)


def test_augmenter_is_reproducible_from_its_generator_and_stays_in_range(sources):
    x = load_audio(SPEECH)
    assert len(load_rir_bank(sources["rir_bank"])) == 2
    for config in (always(**sources), preset("strong", **sources), preset("channel", **sources), AugmentConfig()):
        augmenter = Augmenter(config, speech=[x])
        outputs = [augmenter(x, np.random.default_rng(seed)) for seed in range(6)]
        for y in outputs:
            assert np.isfinite(y).all() and np.abs(y).max() <= 1.0 and y.dtype == np.float32
        np.testing.assert_array_equal(outputs[0], augmenter(x, np.random.default_rng(0)))
        assert not np.array_equal(outputs[0], outputs[1])


_setup = tiny_model_with_mini_features


def test_augmented_batches_depend_only_on_seed_epoch_and_batch_index(sources):
    model, features = _setup()
    batches = AugmentedBatches(load_waveforms(features.utterances), features.targets, model.logmel, always(**sources), seed=3)
    first = batches.batch([0, 1], epoch=2, batch_index=5)
    batches.batch([2, 3], epoch=0, batch_index=0)  # nothing carries over between batches
    again = batches.batch([0, 1], epoch=2, batch_index=5)
    other = batches.batch([0, 1], epoch=2, batch_index=6)
    for a, b in zip(first, again):
        assert torch.equal(a, b)
    assert first[0].shape[-1] == 80 and torch.isfinite(first[0]).all()
    assert not (first[0].shape == other[0].shape and torch.equal(first[0], other[0]))


def test_resumed_augmented_run_ends_exactly_where_an_unbroken_run_ends(tmp_path, sources):
    config = TrainConfig(
        epochs=10, max_frames=400, learning_rate=1e-3, warmup_steps=3, checkpoint_every=2, log_every=1,
        dev_max_utterances=1, augment=always(**sources),
    )
    unbroken, features = _setup()
    fit(unbroken, features, features, dataclasses.replace(config, max_steps=7), tmp_path / "a")

    broken, _ = _setup()
    fit(broken, features, features, dataclasses.replace(config, max_steps=5), tmp_path / "b")  # stops mid-epoch
    resumed, _ = _setup(seed=123)
    state = fit(resumed, features, features, dataclasses.replace(config, max_steps=7), tmp_path / "b", resume=True)

    assert state.step == 7
    for name, tensor in unbroken.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    assert '"augment": {' in (tmp_path / "a" / "train_config.json").read_text()


def test_the_channel_preset_leaves_speed_voice_room_and_noise_alone(sources):
    x = load_audio(SPEECH)
    augmenter = Augmenter(preset("channel", **sources), speech=[x])
    outputs = [augmenter(x, np.random.default_rng(seed)) for seed in range(12)]
    assert all(len(y) == len(x) for y in outputs)  # no speed change
    # an utterance the channel stages skipped is the input at another level: no room, noise or warp
    untouched = [y for y in outputs if abs(np.corrcoef(x, y)[0, 1]) > 0.9999]
    assert 0 < len(untouched) < len(outputs)
