"""What went wrong in a decoding, for people: reference and hypothesis side by side (`recogs-*`), and
every utterance's aligned errors with the most frequent confusions (`errs-*`), as icefall and Kaldi
write them. Texts are compared as `scoring.normalize_for_scoring` leaves them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import jiwer

from speech_s2s.evaluation.scoring import Score

GAP = "*"  # the empty side of an insertion or a deletion


@dataclass(frozen=True)
class AlignedWord:
    reference: str  # GAP for an insertion
    hypothesis: str  # GAP for a deletion

    @property
    def correct(self) -> bool:
        return self.reference == self.hypothesis

    def __str__(self) -> str:
        return self.reference if self.correct else f"({self.reference}->{self.hypothesis})"


def align_words(reference: str, hypothesis: str) -> list[AlignedWord]:
    """Minimum-edit alignment of two word sequences (jiwer's), one pair per position."""
    ref, hyp = reference.split(), hypothesis.split()
    if not ref:
        return [AlignedWord(GAP, word) for word in hyp]
    if not hyp:
        return [AlignedWord(word, GAP) for word in ref]
    aligned: list[AlignedWord] = []
    for chunk in jiwer.process_words(" ".join(ref), " ".join(hyp)).alignments[0]:
        refs, hyps = ref[chunk.ref_start_idx : chunk.ref_end_idx], hyp[chunk.hyp_start_idx : chunk.hyp_end_idx]
        if chunk.type == "insert":
            aligned.extend(AlignedWord(GAP, word) for word in hyps)
        elif chunk.type == "delete":
            aligned.extend(AlignedWord(word, GAP) for word in refs)
        else:  # "equal" or "substitute": the same number of words on both sides
            aligned.extend(AlignedWord(r, h) for r, h in zip(refs, hyps))
    return aligned


def recogs_text(score: Score) -> str:
    """Two lines per utterance, sorted by id: `ID:\\tref=[...]` and `ID:\\thyp=[...]`."""
    lines = []
    for u in score.per_utterance:
        lines.append(f"{u.id}:\tref={u.reference.split()}")
        lines.append(f"{u.id}:\thyp={u.hypothesis.split()}")
    return "\n".join(lines) + "\n"


def errs_text(score: Score, title: str, top: int = 30) -> str:
    """The summary, each utterance with its errors marked (ref->hyp), then the commonest
    substitutions, deletions, insertions and the words most often wrong."""
    substitutions: Counter[tuple[str, str]] = Counter()
    deletions: Counter[str] = Counter()
    insertions: Counter[str] = Counter()
    wrong: Counter[str] = Counter()
    details = []
    for u in score.per_utterance:
        aligned = align_words(u.reference, u.hypothesis)
        for word in aligned:
            if word.correct:
                continue
            if word.reference == GAP:
                insertions[word.hypothesis] += 1
                wrong[word.hypothesis] += 1
            elif word.hypothesis == GAP:
                deletions[word.reference] += 1
                wrong[word.reference] += 1
            else:
                substitutions[(word.reference, word.hypothesis)] += 1
                wrong[word.reference] += 1
        details.append(f"{u.id}: {u.errors} errors / {u.words} words: {' '.join(str(w) for w in aligned)}")
    sections = [
        f"{title}\n{score.summary()}",
        "ERRORS PER UTTERANCE (ref->hyp; * is nothing):\n" + "\n".join(details),
        _section(f"SUBSTITUTIONS (top {top}: count ref -> hyp)", [f"{n} {r} -> {h}" for (r, h), n in _top(substitutions, top)]),
        _section(f"DELETIONS (top {top}: count word)", [f"{n} {w}" for w, n in _top(deletions, top)]),
        _section(f"INSERTIONS (top {top}: count word)", [f"{n} {w}" for w, n in _top(insertions, top)]),
        _section(f"WORDS MOST OFTEN WRONG (top {top}: count word)", [f"{n} {w}" for w, n in _top(wrong, top)]),
    ]
    return "\n\n".join(sections) + "\n"


def _top(counts: Counter, count: int) -> list:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:count]  # ties by name: the same file every run


def _section(heading: str, rows: list[str]) -> str:
    return heading + ":\n" + ("\n".join(rows) if rows else "(none)")
