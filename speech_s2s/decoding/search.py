"""Decoding: batched greedy search and joint CTC/attention beam search (Watanabe et al., 2017).

The searchers talk to the model through three things only: `encode`, the decoder's `step` with a
reorderable state, and the CTC log-probabilities. T frames, V vocabulary, N live hypotheses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Protocol

import torch

from speech_s2s.decoding.ctc_prefix import BatchCTCPrefixScorer, CTCPrefixScorer
from speech_s2s.decoding.options import GREEDY, DecodingOptions
from speech_s2s.machine import second_thread
from speech_s2s.model.decoder import (
    DecoderState,
    InternalLanguageModel,
    Memory,
    ProjectedDecoder,
)
from speech_s2s.model.encoder import EncoderOutput
from speech_s2s.model.seq2seq import Seq2Seq
from speech_s2s.text import BLANK_ID, EOS_ID

NEG_INF = float("-inf")

# Beam search steps the language models on a second thread while this one steps the decoder: both
# read only the last tokens and meet in the joint score, so on two free cores a step costs about the
# longer of the two instead of their sum (beam 16, both LMs, 80 dev utterances: 509 -> 432 ms
# median per utterance, the same text).


def _step_without_grad(lm: LanguageModel, tokens: torch.Tensor, state: object) -> tuple[torch.Tensor, object]:
    with torch.no_grad():  # autograd's mode is per thread: the search's no_grad does not reach this one
        return lm.step(tokens, state)


@dataclass
class Hypothesis:
    tokens: list[int]
    score: float  # the joint score the search ranks by
    attention_score: float = 0.0
    ctc_score: float = 0.0
    lm_score: float = 0.0
    internal_lm_score: float = 0.0


@dataclass
class DecodingResult:
    tokens: list[int]
    text: str
    score: float
    hypotheses: list[Hypothesis] = field(default_factory=list, repr=False)


class LanguageModel(Protocol):
    """What shallow fusion needs from a language model over the same vocabulary."""

    def initial_state(self, batch_size: int) -> object: ...

    def step(self, tokens: torch.Tensor, state: object) -> tuple[torch.Tensor, object]: ...

    def select_state(self, state: object, index: torch.Tensor) -> object: ...


def _ctc_best_path(ctc_log_probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CTC's best path over these frames ([T, V]), and which of its frames emit a token (neither blank nor a repeat)."""
    best = ctc_log_probs.argmax(-1)
    changes = torch.ones_like(best, dtype=torch.bool)
    changes[1:] = best[1:] != best[:-1]
    return best, (best != BLANK_ID) & changes


def ctc_greedy_tokens(ctc_log_probs: torch.Tensor) -> list[int]:
    """The tokens of CTC's best path over these frames ([T, V]), repeats and blanks collapsed."""
    best, emits = _ctc_best_path(ctc_log_probs)
    return best[emits].tolist()


def ctc_greedy_length(ctc_log_probs: torch.Tensor) -> int:
    """Number of tokens in CTC's best path over these frames ([T, V]), after collapsing repeats and blanks."""
    return int(_ctc_best_path(ctc_log_probs)[1].sum())


def ctc_is_silent(ctc_log_probs: torch.Tensor, length: int) -> bool:
    """True when CTC's best path over the first `length` frames is all blank."""
    return ctc_greedy_length(ctc_log_probs[:length]) == 0


# Slack on top of the CTC-length rule, so short outputs are never cut by CTC's small errors.
CTC_LENGTH_MARGIN = 5


def min_output_tokens(ctc_tokens: int, options: DecodingOptions) -> int:
    """<eos> is refused before this many tokens: a share of CTC's greedy length, less the slack."""
    return max(0, math.ceil(options.min_tokens_per_ctc_token * ctc_tokens) - CTC_LENGTH_MARGIN)


def max_output_tokens(ctc_frames: int, ctc_tokens: int, options: DecodingOptions) -> int:
    """Length cap for one utterance's output, from its CTC frame count and `ctc_greedy_length`."""
    limit = math.ceil(ctc_frames * options.max_tokens_per_ctc_frame)
    if options.max_tokens_per_ctc_token:
        limit = min(limit, math.ceil(options.max_tokens_per_ctc_token * ctc_tokens) + CTC_LENGTH_MARGIN)
    return max(1, limit)


