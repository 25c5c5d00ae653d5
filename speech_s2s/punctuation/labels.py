"""Words and their labels: cased, punctuated text <-> lowercase words + (case, mark) per word. Torch-free.

A word's case is one of CASES (``I`` and acronyms are upper); its mark is the punctuation after it, one of
MARKS ("" for none). Written text becomes what the recogniser says (numbers spelt out, symbols dropped,
lowercase) with the labels that put its case and punctuation back: ``label_sentence``. ``render`` goes the
other way and never adds, drops or reorders words. ``score`` measures restored labels against reference ones.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from speech_s2s.data.normalize import ABBREVIATIONS, normalize_phrase

CASES: tuple[str, ...] = ("lower", "capital", "upper")
LOWER, CAPITAL, UPPER = range(3)
# ";" and ":" are written as "," (what they most often separate reads well with a comma).
MARKS: tuple[str, ...] = ("", ",", ".", "?", "!")
NONE, COMMA, STOP, QUESTION, EXCLAIM = range(5)
SENTENCE_ENDS = frozenset({STOP, QUESTION, EXCLAIM})

_CLOSERS = "\"')]}_*\u2019\u201d"
_TRAILING_RE = re.compile(r"[.,;:!?\u2026\-\u2013\u2014]+$")
_PART_SPLIT_RE = re.compile(r"[-\u2010-\u2015/]+")


@dataclass(frozen=True)
class Labelled:
    """Lowercase words with a case and a mark each (indices into CASES and MARKS)."""

    words: tuple[str, ...]
    cases: tuple[int, ...]
    marks: tuple[int, ...]

    def __post_init__(self) -> None:
        if not len(self.words) == len(self.cases) == len(self.marks):
            raise ValueError("words, cases and marks differ in length")


def _mark_of(run: str, core: str) -> int:
    """The mark a token's trailing punctuation `run` stands for; an abbreviation's full stop is none."""
    if "?" in run:
        return QUESTION
    if "!" in run:
        return EXCLAIM
    if "." in run or "\u2026" in run:
        if run == "." and (core in ABBREVIATIONS or (len(core) == 1 and core.isalpha()) or "." in core):
            return NONE
        return STOP
    if any(c in run for c in ",;:"):
        return COMMA
    return NONE


def _case_of(part: str) -> int:
    letters = [c for c in part if c.isalpha()]
    if not letters or any(c.isdigit() for c in part):
        return LOWER
    if letters == ["I"] or (len(letters) > 1 and all(c.isupper() for c in letters)):
        return UPPER
    return CAPITAL if letters[0].isupper() else LOWER


def label_sentence(raw: str) -> Labelled:
    """One written sentence -> its spoken words and labels. Its first word is capitalised and its last ends
    in . ? or ! (a full stop when the text had none), as a sentence in running text is written."""
    words: list[str] = []
    cases: list[int] = []
    marks: list[int] = []
    for token in raw.split():
        stripped = token.rstrip(_CLOSERS)
        run_match = _TRAILING_RE.search(stripped)
        run = run_match.group(0) if run_match else ""
        core = stripped[: len(stripped) - len(run)].strip(_CLOSERS + "\"'(\u2018\u201c[")
        mark = _mark_of(run, core)
        for part in _PART_SPLIT_RE.split(core):
            spoken = normalize_phrase(part).lower().split()
            case = _case_of(part)
            for index, word in enumerate(spoken):
                words.append(word)
                cases.append(case if index == 0 or case == UPPER else LOWER)
                marks.append(NONE)
        if mark != NONE and marks and marks[-1] == NONE:
            marks[-1] = mark
    if words:
        cases[0] = max(cases[0], CAPITAL)
        if marks[-1] not in SENTENCE_ENDS:
            marks[-1] = STOP
    return Labelled(tuple(words), tuple(cases), tuple(marks))


def join(sentences: Sequence[Labelled]) -> Labelled:
    """Sentences one after another, as a transcript line holds them."""
    return Labelled(tuple(w for s in sentences for w in s.words), tuple(c for s in sentences for c in s.cases),
                    tuple(m for s in sentences for m in s.marks))


def _cased(word: str, case: int) -> str:
    if case == UPPER:
        return word.upper()
    if case == CAPITAL:
        for index, char in enumerate(word):
            if char.isalpha():
                return word[:index] + char.upper() + word[index + 1:]
    return word


def render(words: Sequence[str], cases: Sequence[int], marks: Sequence[int]) -> str:
    """The words, each in its case and followed by its mark (none after a word that already ends in one)."""
    out = []
    for word, case, mark in zip(words, cases, marks, strict=True):
        word = _cased(word, case)
        out.append(word if (not mark or word[-1:] in ".,;:!?") else word + MARKS[mark])
    return " ".join(out)


def baseline(words: Sequence[str]) -> Labelled:
    """The trivial restorer: capitalise the first word, a full stop after the last; ``I`` upper."""
    cases = [UPPER if w == "i" or w.startswith("i'") else LOWER for w in words]
    marks = [NONE] * len(words)
    if words:
        cases[0] = max(cases[0], CAPITAL)
        marks[-1] = STOP
    return Labelled(tuple(words), tuple(cases), tuple(marks))


def score(references: Sequence[Labelled], hypotheses: Sequence[Labelled]) -> dict[str, float]:
    """Per mark precision, recall and F1 (``p,``, ``r,``, ``f,`` ...), ``f1`` over all marks (a mark put in
    the wrong place or of the wrong kind is a false positive and a false negative), ``case_accuracy`` over
    words, and ``slot_error_rate``: (substituted + deleted + inserted marks) / reference marks."""
    true_pos = [0] * len(MARKS)
    false_pos = [0] * len(MARKS)
    false_neg = [0] * len(MARKS)
    correct_case = words = substituted = deleted = inserted = 0
    for ref, hyp in zip(references, hypotheses, strict=True):
        if ref.words != hyp.words:
            raise ValueError("a hypothesis has other words than its reference")
        words += len(ref.words)
        correct_case += sum(a == b for a, b in zip(ref.cases, hyp.cases))
        for r, h in zip(ref.marks, hyp.marks):
            if r == h:
                true_pos[r] += r != NONE
                continue
            false_pos[h] += h != NONE
            false_neg[r] += r != NONE
            substituted += r != NONE and h != NONE
            deleted += h == NONE
            inserted += r == NONE
    result: dict[str, float] = {}

    def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        return p, r, (2 * p * r / (p + r) if p + r else 0.0)

    for mark in range(1, len(MARKS)):
        result[f"p{MARKS[mark]}"], result[f"r{MARKS[mark]}"], result[f"f{MARKS[mark]}"] = prf(
            true_pos[mark], false_pos[mark], false_neg[mark])
        result[f"n{MARKS[mark]}"] = true_pos[mark] + false_neg[mark]
    result["precision"], result["recall"], result["f1"] = prf(sum(true_pos), sum(false_pos), sum(false_neg))
    references_marks = sum(true_pos) + sum(false_neg)  # every reference mark once
    result["slot_error_rate"] = (substituted + deleted + inserted) / max(references_marks, 1)
    result["case_accuracy"] = correct_case / max(words, 1)
    result["words"] = words
    return result
