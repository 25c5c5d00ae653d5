"""tools/probe_internal_lm.py: the internal LM is the decoder without its context, and the fused score subtracts it."""

import torch

from speech_s2s.decoder import AttentionDecoder, DecoderConfig
from tools.probe_internal_lm import InternalLM, LessInternal


def test_the_internal_lm_is_the_decoder_reading_silent_memory():
    """Memory of zeros makes every attention context zero: the decoder's own steps are then the internal LM's."""
    torch.manual_seed(0)
    decoder = AttentionDecoder(vocab_size=7, memory_size=10, config=DecoderConfig(embedding_size=8, hidden_size=16, num_layers=2, dropout=0.0)).eval()
    memory = decoder.prepare(torch.zeros(3, 5, 10), torch.tensor([5, 5, 5]))
    internal = InternalLM(decoder)
    plain_state, state = decoder.initial_state(memory), internal.initial_state(3)
    with torch.no_grad():
        for tokens in ([1, 2, 3], [4, 4, 0], [6, 5, 2]):
            want, plain_state = decoder.step(torch.tensor(tokens), plain_state, memory)
            got, state = internal.step(torch.tensor(tokens), state)
            torch.testing.assert_close(got, torch.log_softmax(want, dim=-1), rtol=1e-5, atol=1e-6)


class _Constant:
    """A language model whose every step gives the same log-probabilities; its state counts steps."""

    def __init__(self, log_probs):
        self.log_probs = torch.tensor(log_probs)

    def initial_state(self, batch_size):
        return torch.zeros(batch_size)

    def step(self, tokens, state):
        return self.log_probs.expand(tokens.shape[0], -1), state + 1

    def select_state(self, state, index):
        return state[index]


def test_the_fused_lm_is_the_external_minus_a_share_of_the_internal():
    fused = LessInternal(_Constant([-1.0, -2.0]), _Constant([-0.5, -4.0]), ratio=0.5)
    log_probs, state = fused.step(torch.tensor([0, 1]), fused.initial_state(2))
    torch.testing.assert_close(log_probs, torch.tensor([[-0.75, 0.0], [-0.75, 0.0]]))
    kept = fused.select_state(state, torch.tensor([1, 1, 0]))
    assert kept[0].tolist() == [1.0, 1.0, 1.0] and kept[1].tolist() == [1.0, 1.0, 1.0]
