"""CTC prefix scores for joint CTC/attention beam search (Watanabe et al., 2017).

For a prefix g, r_n[t] and r_b[t] are the log-probabilities that frames 0..t emit exactly g,
ending in a non-blank or a blank frame. Extending g by token c:
    r_n'[t] = logaddexp(r_n'[t-1], phi[t-1]) + x[t, c],   r_b'[t] = logaddexp(r_b'[t-1], r_n'[t-1]) + x[t, blank]
with phi = logaddexp(r_b, r_n), or r_b alone when c repeats g's last token; the prefix score of
g + c is psi = logsumexp_t(phi[t-1] + x[t, c]). Both recursions are linear in the probability
domain, so dividing by cumulative products turns them into log-cumulative-sums: one vectorised
pass over time instead of a Python loop per frame. Everything is float64: scores are sums over
hundreds of frames. T frames, V vocabulary, N hypotheses (rows).
"""

from __future__ import annotations

import torch

from speech_s2s.text import BLANK_ID, EOS_ID

NEG_INF = float("-inf")
# A probability-domain sum below this may have lost terms to underflow (float64 reaches 1e-308);
# such scores are computed again in the log domain.
UNDERFLOW = 1e-280


def _next_r(x: torch.Tensor, cum_x: torch.Tensor, cum_blank: torch.Tensor, phi: torch.Tensor, start: torch.Tensor):
    """The recursion for one extension per row, all frames at once; every tensor is [..., T] but start [...].
    x, cum_x: the new token's log-probabilities and their cumulative sum; returns (r_n', r_b')."""
    no_frame = torch.full_like(phi[..., :1], NEG_INF)
    # A[t] = r_n'[t] - C[t] = logaddexp(A[0], logcumsumexp_{s<t}(phi[s] - C[s]))
    shifted = torch.cat([no_frame, torch.logcumsumexp(phi - cum_x, dim=-1)[..., :-1]], dim=-1)
    r_n = torch.logaddexp((start - cum_x[..., 0])[..., None], shifted) + cum_x
    r_b = torch.cat([no_frame, torch.logcumsumexp(r_n - cum_blank, dim=-1)[..., :-1]], dim=-1) + cum_blank
    return r_n, r_b


