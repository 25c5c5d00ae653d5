"""Feature sets and length-bucketed batches for training; corpora are read by `corpus.py`, features cached by `feature_store.py`."""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from speech_s2s.data.corpus import Utterance
from speech_s2s.data.feature_store import (
    FrameMoments,
    extract_features,
    utterance_features,
)
from speech_s2s.frontend.features import LogMel
from speech_s2s.text import Vocabulary

log = logging.getLogger(__name__)


@dataclass
class FeatureSet:
    """Utterances with their raw log-mel features [T, F] (float16 to halve memory) and token ids.

    `moments`, when known (features from a `feature_store` cache), are the frames' sums, from which
    the normalisation statistics come without reading the features again."""

    utterances: list[Utterance]
    features: list[torch.Tensor]
    targets: list[torch.Tensor]
    moments: FrameMoments | None = None

    def __len__(self) -> int:
        return len(self.utterances)

    def num_frames(self) -> list[int]:
        return [f.shape[0] for f in self.features]

    def stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-bin mean and standard deviation over all frames."""
        return (self.moments or FrameMoments.of(self.features)).mean_std()

    @staticmethod
    def concatenate(sets: list[FeatureSet]) -> FeatureSet:
        moments = None
        if all(s.moments is not None for s in sets):
            moments = sets[0].moments
            for s in sets[1:]:
                moments = moments + s.moments
        return FeatureSet([u for s in sets for u in s.utterances], [f for s in sets for f in s.features], [t for s in sets for t in s.targets], moments)


def compute_features(
    utterances: list[Utterance], logmel: LogMel, vocabulary: Vocabulary, cache: str | Path | None = None,
    shard_size: int | None = None, jobs: int = 1,
) -> FeatureSet:
    """Load audio, compute log-mel, encode transcripts. With `cache` (a folder), features are kept
    there in shards (`feature_store`), reused while the audio and settings are unchanged, and a
    killed computation resumes; without, they are computed in memory."""
    targets = [torch.tensor(vocabulary.encode(u.text)) for u in utterances]
    if cache is None:
        return FeatureSet(utterances, [utterance_features(u, logmel) for u in tqdm(utterances, desc="features", unit="utt")], targets)
    stored = extract_features(utterances, logmel.config, cache, shard_size, jobs, description=f"features {Path(cache).name}")
    return FeatureSet(utterances, stored.features, targets, stored.moments)


def feature_stats(features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin mean and standard deviation over all frames (float64 sums for accuracy)."""
    return FrameMoments.of(features).mean_std()


def speaker_balanced_subset(utterances: list[Utterance], count: int) -> list[int]:
    """Indices (sorted) of up to `count` utterances drawn across every speaker: one utterance per
    speaker in turn, each speaker's in a fixed shuffled order, so a small subset still hears all
    the voices (a prefix by id hears a few: LibriSpeech ids sort by speaker)."""
    by_speaker: dict[str, list[int]] = defaultdict(list)
    for index, utterance in enumerate(utterances):
        by_speaker[utterance.speaker].append(index)
    queues = []
    for speaker in sorted(by_speaker):
        queue = by_speaker[speaker]
        random.Random(f"dev subset {speaker}").shuffle(queue)  # string seeds hash alike in every process
        queues.append(queue)
    chosen: list[int] = []
    depth = 0
    while len(chosen) < min(count, len(utterances)):
        chosen.extend(queue[depth] for queue in queues if depth < len(queue))
        depth += 1
    return sorted(chosen[:count])


def make_batches(num_frames: list[int], max_frames: int, seed: int, epoch: int, shuffle: bool = True) -> list[list[int]]:
    """Group utterances of similar length so each padded batch holds at most `max_frames` frames.

    Deterministic in (seed, epoch), so a resumed run rebuilds the same batches. With shuffle off
    the batches come shortest first (a curriculum, as in SortaGrad).
    """
    rng = random.Random(seed * 100003 + epoch)
    jitter = [rng.random() for _ in num_frames]  # breaks ties differently each epoch
    order = sorted(range(len(num_frames)), key=lambda i: (num_frames[i], jitter[i]))
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        longest = max(num_frames[index], max((num_frames[i] for i in current), default=0))
        if current and longest * (len(current) + 1) > max_frames:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    if shuffle:
        rng.shuffle(batches)
    return batches


def collate(feature_set: FeatureSet, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> feats [B, T, F] float32, frame counts [B], targets [B, L] (0-padded), target lengths [B]."""
    feats = [feature_set.features[i].float() for i in indices]
    targets = [feature_set.targets[i] for i in indices]
    lengths = torch.tensor([f.shape[0] for f in feats])
    target_lengths = torch.tensor([t.shape[0] for t in targets])
    padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    padded_targets = torch.nn.utils.rnn.pad_sequence(targets, batch_first=True)
    return padded, lengths, padded_targets, target_lengths
