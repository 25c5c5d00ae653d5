import pytest
import torch

from speech_s2s.model.attention import AttentionConfig, LocationAwareAttention


def _textbook(attention, query, keys, memory, mask, previous_weights):
    """The layers applied as written in the paper: conv, projections, tanh, energy, softmax over each row's own memory."""
    location = attention.location_proj(attention.location_conv(previous_weights[:, None, :]).transpose(1, 2))
    energies = attention.energy(torch.tanh(keys + attention.query_proj(query)[:, None, :] + location)).squeeze(2)
    weights = torch.softmax(energies.masked_fill(~mask, float("-inf")), dim=1)
    return torch.bmm(weights[:, None, :], memory).squeeze(1), weights


@pytest.mark.parametrize("rows_per_utterance", [1, 3])
def test_attention_equals_the_textbook_form_for_rows_sharing_an_utterance(rows_per_utterance):
    torch.manual_seed(0)
    attention = LocationAwareAttention(memory_size=12, query_size=8, config=AttentionConfig(attention_size=16, conv_channels=4, conv_kernel=5))
    memory = torch.randn(2, 9, 12)
    mask = torch.arange(9)[None, :] < torch.tensor([9, 6])[:, None]
    keys = attention.project_memory(memory)
    rows = 2 * rows_per_utterance
    query = torch.randn(rows, 8)
    previous = torch.softmax(torch.randn(rows, 9), dim=1)
    context, weights = attention(query, keys, memory, mask, previous)
    utterance = torch.arange(2).repeat_interleave(rows_per_utterance)  # each row given its own copy of the memory
    want_context, want_weights = _textbook(attention, query, keys[utterance], memory[utterance], mask[utterance], previous)
    torch.testing.assert_close(weights, want_weights, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(context, want_context, rtol=1e-5, atol=1e-6)
    assert float(weights[rows_per_utterance:, 6:].detach().abs().max()) == 0.0  # the shorter utterance's padding


def test_attention_gradients_equal_the_textbook_form():
    torch.manual_seed(1)
    attention = LocationAwareAttention(memory_size=12, query_size=8, config=AttentionConfig(attention_size=16, conv_channels=4, conv_kernel=5))
    memory, mask = torch.randn(2, 7, 12), torch.ones(2, 7, dtype=torch.bool)
    query, previous = torch.randn(2, 8), torch.softmax(torch.randn(2, 7), dim=1)
    grads = []
    for form in (attention, lambda *a: _textbook(attention, *a)):
        attention.zero_grad()
        context, _ = form(query, attention.project_memory(memory), memory, mask, previous)
        context.square().sum().backward()
        grads.append([p.grad.clone() for p in attention.parameters()])
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-6)
