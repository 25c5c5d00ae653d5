"""The `speech-s2s train` command: options, model and training configs from them, resuming, and the run.

Parsing only imports the standard library (the parser is built for every command, and `--help` must
stay quick); training code is imported when the command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from speech_s2s import atomic
from speech_s2s.cli.options import (
    MAX_DEFAULT_THREADS,
    apply_threads,
    fail,
    given,
    positive,
)

if TYPE_CHECKING:  # annotations only: training code is imported when the command runs
    from speech_s2s.data.batches import FeatureSet
    from speech_s2s.model.seq2seq import ModelConfig
    from speech_s2s.training.distributed import Distributed


def add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a model on LibriSpeech-layout corpora or manifests",
        description="Train a model; on several GPUs or machines, launch it with torchrun (torchrun --nproc_per_node N -m speech_s2s.cli train ...). "
        "--resume continues exactly; it may change the loss weights (--ctc-weight) and any training option but --seed and --max-frames "
        "(they fix which batches the saved position means) and --curriculum-epochs; the model's shape is refused. --init applies only when a run starts.",
    )
    p.add_argument("--train", nargs="+", required=True, help="training corpora: LibriSpeech split directories or .jsonl manifests")
    p.add_argument("--dev", required=True, help="dev corpus (directory or manifest)")
    p.add_argument("--exp", required=True, help="experiment directory (checkpoints, plots, models)")
    p.add_argument("--resume", action="store_true", help="continue from the experiment's last checkpoint")
    p.add_argument("--config", help="JSON file of ModelConfig fields (nested dicts for features/encoder/decoder)")
    p.add_argument("--train-config", metavar="JSON", help="JSON file of TrainConfig fields (a nested dict for spec_augment); options given here override it")
    p.add_argument("--init", metavar="MODEL", help="start from this model's weights, config and normalisation (.safetensors), e.g. to fine-tune")
    p.add_argument("--encoder-hidden", type=int, help="encoder LSTM units per direction")
    p.add_argument("--encoder-layers", type=int)
    p.add_argument("--decoder-hidden", type=int)
    p.add_argument("--ctc-weight", type=float, help="CTC share of the joint loss")
    p.add_argument("--utterance-mean-norm", action="store_true",
                   help="subtract each utterance's mean log-mel after the global normalisation (set when a run starts; "
                        "with --init, the fine-tune learns it)")
    p.add_argument("--epochs", type=int, help="default 30")
    p.add_argument("--max-frames", type=int, help="padded frames per batch (default 5000)")
    p.add_argument("--lr", type=float, help="peak learning rate (default 1e-3)")
    p.add_argument("--warmup-steps", type=int, help="default 500")
    p.add_argument("--decay", choices=["inverse_sqrt", "constant"], help="after warm-up (default inverse_sqrt)")
    p.add_argument("--ctc-only-steps", type=int, help="default 0")
    p.add_argument("--sampling-probability", type=float, help="scheduled sampling (default 0)")
    p.add_argument("--no-spec-augment", action="store_true")
    p.add_argument("--time-warp", type=int, help="SpecAugment time warp in frames (0 = off; default 0)")
    p.add_argument("--freq-masks", type=int, help="SpecAugment frequency masks per utterance (default 2)")
    p.add_argument("--freq-mask-width", type=int, help="widest frequency mask, in mel bins (default 27)")
    p.add_argument("--time-masks", type=int, help="SpecAugment time masks per utterance (default 2)")
    p.add_argument("--time-mask-width", type=int, help="widest time mask, in frames (default 40)")
    p.add_argument("--augment", nargs="?", const="medium", choices=["light", "medium", "strong", "channel"],
                   help="augment the training audio on the fly (speed, VTLP, rooms, noise, channel, codecs) at this strength "
                        "(default medium), or the microphone and line stages alone (channel)")
    p.add_argument("--noise-dir", action="append", default=[], help="with --augment: directory of noise/music audio files to mix in (repeatable)")
    p.add_argument("--rir-bank", help="with --augment: room impulse responses (.npz from tools/make_rir_bank.py)")
    p.add_argument("--curriculum-epochs", type=int, help="epochs whose batches run shortest first (default 1)")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--max-minutes", type=float, help="stop cleanly after this many minutes (resume later)")
    p.add_argument("--checkpoint-every", type=int, help="updates (default 200)")
    p.add_argument("--dev-max-utterances", type=int, help="default 200")
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--chunk-sizes", type=int, nargs="+", metavar="FRAMES",
                   help="dynamic chunk training: chunk sizes to draw from, in input frames (multiples of 8); default: full context only")
    p.add_argument("--chunk-right-contexts", type=int, nargs="+", metavar="FRAMES",
                   help="right context sizes to draw from with --chunk-sizes, in input frames (default 0)")
    p.add_argument("--full-context-probability", type=float,
                   help="with --chunk-sizes, the share of batches that still see full context (default 0.5)")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available, else cpu); under torchrun each process takes the GPU of its local rank")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], help="auto (default): bf16 autocast on GPUs that support it, else fp32")
    p.add_argument("--feature-dir", metavar="DIR", help="feature cache: a manifest NAME.jsonl's features are kept in DIR/NAME (default: in --exp)")
    p.add_argument("--threads", type=positive, help=f"CPU threads (default: the CPUs this process may use, at most {MAX_DEFAULT_THREADS})")
    p.set_defaults(run=_run_train)


def _augment_config(args: argparse.Namespace):
    if not args.augment:
        return None
    from speech_s2s.data.augment import preset

    return preset(args.augment, noise_dirs=tuple(str(Path(d).resolve()) for d in args.noise_dir), rir_bank=args.rir_bank and str(Path(args.rir_bank).resolve()))


MODEL_CONFIG = "model_config.json"  # in the experiment directory: the shape --resume rebuilds


def _save_model_config(exp: Path, config: ModelConfig) -> None:
    atomic.write_text(exp / MODEL_CONFIG, json.dumps(dataclasses.asdict(config), indent=2))


def _model_config(args: argparse.Namespace, exp: Path):
    from speech_s2s.model.seq2seq import ModelConfig, config_from_json

    saved = exp / MODEL_CONFIG
    if args.resume and saved.is_file():
        return _resumed_model_config(args, saved, config_from_json(saved.read_text()))
    config = config_from_json(Path(args.config).read_text()) if args.config else ModelConfig()
    encoder = dataclasses.replace(config.encoder, **{k: v for k, v in {"hidden_size": args.encoder_hidden,
        "num_layers": args.encoder_layers}.items() if v is not None})
    decoder = dataclasses.replace(config.decoder, **({"hidden_size": args.decoder_hidden} if args.decoder_hidden else {}))
    config = _with_start_options(args, dataclasses.replace(config, encoder=encoder, decoder=decoder))
    _save_model_config(exp, config)
    return config


def _with_start_options(args: argparse.Namespace, config: ModelConfig) -> ModelConfig:
    """A starting run's config with --ctc-weight and --utterance-mean-norm applied (a fresh model's or --init's)."""
    if args.ctc_weight is not None:
        config = dataclasses.replace(config, ctc_weight=args.ctc_weight)
    if args.utterance_mean_norm:
        config = dataclasses.replace(config, features=dataclasses.replace(config.features, utterance_mean=True))
    return config


