"""Character vocabulary: text <-> token ids.

Token 0 is the CTC blank, token 1 is <eos>, which also serves as <sos> (as in ESPnet): the
decoder starts from it and emits it to stop. The rest are the characters a model can spell.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

BLANK = "<blank>"
EOS = "<eos>"
CHARACTERS = tuple(" 'abcdefghijklmnopqrstuvwxyz")
BLANK_ID = 0
EOS_ID = 1


class TranscriptError(ValueError):
    """A transcript holds characters the vocabulary cannot spell."""


@dataclass(frozen=True)
class Vocabulary:
    tokens: tuple[str, ...] = (BLANK, EOS) + CHARACTERS

    def __post_init__(self) -> None:
        if self.tokens[BLANK_ID] != BLANK or self.tokens[EOS_ID] != EOS:
            raise ValueError(f"vocabulary must start with {BLANK!r}, {EOS!r}; got {self.tokens[:2]}")

    def __len__(self) -> int:
        return len(self.tokens)

    @cached_property
    def _index(self) -> dict[str, int]:
        return {token: i for i, token in enumerate(self.tokens)}

    def encode(self, text: str) -> list[int]:
        """Lower-case `text` and map each character to its id; unknown characters raise."""
        index = self._index
        normalised = " ".join(text.lower().split())
        unknown = sorted({ch for ch in normalised if ch not in index or index[ch] <= EOS_ID})
        if unknown:
            raise TranscriptError(f"characters outside the vocabulary: {''.join(unknown)!r}")
        return [index[ch] for ch in normalised]

    def decode(self, ids: list[int]) -> str:
        """Map ids back to text, skipping blank and <eos>, and squeezing runs of spaces."""
        chars = [self.tokens[i] for i in ids if i > EOS_ID]
        return " ".join("".join(chars).split())
