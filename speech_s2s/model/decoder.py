"""LSTM attention decoder (Listen, Attend and Spell's "speller").

Training runs `forward` with teacher forcing; search calls `step` one token at a time with a
`DecoderState` it can reorder between beams. B batch, L target tokens, T encoder frames, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from speech_s2s.model.attention import AttentionConfig, LocationAwareAttention
from speech_s2s.model.encoder import padding_mask
from speech_s2s.model.int8_product import Int8Product


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

    def select(self, index: torch.Tensor) -> DecoderState:
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

    def select(self, index: torch.Tensor) -> Memory:
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
        self.int8_recurrent: Int8Product | None = None  # `use_int8_search`

    def use_int8_search(self) -> None:
        """Search multiplies the first LSTM layer's hidden state by its recurrent weights in int8 from now on
        (inference only: training is not seen by the int8 copy)."""
        self.int8_recurrent = Int8Product(self.cells[0].weight_hh)

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


@dataclass
class SearchState:
    """A `ProjectedDecoder` step's state: per-layer LSTM (h, c); the attention weights that made the
    last context (zeros before the first step, when there is no context yet) and the last weights,
    which steer the location term (all on frame 0 before the first step)."""

    hidden: list[torch.Tensor]  # num_layers x [N, H]
    cell: list[torch.Tensor]  # num_layers x [N, H]
    context_weights: torch.Tensor  # [N, T]
    weights: torch.Tensor  # [N, T]

    def select(self, index: torch.Tensor) -> SearchState:
        return SearchState([h[index] for h in self.hidden], [c[index] for c in self.cell], self.context_weights[index], self.weights[index])


ProjectedState = tuple[list[torch.Tensor], list[torch.Tensor]]  # each LSTM layer's (hidden, cell) rows


class ProjectedDecoder:
    """`AttentionDecoder.step` for search (inference only), the same function computed in less time.

    The attention context enters the first LSTM layer and the output layer only through products
    with their weights, and a context is a weighted sum of encoder frames. So the frames are
    multiplied by those weights once per utterance ([B, T, 4H] and [B, T, H]) and each step only
    weights them by its attention [N, T]: for T frames fewer than the context's D features, that
    is far less work than a context [N, D] times the weights every step. The embedding goes through
    the first layer's weights once, as a table [V, 4H]. Rows as in `AttentionDecoder.step`.
    """

    def __init__(self, decoder: AttentionDecoder, memory: Memory):
        first, output = decoder.cells[0], decoder.output[0]
        embedding, hidden = decoder.config.embedding_size, decoder.config.hidden_size
        self.decoder, self.memory = decoder, memory
        self.token_gates = _token_gate_table(decoder)  # [V, 4H]
        self.frame_gates = memory.values @ first.weight_ih[:, embedding:].T  # [B, T, 4H]
        self.frame_output = memory.values @ output.weight[:, hidden:].T  # [B, T, H]

    def select(self, utterances: torch.Tensor) -> ProjectedDecoder:
        """The same for some of the utterances [B'] (dropping finished ones from a search)."""
        chosen = object.__new__(ProjectedDecoder)
        chosen.decoder, chosen.memory, chosen.token_gates = self.decoder, self.memory.select(utterances), self.token_gates
        chosen.frame_gates, chosen.frame_output = self.frame_gates[utterances], self.frame_output[utterances]
        return chosen

    def initial_state(self, rows_per_utterance: int = 1) -> SearchState:
        plain = self.decoder.initial_state(self.memory, rows_per_utterance)
        return SearchState(plain.hidden, plain.cell, torch.zeros_like(plain.weights), plain.weights)

    def step(self, tokens: torch.Tensor, state: SearchState) -> tuple[torch.Tensor, SearchState]:
        """tokens [N] (the previous output) -> (logits [N, V], next state)."""
        decoder, memory = self.decoder, self.memory
        rows, (batch, frames) = tokens.shape[0], memory.mask.shape
        per = rows // batch
        gates = torch.baddbmm(F.embedding(tokens, self.token_gates).view(batch, per, -1), state.context_weights.view(batch, per, frames), self.frame_gates)
        x, hidden, cell = _lstm_layers(decoder, gates.view(rows, -1), state.hidden, state.cell)
        weights = decoder.attention.weights(x, memory.keys, memory.mask, state.weights)
        hidden_part = _hidden_output(decoder, x).view(batch, per, -1)
        logits = decoder.output[2](decoder.output[1](torch.baddbmm(hidden_part, weights.view(batch, per, frames), self.frame_output).view(rows, -1)))
        return logits, SearchState(hidden, cell, weights, weights)

    def step_with_internal_lm(self, tokens: torch.Tensor, state: SearchState, internal: ProjectedState
                              ) -> tuple[torch.Tensor, SearchState, torch.Tensor, ProjectedState]:
        """`step` and `InternalLanguageModel.step` on the same tokens in one pass: (logits [N, V], next
        state, the internal LM's log-probabilities [N, V], its next state). The internal LM is the
        same LSTM and output layer with a zero context, so its N rows join the decoder's as rows
        N..2N of one product with each weight: a step reads every weight once instead of twice, which
        is most of the internal LM's cost (a beam step is bound by reading weights, not by its rows)."""
        decoder, memory = self.decoder, self.memory
        rows, (batch, frames) = tokens.shape[0], memory.mask.shape
        per = rows // batch
        token_gates = F.embedding(tokens, self.token_gates)
        gates = torch.baddbmm(token_gates.view(batch, per, -1), state.context_weights.view(batch, per, frames), self.frame_gates)
        x, hidden, cell = _lstm_layers(decoder, torch.cat([gates.view(rows, -1), token_gates]),
                                       [torch.cat(pair) for pair in zip(state.hidden, internal[0])],
                                       [torch.cat(pair) for pair in zip(state.cell, internal[1])])
        weights = decoder.attention.weights(x[:rows], memory.keys, memory.mask, state.weights)
        hidden_part = _hidden_output(decoder, x)
        with_context = torch.baddbmm(hidden_part[:rows].view(batch, per, -1), weights.view(batch, per, frames), self.frame_output)
        logits = decoder.output[2](decoder.output[1](torch.cat([with_context.view(rows, -1), hidden_part[rows:]])))
        return (logits[:rows], SearchState([h[:rows] for h in hidden], [c[:rows] for c in cell], weights, weights),
                torch.log_softmax(logits[rows:], dim=-1), ([h[rows:] for h in hidden], [c[rows:] for c in cell]))


class InternalLanguageModel:
    """The decoder's own language model: its steps with the attention context held at zero, so the
    output depends on the tokens alone (Meng et al., 2021, "Internal language model estimation").
    The decoder learns a prior over its train text along with the acoustics; beam search subtracts
    this estimate of it beside an external LM, so that the LM, not the train text, says what is likely.
    Implements the search's `LanguageModel` hooks; rows are hypotheses, independent of the utterances."""

    def __init__(self, decoder: AttentionDecoder):
        self.decoder = decoder
        # A zero context adds nothing to the first layer's gates: a token's are its table row.
        self.token_gates = _token_gate_table(decoder)  # [V, 4H]

    def initial_state(self, rows: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        zeros = self.token_gates.new_zeros(rows, self.decoder.config.hidden_size)
        return [zeros] * len(self.decoder.cells), [zeros] * len(self.decoder.cells)

    def step(self, tokens: torch.Tensor, state: ProjectedState) -> tuple[torch.Tensor, ProjectedState]:
        """tokens [N] -> (log-probabilities [N, V], next state)."""
        decoder = self.decoder
        x, hidden, cell = _lstm_layers(decoder, F.embedding(tokens, self.token_gates), *state)
        logits = decoder.output[2](decoder.output[1](_hidden_output(decoder, x)))
        return torch.log_softmax(logits, dim=-1), (hidden, cell)

    def select_state(self, state: ProjectedState, index: torch.Tensor) -> ProjectedState:
        return [h[index] for h in state[0]], [c[index] for c in state[1]]


def _token_gate_table(decoder: AttentionDecoder) -> torch.Tensor:
    """Each token's embedding through the first LSTM layer's input weights, with both its biases: [V, 4H]."""
    first, embedding = decoder.cells[0], decoder.config.embedding_size
    return decoder.embedding.weight @ first.weight_ih[:, :embedding].T + first.bias_ih + first.bias_hh


def _lstm_layers(decoder: AttentionDecoder, input_gates: torch.Tensor, hidden: list[torch.Tensor],
                 cell: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """One step of the decoder's LSTM layers from the first layer's input gates [N, 4H] (a fresh
    tensor: its recurrent part is added in place): the top layer's output and each layer's (h, c)."""
    recurrent = decoder.int8_recurrent
    gates = input_gates.add_(recurrent(hidden[0])) if recurrent is not None else input_gates.addmm_(hidden[0], decoder.cells[0].weight_hh.T)
    x, c = _lstm_gates(gates, cell[0])
    next_hidden, next_cell = [x], [c]
    for i, lstm in enumerate(decoder.cells[1:], start=1):
        x, c = lstm(x, (hidden[i], cell[i]))
        next_hidden.append(x)
        next_cell.append(c)
    return x, next_hidden, next_cell


def _hidden_output(decoder: AttentionDecoder, x: torch.Tensor) -> torch.Tensor:
    """The output layer's first linear map on the LSTM output x [N, H] alone (bias included): the
    whole map for a zero context, the part before the context's for any other."""
    output = decoder.output[0]
    return torch.addmm(output.bias, x, output.weight[:, : x.shape[1]].T)


def _lstm_gates(gates: torch.Tensor, cell: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An LSTM cell's (h, c) from its summed gate inputs [N, 4H], in torch's order (input, forget, cell, output)."""
    i, f, g, o = gates.chunk(4, dim=1)
    cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(cell), cell
