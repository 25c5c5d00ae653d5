import torch

from conftest import MINI_CORPUS, tiny_config
from speech_s2s.data import compute_features, feature_stats, read_librispeech
from speech_s2s.model import Seq2Seq, load_model
from speech_s2s.search import DecodingOptions, decode
from speech_s2s.training import BEST_MODEL, CHECKPOINT, LAST_MODEL, TrainConfig, fit
from speech_s2s.data import collate


def _setup(seed=0):
    torch.manual_seed(seed)
    model = Seq2Seq(tiny_config())
    features = compute_features(read_librispeech(MINI_CORPUS), model.logmel, model.vocabulary)
    model.normalizer.set_stats(*feature_stats(features.features))
    return model, features


def test_overfit_four_utterances_then_greedy_and_beam_decode_them_exactly(tmp_path):
    model, features = _setup()
    config = TrainConfig(
        epochs=400, max_frames=100000, learning_rate=3e-3, warmup_steps=1, decay="constant", spec_augment=None,
        checkpoint_every=1000, log_every=50, max_steps=150, dev_max_utterances=4,
    )
    # Stop as soon as greedy decoding is perfect: check every 10 epochs through max_steps.
    expected = [u.text.lower() for u in features.utterances]
    feats, lengths, _, _ = collate(features, list(range(4)))
    for budget in range(10, 151, 10):
        fit(model, features, features, TrainConfig(**{**config.__dict__, "max_steps": budget}), tmp_path, resume=True)
        if [r.text for r in decode(model.eval(), feats, lengths, DecodingOptions())] == expected:
            break
    assert [r.text for r in decode(model, feats, lengths, DecodingOptions(beam_size=1))] == expected
    assert [r.text for r in decode(model, feats, lengths, DecodingOptions(beam_size=4))] == expected
    assert (tmp_path / "learning_curve.png").stat().st_size > 0
    reloaded = load_model(tmp_path / LAST_MODEL)
    assert [r.text for r in decode(reloaded, feats, lengths, DecodingOptions(beam_size=4))] == expected
    assert (tmp_path / BEST_MODEL).is_file()


def test_resumed_run_ends_exactly_where_an_unbroken_run_ends(tmp_path):
    # SpecAugment, dropout and scheduled sampling all draw random numbers, so all RNG state must resume too.
    config = TrainConfig(
        epochs=10, max_frames=400, learning_rate=1e-3, warmup_steps=3, checkpoint_every=2, log_every=1,
        sampling_probability=0.2, dev_max_utterances=2,
    )
    unbroken, features = _setup()
    fit(unbroken, features, features, TrainConfig(**{**config.__dict__, "max_steps": 7}), tmp_path / "a")

    broken, _ = _setup()
    fit(broken, features, features, TrainConfig(**{**config.__dict__, "max_steps": 4}), tmp_path / "b")
    resumed, _ = _setup(seed=123)  # fresh process state: a different seed must not matter
    state = fit(resumed, features, features, TrainConfig(**{**config.__dict__, "max_steps": 7}), tmp_path / "b", resume=True)

    assert state.step == 7
    for name, tensor in unbroken.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    assert (tmp_path / "b" / CHECKPOINT).is_file() and not (tmp_path / "b" / (CHECKPOINT + ".tmp")).exists()
