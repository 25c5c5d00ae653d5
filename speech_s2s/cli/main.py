"""`speech-s2s` command line: transcribe, stream, serve, train, score, prepare, features, decode, train-lm, export, average, info,
punctuate, train-punctuation. Thin: parsing and printing only.

Start-up is kept quick: building the parser imports nothing heavy, so `--help`, usage errors, `score` and
`prepare` never load torch (tests/test_cli.py checks it). Each subcommand imports what it needs when it
runs, and options whose defaults live in torch-importing modules default to None here; the config
dataclass's own default applies then (`given`).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from speech_s2s.cli.data import add_features, add_prepare
from speech_s2s.cli.decode import add_decode
from speech_s2s.cli.lm import add_train_lm, add_train_word_lm
from speech_s2s.cli.models import add_average, add_export, add_export_onnx, add_info
from speech_s2s.cli.options import fail
from speech_s2s.cli.punctuate import add_punctuate, add_train_punctuation
from speech_s2s.cli.score import add_score
from speech_s2s.cli.serve import add_serve
from speech_s2s.cli.stream import add_stream
from speech_s2s.cli.train import add_train
from speech_s2s.cli.transcribe import add_transcribe


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the full usage is one --help away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="speech-s2s", description="Listen-Attend-Spell speech recognition: transcribe, train, score.")
    parser.add_argument("--verbose", action="store_true", help="debug logging, and a traceback on unexpected errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (add_transcribe, add_stream, add_serve, add_train, add_score, add_prepare, add_features, add_decode, add_train_lm, add_train_word_lm,
                add_export, add_export_onnx, add_average, add_info, add_punctuate, add_train_punctuation):
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
        return fail(f"{type(error).__name__}: {first} (rerun with --verbose for the traceback)")

