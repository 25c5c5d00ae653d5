#!/usr/bin/env python3
"""Measure the punctuation-and-case restorer on held-out text arranged as a transcript is.

    PYTHONPATH=. OMP_NUM_THREADS=1 python tools/bench_punctuation.py [--model FILE] [--data data/punctuation] [--dev]

Reads test_book.tsv and test_modern.tsv (tools/punctuation_text.py; no choice of the restorer looked at
them), or with --dev the dev sentences (dev.tsv) arranged the same way, the novels as book text and the
rest as modern text (what chooses between restorers and settings); puts LINE_SENTENCES consecutive
sentences of a source on a line, drops case and marks, and restores them with the model and with the
trivial baseline (first word capitalised, a full stop at the end, ``I`` upper). Prints per-mark
precision/recall/F1, overall F1, case accuracy and slot error rate, then the restorer's cost: seconds
of CPU (one thread) per second of audio, taking WORDS_PER_SECOND words a second of speech in segments
of SEGMENT_WORDS words.

--segmented measures what `transcribe` shows: recordings of RECORDING_SENTENCES sentences cut where a
speaker pauses (every sentence end, a share of the commas and of other words, at most MAX_SEGMENT_WORDS
words a segment), restored segment by segment, as one text (speech_s2s.punctuation.restore.RecordingRestorer,
what `transcribe` does) and final by final as live finals are (LiveRestorer).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import speech_s2s.punctuation.restore as restore  # noqa: E402
from speech_s2s.punctuation.labels import COMMA, MARKS, NONE, SENTENCE_ENDS, Labelled, baseline, join, label_sentence, score  # noqa: E402
from speech_s2s.punctuation.restore import LiveRestorer, RecordingRestorer, Restorer  # noqa: E402
from speech_s2s.punctuation.train import group_of, read_tsv  # noqa: E402

LINE_SENTENCES = (3, 6)  # sentences per line, drawn with the seed
WORDS_PER_SECOND = 2.7  # LibriSpeech-like read speech
SEGMENT_WORDS = 16  # words in a segment cut at a pause (about 6 s)
RECORDING_SENTENCES = 20  # --segmented: sentences read in one recording
MAX_SEGMENT_WORDS = 27  # the speech detector's longest segment, 10 s, at WORDS_PER_SECOND


def text_sets(data: Path, dev: bool) -> dict[str, dict[str, list[str]]]:
    """The book and the modern set's sentences per source: the held-out ones, or the dev ones (`dev`)."""
    if not dev:
        return {name: read_tsv(data / f"{name}.tsv") for name in ("test_book", "test_modern")}
    sentences = read_tsv(data / "dev.tsv")
    return {"dev_book": {s: x for s, x in sentences.items() if group_of(s) == "books"},
            "dev_modern": {s: x for s, x in sentences.items() if group_of(s) != "books"}}


def lines_of(text: dict[str, list[str]], seed: int = 0) -> dict[str, list]:
    """Per source, reference lines (Labelled) of consecutive sentences."""
    rng = random.Random(f"bench-{seed}")
    out = {}
    for source, sentences in text.items():
        labelled = [x for x in map(label_sentence, sentences) if x.words]
        lines, start = [], 0
        while start < len(labelled):
            count = rng.randint(*LINE_SENTENCES)
            lines.append(join(labelled[start:start + count]))
            start += count
        out[source] = lines
    return out


def recordings_of(text: dict[str, list[str]], comma_pauses: float, other_pauses: float, seed: int = 0) -> list[tuple[Labelled, list[int]]]:
    """Recordings of RECORDING_SENTENCES consecutive sentences of a source (Labelled), each with the
    word counts at which a pause cuts it: after every sentence end, after a comma with probability
    `comma_pauses`, after another word with `other_pauses`, and after MAX_SEGMENT_WORDS words without one."""
    rng = random.Random(f"segmented-{seed}")
    out = []
    for sentences in text.values():
        labelled = [x for x in map(label_sentence, sentences) if x.words]
        for start in range(0, len(labelled), RECORDING_SENTENCES):
            recording, cuts, length = join(labelled[start:start + RECORDING_SENTENCES]), [], 0
            for index, mark in enumerate(recording.marks):
                length += 1
                chance = comma_pauses if mark == COMMA else other_pauses if mark == NONE else 1.0
                if mark in SENTENCE_ENDS or length >= MAX_SEGMENT_WORDS or rng.random() < chance:
                    cuts.append(index + 1)
                    length = 0
            out.append((recording, cuts))
    return out


