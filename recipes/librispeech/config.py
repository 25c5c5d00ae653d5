"""The recipe's configuration: typed dataclasses, read from a TOML file whose tables map onto them 1:1.

    [data]        -> DataConfig            [launch]      -> LaunchConfig
    [model]       -> speech_s2s ModelConfig (nested [model.encoder], [model.decoder], [model.features])
    [train]       -> speech_s2s TrainConfig (nested [train.spec_augment]; device and augment are not set here)
    [average]     -> AverageConfig
    [lm.model]    -> speech_s2s CharLMConfig,   [lm.train] -> CharLMTrainConfig,   [lm] text, max_sentences
    [[decode]]    -> DecodeSetting: a name and speech_s2s DecodingOptions fields
    [[anchors]]   -> Anchor: a published result to compare with, shown beside ours in RESULTS.md

A field the TOML leaves out keeps its default; an unknown or mistyped one is an error naming it.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from speech_s2s.decoding.char_lm import CharLMConfig, CharLMTrainConfig
from speech_s2s.decoding.options import DecodingOptions
from speech_s2s.model.seq2seq import ModelConfig, build_config
from speech_s2s.training.loop import TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONF_DIR = Path(__file__).parent / "conf"


@dataclass(frozen=True)
class DataConfig:
    train_splits: tuple[str, ...] = ("train-clean-100",)
    dev_split: str = "dev-clean"  # checkpoint choice: dev_max_utterances of it, drawn across its speakers
    test_splits: tuple[str, ...] = ("dev-clean", "dev-other", "test-clean", "test-other")
    decode_audio: bool = True  # stage 0 decodes every file to its end (finds truncated FLACs; one pass over the audio)
    skip_invalid: bool = False  # go on with the valid part of a damaged corpus (else stage 0 stops, listing the problems)
    jobs: int = 4  # processes for stage 0's decoding and stage 2's features
    shard_size: int = 1000  # utterances per feature shard


@dataclass(frozen=True)
class LaunchConfig:
    """How stage 3 starts training: `python -m speech_s2s.cli train` for one process, torchrun for more."""

    nproc_per_node: int = 1  # processes (GPUs) per machine
    nnodes: int = 1
    torchrun_args: tuple[str, ...] = ()  # e.g. ["--rdzv-backend=c10d", "--rdzv-endpoint=host0:29400"] across machines
    device: str = ""  # "" = cuda when available, else cpu
    threads: int = 0  # CPU threads per process; 0 = speech-s2s's default


@dataclass(frozen=True)
class AverageConfig:
    count: int = 5  # epoch snapshots averaged into the model that is decoded; 0 = decode best.safetensors
    by: str = "best"  # "best": the epochs with the lowest dev WER; "last": the last ones


@dataclass(frozen=True)
class LMSection:
    text: str = "librispeech-lm-norm.txt"  # relative to the corpus root, or absolute; missing: the training transcripts
    max_sentences: int = 2_000_000  # a seeded sample of at most this many lines is read (bounded memory)
    model: CharLMConfig = CharLMConfig()
    train: CharLMTrainConfig = CharLMTrainConfig()


@dataclass(frozen=True)
class DecodeSetting:
    name: str
    options: DecodingOptions = DecodingOptions(beam_size=1, lm_weight=0.0, internal_lm_weight=0.0)

    @property
    def uses_lm(self) -> bool:
        return self.options.lm_weight > 0


@dataclass(frozen=True)
class Anchor:
    """A published result: WER % on test-clean / test-other, and where it comes from."""

    system: str
    source: str
    test_clean: float
    test_other: float
    lm: bool = False


@dataclass(frozen=True)
class RecipeConfig:
    name: str = "las_100h"
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    launch: LaunchConfig = LaunchConfig()
    average: AverageConfig = AverageConfig()
    lm: LMSection = LMSection()
    decode: tuple[DecodeSetting, ...] = (DecodeSetting("greedy"),)
    decode_batch_size: int = 16
    anchors: tuple[Anchor, ...] = field(default=())


class ConfigError(ValueError):
    """The configuration file is unusable; one line naming it and the field."""


def config_path(name_or_path: str) -> Path:
    """A config by name (`las_100h` is conf/las_100h.toml) or by path."""
    path = Path(name_or_path)
    return path if path.suffix == ".toml" or path.is_file() else CONF_DIR / f"{name_or_path}.toml"


def load_config(name_or_path: str) -> RecipeConfig:
    path = config_path(name_or_path)
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror or error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not TOML ({error})") from None
    try:
        return recipe_config(values, default_name=path.stem)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{path}: {error}") from None


def recipe_config(values: dict[str, Any], default_name: str = "recipe") -> RecipeConfig:
    """Build a RecipeConfig from the TOML's tables (ValueError naming the field if one is wrong)."""
    known = {f.name for f in dataclasses.fields(RecipeConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown tables or keys {unknown}")
    train = values.get("train", {})
    if {"device", "augment"} & set(train):
        raise ValueError("[train] sets neither device (see [launch]) nor augment (the recipe trains on cached features)")
    lm = dict(values.get("lm", {}))
    lm_model, lm_train = lm.pop("model", {}), lm.pop("train", {})
    decode = []
    for row in values.get("decode", [{"name": "greedy"}]):
        row = dict(row)
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(row.get("name", ""))):
            raise ValueError(f"[[decode]] {row}: name must be letters, digits, '_', '.' or '-' (it names files)")
        # A setting states what it uses: from greedy search without an LM, not from the product's
        # defaults (beam 16 with the bundled LMs), so a config's meaning never changes with them.
        name = row.pop("name")
        stated = build_config(DecodingOptions, row)
        decode.append(DecodeSetting(name, dataclasses.replace(DecodeSetting(name).options, **{key: getattr(stated, key) for key in row})))
    names = [d.name for d in decode]
    if len(set(names)) != len(names):
        raise ValueError(f"[[decode]] names repeat: {names}")
    average = build_config(AverageConfig, values.get("average", {}))
    if average.by not in ("best", "last"):
        raise ValueError(f"[average] by must be 'best' or 'last', not {average.by!r}")
    return RecipeConfig(
        name=values.get("name", default_name),
        data=build_config(DataConfig, values.get("data", {})),
        model=build_config(ModelConfig, values.get("model", {})),
        train=build_config(TrainConfig, train),
        launch=build_config(LaunchConfig, values.get("launch", {})),
        average=average,
        lm=LMSection(**{**build_config(LMSection, lm).__dict__, "model": build_config(CharLMConfig, lm_model),
            "train": build_config(CharLMTrainConfig, lm_train)}),
        decode=tuple(decode),
        decode_batch_size=values.get("decode_batch_size", 16),
        anchors=tuple(Anchor(**row) for row in values.get("anchors", [])),
    )
