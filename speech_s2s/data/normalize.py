"""Text normalisation into LibriSpeech-style transcripts.

LibriSpeech transcripts are upper case, contain only the letters A-Z, the
apostrophe and single spaces, and have numbers and abbreviations spelled out
as they would be read aloud.  :func:`normalize_text` turns raw English prose
(Jane Austen novels, the King James Bible, ...) into that form, and
:func:`split_sentences` cuts a paragraph into sentences before normalisation.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "normalize_text",
    "normalize_phrase",
    "split_sentences",
    "number_to_words",
    "ordinal_to_words",
    "year_to_words",
]

ONES: tuple[str, ...] = (
    "ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT",
    "NINE", "TEN", "ELEVEN", "TWELVE", "THIRTEEN", "FOURTEEN", "FIFTEEN",
    "SIXTEEN", "SEVENTEEN", "EIGHTEEN", "NINETEEN",
)
TENS: tuple[str, ...] = (
    "", "", "TWENTY", "THIRTY", "FORTY", "FIFTY", "SIXTY", "SEVENTY", "EIGHTY",
    "NINETY",
)
# Scale words for groups of three digits, lowest first.
SCALES: tuple[str, ...] = (
    "", "THOUSAND", "MILLION", "BILLION", "TRILLION", "QUADRILLION",
)
# Irregular ordinal forms of the last word of a cardinal.
ORDINAL_EXCEPTIONS: dict[str, str] = {
    "ONE": "FIRST", "TWO": "SECOND", "THREE": "THIRD", "FIVE": "FIFTH",
    "EIGHT": "EIGHTH", "NINE": "NINTH", "TWELVE": "TWELFTH",
}

# Abbreviations expanded before punctuation is stripped.  Keys are matched
# case-sensitively as whole words followed by a full stop.
ABBREVIATIONS: dict[str, str] = {
    "Mr": "MISTER", "Mrs": "MISSUS", "Messrs": "MESSIEURS", "Dr": "DOCTOR",
    "St": "SAINT", "Col": "COLONEL", "Capt": "CAPTAIN", "Gen": "GENERAL",
    "Lieut": "LIEUTENANT", "Sgt": "SERGEANT", "Rev": "REVEREND",
    "Esq": "ESQUIRE", "Hon": "HONOURABLE", "Prof": "PROFESSOR",
    "Sr": "SENIOR", "Jr": "JUNIOR", "Gov": "GOVERNOR", "Mt": "MOUNT",
    "No": "NUMBER", "vs": "VERSUS", "viz": "NAMELY", "i.e": "THAT IS",
    "e.g": "FOR EXAMPLE", "etc": "ET CETERA", "Jan": "JANUARY",
    "Feb": "FEBRUARY", "Aug": "AUGUST", "Sept": "SEPTEMBER", "Oct": "OCTOBER",
    "Nov": "NOVEMBER", "Dec": "DECEMBER",
}
# "No." only means NUMBER when a digit follows.
_ABBREV_NEEDS_DIGIT: frozenset[str] = frozenset({"No"})

# Abbreviations after which a full stop does not end a sentence.
NON_TERMINAL_ABBREVIATIONS: frozenset[str] = frozenset(
    {"Mr", "Mrs", "Messrs", "Dr", "St", "Col", "Capt", "Gen", "Lieut", "Sgt",
     "Rev", "Hon", "Prof", "Gov", "Mt", "No", "vs", "viz", "i.e", "e.g"}
)

# Currency symbols read after the amount ("£5" -> "FIVE POUNDS").
CURRENCY: dict[str, str] = {"£": "POUNDS", "$": "DOLLARS"}

# Characters mapped to simpler equivalents before anything else.
CHAR_MAP: dict[str, str] = {
    "\u2018": "'", "\u2019": "'", "\u02bc": "'", "\u2032": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-",
    "\u2015": "-", "\u2212": "-", "\u00a0": " ", "\u00c6": "AE",
    "\u00e6": "ae", "\u0152": "OE", "\u0153": "oe", "\u00df": "ss",
}

# A line that is nothing but a chapter/volume/book heading ("CHAPTER XII.").
HEADING_RE = re.compile(
    r"^\s*(?:(?:CHAPTER|VOLUME|BOOK|PART|LETTER)\s+)?"
    r"(?:[IVXLCDM]+|\d+)\s*[.:]?\s*$",
    re.IGNORECASE,
)
_ROMAN_ONLY_RE = re.compile(r"^[IVXLCDM]+$")

_ORDINAL_RE = re.compile(r"\b(\d+)(st|nd|rd|th|d)\b", re.IGNORECASE)
_CURRENCY_RE = re.compile(r"([£$])\s?(\d[\d,]*(?:\.\d+)?)")
_NUMBER_RE = re.compile(r"\d+(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")
_ABBREV_RE = re.compile(
    r"(?<![A-Za-z.])("
    + "|".join(re.escape(k) for k in sorted(ABBREVIATIONS, key=len, reverse=True))
    + r")\.(?=\s*(\d)?)"
)
# Titles that are expanded even without a full stop ("Mr Darcy").
_BARE_TITLE_RE = re.compile(r"\b(Mr|Mrs|Messrs)\b")
_APOSTROPHE_RE = re.compile(r"(?<![A-Z])'|'(?![A-Z])")
_NON_ALLOWED_RE = re.compile(r"[^A-Z' ]+")
_SPACES_RE = re.compile(r" +")

# Sentence boundary: terminal punctuation, optional closing quotes/brackets,
# whitespace, then something that can start a sentence.
_SENTENCE_END_RE = re.compile(r"([.!?]+)([\"')\]\u2019\u201d]*)\s+(?=[\"'(\[\u2018\u201c_]*[A-Z0-9])")
_LAST_WORD_RE = re.compile(r"([A-Za-z.]+)$")


def _three_digits(n: int) -> list[str]:
    """Words for 0 < n < 1000."""
    words: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        words += [ONES[hundreds], "HUNDRED"]
    if rest:
        if rest < 20:
            words.append(ONES[rest])
        else:
            tens, ones = divmod(rest, 10)
            words.append(TENS[tens])
            if ones:
                words.append(ONES[ones])
    return words


def number_to_words(n: int) -> str:
    """Spell out a non-negative integer: 1234 -> ONE THOUSAND TWO HUNDRED THIRTY FOUR.

    Numbers beyond the largest scale word are read digit by digit.
    """
    if n < 0:
        return "MINUS " + number_to_words(-n)
    if n == 0:
        return ONES[0]
    if n >= 1000 ** len(SCALES):
        return " ".join(ONES[int(d)] for d in str(n))
    words: list[str] = []
    scale = 0
    while n:
        n, group = divmod(n, 1000)
        if group:
            chunk = _three_digits(group)
            if SCALES[scale]:
                chunk.append(SCALES[scale])
            words = chunk + words
        scale += 1
    return " ".join(words)


def ordinal_to_words(n: int) -> str:
    """Spell out an ordinal: 1 -> FIRST, 21 -> TWENTY FIRST, 100 -> ONE HUNDREDTH."""
    words = number_to_words(n).split()
    last = words[-1]
    if last in ORDINAL_EXCEPTIONS:
        last = ORDINAL_EXCEPTIONS[last]
    elif last.endswith("Y"):
        last = last[:-1] + "IETH"
    else:
        last += "TH"
    words[-1] = last
    return " ".join(words)


def year_to_words(n: int) -> str:
    """Read a year the way it is spoken: 1811 -> EIGHTEEN ELEVEN, 1800 -> EIGHTEEN HUNDRED,
    1805 -> EIGHTEEN OH FIVE, 2005 -> TWO THOUSAND FIVE."""
    high, low = divmod(n, 100)
    if n < 1000 or (high % 10 == 0 and low < 10):
        return number_to_words(n)
    if low == 0:
        return number_to_words(high) + " HUNDRED"
    if low < 10:
        return number_to_words(high) + " OH " + ONES[low]
    return number_to_words(high) + " " + number_to_words(low)


def _is_year(token: str) -> bool:
    """A bare four-digit integer between 1100 and 2099 is read as a year."""
    return len(token) == 4 and token.isdigit() and 1100 <= int(token) <= 2099


def _number_token_to_words(token: str) -> str:
    """Spell out a numeric token such as 7, 1811, 10,000 or 3.25."""
    if _is_year(token):
        return year_to_words(int(token))
    integer, _, fraction = token.replace(",", "").partition(".")
    words = number_to_words(int(integer))
    if fraction:
        words += " POINT " + " ".join(ONES[int(d)] for d in fraction)
    return words


def _expand_abbreviation(match: re.Match[str]) -> str:
    abbrev, digit = match.group(1), match.group(2)
    if abbrev in _ABBREV_NEEDS_DIGIT and digit is None:
        return match.group(0)
    return " " + ABBREVIATIONS[abbrev] + " "


def _strip_accents(text: str) -> str:
    """Map accented Latin letters to their base letters (é -> e)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def normalize_text(raw: str) -> str:
    """Normalise raw English prose into a LibriSpeech-style transcript.

    The result is upper case and contains only ``A``-``Z``, apostrophes kept
    inside words (``DON'T``) and single spaces, with numbers, ordinals, years
    and common abbreviations spelled out.  A line that is only a chapter
    heading (``CHAPTER XII``) normalises to the empty string, as does text
    with no letters or digits at all.
    """
    if HEADING_RE.match(raw):
        return ""
    return normalize_phrase(raw)


