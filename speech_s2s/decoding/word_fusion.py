"""The word LM fused into beam search: scored at each word's end, the character LM looking ahead inside words.

A character LM scores a word letter by letter, so the search can prune with it before the word is
complete; a word n-gram knows which words follow which, but can only judge a word once it is spelt.
Used together (the multi-level LM of Hori et al., 2017): while a word is being spelt the character
LM counts in full; when it ends (a space, or <eos>), part of what the character LM gave the word
(its letters and the delimiter) is taken back and the word LM's log-probability of the word after
the two before it is added, and at <eos> that of the sentence's end too. A finished hypothesis so
scores `char_lm_share` x the character LM plus `word_lm_weight` x the word LM over its whole text,
the sum that the n-best re-ranking of commit c8e45f9 (2026-11-30) added after the search; inside the
search, the beam keeps what the word LM prefers instead of finding it only if it happened to survive.
Against the re-ranking (bundled model, beam 16, word LM weight 0.4): the real voice 55.13 -> 54.21 %
WER, dev-kokoro 20.29 -> 19.28, the other dev sets within noise (docs/history/decoding.md).

Without a character LM the word LM alone speaks at word ends, at its own weight.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from speech_s2s.decoding.options import DecodingOptions
from speech_s2s.decoding.search import LanguageModel
from speech_s2s.decoding.word_lm import BOS, EOS, WordNgramLM
from speech_s2s.text import EOS_ID, Vocabulary

CACHE_ENTRIES = 100_000  # cached word scores, at most


@dataclass(frozen=True)
class WordFusionWeights:
    """The word LM's weight, and the share of the search's character LM weight its whole words keep
    beside it (the two LMs know much the same; counting both fully over-trusts them)."""

    word_lm_weight: float = 0.4
    char_lm_share: float = 0.5


@dataclass(frozen=True)
class _State:
    char_lm: object | None  # the character LM's own state
    log_probs: torch.Tensor | None  # [N, V] what the last step returned before the word LM's part: the chosen token's is read next step
    histories: list[tuple[int, int]]  # the two words before the one being spelt (word LM ids)
    words: list[str]  # the word being spelt
    word_log_probs: list[float]  # the character LM's log-probability of its letters so far


class WordFusion:
    """A `search.LanguageModel` over the search's vocabulary: the character LM (or none) with the word
    LM at word ends. Built by `fuse_word_lm`, which also sets the decoding's weights to match."""

    def __init__(self, word_lm: WordNgramLM, vocabulary: Vocabulary, char_lm: LanguageModel | None, weights: WordFusionWeights,
                 search_lm_weight: float):
        """search_lm_weight: the weight beam search gives this LM (DecodingOptions.lm_weight); without
        `char_lm` it must be the word LM's weight."""
        if word_lm.config.order > 3:
            raise ValueError(f"word LM of order {word_lm.config.order}: fusion keeps two words of history")
        self.word_lm = word_lm
        self.char_lm = char_lm
        self.weights = weights
        # what the search's weight is multiplied by: the word LM's weight over it, and the share of
        # the character LM's word score taken back at the word's end
        self.word_scale = weights.word_lm_weight / search_lm_weight if char_lm is not None else 1.0
        self.char_take_back = 1.0 - weights.char_lm_share if char_lm is not None else 0.0
        self._space = vocabulary.tokens.index(" ")
        self._letters = [token if i > EOS_ID and i != self._space else "" for i, token in enumerate(vocabulary.tokens)]
        self._vocabulary_size = len(vocabulary)
        self._bos, self._eos = word_lm.word_id(BOS), word_lm.word_id(EOS)
        self._cache: dict[tuple[tuple[int, int], int], float] = {}  # beams share most histories and words

    def _word_log_prob(self, history: tuple[int, int], word: int) -> float:
        key = (history, word)
        value = self._cache.get(key)
        if value is None:
            # A server decodes for days with one fusion: the cache starts again when full, so its
            # memory stays bounded (a few MB) while one utterance's beams still share their lookups.
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            value = self._cache[key] = self.word_lm.log_prob(history, word)
        return value

    def initial_state(self, batch_size: int) -> _State:
        return _State(self.char_lm.initial_state(batch_size) if self.char_lm is not None else None, None,
                      [(self._bos, self._bos)] * batch_size, [""] * batch_size, [0.0] * batch_size)

    def select_state(self, state: _State, index: torch.Tensor) -> _State:
        rows = index.tolist()
        return _State(self.char_lm.select_state(state.char_lm, index) if self.char_lm is not None else None,
                      state.log_probs[index] if state.log_probs is not None else None,
                      [state.histories[r] for r in rows], [state.words[r] for r in rows], [state.word_log_probs[r] for r in rows])

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, state: _State) -> tuple[torch.Tensor, _State]:
        histories, words, word_log_probs = list(state.histories), list(state.words), list(state.word_log_probs)
        if state.log_probs is not None:  # the token each row chose last step joins its word, or ends it
            chosen = state.log_probs.gather(1, tokens[:, None])[:, 0].tolist()
            for row, token in enumerate(tokens.tolist()):
                if token == self._space:
                    if words[row]:
                        histories[row] = (histories[row][1], self.word_lm.word_id(words[row]))
                    words[row], word_log_probs[row] = "", 0.0
                elif self._letters[token]:
                    words[row] += self._letters[token]
                    word_log_probs[row] += chosen[row]
        if self.char_lm is not None:
            log_probs, char_state = self.char_lm.step(tokens, state.char_lm)
        else:
            log_probs, char_state = torch.zeros(tokens.shape[0], self._vocabulary_size, device=tokens.device), None
        at_space, at_end = self._word_ends(log_probs, histories, words, word_log_probs)
        fused = log_probs.clone()
        fused[:, self._space] += at_space.to(fused)
        fused[:, EOS_ID] += at_end.to(fused)
        return fused, _State(char_state, log_probs, histories, words, word_log_probs)

    def _word_ends(self, log_probs: torch.Tensor, histories: list[tuple[int, int]], words: list[str],
                   word_log_probs: list[float]) -> tuple[torch.Tensor, torch.Tensor]:
        """What a space and what <eos> add to each row, in units of the search's LM weight."""
        space_log_probs = log_probs[:, self._space].tolist()
        end_log_probs = log_probs[:, EOS_ID].tolist()
        at_space, at_end = [0.0] * len(words), [0.0] * len(words)
        for row, (history, word) in enumerate(zip(histories, words)):
            if word:
                word_id = self.word_lm.word_id(word)
                word_score = self._word_log_prob(history, word_id)
                at_space[row] = self.word_scale * word_score - self.char_take_back * (word_log_probs[row] + space_log_probs[row])
                end_score = word_score + self._word_log_prob((history[1], word_id), self._eos)
                at_end[row] = self.word_scale * end_score - self.char_take_back * (word_log_probs[row] + end_log_probs[row])
            else:  # nothing spelt since the last space (or at all): <eos> ends the sentence after the last word
                at_space[row] = -self.char_take_back * space_log_probs[row]  # a space after a space is no word; its share goes all the same
                at_end[row] = self.word_scale * self._word_log_prob(history, self._eos) - self.char_take_back * end_log_probs[row]
        return torch.tensor(at_space, dtype=torch.float64), torch.tensor(at_end, dtype=torch.float64)


def fuse_word_lm(word_lm: WordNgramLM, vocabulary: Vocabulary, options: DecodingOptions, char_lm: LanguageModel | None = None,
                 weights: WordFusionWeights = WordFusionWeights()) -> tuple[WordFusion, DecodingOptions]:
    """The language model beam search takes in place of `char_lm`, and `options` with the LM weights it
    needs: the character LM's weight kept (its words' share changes at their ends), or without a
    character LM the word LM's weight as the search's, with no internal LM subtracted (that is set
    against a character LM)."""
    if char_lm is None or options.lm_weight <= 0:
        char_lm, options = None, replace(options, lm_weight=weights.word_lm_weight, internal_lm_weight=0.0)
    return WordFusion(word_lm, vocabulary, char_lm, weights, options.lm_weight), options
