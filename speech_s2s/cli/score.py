"""`speech-s2s score`: WER/CER of hypotheses against references, per speaker, and paired comparisons."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from speech_s2s.cli.options import fail


def add_score(sub: argparse._SubParsersAction) -> None:
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


def _run_score(args: argparse.Namespace) -> int:
    from speech_s2s.evaluation.scoring import (
        ScoringError,
        paired_bootstrap,
        read_kaldi_text,
        score,
    )

    if args.resamples < 1:
        return fail(f"--resamples must be at least 1, not {args.resamples}")
    try:
        if Path(args.ref).is_dir():
            from speech_s2s.data.corpus import CorpusError, read_librispeech

            try:
                references = {u.id: u.text for u in read_librispeech(args.ref)}
            except CorpusError as error:
                return fail(str(error))
        else:
            references = read_kaldi_text(args.ref)
        hypotheses = read_kaldi_text(args.hyp)
        try:
            result = score(references, hypotheses, strict=args.strict)
        except ScoringError as error:
            return fail(f"{args.hyp}: {error}")
        comparison = None
        if args.compare:
            baseline_hypotheses = read_kaldi_text(args.compare)  # its errors name the file, as for --hyp
            try:
                baseline = score(references, baseline_hypotheses, strict=args.strict)
                comparison = paired_bootstrap(result, baseline, resamples=args.resamples)
            except ScoringError as error:
                return fail(f"{args.compare}: {error}")
    except ScoringError as error:
        return fail(str(error))
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
                return fail(f"{args.json_out}: cannot write: {error.strerror or error}")
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
