"""`speech-s2s transcribe`: audio files of any length to text, captions or JSON."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from speech_s2s import atomic
from speech_s2s.cli.options import (
    DEFAULTS,
    add_float_search,
    apply_threads,
    decoding_from_args,
    fail,
    positive,
)

if TYPE_CHECKING:  # annotations only: building the parser must not import torch
    from speech_s2s.builder import RecognizerConfig


def add_transcribe(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "transcribe", help="transcribe audio files of any length",
        description="Transcribe audio files of any length, rate and channel count. Exit status: 0 all transcribed, "
        "1 some inputs failed (each named on standard error), 2 bad options, 130 interrupted (rerun with --resume).",
    )
    p.add_argument("files", nargs="*", help="audio files, folders (searched recursively) or - for standard input")
    p.add_argument("--file-list", help="text file with one audio path per line")
    p.add_argument("--model", help="model file (.safetensors); default: the bundled model")
    p.add_argument("--beam", type=positive, default=DEFAULTS.beam_size,
                   help=f"beam size of joint CTC/attention search (default {DEFAULTS.beam_size}); 1 = greedy: about a third of the time, more errors")
    p.add_argument("--ctc-weight", type=float, default=None, help=f"CTC share of the joint beam score (default {DEFAULTS.ctc_weight:g}; beam search only)")
    p.add_argument("--lm", help="character LM (.safetensors) for shallow fusion (beam search only); default: the bundled LM, with the bundled model")
    p.add_argument("--no-lm", action="store_true", help="beam search without the character LM")
    p.add_argument("--lm-weight", type=float, default=None, help=f"LM weight for shallow fusion (default {DEFAULTS.lm_weight:g})")
    p.add_argument("--internal-lm-weight", type=float, default=None,
                   help=f"weight of the decoder's own LM, subtracted beside the LM (default {DEFAULTS.internal_lm_weight:g}; 0: none)")
    p.add_argument("--word-lm", help="word n-gram LM (.safetensors, from train-word-lm) that beam search consults at each word's end; "
                   "default: the bundled one, with the bundled model")
    p.add_argument("--no-word-lm", action="store_true", help="beam search without the word LM")
    p.add_argument("--no-punctuation", action="store_true", help="the model's words as it spells them (lowercase, no marks); "
                   "by default case and punctuation are restored (speech-s2s punctuate)")
    p.add_argument("--punctuation-model", metavar="FILE", help="another case-and-punctuation restorer (default: the bundled one)")
    p.add_argument("--word-lm-weight", type=float, default=None, help=f"word LM weight (default {DEFAULTS.word_lm_weight:g})")
    p.add_argument("--length-bonus", type=float, default=None, help="score added per output token (beam search only)")
    p.add_argument("--batch-size", type=positive, default=8, help="speech segments decoded together (default 8)")
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
    add_float_search(p)
    p.add_argument("--onnx-encoder",
        help="encode with ONNX Runtime from this file, written by export-onnx for the same model (faster on CPU; needs onnxruntime)")
    p.add_argument("--threads", type=positive, default=None, help="torch's CPU threads (default 1: faster than more for this small model; see RESULTS.md); "
                                                                        "decoding also borrows a second core where one is free")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="decode on a Ray cluster ([ray] extra), with the same results as one process: alone, a Ray started on this "
                   "machine for the run; auto or HOST:PORT, the cluster this machine belongs to (give it after the inputs). "
                   "Every input and model file must be at the same path on every node")
    p.add_argument("--workers", type=positive, default=None,
                   help="with --ray: decoding processes, each with the model loaded and --threads CPUs (default: the cluster's CPUs / threads)")
    p.set_defaults(run=_run_transcribe)


FORMATS = ("txt", "jsonl", "tsv", "srt", "vtt")  # speech_s2s.writers.FORMATS, named here so --help needs no torch
RAY_ADDRESS = re.compile(r"^(auto|local|(ray://)?[\w.\-]+:\d+|(ray://)?\[[0-9a-fA-F:]+\]:\d+)$")  # what --ray takes


def _transcribe_usage_error(args: argparse.Namespace) -> str | None:
    """What is wrong with the options, before any work is done (exit status 2)."""
    if args.beam == 1:
        given = (("--lm", args.lm), ("--no-lm", args.no_lm or None), ("--lm-weight", args.lm_weight), ("--ctc-weight", args.ctc_weight),
                 ("--internal-lm-weight", args.internal_lm_weight), ("--length-bonus", args.length_bonus), ("--word-lm", args.word_lm),
                 ("--no-word-lm", args.no_word_lm or None), ("--word-lm-weight", args.word_lm_weight))
        ignored = [flag for flag, value in given if value is not None]
        if ignored:
            verb = "applies" if len(ignored) == 1 else "apply"
            return f"{', '.join(ignored)} only {verb} to beam search: drop --beam 1 (the default is {DEFAULTS.beam_size})"
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
    if args.workers and args.ray is None:
        return "--workers applies only with --ray"
    if args.ray is not None and not RAY_ADDRESS.match(args.ray):
        return (f"--ray took {args.ray!r} as the Ray cluster's address: give the inputs before --ray, "
                "or an address (auto, HOST:PORT, ray://HOST:PORT)")
    if args.ray is not None and "-" in args.files:
        return "--ray cannot read standard input (-): the workers read the files; save it to a file every node can read"
    return None


def _open_output(args: argparse.Namespace, output_format: str, stdout: TextIO):
    """The shared output (`stdout` or --output) and the ids it already holds."""
    from speech_s2s.writers import header, ids_in_output

    if not args.output:
        if header(output_format):
            print(header(output_format), file=stdout, flush=True)
        return stdout, set()
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


def _run_transcribe(args: argparse.Namespace) -> int:
    problem = _transcribe_usage_error(args)
    if problem:
        return fail(problem, status=2)
    from speech_s2s.input_files import InputError, expand_inputs

    try:
        inputs, warnings = expand_inputs(args.files, args.file_list)
    except InputError as error:
        return fail(str(error), status=2)
    for warning in warnings:
        print(f"speech-s2s: warning: {warning}", file=sys.stderr)
    if not inputs:
        return fail("no audio files given (pass FILE..., a folder, - or --file-list)", status=2)
    if args.output_format in ("srt", "vtt") and len(inputs) > 1 and not args.output_dir:
        return fail(f"{args.output_format} holds one recording's captions: with {len(inputs)} inputs use --output-dir", status=2)

    apply_threads(args, decoding=True)
    from speech_s2s.builder import RecognizerConfig

    config = RecognizerConfig(
        model=args.model, lm=args.lm or not args.no_lm, word_lm=args.word_lm or not args.no_word_lm, int8=args.int8, int8_search=not args.float_search,
        onnx_encoder=args.onnx_encoder,
        decoding=decoding_from_args(args, length_bonus=args.length_bonus),
        punctuation=False if args.no_punctuation else (args.punctuation_model or True),
    )
    stdout = sys.stdout  # transcripts go here even while Ray runs (_ray_engine)
    with contextlib.ExitStack() as stack:
        try:
            transcribe_files = _ray_engine(args, config, stack) if args.ray is not None else _local_engine(args, config)
        except ImportError:
            return fail("--onnx-encoder needs onnxruntime: pip install 'speech_s2s[onnx]'")
        except ValueError as error:  # a model, LM or ONNX file that cannot be used: the message names it
            return fail(str(error))
        except _EngineError as error:
            return fail(str(error), status=2)
        return _write_results(args, inputs, transcribe_files, stdout)


class _EngineError(Exception):
    """The engine asked for cannot run (no Ray, no cluster at the address): nothing was done (exit status 2)."""


def _local_engine(args: argparse.Namespace, config: RecognizerConfig) -> Callable[[Iterable], Iterator]:
    from speech_s2s.builder import build_recognizer

    return build_recognizer(config, batch_size=args.batch_size, keep_level=args.keep_level).transcribe_files


def _ray_engine(args: argparse.Namespace, config: RecognizerConfig, stack: contextlib.ExitStack) -> Callable[[Iterable], Iterator]:
    """Join (or start) Ray and start its workers; they stop when `stack` closes. Ray's driver prints its
    notices (a worker lost, a call retried) on standard output, which holds the transcripts: while it
    runs they go to standard error with --verbose and nowhere without (what they mean is said in one
    line each), and the transcripts to the `stdout` kept before."""
    try:
        from speech_s2s.cluster import ray_runner
    except ImportError as error:
        if (error.name or "").split(".")[0] == "ray":
            raise _EngineError("--ray needs Ray: pip install 'speech_s2s[ray]'") from None
        raise _EngineError(f"--ray: the Ray runner cannot be imported ({error})") from None
    from speech_s2s.cli.options import DECODING_DEFAULT_THREADS
    from speech_s2s.transcribe import TranscribeOptions

    threads = args.threads or DECODING_DEFAULT_THREADS
    stack.enter_context(contextlib.redirect_stdout(sys.stderr if args.verbose else stack.enter_context(open(os.devnull, "w"))))
    try:
        started = ray_runner.connect(None if args.ray == "local" else args.ray, (args.workers or 1) * threads, verbose=args.verbose)
    except ray_runner.ClusterError as error:
        raise _EngineError(str(error)) from None
    if started:
        stack.callback(ray_runner.ray.shutdown)
    workers = args.workers or max(1, ray_runner.cluster_cpus() // threads)
    options = TranscribeOptions(decoding=config.decoding, batch_size=args.batch_size, keep_level=args.keep_level)
    runner = stack.enter_context(ray_runner.RayTranscriber(config, options, workers, threads))
    runner.start()

    def transcribe_files(inputs: Iterable) -> Iterator:
        yield from runner.transcribe_files(inputs)
        lost = runner.restarted()
        if lost:
            print(f"speech-s2s: warning: {lost} of {workers} Ray workers were lost and restarted; Ray ran their work again", file=sys.stderr)

    return transcribe_files


def _write_results(args: argparse.Namespace, inputs: list, transcribe_files: Callable[[Iterable], Iterator], stdout: TextIO) -> int:
    """Write each result as it comes (skipping what --resume finds done); the exit status."""
    from speech_s2s import writers
    from speech_s2s.transcribe import FailedFile

    out_dir = Path(args.output_dir) if args.output_dir else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        out, done = None, {i.id for i in inputs if (out_dir / (i.id + writers.EXTENSIONS[args.output_format])).is_file()} if args.resume else set()
    else:
        out, done = _open_output(args, args.output_format, stdout)
    todo = [i for i in inputs if i.id not in done]
    if done:
        print(f"speech-s2s: resuming: {len(inputs) - len(todo)} of {len(inputs)} inputs already done", file=sys.stderr)

    failed, written = 0, 0
    progress = _Progress(len(todo))
    try:
        for item in transcribe_files(todo):
            progress.update(getattr(item, "duration", 0.0))
            if isinstance(item, FailedFile):
                failed += 1
                progress.write(f"speech-s2s: error: {item.error}")
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
        if out is not None and out is not stdout:
            out.close()
    if failed:
        return fail(f"{failed} of {len(todo)} inputs could not be transcribed")
    return 0


class _Progress:
    """A progress bar on standard error (two inputs or more, on a terminal): files done, their hours of
    audio, how many times real time, and the time left."""

    def __init__(self, total: int):
        from tqdm import tqdm

        self.bar = tqdm(total=total, desc="transcribing", unit="file", leave=False, disable=total < 2 or None)
        self.seconds = 0.0

    def update(self, audio_seconds: float) -> None:
        self.seconds += audio_seconds
        elapsed = self.bar.format_dict.get("elapsed") or 0.0
        if not self.bar.disable:
            done = f"{self.seconds / 3600:.2f} h" if self.seconds >= 3600 else f"{self.seconds / 60:.1f} min"
            speed = f", {self.seconds / elapsed:.1f}x real time" if elapsed > 0 else ""
            self.bar.set_postfix_str(f"{done} of audio{speed}", refresh=False)
        self.bar.update(1)

    def write(self, line: str) -> None:
        self.bar.write(line, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
