"""The Listen-Attend-Spell model with a joint CTC branch: config, losses, save, load and describe.

Waveforms -> log-mel -> global MVN -> pyramidal BiLSTM -> {CTC head, attention decoder}.
Checkpoints are safetensors files: weights plus the config (vocabulary included), the training
audio's level range and optional free-form `info` (training data, steps, metrics) as JSON
metadata, so loading never unpickles code.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F

from speech_s2s.atomic import replacing
from speech_s2s.decoder import AttentionDecoder, DecoderConfig, Memory
from speech_s2s.encoder import ChunkConfig, EncoderConfig, EncoderOutput, PyramidalEncoder
from speech_s2s.errors import first_line
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
        self.normalizer = GlobalMVN(config.features.n_mels)
        if config.encoder.input_size != config.features.n_mels:
            raise ValueError("encoder input_size must equal features n_mels")
        self.encoder = PyramidalEncoder(config.encoder)
        self.ctc_head = nn.Linear(self.encoder.output_size, len(self.vocabulary))
        self.decoder = AttentionDecoder(len(self.vocabulary), self.encoder.output_size, config.decoder)
        # The active-level band (dB) of the training audio, which decoding scales speech into
        # (speech_s2s.level); None when unknown. Not a weight and not the model's shape: it travels
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


FEATURE_CONSTANTS = "logmel."  # state-dict prefix of the log-mel extractor's window and filterbank (not learnt)


def save_model(model: Seq2Seq, path: str | Path, dtype: torch.dtype | None = None, info: dict[str, Any] | None = None) -> None:
    """Write weights and config to a safetensors file, atomically (temp file, then rename).

    dtype=torch.float16 halves the file (for shipping); `load_model` restores float32. `info` is
    free-form JSON metadata about where the model came from, shown by `read_model_info`: e.g.
    {"data": "train-clean-100", "hours": 100.6, "steps": 42000, "dev": {"wer": 0.12},
    "created": "2026-11-29T03:00:00Z", "command": "speech-s2s train ..."}. Values JSON cannot hold
    (paths, dates) are stored as their str().
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": "speech_s2s", "format_version": str(FORMAT_VERSION), "config": json.dumps(dataclasses.asdict(model.config))}
    if model.input_level_db is not None:
        metadata[INPUT_LEVEL_KEY] = json.dumps(list(model.input_level_db))
    if info:
        metadata["info"] = json.dumps(info, default=str)
    tensors = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    if dtype is not None:  # the feature constants stay float32, for readers that still load them
        tensors = {name: t.to(dtype) if t.is_floating_point() and not name.startswith(FEATURE_CONSTANTS) else t
                   for name, t in tensors.items()}
    with replacing(path) as temporary:
        save_file(tensors, str(temporary), metadata=metadata)


class CheckpointError(ValueError):
    """A model file is missing, foreign or damaged; the one-line message names the file and the cause."""


INPUT_LEVEL_KEY = "input_level_db"  # metadata: [low, high], the training audio's active-level band


def _input_level(path: Path, metadata: dict[str, str]) -> tuple[float, float] | None:
    if INPUT_LEVEL_KEY not in metadata:
        return None
    text = metadata[INPUT_LEVEL_KEY]
    try:
        values = json.loads(text)
    except json.JSONDecodeError:
        values = None
    if (not isinstance(values, list) or len(values) != 2 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values)
            or values[0] >= values[1]):
        raise CheckpointError(f"{path}: {INPUT_LEVEL_KEY} metadata {text!r} is not a [low, high] pair of dB levels")
    return float(values[0]), float(values[1])


# safetensors dtype codes, as torch names them.
_DTYPE_NAMES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64", "I32": "int32", "I16": "int16", "I8": "int8", "U8": "uint8", "BOOL": "bool"}


def _dtype_name(code: str) -> str:
    return _DTYPE_NAMES.get(code, code.lower())


@dataclass
class _Checkpoint:
    """What a model file holds, checked against itself, before any weight is read."""

    metadata: dict[str, str]
    stored: dict[str, tuple[list[int], str]]  # tensor name -> (shape, safetensors dtype code)
    model: Seq2Seq  # freshly initialised from the file's config; its state_dict matches `stored`
    info: dict[str, Any]


