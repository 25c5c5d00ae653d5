"""`speech-s2s` command line: transcribe, train, score, prepare, train-lm, export, average. Thin: parsing and printing only."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from pathlib import Path

import torch


def _fail(message: str) -> int:
    print(f"speech-s2s: error: {message}", file=sys.stderr)
    return 1


# ---------------------------------------------------------------------------------------------- transcribe
def _add_transcribe(sub) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio files", description="Transcribe audio files (any rate, any channels).")
    p.add_argument("files", nargs="*", help="audio files (WAV, FLAC, OGG, MP3, ...)")
    p.add_argument("--file-list", help="text file with one audio path per line")
    p.add_argument("--model", help="model file (.safetensors); default: the bundled model")
    p.add_argument("--beam", type=int, default=1, help="beam size; 1 = greedy (default)")
    p.add_argument("--ctc-weight", type=float, default=None, help="CTC share of the joint beam score (default 0.3)")
    p.add_argument("--lm", help="character LM (.safetensors) for shallow fusion")
    p.add_argument("--lm-weight", type=float, default=None, help="LM weight for shallow fusion (default 0.3 with --lm)")
    p.add_argument("--length-bonus", type=float, default=None, help="score added per output token in beam search")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--output-format", choices=["txt", "jsonl"], default="txt", help="txt: 'utt-id TEXT' lines (Kaldi style); jsonl: one object per file")
    p.add_argument("--output", help="write here instead of standard output")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.set_defaults(run=_run_transcribe)


def _run_transcribe(args) -> int:
    from speech_s2s.model import CheckpointError, load_model
    from speech_s2s.search import DecodingOptions, with_overrides
    from speech_s2s.transcribe import BUNDLED_MODEL, FailedFile, format_transcript, transcribe_files

    paths = list(args.files)
    if args.file_list:
        try:
            paths += [line.strip() for line in Path(args.file_list).read_text().splitlines() if line.strip()]
        except OSError as error:
            return _fail(f"{args.file_list}: cannot read file list ({error.strerror})")
    if not paths:
        return _fail("no audio files given (pass FILE... or --file-list)")
    try:
        model = load_model(args.model or BUNDLED_MODEL)
    except CheckpointError as error:
        return _fail(str(error))
    lm = None
    if args.lm:
        from speech_s2s.lm import load_lm

        try:
            lm = load_lm(args.lm)
        except ValueError as error:
            return _fail(str(error))
    options = with_overrides(
        DecodingOptions(), beam_size=args.beam, ctc_weight=args.ctc_weight, length_bonus=args.length_bonus,
        lm_weight=args.lm_weight if args.lm_weight is not None else (0.3 if lm is not None else None),
    )
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    failed = 0
    try:
        for item in transcribe_files(model, paths, options, args.batch_size, lm):
            if isinstance(item, FailedFile):
                failed += 1
                print(f"speech-s2s: error: {item.error}", file=sys.stderr)
            else:
                print(format_transcript(item, args.output_format), file=out, flush=True)
    finally:
        if out is not sys.stdout:
            out.close()
    if failed:
        return _fail(f"{failed} of {len(paths)} files could not be transcribed")
    return 0


# ---------------------------------------------------------------------------------------------- train
def _add_train(sub) -> None:
    from speech_s2s.features import SpecAugmentConfig
    from speech_s2s.training import TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train", help="train a model on LibriSpeech-layout corpora or manifests")
    p.add_argument("--train", nargs="+", required=True, help="training corpora: LibriSpeech split directories or .jsonl manifests")
    p.add_argument("--dev", required=True, help="dev corpus (directory or manifest)")
    p.add_argument("--exp", required=True, help="experiment directory (checkpoints, plots, models)")
    p.add_argument("--resume", action="store_true", help="continue from the experiment's last checkpoint")
    p.add_argument("--config", help="JSON file of ModelConfig fields (nested dicts for features/encoder/decoder)")
    p.add_argument("--init", metavar="MODEL", help="start from this model's weights, config and normalisation (.safetensors), e.g. to fine-tune")
    p.add_argument("--encoder-hidden", type=int, help="encoder LSTM units per direction")
    p.add_argument("--encoder-layers", type=int)
    p.add_argument("--decoder-hidden", type=int)
    p.add_argument("--ctc-weight", type=float, help="CTC share of the joint loss")
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--max-frames", type=int, default=d.max_frames, help="padded frames per batch")
    p.add_argument("--lr", type=float, default=d.learning_rate)
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    p.add_argument("--decay", choices=["inverse_sqrt", "constant"], default=d.decay)
    p.add_argument("--ctc-only-steps", type=int, default=d.ctc_only_steps)
    p.add_argument("--sampling-probability", type=float, default=d.sampling_probability)
    p.add_argument("--no-spec-augment", action="store_true")
    p.add_argument("--time-warp", type=int, default=0, help="SpecAugment time warp in frames (0 = off)")
    p.add_argument("--freq-masks", type=int, default=SpecAugmentConfig().freq_masks, help="SpecAugment frequency masks per utterance")
    p.add_argument("--freq-mask-width", type=int, default=SpecAugmentConfig().freq_width, help="widest frequency mask, in mel bins")
    p.add_argument("--time-masks", type=int, default=SpecAugmentConfig().time_masks, help="SpecAugment time masks per utterance")
    p.add_argument("--time-mask-width", type=int, default=SpecAugmentConfig().time_width, help="widest time mask, in frames")
    p.add_argument("--augment", nargs="?", const="medium", choices=["light", "medium", "strong"],
                   help="augment the training audio on the fly (speed, VTLP, rooms, noise, channel, codecs) at this strength (default medium)")
    p.add_argument("--noise-dir", action="append", default=[], help="with --augment: directory of noise/music audio files to mix in (repeatable)")
    p.add_argument("--rir-bank", help="with --augment: room impulse responses (.npz from tools/make_rir_bank.py)")
    p.add_argument("--curriculum-epochs", type=int, default=d.curriculum_epochs)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--max-minutes", type=float, help="stop cleanly after this many minutes (resume later)")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--dev-max-utterances", type=int, default=d.dev_max_utterances)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int)
    p.set_defaults(run=_run_train)


def _augment_config(args):
    if not args.augment:
        return None
    from speech_s2s.augment import preset

    return preset(args.augment, noise_dirs=tuple(str(Path(d).resolve()) for d in args.noise_dir), rir_bank=args.rir_bank and str(Path(args.rir_bank).resolve()))


MODEL_CONFIG = "model_config.json"  # in the experiment directory: the shape --resume rebuilds


def _save_model_config(exp: Path, config) -> None:
    exp.mkdir(parents=True, exist_ok=True)
    (exp / MODEL_CONFIG).write_text(json.dumps(dataclasses.asdict(config), indent=2))


def _model_config(args, exp: Path):
    from speech_s2s.model import ModelConfig, config_from_json

    saved = exp / MODEL_CONFIG
    if args.resume and saved.is_file():
        return config_from_json(saved.read_text())
    config = config_from_json(Path(args.config).read_text()) if args.config else ModelConfig()
    encoder = dataclasses.replace(config.encoder, **{k: v for k, v in {"hidden_size": args.encoder_hidden, "num_layers": args.encoder_layers}.items() if v is not None})
    decoder = dataclasses.replace(config.decoder, **({"hidden_size": args.decoder_hidden} if args.decoder_hidden else {}))
    config = dataclasses.replace(config, encoder=encoder, decoder=decoder)
    if args.ctc_weight is not None:
        config = dataclasses.replace(config, ctc_weight=args.ctc_weight)
    _save_model_config(exp, config)
    return config


def _initial_model(args, exp: Path):
    """A fresh model from --config, or one initialised from --init (its config saved for --resume)."""
    from speech_s2s.model import Seq2Seq, load_model
    from speech_s2s.training import CHECKPOINT

    # Resuming restores the weights from the checkpoint; without one, --init must still apply.
    if not args.init or (args.resume and (exp / CHECKPOINT).is_file() and (exp / MODEL_CONFIG).is_file()):
        return Seq2Seq(_model_config(args, exp))
    model = load_model(args.init).train()
    if args.ctc_weight is not None:
        model.config = dataclasses.replace(model.config, ctc_weight=args.ctc_weight)
    _save_model_config(exp, model.config)
    return model


def _run_train(args) -> int:
    from speech_s2s.data import CorpusError, FeatureSet, compute_features, feature_stats, load_corpus
    from speech_s2s.features import SpecAugmentConfig
    from speech_s2s.model import CheckpointError
    from speech_s2s.training import TrainConfig, fit

    exp = Path(args.exp)
    if (args.noise_dir or args.rir_bank) and not args.augment:
        return _fail("--noise-dir and --rir-bank need --augment")
    for missing in [d for d in args.noise_dir if not Path(d).is_dir()] + [f for f in [args.rir_bank] if f and not Path(f).is_file()]:
        return _fail(f"{missing}: no such {'file' if missing == args.rir_bank else 'directory'}")
    if args.init and (args.config or args.encoder_hidden or args.encoder_layers or args.decoder_hidden):
        return _fail("--init takes the model's shape from MODEL; drop --config/--encoder-*/--decoder-*")
    try:
        model = _initial_model(args, exp)
    except CheckpointError as error:
        return _fail(str(error))
    try:
        train_sets = []
        for index, source in enumerate(args.train):
            utterances = load_corpus(source, model.vocabulary)
            train_sets.append(compute_features(utterances, model.logmel, model.vocabulary, exp / f"feats-train{index}.pt"))
        dev = compute_features(load_corpus(args.dev, model.vocabulary), model.logmel, model.vocabulary, exp / "feats-dev.pt")
    except CorpusError as error:
        return _fail(str(error))
    train = FeatureSet(
        [u for s in train_sets for u in s.utterances], [f for s in train_sets for f in s.features], [t for s in train_sets for t in s.targets]
    )
    if not args.init:  # a model we start from keeps its statistics: its weights were learnt on them
        model.normalizer.set_stats(*feature_stats(train.features))
    config = TrainConfig(
        epochs=args.epochs, max_frames=args.max_frames, learning_rate=args.lr, warmup_steps=args.warmup_steps, decay=args.decay,
        seed=args.seed, ctc_only_steps=args.ctc_only_steps, sampling_probability=args.sampling_probability,
        spec_augment=None if args.no_spec_augment else SpecAugmentConfig(
            freq_masks=args.freq_masks, freq_width=args.freq_mask_width, time_masks=args.time_masks,
            time_width=args.time_mask_width, time_warp=args.time_warp,
        ),
        curriculum_epochs=args.curriculum_epochs, checkpoint_every=args.checkpoint_every, max_steps=args.max_steps,
        max_minutes=args.max_minutes, dev_max_utterances=args.dev_max_utterances, device=args.device,
        augment=_augment_config(args),
    )
    parameters = sum(p.numel() for p in model.parameters())
    hours = sum(u.duration for u in train.utterances) / 3600
    logging.info("training %.1fM parameters on %d utterances (%.2f h), dev %d, into %s", parameters / 1e6, len(train), hours, len(dev), exp)
    state = fit(model, train, dev, config, exp, resume=args.resume)
    logging.info("stopped at step %d, epoch %d; best dev WER %.2f%%", state.step, state.epoch, 100 * state.best_wer)
    return 0


# ---------------------------------------------------------------------------------------------- score
def _add_score(sub) -> None:
    p = sub.add_parser("score", help="WER/CER of Kaldi-style hypothesis against reference")
    p.add_argument("--ref", required=True, help="reference: 'utt-id TEXT' lines (or a LibriSpeech split directory)")
    p.add_argument("--hyp", required=True, help="hypothesis: 'utt-id TEXT' lines")
    p.add_argument("--worst", type=int, default=10, help="list this many worst utterances")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(run=_run_score)


def _run_score(args) -> int:
    from speech_s2s.scoring import ScoringError, read_kaldi_text, score

    try:
        if Path(args.ref).is_dir():
            from speech_s2s.data import CorpusError, read_librispeech

            try:
                references = {u.id: u.text for u in read_librispeech(args.ref)}
            except CorpusError as error:
                return _fail(str(error))
        else:
            references = read_kaldi_text(args.ref)
        hypotheses = read_kaldi_text(args.hyp)
        result = score(references, hypotheses)
    except ScoringError as error:
        return _fail(str(error))
    if args.json:
        fields = {k: v for k, v in dataclasses.asdict(result).items() if k != "per_utterance"}
        print(json.dumps(fields))
        return 0
    print(result.summary())
    if args.worst > 0:
        print(f"worst {min(args.worst, result.utterances)} utterances:")
        for u in result.worst(args.worst):
            print(f"  {u.id}  {u.errors}/{u.words} errors\n    REF: {u.reference}\n    HYP: {u.hypothesis}")
    return 0


# ---------------------------------------------------------------------------------------------- prepare, train-lm
def _add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="validate a LibriSpeech-layout split and write its JSONL manifest")
    p.add_argument("corpus", help="split directory, e.g. LibriSpeech/dev-clean")
    p.add_argument("--out", required=True, help="manifest path (.jsonl)")
    p.add_argument("--text", help="also write Kaldi-style 'utt-id TEXT' references here")
    p.add_argument("--files", help="also write the audio paths here, one per line (for transcribe --file-list)")
    p.set_defaults(run=_run_prepare)


def _run_prepare(args) -> int:
    from speech_s2s.data import CorpusError, read_librispeech, write_manifest

    try:
        utterances = read_librispeech(args.corpus)
    except CorpusError as error:
        return _fail(str(error))
    write_manifest(utterances, args.out)
    if args.text:
        Path(args.text).write_text("".join(f"{u.id} {u.text}\n" for u in utterances))
    if args.files:
        Path(args.files).write_text("".join(f"{u.audio}\n" for u in utterances))
    hours = sum(u.duration for u in utterances) / 3600
    print(f"{args.out}: {len(utterances)} utterances, {hours:.2f} h, {len({u.speaker for u in utterances})} speakers")
    return 0


def _add_train_lm(sub) -> None:
    from speech_s2s.lm import CharLMConfig, CharLMTrainConfig

    p = sub.add_parser("train-lm", help="train a character LSTM LM for shallow fusion")
    p.add_argument("--text", nargs="+", required=True, help="text files (one sentence per line; a leading 'utt-id' is stripped with --kaldi) or corpora")
    p.add_argument("--kaldi", action="store_true", help="lines are 'utt-id TEXT'")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=CharLMTrainConfig().steps)
    p.add_argument("--batch-size", type=int, default=CharLMTrainConfig().batch_size)
    p.add_argument("--hidden", type=int, default=CharLMConfig().hidden_size)
    p.add_argument("--layers", type=int, default=CharLMConfig().num_layers)
    p.add_argument("--threads", type=int)
    p.set_defaults(run=_run_train_lm)


def _run_train_lm(args) -> int:
    from speech_s2s.lm import CharLMConfig, CharLMTrainConfig, save_lm, train_char_lm
    from speech_s2s.text import TranscriptError, Vocabulary

    vocabulary, sentences = Vocabulary(), []
    for name in args.text:
        for number, line in enumerate(Path(name).read_text(encoding="utf-8").splitlines(), start=1):
            text = line.split(maxsplit=1)[1] if args.kaldi and len(line.split(maxsplit=1)) == 2 else ("" if args.kaldi else line)
            try:
                vocabulary.encode(text)
            except TranscriptError as error:
                return _fail(f"{name}:{number}: {error}")
            if text.strip():
                sentences.append(text)
    config = CharLMConfig(hidden_size=args.hidden, num_layers=args.layers)
    model = train_char_lm(sentences, config, CharLMTrainConfig(steps=args.steps, batch_size=args.batch_size))
    save_lm(model, args.out)
    print(f"{args.out}: character LM trained on {len(sentences)} sentences")
    return 0


def _add_model_output(p) -> None:
    """--out and --half, shared by the commands that write a model for shipping."""
    p.add_argument("--out", required=True)
    p.add_argument("--half", action="store_true", help="store weights as float16 (half the size)")


def _write_model(model, args) -> None:
    from speech_s2s.model import save_model

    save_model(model, args.out, torch.float16 if args.half else None)


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="copy a trained model into a (smaller) file for shipping")
    p.add_argument("--model", required=True, help="trained model (.safetensors), e.g. EXP/best.safetensors")
    _add_model_output(p)
    p.set_defaults(run=_run_export)


def _run_export(args) -> int:
    from speech_s2s.model import CheckpointError, load_model

    try:
        model = load_model(args.model)
    except CheckpointError as error:
        return _fail(str(error))
    _write_model(model, args)
    size = Path(args.out).stat().st_size / 2**20
    print(f"{args.out}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, {size:.1f} MiB")
    return 0


def _add_average(sub) -> None:
    p = sub.add_parser("average", help="average snapshots of one model (e.g. its last epochs) into one model")
    p.add_argument("models", nargs="+", help="model files (.safetensors) of one run, e.g. EXP/epoch01[3-5].safetensors")
    _add_model_output(p)
    p.set_defaults(run=_run_average)


def _run_average(args) -> int:
    from speech_s2s.model import CheckpointError, average_models

    try:
        model = average_models(args.models)
    except CheckpointError as error:
        return _fail(str(error))
    _write_model(model, args)
    print(f"{args.out}: mean of {len(args.models)} models")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="speech-s2s", description="Listen-Attend-Spell speech recognition: transcribe, train, score.")
    parser.add_argument("--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_transcribe, _add_train, _add_score, _add_prepare, _add_train_lm, _add_export, _add_average):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if getattr(args, "threads", None):
        torch.set_num_threads(args.threads)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
