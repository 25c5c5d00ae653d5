"""Word times from the CTC branch: force-align the final text to CTC's frames, then read off words.

The text may come from attention or beam search; CTC only places it in time. CTC emits each
character as a spike on one frame near where it hears it, so a word starts at its first
character's frame and ends WORD_END_FRAMES after its last character's, or where the next token
(the space after it) is emitted if that is sooner. CTC tends to emit that space late, at the
end of the pause before the next word, so it is no good as the end on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchaudio.functional

from speech_s2s.text import BLANK_ID, Vocabulary

# The last character's spike comes before the word's acoustic end; measured on words with known
# boundaries (tests/test_alignment.py), ending one 40 ms frame after it was within 20 ms on
# average (2 frames: 50 ms late, 3: 85 ms).
WORD_END_FRAMES = 1


@dataclass(frozen=True)
class Word:
    word: str
    start: float  # seconds
    end: float


def token_frames(ctc_log_probs: torch.Tensor, tokens: list[int]) -> list[tuple[int, int]] | None:
    """(first, last) CTC frame of each token on the best CTC path that spells exactly `tokens`.

    ctc_log_probs [T, V]. Returns None when no such path exists (fewer frames than the text needs).
    """
    if not tokens:
        return []
    repeats = sum(1 for a, b in zip(tokens, tokens[1:]) if a == b)
    if ctc_log_probs.shape[0] < len(tokens) + repeats:
        return None
    path, _ = torchaudio.functional.forced_align(
        ctc_log_probs[None].float(), torch.tensor([tokens], dtype=torch.int32), blank=BLANK_ID
    )
    spans: list[tuple[int, int]] = []
    previous = BLANK_ID
    for frame, label in enumerate(path[0].tolist()):
        if label != BLANK_ID:
            if label != previous:
                spans.append((frame, frame))
            else:
                spans[-1] = (spans[-1][0], frame)
        previous = label
    return spans if len(spans) == len(tokens) else None


def word_times(
    ctc_log_probs: torch.Tensor, tokens: list[int], vocabulary: Vocabulary, frame_seconds: float, offset: float, end: float
) -> list[Word]:
    """The words of `tokens` with start/end times in seconds (frame times + offset, at most `end`).

    Falls back to spreading the words evenly over [offset, end] when CTC cannot align the text.
    """
    words_tokens: list[list[int]] = [[]]
    positions: list[list[int]] = [[]]
    space = vocabulary.tokens.index(" ")
    for position, token in enumerate(tokens):
        if token == space:
            if words_tokens[-1]:
                words_tokens.append([])
                positions.append([])
            continue
        words_tokens[-1].append(token)
        positions[-1].append(position)
    if not words_tokens[-1]:
        words_tokens.pop()
        positions.pop()
    if not words_tokens:
        return []
    texts = [vocabulary.decode(w) for w in words_tokens]
    spans = token_frames(ctc_log_probs, tokens)
    if spans is None:
        step = (end - offset) / len(texts)
        return [Word(t, round(offset + i * step, 3), round(offset + (i + 1) * step, 3)) for i, t in enumerate(texts)]
    words = []
    for text, where in zip(texts, positions):
        first, last = spans[where[0]][0], spans[where[-1]][1]
        stop = last + WORD_END_FRAMES
        if where[-1] + 1 < len(spans):
            stop = min(stop, spans[where[-1] + 1][0])
        words.append(Word(text, round(min(end, offset + first * frame_seconds), 3), round(min(end, offset + stop * frame_seconds), 3)))
    return words
