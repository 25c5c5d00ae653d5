"""`speech-s2s export`, `export-onnx`, `average` and `info`: model files for shipping and inspection."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from speech_s2s.cli.options import fail

if TYPE_CHECKING:
    from speech_s2s.model.seq2seq import Seq2Seq


def _add_model_output(p: argparse.ArgumentParser) -> None:
    """--out and --half, shared by the commands that write a model for shipping."""
    p.add_argument("--out", required=True)
    p.add_argument("--half", action="store_true", help="store weights as float16 (half the size)")


def _write_model(model: Seq2Seq, args: argparse.Namespace, info: dict) -> None:
    import torch

    from speech_s2s.model.files import save_model

    save_model(model, args.out, torch.float16 if args.half else None, info=info)


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="copy a trained model into a (smaller) file for shipping")
    p.add_argument("--model", required=True, help="trained model (.safetensors), e.g. EXP/best.safetensors")
    _add_model_output(p)
    p.set_defaults(run=_run_export)


def _run_export(args: argparse.Namespace) -> int:
    from speech_s2s.model.files import ModelFileError, load_model

    try:
        model = load_model(args.model)
    except ModelFileError as error:
        return fail(str(error))
    from speech_s2s.model.files import read_model_info

    _write_model(model, args, read_model_info(args.model).info)
    size = Path(args.out).stat().st_size / 2**20
    print(f"{args.out}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters, {size:.1f} MiB")
    return 0


def add_export_onnx(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export-onnx", help="write a model's encoder as ONNX, for transcribe --onnx-encoder (needs onnx and onnxruntime)")
    p.add_argument("out", help="ONNX file to write")
    p.add_argument("--model", help="model file (.safetensors); default: the bundled model")
    p.add_argument("--int8", action="store_true", help="ONNX Runtime's int8 dynamic quantisation of the encoder")
    p.set_defaults(run=_run_export_onnx)


def _run_export_onnx(args: argparse.Namespace) -> int:
    from speech_s2s.builder import BUNDLED_MODEL
    from speech_s2s.model.files import ModelFileError, load_model

    try:
        model = load_model(args.model or BUNDLED_MODEL)
        from speech_s2s.model.onnx_encoder import export_onnx_encoder
    except ModelFileError as error:
        return fail(str(error))
    except ImportError:
        return fail("export-onnx needs onnx and onnxruntime: pip install 'speech_s2s[onnx]'")
    export_onnx_encoder(model, args.out, args.int8)
    print(f"{args.out}: the encoder of {args.model or BUNDLED_MODEL}{', int8' if args.int8 else ''}, {Path(args.out).stat().st_size / 2**20:.1f} MiB")
    return 0


def add_average(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("average", help="average snapshots of one model (e.g. its last epochs) into one model")
    p.add_argument("models", nargs="+", help="model files (.safetensors) of one run, e.g. EXP/epoch01[3-5].safetensors")
    p.add_argument("--weights", type=float, nargs="+", metavar="W",
                   help="one weight per model for a weighted mean (normalised to sum to 1), e.g. a fine-tuned "
                        "model interpolated with the model it started from: --weights 0.3 0.7")
    _add_model_output(p)
    p.set_defaults(run=_run_average)


def _run_average(args: argparse.Namespace) -> int:
    from speech_s2s.model.files import ModelFileError, average_info, average_models

    try:
        model = average_models(args.models, args.weights)
        info = average_info(args.models, args.weights)
    except ModelFileError as error:
        return fail(str(error))
    _write_model(model, args, info)
    how = "weighted mean" if args.weights else "mean"
    print(f"{args.out}: {how} of {len(args.models)} models")
    return 0


def add_info(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="what a model file holds: shape, vocabulary, normalisation, training data, metrics")
    p.add_argument("model", nargs="?", help="model file (.safetensors); default: the bundled model")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(run=_run_info)


def _run_info(args: argparse.Namespace) -> int:
    from speech_s2s.builder import BUNDLED_MODEL
    from speech_s2s.model.files import (
        ModelFileError,
        format_model_info,
        read_model_info,
    )

    try:
        info = read_model_info(args.model or BUNDLED_MODEL)
    except ModelFileError as error:
        return fail(str(error))
    print(json.dumps(info.to_dict(), indent=1) if args.json else format_model_info(info))
    return 0
