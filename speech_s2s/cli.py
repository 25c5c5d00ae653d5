"""`speech-s2s` command line: transcribe, stream, train, score, prepare, features, decode, train-lm, export, average, info. Thin: parsing and printing only.

Start-up is kept quick: building the parser imports nothing heavy, so `--help`, usage errors, `score` and
`prepare` never load torch (tests/test_cli.py checks it). Each subcommand imports what it needs when it
runs, and options whose defaults live in torch-importing modules default to None here; the config
dataclass's own default applies then (`_given`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

from speech_s2s import atomic


def _fail(message: str, status: int = 1) -> int:
    print(f"speech-s2s: error: {message}", file=sys.stderr)
    return status


# Default CPU threads. Decoding (transcribe, stream, decode) uses one: its matrix products are small
# (a batch of 8 through 7.4M parameters), and on the 2-core machine measured (BENCHMARKS.md) two
# threads took 1.7x the time and 1.8x the CPU of one, on a quiet machine and beside busy
# neighbours alike. Training and LM training (products 30x larger) use the CPUs this process may run
# on, at most MAX_DEFAULT_THREADS, so a big shared server is not taken over by one job.
DECODING_DEFAULT_THREADS = 1
MAX_DEFAULT_THREADS = 4


def apply_threads(args, decoding: bool = False) -> None:
    """Set torch's CPU threads from --threads or the default; called once the options are known to be good."""
    import torch

    if args.threads or decoding:
        torch.set_num_threads(args.threads or DECODING_DEFAULT_THREADS)
        return
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    usable = max(1, usable // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))  # torchrun: processes on this machine share it
    torch.set_num_threads(min(MAX_DEFAULT_THREADS, usable))


# ---------------------------------------------------------------------------------------------- transcribe
def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# transcribe's default beam, stated here for --help and its usage errors without importing torch;
# a test holds it equal to transcribe.DEFAULT_BEAM
TRANSCRIBE_BEAM = 16


def _add_transcribe(sub) -> None:
    p = sub.add_parser(
        "transcribe", help="transcribe audio files of any length",
        description="Transcribe audio files of any length, rate and channel count. Exit status: 0 all transcribed, "
        "1 some inputs failed (each named on standard error), 2 bad options, 130 interrupted (rerun with --resume).",
    )
    p.add_argument("files", nargs="*", help="audio files, folders (searched recursively) or - for standard input")
    p.add_argument("--file-list", help="text file with one audio path per line")
    p.add_argument("--model", help="model file (.safetensors); default: the bundled model")
    p.add_argument("--beam", type=_positive, default=TRANSCRIBE_BEAM,
                   help=f"beam size of joint CTC/attention search (default {TRANSCRIBE_BEAM}); 1 = greedy: about a third of the time, more errors")
    p.add_argument("--ctc-weight", type=float, default=None, help="CTC share of the joint beam score (default 0.2; beam search only)")
    p.add_argument("--lm", help="character LM (.safetensors) for shallow fusion (beam search only); default: the bundled LM, with the bundled model")
    p.add_argument("--no-lm", action="store_true", help="beam search without the character LM")
    p.add_argument("--lm-weight", type=float, default=None, help="LM weight for shallow fusion (default 0.5)")
    p.add_argument("--internal-lm-weight", type=float, default=None,
                   help="weight of the decoder's own LM, subtracted beside the LM (default 0.15; 0: none)")
    p.add_argument("--word-lm", help="word n-gram LM (.safetensors, from train-word-lm) that beam search consults at each word's end; "
                   "default: the bundled one, with the bundled model")
    p.add_argument("--no-word-lm", action="store_true", help="beam search without the word LM")
    p.add_argument("--word-lm-weight", type=float, default=None, help="word LM weight (default 0.4)")
    p.add_argument("--length-bonus", type=float, default=None, help="score added per output token (beam search only)")
    p.add_argument("--batch-size", type=_positive, default=8, help="speech segments decoded together (default 8)")
    p.add_argument("--keep-level", action="store_true",
                   help="decode speech at its recorded level; by default a segment quieter or louder than the model's training audio is scaled into its range")
    p.add_argument("--output-format", choices=FORMATS, default="txt",
                   help="txt: 'utt-id TEXT' lines (Kaldi style); jsonl: one object per file with segment and word times; "
                   "tsv: 'id start end text' rows in ms; srt, vtt: captions (one input, or --output-dir)")
    p.add_argument("--output", help="write here (grows line by line) instead of standard output")
    p.add_argument("--output-dir", help="write one file per input here, named after its id")
    p.add_argument("--resume", action="store_true", help="skip inputs already in --output or --output-dir")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output instead of refusing")
    p.add_argument("--int8", action="store_true", help="int8 weights for the encoder's LSTMs and the CTC head (CPU; dynamic quantisation)")
    p.add_argument("--onnx-encoder", help="encode with ONNX Runtime from this file, written by export-onnx for the same model (faster on CPU; needs onnxruntime)")
    p.add_argument("--threads", type=_positive, default=None, help="CPU threads (default 1: faster than more for this small model; see BENCHMARKS.md)")
    p.set_defaults(run=_run_transcribe)


FORMATS = ("txt", "jsonl", "tsv", "srt", "vtt")  # speech_s2s.writers.FORMATS, named here so --help needs no torch


def _transcribe_usage_error(args) -> str | None:
    """What is wrong with the options, before any work is done (exit status 2)."""
    if args.beam == 1:
        given = (("--lm", args.lm), ("--no-lm", args.no_lm or None), ("--lm-weight", args.lm_weight), ("--ctc-weight", args.ctc_weight),
                 ("--internal-lm-weight", args.internal_lm_weight), ("--length-bonus", args.length_bonus), ("--word-lm", args.word_lm),
                 ("--no-word-lm", args.no_word_lm or None), ("--word-lm-weight", args.word_lm_weight))
        ignored = [flag for flag, value in given if value is not None]
        if ignored:
            return f"{', '.join(ignored)} only {'applies' if len(ignored) == 1 else 'apply'} to beam search: drop --beam 1 (the default is {TRANSCRIBE_BEAM})"
    if args.lm and args.no_lm:
        return "give --lm or --no-lm, not both"
    if args.word_lm and args.no_word_lm:
        return "give --word-lm or --no-word-lm, not both"
    if args.word_lm_weight is not None and (args.no_word_lm or (args.model and not args.word_lm)):
        return "--word-lm-weight needs a word LM: --word-lm FILE (the bundled word LM goes only with the bundled model)"
    for flag, value in (("--lm-weight", args.lm_weight), ("--internal-lm-weight", args.internal_lm_weight)):
        if value is not None and (args.no_lm or (args.model and not args.lm)):
            return f"{flag} needs a language model: --lm FILE (the bundled LM goes only with the bundled model)"
    if args.output and args.output_dir:
        return "give --output or --output-dir, not both"
    if args.resume and not (args.output or args.output_dir):
        return "--resume needs --output or --output-dir to know what is done"
    if args.output:
        target = Path(args.output)
        if target.is_dir():
            return f"--output {target}: is a folder (use --output-dir for one file per input)"
        if not target.parent.is_dir():
            return f"--output {target}: folder {target.parent} does not exist"
        if target.is_file() and target.stat().st_size > 0 and not (args.resume or args.overwrite):
            return f"--output {target}: exists; add --resume to continue it or --overwrite to replace it"
    if args.output_dir and Path(args.output_dir).exists() and not Path(args.output_dir).is_dir():
        return f"--output-dir {args.output_dir}: is a file, not a folder"
    return None


def _open_output(args, output_format: str):
    """The shared output (stdout or --output) and the ids it already holds."""
    from speech_s2s.writers import header, ids_in_output

    if not args.output:
        if header(output_format):
            print(header(output_format), flush=True)
        return sys.stdout, set()
    path = Path(args.output)
    done: set[str] = set()
    if args.resume and path.is_file():
        text = path.read_text(encoding="utf-8", errors="replace")
        if text and not text.endswith("\n"):  # a line cut short by a crash: drop it, redo that file
            text = text[: text.rfind("\n") + 1]
            with open(path, "r+", encoding="utf-8") as handle:
                handle.truncate(len(text.encode("utf-8")))
        done = ids_in_output(text, output_format)
    handle = open(path, "a" if args.resume else "w", encoding="utf-8")
    if handle.tell() == 0 and header(output_format):
        handle.write(header(output_format) + "\n")
    return handle, done


def _run_transcribe(args) -> int:
    problem = _transcribe_usage_error(args)
    if problem:
        return _fail(problem, status=2)
    from speech_s2s.inputs import InputError, expand_inputs

    try:
        inputs, warnings = expand_inputs(args.files, args.file_list)
    except InputError as error:
        return _fail(str(error), status=2)
    for warning in warnings:
        print(f"speech-s2s: warning: {warning}", file=sys.stderr)
    if not inputs:
        return _fail("no audio files given (pass FILE..., a folder, - or --file-list)", status=2)
    if args.output_format in ("srt", "vtt") and len(inputs) > 1 and not args.output_dir:
        return _fail(f"{args.output_format} holds one recording's captions: with {len(inputs)} inputs use --output-dir", status=2)

    apply_threads(args, decoding=True)
    from speech_s2s.model import CheckpointError, load_model
    from speech_s2s.search import DecodingOptions, with_overrides
    from speech_s2s.transcribe import (BUNDLED_MODEL, BUNDLED_WORD_LM, FailedFile, Recognizer, TranscribeOptions, fusion_weights, language_model_file,
                                       with_word_lm)
    from speech_s2s import writers

    try:
        model = load_model(args.model or BUNDLED_MODEL)
    except CheckpointError as error:
        return _fail(str(error))
    encoder = None
    if args.onnx_encoder:
        try:
            from speech_s2s.onnx_encoder import OnnxEncoder

            encoder = OnnxEncoder(args.onnx_encoder, model)  # checked against the float weights
        except ImportError:
            return _fail("--onnx-encoder needs onnxruntime: pip install 'speech_s2s[onnx]'")
        except ValueError as error:
            return _fail(str(error))
    if args.int8:
        from speech_s2s.model import quantize_int8

        model = quantize_int8(model)
    lm = None
    lm_path = language_model_file(args.model, args.beam, args.lm or not args.no_lm)
    if lm_path:
        from speech_s2s.lm import load_lm

        try:
            lm = load_lm(lm_path, vocabulary=model.vocabulary)
        except ValueError as error:
            return _fail(str(error))
    decoding = with_overrides(
        DecodingOptions(), beam_size=args.beam, ctc_weight=args.ctc_weight, length_bonus=args.length_bonus,
        **fusion_weights(lm is not None, args.lm_weight, args.internal_lm_weight),
    )
    try:
        lm, decoding = with_word_lm(language_model_file(args.model, args.beam, args.word_lm or not args.no_word_lm, BUNDLED_WORD_LM),
                                    model.vocabulary, decoding, lm, args.word_lm_weight)
    except ValueError as error:  # WordLMError
        return _fail(str(error))
    recognizer = Recognizer(model, TranscribeOptions(decoding=decoding, batch_size=args.batch_size, keep_level=args.keep_level), lm, encoder)

    out_dir = Path(args.output_dir) if args.output_dir else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        out, done = None, {i.id for i in inputs if (out_dir / (i.id + writers.EXTENSIONS[args.output_format])).is_file()} if args.resume else set()
    else:
        out, done = _open_output(args, args.output_format)
    todo = [i for i in inputs if i.id not in done]
    if done:
        print(f"speech-s2s: resuming: {len(inputs) - len(todo)} of {len(inputs)} inputs already done", file=sys.stderr)

    from tqdm import tqdm

    failed, written = 0, 0
    progress = tqdm(total=len(todo), desc="transcribing", unit="file", leave=False, disable=len(todo) < 2 or None)
    try:
        for item in recognizer.transcribe_files(todo):
            progress.update(1)
            if isinstance(item, FailedFile):
                failed += 1
                progress.write(f"speech-s2s: error: {item.error}", file=sys.stderr)
                continue
            if out_dir is not None:
                target = out_dir / (item.id + writers.EXTENSIONS[args.output_format])
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic.write_text(target, writers.document(item, args.output_format))
            else:
                out.write("".join(line + "\n" for line in writers.lines(item, args.output_format)))
                out.flush()
            written += 1
    except KeyboardInterrupt:
        progress.close()
        hint = " (add --resume to continue)" if (args.output or args.output_dir) else ""
        print(f"speech-s2s: interrupted after {written} of {len(todo)} inputs{hint}", file=sys.stderr)
        return 130
    finally:
        progress.close()
        if out is not None and out is not sys.stdout:
            out.close()
    if failed:
        return _fail(f"{failed} of {len(todo)} inputs could not be transcribed")
    return 0


# ---------------------------------------------------------------------------------------------- train (train_cli.py), train-lm
def _given(**options) -> dict:
    """The options given on the command line (not None): what overrides a config dataclass's defaults."""
    return {name: value for name, value in options.items() if value is not None}


# ---------------------------------------------------------------------------------------------- score
def _add_score(sub) -> None:
    p = sub.add_parser("score", help="WER/CER of Kaldi-style hypothesis against reference")
    p.add_argument("--ref", required=True, help="reference: 'utt-id TEXT' lines (or a LibriSpeech split directory)")
    p.add_argument("--hyp", required=True, help="hypothesis: 'utt-id TEXT' lines")
    p.add_argument("--worst", type=int, default=10, help="list this many worst utterances")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--json-out", metavar="FILE", help="also write the summary as JSON to FILE (the text report is printed as usual)")
    p.add_argument("--strict", action="store_true", help="refuse hypothesis ids that are not in the reference (default: warn)")
    p.add_argument("--by-speaker", action="store_true",
                   help="also WER per speaker (the id's part before its first '-'), described from the corpus's "
                        "SPEAKERS.TXT when --ref is a LibriSpeech split directory")
    p.add_argument("--compare", metavar="BASELINE_HYP",
                   help="another system's hypothesis on the same reference: the WER difference, its 95 %% interval and "
                        "how often --hyp is better, by a paired bootstrap over the utterances")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for --compare (default 1000)")
    p.set_defaults(run=_run_score)


def _run_score(args) -> int:
    from speech_s2s.scoring import ScoringError, paired_bootstrap, read_kaldi_text, score

    if args.resamples < 1:
        return _fail(f"--resamples must be at least 1, not {args.resamples}")
    try:
        if Path(args.ref).is_dir():
            from speech_s2s.corpus import CorpusError, read_librispeech

            try:
                references = {u.id: u.text for u in read_librispeech(args.ref)}
            except CorpusError as error:
                return _fail(str(error))
        else:
            references = read_kaldi_text(args.ref)
        hypotheses = read_kaldi_text(args.hyp)
        try:
            result = score(references, hypotheses, strict=args.strict)
        except ScoringError as error:
            return _fail(f"{args.hyp}: {error}")
        comparison = None
        if args.compare:
            baseline_hypotheses = read_kaldi_text(args.compare)  # its errors name the file, as for --hyp
            try:
                baseline = score(references, baseline_hypotheses, strict=args.strict)
                comparison = paired_bootstrap(result, baseline, resamples=args.resamples)
            except ScoringError as error:
                return _fail(f"{args.compare}: {error}")
    except ScoringError as error:
        return _fail(str(error))
    if result.extra:
        shown = ", ".join(result.extra_ids[:3]) + (", ..." if result.extra > 3 else "")
        print(f"speech-s2s: warning: {args.hyp}: {result.extra} hypothesis ids are not in the reference ({shown}); they are not scored", file=sys.stderr)
    speakers = result.by_speaker() if args.by_speaker else {}
    if args.json or args.json_out:
        fields = {k: v for k, v in dataclasses.asdict(result).items() if k not in ("per_utterance", "extra_ids")}
        if args.by_speaker:
            fields["by_speaker"] = {speaker: {"wer": e.wer, **dataclasses.asdict(e)} for speaker, e in speakers.items()}
        if comparison is not None:
            fields["compare"] = {"baseline": args.compare, "difference": comparison.difference, **dataclasses.asdict(comparison)}
        if args.json_out:
            try:
                Path(args.json_out).write_text(json.dumps(fields) + "\n", encoding="utf-8")
            except OSError as error:
                return _fail(f"{args.json_out}: cannot write: {error.strerror or error}")
        if args.json:
            print(json.dumps(fields))
            return 0
    print(result.summary())
    if comparison is not None:
        print(comparison.summary(args.compare))
    if speakers:
        described = _speaker_descriptions(Path(args.ref)) if Path(args.ref).is_dir() else {}
        print("speaker | utterances | words | WER %" + (" | speaker" if described else ""))
        for speaker, errors in speakers.items():
            about = f" | {described[speaker]}" if speaker in described else ""
            print(f"{speaker} | {errors.utterances} | {errors.words} | {100 * errors.wer:.2f}{about}")
    if args.worst > 0:
        print(f"worst {min(args.worst, result.utterances)} utterances:")
        for u in result.worst(args.worst):
            print(f"  {u.id}  {u.errors}/{u.words} errors\n    REF: {u.reference}\n    HYP: {u.hypothesis}")
    return 0


def _speaker_descriptions(split: Path) -> dict[str, str]:
    """LibriSpeech's SPEAKERS.TXT beside a split: `ID | SEX | SUBSET | ...` lines (';' comments)."""
    table = split.parent / "SPEAKERS.TXT"
    if not table.is_file():
        return {}
    described = {}
    for line in table.read_text(encoding="utf-8", errors="replace").splitlines():
        fields = [field.strip() for field in line.split("|")]
        if line.startswith(";") or len(fields) < 4:
            continue
        described[fields[0]] = " | ".join([fields[1], *fields[3:]])
    return described


# ---------------------------------------------------------------------------------------------- prepare, train-lm
def _add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="validate a LibriSpeech-layout split and write its JSONL manifest")
    p.add_argument("corpus", help="split directory, e.g. LibriSpeech/dev-clean")
    p.add_argument("--out", required=True, help="manifest path (.jsonl)")
    p.add_argument("--text", help="also write Kaldi-style 'utt-id TEXT' references here")
    p.add_argument("--files", help="also write the audio paths here, one per line (for transcribe --file-list)")
    p.add_argument("--skip-invalid", action="store_true", help="keep the valid utterances and list the problems, instead of stopping at the first")
    p.set_defaults(run=_run_prepare)


