"""LSTM attention decoder (Listen, Attend and Spell's "speller").

Training runs `forward` with teacher forcing; search calls `step` one token at a time with a
`DecoderState` it can reorder between beams. B batch, L target tokens, T encoder frames, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from speech_s2s.attention import AttentionConfig, LocationAwareAttention
from speech_s2s.encoder import padding_mask


@dataclass(frozen=True)
class DecoderConfig:
    embedding_size: int = 128
    hidden_size: int = 512
    num_layers: int = 1
    dropout: float = 0.1
    attention: AttentionConfig = AttentionConfig()


@dataclass
class DecoderState:
    """Everything one decoder step needs from the last: per-layer LSTM (h, c), context, attention."""

    hidden: list[torch.Tensor]  # num_layers x [B, H]
    cell: list[torch.Tensor]  # num_layers x [B, H]
    context: torch.Tensor  # [B, D]
    weights: torch.Tensor  # [B, T]

    def select(self, index: torch.Tensor) -> "DecoderState":
        """Keep (and repeat) batch rows `index`: how beam search reorders its hypotheses."""
        return DecoderState(
            [h[index] for h in self.hidden], [c[index] for c in self.cell], self.context[index], self.weights[index]
        )


@dataclass
class Memory:
    """Encoder output prepared for decoding: values, their attention keys and the padding mask."""

    values: torch.Tensor  # [B, T, D]
    keys: torch.Tensor  # [B, T, A]
    mask: torch.Tensor  # [B, T]

    def select(self, index: torch.Tensor) -> "Memory":
        return Memory(self.values[index], self.keys[index], self.mask[index])


class AttentionDecoder(nn.Module):
    def __init__(self, vocab_size: int, memory_size: int, config: DecoderConfig):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(vocab_size, config.embedding_size)
        self.cells = nn.ModuleList(
            nn.LSTMCell((config.embedding_size + memory_size) if i == 0 else config.hidden_size, config.hidden_size)
            for i in range(config.num_layers)
        )
        self.attention = LocationAwareAttention(memory_size, config.hidden_size, config.attention)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Sequential(
            nn.Linear(config.hidden_size + memory_size, config.hidden_size), nn.Tanh(), nn.Linear(config.hidden_size, vocab_size)
        )

    def prepare(self, memory: torch.Tensor, lengths: torch.Tensor) -> Memory:
        return Memory(memory, self.attention.project_memory(memory), padding_mask(lengths, memory.shape[1]))

    def initial_state(self, memory: Memory, rows_per_utterance: int = 1) -> DecoderState:
        """The state before the first token, for K = rows_per_utterance rows (hypotheses) per utterance."""
        batch, steps, size = memory.values.shape
        rows = batch * rows_per_utterance
        zeros = memory.values.new_zeros(rows, self.config.hidden_size)
        # Start with all attention on the first frame, so the location term begins at the start.
        weights = memory.values.new_zeros(rows, steps)
        weights[:, 0] = 1.0
        return DecoderState([zeros] * len(self.cells), [zeros] * len(self.cells), memory.values.new_zeros(rows, size), weights)

    def step(self, tokens: torch.Tensor, state: DecoderState, memory: Memory) -> tuple[torch.Tensor, DecoderState]:
        """tokens [N] (the previous output) -> (logits [N, V], next state). N = B x K rows, K per
        utterance of the memory's B: rows b * K + k read utterance b (a beam's hypotheses share it)."""
        x = torch.cat([self.embedding(tokens), state.context], dim=1)
        hidden, cell = [], []
        for i, lstm in enumerate(self.cells):
            h, c = lstm(x, (state.hidden[i], state.cell[i]))
            hidden.append(h)
            cell.append(c)
            x = self.dropout(h)
        context, weights = self.attention(x, memory.keys, memory.values, memory.mask, state.weights)
        logits = self.output(torch.cat([x, context], dim=1))
        return logits, DecoderState(hidden, cell, context, weights)

    def forward(
        self, memory: Memory, previous_tokens: torch.Tensor, sampling_probability: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: previous_tokens [B, L] (<sos> + target) -> (logits [B, L, V], weights [B, L, T]).

        With scheduled sampling (Bengio et al., 2015), each input after the first is replaced by
        the model's own previous argmax with probability `sampling_probability`.
        """
        state = self.initial_state(memory)
        all_logits, all_weights = [], []
        for i in range(previous_tokens.shape[1]):
            tokens = previous_tokens[:, i]
            if sampling_probability > 0 and i > 0:
                use_own = torch.rand(tokens.shape, device=tokens.device) < sampling_probability
                tokens = torch.where(use_own, all_logits[-1].argmax(dim=1), tokens)
            logits, state = self.step(tokens, state, memory)
            all_logits.append(logits)
            all_weights.append(state.weights)
        return torch.stack(all_logits, dim=1), torch.stack(all_weights, dim=1)