# Model options a resume compares with the run's (a different value is refused): flag -> where it lives in ModelConfig.
SHAPE_OPTIONS = {"encoder_hidden": ("--encoder-hidden", "encoder", "hidden_size"), "encoder_layers": ("--encoder-layers", "encoder", "num_layers"),
                 "decoder_hidden": ("--decoder-hidden", "decoder", "hidden_size")}


def _resumed_model_config(args: argparse.Namespace, saved: Path, config: ModelConfig) -> ModelConfig:
    """The run's own config: shape options that differ are refused (not ignored); --ctc-weight may change."""
    from speech_s2s.model.seq2seq import config_from_json
    from speech_s2s.training.checkpoint import CHANGEABLE_MODEL_FIELDS, ResumeError

    for name, (flag, part, field_name) in SHAPE_OPTIONS.items():
        given, kept = getattr(args, name), getattr(getattr(config, part), field_name)
        if given is not None and given != kept:
            raise ResumeError(f"{saved}: {flag} {given} differs from the run's {kept}; "
                              "a resume cannot change the model's shape (drop it, or start a new --exp)")
    if args.config:
        wanted = config_from_json(Path(args.config).read_text())
        keep = {name: getattr(config, name) for name in CHANGEABLE_MODEL_FIELDS}
        if dataclasses.replace(wanted, **keep) != config:
            raise ResumeError(f"{saved}: --config {args.config} describes another model than the run's; "
                              "a resume cannot change it (drop it, or start a new --exp)")
    if args.utterance_mean_norm and not config.features.utterance_mean:
        raise ResumeError(f"{saved}: --utterance-mean-norm was not set when the run started; "
                          "a resume cannot change the normalisation (drop it, or start a new --exp)")
    if args.ctc_weight is not None and args.ctc_weight != config.ctc_weight:
        logging.info("resuming with ctc_weight %g (the run had %g until now)", args.ctc_weight, config.ctc_weight)
        config = dataclasses.replace(config, ctc_weight=args.ctc_weight)
        _save_model_config(saved.parent, config)
    return config


