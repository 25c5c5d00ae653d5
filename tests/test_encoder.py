import pytest
import torch

from speech_s2s.model.encoder import (
    BiLSTM,
    ChunkConfig,
    EncoderConfig,
    PyramidalEncoder,
    reverse_within_lengths,
    stack_frame_pairs,
)


def test_reverse_within_lengths_leaves_padding_in_place():
    x = torch.arange(1, 6).float()[None, :, None].repeat(2, 1, 1)
    out = reverse_within_lengths(x, torch.tensor([5, 3]))
    assert out[0, :, 0].tolist() == [5, 4, 3, 2, 1]
    assert out[1, :, 0].tolist() == [3, 2, 1, 4, 5]


def test_stack_frame_pairs_halves_time_rounding_up():
    x = torch.arange(10).float().reshape(1, 5, 2)
    out, lengths = stack_frame_pairs(x, torch.tensor([5]))
    assert out.shape == (1, 3, 4) and lengths.tolist() == [3]
    assert out[0, 0].tolist() == [0, 1, 2, 3] and out[0, 2].tolist() == [8, 9, 0, 0]


def test_bilstm_matches_packed_bidirectional_lstm():
    torch.manual_seed(0)
    ours = BiLSTM(8, 16)
    reference = torch.nn.LSTM(8, 16, batch_first=True, bidirectional=True)
    with torch.no_grad():
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(reference, name).copy_(getattr(ours.forward_lstm, name))
            getattr(reference, name + "_reverse").copy_(getattr(ours.backward_lstm, name))
    x = torch.randn(3, 12, 8)
    lengths = torch.tensor([12, 7, 3])
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    expected, _ = torch.nn.utils.rnn.pad_packed_sequence(reference(packed)[0], batch_first=True, total_length=12)
    torch.testing.assert_close(ours(x, lengths), expected, rtol=1e-6, atol=1e-6)


