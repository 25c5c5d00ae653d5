"""`speech-s2s stream`: live captions from a microphone, a file replayed in real time, or raw PCM on stdin.

Nothing heavy (torch, sounddevice) is imported until the command runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from speech_s2s.builder import RecognizerConfig
    from speech_s2s.streaming import Event, StreamOptions
    from speech_s2s.transcribe import Recognizer

from speech_s2s.cli.options import DEFAULTS, add_float_search, apply_threads, decoding_from_args

STREAM_FORMATS = ("txt", "jsonl")


def add_live_decoding(p: argparse.ArgumentParser) -> None:
    """The model and decoding options of live recognition (`stream`, `serve`)."""
    p.add_argument("--model", help="model file (.safetensors); default: the bundled model")
    p.add_argument("--beam", type=int, default=DEFAULTS.beam_size, help="beam size of each utterance's final decoding, with the bundled LMs as "
                   f"transcribe (default {DEFAULTS.beam_size}; partials are greedy); 1 = greedy finals, sooner (RESULTS.md)")
    p.add_argument("--mode", choices=("agreement", "chunked"), default="agreement",
                   help="partial text by re-decoding the utterance so far and keeping what two decodings agree on (default, "
                   "any model), or by CTC over the chunked encoder (bounded work; needs a model trained with dynamic chunks). "
                   "Final text is the offline decoding of the utterance either way")
    p.add_argument("--update-seconds", type=float, default=0.4, help="agreement: new audio between partial results (default 0.4)")
    p.add_argument("--chunk", type=int, nargs=2, metavar=("C", "R"), default=None,
                   help="chunked: chunk and look-ahead in 10 ms frames, multiples of 8 (default 32 16)")
    p.add_argument("--threads", type=int, default=None, help="torch's CPU threads of each decoding (default 1); "
                                                                   "decoding also borrows a second core where one is free")
    add_float_search(p)
    p.add_argument("--no-punctuation", action="store_true", help="finals as the model spells them (lowercase, no marks); "
                   "by default their case and punctuation are restored (partials stay raw)")


def add_stream(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stream", help="live captions from a microphone, a file in real time, or raw PCM on standard input",
        description="Recognise speech as it is spoken: partial text while you speak, final text at each pause. "
        "Default input: the default microphone. Ctrl-C finishes the last utterance and exits 0. "
        "A summary (latency, real-time factor, dropped audio) goes to standard error.",
    )
    p.add_argument("input", nargs="?", help="- for raw signed 16-bit little-endian mono PCM on standard input (16 kHz unless --rate)")
    p.add_argument("--device", help="input device: index or (part of) its name, see --list-devices; default: the system's default input")
    p.add_argument("--file", help="replay an audio file (any format) as if it were spoken now")
    p.add_argument("--fast", action="store_true", help="with --file: as fast as possible instead of in real time")
    p.add_argument("--rate", type=int, default=None, help="with -: the PCM's sample rate (default 16000)")
    p.add_argument("--list-devices", action="store_true", help="list the input devices and exit")
    p.add_argument("--output-format", choices=STREAM_FORMATS, default="txt",
                   help="txt: final text, one line per utterance (on a terminal, partial text is shown in place); "
                   "jsonl: every partial and final event as a JSON object")
    add_live_decoding(p)
    p.set_defaults(run=run_stream)


def _usage_error(args: argparse.Namespace) -> str | None:
    if args.input not in (None, "-"):
        return f"unexpected input {args.input!r}: use --file {args.input} for a file, or - for raw PCM on standard input"
    sources = [name for name, given in (("--device", args.device is not None), ("--file", args.file is not None), ("-", args.input == "-")) if given]
    if len(sources) > 1:
        return f"give one input, not {' and '.join(sources)}"
    if args.fast and args.file is None:
        return "--fast needs --file"
    if args.rate is not None and args.input != "-":
        return "--rate applies to - (raw PCM on standard input)"
    if args.rate is not None and args.rate < 1000:
        return f"--rate {args.rate}: too low for speech"
    return live_decoding_error(args)


def live_decoding_error(args: argparse.Namespace) -> str | None:
    """What is wrong with `add_live_decoding`'s options, before anything loads."""
    if args.beam < 1:
        return "--beam must be at least 1"
    if args.update_seconds <= 0:
        return "--update-seconds must be positive"
    if args.chunk is not None and args.mode != "chunked":
        return "--chunk applies to --mode chunked"
    return None


