"""Training batches made from audio on the fly: augment each waveform, compute log-mel, collate.

Used by `training.fit` when `TrainConfig.augment` is set, instead of cached features. Batch k of
epoch e draws every random number from a generator seeded with (seed, e, k) alone, so a resumed
run rebuilds exactly the batches an unbroken run saw, whichever batch it restarts at. Batches are
prepared two ahead by a DataLoader worker process while the model trains on the current one: a
process cannot contend with the training loop for the GIL (a small model's step is mostly Python
dispatching small ops), and fork shares the in-memory audio without copying it. The overlap only
hides the cost when a core is free: making a batch costs about 0.3 s of CPU per 50 s of audio.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm

from speech_s2s.data.augment import AugmentConfig, Augmenter, to_int16
from speech_s2s.data.corpus import Utterance
from speech_s2s.frontend.audio import load_audio
from speech_s2s.frontend.features import LogMel

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # feats [B,T,F], frames [B], targets [B,L], lengths [B]
STREAM = 0x5EED  # keeps these generators apart from any other use of the same seed


def load_waveforms(utterances: Sequence[Utterance]) -> list[np.ndarray]:
    """Every utterance's audio at 16 kHz as int16 (2 bytes a sample: 12 h of speech is 1.4 GB)."""
    return [to_int16(load_audio(u.audio)) for u in tqdm(utterances, desc="audio", unit="utt", leave=False)]


def batch_generator(seed: int, epoch: int, batch_index: int) -> np.random.Generator:
    return np.random.default_rng([STREAM, seed, epoch, batch_index])


class AugmentedBatches:
    """Waveforms [S] (int16) and token ids per utterance -> augmented, collated log-mel batches."""

    def __init__(self, waveforms: Sequence[np.ndarray], targets: Sequence[torch.Tensor], logmel: LogMel, config: AugmentConfig, seed: int):
        self.waveforms = waveforms
        self.targets = targets
        self.logmel = logmel
        self.augmenter = Augmenter(config, speech=waveforms)  # babble comes from the corpus itself
        self.seed = seed

    def batch(self, indices: list[int], epoch: int, batch_index: int) -> Batch:
        rng = batch_generator(self.seed, epoch, batch_index)
        audio = [torch.from_numpy(self.augmenter(self.waveforms[i], rng)) for i in indices]
        num_samples = torch.tensor([a.shape[0] for a in audio])
        feats, lengths = self.logmel(torch.nn.utils.rnn.pad_sequence(audio, batch_first=True), num_samples)
        targets = [self.targets[i] for i in indices]
        return feats, lengths, torch.nn.utils.rnn.pad_sequence(targets, batch_first=True), torch.tensor([t.shape[0] for t in targets])

    def iterate(self, batches: list[tuple[int, list[int]]], epoch: int, workers: int = 1) -> Iterator[tuple[int, Batch]]:
        """(position, batch) for each (position in the epoch, indices) given, made ahead by `workers`
        processes (0: made here, on demand). The position seeds the batch's random draws."""
        context = "fork" if workers and "fork" in multiprocessing.get_all_start_methods() else None  # shares the audio, no copy
        loader = torch.utils.data.DataLoader(
            _EpochBatches(self, batches, epoch), batch_size=None, num_workers=workers,
            prefetch_factor=2 if workers else None, multiprocessing_context=context,
        )
        yield from loader  # closing this generator drops the loader's iterator, which stops its workers


class _EpochBatches(torch.utils.data.Dataset):
    def __init__(self, source: AugmentedBatches, batches: list[tuple[int, list[int]]], epoch: int):
        self.source, self.batches, self.epoch = source, batches, epoch

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, item: int) -> tuple[int, Batch]:
        position, indices = self.batches[item]
        return position, self.source.batch(indices, self.epoch, position)
