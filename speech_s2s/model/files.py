"""Model files: save, load, describe, average and quantise a `Seq2Seq`.

A model file is a safetensors file: the weights plus the config (vocabulary included), the
training audio's level range and optional free-form `info` (training data, steps, metrics) as
JSON metadata, so loading never unpickles code. Training state (optimiser, sampler, random
state) is a different file, `training/checkpoint.py`'s.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from speech_s2s.atomic import replacing
from speech_s2s.errors import first_line
from speech_s2s.model.seq2seq import ModelConfig, Seq2Seq, config_from_json

FORMAT_VERSION = 1

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


class ModelFileError(ValueError):
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
        raise ModelFileError(f"{path}: {INPUT_LEVEL_KEY} metadata {text!r} is not a [low, high] pair of dB levels")
    return float(values[0]), float(values[1])


# safetensors dtype codes, as torch names them.
_DTYPE_NAMES = {"F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16", "I64": "int64", "I32": "int32", "I16": "int16",
    "I8": "int8", "U8": "uint8", "BOOL": "bool"}


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
        raise ModelFileError(f"{path}: no such model file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            stored = {}
            for name in handle.keys():
                tensor = handle.get_slice(name)
                stored[name] = (list(tensor.get_shape()), tensor.get_dtype())
    except Exception as error:  # safetensors reports a foreign or damaged file in several exception types
        raise ModelFileError(f"{path}: not a safetensors model file ({first_line(error)})") from None
    if metadata.get("format") != "speech_s2s" or "config" not in metadata:
        raise ModelFileError(f"{path}: not a speech_s2s model (no speech_s2s config in its metadata)")
    version = metadata.get("format_version", "1")
    if not version.isdigit():
        raise ModelFileError(f"{path}: format version {version!r} is not a number")
    if int(version) > FORMAT_VERSION:
        raise ModelFileError(f"{path}: format version {version} is newer than this speech_s2s reads ({FORMAT_VERSION}); upgrade speech_s2s")
    try:
        config = config_from_json(metadata["config"])
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{path}: config metadata is not JSON ({error})") from None
    except ValueError as error:
        raise ModelFileError(f"{path}: unusable config ({error})") from None
    try:
        model = Seq2Seq(config)
    except Exception as error:  # values of the right type the modules still reject (sizes, vocabulary)
        raise ModelFileError(f"{path}: config does not make a model ({first_line(error)})") from None
    try:
        info = json.loads(metadata.get("info", "{}"))
    except json.JSONDecodeError as error:
        raise ModelFileError(f"{path}: info metadata is not JSON ({error})") from None
    if not isinstance(info, dict):
        raise ModelFileError(f"{path}: info metadata is not a JSON object")
    model.input_level_db = _input_level(path, metadata)
    for name, expected in model.state_dict().items():
        if name not in stored:
            raise ModelFileError(f"{path}: weights do not match its config ({name} is missing)")
        shape, code = stored[name]
        if shape != list(expected.shape):
            raise ModelFileError(f"{path}: {name} has shape {shape} in the file; the config needs {list(expected.shape)}")
        if expected.is_floating_point() and not code.startswith(("F", "BF")):
            raise ModelFileError(f"{path}: {name} holds {_dtype_name(code)} values; floating point expected")
        if not expected.is_floating_point() and _dtype_name(code) != str(expected.dtype).removeprefix("torch."):
            raise ModelFileError(f"{path}: {name} holds {_dtype_name(code)} values; {expected.dtype} expected")
    unexpected = sorted(set(stored) - set(model.state_dict()))
    if unexpected:
        raise ModelFileError(f"{path}: weights do not match its config (unexpected {unexpected[:3]})")
    return _Checkpoint(metadata, stored, model, info)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> Seq2Seq:
    """Load a model written by `save_model`. Never executes code from the file.

    Raises ModelFileError, one line naming the file and the cause, for anything it cannot use.
    """
    path = Path(path)
    checkpoint = _open_checkpoint(path)
    try:
        tensors = load_file(str(path), device=str(device))
    except Exception as error:
        raise ModelFileError(f"{path}: cannot read its weights ({first_line(error)})") from None
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
    other weights. Raises ModelFileError exactly as `load_model` would."""
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
        raise ModelFileError(f"{path}: cannot read its normalisation statistics ({first_line(error)})") from None
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
        f"features:      {features.n_mels} log-mel bins, {1000 * features.n_fft / features.sample_rate:g} ms window, {frame_rate:g} frames/s; "
        f"normalisation {normalization}",
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
        raise ModelFileError("no model files to average")
    if weights is None:
        weights = [1.0] * len(paths)
    if len(weights) != len(paths):
        raise ModelFileError(f"{len(weights)} weights for {len(paths)} model files; give one weight per file")
    if min(weights) < 0 or sum(weights) <= 0:
        raise ModelFileError(f"weights {weights}: each must be >= 0 and their sum > 0")
    shares = [w / sum(weights) for w in weights]
    first = load_model(paths[0])
    totals = {name: t.double() * shares[0] if t.is_floating_point() else t for name, t in first.state_dict().items()}
    for path, share in zip(paths[1:], shares[1:]):
        model = load_model(path)
        if model.config != first.config:
            raise ModelFileError(f"{path}: config differs from {paths[0]}; only snapshots of one model can be averaged")
        if model.input_level_db is not None:
            if first.input_level_db not in (None, model.input_level_db):
                raise ModelFileError(f"{path}: its input level range {model.input_level_db} differs from {first.input_level_db} of the files before it")
            first.input_level_db = model.input_level_db
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                totals[name] += tensor.double() * share
            elif not torch.equal(tensor, totals[name]):
                raise ModelFileError(f"{path}: integer buffer {name} differs from {paths[0]}")
    first.load_state_dict({name: t.float() if t.is_floating_point() else t for name, t in totals.items()})
    return first


def average_info(paths: list[str | Path], weights: list[float] | None = None) -> dict[str, Any]:
    """The info to store with `average_models(paths, weights)`: the last file's (the newest snapshot of
    a run, or the fine-tuned model interpolated with its start: what it was trained on, how long), plus
    the files averaged and their weights. Files are named relative to the working directory when inside
    it, else by name, so that a model made for shipping does not carry the folders of the machine that
    made it."""
    if not paths:
        raise ModelFileError("no model files to average")
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


# What int8 dynamic quantisation covers: the encoder's LSTMs and the CTC head. The decoder's modules
# stay float32: search runs it as a `ProjectedDecoder`, which reads its float weights and was as fast
# as the int8 decoder's plain steps (greedy and beam 8 on 100 test-tts utterances, within this
# machine's noise); the attention reads its small layers' weights directly too. Its one large
# per-step product, the recurrent one, is int8 by default on the CPU (`AttentionDecoder.use_int8_search`).
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
