"""Pyramidal bidirectional LSTM encoder (Listen, Attend and Spell's "listener").

B batch, T frames, D features. Lengths are integer frame counts; padding never changes the
frames of any utterance, so a padded batch encodes exactly as its utterances would alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class EncoderConfig:
    input_size: int = 80
    hidden_size: int = 256  # per direction
    num_layers: int = 4
    # Layers whose input first has adjacent frame pairs concatenated, halving time. Default: 100 Hz
    # features -> 50 Hz into layer 0 -> 25 Hz into layers 1, 2 -> 12.5 Hz out of layer 3 (8x overall).
    reduce_before: tuple[int, ...] = (0, 1, 3)
    # CTC reads the output of this layer (25 Hz by default): read speech runs ~16 characters per
    # second and up to ~21, more than 12.5 Hz can carry, since CTC emits at most one label per frame.
    ctc_layer: int = 2
    dropout: float = 0.1


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first lengths[b] frames of each x[b] ([B, T, D]), leaving padding where it is."""
    steps = torch.arange(x.shape[1], device=x.device)[None, :]
    flipped = lengths[:, None] - 1 - steps
    index = torch.where(flipped >= 0, flipped, steps)
    return x.gather(1, index[..., None].expand(-1, -1, x.shape[2]))


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """[B, max_len] bool, True on real frames."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class BiLSTM(nn.Module):
    """One bidirectional LSTM layer that runs the backward direction over length-aware reversed inputs.

    A forward LSTM over a right-padded batch is exact for real frames; reversing each utterance
    within its own length makes the backward direction exact too. On CPU this trained ~2.5x faster
    than packed sequences, with the same outputs to float precision (see tests/test_encoder.py).
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.forward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.backward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        forward_out, _ = self.forward_lstm(x)
        backward_out, _ = self.backward_lstm(reverse_within_lengths(x, lengths))
        out = torch.cat([forward_out, reverse_within_lengths(backward_out, lengths)], dim=2)
        return out * padding_mask(lengths, x.shape[1])[..., None]


def stack_frame_pairs(x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, T, D] -> [B, ceil(T/2), 2D]: concatenate frames 2t and 2t+1; an odd last frame pairs with zeros."""
    if x.shape[1] % 2:
        x = torch.nn.functional.pad(x, (0, 0, 0, 1))
    batch, steps, dim = x.shape
    return x.reshape(batch, steps // 2, 2 * dim), torch.div(lengths + 1, 2, rounding_mode="floor")


@dataclass
class EncoderOutput:
    """Attention memory [B, T_att, 2H] with lengths, and CTC input [B, T_ctc, 2H] with lengths."""

    memory: torch.Tensor
    memory_lengths: torch.Tensor
    ctc_input: torch.Tensor
    ctc_lengths: torch.Tensor


class PyramidalEncoder(nn.Module):
    def __init__(self, config: EncoderConfig):
        super().__init__()
        self.config = config
        layers = []
        size = config.input_size
        for i in range(config.num_layers):
            layers.append(BiLSTM(size * (2 if i in config.reduce_before else 1), config.hidden_size))
            size = 2 * config.hidden_size
        self.layers = nn.ModuleList(layers)
        self.dropout = nn.Dropout(config.dropout)
        self.output_size = size

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        """feats [B, T, D] normalised log-mel; lengths [B] frame counts."""
        x = feats
        ctc_input, ctc_lengths = x, lengths
        for i, layer in enumerate(self.layers):
            if i in self.config.reduce_before:
                x, lengths = stack_frame_pairs(x, lengths)
            x = layer(x, lengths)
            if i == self.config.ctc_layer:
                ctc_input, ctc_lengths = x, lengths
            if i < len(self.layers) - 1:
                x = self.dropout(x)
        return EncoderOutput(x, lengths, ctc_input, ctc_lengths)
