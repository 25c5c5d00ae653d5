#!/usr/bin/env python3
"""Build a real-voice dev set from the Asterisk PBX English prompts (one woman's voice, studio read).

Debian ships the prompts as 16 kHz G.722 (``asterisk-core-sounds-en-g722``) and their transcripts
as one ``name: text`` line each (``core-sounds-en.txt.gz`` in ``asterisk-core-sounds-en``'s docs).
Every prompt with a usable transcript is decoded with ffmpeg into 16 kHz mono 16-bit FLAC in the
LibriSpeech layout, as split ``dev-asterisk``::

    OUT/dev-asterisk/<speaker>/<chapter>/<speaker>-<chapter>-<nnnn>.flac
    OUT/dev-asterisk/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt
    OUT/dev-asterisk-prompts.tsv     utterance id, prompt name, transcript as shipped
    OUT/dev-asterisk-dropped.tsv     prompt name, why it was left out, transcript as shipped

One speaker id for the voice; prompts sorted by name, ``--per-chapter`` to a chapter. Transcripts
are normalised LibriSpeech-style with ``speech_s2s.data.normalize.normalize_text`` after the rules in
:func:`prompt_to_transcript`: entries that are wholly bracketed (tones, beeps, silence) are dropped,
bracketed notes inside speech (``at [@]``, ``(note: ...)``) are removed, a few misspellings in the
shipped file are corrected, letter-by-letter acronyms are spaced out, and an entry is dropped when
its words cannot be written down from the transcript alone: keypad symbols (``*``, ``#``: "star" or
"asterisk"? "pound" or "hash"?), web addresses, numbers of three or more digits (digit by digit or
as a quantity?), and acronyms that may be said as a word or as letters (IAX, SIP, DAHDI).

Resumable (a FLAC that exists is kept), every file written atomically, one-line errors naming
the prompt; exit status 1 if any prompt failed to decode. Example::

    apt-get install asterisk-core-sounds-en-g722 asterisk-core-sounds-en ffmpeg
    python tools/make_asterisk_devset.py --out "$DATA/devsets"
    speech-s2s prepare "$DATA/devsets/dev-asterisk" --out dev-asterisk.jsonl --text dev-asterisk.ref.txt
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speech_s2s import atomic  # noqa: E402
from speech_s2s.data.normalize import normalize_text  # noqa: E402

SAMPLE_RATE = 16000
SPLIT = "dev-asterisk"
SPEAKER = "9000"  # clear of the synthetic corpus's speaker ids (1000-3999)
PER_CHAPTER = 50
DEFAULT_SOUNDS = Path("/usr/share/asterisk/sounds/en_US_f_Allison")  # asterisk-core-sounds-en-g722
DEFAULT_TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")  # asterisk-core-sounds-en
AUDIO_SUFFIX = ".g722"
FFMPEG_TIMEOUT_S = 60

# Misspellings in the shipped transcript file, corrected to what is said (whole words, case-sensitive).
SPELLING_FIXES: dict[str, str] = {
    "represenatives": "representatives",
    "exclaimation": "exclamation",
    "Un-indentified": "Unidentified",
    "witheld": "withheld",
    "umute": "unmute",
    "fourtieth": "fortieth",
    "thru": "through",
}
# Written forms that normalize_text reads differently from the prompt: "3D" is not the old ordinal "3d".
SPOKEN_FORMS: dict[str, str] = {"3D": "three D"}
# Acronyms said letter by letter; LibriSpeech writes those as single letters ("P B X").
SPELLED_ACRONYMS: frozenset[str] = frozenset({"PBX", "IVR", "USB", "MGCP", "IP"})

_WHOLLY_BRACKETED_RE = re.compile(r"^\s*(?:\[[^\]]*\]|\([^)]*\)|<[^>]*>)\s*$")
_BRACKETED_NOTE_RE = re.compile(r"\[[^\]]*\]|\([^)]*\)|<[^>]*>")
# Symbols whose spoken form the transcript does not give (normalize_text would silently delete them).
_UNWRITTEN_SYMBOL_RE = re.compile(r"[*#@/+=%~|\\^{}<>\[\]()]")
_WEB_ADDRESS_RE = re.compile(r"\bwww\.|[A-Za-z]{2,}\.[A-Za-z]{2,}")
_LETTER_DOT_DIGIT_RE = re.compile(r"[A-Za-z]\.\d")  # "H.323"
_LONG_NUMBER_RE = re.compile(r"\d{3,}")
_ACRONYM_RE = re.compile(r"\b[A-Z]{2,}\b")
_SINGLE_LETTER_RE = re.compile(r"^\s*[A-Za-z]\s*$")


class PromptListError(ValueError):
    """The transcript file is malformed; the message names the line."""


@dataclass(frozen=True)
class Prompt:
    name: str  # path under the sounds directory without extension, e.g. "digits/7"
    raw: str  # transcript as shipped


@dataclass(frozen=True)
class Decision:
    prompt: Prompt
    text: str | None  # normalised transcript, or None when dropped
    reason: str  # why it was dropped ("" when kept)


def read_prompt_list(lines: Iterable[str], source: str = "<transcripts>") -> list[Prompt]:
    """Parse ``name: text`` lines; ``;`` comments and blank lines are skipped.

    Raises PromptListError naming the line for a line without ``: `` or a name given twice.
    """
    prompts: dict[str, Prompt] = {}
    for number, line in enumerate(lines, start=1):
        line = line.rstrip("\n")
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        name, sep, raw = line.partition(":")
        name = name.strip()
        if not sep or not name or " " in name:
            raise PromptListError(f"{source}:{number}: expected 'name: transcript', got {line.strip()!r}")
        if name in prompts:
            raise PromptListError(f"{source}:{number}: prompt {name!r} is listed twice")
        prompts[name] = Prompt(name, raw.strip())
    return list(prompts.values())


def _fix_spelling(text: str) -> str:
    for wrong, right in {**SPELLING_FIXES, **SPOKEN_FORMS}.items():
        text = re.sub(rf"(?<![\w-]){re.escape(wrong)}(?![\w])", right, text)
    return text


def prompt_to_transcript(raw: str) -> tuple[str | None, str]:
    """The LibriSpeech-style transcript of one prompt, or (None, reason) when it is left out.

    >>> prompt_to_transcript("Press 1 for the PBX [beep].")
    ('PRESS ONE FOR THE P B X', '')
    >>> prompt_to_transcript("[ascending tones]")
    (None, 'non-speech (wholly bracketed)')
    """
    if not raw.strip():
        return None, "empty transcript"
    if _WHOLLY_BRACKETED_RE.match(raw):
        return None, "non-speech (wholly bracketed)"
    text = _BRACKETED_NOTE_RE.sub(" ", raw)
    if _UNWRITTEN_SYMBOL_RE.search(text):
        return None, "keypad or other symbol whose spoken form is not written"
    if _WEB_ADDRESS_RE.search(text):
        return None, "web address"
    if _LETTER_DOT_DIGIT_RE.search(text):
        return None, "code name with digits (H.323)"
    if _LONG_NUMBER_RE.search(text):
        return None, "number of 3+ digits (read digit by digit or as a quantity?)"
    unsure = sorted({a for a in _ACRONYM_RE.findall(text) if a not in SPELLED_ACRONYMS})
    if unsure:
        return None, "acronym said as a word or as letters? (" + ", ".join(unsure) + ")"
    text = _ACRONYM_RE.sub(lambda m: " ".join(m.group(0)), text)
    if _SINGLE_LETTER_RE.match(text):
        # A letter said alone ("letters/x"); normalize_text would take C, D, I, L, M, V, X for a
        # roman-numeral chapter heading and return nothing.
        return text.strip().upper(), ""
    text = normalize_text(_fix_spelling(text))
    if not text:
        return None, "no words after normalisation"
    return text, ""


def decide(prompts: Iterable[Prompt], available: set[str]) -> list[Decision]:
    """Keep or drop each prompt; a prompt with no audio file in `available` is dropped."""
    decisions = []
    for prompt in prompts:
        if prompt.name not in available:
            decisions.append(Decision(prompt, None, "no audio file"))
            continue
        text, reason = prompt_to_transcript(prompt.raw)
        decisions.append(Decision(prompt, text, reason))
    return decisions


def assign_ids(kept: list[Decision], speaker: str, per_chapter: int) -> list[tuple[str, Decision]]:
    """(utterance id, decision) in prompt-name order, `per_chapter` prompts to a chapter numbered from 1."""
    ordered = sorted(kept, key=lambda d: d.prompt.name)
    return [(f"{speaker}-{i // per_chapter + 1}-{i % per_chapter:04d}", d) for i, d in enumerate(ordered)]


def decode_to_flac(source: Path, target: Path) -> None:
    """G.722 (or anything ffmpeg reads) -> 16 kHz mono 16-bit FLAC at `target`, atomically."""
    tmp = target.with_name(f".{target.name}.tmp")
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    if source.suffix == AUDIO_SUFFIX:
        command += ["-f", "g722"]
    command += ["-i", str(source), "-ac", "1", "-ar", str(SAMPLE_RATE), "-sample_fmt", "s16", "-f", "flac", str(tmp)]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=FFMPEG_TIMEOUT_S)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
            raise RuntimeError(f"ffmpeg: {last}")
        if not tmp.is_file() or tmp.stat().st_size == 0:
            raise RuntimeError("ffmpeg wrote nothing")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _mapping_text(assigned: list[tuple[str, Decision]]) -> str:
    rows = ["utterance_id\tprompt\ttranscript_as_shipped"]
    rows += [f"{utt}\t{d.prompt.name}\t{d.prompt.raw}" for utt, d in assigned]
    return "\n".join(rows) + "\n"


def _read_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return f.readlines()


def build(sounds: Path, transcripts: Path, out: Path, speaker: str = SPEAKER, per_chapter: int = PER_CHAPTER) -> int:
    """Write the split under `out`; returns the number of prompts that failed to decode."""
    from tqdm import tqdm

    prompts = read_prompt_list(_read_lines(transcripts), str(transcripts))
    available = {str(p.relative_to(sounds).with_suffix("")) for p in sounds.rglob(f"*{AUDIO_SUFFIX}")}
    if not available:
        raise SystemExit(f"error: {sounds}: no *{AUDIO_SUFFIX} files (apt-get install asterisk-core-sounds-en-g722)")
    decisions = decide(prompts, available)
    unlisted = sorted(available - {p.name for p in prompts})
    kept = [d for d in decisions if d.text is not None]
    dropped = [d for d in decisions if d.text is None]
    assigned = assign_ids(kept, speaker, per_chapter)

    split_dir = out / SPLIT
    mapping_path = out / f"{SPLIT}-prompts.tsv"
    mapping = _mapping_text(assigned)
    if mapping_path.is_file() and mapping_path.read_text(encoding="utf-8") != mapping:
        raise SystemExit(f"error: {mapping_path}: the prompt-to-id mapping changed since the last run; "
                         f"remove {split_dir} and {mapping_path} and build again")
    atomic.write_text(mapping_path, mapping)
    atomic.write_text(out / f"{SPLIT}-dropped.tsv", "prompt\treason\ttranscript_as_shipped\n"
                  + "".join(f"{d.prompt.name}\t{d.reason}\t{d.prompt.raw}\n" for d in dropped)
                  + "".join(f"{name}\tno transcript line\t\n" for name in unlisted))

    chapters: dict[Path, list[tuple[str, str]]] = {}
    failures = 0
    todo = 0
    for utt, d in tqdm(assigned, desc=SPLIT, unit="prompt"):
        _, chapter, _ = utt.split("-")
        chapter_dir = split_dir / speaker / chapter
        chapter_dir.mkdir(parents=True, exist_ok=True)
        target = chapter_dir / f"{utt}.flac"
        if not target.is_file():
            todo += 1
            try:
                decode_to_flac(sounds / f"{d.prompt.name}{AUDIO_SUFFIX}", target)
            except (OSError, RuntimeError, subprocess.TimeoutExpired) as error:
                failures += 1
                tqdm.write(f"error: {d.prompt.name}: {str(error).splitlines()[0] if str(error) else type(error).__name__}")
                continue
        chapters.setdefault(chapter_dir, []).append((utt, d.text or ""))
    for chapter_dir, lines in chapters.items():
        name = f"{speaker}-{chapter_dir.name}.trans.txt"
        atomic.write_text(chapter_dir / name, "".join(f"{utt} {text}\n" for utt, text in lines))

    reasons = Counter(d.reason for d in dropped)
    print(f"{split_dir}: {len(assigned) - failures} prompts kept ({todo - failures} decoded now, {failures} failed), "
          f"{len(dropped)} dropped of {len(prompts)} transcript lines; {len(unlisted)} audio files without a transcript",
          file=sys.stderr)
    for reason, count in reasons.most_common():
        print(f"  dropped {count:3d}: {reason}", file=sys.stderr)
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help=f"output folder; the split goes to OUT/{SPLIT}")
    parser.add_argument("--sounds", type=Path, default=DEFAULT_SOUNDS, help="folder of *.g722 prompts")
    parser.add_argument("--transcripts", type=Path, default=DEFAULT_TRANSCRIPTS, help="core-sounds-en.txt(.gz)")
    parser.add_argument("--speaker", default=SPEAKER, help="speaker id for the voice")
    parser.add_argument("--per-chapter", type=int, default=PER_CHAPTER, help="prompts per chapter folder")
    args = parser.parse_args(argv)
    if not args.transcripts.is_file():
        parser.error(f"{args.transcripts}: not found (apt-get install asterisk-core-sounds-en)")
    if not args.sounds.is_dir():
        parser.error(f"{args.sounds}: not found (apt-get install asterisk-core-sounds-en-g722)")
    try:
        failures = build(args.sounds, args.transcripts, args.out, args.speaker, args.per_chapter)
    except PromptListError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
