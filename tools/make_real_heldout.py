#!/usr/bin/env python3
"""Build the held-out real-voice set ``test-real`` from English speech that Debian ships with two games.

No choice of the project looks at this set (no promotion, decoding setting, LM weight or training
text): it is measured and reported, never tuned on. Its sources are not the dev set's (the Asterisk
prompts) and are used nowhere else in the project.

- **tuxpaint** (``tuxpaint-stamps-default``): the spoken descriptions of Tux Paint's stamps. A stamp
  ``NAME`` has its English description recorded as ``NAME_desc.ogg`` (``NAME_desc_xx.ogg`` are other
  languages) and written in ``NAME.txt``, whose untagged line is the English text and whose
  ``xx.utf8=...`` lines are translations ("A frog.", "Two wild boars.").
- **ktuberling** (``ktuberling-data``): the English words of KTuberling's objects, listed in
  ``sounds/en.soundtheme`` as ``<sound name="pizzeria_olive" file="en/pizzeria_olive.ogg"/>``; the
  word said is the sound's name without its playground prefix ("olive"), with a few names written as
  spoken (:data:`KTUBERLING_WORDS`); a recording the theme does not list is named by its file name.

Each clip is decoded with ffmpeg into 16 kHz mono 16-bit FLAC in the LibriSpeech layout, one speaker
id (and one chapter) per source, described in ``SPEAKERS.TXT`` so that ``score --by-speaker`` names
the sources::

    OUT/test-real/<speaker>/1/<speaker>-1-<nnnn>.flac
    OUT/test-real/<speaker>/1/<speaker>-1.trans.txt
    OUT/SPEAKERS.TXT                  speaker id | sex | subset | minutes | source
    OUT/test-real-clips.tsv           utterance id, source, package file, text as shipped
    OUT/test-real-dropped.tsv         source, package file, why it was left out, text as shipped

Transcripts are normalised LibriSpeech-style with ``speech_s2s.data.normalize.normalize_text``
(upper case, numbers spelled out). A clip is skipped when its text is unknown (no description file,
no sound-theme entry), not English (letters outside ASCII), or cannot be written down from the
metadata alone (an acronym that may be said as letters or as a word). Resumable (a FLAC that exists
is kept), files written atomically; prints the counts and durations per source. Example::

    apt-get install tuxpaint-stamps-default ktuberling-data ffmpeg
    python tools/make_real_heldout.py --out "$DATA/heldout"
    speech-s2s prepare "$DATA/heldout/test-real" --out test-real.jsonl --text test-real.ref.txt --files test-real.files
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speech_s2s import atomic  # noqa: E402
from speech_s2s.data.normalize import normalize_text  # noqa: E402
from tools.make_asterisk_devset import decode_to_flac  # noqa: E402

SPLIT = "test-real"
CHAPTER = "1"
# Speaker ids clear of the synthetic corpora (1000-3999) and of dev-asterisk (9000).
SOURCES: dict[str, str] = {"tuxpaint": "9101", "ktuberling": "9102"}
SOURCE_ABOUT: dict[str, str] = {
    "tuxpaint": "Tux Paint stamp descriptions (tuxpaint-stamps-default)",
    "ktuberling": "KTuberling object words (ktuberling-data)",
}
DEFAULT_TUXPAINT = Path("/usr/share/tuxpaint/stamps")
DEFAULT_KTUBERLING = Path("/usr/share/ktuberling/sounds")

# Written forms in the shipped English text that are said otherwise (whole words).
TUXPAINT_FIXES: dict[str, str] = {"mountaingoat": "mountain goat"}  # the en_AU line writes "A mountain goat."
# KTuberling sound names (prefix removed) whose word is not the name as it stands; None: left out.
KTUBERLING_WORDS: dict[str, str | None] = {
    "sphynx": "sphinx",
    "brocolli": "broccoli",
    "broccolli": "broccoli",
    "palmtree": "palm tree",
    "fallingstar": "falling star",
    "ufo": None,  # "U F O" or "you-foe"?
    "moonwalker": None,  # one word or "moon walker"?
}
KTUBERLING_PREFIXES = ("egypt_", "moon_", "pizzeria_", "tv_", "butterflies_", "christmas_", "robot_", "train_", "robin_")

_LOCALE_LINE_RE = re.compile(r"^[A-Za-z]{2,3}(?:_[A-Za-z]{2,4})?(?:@[A-Za-z]+)?(?:\.[A-Za-z0-9_-]+)?=")
_ACRONYM_RE = re.compile(r"\b[A-Z]{2,}\b")


@dataclass(frozen=True)
class Clip:
    source: str  # "tuxpaint" or "ktuberling"
    audio: Path
    raw: str | None  # the English text as shipped (None when unknown)


@dataclass(frozen=True)
class Decision:
    clip: Clip
    text: str | None  # normalised transcript, or None when skipped
    reason: str  # why it was skipped ("" when kept)


def tuxpaint_english(lines: list[str]) -> str | None:
    """The English line of a Tux Paint description file: the untagged line, else ``en.utf8=`` / ``en_US.utf8=``.

    >>> tuxpaint_english(["A frog.", "fr.utf8=Une grenouille.", "en_GB.utf8=A frog."])
    'A frog.'
    """
    tagged: dict[str, str] = {}
    for line in lines:
        line = line.strip().lstrip("\ufeff")
        if not line:
            continue
        if _LOCALE_LINE_RE.match(line):
            locale, _, text = line.partition("=")
            tagged[locale.split(".")[0]] = text.strip()
        else:
            return line
    for locale in ("en", "en_US"):
        if tagged.get(locale):
            return tagged[locale]
    return None


def ktuberling_sounds(xml_text: str) -> dict[str, str]:
    """``file -> sound name`` from a KTuberling ``.soundtheme`` (``<sound name=... file=.../>`` entries)."""
    root = ET.fromstring(xml_text)
    return {s.get("file", ""): s.get("name", "") for s in root.iter("sound") if s.get("file") and s.get("name")}


def ktuberling_word(sound_name: str) -> tuple[str | None, str]:
    """The word a KTuberling sound says, from its name: ``pizzeria_olive`` -> ``olive``; (None, reason) when unsure."""
    word = sound_name
    for prefix in KTUBERLING_PREFIXES:
        if word.startswith(prefix):
            word = word[len(prefix):]
            break
    if word in KTUBERLING_WORDS:
        fixed = KTUBERLING_WORDS[word]
        if fixed is None:
            return None, f"spoken form unknown ({word})"
        word = fixed
    return word.replace("_", " "), ""


def to_transcript(raw: str | None, fixes: dict[str, str] | None = None) -> tuple[str | None, str]:
    """The LibriSpeech-style transcript of one clip's English text, or (None, reason) when skipped.

    >>> to_transcript("Two wild boars.")
    ('TWO WILD BOARS', '')
    >>> to_transcript("Une grenouille à l'eau.")
    (None, 'not English (letters outside ASCII)')
    """
    if raw is None or not raw.strip():
        return None, "text unknown"
    if any(ord(c) > 127 for c in raw):
        return None, "not English (letters outside ASCII)"
    text = raw
    for wrong, right in (fixes or {}).items():
        text = re.sub(rf"(?<![\w-]){re.escape(wrong)}(?!\w)", right, text)
    acronyms = _ACRONYM_RE.findall(text)
    if acronyms:
        return None, "acronym said as a word or as letters? (" + ", ".join(sorted(set(acronyms))) + ")"
    text = normalize_text(text)
    if not text:
        return None, "no words after normalisation"
    return text, ""


def tuxpaint_clips(stamps: Path) -> list[Clip]:
    """Every English description recording under `stamps` (``*_desc.ogg`` / ``*_desc.wav``), with its text."""
    clips = []
    for audio in sorted([*stamps.rglob("*_desc.ogg"), *stamps.rglob("*_desc.wav")]):
        description = audio.with_name(audio.name[: -len("_desc" + audio.suffix)] + ".txt")
        raw = None
        if description.is_file():
            raw = tuxpaint_english(description.read_text(encoding="utf-8", errors="replace").splitlines())
        clips.append(Clip("tuxpaint", audio, raw))
    return clips


def ktuberling_clips(sounds: Path) -> tuple[list[Clip], list[Decision]]:
    """KTuberling's English recordings with their words, and the decisions for those left out by name."""
    theme = sounds / "en.soundtheme"
    named = ktuberling_sounds(theme.read_text(encoding="utf-8")) if theme.is_file() else {}
    clips, unsure = [], []
    for audio in sorted((sounds / "en").glob("*.ogg")):
        name = named.get(f"en/{audio.name}", audio.stem)  # a file the theme does not list: its file name
        word, reason = ktuberling_word(name)
        clip = Clip("ktuberling", audio, word if word is not None else name)
        if word is None:
            unsure.append(Decision(clip, None, reason))
        else:
            clips.append(clip)
    return clips, unsure