def _run_prepare(args) -> int:
    from speech_s2s.corpus import CorpusError, audio_list, read_librispeech, reference_text, write_manifest

    problems: list[str] | None = [] if args.skip_invalid else None
    try:
        utterances = read_librispeech(args.corpus, problems=problems)
    except CorpusError as error:
        return _fail(str(error))
    for problem in (problems or [])[:5]:
        print(f"speech-s2s: warning: skipped: {problem}", file=sys.stderr)
    if problems and len(problems) > 5:
        print(f"speech-s2s: warning: skipped {len(problems) - 5} more problems", file=sys.stderr)
    if not utterances:
        return _fail(f"{args.corpus}: no valid utterances")
    # Every file atomically, and the manifest last: a manifest that exists means its companions do too.
    if args.text:
        atomic.write_text(args.text, reference_text(utterances))
    if args.files:
        atomic.write_text(args.files, audio_list(utterances))
    write_manifest(utterances, args.out)
    hours = sum(u.duration for u in utterances) / 3600
    print(f"{args.out}: {len(utterances)} utterances, {hours:.2f} h, {len({u.speaker for u in utterances})} speakers")
    return 0


def _add_train_lm(sub) -> None:
    p = sub.add_parser("train-lm", help="train a character LSTM LM for shallow fusion")
    p.add_argument("--text", nargs="+", required=True, help="text files (one sentence per line; a leading 'utt-id' is stripped with --kaldi) or corpora")
    p.add_argument("--kaldi", action="store_true", help="lines are 'utt-id TEXT'")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, help="updates (default 3000)")
    p.add_argument("--batch-size", type=int, help="sentences per update (default 64)")
    p.add_argument("--hidden", type=int, help="LSTM units (default 512)")
    p.add_argument("--layers", type=int, help="LSTM layers (default 2)")
    p.add_argument("--init", metavar="LM", help="go on training this LM (.safetensors; its shape, so no --hidden/--layers), e.g. the bundled one")
    p.add_argument("--lr", type=float, help="peak learning rate, decayed linearly to a tenth (default 2e-3)")
    p.add_argument("--held-out", type=int, default=1000, metavar="N",
                   help="sentences kept out of training to measure bits per character on (default 1000; 0: none)")
    p.add_argument("--threads", type=_positive, help=f"CPU threads (default: the CPUs this process may use, at most {MAX_DEFAULT_THREADS})")
    p.add_argument("--resume", action="store_true", help="go on from OUT.checkpoint, which the run saves every 5 minutes and when it stops")
    p.add_argument("--max-minutes", type=float, help="stop cleanly after this many minutes (then --resume)")
    p.set_defaults(run=_run_train_lm)


