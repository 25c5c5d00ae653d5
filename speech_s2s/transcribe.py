"""Files -> segments -> batched search -> text, in txt (Kaldi `utt-id TEXT`) or jsonl form."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from tqdm import tqdm

from speech_s2s.audio import SAMPLE_RATE, AudioError, load_audio
from speech_s2s.model import Seq2Seq
from speech_s2s.search import DecodingOptions, LanguageModel, decode

ASSETS = Path(__file__).parent / "assets"
BUNDLED_MODEL = ASSETS / "model.safetensors"
BUNDLED_SAMPLE = ASSETS / "sample.flac"

# Attention decoders lose their place on long input, so long files are cut into pieces no longer
# than this, at the quietest 10 ms within the last few seconds of each piece.
MAX_SEGMENT_SECONDS = 20.0
CUT_SEARCH_SECONDS = 4.0


@dataclass(frozen=True)
class Transcript:
    path: str
    text: str
    duration: float  # seconds
    segments: tuple[tuple[float, float, str], ...]  # (start, end, text) per piece decoded

    @property
    def id(self) -> str:
        return Path(self.path).name.split(".")[0]


@dataclass(frozen=True)
class FailedFile:
    path: str
    error: str


def split_long_audio(samples: np.ndarray, max_seconds: float = MAX_SEGMENT_SECONDS) -> list[tuple[int, int]]:
    """(start, end) sample ranges covering `samples`, each at most max_seconds, cut at quiet points."""
    limit = int(max_seconds * SAMPLE_RATE)
    window = SAMPLE_RATE // 100
    pieces, start = [], 0
    while len(samples) - start > limit:
        search_from = start + limit - int(CUT_SEARCH_SECONDS * SAMPLE_RATE)
        region = samples[search_from : start + limit]
        energies = np.add.reduceat(region[: len(region) // window * window] ** 2, np.arange(0, len(region) // window * window, window))
        cut = search_from + int(np.argmin(energies)) * window + window // 2
        pieces.append((start, cut))
        start = cut
    pieces.append((start, len(samples)))
    return pieces


def transcribe_files(
    model: Seq2Seq,
    paths: list[str],
    options: DecodingOptions = DecodingOptions(),
    batch_size: int = 8,
    lm: LanguageModel | None = None,
) -> Iterator[Transcript | FailedFile]:
    """Yield one Transcript (or FailedFile, for audio that cannot be read) per path, in input order."""
    model.eval()
    loaded: dict[int, np.ndarray] = {}
    pieces: list[tuple[int, int, int]] = []  # (file index, start, end)
    ranges: dict[int, list[tuple[int, int]]] = {}  # file index -> its pieces' sample ranges
    failures: dict[int, FailedFile] = {}
    for index, path in enumerate(paths):
        try:
            loaded[index] = load_audio(path)
        except AudioError as error:
            failures[index] = FailedFile(path, str(error))
            continue
        ranges[index] = split_long_audio(loaded[index])
        pieces.extend((index, start, end) for start, end in ranges[index])
    texts: dict[tuple[int, int], str] = {}
    pieces.sort(key=lambda p: p[2] - p[1])  # similar lengths batch with little padding
    batches = range(0, len(pieces), batch_size)
    for first in tqdm(batches, desc="transcribing", unit="batch", disable=len(batches) < 2, leave=False):
        batch = pieces[first : first + batch_size]
        waves = [torch.from_numpy(loaded[i][s:e]) for i, s, e in batch]
        padded = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
        with torch.no_grad():
            feats, lengths = model.features(padded, torch.tensor([w.shape[0] for w in waves]))
            for (i, s, _), result in zip(batch, decode(model, feats, lengths, options, lm)):
                texts[(i, s)] = result.text
    for index, path in enumerate(paths):
        if index in failures:
            yield failures[index]
            continue
        segments = tuple((s / SAMPLE_RATE, e / SAMPLE_RATE, texts[(index, s)]) for s, e in ranges[index])
        text = " ".join(t for _, _, t in segments if t)
        yield Transcript(path, text, len(loaded[index]) / SAMPLE_RATE, segments)


def format_transcript(transcript: Transcript, output_format: str) -> str:
    if output_format == "txt":
        return f"{transcript.id} {transcript.text}".rstrip()
    if output_format == "jsonl":
        return json.dumps(
            {
                "path": transcript.path,
                "id": transcript.id,
                "text": transcript.text,
                "duration": round(transcript.duration, 3),
                "segments": [{"start": round(s, 2), "end": round(e, 2), "text": t} for s, e, t in transcript.segments],
            }
        )
    raise ValueError(f"unknown output format {output_format!r} (txt or jsonl)")