@torch.no_grad()
def greedy_search(model: Seq2Seq, encoded: EncoderOutput, options: DecodingOptions = GREEDY) -> list[list[int]]:
    """Batched attention greedy search: the most likely token each step until <eos> or the length cap."""
    return _greedy(model, model.prepare_memory(encoded), model.ctc_log_probs(encoded), encoded.ctc_lengths, options)[0]


def _greedy(model: Seq2Seq, memory: Memory, ctc_log_probs: torch.Tensor, ctc_lengths: torch.Tensor,
            options: DecodingOptions) -> tuple[list[list[int]], list[int], list[int]]:
    """`greedy_search` on a prepared memory and its CTC log-probabilities; also returns, per utterance,
    the length of CTC's greedy transcript and the length cap, which `decode_encoded`'s fallback reads."""
    batch = memory.values.shape[0]
    frames = [int(n) for n in ctc_lengths]
    ctc_tokens = [ctc_greedy_length(ctc_log_probs[b, : frames[b]]) for b in range(batch)]
    limits = [max_output_tokens(frames[b], ctc_tokens[b], options) for b in range(batch)]
    finished = torch.zeros(batch, dtype=torch.bool)
    if options.stop_on_ctc_silence:  # CTC's best path is all blank
        finished |= torch.tensor([n == 0 for n in ctc_tokens])
    tokens = torch.full((batch,), EOS_ID, dtype=torch.long, device=memory.values.device)
    decoder = ProjectedDecoder(model.decoder, memory)
    state = decoder.initial_state()
    outputs: list[list[int]] = [[] for _ in range(batch)]
    for step in range(max(limits)):
        if bool(finished.all()):
            break
        logits, state = decoder.step(tokens, state)
        logits[:, BLANK_ID] = NEG_INF
        tokens = logits.argmax(dim=1)
        for b in range(batch):
            if finished[b]:
                continue
            if int(tokens[b]) == EOS_ID or step >= limits[b]:
                finished[b] = True
            else:
                outputs[b].append(int(tokens[b]))
    return outputs, ctc_tokens, limits