def _open_checkpoint(path: Path) -> _Checkpoint:
    """Read and check a model file's header: metadata, config, and each tensor's name, shape and dtype."""
    from safetensors import safe_open

    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            stored = {}
            for name in handle.keys():
                tensor = handle.get_slice(name)
                stored[name] = (list(tensor.get_shape()), tensor.get_dtype())
    except Exception as error:  # safetensors reports a foreign or damaged file in several exception types
        raise CheckpointError(f"{path}: not a safetensors model file ({first_line(error)})") from None
    if metadata.get("format") != "speech_s2s" or "config" not in metadata:
        raise CheckpointError(f"{path}: not a speech_s2s model (no speech_s2s config in its metadata)")
    version = metadata.get("format_version", "1")
    if not version.isdigit():
        raise CheckpointError(f"{path}: format version {version!r} is not a number")
    if int(version) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {version} is newer than this speech_s2s reads ({FORMAT_VERSION}); upgrade speech_s2s")
    try:
        config = config_from_json(metadata["config"])
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: config metadata is not JSON ({error})") from None
    except ValueError as error:
        raise CheckpointError(f"{path}: unusable config ({error})") from None
    try:
        model = Seq2Seq(config)
    except Exception as error:  # values of the right type the modules still reject (sizes, vocabulary)
        raise CheckpointError(f"{path}: config does not make a model ({first_line(error)})") from None
    try:
        info = json.loads(metadata.get("info", "{}"))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path}: info metadata is not JSON ({error})") from None
    if not isinstance(info, dict):
        raise CheckpointError(f"{path}: info metadata is not a JSON object")
    model.input_level_db = _input_level(path, metadata)
    for name, expected in model.state_dict().items():
        if name not in stored:
            raise CheckpointError(f"{path}: weights do not match its config ({name} is missing)")
        shape, code = stored[name]
        if shape != list(expected.shape):
            raise CheckpointError(f"{path}: {name} has shape {shape} in the file; the config needs {list(expected.shape)}")
        if expected.is_floating_point() and not code.startswith(("F", "BF")):
            raise CheckpointError(f"{path}: {name} holds {_dtype_name(code)} values; floating point expected")
        if not expected.is_floating_point() and _dtype_name(code) != str(expected.dtype).removeprefix("torch."):
            raise CheckpointError(f"{path}: {name} holds {_dtype_name(code)} values; {expected.dtype} expected")
    unexpected = sorted(set(stored) - set(model.state_dict()))
    if unexpected:
        raise CheckpointError(f"{path}: weights do not match its config (unexpected {unexpected[:3]})")
    return _Checkpoint(metadata, stored, model, info)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> Seq2Seq:
    """Load a model written by `save_model`. Never executes code from the file.

    Raises CheckpointError, one line naming the file and the cause, for anything it cannot use.
    """
    path = Path(path)
    checkpoint = _open_checkpoint(path)
    try:
        tensors = load_file(str(path), device=str(device))
    except Exception as error:
        raise CheckpointError(f"{path}: cannot read its weights ({first_line(error)})") from None
    tensors = {name: t.float() if t.is_floating_point() else t for name, t in tensors.items()}
    # The feature extractor's Hann window and mel filterbank follow from the config and are kept as
    # the fresh model computed them, not read back: a float16 file rounds the window by up to 2.4e-4,
    # which raises its spectral leakage and moved quiet log-mel bins by up to 1.0 against the
    # streaming extractor's exact window (so live partials and offline decoding differed).
    tensors.update({name: t for name, t in checkpoint.model.state_dict().items() if name.startswith(FEATURE_CONSTANTS)})
    checkpoint.model.load_state_dict(tensors)  # names, shapes and dtypes were checked above
    return checkpoint.model.to(device).eval()


