"""The word LM inside beam search: what a finished hypothesis's LM score adds up to, however the beam reorders."""

import pytest
import torch

from speech_s2s.decoding.char_lm import CharLM, CharLMConfig
from speech_s2s.decoding.options import DecodingOptions
from speech_s2s.decoding.search import decode_encoded
from speech_s2s.decoding.word_fusion import WordFusionWeights, fuse_word_lm
from speech_s2s.decoding.word_lm import WordLMConfig, estimate_word_lm
from speech_s2s.text import EOS_ID, Vocabulary

TEXT = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "the cat ran", "on the mat the cat sat"]
VOCABULARY = Vocabulary()


@pytest.fixture(scope="module")
def word_lm():
    return estimate_word_lm(TEXT, WordLMConfig(order=3, min_count=1))


@pytest.fixture(scope="module")
def char_lm():
    torch.manual_seed(0)
    return CharLM(CharLMConfig(embedding_size=8, hidden_size=16, num_layers=1)).eval()


def _char_log_prob(char_lm, tokens: list[int]) -> float:
    """log P(tokens, <eos>) under the character LM, token by token (spaces where they are, not squeezed)."""
    with torch.no_grad():
        logits, _ = char_lm(torch.tensor([[EOS_ID] + tokens]))
    return float(torch.log_softmax(logits[0], -1).gather(1, torch.tensor(tokens + [EOS_ID])[:, None]).sum())


def _fused_total(fusion, rows: list[list[int]], swap_at: int | None = None) -> list[float]:
    """Step the fused LM along each row's tokens then <eos>, summing what it gives the chosen token;
    at step `swap_at` the rows change places (as beam search reorders them) and change back after."""
    length = max(len(r) for r in rows)
    assert all(len(r) == length for r in rows)
    state = fusion.initial_state(len(rows))
    last = torch.full((len(rows),), EOS_ID)
    totals = [0.0] * len(rows)
    order = list(range(len(rows)))
    for step in range(length + 1):
        log_probs, state = fusion.step(last, state)
        chosen = [rows[order[i]][step] if step < length else EOS_ID for i in range(len(rows))]
        for i, token in enumerate(chosen):
            totals[order[i]] += float(log_probs[i, token])
        index = torch.arange(len(rows))
        if step == swap_at:
            index = index.flip(0)
            order = [order[i] for i in index.tolist()]
        state = fusion.select_state(state, index)
        last = torch.tensor([rows[order[i]][step] if step < length else EOS_ID for i in range(len(rows))])
    return totals


@pytest.mark.parametrize("weights", [WordFusionWeights(0.5, 0.5), WordFusionWeights(0.8, 0.25), WordFusionWeights(0.0, 1.0)])
def test_a_finished_sentence_scores_a_share_of_the_character_lm_plus_the_word_lm(word_lm, char_lm, weights):
    lm_weight = 0.4
    fusion, options = fuse_word_lm(word_lm, VOCABULARY, DecodingOptions(beam_size=4, lm_weight=lm_weight, internal_lm_weight=0.1),
                                   char_lm, weights)
    assert (options.lm_weight, options.internal_lm_weight) == (lm_weight, 0.1)  # a character LM keeps its weights
    # same length, so they step together: a known sentence, one with an unknown word, one spelt with a double space
    texts = ["the cat sat", "zebra on it", "a  dog ran "]
    rows = [VOCABULARY.encode(t) if "  " not in t else [VOCABULARY.tokens.index(c) for c in t] for t in texts]
    for swap_at in (None, 4):
        totals = _fused_total(fusion, rows, swap_at)
        for text, tokens, total in zip(texts, rows, totals):
            expected = weights.char_lm_share * lm_weight * _char_log_prob(char_lm, tokens) + weights.word_lm_weight * word_lm.sentence_log_prob(text)
            assert lm_weight * total == pytest.approx(expected, abs=1e-4), (text, swap_at)


def test_without_a_character_lm_the_word_lm_alone_scores_at_its_own_weight(word_lm):
    fusion, options = fuse_word_lm(word_lm, VOCABULARY, DecodingOptions(beam_size=4, lm_weight=0.0, internal_lm_weight=0.15),
                                   None, WordFusionWeights(0.7, 0.5))
    assert (options.lm_weight, options.internal_lm_weight) == (0.7, 0.0)  # no internal LM without the character LM it is set against
    text = "the dog sat on the log"
    total = _fused_total(fusion, [VOCABULARY.encode(text)])[0]
    assert options.lm_weight * total == pytest.approx(0.7 * word_lm.sentence_log_prob(text), abs=1e-4)
    # inside a word nothing is said: only spaces and <eos> carry scores
    log_probs, _ = fusion.step(torch.tensor([EOS_ID]), fusion.initial_state(1))
    letters = [i for i, token in enumerate(VOCABULARY.tokens) if token.isalpha()]
    assert torch.all(log_probs[0, letters] == 0)


def test_beam_search_hypotheses_carry_the_fused_score_of_their_own_tokens(word_lm, char_lm):
    """Through the real search (rows reordered, utterances leaving the batch), each finished
    hypothesis's LM score is the fusion's total over its own tokens."""
    from conftest import tiny_config

    from speech_s2s.model.seq2seq import Seq2Seq

    torch.manual_seed(0)
    model = Seq2Seq(tiny_config()).eval()
    feats, lengths = torch.randn(3, 80, 80), torch.tensor([80, 64, 40])
    weights = WordFusionWeights(0.5, 0.5)
    fusion, options = fuse_word_lm(word_lm, VOCABULARY, DecodingOptions(beam_size=4, lm_weight=0.5, stop_on_ctc_silence=False), char_lm, weights)
    with torch.no_grad():
        results = decode_encoded(model, model.encode(feats, lengths), options, fusion)
    checked = 0
    for result in results:
        for hypothesis in result.hypotheses[:3]:
            text = " ".join("".join(VOCABULARY.tokens[t] for t in hypothesis.tokens).split())
            expected = 0.5 * 0.5 * _char_log_prob(char_lm, hypothesis.tokens) + 0.5 * word_lm.sentence_log_prob(text)
            assert 0.5 * hypothesis.lm_score == pytest.approx(expected, abs=1e-3)
            checked += 1
    assert checked >= 6
    plain = decode_encoded(model, model.encode(feats, lengths), options, char_lm)
    assert [r.hypotheses[0].lm_score for r in plain] != [r.hypotheses[0].lm_score for r in results]  # the word LM took part
