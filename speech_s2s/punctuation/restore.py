"""The Restorer: the recogniser's lowercase words in, the same words cased and punctuated out.

It never adds, drops or reorders a word: only the letters' case changes and a mark may follow a word, so word
times stay aligned with the restored words one to one. A long line is read in overlapping chunks of
CHUNK_WORDS words; each word takes its labels from the chunk where it has OVERLAP_WORDS of context or more on
both sides (or the line's edge). The line's first word and every word after a sentence end are capitalised,
and the line's last word ends a sentence.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from speech_s2s.punctuation.labels import CAPITAL, LOWER, SENTENCE_ENDS, STOP, Labelled, render
from speech_s2s.punctuation.model import PunctuationModel, load_restorer, pad_batch

BUNDLED = Path(__file__).resolve().parents[1] / "assets" / "punctuation.safetensors"
CHUNK_WORDS = 96  # longer lines are read in chunks; training windows held 16..64 words
OVERLAP_WORDS = 24  # context each side of the words a chunk decides


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

    @torch.inference_mode()
    def label_many(self, lines: Sequence[Sequence[str]]) -> list[Labelled]:
        """Each line's words with a case and a mark each (the words unchanged)."""
        pieces = [(row, c) for row, words in enumerate(lines) for c in chunks(len(words))]
        cases: list[list[int]] = [[LOWER] * len(words) for words in lines]
        marks: list[list[int]] = [[0] * len(words) for words in lines]
        for start in range(0, len(pieces), self.batch_size):
            batch = pieces[start:start + self.batch_size]
            encoded = [self.model.encode(lines[row][a:b]) for row, (a, b, _, _) in batch]
            words, chars = pad_batch(encoded, self.model.config.max_chars)
            lengths = torch.tensor([len(ids) for ids, _ in encoded])
            case_logits, mark_logits = self.model(words, chars, lengths)
            case_ids, mark_ids = case_logits.argmax(-1).tolist(), mark_logits.argmax(-1).tolist()
            for index, (row, (read, _, keep_start, keep_end)) in enumerate(batch):
                cases[row][keep_start:keep_end] = case_ids[index][keep_start - read:keep_end - read]
                marks[row][keep_start:keep_end] = mark_ids[index][keep_start - read:keep_end - read]
        out = []
        for words, line_cases, line_marks in zip(lines, cases, marks):
            if words:
                line_cases[0] = max(line_cases[0], CAPITAL)
                for index in range(1, len(words)):  # a sentence starts after each sentence end
                    if line_marks[index - 1] in SENTENCE_ENDS:
                        line_cases[index] = max(line_cases[index], CAPITAL)
                if line_marks[-1] not in SENTENCE_ENDS:
                    line_marks[-1] = STOP
            out.append(Labelled(tuple(words), tuple(line_cases), tuple(line_marks)))
        return out

    def restore_words(self, lines: Sequence[Sequence[str]]) -> list[list[str]]:
        """Each line's words, restored one for one (a word may gain capitals and a mark after it)."""
        return [render(x.words, x.cases, x.marks).split(" ") if x.words else [] for x in self.label_many(lines)]

    def restore_many(self, texts: Sequence[str]) -> list[str]:
        return [" ".join(words) for words in self.restore_words([text.split() for text in texts])]

    def restore(self, text: str) -> str:
        """One line of words (split on white space) -> the same words cased and punctuated; "" for none."""
        return self.restore_many([text])[0]
