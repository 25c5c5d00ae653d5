import itertools
import math

import torch

from speech_s2s.decoding.ctc_prefix import BatchCTCPrefixScorer, CTCPrefixScorer
from speech_s2s.text import BLANK_ID, EOS_ID

T, V = 5, 4  # frames, vocabulary (blank, eos, two letters)


def _collapse(path):
    out, previous = [], None
    for token in path:
        if token != previous and token != BLANK_ID:
            out.append(token)
        previous = token
    return out


def _brute_force(log_probs, prefix, exact):
    """log P(CTC output == prefix) or log P(output starts with prefix), summing over all V^T paths."""
    total = 0.0
    for path in itertools.product(range(V), repeat=T):
        output = _collapse(path)
        if (output == prefix) if exact else (output[: len(prefix)] == prefix):
            total += math.exp(sum(float(log_probs[t, path[t]]) for t in range(T)))
    return math.log(total)


def test_ctc_prefix_scores_equal_brute_force_sums_over_paths():
    torch.manual_seed(0)
    log_probs = torch.log_softmax(torch.randn(T, V, dtype=torch.float64), dim=-1)
    scorer = CTCPrefixScorer(log_probs)
    r_n, r_b = scorer.initial()
    prefix, last = [], torch.tensor([EOS_ID])
    for token in (2, 2, 3):
        new_r_n, new_r_b, psi = scorer.extend(r_n, r_b, last, torch.tensor([not prefix]))
        assert math.isclose(float(psi[0, EOS_ID]), _brute_force(log_probs, prefix, exact=True), rel_tol=1e-9)
        for candidate in (2, 3):
            assert math.isclose(float(psi[0, candidate]), _brute_force(log_probs, prefix + [candidate], exact=False), rel_tol=1e-9)
        prefix.append(token)
        r_n, r_b, last = new_r_n[:, token], new_r_b[:, token], torch.tensor([token])


def _follow_both(log_probs, lengths, paths):
    """Walk both scorers along the same token paths (one path per row; rows b * K + k belong to utterance b):
    at each step, the batched scores of every token and the extended (r_n, r_b) against the per-utterance scorer."""
    batch, per = len(lengths), len(paths) // len(lengths)
    batched = BatchCTCPrefixScorer(log_probs, torch.tensor(lengths))
    single = [CTCPrefixScorer(log_probs[b, : lengths[b]]) for b in range(batch)]
    r_n, r_b = batched.initial(per)
    references = [single[row // per].initial() for row in range(len(paths))]
    last = torch.full((len(paths),), EOS_ID)
    for step in range(len(paths[0])):
        psi = batched.scores(r_n, r_b, last, empty=step == 0)
        tokens = torch.tensor([path[step] for path in paths])
        extended = []
        for row, (ref_n, ref_b) in enumerate(references):
            new_n, new_b, ref_psi = single[row // per].extend(ref_n, ref_b, last[row : row + 1], torch.tensor([step == 0]))
            finite = ref_psi[0] > float("-inf")
            assert torch.equal(finite, psi[row] > float("-inf"))
            torch.testing.assert_close(psi[row][finite], ref_psi[0][finite], rtol=1e-12, atol=0)
            extended.append((new_n[:, tokens[row]], new_b[:, tokens[row]]))
        r_n, r_b = batched.extend(r_n, r_b, last, tokens, empty=step == 0)
        for row, (ref_n, ref_b) in enumerate(extended):
            frames = lengths[row // per]
            torch.testing.assert_close(r_n[row, :frames], ref_n[0], rtol=1e-12, atol=0)
            torch.testing.assert_close(r_b[row, :frames], ref_b[0], rtol=1e-12, atol=0)
        references, last = extended, tokens


def test_batched_scores_of_every_token_equal_the_per_utterance_scorer():
    """Utterances of different lengths, several rows each, paths with repeated tokens: the batched
    scorer's prefix scores (a product in the probability domain) and recursions match the plain form."""
    torch.manual_seed(1)
    lengths = [30, 17, 24]
    log_probs = torch.log_softmax(3 * torch.randn(3, 30, 7), dim=-1)
    paths = [[2, 2, 3, 6], [4, 5, 5, 5], [6, 3, 2, 2]] * 3
    _follow_both(log_probs, lengths, paths)


def test_batched_scores_survive_probabilities_too_small_for_a_product():
    """A token the CTC branch gives log-probability -900 in every frame: every term of its
    probability-domain sum underflows float64 (to -inf), so its score must come from the log domain."""
    torch.manual_seed(2)
    log_probs = torch.log_softmax(torch.randn(1, 40, 6, dtype=torch.float64), dim=-1)
    log_probs[0, :, 5] = -900.0
    paths = [[2, 3, 5], [3, 4, 5]]
    _follow_both(log_probs, [40], paths)