@torch.no_grad()
def beam_search_batch(
    model: Seq2Seq,
    memory: Memory,
    ctc_log_probs: torch.Tensor,
    ctc_lengths: torch.Tensor,
    options: DecodingOptions,
    lm: LanguageModel | None = None,
) -> list[list[Hypothesis]]:
    """Joint CTC/attention beam search for a batch of utterances at once: one decoder step per output
    token for all B x beam hypotheses (rows b * beam + k), one top-k per utterance over its beam x C
    candidate scores. An utterance whose search is over leaves the batch, so later steps cost only
    what is still searched. The same search as `beam_search_one` (same end-of-sentence rules, same
    pruning); with `ctc_candidates` at least the vocabulary size, the same results. memory has batch
    B, ctc_log_probs is [B, T, V] with frame counts ctc_lengths [B]. Returns each utterance's
    finished hypotheses, best first."""
    beam, vocab = options.beam_size, ctc_log_probs.shape[2]
    batch = ctc_log_probs.shape[0]
    device = ctc_log_probs.device
    use_ctc = options.ctc_weight > 0
    use_lm = lm is not None and options.lm_weight > 0
    ilm = InternalLanguageModel(model.decoder) if use_lm and options.internal_lm_weight > 0 else None
    wanted = (options.ctc_candidates or 2 * beam) if use_ctc else vocab
    others = min(max(1, wanted - 1), vocab - 2)  # candidates besides <eos>, never the blank
    lengths = [int(n) for n in ctc_lengths]
    ctc_tokens = [ctc_greedy_length(ctc_log_probs[b, : lengths[b]]) for b in range(batch)]
    # Per utterance still searched (B of them, fewer as utterances finish): its index in the input, rules, finished count.
    searched = torch.arange(batch, device=device)
    max_len = torch.tensor([max_output_tokens(lengths[b], ctc_tokens[b], options) for b in range(batch)], device=device)
    min_len = torch.minimum(torch.tensor([min_output_tokens(n, options) for n in ctc_tokens], device=device), max_len)
    best_finished = torch.full((batch,), NEG_INF, dtype=torch.float64, device=device)
    count_finished = torch.zeros(batch, dtype=torch.long, device=device)
    # Live hypotheses: slot 0 of each utterance starts with the empty prefix; dead slots score -inf.
    alive = torch.zeros(batch, beam, dtype=torch.bool, device=device)
    alive[:, 0] = True
    # Per row (hypothesis b * beam + k): decoder, CTC and LM states, scores, tokens.
    rows = batch * beam
    decoder = ProjectedDecoder(model.decoder, memory)
    state = decoder.initial_state(beam)
    ctc = BatchCTCPrefixScorer(ctc_log_probs, ctc_lengths) if use_ctc else None
    r_n, r_b = ctc.initial(beam) if ctc else (None, None)
    lm_state = lm.initial_state(rows) if use_lm else None
    lm_thread = second_thread() if use_lm else None
    ilm_state = ilm.initial_state(rows) if ilm else None
    attention_score = torch.zeros(rows, dtype=torch.float64, device=device)
    lm_score = torch.zeros(rows, dtype=torch.float64, device=device)
    ilm_score = torch.zeros(rows, dtype=torch.float64, device=device)
    ilm_total = None
    history = torch.zeros(rows, 0, dtype=torch.long, device=device)  # [B*K, step] tokens of each live hypothesis
    last = torch.full((rows,), EOS_ID, dtype=torch.long, device=device)
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]

    for step in range(int(max_len.max()) + 1):
        batch, rows = searched.shape[0], last.shape[0]
        lm_step = lm_thread.submit(_step_without_grad, lm, last, lm_state) if lm_thread else None
        if ilm:
            logits, state, ilm_lp, ilm_state_next = decoder.step_with_internal_lm(last, state, ilm_state)
        else:
            logits, state = decoder.step(last, state)
        attention_total = attention_score[:, None] + torch.log_softmax(logits, dim=-1).double()  # [B*K, V]
        fused = attention_total
        if use_lm:
            lm_lp, lm_state_next = lm_step.result() if lm_step else lm.step(last, lm_state)
            lm_total = lm_score[:, None] + lm_lp.double()
            lm_term = options.lm_weight * lm_total  # [B*K, V] what the LMs add to each candidate's score
            if ilm:
                ilm_total = ilm_score[:, None] + ilm_lp.double()
                lm_term = lm_term - options.internal_lm_weight * ilm_total
            fused = attention_total + lm_term
        # Candidates: <eos> first, then the best other tokens by the attention (+ LM) score.
        preselect = fused.clone()
        preselect[:, BLANK_ID] = NEG_INF
        preselect[:, EOS_ID] = NEG_INF
        eos_column = torch.full((rows, 1), EOS_ID, dtype=torch.long, device=device)
        candidates = torch.cat([eos_column, preselect.topk(others, dim=1).indices], dim=1)  # [B*K, C]
        if ctc:
            joint = (1 - options.ctc_weight) * attention_total.gather(1, candidates)
            if use_lm:
                joint = joint + lm_term.gather(1, candidates)
            psi = ctc.scores(r_n, r_b, last, empty=step == 0)  # [B*K, V]
            joint = joint + options.ctc_weight * psi.gather(1, candidates)
        else:
            joint = fused.gather(1, candidates)
        joint = joint + options.length_bonus * (step + 1)
        too_short = (step < min_len).repeat_interleave(beam)[:, None] & (candidates == EOS_ID)
        too_long = (step >= max_len).repeat_interleave(beam)[:, None] & (candidates != EOS_ID)
        joint = joint.masked_fill(too_short | too_long | ~alive.reshape(rows, 1), NEG_INF)
        width = candidates.shape[1]
        top_scores, top_flat = joint.reshape(batch, beam * width).topk(min(2 * beam, beam * width), dim=1)  # [B, 2K]
        top_rows = torch.arange(batch, device=device)[:, None] * beam + top_flat // width  # [B, 2K] rows of B*K
        top_tokens = candidates.reshape(batch, beam * width).gather(1, top_flat)
        valid = top_scores > NEG_INF
        ends = valid & (top_tokens == EOS_ID)
        if bool(ends.any()):
            _collect_finished(finished, searched, ends, top_rows, top_scores, history, attention_total,
                              psi if ctc else None, lm_total if use_lm else None, ilm_total)
            count_finished += ends.sum(1)
            best_finished = torch.maximum(best_finished, top_scores.masked_fill(~ends, NEG_INF).max(1).values)
        # The next live hypotheses: the best K that did not end, in rank order.
        grows = valid & ~ends
        keep = grows & (grows.cumsum(1) <= beam)
        position = torch.where(keep, torch.arange(top_flat.shape[1], device=device)[None, :], top_flat.shape[1])
        chosen = position.sort(dim=1).indices[:, :beam]  # [B, K] positions in the top list, kept ones first
        kept = keep.gather(1, chosen)
        if kept.shape[1] < beam:  # fewer candidates than beam slots (a tiny vocabulary)
            pad = beam - kept.shape[1]
            chosen = torch.cat([chosen, chosen[:, :1].expand(batch, pad)], dim=1)
            kept = torch.cat([kept, torch.zeros(batch, pad, dtype=torch.bool, device=device)], dim=1)
        source = top_rows.gather(1, chosen).reshape(rows)
        tokens = top_tokens.gather(1, chosen).reshape(rows)
        live_scores = top_scores.gather(1, chosen).masked_fill(~kept, NEG_INF)  # [B, K]
        alive = kept
        # An utterance is done when nothing grows, or when enough have finished and no live
        # hypothesis can overtake the best finished one (scores only fall as hypotheses grow; with a
        # length bonus or the internal LM subtracted they may rise, and the stop is a heuristic).
        done = ~alive.any(1) | ((count_finished >= beam) & (live_scores.max(1).values < best_finished))
        if bool(done.all()):
            break
        if bool(done.any()):  # the finished utterances leave the batch
            going_on = ~done
            rows_going_on = going_on.repeat_interleave(beam)
            source, tokens = source[rows_going_on], tokens[rows_going_on]
            decoder = decoder.select(going_on.nonzero()[:, 0])
            searched, max_len, min_len = searched[going_on], max_len[going_on], min_len[going_on]
            best_finished, count_finished, alive = best_finished[going_on], count_finished[going_on], alive[going_on]
            if ctc:
                ctc = ctc.select(going_on.nonzero()[:, 0])
        attention_score = attention_total[source, tokens]
        if use_lm:
            lm_score = lm_total[source, tokens]
            lm_state = lm.select_state(lm_state_next, source)
        if ilm:
            ilm_score = ilm_total[source, tokens]
            ilm_state = ilm.select_state(ilm_state_next, source)
        if ctc:
            r_n, r_b = ctc.extend(r_n[source], r_b[source], last[source], tokens, empty=step == 0)
        state = state.select(source)
        history = torch.cat([history[source], tokens[:, None]], dim=1)
        last = tokens

    def final_score(h: Hypothesis) -> float:
        return h.score / (len(h.tokens) + 1) if options.length_normalization else h.score

    for hypotheses in finished:
        hypotheses.sort(key=final_score, reverse=True)
    return finished