def segmented(restorer: Restorer, sets: dict[str, dict[str, list[str]]], comma_pauses: float, other_pauses: float) -> None:
    """The --segmented table: each recording restored as one text, final by final (live), segment by
    segment, and by the baseline segment by segment."""
    print(f"\nRecordings cut where a speaker pauses (every sentence end, {comma_pauses:.0%} of commas, {other_pauses:.0%} of "
          f"other words, at most {MAX_SEGMENT_WORDS} words a segment; pause bonus {restore.PAUSE_BONUS}):\n")
    print("| set / system | F1 | P/R/F1 , . ? ! | case acc % | SER |")
    print("|---|---|---|---|---|")
    for name, text in sets.items():
        recordings = recordings_of(text, comma_pauses, other_pauses)
        refs = [recording for recording, _ in recordings]
        alone, together, live, trivial = [], [], [], []
        for recording, cuts in recordings:
            pieces = [list(recording.words[a:b]) for a, b in zip([0, *cuts], cuts)]
            labelled = restorer.label_many(pieces)
            alone.append(join(labelled))
            trivial.append(join([baseline(piece) for piece in pieces]))
            finals = LiveRestorer(restorer)
            live.append(join([finals.label(piece, last=i == len(pieces) - 1) for i, piece in enumerate(pieces)]))
            # what RecordingRestorer gives, segment after segment (tests/test_punctuation.py)
            together.append(restorer.label_many([list(recording.words)], pauses=[[cut - 1 for cut in cuts]])[0])
        segments = sum(len(cuts) for _, cuts in recordings)
        words = sum(len(x.words) for x in refs)
        print(row(f"{name} ({len(refs)} recordings, {segments} segments, {words} words) restored as one text", score(refs, together)))
        print(row(f"{name} live, final by final (pause bonus {restore.LIVE_PAUSE_BONUS})", score(refs, live)))
        print(row(f"{name} segment by segment", score(refs, alone)))
        print(row(f"{name} baseline, segment by segment", score(refs, trivial)))


def row(name: str, result: dict) -> str:
    marks = " ".join(f"{result['p' + m]:.2f}/{result['r' + m]:.2f}/{result['f' + m]:.2f}" for m in MARKS[1:])
    return f"| {name} | {result['f1']:.3f} | {marks} | {100 * result['case_accuracy']:.1f} | {result['slot_error_rate']:.3f} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="restorer (default: the bundled one)")
    parser.add_argument("--data", default="data/punctuation")
    parser.add_argument("--dev", action="store_true", help="the dev sentences (dev.tsv) instead of the held-out ones, arranged the same way")
    parser.add_argument("--segmented", action="store_true", help="also recordings cut where a speaker pauses, restored as one text, live, and alone")
    parser.add_argument("--comma-pauses", type=float, default=0.5, help="--segmented: the share of commas a pause follows (default 0.5)")
    parser.add_argument("--other-pauses", type=float, default=0.02, help="--segmented: the share of other words (default 0.02)")
    parser.add_argument("--pause-bonus", type=float, help=f"added to the sentence ends' logits after a pause (default {restore.PAUSE_BONUS})")
    parser.add_argument("--live-pause-bonus", type=float, help=f"the same for live finals (default {restore.LIVE_PAUSE_BONUS})")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.pause_bonus is not None:
        restore.PAUSE_BONUS = args.pause_bonus
    if args.live_pause_bonus is not None:
        restore.LIVE_PAUSE_BONUS = args.live_pause_bonus
    restorer = Restorer.load(args.model)
    sets = text_sets(Path(args.data), args.dev)
    print("| set / system | F1 | P/R/F1 , . ? ! | case acc % | SER |")
    print("|---|---|---|---|---|")
    for name, text in sets.items():
        per_source = lines_of(text)
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
    if args.segmented:
        segmented(restorer, sets, args.comma_pauses, args.other_pauses)
    refs = next(iter(lines_of(next(iter(sets.values()))).values()))
    words = [w for x in refs for w in x.words][: 20 * int(60 * WORDS_PER_SECOND)]  # twenty minutes of speech
    segments = [words[i:i + SEGMENT_WORDS] for i in range(0, len(words), SEGMENT_WORDS)]
    restorer.label_many(segments[:8])  # warm up
    began = time.process_time()
    recording = RecordingRestorer(restorer)  # as the recogniser calls it: a segment at a time, the recording as one text
    for segment in segments:
        recording.add(segment)
    recording.finish()
    seconds = time.process_time() - began
    audio = len(words) / WORDS_PER_SECOND
    print(f"\ncost: {1000 * seconds / audio:.2f} ms of CPU per second of audio ({len(words)} words in {len(segments)} segments "
          f"of {SEGMENT_WORDS}, {WORDS_PER_SECOND} words/s, one recording, one thread)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