def _run_train_lm(args) -> int:
    apply_threads(args)
    from speech_s2s.lm import (CharLMConfig, CharLMTrainConfig, LMCheckpointing, LMError, LMResumeError, bits_per_character, lm_checkpoint_step,
                               load_lm, save_lm, split_held_out, train_char_lm)
    from speech_s2s.text import TranscriptError, Vocabulary

    if args.init and (args.hidden or args.layers):
        return _fail("--init takes the LM's shape from LM; drop --hidden/--layers")
    checkpoint = Path(f"{args.out}.checkpoint")
    if checkpoint.is_file() and not args.resume:
        return _fail(f"{checkpoint} exists (a run that stopped early): --resume goes on from it; delete it to start over")
    try:
        init = load_lm(args.init) if args.init else None
    except LMError as error:
        return _fail(str(error))
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
    if args.held_out < 0:
        return _fail(f"--held-out {args.held_out}: a number of sentences, 0 or more")
    if args.held_out >= len(sentences):
        return _fail(f"--held-out {args.held_out}: the text has only {len(sentences)} sentences")
    sentences, held_out = split_held_out(sentences, args.held_out)
    before = f"{bits_per_character(init, held_out):.4f} bits/char before, " if init is not None and held_out else ""
    config = CharLMConfig(**_given(hidden_size=args.hidden, num_layers=args.layers))
    train = CharLMTrainConfig(**_given(steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr))
    try:
        model = train_char_lm(sentences, config, train, init=init,
                              checkpointing=LMCheckpointing(checkpoint, resume=args.resume, max_minutes=args.max_minutes))
    except LMResumeError as error:
        return _fail(str(error))
    done = lm_checkpoint_step(checkpoint)
    if done < train.steps:
        print(f"{checkpoint}: stopped after {done} of {train.steps} updates; the same command with --resume goes on")
        return 0
    save_lm(model, args.out)
    checkpoint.unlink()
    measured = f"; {len(held_out)} held-out sentences: {before}{bits_per_character(model, held_out):.4f} bits/char" if held_out else ""
    print(f"{args.out}: character LM trained on {len(sentences)} sentences{measured}")
    return 0


