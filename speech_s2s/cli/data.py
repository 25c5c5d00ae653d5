"""`speech-s2s prepare` and `speech-s2s features`: manifests from a LibriSpeech-layout split, and cached features."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from speech_s2s import atomic
from speech_s2s.cli.options import fail, positive


def add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="validate a LibriSpeech-layout split and write its JSONL manifest")
    p.add_argument("corpus", help="split directory, e.g. LibriSpeech/dev-clean")
    p.add_argument("--out", required=True, help="manifest path (.jsonl)")
    p.add_argument("--text", help="also write Kaldi-style 'utt-id TEXT' references here")
    p.add_argument("--files", help="also write the audio paths here, one per line (for transcribe --file-list)")
    p.add_argument("--skip-invalid", action="store_true", help="keep the valid utterances and list the problems, instead of stopping at the first")
    p.set_defaults(run=_run_prepare)


def _run_prepare(args: argparse.Namespace) -> int:
    from speech_s2s.data.corpus import (
        CorpusError,
        audio_list,
        read_librispeech,
        reference_text,
        write_manifest,
    )

    problems: list[str] | None = [] if args.skip_invalid else None
    try:
        utterances = read_librispeech(args.corpus, problems=problems)
    except CorpusError as error:
        return fail(str(error))
    for problem in (problems or [])[:5]:
        print(f"speech-s2s: warning: skipped: {problem}", file=sys.stderr)
    if problems and len(problems) > 5:
        print(f"speech-s2s: warning: skipped {len(problems) - 5} more problems", file=sys.stderr)
    if not utterances:
        return fail(f"{args.corpus}: no valid utterances")
    # Every file atomically, and the manifest last: a manifest that exists means its companions do too.
    if args.text:
        atomic.write_text(args.text, reference_text(utterances))
    if args.files:
        atomic.write_text(args.files, audio_list(utterances))
    write_manifest(utterances, args.out)
    hours = sum(u.duration for u in utterances) / 3600
    print(f"{args.out}: {len(utterances)} utterances, {hours:.2f} h, {len({u.speaker for u in utterances})} speakers")
    return 0


def add_features(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "features", help="compute log-mel features of manifests into a sharded cache (resumable; reused while audio and settings hold)",
        description="Compute the log-mel features of each MANIFEST (NAME.jsonl) into OUT/NAME: shards written atomically, so a rerun after a "
        "kill keeps the finished ones; a shard is recomputed when its audio or the feature settings change. Writes OUT/NAME/stats.json "
        "(normalisation statistics). `train --feature-dir OUT` then reads them.",
    )
    p.add_argument("manifests", nargs="+", help="manifests (.jsonl) from `speech-s2s prepare`")
    p.add_argument("--out", required=True, help="cache folder (one subfolder per manifest)")
    p.add_argument("--model", help="take the feature settings from this model (.safetensors); default: the default settings (80 log-mel bins)")
    p.add_argument("--shard-size", type=positive, help="utterances per shard (default: the cache's own; 1000 for a new one)")
    p.add_argument("--jobs", type=positive, default=1, help="processes computing shards (default 1)")
    p.set_defaults(run=_run_features)


def _run_features(args: argparse.Namespace) -> int:
    import torch

    torch.set_num_threads(1)  # one thread per process: the shards are the parallelism
    from speech_s2s.data.corpus import CorpusError, read_manifest
    from speech_s2s.data.feature_store import extract_features
    from speech_s2s.frontend.audio import AudioError
    from speech_s2s.frontend.features import FeatureConfig
    from speech_s2s.model.files import ModelFileError, read_model_info

    try:
        config = read_model_info(args.model).config.features if args.model else FeatureConfig()
    except ModelFileError as error:
        return fail(str(error))
    for manifest in args.manifests:
        try:
            utterances = read_manifest(manifest)
        except (OSError, CorpusError) as error:
            return fail(f"{manifest}: {(error.strerror or str(error)).lower()}" if isinstance(error, OSError) else str(error))
        if not utterances:
            return fail(f"{manifest}: no utterances")
        target = Path(args.out) / Path(manifest).stem
        try:
            stored = extract_features(utterances, config, target, args.shard_size, args.jobs, description=f"features {target.name}")
        except AudioError as error:  # a training cache needs every utterance: stop, keeping the finished shards
            return fail(f"{manifest}: {error} (finished shards are kept; repair or remove it and rerun)")
        hours = stored.moments.frames * config.hop_length / config.sample_rate / 3600
        print(f"{target}: {len(utterances)} utterances, {hours:.2f} h; {stored.reused_shards} shards reused, {stored.computed_shards} computed")
    return 0
