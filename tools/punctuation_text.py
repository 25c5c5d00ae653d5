#!/usr/bin/env python3
"""Cased, punctuated English text for the punctuation-and-case restorer, split once and for all.

    python tools/punctuation_text.py --out data/punctuation [--sotu ~/.cache/speech_s2s/sotu]

Sources (the corpus tool's, read with their case and punctuation kept): Jane Austen's novels
(r-cran-janeaustenr), WordNet's usage examples (wordnet-base), Ding's English example sentences
(trans-de-en) and the State of the Union addresses since 1950 (tools/fetch_sotu.sh). *Sense and
Sensibility* is never read (reserved for independent evaluation); the King James Bible is left out (its
colons and semicolons are a style of their own).

Writes ``source<TAB>sentence`` lines, in document order:
- test_book.tsv: *Northanger Abbey*, whole (held out; the speech corpus's dev set reads it, but no text
  of it reaches the restorer's training or its choices);
- test_modern.tsv: WordNet, Ding and address sentences in blocks of BLOCK sentences, a share
  TEST_SHARE of the blocks drawn with the seed;
- dev.tsv: another DEV_SHARE of the blocks of every training source (the learning curve's dev set);
- train.tsv: the rest.
The split depends only on the installed sources and --seed (default 0).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from speech_s2s.data.normalize import normalize_text, split_sentences  # noqa: E402
from tools.tts.text import (  # noqa: E402
    BOILERPLATE_RE,
    DEV_BOOK,
    SOTU_ASIDE_RE,
    SOTU_SINCE,
    TEST_BOOK,
    WORDNET_QUOTE_RE,
    _wordnet_glosses,
    ding_example_items,
    find_austen_dir,
    find_ding,
    find_wordnet_dir,
    lines_to_paragraphs,
    load_austen,
)

BLOCK = 20  # consecutive sentences that go to one split together
TEST_SHARE = 0.10
DEV_SHARE = 0.03
MIN_WORDS = 2


def _sentences(paragraphs) -> list[str]:
    out = []
    for paragraph in paragraphs:
        if BOILERPLATE_RE.match(paragraph):
            continue
        out += [s for s in split_sentences(paragraph) if len(normalize_text(s).split()) >= MIN_WORDS]
    return out


def austen() -> dict[str, list[str]]:
    books = load_austen(find_austen_dir())
    return {name: _sentences(lines_to_paragraphs(lines)) for name, lines in sorted(books.items()) if name != TEST_BOOK}


def wordnet_examples() -> list[str]:
    directory = find_wordnet_dir()
    if directory is None:
        raise FileNotFoundError("WordNet not found; apt-get install wordnet-base")
    return [e.strip() for gloss in _wordnet_glosses(directory) for e in WORDNET_QUOTE_RE.findall(gloss)
            if len(normalize_text(e).split()) >= MIN_WORDS]


def ding_examples() -> list[str]:
    path = find_ding()
    if path is None:
        raise FileNotFoundError("Ding's dictionary not found; apt-get install trans-de-en")
    return list(dict.fromkeys(ding_example_items(path)))


def sotu(directory: Path) -> list[str]:
    files = sorted(p for p in directory.glob("*.txt") if p.name[:4].isdigit() and int(p.name[:4]) >= SOTU_SINCE)
    if not files:
        raise FileNotFoundError(f"{directory}: no State of the Union address; run tools/fetch_sotu.sh")
    return _sentences(SOTU_ASIDE_RE.sub(" ", line) for path in files for line in path.read_text(encoding="utf-8").splitlines() if line.strip())


def split_blocks(sentences: list[str], rng: random.Random, test_share: float) -> tuple[list[str], list[str], list[str]]:
    """(train, dev, test) by blocks of BLOCK consecutive sentences."""
    train, dev, test = [], [], []
    for start in range(0, len(sentences), BLOCK):
        draw = rng.random()
        target = test if draw < test_share else dev if draw < test_share + DEV_SHARE else train
        target += sentences[start:start + BLOCK]
    return train, dev, test


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data/punctuation")
    parser.add_argument("--sotu", default=str(Path.home() / ".cache/speech_s2s/sotu"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(f"punctuation-split-{args.seed}")
    splits: dict[str, list[tuple[str, str]]] = {"train": [], "dev": [], "test_book": [], "test_modern": []}
    for name, sentences in austen().items():
        if name == DEV_BOOK:
            splits["test_book"] += [(name, s) for s in sentences]
            continue
        train, dev, _ = split_blocks(sentences, rng, 0.0)
        splits["train"] += [(name, s) for s in train]
        splits["dev"] += [(name, s) for s in dev]
    for name, sentences in (("wordnet", wordnet_examples()), ("ding", ding_examples()), ("sotu", sotu(Path(args.sotu)))):
        train, dev, test = split_blocks(sentences, rng, TEST_SHARE)
        for split, part in (("train", train), ("dev", dev), ("test_modern", test)):
            splits[split] += [(name, s) for s in part]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for split, rows in splits.items():
        (out / f"{split}.tsv").write_text("".join(f"{source}\t{sentence}\n" for source, sentence in rows), encoding="utf-8")
        counts: dict[str, int] = {}
        for source, _ in rows:
            counts[source] = counts.get(source, 0) + 1
        print(f"{split}: {len(rows)} sentences {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
