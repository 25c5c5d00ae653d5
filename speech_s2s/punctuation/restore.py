"""The Restorer: the recogniser's lowercase words in, the same words cased and punctuated out.

It never adds, drops or reorders a word: only the letters' case changes and a mark may follow a word, so word
times stay aligned with the restored words one to one. A long line is read in overlapping chunks of
CHUNK_WORDS words; each word takes its labels from the chunk where it has OVERLAP_WORDS of context or more on
both sides (or the line's edge). The line's first word and every word after a sentence end are capitalised,
and the line's last word ends a sentence.

A recording is restored as one text (`RecordingRestorer`), not segment by segment: the speech detector cuts
at every pause of 0.3 s, commas included, so a segment restored alone ended in a full stop and the next
began with a capital wherever the speaker drew breath. Its segments' words are read as one line, each
segment's last word with PAUSE_BONUS added to the sentence ends' logits (a pause makes a sentence end likelier,
without forcing one); segments come out as soon as the chunks reading their words have all the words they read.
A live final cannot wait for the words after it: `LiveRestorer` reads each after the finals before it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Sequence
from pathlib import Path

import torch

from speech_s2s.punctuation.labels import CAPITAL, LOWER, SENTENCE_ENDS, STOP, Labelled, render
from speech_s2s.punctuation.model import PunctuationModel, load_restorer, pad_batch

BUNDLED = Path(__file__).resolve().parents[1] / "assets" / "punctuation.safetensors"
CHUNK_WORDS = 96  # longer lines are read in chunks; training windows held 16..64 words
OVERLAP_WORDS = 24  # context each side of the words a chunk decides
# Added to the logits of the sentence ends (. ? !) after a word that ends a segment (a pause). Chosen on
# the dev text cut as pauses cut speech (every sentence end, half the commas, 2 % of other words, at most
# 27 words a segment; tools/bench_punctuation.py --segmented): of 0, 1, 2 and 3, 2 was within 0.005 F1 of
# the best on book and on modern text. With pauses at sentence ends only, 3 was 0.015 better on book
# text and 0.011 on modern, 0 about 0.05 worse (docs/history/punctuation.md, 2026-12-07).
PAUSE_BONUS = 2.0
_ENDS = torch.tensor(sorted(SENTENCE_ENDS))  # the marks a pause raises
# The same for a live final (`LiveRestorer`), which is read with no word after it: the pause that ended
# it is all the restorer knows of what follows. Chosen on the same dev recordings, read final by final
# with the finals before them as context: of 2 to 6, 4 was within 0.01 F1 of the best with pauses at
# half the commas and at sentence ends only, and better than each final restored alone (before) in
# F1, case accuracy and slot errors on book and modern text (docs/history/punctuation.md, 2026-12-07).
LIVE_PAUSE_BONUS = 4.0
# A live final after this much silence starts a new text: the finals before it are no longer its context
# and its first word starts a sentence. Pauses inside a sentence are rarely longer than a second or two;
# a caption that ran on in lowercase after half a minute of silence read as a mistake. A product choice,
# not a measured one: the dev text has no pause lengths.
LIVE_NEW_TEXT_SILENCE_SECONDS = 3.0


def chunks(length: int, size: int = CHUNK_WORDS, overlap: int = OVERLAP_WORDS) -> list[tuple[int, int, int, int]]:
    """(read_start, read_end, keep_start, keep_end) per chunk: the kept spans tile 0..length in order."""
    if length <= size:
        return [(0, length, 0, length)] if length else []
    step = size - 2 * overlap
    return [(max(0, s - overlap), min(length, s + step + overlap), s, min(length, s + step)) for s in range(0, length, step)]


class Restorer:
    """Restores case and punctuation of transcript text; one model, any number of lines."""

    def __init__(self, model: PunctuationModel, batch_size: int = 32):
        self.model = model.eval()
        self.batch_size = batch_size

    @classmethod
    def load(cls, path: str | Path | None = None) -> Restorer:
        """The restorer in `path` (default: the bundled one). Raises PunctuationModelError for a bad file."""
        return cls(load_restorer(path or BUNDLED))

    def label_many(self, lines: Sequence[Sequence[str]], pauses: Sequence[Sequence[int]] | None = None) -> list[Labelled]:
        """Each line's words with a case and a mark each (the words unchanged). `pauses`: per line, the
        positions of words a pause follows (PAUSE_BONUS)."""
        pieces = [(row, c) for row, words in enumerate(lines) for c in chunks(len(words))]
        cases: list[list[int]] = [[LOWER] * len(words) for words in lines]
        marks: list[list[int]] = [[0] * len(words) for words in lines]
        labelled = self.label_chunks([(lines[row], piece, pauses[row] if pauses else ()) for row, piece in pieces])
        for (row, (_, _, keep_start, keep_end)), (piece_cases, piece_marks) in zip(pieces, labelled):
            cases[row][keep_start:keep_end], marks[row][keep_start:keep_end] = piece_cases, piece_marks
        out = []
        for words, line_cases, line_marks in zip(lines, cases, marks):
            if words:
                sentence_starts(line_cases, line_marks, 0, len(words))
                end_sentence(line_marks)
            out.append(Labelled(tuple(words), tuple(line_cases), tuple(line_marks)))
        return out

    @torch.inference_mode()
    def label_chunks(self, pieces: Sequence[tuple[Sequence[str], tuple[int, int, int, int], Collection[int]]],
                      pause_bonus: float | None = None) -> list[tuple[list[int], list[int]]]:
        """(words, (read_start, read_end, keep_start, keep_end), pause positions) -> the kept words' cases and
        marks, as the model labels them (no sentence rules yet), `pause_bonus` (default PAUSE_BONUS) added to the
        sentence ends after a pause."""
        bonus = PAUSE_BONUS if pause_bonus is None else pause_bonus
        out = []
        for start in range(0, len(pieces), self.batch_size):
            batch = pieces[start:start + self.batch_size]
            encoded = [self.model.encode(words[read:end]) for words, (read, end, _, _), _ in batch]
            words, chars = pad_batch(encoded, self.model.config.max_chars)
            lengths = torch.tensor([len(ids) for ids, _ in encoded])
            case_logits, mark_logits = self.model(words, chars, lengths)
            for index, (_, (read, end, _, _), pauses) in enumerate(batch):
                rows = torch.tensor([p - read for p in pauses if read <= p < end], dtype=torch.long)
                mark_logits[index, rows[:, None], _ENDS[None, :]] += bonus
            case_ids, mark_ids = case_logits.argmax(-1).tolist(), mark_logits.argmax(-1).tolist()
            for index, (_, (read, _, keep_start, keep_end), _) in enumerate(batch):
                out.append((case_ids[index][keep_start - read:keep_end - read], mark_ids[index][keep_start - read:keep_end - read]))
        return out

    def restore_words(self, lines: Sequence[Sequence[str]]) -> list[list[str]]:
        """Each line's words, restored one for one (a word may gain capitals and a mark after it)."""
        return [render(x.words, x.cases, x.marks).split(" ") if x.words else [] for x in self.label_many(lines)]

    def restore_many(self, texts: Sequence[str]) -> list[str]:
        return [" ".join(words) for words in self.restore_words([text.split() for text in texts])]

    def restore(self, text: str) -> str:
        """One line of words (split on white space) -> the same words cased and punctuated; "" for none."""
        return self.restore_many([text])[0]


