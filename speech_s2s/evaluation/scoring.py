"""Scoring: WER and CER of Kaldi-style `utt-id TEXT` files, with error counts and the worst utterances,
and a paired bootstrap comparison of two systems on the same reference."""

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
class SpeakerErrors:
    errors: int
    words: int  # in the speaker's references
    utterances: int

    @property
    def wer(self) -> float:
        return _rate(self.errors, self.words)


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
    extra: int = 0  # hypotheses whose id is not in the reference (not scored)
    extra_ids: tuple[str, ...] = ()  # their ids, sorted

    def by_speaker(self) -> dict[str, SpeakerErrors]:
        """Errors per speaker, the id's part before its first '-' (LibriSpeech's
        `speaker-chapter-utterance`, Kaldi's speaker-prefixed ids)."""
        groups: dict[str, list[int]] = {}
        for u in self.per_utterance:
            group = groups.setdefault(u.id.split("-", 1)[0], [0, 0, 0])
            group[0] += u.errors
            group[1] += u.words
            group[2] += 1
        return {speaker: SpeakerErrors(*counts) for speaker, counts in sorted(groups.items())}

    def worst(self, count: int) -> list[UtteranceErrors]:
        return sorted(self.per_utterance, key=lambda u: (-u.errors / max(1, u.words), u.id))[:count]

    def summary(self) -> str:
        return (
            f"%WER {100 * self.wer:.2f} [ {self.substitutions + self.deletions + self.insertions} / {self.words}, "
            f"{self.insertions} ins, {self.deletions} del, {self.substitutions} sub ] %CER {100 * self.cer:.2f} "
            f"| {self.utterances} utterances, {self.missing} without hypothesis, "
            f"{self.extra} hypotheses not in the reference{_examples(self.extra_ids)}"
        )


# How many ids a message or summary names before it says "...".
SHOWN_IDS = 5


def _first_ids(ids: tuple[str, ...]) -> str:
    return ", ".join(repr(i) for i in ids[:SHOWN_IDS]) + (", ..." if len(ids) > SHOWN_IDS else "")


def _examples(ids: tuple[str, ...]) -> str:
    return f" ({_first_ids(ids)})" if ids else ""


def score(references: dict[str, str], hypotheses: dict[str, str], strict: bool = False) -> Score:
    """WER and CER over the reference's utterances; a missing hypothesis scores as all deletions.

    Hypotheses whose id the reference lacks are not scored but counted in `extra` / `extra_ids`
    (usually a sign of scoring against the wrong reference); `strict=True` makes them an error.

    An empty reference has no words to get wrong: an empty hypothesis for it is no error, and each
    word (for CER, each character) of a non-empty one is an insertion. WER is (S + D + I) / N over
    all N reference words, and infinite when the references hold no words but there are insertions.
    """
    ids = sorted(references)
    if not ids:
        raise ScoringError("the reference holds no utterances")
    extra_ids = tuple(sorted(set(hypotheses) - set(references)))
    if strict and extra_ids:
        raise ScoringError(f"{len(extra_ids)} hypothesis ids are not in the reference: {_first_ids(extra_ids)}")
    refs = [normalize_for_scoring(references[i]) for i in ids]
    hyps = [normalize_for_scoring(hypotheses.get(i, "")) for i in ids]
    per_utterance = [UtteranceErrors(i, "", hyp, len(hyp.split()), 0) for i, ref, hyp in zip(ids, refs, hyps) if not ref]
    substitutions = deletions = 0
    insertions = sum(u.errors for u in per_utterance)
    char_errors = sum(len(u.hypothesis) for u in per_utterance)
    scored = [(i, ref, hyp) for i, ref, hyp in zip(ids, refs, hyps) if ref]
    if scored:  # jiwer rejects empty references, so they are counted above
        words = jiwer.process_words([ref for _, ref, _ in scored], [hyp for _, _, hyp in scored])
        chars = jiwer.process_characters([ref for _, ref, _ in scored], [hyp for _, _, hyp in scored])
        substitutions, deletions, insertions = words.substitutions, words.deletions, insertions + words.insertions
        char_errors += chars.substitutions + chars.deletions + chars.insertions
        for (i, ref, hyp), alignment in zip(scored, words.alignments):
            errors = sum(max(c.ref_end_idx - c.ref_start_idx, c.hyp_end_idx - c.hyp_start_idx) for c in alignment if c.type != "equal")
            per_utterance.append(UtteranceErrors(i, ref, hyp, errors, len(ref.split())))
    num_words = sum(len(r.split()) for r in refs)
    num_chars = sum(len(r) for r in refs)
    return Score(
        wer=_rate(substitutions + deletions + insertions, num_words),
        cer=_rate(char_errors, num_chars),
        words=num_words,
        substitutions=substitutions,
        deletions=deletions,
        insertions=insertions,
        utterances=len(ids),
        missing=sum(1 for i in ids if i not in hypotheses),
        per_utterance=tuple(sorted(per_utterance, key=lambda u: u.id)),
        extra=len(extra_ids),
        extra_ids=extra_ids,
    )


