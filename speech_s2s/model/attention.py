"""Location-aware attention (Chorowski et al., 2015, "Attention-Based Models for Speech Recognition").

The score of each encoder frame sees the decoder state, the frame itself, and a convolution of the
previous step's attention weights, which lets the attention learn to move forward monotonically.
B batch, T encoder frames, A attention dimension.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class AttentionConfig:
    attention_size: int = 256
    conv_channels: int = 10
    conv_kernel: int = 31  # frames each side: 15 at 12.5 Hz ~ 1.2 s of context for the location term


class LocationAwareAttention(nn.Module):
    def __init__(self, memory_size: int, query_size: int, config: AttentionConfig):
        super().__init__()
        if config.conv_kernel % 2 == 0:
            raise ValueError(f"attention conv_kernel must be odd (as many frames each side), not {config.conv_kernel}")
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
        """query [N, Q] for N = B x K rows, K per utterance (rows b * K + k attend to utterance b, as a
        beam's hypotheses do), keys [B, T, A], memory [B, T, D], mask [B, T] (True = real frame),
        previous_weights [N, T] -> (context [N, D], weights [N, T])."""
        weights = self.weights(query, keys, mask, previous_weights)
        batch, frames = mask.shape
        context = torch.bmm(weights.view(batch, -1, frames), memory).view(weights.shape[0], -1)
        return context, weights

    def weights(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor, previous_weights: torch.Tensor) -> torch.Tensor:
        """The attention weights [N, T] alone (shapes as `forward`)."""
        batch, frames, size = keys.shape
        rows = query.shape[0]
        per = rows // batch
        # The location term, a convolution of the previous weights and then a linear layer, is one
        # product: each frame's neighbourhood of previous weights [N, T, kernel] by the two layers'
        # composed kernel [kernel, A].
        kernel = self.location_conv.kernel_size[0]
        neighbourhood = F.pad(previous_weights, (kernel // 2, kernel // 2)).unfold(1, kernel, 1)
        location_kernel = (self.location_proj.weight @ self.location_conv.weight[:, 0, :]).T
        keys_and_query = (keys[:, None] + self.query_proj(query).view(batch, per, 1, size)).reshape(rows * frames, size)
        # energy(tanh(h)) = w . tanh(h) + b is computed as 2w . sigmoid(2h) + b - sum(w) (tanh(h) is
        # 2 sigmoid(2h) - 1): the same function, and on CPU torch's tanh costs 3.5x its sigmoid
        # (measured, AVX2), which made it the largest part of a beam search step.
        doubled = keys_and_query.addmm_(neighbourhood.reshape(rows * frames, kernel), location_kernel, beta=2, alpha=2)  # in place: no copy of the sum
        w, b = self.energy.weight[0], self.energy.bias
        energies = (torch.sigmoid(doubled) @ (2 * w)).view(batch, per, frames) + (b - w.sum())
        return torch.softmax(energies.masked_fill(~mask[:, None, :], float("-inf")), dim=2).view(rows, frames)
