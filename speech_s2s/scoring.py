"""Scoring: WER and CER of Kaldi-style `utt-id TEXT` files, with error counts and the worst utterances."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jiwer


class ScoringError(ValueError):
    """A reference or hypothesis file is unusable; the message names the file (and line)."""


def normalize_for_scoring(text: str) -> str:
    """Case-insensitive comparison on words: upper-case, keep letters, apostrophes and spaces."""
    kept = "".join(ch if ch.isalpha() or ch in "' " else " " for ch in text.upper())
    return " ".join(kept.split())


def read_kaldi_text(path: str | Path) -> dict[str, str]:
    """`utt-id TEXT` per line (TEXT may be empty); duplicate ids are an error."""
    path = Path(path)
    if not path.is_file():
        raise ScoringError(f"{path}: no such file")
    entries: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if parts[0] in entries:
            raise ScoringError(f"{path}:{number}: utterance id {parts[0]!r} appears twice")
        entries[parts[0]] = parts[1] if len(parts) > 1 else ""
    return entries


@dataclass(frozen=True)
class UtteranceErrors:
    id: str
    reference: str
    hypothesis: str
    errors: int
    words: int


@dataclass(frozen=True)
class Score:
    wer: float
    cer: float
    words: int
    substitutions: int
    deletions: int
    insertions: int
    utterances: int
    missing: int  # reference utterances with no hypothesis (scored as all deletions)
    per_utterance: tuple[UtteranceErrors, ...]

    def worst(self, count: int) -> list[UtteranceErrors]:
        return sorted(self.per_utterance, key=lambda u: (-u.errors / max(1, u.words), u.id))[:count]

    def summary(self) -> str:
        return (
            f"%WER {100 * self.wer:.2f} [ {self.substitutions + self.deletions + self.insertions} / {self.words}, "
            f"{self.insertions} ins, {self.deletions} del, {self.substitutions} sub ] %CER {100 * self.cer:.2f} "
            f"| {self.utterances} utterances, {self.missing} without hypothesis"
        )


def score(references: dict[str, str], hypotheses: dict[str, str]) -> Score:
    ids = sorted(references)
    if not ids:
        raise ScoringError("the reference holds no utterances")
    refs = [normalize_for_scoring(references[i]) for i in ids]
    hyps = [normalize_for_scoring(hypotheses.get(i, "")) for i in ids]
    # jiwer rejects empty references; an empty reference scores as pure insertions.
    words = jiwer.process_words([r or "<empty>" for r in refs], hyps)
    chars = jiwer.process_characters([r or " " for r in refs], hyps)
    per_utterance = []
    for i, ref, hyp, alignment in zip(ids, refs, hyps, words.alignments):
        errors = sum(max(c.ref_end_idx - c.ref_start_idx, c.hyp_end_idx - c.hyp_start_idx) for c in alignment if c.type != "equal")
        per_utterance.append(UtteranceErrors(i, ref, hyp, errors, len(ref.split())))
    return Score(
        wer=words.wer,
        cer=chars.cer,
        words=sum(len(r.split()) for r in refs),
        substitutions=words.substitutions,
        deletions=words.deletions,
        insertions=words.insertions,
        utterances=len(ids),
        missing=sum(1 for i in ids if i not in hypotheses),
        per_utterance=tuple(per_utterance),
    )