def sentence_starts(cases: list[int], marks: Sequence[int], start: int, end: int, first_starts: bool = True) -> None:
    """Capitalise the words start..end-1 of a text that begin a sentence: each word after a sentence
    end, and its first word if `first_starts` (a live final's does only where the one before ended a sentence)."""
    for index in range(start, end):
        if (first_starts if index == 0 else marks[index - 1] in SENTENCE_ENDS):
            cases[index] = max(cases[index], CAPITAL)


def end_sentence(marks: list[int]) -> None:
    """A text's last word ends a sentence."""
    if marks and marks[-1] not in SENTENCE_ENDS:
        marks[-1] = STOP


class RecordingRestorer:
    """One recording's segments, in order, restored as one text (`Restorer.label_many` of their words
    joined, a pause after each segment), each as soon as its words' labels are settled.

    `add(words)` -> the restored words of the segments settled now (in order, maybe none); `finish()` ->
    the rest. The result never depends on how the segments arrived: a word's labels come from the chunk
    that keeps it (a fixed span of the line, reaching CHUNK_WORDS - OVERLAP_WORDS - 1 words past it at
    most) and from the word before it.
    """

    def __init__(self, restorer: Restorer):
        self.restorer = restorer
        self._words: list[str] = []
        self._ends: list[int] = []  # each segment's end, in words
        self._pauses: list[int] = []  # the words a segment ends with, in order
        self._cases: list[int] = []
        self._marks: list[int] = []
        self._settled = 0  # words labelled for good
        self._given = 0  # segments returned

    def add(self, words: Sequence[str]) -> list[list[str]]:
        self._words.extend(words)
        self._ends.append(len(self._words))
        if words:
            self._pauses.append(len(self._words) - 1)
        return self._settle(finished=False)

    def finish(self) -> list[list[str]]:
        return self._settle(finished=True)

    def _settle(self, finished: bool) -> list[list[str]]:
        total = len(self._words)
        if finished:
            ready = [c for c in chunks(total) if c[2] >= self._settled]
        elif total > CHUNK_WORDS:
            # A longer line is read in chunks on a fixed grid; one that reads its full width, up to
            # OVERLAP_WORDS past the words it keeps, is the same whatever words come later. A line that
            # may still end at CHUNK_WORDS or fewer is read whole, so nothing settles before that.
            ready = [c for c in chunks(total) if c[2] >= self._settled and c[1] - c[2] == CHUNK_WORDS - OVERLAP_WORDS]
        else:
            ready = []
        pauses = self._pauses
        pieces = [(self._words, c, pauses[bisect_left(pauses, c[0]):bisect_left(pauses, c[1])]) for c in ready]
        for (_, _, keep_start, keep_end), (cases, marks) in zip(ready, self.restorer.label_chunks(pieces)):
            self._cases[keep_start:keep_end], self._marks[keep_start:keep_end] = cases, marks
            sentence_starts(self._cases, self._marks, keep_start, keep_end)
            self._settled = keep_end
        if finished:
            end_sentence(self._marks)
        out = []
        while self._given < len(self._ends) and (finished or self._ends[self._given] <= self._settled):
            start = self._ends[self._given - 1] if self._given else 0
            end = self._ends[self._given]
            out.append(render(self._words[start:end], self._cases[start:end], self._marks[start:end]).split(" ") if end > start else [])
            self._given += 1
        return out


