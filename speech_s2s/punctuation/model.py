"""The restorer's network: word embeddings (a small lowercase vocabulary) plus a character CNN for every word
(so unknown words still have a shape), a BiLSTM (one layer unless configured), and two heads: each word's case and the mark after it.
Saved as safetensors (large matrices as int8 rows with a scale each, the rest float16) with its config in the metadata. B batch, L words, C characters per word.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from speech_s2s.atomic import replacing
from speech_s2s.configs import flat_config_from_json
from speech_s2s.errors import first_line
from speech_s2s.punctuation.labels import CASES, MARKS

PAD, UNKNOWN = 0, 1  # word and character ids
ALPHABET = "abcdefghijklmnopqrstuvwxyz'"
FORMAT = "speech_s2s_punctuation"


@dataclass(frozen=True)
class PunctuationConfig:
    vocabulary: tuple[str, ...] = ()  # known lowercase words; ids from 2 on
    word_size: int = 48
    char_size: int = 16
    char_filters: int = 48
    max_chars: int = 16  # a word's first characters the CNN reads
    hidden_size: int = 128  # per direction
    layers: int = 1  # BiLSTM layers; a file without the field has one (train-punctuation's default is 2)
    dropout: float = 0.2  # on the BiLSTM's input and output, and between its layers


class PunctuationModel(nn.Module):
    def __init__(self, config: PunctuationConfig = PunctuationConfig()):
        super().__init__()
        self.config = config
        self.index = {word: i + 2 for i, word in enumerate(config.vocabulary)}
        self.words = nn.Embedding(len(config.vocabulary) + 2, config.word_size, padding_idx=PAD)
        self.chars = nn.Embedding(len(ALPHABET) + 2, config.char_size, padding_idx=PAD)
        self.conv = nn.Conv1d(config.char_size, config.char_filters, 3, padding=1)
        self.lstm = nn.LSTM(config.word_size + config.char_filters, config.hidden_size, num_layers=config.layers, batch_first=True,
                            bidirectional=True, dropout=config.dropout if config.layers > 1 else 0.0)
        self.dropout = nn.Dropout(config.dropout)
        self.case_head = nn.Linear(2 * config.hidden_size, len(CASES))
        self.mark_head = nn.Linear(2 * config.hidden_size, len(MARKS))

    def forward(self, words: torch.Tensor, chars: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """words [B, L], chars [B, L, C] (lengths [B]: the words of each row, when rows are padded) ->
        case logits [B, L, 3], mark logits [B, L, 5]."""
        batch, length, width = chars.shape
        shapes = self.conv(self.chars(chars.reshape(batch * length, width)).transpose(1, 2)).relu().amax(dim=2)
        features = self.dropout(torch.cat([self.words(words), shapes.reshape(batch, length, -1)], dim=-1))
        if lengths is None:
            hidden, _ = self.lstm(features)
        else:  # packed, so padding never reaches the backward direction of a shorter row
            packed = nn.utils.rnn.pack_padded_sequence(features, lengths.cpu(), batch_first=True, enforce_sorted=False)
            hidden, _ = nn.utils.rnn.pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=length)
        hidden = self.dropout(hidden)
        return self.case_head(hidden), self.mark_head(hidden)

    def encode(self, words: Sequence[str]) -> tuple[list[int], list[list[int]]]:
        """Word ids and character ids (unpadded) for words as the recogniser writes them; anything else
        (digits, other scripts) is looked up lowercased and reads as unknown characters."""
        ids, chars = [], []
        for word in words:
            key = word.lower()
            ids.append(self.index.get(key, UNKNOWN))
            chars.append([ALPHABET.index(c) + 2 if c in ALPHABET else UNKNOWN for c in key[: self.config.max_chars]] or [UNKNOWN])
        return ids, chars


def pad_batch(encoded: Sequence[tuple[list[int], list[list[int]]]], max_chars: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoded lines -> words [B, L] and chars [B, L, C = max_chars], padded with PAD. Always the full
    width: the character CNN's maximum also reads the padding just past a word (through its kernel and
    its bias), so a width set by the batch's longest word made a line's labels depend on what it was
    batched with (9 of 600 sentences differed alone and together). The restorer's figures are
    measured at the full width."""
    length = max(len(ids) for ids, _ in encoded)
    width = max_chars
    words = torch.zeros(len(encoded), length, dtype=torch.long)
    chars = torch.zeros(len(encoded), length, width, dtype=torch.long)
    for row, (ids, spelled) in enumerate(encoded):
        words[row, : len(ids)] = torch.tensor(ids)
        for position, c in enumerate(spelled):
            chars[row, position, : len(c)] = torch.tensor(c)
    return words, chars