def test_encoder_output_of_padded_batch_equals_each_utterance_alone():
    torch.manual_seed(0)
    encoder = PyramidalEncoder(EncoderConfig(input_size=10, hidden_size=12, num_layers=4, reduce_before=(0, 1, 3), ctc_layer=2)).eval()
    lengths = torch.tensor([37, 20, 9])
    feats = torch.randn(3, 37, 10) * (torch.arange(37)[None, :, None] < lengths[:, None, None])
    batch = encoder(feats, lengths)
    assert batch.ctc_lengths.tolist() == [10, 5, 3]  # ceil(ceil(n / 2) / 2)
    assert batch.memory_lengths.tolist() == [5, 3, 2]
    for b, n in enumerate(lengths.tolist()):
        alone = encoder(feats[b : b + 1, :n], torch.tensor([n]))
        torch.testing.assert_close(batch.memory[b, : alone.memory.shape[1]], alone.memory[0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(batch.ctc_input[b, : alone.ctc_input.shape[1]], alone.ctc_input[0], rtol=1e-5, atol=1e-6)
        assert torch.all(batch.memory[b, alone.memory.shape[1] :] == 0)


def _encoder_and_batch(lengths=(83, 50, 9), dim=10):
    torch.manual_seed(0)
    encoder = PyramidalEncoder(EncoderConfig(input_size=dim, hidden_size=12, num_layers=4, reduce_before=(0, 1, 3), ctc_layer=2)).eval()
    lengths = torch.tensor(lengths)
    steps = int(lengths.max())
    feats = torch.randn(len(lengths), steps, dim) * (torch.arange(steps)[None, :, None] < lengths[:, None, None])
    return encoder, feats, lengths


def _assert_same(a, b, atol=1e-6):
    assert a.memory.shape == b.memory.shape and a.ctc_input.shape == b.ctc_input.shape
    assert a.memory_lengths.tolist() == b.memory_lengths.tolist() and a.ctc_lengths.tolist() == b.ctc_lengths.tolist()
    torch.testing.assert_close(a.memory, b.memory, rtol=1e-5, atol=atol)
    torch.testing.assert_close(a.ctc_input, b.ctc_input, rtol=1e-5, atol=atol)


def test_chunk_longer_than_the_utterance_or_context_reaching_its_end_is_the_full_bilstm():
    encoder, feats, lengths = _encoder_and_batch()
    full = encoder(feats, lengths)
    _assert_same(encoder(feats, lengths, ChunkConfig(88, 0)), full)  # one chunk holds every utterance
    _assert_same(encoder(feats, lengths, ChunkConfig(16, 72)), full)  # every window reaches the utterance's end
    _assert_same(encoder(feats, lengths, ChunkConfig(8, 80)), full)
    assert (encoder(feats, lengths, ChunkConfig(16, 8)).memory - full.memory).abs().max() > 1e-3  # limited context differs


def test_chunked_form_of_a_padded_batch_equals_each_utterance_alone():
    encoder, feats, lengths = _encoder_and_batch()
    for chunk in (ChunkConfig(16, 8), ChunkConfig(8, 0), ChunkConfig(24, 16)):
        batch = encoder(feats, lengths, chunk)
        padded = encoder(torch.nn.functional.pad(feats, (0, 0, 0, 21)), lengths, chunk)  # more chunks, all padding
        for b, n in enumerate(lengths.tolist()):
            alone = encoder(feats[b : b + 1, :n], torch.tensor([n]), chunk)
            for out in (batch, padded):
                torch.testing.assert_close(out.memory[b, : alone.memory.shape[1]], alone.memory[0], rtol=1e-5, atol=1e-6)
                torch.testing.assert_close(out.ctc_input[b, : alone.ctc_input.shape[1]], alone.ctc_input[0], rtol=1e-5, atol=1e-6)
                assert torch.all(out.memory[b, alone.memory.shape[1] :] == 0) and torch.all(out.ctc_input[b, alone.ctc_input.shape[1] :] == 0)


def test_stream_chunk_by_chunk_equals_the_batched_chunked_form():
    encoder, feats, lengths = _encoder_and_batch()
    for chunk in (ChunkConfig(16, 8), ChunkConfig(8, 16), ChunkConfig(32, 0)):
        batch = encoder(feats, lengths, chunk)
        step, window = chunk.chunk_frames, chunk.chunk_frames + chunk.right_context_frames
        for b, n in enumerate(lengths.tolist()):
            state = encoder.initial_state(1, chunk)
            memory, ctc = [], []
            for start in range(0, n, step):  # C new frames and up to R look-ahead frames per call
                out, state = encoder.stream(feats[b : b + 1, start : min(n, start + window)], state)
                assert out.memory.shape[1] == -(-min(step, n - start) // 8) and out.ctc_input.shape[1] == -(-min(step, n - start) // 4)
                memory.append(out.memory)
                ctc.append(out.ctc_input)
            torch.testing.assert_close(torch.cat(memory, 1)[0], batch.memory[b, : batch.memory_lengths[b]], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(torch.cat(ctc, 1)[0], batch.ctc_input[b, : batch.ctc_lengths[b]], rtol=1e-5, atol=1e-6)


def test_stream_runs_a_batch_of_utterances_in_step():
    encoder, feats, _ = _encoder_and_batch(lengths=(40, 40))
    chunk = ChunkConfig(16, 8)
    batch = encoder(feats, torch.tensor([40, 40]), chunk)
    state, memory = encoder.initial_state(2, chunk), []
    for start in range(0, 40, 16):
        out, state = encoder.stream(feats[:, start : start + 24], state)
        memory.append(out.memory)
    torch.testing.assert_close(torch.cat(memory, 1), batch.memory, rtol=1e-5, atol=1e-6)


def test_chunk_sizes_must_be_multiples_of_the_reduction():
    encoder, feats, lengths = _encoder_and_batch()
    assert encoder.reduction == 8
    for bad in (ChunkConfig(12, 0), ChunkConfig(16, 4)):
        with pytest.raises(ValueError, match="multiples of 8"):
            encoder(feats, lengths, bad)
    with pytest.raises(ValueError):
        ChunkConfig(0, 8)
