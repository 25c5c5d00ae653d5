import dataclasses
import json
import math

import pytest
import torch
from safetensors import safe_open

from speech_s2s.cli.main import main
from speech_s2s.decoding.char_lm import (
    CharLM,
    CharLMConfig,
    CharLMTrainConfig,
    LMError,
    bits_per_character,
    check_vocabulary,
    load_lm,
    save_lm,
    split_held_out,
    train_char_lm,
)
from speech_s2s.text import Vocabulary

SENTENCES = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog"]


@pytest.fixture(scope="module")
def trained() -> CharLM:
    return train_char_lm(SENTENCES, CharLMConfig(embedding_size=16, hidden_size=64, num_layers=1, dropout=0.0), CharLMTrainConfig(steps=150,
        batch_size=3, learning_rate=1e-2))


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


def test_bits_per_character_is_the_mean_negative_log2_probability_of_each_token(trained):
    texts = ["the cat sat", "a dog and a very long log"]
    tokens = sum(len(trained.vocabulary.encode(t)) + 1 for t in texts)  # each character and the sentence's end
    expected = -sum(trained.sentence_log_prob(t) for t in texts) / tokens / math.log(2)
    assert bits_per_character(trained, texts, batch_size=1) == pytest.approx(expected, rel=1e-5)
    assert bits_per_character(trained, texts) == pytest.approx(expected, rel=1e-5)  # padding in a batch changes nothing


def test_training_from_an_lm_goes_on_from_its_weights(trained):
    before = bits_per_character(trained, SENTENCES)
    copy = CharLM(trained.config)
    copy.load_state_dict(trained.state_dict())
    tiny_step = CharLMTrainConfig(steps=1, batch_size=3, learning_rate=1e-6)
    continued = train_char_lm(SENTENCES, CharLMConfig(hidden_size=8, num_layers=1), tiny_step, init=copy)
    assert continued.config == trained.config  # the shape is the init's, not the config's
    assert bits_per_character(continued, SENTENCES) == pytest.approx(before, rel=1e-3)
    fresh = train_char_lm(SENTENCES, trained.config, tiny_step)
    assert bits_per_character(fresh, SENTENCES) > before + 2  # a fresh LM knows nothing yet


def test_held_out_sentences_are_the_same_every_run_and_never_trained_on():
    texts = [f"sentence {i}" for i in range(50)]
    train, held_out = split_held_out(texts, 10)
    assert len(held_out) == 10 and sorted(train + held_out) == sorted(texts) and not set(train) & set(held_out)
    assert split_held_out(texts, 10) == (train, held_out)
    assert split_held_out(texts, 0) == (texts, [])