@dataclass(frozen=True)
class Comparison:
    """Two systems scored on the same utterances: `candidate` against `baseline`."""

    candidate_wer: float
    baseline_wer: float
    low: float  # the 95 % bootstrap interval of candidate WER minus baseline WER
    high: float
    candidate_better: float  # share of resamples where the candidate makes fewer errors (ties count half)
    resamples: int

    @property
    def difference(self) -> float:
        return self.candidate_wer - self.baseline_wer

    def summary(self, baseline_name: str) -> str:
        return (
            f"against {baseline_name}: %WER {100 * self.baseline_wer:.2f} -> {100 * self.candidate_wer:.2f} "
            f"({100 * self.difference:+.2f}; 95 % interval {100 * self.low:+.2f} .. {100 * self.high:+.2f}), "
            f"better in {100 * self.candidate_better:.1f} % of {self.resamples} paired resamples of the utterances"
        )


def paired_bootstrap(candidate: Score, baseline: Score, resamples: int = 1000, seed: int = 0) -> Comparison:
    """How sure a WER difference is, from the utterances scored (Bisani and Ney 2004; Kaldi's
    compute-wer-bootci): draw the utterances with replacement, the same draw for both systems, and
    count how often the candidate makes fewer errors. A test set of a few hundred utterances moves a
    WER by tenths of a point from which utterances it happens to hold; this says whether a difference
    is larger than that."""
    import numpy as np

    if [u.id for u in candidate.per_utterance] != [u.id for u in baseline.per_utterance]:
        raise ScoringError("the two systems were not scored on the same utterances")
    words = np.array([u.words for u in baseline.per_utterance], dtype=np.int64)
    if not words.sum():
        raise ScoringError("the reference holds no words")
    errors_candidate = np.array([u.errors for u in candidate.per_utterance], dtype=np.int64)
    errors_baseline = np.array([u.errors for u in baseline.per_utterance], dtype=np.int64)
    draws = np.random.default_rng(seed).integers(0, len(words), size=(resamples, len(words)))
    total_words = np.maximum(words[draws].sum(axis=1), 1)  # a draw of only empty references has no words
    candidate_errors, baseline_errors = errors_candidate[draws].sum(axis=1), errors_baseline[draws].sum(axis=1)
    differences = (candidate_errors - baseline_errors) / total_words
    low, high = np.quantile(differences, [0.025, 0.975])
    better = float(np.mean(candidate_errors < baseline_errors) + 0.5 * np.mean(candidate_errors == baseline_errors))
    return Comparison(candidate.wer, baseline.wer, float(low), float(high), better, resamples)


def _rate(errors: int, total: int) -> float:
    if total:
        return errors / total
    return 0.0 if errors == 0 else float("inf")