class _Display:
    """Writes events: on a terminal, the partial line is rewritten in place; otherwise plain lines."""

    def __init__(self, out: TextIO, output_format: str):
        self.out = out
        self.format = output_format
        self.live = output_format == "txt" and out.isatty()
        self._partial_shown = False

    def show(self, event: Event) -> None:
        if self.format == "jsonl":
            self.out.write(json.dumps(event.to_dict()) + "\n")
        elif self.live:
            width = max(10, shutil.get_terminal_size().columns - 1)
            text = event.text if len(event.text) <= width else "…" + event.text[-(width - 1):]
            self.out.write("\r\x1b[K" + text + ("\n" if event.type == "final" and event.text else ""))
        elif event.type == "final" and event.text:
            self.out.write(event.text + "\n")
        self.out.flush()


def live_config(args: argparse.Namespace) -> tuple[RecognizerConfig, StreamOptions]:
    """What `add_live_decoding`'s options ask for: the recogniser's config and the streaming options."""
    from speech_s2s.builder import RecognizerConfig
    from speech_s2s.model.encoder import ChunkConfig
    from speech_s2s.streaming import StreamOptions

    config = RecognizerConfig(model=args.model, decoding=decoding_from_args(args), punctuation=not args.no_punctuation,
                              int8_search=not args.float_search)
    return config, StreamOptions(mode=args.mode, update_seconds=args.update_seconds, chunk=ChunkConfig(*(args.chunk or (32, 16))))


def build_live(args: argparse.Namespace) -> tuple[Recognizer, StreamOptions]:
    """The recogniser and streaming options `add_live_decoding`'s options ask for (ValueError: a file
    that cannot be used, named in the message)."""
    from speech_s2s.builder import build_recognizer

    apply_threads(args, decoding=True)
    config, options = live_config(args)
    return build_recognizer(config, word_timestamps=False), options


def _stop_on_signals() -> None:
    """Ctrl-C and SIGTERM both end the stream cleanly (last utterance finished, exit 0). Python
    leaves SIGINT ignored when it was started ignored (a background job of a shell without job
    control, as in some CI runners), so it is installed explicitly."""
    import signal

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


def run_stream(args: argparse.Namespace) -> int:
    problem = _usage_error(args)
    if problem:
        print(f"speech-s2s stream: error: {problem}", file=sys.stderr)
        return 2
    from speech_s2s.sources import (
        FileSource,
        MicrophoneSource,
        SourceError,
        StdinSource,
        format_devices,
        list_devices,
    )

    def fail(message: str) -> int:
        print(f"speech-s2s: error: {message}", file=sys.stderr)
        return 1

    try:
        if args.list_devices:
            devices = list_devices()
            print(format_devices(devices) if devices else "no input devices (connect a microphone or start a sound server)")
            return 0
        if args.file is not None:
            from speech_s2s.frontend.audio import check_readable

            check_readable(args.file)
            source = FileSource(args.file, fast=args.fast)
        elif args.input == "-":
            source = StdinSource(args.rate or 16000)
        else:
            source = MicrophoneSource(args.device)
    except (SourceError, ValueError) as error:  # AudioError is a ValueError
        return fail(str(error))

    from speech_s2s.frontend.audio import AudioError
    from speech_s2s.streaming import StreamingRecognizer

    try:
        recognizer, options = build_live(args)
    except ValueError as error:  # a model or LM file that cannot be used: the message names it
        return fail(str(error))
    try:
        streamer = StreamingRecognizer(recognizer, options)
    except ValueError as error:  # a chunk this model cannot take
        print(f"speech-s2s stream: error: --chunk: {error}", file=sys.stderr)
        return 2
    display = _Display(sys.stdout, args.output_format)
    if isinstance(source, MicrophoneSource):
        try:
            source.start()
        except SourceError as error:
            return fail(str(error))
        print(f"speech-s2s: listening on {source.name} ({source.rate} Hz); Ctrl-C to stop", file=sys.stderr, flush=True)
    _stop_on_signals()
    events = streamer.stream(source)
    try:
        for event in events:
            display.show(event)
    except KeyboardInterrupt:  # finish the utterance being spoken, then stop
        events.close()
        for event in streamer.finish(getattr(source, "dropped_seconds", 0.0)):
            display.show(event)
    except AudioError as error:  # an unreadable file, met while replaying it
        return fail(str(error))
    summary = streamer.summary()
    extra = f", {source.overflows} overflows" if getattr(source, "overflows", 0) else ""
    print(f"speech-s2s: {summary.format()}{extra}", file=sys.stderr)
    return 0
