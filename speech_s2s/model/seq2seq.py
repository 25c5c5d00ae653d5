"""The Listen-Attend-Spell network with a joint CTC branch: its config and its losses.

Waveforms -> log-mel -> global MVN -> pyramidal BiLSTM -> {CTC head, attention decoder}.
Files that hold a model are `files.py`'s.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from speech_s2s.frontend.features import FeatureConfig, GlobalMVN, LogMel
from speech_s2s.model.decoder import AttentionDecoder, DecoderConfig, Memory
from speech_s2s.model.encoder import (
    ChunkConfig,
    EncoderConfig,
    EncoderOutput,
    PyramidalEncoder,
)
from speech_s2s.text import BLANK_ID, EOS_ID, Vocabulary

IGNORE_INDEX = -100  # target padding, skipped by the cross-entropy


@dataclass(frozen=True)
class ModelConfig:
    features: FeatureConfig = FeatureConfig()
    encoder: EncoderConfig = EncoderConfig()
    decoder: DecoderConfig = DecoderConfig()
    vocabulary: tuple[str, ...] = Vocabulary().tokens
    ctc_weight: float = 0.3  # share of the CTC loss in the joint loss, as in ESPnet's hybrid models
    label_smoothing: float = 0.1


def build_config(cls: type, values: Any) -> Any:
    """Rebuild a (nested) frozen config dataclass from its JSON dict; lists become tuples again.

    Each value must have its default's type (an int where a float is expected is fine), so a
    damaged or hand-edited config fails here, with the field named, rather than deep in torch.
    """
    if not isinstance(values, dict):
        raise ValueError(f"{cls.__name__} must be an object, not {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(fields)
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    defaults = cls()
    kwargs = {}
    for key, value in values.items():
        default, where = getattr(defaults, key), f"{cls.__name__}.{key}"
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise ValueError(f"{where} must be an object, not {value!r}")
            value = build_config(type(default), value)
        elif isinstance(default, tuple):
            if not isinstance(value, list):
                raise ValueError(f"{where} must be a list, not {value!r}")
            for item in value:
                _check_scalar(f"{where} item", item, default[0] if default else item)
            value = tuple(value)
        elif default is not None:
            _check_scalar(where, value, default)
        kwargs[key] = value
    return cls(**kwargs)


def _check_scalar(where: str, value: Any, default: Any) -> None:
    """Raise unless value has default's JSON type (bool, int, float accepting ints, or str)."""
    expected = type(default)
    if expected is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise ValueError(f"{where} must be {expected.__name__}, not {value!r}")


def config_from_json(text: str) -> ModelConfig:
    """The config stored in a model file. Raises ValueError (JSONDecodeError included) if unusable."""
    values = json.loads(text)
    if not isinstance(values, dict):
        raise ValueError("config is not a JSON object")
    config = build_config(ModelConfig, values)
    if not 0 <= config.encoder.ctc_layer < config.encoder.num_layers:  # else CTC would read the features
        raise ValueError(f"encoder ctc_layer {config.encoder.ctc_layer} is not one of the {config.encoder.num_layers} encoder layers")
    return config


@dataclass
class LossOutput:
    loss: torch.Tensor
    attention_loss: torch.Tensor
    ctc_loss: torch.Tensor
    attention_accuracy: float
    attention_weights: torch.Tensor = field(repr=False)  # [B, L, T] for alignment plots


class Seq2Seq(nn.Module):
    def __init__(self, config: ModelConfig = ModelConfig()):
        super().__init__()
        self.config = config
        self.vocabulary = Vocabulary(config.vocabulary)
        self.logmel = LogMel(config.features)
        self.normalizer = GlobalMVN(config.features.n_mels, config.features.utterance_mean)
        if config.encoder.input_size != config.features.n_mels:
            raise ValueError("encoder input_size must equal features n_mels")
        self.encoder = PyramidalEncoder(config.encoder)
        self.ctc_head = nn.Linear(self.encoder.output_size, len(self.vocabulary))
        self.decoder = AttentionDecoder(len(self.vocabulary), self.encoder.output_size, config.decoder)
        # The active-level band (dB) of the training audio, which decoding scales speech into
        # (speech_s2s.frontend.level); None when unknown. Not a weight and not the model's shape: it travels
        # in the file's metadata, and a fine-tune keeps its start's, as it keeps its normalisation.
        self.input_level_db: tuple[float, float] | None = None

    def features(self, waveforms: torch.Tensor, num_samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Waveforms [B, S] at 16 kHz -> raw log-mel [B, T, F] and frame counts (not yet normalised)."""
        return self.logmel(waveforms, num_samples)

    def encode(self, feats: torch.Tensor, lengths: torch.Tensor, chunk: ChunkConfig | None = None) -> EncoderOutput:
        """Raw log-mel [B, T, F] -> encoder output (normalisation happens here).

        chunk None: full context; a `ChunkConfig`: the latency-controlled form a live decoder computes."""
        return self.encoder(self.normalizer(feats, lengths), lengths, chunk)

    def ctc_log_probs(self, encoded: EncoderOutput) -> torch.Tensor:
        """[B, T_ctc, V] log-probabilities over the vocabulary (index 0 is the blank)."""
        return F.log_softmax(self.ctc_head(encoded.ctc_input), dim=-1)

    def prepare_memory(self, encoded: EncoderOutput) -> Memory:
        return self.decoder.prepare(encoded.memory, encoded.memory_lengths)

    def loss(
        self,
        encoded: EncoderOutput,
        targets: torch.Tensor,
        target_lengths: torch.Tensor,
        ctc_weight: float | None = None,
        sampling_probability: float = 0.0,
    ) -> LossOutput:
        """Joint loss. targets [B, L] token ids right-padded with anything; target_lengths [B]."""
        ctc_weight = self.config.ctc_weight if ctc_weight is None else ctc_weight
        batch, max_len = targets.shape
        valid = torch.arange(max_len, device=targets.device)[None, :] < target_lengths[:, None]
        eos = torch.full((batch, 1), EOS_ID, dtype=targets.dtype, device=targets.device)
        previous = torch.cat([eos, targets.masked_fill(~valid, EOS_ID)], dim=1)  # <sos> y1 .. yL
        expected = torch.cat([targets.masked_fill(~valid, IGNORE_INDEX), eos.new_full((batch, 1), IGNORE_INDEX)], dim=1)
        expected[torch.arange(batch), target_lengths] = EOS_ID  # y1 .. yL <eos>

        log_probs = self.ctc_log_probs(encoded)
        ctc = F.ctc_loss(
            log_probs.transpose(0, 1), targets.masked_fill(~valid, 0), encoded.ctc_lengths, target_lengths,
            blank=BLANK_ID, reduction="mean", zero_infinity=True,
        )
        if ctc_weight >= 1.0:  # CTC-only warm start: skip the decoder entirely
            zero = ctc.new_zeros(())
            return LossOutput(ctc, zero, ctc, 0.0, ctc.new_zeros(batch, 1, 1))
        logits, weights = self.decoder(self.prepare_memory(encoded), previous, sampling_probability)
        attention = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), expected.reshape(-1),
            ignore_index=IGNORE_INDEX, label_smoothing=self.config.label_smoothing,
        )
        scored = expected != IGNORE_INDEX
        accuracy = float((logits.argmax(-1)[scored] == expected[scored]).float().mean())
        loss = ctc_weight * ctc + (1 - ctc_weight) * attention
        return LossOutput(loss, attention, ctc, accuracy, weights)
