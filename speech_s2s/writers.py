"""Output formats, one writer each: txt, jsonl, tsv, srt, vtt.

Each writer renders one file's transcript in two forms: as `lines` of a shared output that
holds many files (standard output or --output; each line starts with or contains the id, so a
run can be resumed), and as a `document` of its own (--output-dir). srt and vtt are captions of
one recording, so a shared output can hold only one file of them.
"""

from __future__ import annotations

import json
from dataclasses import asdict

from speech_s2s.transcribe import FileTranscript, Segment

FORMATS = ("txt", "jsonl", "tsv", "srt", "vtt")
SINGLE_FILE_FORMATS = ("srt", "vtt")
EXTENSIONS = {"txt": ".txt", "jsonl": ".json", "tsv": ".tsv", "srt": ".srt", "vtt": ".vtt"}
CAPTION_CHARACTERS = 84  # two lines of 42, the common subtitle limit
TSV_HEADER = "id\tstart\tend\ttext"


def _timestamp(seconds: float, separator: str) -> str:
    milliseconds = max(0, round(seconds * 1000))
    hours, milliseconds = divmod(milliseconds, 3_600_000)
    minutes, milliseconds = divmod(milliseconds, 60_000)
    whole, milliseconds = divmod(milliseconds, 1000)
    return f"{hours:02d}:{minutes:02d}:{whole:02d}{separator}{milliseconds:03d}"


def captions(segments: tuple[Segment, ...], limit: int = CAPTION_CHARACTERS) -> list[tuple[float, float, str]]:
    """Caption cues: each segment's words grouped into runs of at most `limit` characters (using
    word times), or the segment whole when it has no word times. A run ends at a sentence end
    where one falls in its last two thirds. The words shown are the segment's text (restored: one
    for one with its timed words)."""
    cues = []
    for segment in segments:
        if not segment.text:
            continue
        if not segment.words or len(segment.text) <= limit:
            cues.append((segment.start, segment.end, segment.text))
            continue
        shown = segment.text.split()
        if len(shown) != len(segment.words):
            shown = [w.word for w in segment.words]
        timed = list(zip(shown, segment.words))
        group = [timed[0]]
        for item in timed[1:]:
            while group and len(" ".join(t for t, _ in group)) + 1 + len(item[0]) > limit:
                ends = [i for i, (t, _) in enumerate(group) if t[-1:] in ".?!" and i >= len(group) // 3]
                cut = ends[-1] + 1 if ends else len(group)
                cues.append((group[0][1].start, group[cut - 1][1].end, " ".join(t for t, _ in group[:cut])))
                group = group[cut:]
            group.append(item)
        cues.append((group[0][1].start, segment.end, " ".join(t for t, _ in group)))
    return cues


def _json_object(transcript: FileTranscript) -> dict:
    return {
        "path": transcript.path,
        "id": transcript.id,
        "text": transcript.text,
        "duration": round(transcript.duration, 3),
        "segments": [{**asdict(s), "words": [asdict(w) for w in s.words]} for s in transcript.segments],
    }


def lines(transcript: FileTranscript, output_format: str) -> list[str]:
    """The file's lines in a shared output (no trailing newlines)."""
    if output_format == "txt":
        return [f"{transcript.id} {transcript.text}".rstrip()]
    if output_format == "jsonl":
        return [json.dumps(_json_object(transcript))]
    if output_format == "tsv":
        rows = [f"{transcript.id}\t{round(s.start * 1000)}\t{round(s.end * 1000)}\t{s.text}" for s in transcript.segments if s.text]
        return rows or [f"{transcript.id}\t0\t{round(transcript.duration * 1000)}\t"]  # a row even for silence, for --resume
    if output_format in SINGLE_FILE_FORMATS:
        return document(transcript, output_format).rstrip("\n").split("\n")
    raise ValueError(f"unknown output format {output_format!r} ({', '.join(FORMATS)})")


def header(output_format: str) -> str | None:
    """A line a new shared output starts with, if the format has one."""
    return TSV_HEADER if output_format == "tsv" else ("WEBVTT" if output_format == "vtt" else None)


def document(transcript: FileTranscript, output_format: str) -> str:
    """The file's transcript as a document of its own."""
    if output_format == "txt":
        return "".join(f"{s.text}\n" for s in transcript.segments if s.text)
    if output_format == "jsonl":
        return json.dumps(_json_object(transcript), indent=1) + "\n"
    if output_format == "tsv":
        return "start\tend\ttext\n" + "".join(f"{round(s.start * 1000)}\t{round(s.end * 1000)}\t{s.text}\n" for s in transcript.segments if s.text)
    if output_format == "srt":
        cues = captions(transcript.segments)
        return "\n".join(f"{n}\n{_timestamp(a, ',')} --> {_timestamp(b, ',')}\n{text}\n" for n, (a, b, text) in enumerate(cues, start=1))
    if output_format == "vtt":
        cues = captions(transcript.segments)
        return "WEBVTT\n\n" + "\n".join(f"{_timestamp(a, '.')} --> {_timestamp(b, '.')}\n{text}\n" for a, b, text in cues)
    raise ValueError(f"unknown output format {output_format!r} ({', '.join(FORMATS)})")


def ids_in_output(text: str, output_format: str) -> set[str]:
    """Ids of the files a shared output already holds (for --resume)."""
    found = set()
    for line in text.splitlines():
        if not line.strip():
            continue
        if output_format == "jsonl":
            try:
                found.add(json.loads(line)["id"])
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut short by a crash: that file is transcribed again
        elif output_format == "tsv":
            if line != TSV_HEADER:
                found.add(line.split("\t", 1)[0])
        else:
            found.add(line.split(maxsplit=1)[0])
    return found
