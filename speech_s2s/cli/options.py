"""What every command module shares: one-line errors, thread defaults, option types. Imports no command module."""

from __future__ import annotations

import argparse
import os
import sys

from speech_s2s.decoding.options import DecodingOptions, with_overrides
from speech_s2s.machine import usable_cores


def fail(message: str, status: int = 1) -> int:
    print(f"speech-s2s: error: {message}", file=sys.stderr)
    return status


# Default CPU threads. Decoding (transcribe, stream, decode) uses one: its matrix products are small
# (a batch of 8 through 7.4M parameters), and on the 2-core machine measured (RESULTS.md) two
# threads took 1.7x the time and 1.8x the CPU of one, on a quiet machine and beside busy
# neighbours alike (a second core is better spent beside the main thread: speech_s2s.machine.second_thread).
# Training and LM training (products 30x larger) use the CPUs this process may run
# on, at most MAX_DEFAULT_THREADS, so a big shared server is not taken over by one job.
DECODING_DEFAULT_THREADS = 1


MAX_DEFAULT_THREADS = 4


def apply_threads(args: argparse.Namespace, decoding: bool = False) -> None:
    """Set torch's CPU threads from --threads or the default; called once the options are known to be good."""
    import torch

    if args.threads or decoding:
        torch.set_num_threads(args.threads or DECODING_DEFAULT_THREADS)
        return
    usable = max(1, usable_cores() // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))  # torchrun: processes on this machine share it
    torch.set_num_threads(min(MAX_DEFAULT_THREADS, usable))


def add_float_search(p: argparse.ArgumentParser) -> None:
    """`--float-search`, for every command that decodes (RecognizerConfig.int8_search)."""
    p.add_argument("--float-search", action="store_true",
                   help="the search's recurrent products (the decoder's and the character LM's) in float32 instead of int8 (the default on "
                   "the CPU: faster, the same words but for rare near-ties; RESULTS.md)")


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def given(**options) -> dict:
    """The options given on the command line (not None): what overrides a config dataclass's defaults."""
    return {name: value for name, value in options.items() if value is not None}


# The product's decoding defaults (speech_s2s/decoding/options.py, torch-free), which --help states.
DEFAULTS = DecodingOptions()


def decoding_from_args(args: argparse.Namespace, **more) -> DecodingOptions:
    """`DecodingOptions()` with the decoding options a command was given (--beam, --ctc-weight, the LM
    weights); options the command lacks or that were not given keep the default."""
    given_options = {name: getattr(args, option, None) for name, option in (
        ("beam_size", "beam"), ("ctc_weight", "ctc_weight"), ("lm_weight", "lm_weight"), ("internal_lm_weight", "internal_lm_weight"),
        ("word_lm_weight", "word_lm_weight"))}
    return with_overrides(DEFAULTS, **given_options, **more)