def _collect_finished(finished: list[list[Hypothesis]], searched: torch.Tensor, ends: torch.Tensor, top_rows: torch.Tensor,
                      top_scores: torch.Tensor, history: torch.Tensor, attention_total: torch.Tensor,
                      psi: torch.Tensor | None, lm_total: torch.Tensor | None, ilm_total: torch.Tensor | None) -> None:
    """Append every <eos> among the top candidates ends [B, 2K] to its utterance's finished list, in rank order."""
    where = ends.nonzero()
    rows = top_rows[where[:, 0], where[:, 1]]
    utterances = searched[where[:, 0]].tolist()
    scores = top_scores[where[:, 0], where[:, 1]].tolist()
    attention = attention_total[rows, EOS_ID].tolist()
    ctc = psi[rows, EOS_ID].tolist() if psi is not None else [0.0] * len(scores)
    lm = lm_total[rows, EOS_ID].tolist() if lm_total is not None else [0.0] * len(scores)
    ilm = ilm_total[rows, EOS_ID].tolist() if ilm_total is not None else [0.0] * len(scores)
    tokens = history[rows].tolist()
    for b, hyp_tokens, score, a, c, lm_score, i in zip(utterances, tokens, scores, attention, ctc, lm, ilm):
        finished[b].append(Hypothesis(hyp_tokens, score, a, c, lm_score, i))