def test_train_lm_reports_held_out_bits_and_refuses_a_shape_with_init(trained, tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("\n".join(SENTENCES * 4) + "\n")
    save_lm(trained, tmp_path / "init.safetensors")
    assert main(["train-lm", "--text", str(text), "--out", str(tmp_path / "lm.safetensors"), "--init", str(tmp_path / "init.safetensors"),
                 "--steps", "2", "--batch-size", "2", "--held-out", "3", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert " trained on 9 sentences; 3 held-out sentences: " in out and "bits/char before, " in out
    assert load_lm(tmp_path / "lm.safetensors").config == trained.config
    assert main(["train-lm", "--text", str(text), "--out", str(tmp_path / "x.safetensors"), "--init", str(tmp_path / "init.safetensors"), "--hidden",
        "32"]) == 1
    assert capsys.readouterr().err.strip() == "speech-s2s: error: --init takes the LM's shape from LM; drop --hidden/--layers"
    assert main(["train-lm", "--text", str(text), "--out", str(tmp_path / "x.safetensors"), "--held-out", "12"]) == 1
    assert capsys.readouterr().err.strip() == "speech-s2s: error: --held-out 12: the text has only 12 sentences"
    assert main(["train-lm", "--text", str(text), "--out", str(tmp_path / "x.safetensors"), "--held-out", "-1"]) == 1
    assert capsys.readouterr().err.strip() == "speech-s2s: error: --held-out -1: a number of sentences, 0 or more"


def test_save_load_round_trip(trained, tmp_path):
    """The file holds the weights rounded to float16, and loading gives exactly those back in float32."""
    save_lm(trained, tmp_path / "lm.safetensors")
    loaded = load_lm(tmp_path / "lm.safetensors")
    assert loaded.config == trained.config
    for name, weight in trained.state_dict().items():
        assert loaded.state_dict()[name].dtype == torch.float32
        assert torch.equal(loaded.state_dict()[name], weight.to(torch.float16).float()), name
    assert loaded.sentence_log_prob("a cat") == pytest.approx(trained.sentence_log_prob("a cat"), abs=1e-3)


def test_foreign_file_is_refused(tmp_path):
    path = tmp_path / "lm.safetensors"
    path.write_text("hello")
    with pytest.raises(ValueError, match="not a safetensors language model"):
        load_lm(path)


def _tiny_lm(**overrides) -> CharLM:
    torch.manual_seed(0)
    return CharLM(CharLMConfig(**{"embedding_size": 8, "hidden_size": 16, "num_layers": 1, "dropout": 0.0, **overrides})).eval()


@pytest.mark.parametrize("metadata", [{"format": "speech_s2s_char_lm"}, {"format": "speech_s2s_char_lm", "config": "{oops"},
    {"format": "speech_s2s_char_lm", "config": '{"bogus": 1}'}, {"format": "speech_s2s_char_lm", "config": '{"hidden_size": "big"}'}])
def test_lm_file_with_missing_or_broken_config_is_one_line_error(tmp_path, metadata):
    from safetensors.torch import save_file

    path = tmp_path / "lm.safetensors"
    save_file({k: v.contiguous() for k, v in _tiny_lm().state_dict().items()}, str(path), metadata=metadata)
    with pytest.raises(LMError, match=f"^{path}: ") as caught:
        load_lm(path)
    assert "\n" not in str(caught.value)


def test_recognition_model_or_missing_file_is_not_taken_for_an_lm(tmp_path):
    from conftest import tiny_config

    from speech_s2s.model.files import save_model
    from speech_s2s.model.seq2seq import Seq2Seq

    save_model(Seq2Seq(tiny_config()), tmp_path / "model.safetensors")
    with pytest.raises(LMError, match=f"{tmp_path / 'model.safetensors'}: a speech_s2s recognition model, not a language model"):
        load_lm(tmp_path / "model.safetensors")
    with pytest.raises(LMError, match=f"{tmp_path / 'none.safetensors'}: no such language model file"):
        load_lm(tmp_path / "none.safetensors")


def test_lm_weights_of_another_shape_name_the_tensor(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "lm.safetensors"
    save_lm(_tiny_lm(), path)
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    metadata["config"] = metadata["config"].replace('"hidden_size": 16', '"hidden_size": 32')
    save_file({k: v.contiguous() for k, v in _tiny_lm().state_dict().items()}, str(path), metadata=metadata)
    with pytest.raises(LMError, match=r"lstm.bias_hh_l0 has shape \[64\] in the file; the config needs \[128\]"):
        load_lm(path)


def test_vocabulary_check_names_the_lm_and_the_difference(tmp_path):
    model_vocabulary = Vocabulary()
    save_lm(_tiny_lm(), tmp_path / "same.safetensors")
    assert load_lm(tmp_path / "same.safetensors", vocabulary=model_vocabulary).vocabulary == model_vocabulary
    save_lm(_tiny_lm(vocabulary=model_vocabulary.tokens + ("-",)), tmp_path / "dash.safetensors")
    with pytest.raises(LMError, match=f"{tmp_path / 'dash.safetensors'}: vocabulary differs from the model's: .*'-'"):
        load_lm(tmp_path / "dash.safetensors", vocabulary=model_vocabulary)
    swapped = list(model_vocabulary.tokens)
    swapped[2], swapped[3] = swapped[3], swapped[2]
    lm = _tiny_lm(vocabulary=tuple(swapped))
    with pytest.raises(LMError, match="in another order"):
        check_vocabulary(lm, model_vocabulary, "x.safetensors")


def test_lm_file_without_a_stored_vocabulary_is_assumed_to_use_the_default(tmp_path):
    from safetensors.torch import save_file

    lm = _tiny_lm()
    config = {k: v for k, v in json.loads(json.dumps(dataclasses.asdict(lm.config))).items() if k != "vocabulary"}
    path = tmp_path / "old.safetensors"
    save_file({k: v.contiguous() for k, v in lm.state_dict().items()}, str(path), metadata={"format": "speech_s2s_char_lm", "config": json.dumps(config)})
    check_vocabulary(load_lm(path), Vocabulary(), path)


class _Clock:
    """time.monotonic for lm.py that advances one second per call: a run stops after a known amount of work."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_a_stopped_lm_training_resumes_exactly(tmp_path, monkeypatch):
    import speech_s2s.decoding.char_lm as lm

    config = CharLMConfig(embedding_size=8, hidden_size=16, num_layers=2, dropout=0.2)  # dropout: the torch random state matters too
    train = CharLMTrainConfig(steps=30, batch_size=2, learning_rate=1e-2)
    unbroken = train_char_lm(SENTENCES, config, train)

    monkeypatch.setattr(lm.time, "monotonic", _Clock())
    checkpoint = tmp_path / "lm.checkpoint"
    stopped = lm.LMCheckpointing(checkpoint, max_minutes=25 / 60, every_s=7)  # about a dozen updates, saving every few
    train_char_lm(SENTENCES, config, train, checkpointing=stopped)
    done = lm.lm_checkpoint_step(checkpoint)
    assert 0 < done < train.steps
    resumed = train_char_lm(SENTENCES, config, train, checkpointing=lm.LMCheckpointing(checkpoint, resume=True))
    assert lm.lm_checkpoint_step(checkpoint) == train.steps
    for name, tensor in unbroken.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[name]), name

    with pytest.raises(lm.LMResumeError, match="saved with another text, LM shape or training settings"):
        train_char_lm(SENTENCES[:2], config, train, checkpointing=lm.LMCheckpointing(checkpoint, resume=True))
    (tmp_path / "junk.checkpoint").write_bytes(b"not a checkpoint")
    with pytest.raises(lm.LMResumeError, match="junk.checkpoint: not a language-model checkpoint"):
        train_char_lm(SENTENCES, config, train, checkpointing=lm.LMCheckpointing(tmp_path / "junk.checkpoint", resume=True))


def test_train_lm_stops_at_max_minutes_and_resume_finishes_and_writes_the_lm(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("\n".join(SENTENCES * 4) + "\n")
    out = tmp_path / "lm.safetensors"
    command = ["train-lm", "--text", str(text), "--out", str(out), "--steps", "3", "--batch-size", "2", "--hidden", "8", "--layers", "1",
               "--held-out", "2", "--threads", "1"]
    assert main(command + ["--max-minutes", "0"]) == 0
    assert capsys.readouterr().out.strip() == f"{out}.checkpoint: stopped after 0 of 3 updates; the same command with --resume goes on"
    assert not out.exists()
    assert main(command) == 1  # a checkpoint is never overwritten by accident
    assert capsys.readouterr().err.strip() == (f"speech-s2s: error: {out}.checkpoint exists (a run that stopped early): "
                                               "--resume goes on from it; delete it to start over")
    assert main(command + ["--resume"]) == 0
    assert " trained on 10 sentences; 2 held-out sentences: " in capsys.readouterr().out
    assert load_lm(out).config.hidden_size == 8 and not (tmp_path / "lm.safetensors.checkpoint").exists()