def _add_train_word_lm(sub) -> None:
    p = sub.add_parser("train-word-lm", help="estimate a word n-gram LM (Kneser-Ney) that beam search consults at each word's end",
                       description="Estimate an interpolated Kneser-Ney word n-gram LM from text, for `transcribe --word-lm`. "
                       "Seconds for a few million words.")
    p.add_argument("--text", nargs="+", required=True, help="text files, one sentence per line (a leading 'utt-id' is stripped with --kaldi)")
    p.add_argument("--kaldi", action="store_true", help="lines are 'utt-id TEXT'")
    p.add_argument("--out", required=True)
    p.add_argument("--order", type=int, choices=(1, 2, 3), default=3, help="n-gram order (default 3)")
    p.add_argument("--min-count", type=_positive, default=2, help="n-grams of order 2 and up seen fewer times are left out (default 2)")
    p.add_argument("--held-out", type=int, default=1000, metavar="N",
                   help="sentences kept out of the estimate to measure perplexity on (default 1000, the ones train-lm keeps out; 0: none)")
    p.set_defaults(run=_run_train_word_lm)


def _run_train_word_lm(args) -> int:
    from speech_s2s.lm import split_held_out
    from speech_s2s.word_lm import WordLMConfig, estimate_word_lm, perplexity, save_word_lm

    sentences = []
    for name in args.text:
        try:
            lines = Path(name).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            return _fail(f"{name}: {error.strerror if isinstance(error, OSError) else 'not UTF-8 text'}")
        for line in lines:
            text = (line.split(maxsplit=1)[1:] or [""])[0] if args.kaldi else line
            if text.strip():
                sentences.append(text)
    if not 0 <= args.held_out < len(sentences):
        return _fail(f"--held-out {args.held_out}: from 0 to {len(sentences) - 1} (the text has {len(sentences)} sentences)")
    sentences, held_out = split_held_out(sentences, args.held_out)
    lm = estimate_word_lm(sentences, WordLMConfig(order=args.order, min_count=args.min_count))
    save_word_lm(lm, args.out)
    sizes = ", ".join(f"{len(lm.tables[f'{n}.keys']):,} {n}-grams" for n in range(2, args.order + 1))
    measured = f"; {len(held_out)} held-out sentences: perplexity {perplexity(lm, held_out):.1f}" if held_out else ""
    print(f"{args.out}: {len(lm.words) - 3:,} words{', ' + sizes if sizes else ''} from {len(sentences)} sentences{measured}")
    return 0


