"""Smoke test of tools/make_tts_corpus.py: a tiny espeak-ng corpus that the package's own reader accepts."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from speech_s2s.data.corpus import read_librispeech

TOOL = Path(__file__).parent.parent / "tools" / "make_tts_corpus.py"
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None and os.environ.get("CI") != "true",  # CI installs it: never skip there
    reason="espeak-ng is not installed",
)


@needs_espeak
def test_tiny_corpus_is_librispeech_layout_with_held_out_speakers_and_text(tmp_path):
    out = tmp_path / "corpus"
    command = [sys.executable, str(TOOL), "--out", str(out), "--seed", "0", "--jobs", "1", "--engines", "espeak",
               "--train-hours", "0.01", "--max-train-utts", "4", "--dev-utts", "2", "--test-utts", "2"]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    splits = {name: read_librispeech(out / name) for name in ("train-tts", "dev-tts", "test-tts")}
    assert [len(splits[name]) for name in ("train-tts", "dev-tts", "test-tts")] == [4, 2, 2]
    speakers = {name: {u.speaker for u in utts} for name, utts in splits.items()}
    assert not speakers["train-tts"] & (speakers["dev-tts"] | speakers["test-tts"])
    assert not speakers["dev-tts"] & speakers["test-tts"]
    train_text = {u.text for u in splits["train-tts"]}
    assert not train_text & {u.text for u in splits["dev-tts"] + splits["test-tts"]}
    assert all(0.5 < u.duration < 15 for utts in splits.values() for u in utts)
    # Resumable and deterministic: a second run with the same arguments has nothing left to do.
    again = subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)
    assert "0 to synthesise" in again.stderr
    assert (out / "SPEAKERS.TXT").read_text().count("espeak") >= 3
    # Growing the corpus keeps the smaller one as its prefix: same files, untouched; only new sentences are added.
    before = {u.audio: (u.text, Path(u.audio).stat().st_mtime_ns) for u in splits["train-tts"]}
    grown = [("6" if previous == "--max-train-utts" else arg) for previous, arg in zip(["", *command], command)]
    result = subprocess.run(grown, check=True, capture_output=True, text=True, timeout=300)
    assert "2 to synthesise" in result.stderr
    after = {u.audio: (u.text, Path(u.audio).stat().st_mtime_ns) for u in read_librispeech(out / "train-tts")}
    assert len(after) == 6 and all(after[path] == before[path] for path in before)


def _dev_and_train_only_corpus(out: Path, kind: str, train_utts: int, dev_utts: int) -> tuple[list, list]:
    """A tiny espeak corpus of a `kind` that has no test split (--short, --modern): its train and dev
    utterances, checked to be as many as asked for, with no test split and no text in both."""
    command = [sys.executable, str(TOOL), kind, "--out", str(out), "--seed", "0", "--jobs", "1", "--engines", "espeak",
               "--train-hours", "0.01", "--max-train-utts", str(train_utts), "--dev-utts", str(dev_utts)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    train, dev = read_librispeech(out / "train-tts"), read_librispeech(out / "dev-tts")
    assert (len(train), len(dev)) == (train_utts, dev_utts) and not (out / "test-tts").exists()
    assert not {u.text for u in train} & {u.text for u in dev}
    return train, dev


@needs_espeak
def test_short_corpus_holds_short_utterances_and_no_test_split(tmp_path):
    from tools.tts.text import SHORT_MAX_WORDS

    train, dev = _dev_and_train_only_corpus(tmp_path / "short", "--short", train_utts=6, dev_utts=2)
    # a span of one or two words, or a number (at most six digits said one by one)
    assert all(len(u.text.split()) <= 6 and 0.2 < u.duration < 5 for u in train + dev)
    assert any(len(u.text.split()) <= SHORT_MAX_WORDS for u in train)


@needs_espeak
@pytest.mark.skipif(not Path("/usr/share/wordnet/data.noun").is_file(), reason="wordnet-base not installed")
def test_modern_corpus_reads_wordnets_examples_and_has_no_test_split(tmp_path):
    from tools.tts.text import find_wordnet_dir, load_wordnet_examples

    out = tmp_path / "modern"
    train, dev = _dev_and_train_only_corpus(out, "--modern", train_utts=3, dev_utts=2)
    assert {u.text for u in train + dev} <= set(load_wordnet_examples(find_wordnet_dir()))
    assert "| wordnet" in (out / "CHAPTERS.TXT").read_text()
    both = subprocess.run([sys.executable, str(TOOL), "--modern", "--short", "--out", str(out)], capture_output=True, text=True)
    assert both.returncode == 2 and "--modern is a corpus's text" in both.stderr


@needs_espeak
@pytest.mark.skipif(not Path("/usr/share/trans/de-en").is_file(), reason="trans-de-en not installed")
def test_spoken_corpus_reads_dings_example_sentences_into_a_train_split_only(tmp_path):
    from tools.tts.text import find_ding, load_ding_examples

    out = tmp_path / "spoken"
    command = [sys.executable, str(TOOL), "--spoken", "--out", str(out), "--seed", "0", "--jobs", "1", "--engines", "espeak",
               "--train-hours", "0.01", "--max-train-utts", "3"]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    train = read_librispeech(out / "train-tts")
    assert len(train) == 3 and not (out / "dev-tts").exists() and not (out / "test-tts").exists()
    assert {u.text for u in train} <= set(load_ding_examples(find_ding()))
    assert "| ding" in (out / "CHAPTERS.TXT").read_text()
    asked_dev = subprocess.run(command + ["--dev-utts", "5"], capture_output=True, text=True)
    assert asked_dev.returncode == 2 and "--spoken makes a train split only: no --dev-utts" in asked_dev.stderr
    both = subprocess.run(command + ["--modern"], capture_output=True, text=True)
    assert both.returncode == 2 and "a corpus's text" in both.stderr
