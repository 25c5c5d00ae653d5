"""Decode a corpus's utterances whole (as published LibriSpeech results are), resumable after a kill.

`transcribe` cuts recordings at pauses for a user's files; a test set is scored on whole
utterances instead. Utterances go shortest first in batches; each batch's `utt-id TEXT` lines are
appended to `OUTPUT.partial` and flushed before the next batch is read, so a kill loses at most the
batch being decoded. The partial file's first line records what produced it (model file, search
options, LM): a rerun with the same continues after the ids already there; anything else starts
afresh. When every utterance is done, the lines are sorted by id into OUTPUT (atomically) and the
partial file is removed: OUTPUT exists only complete. An utterance whose audio cannot be read is
reported and skipped; the others are decoded, and OUTPUT waits until a rerun reads it too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from speech_s2s import atomic
from speech_s2s.data.corpus import Utterance
from speech_s2s.decoding.options import DecodingOptions, search_fields
from speech_s2s.decoding.search import LanguageModel, decode
from speech_s2s.frontend.audio import AudioError, load_audio
from speech_s2s.frontend.level import LevelConfig, decoding_level, into_range
from speech_s2s.model.seq2seq import Seq2Seq

if TYPE_CHECKING:
    from speech_s2s.decoding.word_fusion import WordFusionWeights

HEADER = "# speech_s2s decode "


@dataclass(frozen=True)
class DecodeProgress:
    total: int
    reused: int  # utterances found done in the partial file
    decoded: int
    unreadable: tuple[tuple[str, str], ...] = ()  # (utterance id, why its audio could not be read)

    @property
    def complete(self) -> bool:
        return not self.unreadable


def partial_path(output: Path) -> Path:
    return output.with_name(output.name + ".partial")


def run_signature(model_file: str | Path, options: DecodingOptions, lm_file: str | Path | None, level: LevelConfig | None = LevelConfig(),
                  word_lm_file: str | Path | None = None, word_lm_weights: WordFusionWeights | None = None, int8_search: bool = False) -> str:
    """What a partial file's lines depend on: the model and LM files (path, size, time), the options, the
    level range, the word LM with its weights when the search uses one, and whether its recurrent products were int8."""
    def identity(path: str | Path | None) -> list | None:
        if path is None:
            return None
        status = os.stat(path)
        return [str(Path(path).resolve()), status.st_size, status.st_mtime_ns]

    signed = {"model": identity(model_file), "lm": identity(lm_file), "options": search_fields(options), "level": asdict(level) if level else None}
    if word_lm_file is not None:  # absent otherwise, so the runs before word LMs existed keep their signature
        # "in the search": a re-ranking of the finished hypotheses (before 2026-11-30) had the same weights
        signed["word_lm"] = [identity(word_lm_file), "in the search", asdict(word_lm_weights) if word_lm_weights is not None else None]
    if int8_search:  # absent otherwise, as for the word LM
        signed["int8_search"] = True
    return json.dumps(signed, sort_keys=True, default=str)


def _done_ids(partial: Path, signature: str) -> set[str] | None:
    """Ids already in `partial` if it was written by the same run (a line cut short by a kill is
    dropped, and that utterance decoded again); None when there is nothing to continue."""
    if not partial.is_file():
        return None
    text = partial.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    if not lines or lines[0] != HEADER + signature:
        return None
    complete = lines[1:-1]  # after the last newline comes nothing, or a line the kill cut short
    with open(partial, "r+", encoding="utf-8") as handle:
        handle.truncate(len("\n".join(lines[:-1]).encode("utf-8")) + 1)
    return {line.split(maxsplit=1)[0] for line in complete if line.strip()}


def decode_utterances(
    model: Seq2Seq, utterances: Sequence[Utterance], output: str | Path, options: DecodingOptions, signature: str,
    lm: LanguageModel | None = None, batch_size: int = 16, device: str = "cpu", description: str = "decoding",
    keep_level: bool = False,
) -> DecodeProgress:
    """Decode every utterance into OUTPUT ('utt-id text' lines sorted by id), continuing a partial run.
    Each utterance's level goes into the model's training range first (speech_s2s.frontend.level), as in
    `transcribe`, unless `keep_level`; `signature` should name that range (run_signature's `level`)."""
    level = decoding_level(model.input_level_db, keep_level)
    output = Path(output)
    partial = partial_path(output)
    done = _done_ids(partial, signature)
    if done is None:
        partial.write_text(HEADER + signature + "\n", encoding="utf-8")
        done = set()
    todo = sorted((u for u in utterances if u.id not in done), key=lambda u: (u.duration, u.id))
    model = model.to(device).eval()
    progress = tqdm(total=len(utterances), initial=len(utterances) - len(todo), desc=description, unit="utt", disable=not todo or None)
    unreadable: list[tuple[str, str]] = []
    with open(partial, "a", encoding="utf-8") as handle:
        for first in range(0, len(todo), batch_size):
            batch, waves = [], []
            for utterance in todo[first : first + batch_size]:
                try:
                    waves.append(torch.from_numpy(into_range(load_audio(utterance.audio), level)))
                    batch.append(utterance)
                except AudioError as error:
                    unreadable.append((utterance.id, str(error)))
            progress.update(len(todo[first : first + batch_size]) - len(batch))
            if not batch:
                continue
            feats, lengths = model.features(torch.nn.utils.rnn.pad_sequence(waves, batch_first=True), torch.tensor([len(w) for w in waves]))
            results = decode(model, feats.to(device), lengths.to(device), options, lm)
            handle.write("".join(f"{u.id} {r.text}\n" for u, r in zip(batch, results)))
            handle.flush()  # in the kernel's hands: a killed process loses nothing written
            progress.update(len(batch))
    progress.close()
    if not unreadable:
        _finish(partial, output)
    return DecodeProgress(len(utterances), len(utterances) - len(todo), len(todo) - len(unreadable), tuple(unreadable))


def signature_path(output: Path) -> Path:
    return output.with_name(output.name + ".signature")


def is_complete(output: str | Path, signature: str) -> bool:
    """True if OUTPUT holds a finished decoding by the run `signature` describes (not an older model's)."""
    output = Path(output)
    return output.is_file() and signature_path(output).is_file() and signature_path(output).read_text(encoding="utf-8") == signature


def _finish(partial: Path, output: Path) -> None:
    header, *lines = partial.read_text(encoding="utf-8").splitlines()
    lines = sorted((line for line in lines if line.strip()), key=lambda line: line.split(maxsplit=1)[0])
    for path, text in ((signature_path(output), header[len(HEADER):]), (output, "".join(f"{line}\n" for line in lines))):
        atomic.write_text(path, text)
    partial.unlink()