def _add_features(sub) -> None:
    p = sub.add_parser(
        "features", help="compute log-mel features of manifests into a sharded cache (resumable; reused while audio and settings hold)",
        description="Compute the log-mel features of each MANIFEST (NAME.jsonl) into OUT/NAME: shards written atomically, so a rerun after a "
        "kill keeps the finished ones; a shard is recomputed when its audio or the feature settings change. Writes OUT/NAME/stats.json "
        "(normalisation statistics). `train --feature-dir OUT` then reads them.",
    )
    p.add_argument("manifests", nargs="+", help="manifests (.jsonl) from `speech-s2s prepare`")
    p.add_argument("--out", required=True, help="cache folder (one subfolder per manifest)")
    p.add_argument("--model", help="take the feature settings from this model (.safetensors); default: the default settings (80 log-mel bins)")
    p.add_argument("--shard-size", type=_positive, help="utterances per shard (default: the cache's own; 1000 for a new one)")
    p.add_argument("--jobs", type=_positive, default=1, help="processes computing shards (default 1)")
    p.set_defaults(run=_run_features)


def _run_features(args) -> int:
    import torch

    torch.set_num_threads(1)  # one thread per process: the shards are the parallelism
    from speech_s2s.audio import AudioError
    from speech_s2s.corpus import CorpusError, read_manifest
    from speech_s2s.feature_store import extract_features
    from speech_s2s.features import FeatureConfig
    from speech_s2s.model import CheckpointError, read_model_info

    try:
        config = read_model_info(args.model).config.features if args.model else FeatureConfig()
    except CheckpointError as error:
        return _fail(str(error))
    for manifest in args.manifests:
        try:
            utterances = read_manifest(manifest)
        except (OSError, CorpusError) as error:
            return _fail(f"{manifest}: {(error.strerror or str(error)).lower()}" if isinstance(error, OSError) else str(error))
        if not utterances:
            return _fail(f"{manifest}: no utterances")
        target = Path(args.out) / Path(manifest).stem
        try:
            stored = extract_features(utterances, config, target, args.shard_size, args.jobs, description=f"features {target.name}")
        except AudioError as error:  # a training cache needs every utterance: stop, keeping the finished shards
            return _fail(f"{manifest}: {error} (finished shards are kept; repair or remove it and rerun)")
        hours = stored.moments.frames * config.hop_length / config.sample_rate / 3600
        print(f"{target}: {len(utterances)} utterances, {hours:.2f} h; {stored.reused_shards} shards reused, {stored.computed_shards} computed")
    return 0


