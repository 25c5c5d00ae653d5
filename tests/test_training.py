import pytest
import torch
from conftest import tiny_model_with_mini_features

from speech_s2s.data.batches import collate
from speech_s2s.decoding.options import DecodingOptions
from speech_s2s.decoding.search import decode
from speech_s2s.model.encoder import ChunkConfig
from speech_s2s.model.files import load_model
from speech_s2s.training.loop import (
    BEST_MODEL,
    CHECKPOINT,
    LAST_MODEL,
    TrainConfig,
    chunk_for_step,
    fit,
)

_setup = tiny_model_with_mini_features


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
        if [r.text for r in decode(model.eval(), feats, lengths, DecodingOptions(beam_size=1))] == expected:
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
    assert (tmp_path / "b" / CHECKPOINT).is_file() and not list((tmp_path / "b").glob("*.tmp*"))


def test_dynamic_chunk_draws_depend_on_seed_and_step_only():
    config = TrainConfig(chunk_sizes=(8, 16, 32), chunk_right_contexts=(0, 16), full_context_probability=0.4)
    draws = [chunk_for_step(config, step) for step in range(200)]
    assert draws == [chunk_for_step(config, step) for step in range(200)]
    assert 0.25 < sum(d is None for d in draws) / len(draws) < 0.55
    assert {d.chunk_frames for d in draws if d} == {8, 16, 32} and {d.right_context_frames for d in draws if d} == {0, 16}
    assert draws != [chunk_for_step(TrainConfig(**{**config.__dict__, "seed": 1}), step) for step in range(200)]
    assert chunk_for_step(TrainConfig(), 0) is None  # no chunk sizes: always full context


def test_dynamic_chunk_training_resumes_exactly_and_decodes_chunked(tmp_path):
    config = TrainConfig(
        epochs=10, max_frames=400, learning_rate=1e-3, warmup_steps=3, checkpoint_every=2, log_every=1, dev_max_utterances=2,
        chunk_sizes=(8, 16, 32), chunk_right_contexts=(0, 8), full_context_probability=0.3,
    )
    assert any(chunk_for_step(config, step) for step in range(7)) and any(chunk_for_step(config, step) is None for step in range(7))
    unbroken, features = _setup()
    fit(unbroken, features, features, TrainConfig(**{**config.__dict__, "max_steps": 7}), tmp_path / "a")
    broken, _ = _setup()
    fit(broken, features, features, TrainConfig(**{**config.__dict__, "max_steps": 3}), tmp_path / "b")
    resumed, _ = _setup(seed=123)
    assert fit(resumed, features, features, TrainConfig(**{**config.__dict__, "max_steps": 7}), tmp_path / "b", resume=True).step == 7
    for name, tensor in unbroken.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name
    feats, lengths, _, _ = collate(features, list(range(4)))
    results = decode(resumed, feats, lengths, DecodingOptions(beam_size=1, chunk=ChunkConfig(16, 8)))
    assert len(results) == 4


def test_chunk_sizes_the_encoder_cannot_take_fail_before_training(tmp_path):
    model, features = _setup()
    with pytest.raises(ValueError, match="multiples of 8"):
        fit(model, features, features, TrainConfig(chunk_sizes=(12,), max_steps=1), tmp_path)
