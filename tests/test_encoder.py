import torch

from speech_s2s.encoder import BiLSTM, EncoderConfig, PyramidalEncoder, reverse_within_lengths, stack_frame_pairs


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
