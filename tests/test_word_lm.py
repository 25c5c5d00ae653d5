"""The word n-gram LM: Kneser-Ney estimates and its file (its use in the search: test_word_fusion.py)."""

import math

import numpy as np
import pytest
import torch

from speech_s2s.cli.main import main
from speech_s2s.decoding.word_lm import (
    BOS,
    WordLMConfig,
    WordLMError,
    estimate_word_lm,
    load_word_lm,
    perplexity,
    save_word_lm,
)

TEXT = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "the cat ran", "on the mat the cat sat",
        "the the cat", "the cat sat", "the cat sat", "a dog ran on the log"]


def _total(lm, history: tuple[str, ...]) -> float:
    ids = tuple(lm._index.get(word, 0) for word in history)[len(history) - (lm.config.order - 1):] if lm.config.order > 1 else ()
    return sum(math.exp(lm.log_prob(ids, word)) for word in range(len(lm.words)) if lm.words[word] != BOS)


@pytest.mark.parametrize("order, min_count", [(1, 1), (2, 1), (2, 2), (3, 1), (3, 2), (3, 3)])
def test_every_distribution_sums_to_one_with_and_without_pruning(order, min_count):
    """Pruned n-grams' mass goes to the back-off weight, so pruning never leaks probability."""
    lm = estimate_word_lm(TEXT, WordLMConfig(order, min_count))
    for history in [(BOS, BOS), ("on", "the"), ("cat", "sat"), ("never", "seen"), ("the", "zebra"), (BOS, "the")]:
        assert _total(lm, history) == pytest.approx(1.0, abs=1e-5), history


def test_unigram_estimates_are_the_discounted_counts_plus_a_uniform_floor():
    """Worked by hand: counts a 2, b 1, </s> 2 (total 5); D = n1 / (n1 + 2 n2) = 1 / 5; the floor
    D x 3 types / 5 / 4 predictable words (<unk>, </s>, a, b) = 0.03."""
    lm = estimate_word_lm(["a b", "a"], WordLMConfig(order=1))
    assert lm.sentence_log_prob("a b") == pytest.approx(math.log(0.39) + math.log(0.19) + math.log(0.39), rel=1e-6)
    assert lm.sentence_log_prob("zebra") == pytest.approx(math.log(0.03) + math.log(0.39), rel=1e-6)  # unknown: the floor
    assert lm.sentence_log_prob("A  B") == lm.sentence_log_prob("a b")  # case and spacing are folded


def test_the_trigram_knows_word_order_the_unigram_cannot():
    trigram = estimate_word_lm(TEXT, WordLMConfig(order=3, min_count=1))
    unigram = estimate_word_lm(TEXT, WordLMConfig(order=1))
    assert trigram.sentence_log_prob("the cat sat on the mat") > trigram.sentence_log_prob("mat the on sat cat the") + 5
    assert unigram.sentence_log_prob("the cat sat on the mat") == pytest.approx(unigram.sentence_log_prob("mat the on sat cat the"))
    assert perplexity(trigram, ["the cat sat on the log"]) < perplexity(unigram, ["the cat sat on the log"])


def test_a_saved_lm_loads_to_the_same_estimates_at_float16_precision(tmp_path):
    lm = estimate_word_lm(TEXT, WordLMConfig(order=3, min_count=2))
    save_word_lm(lm, tmp_path / "w.safetensors")
    loaded = load_word_lm(tmp_path / "w.safetensors")
    assert loaded.config == lm.config and loaded.words == lm.words
    for name, table in lm.tables.items():
        if name.endswith(".keys"):
            assert np.array_equal(loaded.tables[name], table), name
        else:  # float16 keeps 11 significant bits
            assert np.allclose(loaded.tables[name], table, rtol=2 ** -11, atol=0), name
    for sentence in TEXT + ["a zebra sat on the cat", ""]:
        assert loaded.sentence_log_prob(sentence) == pytest.approx(lm.sentence_log_prob(sentence), rel=1e-3)
    save_word_lm(loaded, tmp_path / "again.safetensors")  # float16 values survive a second round trip exactly
    again = load_word_lm(tmp_path / "again.safetensors")
    assert all(np.array_equal(again.tables[name], table) for name, table in loaded.tables.items())


def test_missing_foreign_and_damaged_files_are_one_line_errors(tmp_path):
    from safetensors.torch import save_file

    with pytest.raises(WordLMError, match="no such word LM file"):
        load_word_lm(tmp_path / "none.safetensors")
    save_file({"x": torch.zeros(2)}, str(tmp_path / "model.safetensors"), metadata={"format": "speech_s2s.model"})
    with pytest.raises(WordLMError, match=r"model.safetensors: not a speech_s2s word LM \(format 'speech_s2s.model'\)"):
        load_word_lm(tmp_path / "model.safetensors")
    save_word_lm(estimate_word_lm(TEXT), tmp_path / "w.safetensors")
    (tmp_path / "cut.safetensors").write_bytes((tmp_path / "w.safetensors").read_bytes()[:300])
    with pytest.raises(WordLMError) as error:
        load_word_lm(tmp_path / "cut.safetensors")
    assert str(error.value).startswith(f"{tmp_path / 'cut.safetensors'}: unreadable word LM") and "\n" not in str(error.value)


def test_train_word_lm_writes_an_lm_and_reports_held_out_perplexity(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("\n".join(TEXT * 3) + "\n")
    out = tmp_path / "w.safetensors"
    assert main(["train-word-lm", "--text", str(text), "--out", str(out), "--held-out", "2", "--min-count", "1"]) == 0
    printed = capsys.readouterr().out
    assert printed == f"{out}: 10 words, 26 2-grams, 32 3-grams from 25 sentences; 2 held-out sentences: perplexity 1.9\n"
    assert load_word_lm(out).config == WordLMConfig(order=3, min_count=1)
    assert main(["train-word-lm", "--text", str(text), "--out", str(out), "--held-out", "27"]) == 1
    assert capsys.readouterr().err == "speech-s2s: error: --held-out 27: from 0 to 26 (the text has 27 sentences)\n"


def test_keys_pack_each_word_id_apart():
    from speech_s2s.decoding.word_lm import _ID_BITS, _key

    biggest = 2 ** _ID_BITS - 1
    keys = {_key(ids) for ids in [(1, 2), (2, 1), (biggest, 0), (0, biggest), (biggest, biggest, biggest)]}
    assert len(keys) == 5 and max(keys) <= np.iinfo(np.int64).max  # fits the stored int64 keys


@pytest.mark.parametrize("sentences, config, message", [
    ([], WordLMConfig(), "no sentences to estimate a word LM from"),
    (TEXT, WordLMConfig(order=4), "order 4: 1, 2 or 3"),
    (TEXT, WordLMConfig(min_count=0), "min_count 0: 1 or more"),
])
def test_what_cannot_be_estimated_is_refused(sentences, config, message):
    with pytest.raises(ValueError, match=message):
        estimate_word_lm(sentences, config)
