"""The LibriSpeech layout: atomic FLAC and trans.txt writes, SPEAKERS.TXT, CHAPTERS.TXT, resume.

    OUT/SPEAKERS.TXT
    OUT/CHAPTERS.TXT
    OUT/<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt:04d>.flac
    OUT/<split>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt
    OUT/PLAN.TXT  (every planned utterance: id, speaker, settings, text; guards resuming)

A run is resumable: an utterance whose FLAC exists is done; every file is written atomically; ``trans.txt``
lists exactly the utterances whose audio exists. A run whose plan gives an existing utterance another text,
speaker or setting (a changed tool or seed) stops instead of mislabelling it.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from .engine import SAMPLE_RATE
from .plan import SPLITS, Job, Speaker


def chapter_dir(out: Path, job: Job) -> Path:
    return out / job.split / str(job.speaker.speaker_id) / str(job.chapter_id)


def flac_path(out: Path, job: Job) -> Path:
    return chapter_dir(out, job) / f"{job.utt_id}.flac"


PLAN_FILE = "PLAN.TXT"


def plan_line(job: Job) -> str:
    return (f"{job.utt_id}\t{job.split}\t{job.speaker.describe()}\tspeed={job.speed:g} edge={job.edge_silence:g} "
            f"peak={job.peak:g}\t{job.text}")


def check_and_write_plan(out: Path, jobs: Sequence[Job]) -> None:
    """Stop if an utterance already made was planned differently; then record this plan."""
    path = out / PLAN_FILE
    if path.exists():
        previous = dict(line.split("\t", 1) for line in path.read_text(encoding="utf-8").splitlines() if line)
        changed = [j.utt_id for j in jobs if j.utt_id in previous
                   and previous[j.utt_id] != plan_line(j).split("\t", 1)[1] and flac_path(out, j).exists()]
        if changed:
            raise SystemExit(f"{out}: {len(changed)} existing utterances (first {changed[0]}) were planned differently "
                             f"(another tool version or seed?); use a new --out")
    atomic_write_text(path, "".join(plan_line(j) + "\n" for j in jobs))


def remove_stale_tmp(out: Path) -> None:
    """Delete half-written files a killed run left behind."""
    for stale in out.glob("*/*/*/.*.tmp"):
        stale.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_flac(path: Path, audio: np.ndarray) -> None:
    """Atomically write 16 kHz mono 16-bit FLAC."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    sf.write(str(tmp), np.clip(audio, -1.0, 1.0), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    os.replace(tmp, path)


def write_trans(out: Path, chapter_jobs: Sequence[Job]) -> None:
    """(Re)write one chapter's trans.txt listing the utterances whose FLAC exists."""
    first = chapter_jobs[0]
    path = chapter_dir(out, first) / f"{first.speaker.speaker_id}-{first.chapter_id}.trans.txt"
    lines = sorted(f"{j.utt_id} {j.text}" for j in chapter_jobs if flac_path(out, j).exists())
    if lines:
        atomic_write_text(path, "\n".join(lines) + "\n")
    elif path.exists():
        path.unlink()


def write_speakers(out: Path, speakers: dict[str, list[Speaker]], seed: int) -> None:
    rows = [
        "; Synthetic LibriSpeech-style corpus made by tools/make_tts_corpus.py",
        f"; seed={seed}; speakers are (engine, voice, settings) combinations;",
        "; dev-tts and test-tts speakers never occur in train-tts.",
        ";ID  |SEX| SUBSET           | ENGINE/VOICE SETTINGS",
    ]
    for split in SPLITS:
        for spk in speakers[split]:
            rows.append(f"{spk.speaker_id:<5}| {spk.gender} | {split:<16} | {spk.describe()}")
    atomic_write_text(out / "SPEAKERS.TXT", "\n".join(rows) + "\n")


def write_chapters(out: Path, jobs: Sequence[Job]) -> None:
    chapters: dict[int, Job] = {}
    sources: dict[int, set[str]] = defaultdict(set)
    for j in jobs:
        chapters.setdefault(j.chapter_id, j)
        sources[j.chapter_id].add(j.source)
    rows = [
        "; Chapters of the synthetic corpus (planned utterances; failed ones are absent from trans.txt)",
        ";ID      |READER| SUBSET           | SOURCES",
    ]
    for cid in sorted(chapters):
        j = chapters[cid]
        rows.append(f"{cid:<8}| {j.speaker.speaker_id:<5}| {j.split:<16} | {','.join(sorted(sources[cid]))}")
    atomic_write_text(out / "CHAPTERS.TXT", "\n".join(rows) + "\n")
