import pytest
import torch

from speech_s2s.model.attention import AttentionConfig
from speech_s2s.model.decoder import (
    AttentionDecoder,
    DecoderConfig,
    InternalLanguageModel,
    ProjectedDecoder,
)


@pytest.mark.parametrize("num_layers,rows_per_utterance", [(1, 1), (2, 3)])
def test_projected_decoder_steps_equal_the_plain_steps(num_layers, rows_per_utterance):
    """Several steps of search's decoder against `AttentionDecoder.step` with the same tokens: the
    same logits, LSTM states and attention weights, rows sharing utterances of different lengths."""
    torch.manual_seed(num_layers)
    config = DecoderConfig(embedding_size=8, hidden_size=16, num_layers=num_layers, dropout=0.0, attention=AttentionConfig(attention_size=12, conv_kernel=5))
    decoder = AttentionDecoder(vocab_size=7, memory_size=10, config=config).eval()
    memory = decoder.prepare(torch.randn(2, 9, 10), torch.tensor([9, 5]))
    projected = ProjectedDecoder(decoder, memory)
    plain_state, state = decoder.initial_state(memory, rows_per_utterance), projected.initial_state(rows_per_utterance)
    with torch.no_grad():
        for _ in range(4):
            tokens = torch.randint(0, 7, (2 * rows_per_utterance,))
            want, plain_state = decoder.step(tokens, plain_state, memory)
            got, state = projected.step(tokens, state)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(state.weights, plain_state.weights, rtol=1e-5, atol=1e-6)
            for h, plain_h in zip(state.hidden + state.cell, plain_state.hidden + plain_state.cell):
                torch.testing.assert_close(h, plain_h, rtol=1e-5, atol=1e-6)


def test_projected_decoder_of_some_utterances_equals_theirs_alone():
    torch.manual_seed(5)
    decoder = AttentionDecoder(vocab_size=7, memory_size=10, config=DecoderConfig(embedding_size=8, hidden_size=16, dropout=0.0)).eval()
    memory = decoder.prepare(torch.randn(3, 6, 10), torch.tensor([6, 4, 5]))
    kept = torch.tensor([2, 0])
    chosen, alone = ProjectedDecoder(decoder, memory).select(kept), ProjectedDecoder(decoder, memory.select(kept))
    tokens = torch.tensor([3, 4, 5, 6])
    with torch.no_grad():
        got, _ = chosen.step(tokens, chosen.initial_state(2))
        want, _ = alone.step(tokens, alone.initial_state(2))
    assert torch.equal(got, want)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_the_internal_lm_is_the_decoder_listening_to_silence(num_layers):
    """Encoder frames of zeros make every attention context zero, so the decoder's own steps on them
    are the internal LM's steps: the same log-probabilities, also after its state is reordered."""
    torch.manual_seed(num_layers)
    config = DecoderConfig(embedding_size=8, hidden_size=16, num_layers=num_layers, dropout=0.0)
    decoder = AttentionDecoder(vocab_size=7, memory_size=10, config=config).eval()
    memory = decoder.prepare(torch.zeros(3, 5, 10), torch.tensor([5, 5, 5]))
    internal = InternalLanguageModel(decoder)
    plain_state, state = decoder.initial_state(memory), internal.initial_state(3)
    order = torch.tensor([2, 0, 1])
    with torch.no_grad():
        for tokens in ([1, 2, 3], [4, 4, 0], [6, 5, 2]):
            want, plain_state = decoder.step(torch.tensor(tokens), plain_state, memory)
            got, state = internal.step(torch.tensor(tokens), state)
            torch.testing.assert_close(got, torch.log_softmax(want, dim=-1), rtol=1e-5, atol=1e-6)
            plain_state, state = plain_state.select(order), internal.select_state(state, order)
    assert not torch.allclose(got[0], got[1])  # the rows hold different histories


@pytest.mark.parametrize("num_layers", [1, 2])
def test_a_step_with_the_internal_lm_equals_the_two_steps_apart(num_layers):
    """Beam search steps the decoder and its internal LM as one pass of stacked rows: the same logits,
    log-probabilities and states as `ProjectedDecoder.step` and `InternalLanguageModel.step` apart."""
    torch.manual_seed(10 + num_layers)
    config = DecoderConfig(embedding_size=8, hidden_size=16, num_layers=num_layers, dropout=0.0, attention=AttentionConfig(attention_size=12, conv_kernel=5))
    decoder = AttentionDecoder(vocab_size=7, memory_size=10, config=config).eval()
    projected = ProjectedDecoder(decoder, decoder.prepare(torch.randn(2, 9, 10), torch.tensor([9, 5])))
    internal = InternalLanguageModel(decoder)
    apart, apart_internal = projected.initial_state(3), internal.initial_state(6)
    joint, joint_internal = projected.initial_state(3), internal.initial_state(6)
    with torch.no_grad():
        for _ in range(4):
            tokens = torch.randint(0, 7, (6,))
            want, apart = projected.step(tokens, apart)
            want_internal, apart_internal = internal.step(tokens, apart_internal)
            got, joint, got_internal, joint_internal = projected.step_with_internal_lm(tokens, joint, joint_internal)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(got_internal, want_internal, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(joint.weights, apart.weights, rtol=1e-5, atol=1e-6)
            for got_part, want_part in zip(joint.hidden + joint.cell + joint_internal[0] + joint_internal[1],
                                           apart.hidden + apart.cell + apart_internal[0] + apart_internal[1]):
                torch.testing.assert_close(got_part, want_part, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(torch.log_softmax(got, dim=-1), got_internal)  # the context matters: two different models
