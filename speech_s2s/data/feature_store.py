"""Log-mel features cached on disk in shards: resumable after a kill, reused only while audio and settings hold.

A manifest's utterances are cut, in manifest order, into shards of `shard_size`; each shard is one
file (`shard-00012.pt`), written atomically once all of its utterances are done, so a kill loses at
most the shards being computed. A shard records, per utterance, the id, audio path, size and
modification time, and the feature settings (`settings_key`): a shard is reused only if all of that
still matches, else recomputed. Each shard also stores its frames' sums and sums of squares, so the
normalisation statistics of any union of shards cost nothing. Shards load memory-mapped: 960 h of
float16 features (~55 GB) stay on disk and in the page cache, not in each process's memory.

T frames, F mel bins.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from speech_s2s import atomic
from speech_s2s.data.corpus import Utterance
from speech_s2s.frontend.audio import load_audio
from speech_s2s.frontend.features import FeatureConfig, LogMel

log = logging.getLogger(__name__)

SHARD = "shard-{:05d}.pt"
STATS = "stats.json"
LAYOUT = "layout.json"  # the store's shard size, so that a reader that does not know it cuts the same shards
# Bump when the way features are computed changes (not their settings: those are compared anyway),
# so that shards computed the old way are recomputed.
FEATURE_CODE_VERSION = 1
DEFAULT_SHARD_SIZE = 1000  # LibriSpeech utterances average 12.3 s: ~3.4 h, ~200 MB of float16 per shard


@dataclass(frozen=True)
class FrameMoments:
    """Per-bin sums over frames [F] (float64, for accuracy over 10^8 frames) and the frame count."""

    total: torch.Tensor
    squares: torch.Tensor
    frames: int

    @staticmethod
    def of(features: Sequence[torch.Tensor]) -> FrameMoments:
        total = torch.zeros(features[0].shape[1], dtype=torch.float64)
        squares = torch.zeros_like(total)
        frames = 0
        for f in features:
            f = f.double()
            total += f.sum(0)
            squares += (f * f).sum(0)
            frames += f.shape[0]
        return FrameMoments(total, squares, frames)

    def __add__(self, other: FrameMoments) -> FrameMoments:
        return FrameMoments(self.total + other.total, self.squares + other.squares, self.frames + other.frames)

    def mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.total / self.frames
        return mean.float(), (self.squares / self.frames - mean * mean).clamp_min(0).sqrt().float()


def settings_key(config: FeatureConfig) -> str:
    """What the features depend on besides the audio: the settings, the code's version, the stored dtype."""
    return json.dumps({"code_version": FEATURE_CODE_VERSION, "dtype": "float16", **asdict(config)}, sort_keys=True)


def audio_entry(utterance: Utterance) -> list:
    """[id, path, bytes, mtime_ns]: changed audio changes its size or modification time."""
    try:
        status = os.stat(utterance.audio)
        return [utterance.id, str(utterance.audio), status.st_size, status.st_mtime_ns]
    except OSError:
        return [utterance.id, str(utterance.audio), -1, -1]  # missing: never matches, so loading names the file


@dataclass(frozen=True)
class StoredFeatures:
    features: list[torch.Tensor]  # [T, F] float16 per utterance, in manifest order (memory-mapped)
    moments: FrameMoments
    reused_shards: int
    computed_shards: int


def _shard_slices(count: int, shard_size: int) -> list[range]:
    return [range(start, min(start + shard_size, count)) for start in range(0, count, shard_size)]


def _read_valid_shard(path: Path, settings: str, entries: list[list]) -> dict | None:
    if not path.is_file():
        return None
    try:
        stored = torch.load(path, mmap=True, weights_only=True)
    except Exception as error:  # a damaged shard is recomputed, not fatal
        log.warning("%s: unreadable (%s); computing it again", path, str(error).splitlines()[0] if str(error) else type(error).__name__)
        return None
    if stored.get("settings") != settings or stored.get("entries") != entries:
        return None
    return stored


def utterance_features(utterance: Utterance, logmel: LogMel) -> torch.Tensor:
    """Raw log-mel [T, F] of one utterance's audio, float16 (half the memory; ample for log energies)."""
    samples = torch.from_numpy(load_audio(utterance.audio))
    feats, _ = logmel(samples[None], torch.tensor([samples.shape[0]]))
    return feats[0].to(torch.float16)