def _initial_model(args: argparse.Namespace, exp: Path):
    """A fresh model from --config, or one initialised from --init (its config saved for --resume)."""
    from speech_s2s.model.files import load_model
    from speech_s2s.model.seq2seq import Seq2Seq
    from speech_s2s.training.loop import CHECKPOINT

    # Resuming restores the weights from the checkpoint; without one, --init must still apply.
    if not args.init or (args.resume and (exp / CHECKPOINT).is_file() and (exp / MODEL_CONFIG).is_file()):
        return Seq2Seq(_model_config(args, exp))
    model = load_model(args.init).train()
    model.config = _with_start_options(args, model.config)
    model.normalizer.utterance_mean = model.config.features.utterance_mean  # built from the file's config
    _save_model_config(exp, model.config)
    return model


def _input_level(args: argparse.Namespace, train: FeatureSet) -> tuple[float, float] | None:
    """The level band decoding will scale speech into: the training audio's, measured on a sample
    (the same sample at every start, so a resumed run saves the same band); a fine-tune keeps its
    start's, as it keeps its normalisation (None when that file states none)."""
    from speech_s2s.frontend.level import measure_training_range
    from speech_s2s.model.files import read_model_info

    if args.init:
        return read_model_info(args.init).input_level_db
    band = measure_training_range(u.audio for u in train.utterances)
    logging.info("training audio's active level: %s", f"{band[0]:g}..{band[1]:g} dBFS" if band else "no speech found to measure")
    return band


def _run_train(args: argparse.Namespace) -> int:
    from speech_s2s.training import distributed

    context = distributed.setup(args.device)
    if not context.is_main:  # rank 0 speaks for the run
        logging.getLogger().setLevel(logging.WARNING)
    try:
        return _train(args, context)
    finally:
        distributed.teardown(context)


def _train_config(args: argparse.Namespace, device: str):
    """TrainConfig from --train-config (if given), then the options given on the command line."""
    from speech_s2s.frontend.features import SpecAugmentConfig
    from speech_s2s.model.seq2seq import build_config
    from speech_s2s.training.loop import TrainConfig

    config = TrainConfig()
    if args.train_config:
        values = json.loads(Path(args.train_config).read_text())
        if not isinstance(values, dict) or {"augment", "device"} & set(values):
            raise ValueError("must be a JSON object of TrainConfig fields, without augment and device (use --augment and --device)")
        config = build_config(TrainConfig, values)
    spec = given(freq_masks=args.freq_masks, freq_width=args.freq_mask_width, time_masks=args.time_masks, time_width=args.time_mask_width,
        time_warp=args.time_warp)
    spec_augment = None if args.no_spec_augment else (dataclasses.replace(config.spec_augment or SpecAugmentConfig(), **spec) if spec else config.spec_augment)
    return dataclasses.replace(
        config, spec_augment=spec_augment, device=device, augment=_augment_config(args),
        **given(
            epochs=args.epochs, max_frames=args.max_frames, learning_rate=args.lr, warmup_steps=args.warmup_steps, decay=args.decay,
            seed=args.seed, ctc_only_steps=args.ctc_only_steps, sampling_probability=args.sampling_probability,
            curriculum_epochs=args.curriculum_epochs, checkpoint_every=args.checkpoint_every, max_steps=args.max_steps, max_minutes=args.max_minutes,
            dev_max_utterances=args.dev_max_utterances, full_context_probability=args.full_context_probability, precision=args.precision,
            chunk_sizes=tuple(args.chunk_sizes) if args.chunk_sizes is not None else None,
            chunk_right_contexts=tuple(args.chunk_right_contexts) if args.chunk_right_contexts is not None else None,
        ),
    )


