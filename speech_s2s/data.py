"""Cached features and length-bucketed batches for training; corpora themselves are read by `corpus.py`."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from speech_s2s.audio import load_audio
from speech_s2s.corpus import AUDIO_SUFFIXES, CorpusError, Utterance, load_corpus, read_librispeech, read_manifest, write_manifest  # noqa: F401 (re-exported)
from speech_s2s.features import LogMel
from speech_s2s.text import Vocabulary


@dataclass
class FeatureSet:
    """Utterances with their raw log-mel features [T, F] (float16 to halve memory) and token ids."""

    utterances: list[Utterance]
    features: list[torch.Tensor]
    targets: list[torch.Tensor]

    def __len__(self) -> int:
        return len(self.utterances)

    def num_frames(self) -> list[int]:
        return [f.shape[0] for f in self.features]


def compute_features(utterances: list[Utterance], logmel: LogMel, vocabulary: Vocabulary, cache: str | Path | None = None) -> FeatureSet:
    """Load audio, compute log-mel, encode transcripts; reuse `cache` if it was made from the same ids."""
    ids = [u.id for u in utterances]
    if cache is not None and Path(cache).is_file():
        stored = torch.load(cache, weights_only=True)
        if stored["ids"] == ids:
            return FeatureSet(utterances, stored["features"], [torch.tensor(vocabulary.encode(u.text)) for u in utterances])
    features = []
    for utterance in tqdm(utterances, desc="features", unit="utt"):
        samples = torch.from_numpy(load_audio(utterance.audio))
        feats, _ = logmel(samples[None], torch.tensor([samples.shape[0]]))
        features.append(feats[0].to(torch.float16))
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        temporary = Path(str(cache) + ".tmp")
        torch.save({"ids": ids, "features": features}, temporary)
        os.replace(temporary, cache)
    return FeatureSet(utterances, features, [torch.tensor(vocabulary.encode(u.text)) for u in utterances])


def feature_stats(features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin mean and standard deviation over all frames (float64 sums for accuracy)."""
    total = torch.zeros(features[0].shape[1], dtype=torch.float64)
    squares = torch.zeros_like(total)
    count = 0
    for f in features:
        f = f.double()
        total += f.sum(0)
        squares += (f * f).sum(0)
        count += f.shape[0]
    mean = total / count
    return mean.float(), (squares / count - mean * mean).clamp_min(0).sqrt().float()


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
