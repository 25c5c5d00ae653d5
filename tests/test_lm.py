import pytest
import torch

from speech_s2s.lm import CharLM, CharLMConfig, CharLMTrainConfig, load_lm, save_lm, train_char_lm

SENTENCES = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"]


@pytest.fixture(scope="module")
def trained() -> CharLM:
    return train_char_lm(SENTENCES, CharLMConfig(embedding_size=16, hidden_size=64, num_layers=1, dropout=0.0), CharLMTrainConfig(steps=150, batch_size=3, learning_rate=1e-2))


def test_learns_its_sentences(trained):
    assert trained.sentence_log_prob("the cat sat on the mat") > -5.0
    assert trained.sentence_log_prob("the cat sat on the mat") > trained.sentence_log_prob("tmhe at acs to eht tam") + 20


def test_step_equals_forward_over_the_sentence(trained):
    ids = [1] + trained.vocabulary.encode("the dog")
    logits, _ = trained(torch.tensor([ids]))
    state = trained.initial_state(1)
    for i, token in enumerate(ids):
        log_probs, state = trained.step(torch.tensor([token]), state)
        torch.testing.assert_close(log_probs[0], torch.log_softmax(logits[0, i], -1), rtol=1e-5, atol=1e-5)


def test_save_load_round_trip(trained, tmp_path):
    save_lm(trained, tmp_path / "lm.safetensors")
    loaded = load_lm(tmp_path / "lm.safetensors")
    assert loaded.config == trained.config
    assert loaded.sentence_log_prob("a cat") == pytest.approx(trained.sentence_log_prob("a cat"), abs=1e-5)


def test_foreign_file_is_refused(tmp_path):
    path = tmp_path / "lm.safetensors"
    path.write_text("hello")
    with pytest.raises(ValueError, match="not a safetensors language model"):
        load_lm(path)