def decide(clips: list[Clip]) -> list[Decision]:
    fixes = {"tuxpaint": TUXPAINT_FIXES}
    return [Decision(c, *to_transcript(c.raw, fixes.get(c.source))) for c in clips]


def assign_ids(kept: list[Decision]) -> list[tuple[str, Decision]]:
    """(utterance id, decision): per source in package-path order, ``<speaker>-1-<nnnn>``."""
    assigned = []
    for source, speaker in SOURCES.items():
        ours = sorted((d for d in kept if d.clip.source == source), key=lambda d: str(d.clip.audio))
        assigned += [(f"{speaker}-{CHAPTER}-{i:04d}", d) for i, d in enumerate(ours)]
    return assigned


def _seconds(path: Path) -> float:
    import soundfile

    info = soundfile.info(str(path))
    return info.frames / info.samplerate


def build(tuxpaint: Path, ktuberling: Path, out: Path) -> int:
    """Write the split under `out`; returns the number of clips that failed to decode."""
    clips, decisions = [], []
    if tuxpaint.is_dir():
        clips += tuxpaint_clips(tuxpaint)
    else:
        print(f"warning: {tuxpaint}: not found (apt-get install tuxpaint-stamps-default); no tuxpaint clips", file=sys.stderr)
    if ktuberling.is_dir():
        found, unsure = ktuberling_clips(ktuberling)
        clips += found
        decisions += unsure
    else:
        print(f"warning: {ktuberling}: not found (apt-get install ktuberling-data); no ktuberling clips", file=sys.stderr)
    decisions += decide(clips)
    if not decisions:
        raise SystemExit("error: no clips found (apt-get install tuxpaint-stamps-default ktuberling-data)")
    kept = [d for d in decisions if d.text is not None]
    dropped = sorted((d for d in decisions if d.text is None), key=lambda d: (d.clip.source, str(d.clip.audio)))
    assigned = assign_ids(kept)

    split_dir = out / SPLIT
    mapping_path = out / f"{SPLIT}-clips.tsv"
    mapping = "utterance_id\tsource\tfile\ttext_as_shipped\n" + "".join(
        f"{utt}\t{d.clip.source}\t{d.clip.audio}\t{d.clip.raw}\n" for utt, d in assigned)
    if mapping_path.is_file() and mapping_path.read_text(encoding="utf-8") != mapping:
        raise SystemExit(f"error: {mapping_path}: the clip-to-id mapping changed since the last run; "
                         f"remove {split_dir} and {mapping_path} and build again")
    out.mkdir(parents=True, exist_ok=True)
    atomic.write_text(mapping_path, mapping)
    atomic.write_text(out / f"{SPLIT}-dropped.tsv", "source\tfile\treason\ttext_as_shipped\n" + "".join(
        f"{d.clip.source}\t{d.clip.audio}\t{d.reason}\t{d.clip.raw or ''}\n" for d in dropped))

    lines: dict[str, list[str]] = {}
    seconds: Counter[str] = Counter()
    kept_per_source: Counter[str] = Counter()
    failures = 0
    for utt, d in assigned:
        speaker = utt.split("-")[0]
        chapter_dir = split_dir / speaker / CHAPTER
        chapter_dir.mkdir(parents=True, exist_ok=True)
        target = chapter_dir / f"{utt}.flac"
        if not target.is_file():
            try:
                decode_to_flac(d.clip.audio, target)  # the Asterisk tool's ffmpeg call: .ogg needs no format hint
            except (OSError, RuntimeError, subprocess.TimeoutExpired) as error:
                failures += 1
                print(f"error: {d.clip.audio}: {str(error).splitlines()[0] if str(error) else type(error).__name__}", file=sys.stderr)
                continue
        lines.setdefault(speaker, []).append(f"{utt} {d.text}\n")
        seconds[d.clip.source] += _seconds(target)
        kept_per_source[d.clip.source] += 1
    for speaker, speaker_lines in lines.items():
        atomic.write_text(split_dir / speaker / CHAPTER / f"{speaker}-{CHAPTER}.trans.txt", "".join(speaker_lines))
    table = "; ID | SEX | SUBSET | MINUTES | NAME\n" + "".join(
        f"{SOURCES[s]} | ? | {SPLIT} | {seconds[s] / 60:.2f} | {SOURCE_ABOUT[s]}\n" for s in SOURCES if kept_per_source[s])
    atomic.write_text(out / "SPEAKERS.TXT", table)

    reasons = Counter((d.clip.source, d.reason) for d in dropped)
    for source, speaker in SOURCES.items():
        print(f"{source} (speaker {speaker}): {kept_per_source[source]} clips, {seconds[source]:.1f} s "
              f"({seconds[source] / 60:.2f} min); {sum(n for (s, _), n in reasons.items() if s == source)} skipped")
    total = sum(seconds.values())
    print(f"{split_dir}: {sum(kept_per_source.values())} clips, {total:.1f} s ({total / 60:.2f} min); {failures} failed to decode")
    for (source, reason), count in sorted(reasons.items()):
        print(f"  skipped {count:3d} {source}: {reason}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help=f"output folder; the split goes to OUT/{SPLIT}")
    parser.add_argument("--tuxpaint", type=Path, default=DEFAULT_TUXPAINT, help="Tux Paint's stamps folder")
    parser.add_argument("--ktuberling", type=Path, default=DEFAULT_KTUBERLING, help="KTuberling's sounds folder")
    args = parser.parse_args(argv)
    return 1 if build(args.tuxpaint, args.ktuberling, args.out) else 0


if __name__ == "__main__":
    sys.exit(main())