@torch.no_grad()
def beam_search_one(
    model: Seq2Seq,
    memory: Memory,
    ctc_log_probs: torch.Tensor,
    options: DecodingOptions,
    lm: LanguageModel | None = None,
) -> list[Hypothesis]:
    """Joint CTC/attention beam search for one utterance; memory has batch 1, ctc_log_probs is [T, V].
    Returns finished hypotheses, best first. Decoding uses `beam_search_batch`; this plain form is
    the reference the batched search is tested against (tests/test_search.py, tools/bench_beam.py)."""
    beam = options.beam_size
    ctc = CTCPrefixScorer(ctc_log_probs) if options.ctc_weight > 0 else None
    use_lm = lm is not None and options.lm_weight > 0
    ilm = InternalLanguageModel(model.decoder) if use_lm and options.internal_lm_weight > 0 else None
    ctc_tokens = ctc_greedy_length(ctc_log_probs)
    max_len = max_output_tokens(ctc_log_probs.shape[0], ctc_tokens, options)
    min_len = min(min_output_tokens(ctc_tokens, options), max_len)
    running = [Hypothesis([], 0.0)]
    state: DecoderState = model.decoder.initial_state(memory)
    r_n, r_b = ctc.initial() if ctc else (None, None)
    lm_state = lm.initial_state(1) if use_lm else None
    ilm_state = ilm.initial_state(1) if ilm else None
    finished: list[Hypothesis] = []

    def final_score(h: Hypothesis) -> float:
        return h.score / (len(h.tokens) + 1) if options.length_normalization else h.score

    for step in range(max_len + 1):
        last = torch.tensor([h.tokens[-1] if h.tokens else EOS_ID for h in running])
        logits, state = model.decoder.step(last, state, memory)  # every row reads the one utterance
        attention_lp = torch.log_softmax(logits, dim=-1).double()  # [N, V]
        base = torch.tensor([h.attention_score for h in running], dtype=torch.float64)[:, None]
        attention_total = base + attention_lp
        joint = (1 - options.ctc_weight) * attention_total if ctc else attention_total.clone()
        if ctc:
            empty = torch.tensor([not h.tokens for h in running])
            new_r_n, new_r_b, psi = ctc.extend(r_n, r_b, last, empty)
            joint = joint + options.ctc_weight * psi
        if use_lm:
            lm_lp, lm_state_next = lm.step(last, lm_state)
            lm_total = torch.tensor([h.lm_score for h in running], dtype=torch.float64)[:, None] + lm_lp.double()
            joint = joint + options.lm_weight * lm_total
        if ilm:
            ilm_lp, ilm_state_next = ilm.step(last, ilm_state)
            ilm_total = torch.tensor([h.internal_lm_score for h in running], dtype=torch.float64)[:, None] + ilm_lp.double()
            joint = joint - options.internal_lm_weight * ilm_total
        joint = joint + options.length_bonus * torch.tensor([len(h.tokens) + 1 for h in running], dtype=torch.float64)[:, None]
        joint[:, BLANK_ID] = NEG_INF
        if step < min_len:  # every live hypothesis has `step` tokens
            joint[:, EOS_ID] = NEG_INF
        if step == max_len:  # out of room: every hypothesis must end here
            joint[:, EOS_ID + 1 :] = NEG_INF
        order = joint.flatten().argsort(descending=True)
        keep_rows, keep_tokens = [], []
        for flat in order[: 2 * beam].tolist():
            row, token = divmod(flat, joint.shape[1])
            score = float(joint[row, token])
            if score == NEG_INF:
                break
            hyp = Hypothesis(
                running[row].tokens + ([] if token == EOS_ID else [token]),
                score,
                float(attention_total[row, token]),
                float(psi[row, token]) if ctc else 0.0,
                float(lm_total[row, token]) if use_lm else 0.0,
                float(ilm_total[row, token]) if ilm else 0.0,
            )
            if token == EOS_ID:
                finished.append(hyp)
            elif len(keep_rows) < beam:
                keep_rows.append((row, hyp))
                keep_tokens.append(token)
        if not keep_rows:
            break
        rows = torch.tensor([row for row, _ in keep_rows])
        running = [hyp for _, hyp in keep_rows]
        state = state.select(rows)
        if ctc:
            tokens = torch.tensor(keep_tokens)
            r_n, r_b = new_r_n[rows, tokens], new_r_b[rows, tokens]
        if use_lm:
            lm_state = lm.select_state(lm_state_next, rows)
        if ilm:
            ilm_state = ilm.select_state(ilm_state_next, rows)
        # Scores only fall as hypotheses grow (but for a length bonus or the internal LM), so once
        # enough have finished and the best live one trails the best finished one, none can overtake it.
        if len(finished) >= beam and max(h.score for h in running) < max(h.score for h in finished):
            break
    finished.sort(key=final_score, reverse=True)
    return finished


