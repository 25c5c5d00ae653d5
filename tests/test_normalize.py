"""Tests for speech_s2s.data.normalize."""

import re

import pytest

from speech_s2s.data.normalize import (
    normalize_text,
    number_to_words,
    ordinal_to_words,
    split_sentences,
    year_to_words,
)

ALLOWED = re.compile(r"^(?:[A-Z']+(?: [A-Z']+)*)?$")


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "ZERO"),
        (7, "SEVEN"),
        (13, "THIRTEEN"),
        (40, "FORTY"),
        (99, "NINETY NINE"),
        (100, "ONE HUNDRED"),
        (115, "ONE HUNDRED FIFTEEN"),
        (1000, "ONE THOUSAND"),
        (10000, "TEN THOUSAND"),
        (20005, "TWENTY THOUSAND FIVE"),
        (1_000_000, "ONE MILLION"),
        (3_200_000_017, "THREE BILLION TWO HUNDRED MILLION SEVENTEEN"),
    ],
)
def test_number_to_words(n: int, words: str) -> None:
    assert number_to_words(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1, "FIRST"),
        (2, "SECOND"),
        (3, "THIRD"),
        (4, "FOURTH"),
        (5, "FIFTH"),
        (8, "EIGHTH"),
        (9, "NINTH"),
        (12, "TWELFTH"),
        (20, "TWENTIETH"),
        (21, "TWENTY FIRST"),
        (100, "ONE HUNDREDTH"),
    ],
)
def test_ordinal_to_words(n: int, words: str) -> None:
    assert ordinal_to_words(n) == words


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (1811, "EIGHTEEN ELEVEN"),
        (1800, "EIGHTEEN HUNDRED"),
        (1805, "EIGHTEEN OH FIVE"),
        (2000, "TWO THOUSAND"),
        (2005, "TWO THOUSAND FIVE"),
        (2019, "TWENTY NINETEEN"),
    ],
)
def test_year_to_words(n: int, words: str) -> None:
    assert year_to_words(n) == words


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # numbers, years, ordinals
        ("She had 5 daughters.", "SHE HAD FIVE DAUGHTERS"),
        ("It was 1811.", "IT WAS EIGHTEEN ELEVEN"),
        ("On the 21st, 2nd and 3rd of May", "ON THE TWENTY FIRST SECOND AND THIRD OF MAY"),
        ("a fortune of 10,000 a year", "A FORTUNE OF TEN THOUSAND A YEAR"),
        ("He owed £500.", "HE OWED FIVE HUNDRED POUNDS"),
        ("It is 3.5 miles", "IT IS THREE POINT FIVE MILES"),
        # abbreviations
        ("Mr. and Mrs. Bennet", "MISTER AND MISSUS BENNET"),
        ("Mr Darcy", "MISTER DARCY"),
        ("Dr. Grant of St. Paul", "DOCTOR GRANT OF SAINT PAUL"),
        ("Col. Brandon", "COLONEL BRANDON"),
        ("ribbons, lace, &c.", "RIBBONS LACE ET CETERA"),
        ("bread & butter", "BREAD AND BUTTER"),
        # apostrophes versus quotes
        ("\u201cI don\u2019t know,\u201d said she.", "I DON'T KNOW SAID SHE"),
        ("'Tis Elizabeth's!' he cried", "TIS ELIZABETH'S HE CRIED"),
        ("the horses' heads", "THE HORSES HEADS"),
        # dashes, emphasis underscores, other punctuation
        ("well\u2014very well--indeed", "WELL VERY WELL INDEED"),
        ("a good-humoured man", "A GOOD HUMOURED MAN"),
        ("I _must_ go; (really!)", "I MUST GO REALLY"),
        ("  Caf\u00e9   na\u00efve  ", "CAFE NAIVE"),
        # empty results
        ("", ""),
        ("-- ... !", ""),
        ("CHAPTER XII", ""),
        ("Chapter 3.", ""),
        ("IV", ""),
    ],
)
def test_normalize_text(raw: str, expected: str) -> None:
    result = normalize_text(raw)
    assert result == expected
    assert ALLOWED.match(result)


def test_normalize_output_alphabet() -> None:
    raw = "\u201cOh!\u201d\u2014said Mrs. Jennings, 1st & 2nd; \u00e6ther [sic] _quite_ {odd} 42%"
    result = normalize_text(raw)
    assert ALLOWED.match(result)
    assert "  " not in result
    assert result == "OH SAID MISSUS JENNINGS FIRST AND SECOND AETHER SIC QUITE ODD FORTY TWO"


def test_split_sentences() -> None:
    paragraph = (
        'Mr. Bennet came home. "Is it so?" she asked.  Yes!\n'
        "It was Mrs. Long at St. Paul's. the end"
    )
    assert split_sentences(paragraph) == [
        "Mr. Bennet came home.",
        '"Is it so?" she asked.',
        "Yes!",
        "It was Mrs. Long at St. Paul's. the end",
    ]


def test_split_sentences_empty() -> None:
    assert split_sentences("") == []
    assert split_sentences("   \n ") == []
    assert split_sentences("One sentence only") == ["One sentence only"]