def _add_decode(sub) -> None:
    p = sub.add_parser(
        "decode", help="decode a manifest's utterances whole, for scoring (resumable)",
        description="Decode each utterance of MANIFEST whole (no voice-activity cutting, as published results are scored) into OUTPUT "
        "as 'utt-id text' lines sorted by id. Progress goes to OUTPUT.partial; rerun after a kill, it continues where it stopped "
        "(if model, LM and options are the same). OUTPUT appears only when complete.",
    )
    p.add_argument("manifest", help="manifest (.jsonl) from `speech-s2s prepare`")
    p.add_argument("--model", required=True, help="model file (.safetensors)")
    p.add_argument("--output", required=True, help="hypothesis file to write")
    p.add_argument("--beam", type=_positive, default=1, help="beam size; 1 = greedy (default)")
    p.add_argument("--ctc-weight", type=float, default=None, help="CTC share of the joint beam score (default 0.2; beam search only)")
    p.add_argument("--lm", help="character LM (.safetensors) for shallow fusion (beam search only)")
    p.add_argument("--lm-weight", type=float, default=None, help="LM weight for shallow fusion (default 0.5 with --lm)")
    p.add_argument("--internal-lm-weight", type=float, default=None,
                   help="weight of the decoder's own LM, subtracted beside the LM (default 0.15 with --lm; 0: none)")
    p.add_argument("--word-lm", help="word n-gram LM (.safetensors, from train-word-lm) that beam search consults at each word's end")
    p.add_argument("--word-lm-weight", type=float, default=None, help="word LM weight (default 0.4 with --word-lm)")
    p.add_argument("--batch-size", type=_positive, default=16, help="utterances decoded together (default 16)")
    p.add_argument("--keep-level", action="store_true", help="decode at the recorded level (by default, as transcribe: scaled into the training range where outside it)")
    p.add_argument("--overwrite", action="store_true", help="decode again even if OUTPUT is complete")
    p.add_argument("--device", help="cpu or cuda (default: cuda when available, else cpu)")
    p.add_argument("--threads", type=_positive, default=None, help="CPU threads (default 1)")
    p.set_defaults(run=_run_decode)


