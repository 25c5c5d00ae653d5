"""The Listen-Attend-Spell model with a joint CTC branch: config, losses, save and load.

Waveforms -> log-mel -> global MVN -> pyramidal BiLSTM -> {CTC head, attention decoder}.
Checkpoints are safetensors files: weights plus the config (vocabulary included) as JSON
metadata, so loading never unpickles code.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from speech_s2s.attention import AttentionConfig
from speech_s2s.decoder import AttentionDecoder, DecoderConfig, Memory
from speech_s2s.encoder import EncoderConfig, EncoderOutput, PyramidalEncoder
from speech_s2s.features import FeatureConfig, GlobalMVN, LogMel
from speech_s2s.text import BLANK_ID, EOS_ID, Vocabulary

FORMAT_VERSION = 1
IGNORE_INDEX = -100  # target padding, skipped by the cross-entropy


@dataclass(frozen=True)
class ModelConfig:
    features: FeatureConfig = FeatureConfig()
    encoder: EncoderConfig = EncoderConfig()
    decoder: DecoderConfig = DecoderConfig()
    vocabulary: tuple[str, ...] = Vocabulary().tokens
    ctc_weight: float = 0.3  # share of the CTC loss in the joint loss, as in ESPnet's hybrid models
    label_smoothing: float = 0.1


_NESTED = {"features": FeatureConfig, "encoder": EncoderConfig, "decoder": DecoderConfig, "attention": AttentionConfig}


def _build(cls: type, values: dict[str, Any]) -> Any:
    """Rebuild a (nested) frozen config dataclass from its JSON dict; lists become tuples again."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    kwargs = {}
    for key, value in values.items():
        if key in _NESTED and isinstance(value, dict):
            value = _build(_NESTED[key], value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def config_from_json(text: str) -> ModelConfig:
    return _build(ModelConfig, json.loads(text))


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
        self.normalizer = GlobalMVN(config.features.n_mels)
        if config.encoder.input_size != config.features.n_mels:
            raise ValueError("encoder input_size must equal features n_mels")
        self.encoder = PyramidalEncoder(config.encoder)
        self.ctc_head = nn.Linear(self.encoder.output_size, len(self.vocabulary))
        self.decoder = AttentionDecoder(len(self.vocabulary), self.encoder.output_size, config.decoder)

    def features(self, waveforms: torch.Tensor, num_samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Waveforms [B, S] at 16 kHz -> raw log-mel [B, T, F] and frame counts (not yet normalised)."""
        return self.logmel(waveforms, num_samples)

    def encode(self, feats: torch.Tensor, lengths: torch.Tensor) -> EncoderOutput:
        """Raw log-mel [B, T, F] -> encoder output (normalisation happens here)."""
        return self.encoder(self.normalizer(feats, lengths), lengths)

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


def save_model(model: Seq2Seq, path: str | Path, dtype: torch.dtype | None = None) -> None:
    """Write weights and config to a safetensors file, atomically (temp file, then rename).

    dtype=torch.float16 halves the file (for shipping); `load_model` restores float32.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": "speech_s2s", "format_version": str(FORMAT_VERSION), "config": json.dumps(dataclasses.asdict(model.config))}
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    if dtype is not None:
        tensors = {name: t.to(dtype) if t.is_floating_point() else t for name, t in tensors.items()}
    temporary = path.with_name(path.name + ".tmp")
    save_file(tensors, str(temporary), metadata=metadata)
    os.replace(temporary, path)


class CheckpointError(ValueError):
    """A model file is missing, foreign or damaged; the message names the file."""


def load_model(path: str | Path, device: str | torch.device = "cpu") -> Seq2Seq:
    """Load a model written by `save_model`. Never executes code from the file."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path), device=str(device))
    except Exception as error:
        raise CheckpointError(f"{path}: not a safetensors model file ({str(error).splitlines()[0] if str(error) else type(error).__name__})") from None
    if metadata.get("format") != "speech_s2s" or "config" not in metadata:
        raise CheckpointError(f"{path}: not a speech_s2s model (no speech_s2s config in its metadata)")
    model = Seq2Seq(config_from_json(metadata["config"]))
    tensors = {name: t.float() if t.is_floating_point() else t for name, t in tensors.items()}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match its config (missing {missing[:3]}, unexpected {unexpected[:3]})")
    return model.to(device).eval()


def average_models(paths: list[str | Path]) -> Seq2Seq:
    """The element-wise mean of several snapshots of one model, as ESPnet and WeNet average epochs.

    Snapshots late in a run sit around a minimum; their mean usually generalises a little better
    than any one of them. All files must share one config (shape, vocabulary); integer buffers must
    agree exactly, since averaging them has no meaning.
    """
    if not paths:
        raise CheckpointError("no model files to average")
    first = load_model(paths[0])
    totals = {name: t.double() if t.is_floating_point() else t for name, t in first.state_dict().items()}
    for path in paths[1:]:
        model = load_model(path)
        if model.config != first.config:
            raise CheckpointError(f"{path}: config differs from {paths[0]}; only snapshots of one model can be averaged")
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                totals[name] += tensor.double()
            elif not torch.equal(tensor, totals[name]):
                raise CheckpointError(f"{path}: integer buffer {name} differs from {paths[0]}")
    first.load_state_dict({name: (t / len(paths)).float() if t.is_floating_point() else t for name, t in totals.items()})
    return first