class CTCPrefixScorer:
    """Prefix scores for one utterance, every token of every hypothesis extended at once: the plain
    form that `beam_search_one` (the reference search) uses."""

    def __init__(self, log_probs: torch.Tensor):
        """log_probs [T, V] for one utterance (its real frames only)."""
        self.x = log_probs.double()
        self.length, self.vocab_size = self.x.shape
        self.cum_x = self.x.cumsum(0).T  # [V, T]
        self.cum_blank = self.cum_x[BLANK_ID]  # [T]

    def initial(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(r_n, r_b) [1, T] of the empty prefix: all frames blank."""
        r_b = self.cum_blank.clone()[None, :]
        return torch.full_like(r_b, NEG_INF), r_b

    def extend(self, r_n: torch.Tensor, r_b: torch.Tensor, last_tokens: torch.Tensor, empty: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For N prefixes (r_n, r_b [N, T], last token [N], empty [N] bool) and every token c:
        returns new (r_n, r_b) [N, V, T] and prefix scores psi [N, V]; psi[:, EOS] is the full score."""
        n, steps = r_n.shape
        phi = torch.logaddexp(r_n, r_b)[:, None, :].expand(n, self.vocab_size, steps).clone()
        phi[torch.arange(n), last_tokens] = r_b  # a repeated token needs a blank in between
        start = torch.where(empty[:, None], self.x[0][None, :], torch.full_like(self.x[0][None, :], NEG_INF))  # [N, V]
        new_r_n, new_r_b = _next_r(self.x.T[None], self.cum_x[None], self.cum_blank, phi, start)
        psi = torch.logsumexp(torch.cat([start[..., None], phi[..., :-1] + self.x.T[None, :, 1:]], dim=2), dim=2)
        psi[:, EOS_ID] = torch.logaddexp(r_n[:, -1], r_b[:, -1])
        psi[:, BLANK_ID] = NEG_INF
        return new_r_n, new_r_b, psi


class BatchCTCPrefixScorer:
    """The same scores for the hypotheses of B utterances at once, K rows per utterance (rows b * K + k).

    Scoring and extending are split, because a beam extends few of the prefixes it scores:
    `scores` gives psi for every token of every row as one small matrix product in the probability
    domain (sum_t exp(phi[t-1]) exp(x[t, c])), and `extend` runs the time recursions only for the
    K tokens each utterance keeps, instead of for every token scored. Frames past an utterance's
    length are padded with log-probability 0, so the recursions (which only look back) stay
    finite, and are left out of the scores.
    """

    def __init__(self, log_probs: torch.Tensor, lengths: torch.Tensor):
        """log_probs [B, T, V] and frame counts [B]."""
        self.lengths = lengths.to(log_probs.device)
        self.real = torch.arange(log_probs.shape[1], device=log_probs.device)[None, :] < self.lengths[:, None]  # [B, T]
        x = log_probs.double().masked_fill(~self.real[..., None], 0.0)
        self.x = x.transpose(1, 2).contiguous()  # [B, V, T]
        self.cum_x = self.x.cumsum(2)  # [B, V, T]
        self.probs = x.exp().masked_fill(~self.real[..., None], 0.0)  # [B, T, V]; padding emits nothing

    def select(self, utterances: torch.Tensor) -> BatchCTCPrefixScorer:
        """The scorer for some of the utterances [B'] (dropping finished ones from a batch)."""
        chosen = object.__new__(BatchCTCPrefixScorer)
        for name in ("lengths", "real", "x", "cum_x", "probs"):
            setattr(chosen, name, getattr(self, name)[utterances])
        return chosen

    def initial(self, rows_per_utterance: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(r_n, r_b) [B*K, T] of the empty prefix in every row."""
        r_b = self.cum_x[:, BLANK_ID].repeat_interleave(rows_per_utterance, dim=0)
        return torch.full_like(r_b, NEG_INF), r_b

    def scores(self, r_n: torch.Tensor, r_b: torch.Tensor, last_tokens: torch.Tensor, empty: bool) -> torch.Tensor:
        """Prefix scores psi [N, V] of every row's prefix (r_n, r_b [N, T], last token [N]) extended by
        each token; psi[:, EOS] is the prefix's full score, psi[:, blank] is -inf. `empty`: every
        prefix is the empty one (the first step)."""
        utterance = self._utterance_of_rows(r_n.shape[0])
        real = self.real[utterance, 1:]  # [N, T-1]: frames t >= 1 that exist
        phi = torch.logaddexp(r_n, r_b)
        psi = self._emit_after(phi, real, utterance)
        # A token that repeats the prefix's last one needs a blank in between: phi is r_b alone.
        repeat = (r_b[:, :-1] + self.x[utterance, last_tokens, 1:]).masked_fill(~real, NEG_INF)
        psi = psi.scatter(1, last_tokens[:, None], torch.logsumexp(repeat, dim=1, keepdim=True))
        if empty:  # the new token may also be emitted at frame 0
            psi = torch.logaddexp(psi, self.x[utterance, :, 0])
        last = (self.lengths[utterance] - 1)[:, None]
        psi[:, EOS_ID] = torch.logaddexp(r_n.gather(1, last), r_b.gather(1, last))[:, 0]
        psi[:, BLANK_ID] = NEG_INF
        return psi

    def _emit_after(self, phi: torch.Tensor, real: torch.Tensor, utterance: torch.Tensor) -> torch.Tensor:
        """logsumexp_t(phi[t-1] + x[t, c]) over real frames t >= 1, for every row and token: [N, V]."""
        batch, rows = self.real.shape[0], phi.shape[0]
        before = phi[:, :-1].masked_fill(~real, NEG_INF)  # [N, T-1]
        peak = before.max(dim=1, keepdim=True).values
        peak = peak.masked_fill(peak == NEG_INF, 0.0)
        weights = (before - peak).exp().reshape(batch, rows // batch, -1)  # [B, K, T-1], each at most 1
        total = torch.bmm(weights, self.probs[:, 1:]).reshape(rows, -1)  # [N, V]
        psi = total.log() + peak
        lost = (total < UNDERFLOW).nonzero()
        if lost.shape[0]:  # rare: every term underflowed; the log domain has no such limit
            row, token = lost[:, 0], lost[:, 1]
            psi[row, token] = torch.logsumexp(before[row] + self.x[utterance[row], token, 1:], dim=1)
        return psi

    def _utterance_of_rows(self, rows: int) -> torch.Tensor:
        batch = self.real.shape[0]
        return torch.arange(batch, device=self.real.device).repeat_interleave(rows // batch)

    def extend(self, r_n: torch.Tensor, r_b: torch.Tensor, last_tokens: torch.Tensor, tokens: torch.Tensor,
               empty: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(r_n, r_b) [N, T] of each row's prefix (with its last token [N]) extended by one token [N]."""
        utterance = self._utterance_of_rows(r_n.shape[0])
        x = self.x[utterance, tokens]  # [N, T]
        cum_x = self.cum_x[utterance, tokens]
        cum_blank = self.cum_x[utterance, BLANK_ID]
        phi = torch.where((tokens == last_tokens)[:, None], r_b, torch.logaddexp(r_n, r_b))
        start = x[:, 0] if empty else torch.full_like(x[:, 0], NEG_INF)
        return _next_r(x, cum_x, cum_blank, phi, start)
