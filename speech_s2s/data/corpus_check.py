"""Verify a LibriSpeech-layout split before anything is trained on it: every problem counted and named.

`corpus.read_librispeech` finds what the transcripts and file headers show (malformed lines,
transcript lines without audio, audio without transcript lines, unreadable headers). A FLAC cut
short keeps its header, which still promises every sample, so here each file is also decoded to
its end; one that stops early or fails to decode is truncated. Decoding is the slow part (one pass
over the audio), spread over `jobs` processes.
"""

from __future__ import annotations

import multiprocessing
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import soundfile
from tqdm import tqdm

from speech_s2s.data.corpus import (
    TRANSCRIPT,
    TRUNCATED_AUDIO,
    CorpusError,
    Problem,
    Utterance,
    read_librispeech,
)

DECODE_BLOCK = 1 << 16  # samples decoded at a time: bounded memory for files of any length


@dataclass(frozen=True)
class SplitReport:
    split: str
    root: str
    exists: bool
    utterances: list[Utterance] = field(default_factory=list)  # the valid ones, sorted by id
    problems: list[Problem] = field(default_factory=list)

    @property
    def hours(self) -> float:
        return sum(u.duration for u in self.utterances) / 3600

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(p.kind for p in self.problems).items()))

    def summary(self) -> str:
        """One line: the split, what is valid, and the problems by kind."""
        if not self.exists:
            return f"{self.split}: missing ({self.root} is not a directory)"
        problems = ", ".join(f"{n} {kind}" for kind, n in self.counts().items()) or "no problems"
        return f"{self.split}: {len(self.utterances)} valid utterances ({self.hours:.2f} h, {len({u.speaker for u in self.utterances})} speakers); {problems}"


def decode_to_end(path: str) -> Problem | None:
    """Decode the whole file; a problem if it fails or yields fewer samples than its header says."""
    try:
        with soundfile.SoundFile(path) as audio:
            promised, decoded = audio.frames, 0
            for block in audio.blocks(blocksize=DECODE_BLOCK, dtype="int16"):
                decoded += len(block)
    except Exception as error:  # libsndfile reports damage in several exception types
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        return Problem(f"{path}: cannot be decoded to its end ({reason})", TRUNCATED_AUDIO)
    if decoded < promised:
        return Problem(f"{path}: truncated: {decoded} of the {promised} samples its header promises", TRUNCATED_AUDIO)
    return None


def verify_split(root: str | Path, decode_audio: bool = True, jobs: int = 1) -> SplitReport:
    """Read and check one split; never raises for the corpus's own problems (they are in the report)."""
    root = Path(root)
    if not root.is_dir():
        return SplitReport(root.name, str(root), exists=False)
    problems: list[Problem] = []
    try:
        utterances = read_librispeech(root, problems=problems)
    except CorpusError as error:  # no transcripts at all: the whole split is one problem
        return SplitReport(root.name, str(root), True, [], [Problem(str(error), TRANSCRIPT)])
    if decode_audio and utterances:
        paths = [u.audio for u in utterances]
        progress = tqdm(total=len(paths), desc=f"decoding {root.name}", unit="file")
        if jobs > 1:
            with multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn").Pool(jobs) as pool:
                found = []
                for problem in pool.imap(decode_to_end, paths, chunksize=16):
                    found.append(problem)
                    progress.update(1)
        else:
            found = []
            for path in paths:
                found.append(decode_to_end(path))
                progress.update(1)
        progress.close()
        problems.extend(p for p in found if p is not None)
        utterances = [u for u, p in zip(utterances, found) if p is None]
    return SplitReport(root.name, str(root), True, utterances, problems)
