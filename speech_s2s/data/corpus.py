"""Corpora in the LibriSpeech layout and JSONL manifests: reading and validating them, no torch.

Layout read: <split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac beside
<speaker>-<chapter>.trans.txt, whose lines are "<utterance-id> TRANSCRIPT".
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import soundfile
from tqdm import tqdm

from speech_s2s import atomic
from speech_s2s.text import TranscriptError, Vocabulary

AUDIO_SUFFIXES = (".flac", ".wav")


class CorpusError(ValueError):
    """A corpus file is missing or malformed; the message names the file (and line)."""


# Kinds of problem a corpus can have (`Problem.kind`).
TRANSCRIPT = "transcript"  # a malformed transcript line or file, or characters the vocabulary cannot spell
MISSING_AUDIO = "missing audio"  # a transcript line whose audio file is not there
UNREADABLE_AUDIO = "unreadable audio"  # an audio file whose header cannot be read
UNTRANSCRIBED_AUDIO = "untranscribed audio"  # an audio file no transcript line mentions
TRUNCATED_AUDIO = "truncated audio"  # a header that promises more samples than decode (found by `corpus_check`)


class Problem(str):
    """One problem found in a corpus: the one-line message naming the file (it is that string), and its kind."""

    kind: str

    def __new__(cls, message: str, kind: str) -> Problem:
        problem = super().__new__(cls, message)
        problem.kind = kind
        return problem


@dataclass(frozen=True)
class Utterance:
    id: str
    audio: str  # path to the audio file
    text: str  # transcript as written in the corpus
    duration: float  # seconds
    speaker: str


def _find_audio(directory: Path, utterance_id: str) -> Path | None:
    for suffix in AUDIO_SUFFIXES:
        candidate = directory / f"{utterance_id}{suffix}"
        if candidate.is_file():
            return candidate
    return None


def _read_transcript_file(path: Path, vocabulary: Vocabulary, problems: list[str]) -> list[Utterance]:
    speaker, chapter = path.parent.parent.name, path.parent.name
    prefix = f"{speaker}-{chapter}-"
    utterances = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        problems.append(Problem(f"{path}: not UTF-8 text ({error.reason})", TRANSCRIPT))
        return []
    for number, line in enumerate(lines, start=1):
        where = f"{path}:{number}"
        if not line.strip():
            problems.append(Problem(f"{where}: empty line", TRANSCRIPT))
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2:
            problems.append(Problem(f"{where}: expected '<utterance-id> TRANSCRIPT', got {line.strip()!r}", TRANSCRIPT))
            continue
        utterance_id, text = parts
        if not utterance_id.startswith(prefix):
            problems.append(Problem(f"{where}: utterance id {utterance_id!r} does not start with {prefix!r}", TRANSCRIPT))
            continue
        try:
            vocabulary.encode(text)
        except TranscriptError as error:
            problems.append(Problem(f"{where}: {error}", TRANSCRIPT))
            continue
        audio = _find_audio(path.parent, utterance_id)
        if audio is None:
            problems.append(Problem(f"{where}: audio file {utterance_id}.flac is missing", MISSING_AUDIO))
            continue
        try:
            info = soundfile.info(str(audio))
        except Exception as error:
            problems.append(Problem(f"{audio}: unreadable audio ({str(error).splitlines()[0]})", UNREADABLE_AUDIO))
            continue
        utterances.append(Utterance(utterance_id, str(audio), text.strip(), info.frames / info.samplerate, speaker))
    return utterances


def read_librispeech(root: str | Path, vocabulary: Vocabulary = Vocabulary(), problems: list[str] | None = None) -> list[Utterance]:
    """Every utterance under `root` (one split, e.g. LibriSpeech/train-clean-100), sorted by id.

    Raises CorpusError on the first problem found (with a count of the others): a malformed or
    empty transcript line, characters the vocabulary cannot spell, a missing audio file, or
    an audio file no transcript mentions. Given a `problems` list instead, it appends every
    problem there and returns the valid utterances (a corpus still being made, or a damaged one).
    """
    root = Path(root)
    if not root.is_dir():
        raise CorpusError(f"{root}: no such corpus directory")
    transcript_files = sorted(root.glob("*/*/*.trans.txt"))
    if not transcript_files:
        raise CorpusError(f"{root}: no <speaker>/<chapter>/*.trans.txt files (is this a LibriSpeech split?)")
    tolerant = problems is not None
    problems = problems if tolerant else []
    utterances: list[Utterance] = []
    for path in tqdm(transcript_files, desc=f"reading {root.name}", unit="chapter", leave=False):
        utterances.extend(_read_transcript_file(path, vocabulary, problems))
    transcribed = {Path(u.audio) for u in utterances}
    for suffix in AUDIO_SUFFIXES:
        for audio in sorted(root.glob(f"*/*/*{suffix}")):
            if audio not in transcribed and not any(audio.stem in p for p in problems):
                problems.append(Problem(f"{audio}: no transcript line for this audio file", UNTRANSCRIBED_AUDIO))
    if problems and not tolerant:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise CorpusError(problems[0] + more)
    return sorted(utterances, key=lambda u: u.id)


def write_manifest(utterances: list[Utterance], path: str | Path) -> None:
    atomic.write_text(path, "".join(json.dumps(dataclasses.asdict(u)) + "\n" for u in utterances))


def reference_text(utterances: list[Utterance]) -> str:
    """Kaldi-style references, `utt-id TRANSCRIPT` per line."""
    return "".join(f"{u.id} {u.text}\n" for u in utterances)


def audio_list(utterances: list[Utterance]) -> str:
    """The audio paths, one per line (for `transcribe --file-list`)."""
    return "".join(f"{u.audio}\n" for u in utterances)


def read_manifest(path: str | Path) -> list[Utterance]:
    utterances = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                utterances.append(Utterance(**json.loads(line)))
            except (json.JSONDecodeError, TypeError) as error:
                raise CorpusError(f"{path}:{number}: not a manifest line ({error})") from None
    return utterances


def load_corpus(source: str | Path, vocabulary: Vocabulary = Vocabulary()) -> list[Utterance]:
    """A manifest (.jsonl) or a LibriSpeech-layout directory."""
    source = Path(source)
    return read_manifest(source) if source.suffix == ".jsonl" else read_librispeech(source, vocabulary)