def normalize_phrase(raw: str) -> str:
    """`normalize_text` without its heading rule: for a word or phrase cut from a sentence, where
    ``I`` is the pronoun and ``5`` a number, not a chapter heading."""
    text = "".join(CHAR_MAP.get(c, c) for c in raw)
    text = _strip_accents(text)
    text = text.replace("_", "")
    text = re.sub(r"&\s*c\b\.?", " ET CETERA ", text)
    text = text.replace("&", " AND ")
    text = _ABBREV_RE.sub(_expand_abbreviation, text)
    text = _BARE_TITLE_RE.sub(lambda m: " " + ABBREVIATIONS[m.group(1)] + " ", text)
    text = _CURRENCY_RE.sub(lambda m: f" {m.group(2)} {CURRENCY[m.group(1)]} ", text)
    text = _ORDINAL_RE.sub(lambda m: " " + ordinal_to_words(int(m.group(1))) + " ", text)
    text = _NUMBER_RE.sub(lambda m: " " + _number_token_to_words(m.group(0)) + " ", text)
    text = text.upper()
    text = _NON_ALLOWED_RE.sub(" ", text)
    text = _APOSTROPHE_RE.sub(" ", text)
    return _SPACES_RE.sub(" ", text).strip()


def split_sentences(paragraph: str) -> list[str]:
    """Split a paragraph of prose into sentences (raw, not normalised).

    A sentence ends at ``.``, ``!`` or ``?`` (plus any closing quotes or
    brackets) followed by whitespace and a capital letter, digit or opening
    quote; a full stop after a title such as ``Mr.`` does not end a sentence.
    Whitespace inside each sentence is collapsed to single spaces.
    """
    text = " ".join(paragraph.split())
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END_RE.finditer(text):
        candidate = text[start:match.end()].strip()
        if match.group(1) == "." and not match.group(2):
            last = _LAST_WORD_RE.search(text[start:match.start()])
            word = last.group(1).lstrip(".") if last else ""
            if word in NON_TERMINAL_ABBREVIATIONS or (len(word) == 1 and word.isupper()):
                continue
        if candidate:
            sentences.append(candidate)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return sentences