@dataclass(frozen=True)
class ModelInfo:
    """What `speech-s2s info` shows about a model file; `to_dict()` is its JSON form."""

    path: Path
    file_size: int  # bytes
    parameters: int  # trainable weights (not the mel filterbank or normalisation statistics)
    dtype: str  # of the stored floating-point weights: "float32", "float16", or e.g. "float16+float32"
    config: ModelConfig
    vocabulary: tuple[str, ...]
    feature_mean: tuple[float, float]  # (lowest, highest) per-mel-bin mean of the normalisation statistics
    feature_std: tuple[float, float]  # the same for the standard deviation
    info: dict[str, Any]  # what save_model stored (training data, steps, metrics, ...); {} when none
    format_version: int
    input_level_db: tuple[float, float] | None = None  # the training audio's level band; None: not stated

    @property
    def normalization_set(self) -> bool:
        """False when the statistics are still the identity (mean 0, std 1): never estimated."""
        return self.feature_mean != (0.0, 0.0) or self.feature_std != (1.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        fields = dataclasses.asdict(self)
        fields["path"] = str(self.path)
        fields["normalization_set"] = self.normalization_set
        return fields


def read_model_info(path: str | Path) -> ModelInfo:
    """Describe a model file from its header and normalisation statistics, without reading the
    other weights. Raises CheckpointError exactly as `load_model` would."""
    from safetensors import safe_open

    path = Path(path)
    checkpoint = _open_checkpoint(path)
    parameter_names = {name for name, _ in checkpoint.model.named_parameters()}
    parameters = sum(math.prod(checkpoint.stored[name][0]) for name in parameter_names)
    codes = sorted({_dtype_name(checkpoint.stored[name][1]) for name in parameter_names})
    try:
        with safe_open(str(path), framework="pt") as handle:
            mean, std = handle.get_tensor("normalizer.mean").float(), handle.get_tensor("normalizer.std").float()
    except Exception as error:
        raise CheckpointError(f"{path}: cannot read its normalisation statistics ({first_line(error)})") from None
    return ModelInfo(
        path=path,
        file_size=path.stat().st_size,
        parameters=parameters,
        dtype="+".join(codes),
        config=checkpoint.model.config,
        vocabulary=checkpoint.model.config.vocabulary,
        feature_mean=(float(mean.min()), float(mean.max())),
        feature_std=(float(std.min()), float(std.max())),
        info=checkpoint.info,
        format_version=int(checkpoint.metadata.get("format_version", "1")),
        input_level_db=checkpoint.model.input_level_db,
    )


def format_model_info(info: ModelInfo) -> str:
    """A human-readable, multi-line report of a model file (what `speech-s2s info MODEL` prints)."""
    config = info.config
    encoder, decoder, features = config.encoder, config.decoder, config.features
    reduction = 2 ** len(encoder.reduce_before)
    ctc_reduction = 2 ** sum(1 for layer in encoder.reduce_before if layer <= encoder.ctc_layer)
    frame_rate = features.sample_rate / features.hop_length
    if info.normalization_set:
        normalization = f"mean {info.feature_mean[0]:.2f}..{info.feature_mean[1]:.2f}, std {info.feature_std[0]:.2f}..{info.feature_std[1]:.2f}"
    else:
        normalization = "not set (mean 0, std 1)"
    characters = "".join(t for t in info.vocabulary if len(t) == 1)
    special = " ".join(t for t in info.vocabulary if len(t) != 1)
    lines = [
        f"file:          {info.path} ({info.file_size / 2**20:.1f} MiB, format version {info.format_version})",
        f"parameters:    {info.parameters / 1e6:.2f}M, stored as {info.dtype}",
        f"vocabulary:    {len(info.vocabulary)} tokens: {special} {characters!r}",
        f"features:      {features.n_mels} log-mel bins, {1000 * features.n_fft / features.sample_rate:g} ms window, {frame_rate:g} frames/s; normalisation {normalization}",
        f"encoder:       {encoder.num_layers} BiLSTM layers x {encoder.hidden_size} per direction, {reduction}x time reduction "
        f"({frame_rate / reduction:g} Hz); CTC reads layer {encoder.ctc_layer} ({frame_rate / ctc_reduction:g} Hz)",
        f"decoder:       {decoder.num_layers} LSTM layer(s) x {decoder.hidden_size}, embedding {decoder.embedding_size}, "
        f"location-aware attention {decoder.attention.attention_size}",
        f"training loss: CTC weight {config.ctc_weight:g}, label smoothing {config.label_smoothing:g}",
        "input level:   " + (f"{info.input_level_db[0]:g}..{info.input_level_db[1]:g} dBFS (the training audio's); quieter or louder speech is scaled into it"
                             if info.input_level_db else "not stated: decoding scales speech into the bundled model's band"),
    ]
    if not info.info:
        lines.append("info:          none stored")
    else:
        lines.append("info:")
        lines += [f"  {key}: {value}" for key, value in _flatten(info.info)]
    return "\n".join(lines)


def _flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested info dicts as dotted keys; lists and other values as compact JSON (strings bare)."""
    items = []
    for key, value in values.items():
        if isinstance(value, dict) and value:
            items += _flatten(value, f"{prefix}{key}.")
        else:
            items.append((f"{prefix}{key}", value if isinstance(value, str) else json.dumps(value)))
    return items


def average_models(paths: list[str | Path], weights: list[float] | None = None) -> Seq2Seq:
    """The element-wise mean of several snapshots of one model, as ESPnet and WeNet average epochs.

    Snapshots late in a run sit around a minimum; their mean usually generalises a little better
    than any one of them. All files must share one config (shape, vocabulary); integer buffers must
    agree exactly, since averaging them has no meaning; so must the input level ranges the files
    state (a file that states none takes the others').

    `weights` (one per file, normalised to sum to 1) makes it a weighted mean: interpolating a
    fine-tuned model with the model it started from (WiSE-FT, Wortsman et al. 2022) keeps some of
    what the fine-tune forgot while keeping most of what it learnt.
    """
    if not paths:
        raise CheckpointError("no model files to average")
    if weights is None:
        weights = [1.0] * len(paths)
    if len(weights) != len(paths):
        raise CheckpointError(f"{len(weights)} weights for {len(paths)} model files; give one weight per file")
    if min(weights) < 0 or sum(weights) <= 0:
        raise CheckpointError(f"weights {weights}: each must be >= 0 and their sum > 0")
    shares = [w / sum(weights) for w in weights]
    first = load_model(paths[0])
    totals = {name: t.double() * shares[0] if t.is_floating_point() else t for name, t in first.state_dict().items()}
    for path, share in zip(paths[1:], shares[1:]):
        model = load_model(path)
        if model.config != first.config:
            raise CheckpointError(f"{path}: config differs from {paths[0]}; only snapshots of one model can be averaged")
        if model.input_level_db is not None:
            if first.input_level_db not in (None, model.input_level_db):
                raise CheckpointError(f"{path}: its input level range {model.input_level_db} differs from {first.input_level_db} of the files before it")
            first.input_level_db = model.input_level_db
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                totals[name] += tensor.double() * share
            elif not torch.equal(tensor, totals[name]):
                raise CheckpointError(f"{path}: integer buffer {name} differs from {paths[0]}")
    first.load_state_dict({name: t.float() if t.is_floating_point() else t for name, t in totals.items()})
    return first


def average_info(paths: list[str | Path], weights: list[float] | None = None) -> dict[str, Any]:
    """The info to store with `average_models(paths, weights)`: the last file's (the newest snapshot of
    a run, or the fine-tuned model interpolated with its start: what it was trained on, how long), plus
    the files averaged and their weights. Files are named relative to the working directory when inside
    it, else by name, so that a model made for shipping does not carry the folders of the machine that
    made it."""
    if not paths:
        raise CheckpointError("no model files to average")
    info = {**read_model_info(paths[-1]).info, "averaged": [_portable_name(p) for p in paths]}
    if weights is not None:
        info["average_weights"] = list(weights)
    return info


def _portable_name(path: str | Path) -> str:
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return path.name


# What int8 dynamic quantisation covers: the encoder's LSTMs and the CTC head. The decoder stays
# float32: search runs it as a `ProjectedDecoder`, which reads its float weights and was as fast
# as the int8 decoder's plain steps (greedy and beam 8 on 100 test-tts utterances, within this
# machine's noise); the attention reads its small layers' weights directly too.
INT8_PARTS = ("encoder", "ctc_head")


def quantize_int8(model: Seq2Seq, parts: tuple[str, ...] = INT8_PARTS) -> Seq2Seq:
    """A copy for CPU inference with int8 weights in the LSTMs, LSTM cells and linear layers of `parts`
    (submodule names; dynamic quantisation: activations are quantised on the fly, batch by batch);
    the rest stays float32."""
    import warnings

    with warnings.catch_warnings():  # torch marks torch.ao.quantization deprecated (still present in 2.14)
        warnings.filterwarnings("ignore", message=".*deprecated", category=UserWarning)
        warnings.filterwarnings("ignore", message=".*deprecated", category=DeprecationWarning)
        from torch.ao.quantization import quantize_dynamic

        return quantize_dynamic(model.eval(), set(parts), dtype=torch.qint8, inplace=False)