def compute_shard(utterances: Sequence[Utterance], config: FeatureConfig, path: Path, on_utterance: Callable[[], None] | None = None) -> None:
    """Compute one shard's features and write it atomically (temp file, then rename)."""
    logmel = LogMel(config)
    features = []
    for utterance in utterances:
        features.append(utterance_features(utterance, logmel))
        if on_utterance is not None:
            on_utterance()
    moments = FrameMoments.of(features)
    stored = {
        "settings": settings_key(config), "entries": [audio_entry(u) for u in utterances], "features": features,
        "sum": moments.total, "sum_squares": moments.squares, "frames": moments.frames,
    }
    with atomic.replacing(path) as temporary:
        torch.save(stored, temporary)


def _compute_shard_task(task: tuple[list[Utterance], FeatureConfig, Path]) -> int:
    torch.set_num_threads(1)  # the processes are the parallelism
    compute_shard(*task)
    return len(task[0])


def extract_features(
    utterances: Sequence[Utterance], config: FeatureConfig, directory: str | Path, shard_size: int | None = None,
    jobs: int = 1, description: str = "features",
) -> StoredFeatures:
    """Features of `utterances` from `directory`, computing the shards that are missing or stale.

    shard_size None: the store's own (DEFAULT_SHARD_SIZE for a new one); another size re-cuts every
    shard. jobs > 1 computes shards in that many processes. Rerun after a kill, it keeps every
    finished shard and computes the rest. Also writes `stats.json` (mean, std, frames, hours).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    layout = directory / LAYOUT
    stored_size = json.loads(layout.read_text())["shard_size"] if layout.is_file() else None
    shard_size = shard_size or stored_size or DEFAULT_SHARD_SIZE
    if shard_size != stored_size:
        atomic.write_text(layout, json.dumps({"shard_size": shard_size}))
    settings = settings_key(config)
    slices = _shard_slices(len(utterances), shard_size)
    for stray in directory.glob("shard-*.pt.tmp*"):  # what a killed run was writing
        stray.unlink()
    for old in directory.glob("shard-*.pt"):  # shards past the end: from a longer manifest, or another shard size
        if int(old.stem.split("-")[1]) >= len(slices):
            old.unlink()
    entries = [[audio_entry(utterances[i]) for i in part] for part in slices]
    valid = {index: _read_valid_shard(directory / SHARD.format(index), settings, entries[index]) for index in range(len(slices))}
    stale = [index for index, stored in valid.items() if stored is None]
    todo = [([utterances[i] for i in slices[index]], config, directory / SHARD.format(index)) for index in stale]
    progress = tqdm(total=sum(len(t[0]) for t in todo), desc=description, unit="utt", disable=not todo or None)
    if jobs > 1 and len(todo) > 1:
        context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
        with context.Pool(min(jobs, len(todo))) as pool:
            for done in pool.imap_unordered(_compute_shard_task, todo):
                progress.update(done)
    else:
        for task in todo:
            compute_shard(*task, on_utterance=lambda: progress.update(1))
    progress.close()
    features: list[torch.Tensor] = []
    moments: FrameMoments | None = None
    for index in range(len(slices)):
        stored = valid[index] or _read_valid_shard(directory / SHARD.format(index), settings, entries[index])
        if stored is None:  # the audio changed while we computed: say so rather than train on a mismatch
            raise RuntimeError(f"{directory / SHARD.format(index)}: its audio changed while features were computed; run again")
        features.extend(stored["features"])
        shard = FrameMoments(stored["sum"], stored["sum_squares"], stored["frames"])
        moments = shard if moments is None else moments + shard
    if moments is None:
        raise ValueError(f"{directory}: no utterances to compute features for")
    _write_stats(directory / STATS, moments, config)
    return StoredFeatures(features, moments, len(slices) - len(stale), len(stale))


def _write_stats(path: Path, moments: FrameMoments, config: FeatureConfig) -> None:
    mean, std = moments.mean_std()
    atomic.write_text(path, json.dumps({
        "frames": moments.frames, "hours": round(moments.frames * config.hop_length / config.sample_rate / 3600, 3),
        "mean": [round(v, 5) for v in mean.tolist()], "std": [round(v, 5) for v in std.tolist()],
    }, indent=1))