class PunctuationModelError(ValueError):
    """A restorer file is missing, foreign or damaged; one line naming the file."""


# Weight matrices of at least this many values are stored as int8 rows, each with its own float16 scale
# (its largest magnitude / 127): half the file of float16, and the same labels within noise (the two-layer
# restorer on the dev text, 2026-12-07: F1 0.6669 -> 0.6667 on book and 0.7534 -> 0.7539 on modern text,
# case accuracy 97.62 -> 97.64 % and 95.59 -> 95.60 %). Everything else stays float16.
INT8_MIN_VALUES = 1024
SCALE_SUFFIX = ".row_scale"


def save_restorer(model: PunctuationModel, path: str | Path) -> None:
    """Write the weights (large matrices as int8 rows with a scale each, the rest float16) and the
    config (vocabulary included) to a safetensors file, atomically."""
    tensors = {}
    for name, value in model.state_dict().items():
        value = value.detach().float()
        if value.dim() == 2 and value.numel() >= INT8_MIN_VALUES:
            scale = (value.abs().amax(dim=1, keepdim=True) / 127).clamp_min(torch.finfo(torch.float16).tiny).half()
            tensors[name] = (value / scale.float()).round().clamp(-127, 127).to(torch.int8).contiguous()
            tensors[name + SCALE_SUFFIX] = scale.contiguous()
        else:
            tensors[name] = value.to(torch.float16).contiguous()
    with replacing(path) as temporary:
        save_file(tensors, str(temporary), metadata={"format": FORMAT, "config": json.dumps(asdict(model.config))})


def _weights(stored: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """float32 weights from a file's tensors: int8 rows times their scales, float16 as it is (files
    written before int8 rows hold float16 only)."""
    weights = {}
    for name, value in stored.items():
        if name.endswith(SCALE_SUFFIX):
            continue
        scale = stored.get(name + SCALE_SUFFIX)
        weights[name] = value.float() * scale.float() if scale is not None else value.float()
    return weights


def _config_from_json(text: str) -> PunctuationConfig:
    return flat_config_from_json(PunctuationConfig, text)


def load_restorer(path: str | Path) -> PunctuationModel:
    """Load a model written by `save_restorer`; never unpickles. Raises PunctuationModelError (a ValueError)
    with one line naming the file for anything it cannot use."""
    path = Path(path)
    if not path.is_file():
        raise PunctuationModelError(f"{path}: no such punctuation model file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            stored = {name: list(handle.get_slice(name).get_shape()) for name in handle.keys()}
    except Exception as error:
        raise PunctuationModelError(f"{path}: not a safetensors punctuation model ({first_line(error)})") from None
    if metadata.get("format") != FORMAT or "config" not in metadata:
        raise PunctuationModelError(f"{path}: not a speech_s2s punctuation model (no punctuation config in its metadata)")
    try:
        model = PunctuationModel(_config_from_json(metadata["config"]))
    except Exception as error:  # the config is data from the file
        raise PunctuationModelError(f"{path}: unusable punctuation config ({first_line(error)})") from None
    expected = {name: list(t.shape) for name, t in model.state_dict().items()}
    expected.update({name + SCALE_SUFFIX: [shape[0], 1] for name, shape in expected.items() if name + SCALE_SUFFIX in stored})
    if stored != expected:
        name = next(n for n in sorted(set(stored) | set(expected)) if stored.get(n) != expected.get(n))
        raise PunctuationModelError(f"{path}: weights do not match its config ({name}: {stored.get(name)} in the file, {expected.get(name)} expected)")
    model.load_state_dict(_weights(load_file(str(path))))
    return model.eval()