def _run_decode(args) -> int:
    if args.beam == 1 and (args.lm or args.lm_weight is not None or args.internal_lm_weight is not None or args.ctc_weight is not None
                           or args.word_lm or args.word_lm_weight is not None):
        return _fail("--lm, --lm-weight, --internal-lm-weight, --word-lm, --word-lm-weight and --ctc-weight only apply to beam search: "
                     "add --beam N (e.g. --beam 16)", status=2)
    for flag, value, needs in (("--lm-weight", args.lm_weight, args.lm), ("--internal-lm-weight", args.internal_lm_weight, args.lm),
                               ("--word-lm-weight", args.word_lm_weight, args.word_lm)):
        if value is not None and not needs:
            return _fail(f"{flag} needs {'--word-lm' if flag == '--word-lm-weight' else '--lm'}", status=2)
    output = Path(args.output)
    if not output.parent.is_dir():
        return _fail(f"--output {output}: folder {output.parent} does not exist", status=2)
    if output.is_file() and not args.overwrite:
        return _fail(f"--output {output}: exists and is complete; add --overwrite to decode again", status=2)
    apply_threads(args, decoding=True)
    import torch

    from speech_s2s.corpus import CorpusError, read_manifest
    from speech_s2s.corpus_decode import decode_utterances, partial_path, run_signature
    from speech_s2s.level import decoding_level
    from speech_s2s.model import CheckpointError, load_model
    from speech_s2s.search import DecodingOptions, with_overrides
    from speech_s2s.transcribe import fusion_weights, with_word_lm
    from speech_s2s.word_fusion import WordFusion

    try:
        utterances = read_manifest(args.manifest)
        model = load_model(args.model)
    except (CorpusError, CheckpointError) as error:
        return _fail(str(error))
    except OSError as error:
        return _fail(f"{args.manifest}: {(error.strerror or str(error)).lower()}")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    lm = None
    if args.lm:
        from speech_s2s.lm import load_lm

        try:
            lm = load_lm(args.lm, vocabulary=model.vocabulary).to(device)
        except ValueError as error:
            return _fail(str(error))
    options = with_overrides(DecodingOptions(), beam_size=args.beam, ctc_weight=args.ctc_weight,
                             **fusion_weights(lm is not None, args.lm_weight, args.internal_lm_weight))
    try:
        lm, options = with_word_lm(args.word_lm, model.vocabulary, options, lm, args.word_lm_weight)
    except ValueError as error:  # WordLMError
        return _fail(str(error))
    if output.is_file():
        output.unlink()
    level = decoding_level(model.input_level_db, args.keep_level)
    signature = run_signature(args.model, options, args.lm, level, args.word_lm, lm.weights if isinstance(lm, WordFusion) else None)
    done = decode_utterances(model, utterances, output, options, signature, lm, args.batch_size, device, keep_level=args.keep_level)
    if done.reused:
        print(f"speech-s2s: resumed: {done.reused} of {done.total} utterances were already decoded", file=sys.stderr)
    for utterance_id, why in done.unreadable:
        print(f"speech-s2s: error: {utterance_id}: {why}", file=sys.stderr)
    if not done.complete:
        print(f"speech-s2s: {len(done.unreadable)} of {done.total} utterances could not be read; the others are in "
              f"{partial_path(output)}: repair or remove those and rerun to finish {output}", file=sys.stderr)
        return 1
    print(f"{output}: {done.total} utterances")
    return 0


