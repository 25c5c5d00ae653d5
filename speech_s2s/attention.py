"""Location-aware attention (Chorowski et al., 2015, "Attention-Based Models for Speech Recognition").

The score of each encoder frame sees the decoder state, the frame itself, and a convolution of the
previous step's attention weights, which lets the attention learn to move forward monotonically.
B batch, T encoder frames, A attention dimension.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class AttentionConfig:
    attention_size: int = 256
    conv_channels: int = 10
    conv_kernel: int = 31  # frames each side: 15 at 12.5 Hz ~ 1.2 s of context for the location term


class LocationAwareAttention(nn.Module):
    def __init__(self, memory_size: int, query_size: int, config: AttentionConfig):
        super().__init__()
        self.memory_proj = nn.Linear(memory_size, config.attention_size)
        self.query_proj = nn.Linear(query_size, config.attention_size, bias=False)
        self.location_conv = nn.Conv1d(1, config.conv_channels, config.conv_kernel, padding=config.conv_kernel // 2, bias=False)
        self.location_proj = nn.Linear(config.conv_channels, config.attention_size, bias=False)
        self.energy = nn.Linear(config.attention_size, 1)

    def project_memory(self, memory: torch.Tensor) -> torch.Tensor:
        """[B, T, D] -> keys [B, T, A]; computed once per utterance, reused at every decoder step."""
        return self.memory_proj(memory)

    def forward(
        self,
        query: torch.Tensor,
        keys: torch.Tensor,
        memory: torch.Tensor,
        mask: torch.Tensor,
        previous_weights: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """query [B, Q], keys [B, T, A], memory [B, T, D], mask [B, T] (True = real frame),
        previous_weights [B, T] -> (context [B, D], weights [B, T])."""
        location = self.location_conv(previous_weights[:, None, :]).transpose(1, 2)
        energies = self.energy(torch.tanh(keys + self.query_proj(query)[:, None, :] + self.location_proj(location))).squeeze(2)
        weights = torch.softmax(energies.masked_fill(~mask, float("-inf")), dim=1)
        context = torch.bmm(weights[:, None, :], memory).squeeze(1)
        return context, weights