class LiveRestorer:
    """Live finals, one at a time: each is read after the last OVERLAP_WORDS words of the finals before it
    (as context only: what was shown stays shown), with a pause after its last word (LIVE_PAUSE_BONUS).
    Its first word starts a sentence only where the final before it ended one, and no full stop is
    forced at its end: the next final may go on with the sentence (`restore(words, last=True)` ends it).
    A final after LIVE_NEW_TEXT_SILENCE_SECONDS of silence (`silence_before`) starts afresh, as after `reset`."""

    def __init__(self, restorer: Restorer):
        self.restorer = restorer
        self.reset()

    def reset(self) -> None:
        self._context: list[str] = []  # the last words shown
        self._ended = True  # the last final ended a sentence (or there was none)

    def restore(self, words: Sequence[str], last: bool = False, silence_before: float = 0.0) -> list[str]:
        """A final's words (the model's), restored; `last`: the stream ends with it; `silence_before`: seconds
        since the final before it ended."""
        labelled = self.label(words, last, silence_before)
        return render(labelled.words, labelled.cases, labelled.marks).split(" ") if words else []

    def label(self, words: Sequence[str], last: bool = False, silence_before: float = 0.0) -> Labelled:
        """A final's words with their case and mark (`restore` writes them)."""
        if silence_before >= LIVE_NEW_TEXT_SILENCE_SECONDS:
            self.reset()
        if not words:
            return Labelled((), (), ())
        line = [*self._context, *words]
        pieces = chunks(len(line))
        labelled = self.restorer.label_chunks([(line, piece, [len(line) - 1]) for piece in pieces], LIVE_PAUSE_BONUS)
        cases = [c for piece_cases, _ in labelled for c in piece_cases][len(self._context):]
        marks = [m for _, piece_marks in labelled for m in piece_marks][len(self._context):]
        sentence_starts(cases, marks, 0, len(words), first_starts=self._ended)
        if last:
            end_sentence(marks)
        self._context = line[-OVERLAP_WORDS:]
        self._ended = marks[-1] in SENTENCE_ENDS
        return Labelled(tuple(words), tuple(cases), tuple(marks))