def _add_model_output(p) -> None:
    """--out and --half, shared by the commands that write a model for shipping."""
    p.add_argument("--out", required=True)
    p.add_argument("--half", action="store_true", help="store weights as float16 (half the size)")


def _write_model(model, args, info: dict) -> None:
    import torch

    from speech_s2s.model import save_model

    save_model(model, args.out, torch.float16 if args.half else None, info=info)


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
    from speech_s2s.model import read_model_info

    _write_model(model, args, read_model_info(args.model).info)
    size = Path(args.out).stat().st_size / 2**20
    print(f"{args.out}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, {size:.1f} MiB")
    return 0


def _add_export_onnx(sub) -> None:
    p = sub.add_parser("export-onnx", help="write a model's encoder as ONNX, for transcribe --onnx-encoder (needs onnx and onnxruntime)")
    p.add_argument("out", help="ONNX file to write")
    p.add_argument("--model", help="model file (.safetensors); default: the bundled model")
    p.add_argument("--int8", action="store_true", help="ONNX Runtime's int8 dynamic quantisation of the encoder")
    p.set_defaults(run=_run_export_onnx)


def _run_export_onnx(args) -> int:
    from speech_s2s.model import CheckpointError, load_model
    from speech_s2s.transcribe import BUNDLED_MODEL

    try:
        model = load_model(args.model or BUNDLED_MODEL)
        from speech_s2s.onnx_encoder import export_onnx_encoder
    except CheckpointError as error:
        return _fail(str(error))
    except ImportError:
        return _fail("export-onnx needs onnx and onnxruntime: pip install 'speech_s2s[onnx]'")
    export_onnx_encoder(model, args.out, args.int8)
    print(f"{args.out}: the encoder of {args.model or BUNDLED_MODEL}{', int8' if args.int8 else ''}, {Path(args.out).stat().st_size / 2**20:.1f} MiB")
    return 0


def _add_average(sub) -> None:
    p = sub.add_parser("average", help="average snapshots of one model (e.g. its last epochs) into one model")
    p.add_argument("models", nargs="+", help="model files (.safetensors) of one run, e.g. EXP/epoch01[3-5].safetensors")
    p.add_argument("--weights", type=float, nargs="+", metavar="W",
                   help="one weight per model for a weighted mean (normalised to sum to 1), e.g. a fine-tuned "
                        "model interpolated with the model it started from: --weights 0.3 0.7")
    _add_model_output(p)
    p.set_defaults(run=_run_average)


def _run_average(args) -> int:
    from speech_s2s.model import CheckpointError, average_info, average_models

    try:
        model = average_models(args.models, args.weights)
        info = average_info(args.models, args.weights)
    except CheckpointError as error:
        return _fail(str(error))
    _write_model(model, args, info)
    how = "weighted mean" if args.weights else "mean"
    print(f"{args.out}: {how} of {len(args.models)} models")
    return 0


def _add_info(sub) -> None:
    p = sub.add_parser("info", help="what a model file holds: shape, vocabulary, normalisation, training data, metrics")
    p.add_argument("model", nargs="?", help="model file (.safetensors); default: the bundled model")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(run=_run_info)


def _run_info(args) -> int:
    from speech_s2s.model import CheckpointError, format_model_info, read_model_info
    from speech_s2s.transcribe import BUNDLED_MODEL

    try:
        info = read_model_info(args.model or BUNDLED_MODEL)
    except CheckpointError as error:
        return _fail(str(error))
    print(json.dumps(info.to_dict(), indent=1) if args.json else format_model_info(info))
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the full usage is one --help away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="speech-s2s", description="Listen-Attend-Spell speech recognition: transcribe, train, score.")
    parser.add_argument("--verbose", action="store_true", help="debug logging, and a traceback on unexpected errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    from speech_s2s.stream_cli import add_stream  # their own modules: these commands are larger than the rest
    from speech_s2s.train_cli import add_train

    for add in (_add_transcribe, add_stream, add_train, _add_score, _add_prepare, _add_features, _add_decode, _add_train_lm, _add_train_word_lm, _add_export,
                _add_export_onnx, _add_average, _add_info):
        add(sub)
    for command in sub.choices.values():  # --verbose also after the command name
        command.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging, and tracebacks")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        status = args.run(args)
        sys.stdout.flush()  # here, so a closed pipe is caught below rather than at interpreter exit
        return status
    except KeyboardInterrupt:
        print("speech-s2s: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to flush at exit
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by it
    except Exception as error:  # a bug or an unforeseen input: one line unless asked for more
        if args.verbose:
            raise
        first = str(error).splitlines()[0] if str(error) else ""
        return _fail(f"{type(error).__name__}: {first} (rerun with --verbose for the traceback)")


if __name__ == "__main__":
    sys.exit(main())
