#!/usr/bin/env python3
"""Measure the punctuation-and-case restorer on held-out text arranged as a transcript is.

    PYTHONPATH=. OMP_NUM_THREADS=1 python tools/bench_punctuation.py [--model FILE] [--data data/punctuation]

Reads test_book.tsv and test_modern.tsv (tools/punctuation_text.py; no choice of the restorer looked at
them), puts LINE_SENTENCES consecutive sentences of a source on a line, drops case and marks, and restores
them with the model and with the trivial baseline (first word capitalised, a full stop at the end, ``I``
upper). Prints per-mark precision/recall/F1, overall F1, case accuracy and slot error rate, then the
restorer's cost: seconds of CPU (one thread) per second of audio, taking WORDS_PER_SECOND words a second
of speech in segments of SEGMENT_WORDS words.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from speech_s2s.punctuation.labels import MARKS, baseline, join, label_sentence, score  # noqa: E402
from speech_s2s.punctuation.restore import Restorer  # noqa: E402
from speech_s2s.punctuation.train import read_tsv  # noqa: E402

LINE_SENTENCES = (3, 6)  # sentences per line, drawn with the seed
WORDS_PER_SECOND = 2.7  # LibriSpeech-like read speech
SEGMENT_WORDS = 16  # words in a segment cut at a pause (about 6 s)


def lines_of(path: Path, seed: int = 0) -> dict[str, list]:
    """Per source, reference lines (Labelled) of consecutive sentences."""
    rng = random.Random(f"bench-{seed}")
    out = {}
    for source, sentences in read_tsv(path).items():
        labelled = [x for x in map(label_sentence, sentences) if x.words]
        lines, start = [], 0
        while start < len(labelled):
            count = rng.randint(*LINE_SENTENCES)
            lines.append(join(labelled[start:start + count]))
            start += count
        out[source] = lines
    return out


def row(name: str, result: dict) -> str:
    marks = " ".join(f"{result['p' + m]:.2f}/{result['r' + m]:.2f}/{result['f' + m]:.2f}" for m in MARKS[1:])
    return f"| {name} | {result['f1']:.3f} | {marks} | {100 * result['case_accuracy']:.1f} | {result['slot_error_rate']:.3f} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="restorer (default: the bundled one)")
    parser.add_argument("--data", default="data/punctuation")
    args = parser.parse_args()
    torch.set_num_threads(1)
    restorer = Restorer.load(args.model)
    print("| set / system | F1 | P/R/F1 , . ? ! | case acc % | SER |")
    print("|---|---|---|---|---|")
    for name in ("test_book", "test_modern"):
        per_source = lines_of(Path(args.data) / f"{name}.tsv")
        groups = {"all": [x for lines in per_source.values() for x in lines]}
        if len(per_source) > 1:
            groups.update(per_source)
        for group, refs in groups.items():
            hyps = restorer.label_many([x.words for x in refs])
            label = name if group == "all" else f"{name}: {group}"
            words = sum(len(x.words) for x in refs)
            counts = " ".join(f"{m}{sum(x.marks.count(i) for x in refs)}" for i, m in enumerate(MARKS) if i)
            print(row(f"{label} ({len(refs)} lines, {words} words; {counts}) restorer", score(refs, hyps)))
            print(row(f"{label} baseline", score(refs, [baseline(x.words) for x in refs])))
    refs = lines_of(Path(args.data) / "test_book.tsv")["northangerabbey"]
    words = [w for x in refs for w in x.words][: 20 * int(60 * WORDS_PER_SECOND)]  # twenty minutes of speech
    segments = [words[i:i + SEGMENT_WORDS] for i in range(0, len(words), SEGMENT_WORDS)]
    restorer.label_many(segments[:8])  # warm up
    began = time.process_time()
    for start in range(0, len(segments), 8):  # as the recogniser calls it: one decoding batch of segments at a time
        restorer.label_many(segments[start:start + 8])
    seconds = time.process_time() - began
    audio = len(words) / WORDS_PER_SECOND
    print(f"\ncost: {1000 * seconds / audio:.2f} ms of CPU per second of audio ({len(words)} words in {len(segments)} segments "
          f"of {SEGMENT_WORDS}, {WORDS_PER_SECOND} words/s, batches of 8, one thread)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