def decode(
    model: Seq2Seq,
    feats: torch.Tensor,
    lengths: torch.Tensor,
    options: DecodingOptions = GREEDY,
    lm: LanguageModel | None = None,
) -> list[DecodingResult]:
    """Raw log-mel [B, T, F] with frame counts -> one result per utterance."""
    model.eval()
    with torch.no_grad():
        return decode_encoded(model, model.encode(feats, lengths, options.chunk), options, lm)


@torch.no_grad()
def decode_encoded(model: Seq2Seq, encoded: EncoderOutput, options: DecodingOptions = GREEDY,
                   lm: LanguageModel | None = None) -> list[DecodingResult]:
    """One result per utterance of an encoded batch (for callers that also need the encoder output)."""
    ctc_log_probs = model.ctc_log_probs(encoded)
    memory = model.prepare_memory(encoded)
    if options.beam_size <= 1:
        outputs, ctc_tokens, limits = _greedy(model, memory, ctc_log_probs, encoded.ctc_lengths, options)
        results = [DecodingResult(t, model.vocabulary.decode(t), 0.0) for t in outputs]
        # Attention is what went wrong here, so CTC scores every token rather than attention's favourites.
        fallback = replace(options, beam_size=max(2, options.fallback_beam_size), ctc_weight=options.ctc_weight or 0.3,
                           ctc_candidates=ctc_log_probs.shape[2])
        # Too short (it stopped at the first sentence's end), or cut by the length cap (it never
        # stopped: a loop, "... kind and kind and kind", over a long pause inside the segment).
        astray = [
            b for b, result in enumerate(results)
            if options.fallback_beam_size > 1
            and (len(result.tokens) < min_output_tokens(ctc_tokens[b], options) or len(result.tokens) >= limits[b])
        ]
        return _beam_results(model, memory, ctc_log_probs, encoded.ctc_lengths, astray, fallback, lm, results)
    results = [DecodingResult([], "", 0.0) for _ in range(ctc_log_probs.shape[0])]
    speech = [
        b for b in range(ctc_log_probs.shape[0])
        if not (options.stop_on_ctc_silence and ctc_is_silent(ctc_log_probs[b], int(encoded.ctc_lengths[b])))
    ]
    return _beam_results(model, memory, ctc_log_probs, encoded.ctc_lengths, speech, options, lm, results)


def _beam_results(model: Seq2Seq, memory: Memory, ctc_log_probs: torch.Tensor, ctc_lengths: torch.Tensor, which: list[int],
                  options: DecodingOptions, lm: LanguageModel | None, results: list[DecodingResult]) -> list[DecodingResult]:
    """`results` with utterances `which` of the batch replaced by beam search's best, all searched together."""
    if not which:
        return results
    index = torch.tensor(which)
    lengths = ctc_lengths[index]
    searched = beam_search_batch(model, memory.select(index), ctc_log_probs[index, : int(lengths.max())], lengths, options, lm)
    for b, hyps in zip(which, searched):
        best = hyps[0] if hyps else Hypothesis([], NEG_INF)
        results[b] = DecodingResult(best.tokens, model.vocabulary.decode(best.tokens), best.score, hyps)
    return results