def _feature_cache(args: argparse.Namespace, exp: Path, source: str, default_name: str) -> Path:
    """Where a corpus's features are cached: DIR/NAME for manifest NAME.jsonl with --feature-dir, else in the experiment."""
    if args.feature_dir:
        return Path(args.feature_dir) / (Path(source).stem if source.endswith(".jsonl") else Path(source).name)
    return exp / default_name


def _train(args: argparse.Namespace, context: Distributed) -> int:
    apply_threads(args)
    import torch

    from speech_s2s.data.batches import FeatureSet, compute_features
    from speech_s2s.data.corpus import CorpusError, load_corpus
    from speech_s2s.model.encoder import ChunkConfig
    from speech_s2s.model.files import ModelFileError
    from speech_s2s.training import distributed
    from speech_s2s.training.checkpoint import ResumeError
    from speech_s2s.training.loop import fit

    exp = Path(args.exp)
    if (args.noise_dir or args.rir_bank) and not args.augment:
        return fail("--noise-dir and --rir-bank need --augment")
    for missing in [d for d in args.noise_dir if not Path(d).is_dir()] + [f for f in [args.rir_bank] if f and not Path(f).is_file()]:
        return fail(f"{missing}: no such {'file' if missing == args.rir_bank else 'directory'}")
    if args.init and (args.config or args.encoder_hidden or args.encoder_layers or args.decoder_hidden):
        return fail("--init takes the model's shape from MODEL; drop --config/--encoder-*/--decoder-*")
    if args.precision == "bf16" and not context.device.startswith("cuda"):
        return fail("--precision bf16 needs a CUDA device")
    try:
        config = _train_config(args, context.device)
    except (OSError, ValueError) as error:
        return fail(f"--train-config {args.train_config}: {error}")
    torch.manual_seed(config.seed)  # a new model's weights come from the seed too, not from whatever ran before
    try:
        model = _initial_model(args, exp)
    except (ModelFileError, ResumeError) as error:
        return fail(str(error))
    try:
        for size in config.chunk_sizes:
            for context_frames in config.chunk_right_contexts:
                model.encoder.check_chunk(ChunkConfig(size, context_frames))
    except ValueError as error:
        return fail(f"--chunk-sizes/--chunk-right-contexts: {error}")
    try:
        if not context.is_main:  # rank 0 computes what the cache lacks; the others then find it all there
            distributed.barrier(context)
        train_sets = [
            compute_features(load_corpus(source, model.vocabulary), model.logmel, model.vocabulary, _feature_cache(args, exp, source, f"feats-train{index}"))
            for index, source in enumerate(args.train)
        ]
        dev = compute_features(load_corpus(args.dev, model.vocabulary), model.logmel, model.vocabulary, _feature_cache(args, exp, args.dev, "feats-dev"))
    except CorpusError as error:
        return fail(str(error))
    finally:
        if context.is_main:
            distributed.barrier(context)
    train = FeatureSet.concatenate(train_sets)
    if not args.init:  # a model we start from keeps its statistics: its weights were learnt on them
        model.normalizer.set_stats(*train.stats())
    try:
        model.input_level_db = _input_level(args, train)
    except ModelFileError as error:
        return fail(str(error))
    parameters = sum(p.numel() for p in model.parameters())
    hours = sum(u.duration for u in train.utterances) / 3600
    logging.info("training %.1fM parameters on %d utterances (%.2f h), dev %d, into %s, on %d process(es)", parameters / 1e6, len(train), hours,
        len(dev), exp, context.world_size)
    try:
        state = fit(model, train, dev, config, exp, resume=args.resume, context=context)
    except ResumeError as error:
        return fail(str(error))
    logging.info("stopped at step %d, epoch %d; best dev WER %.2f%%", state.step, state.epoch, 100 * state.best_wer)
    return 0
