"""Training batches made from audio on the fly: augment each waveform, compute log-mel, collate.

Used by `training.fit` when `TrainConfig.augment` is set, instead of cached features. Batch k of
epoch e draws every random number from a generator seeded with (seed, e, k) alone, so a resumed
run rebuilds exactly the batches an unbroken run saw, whichever batch it restarts at. Batches are
prepared one or two ahead in a background thread while the model trains on the current one (the
heavy work, in NumPy, SciPy, libsndfile and torch, runs without the GIL).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from typing import TypeVar

import numpy as np
import torch
from tqdm import tqdm

from speech_s2s.audio import load_audio
from speech_s2s.augment import AugmentConfig, Augmenter, to_int16
from speech_s2s.data import Utterance
from speech_s2s.features import LogMel

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]  # feats [B,T,F], frames [B], targets [B,L], lengths [B]
T = TypeVar("T")
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

    def iterate(self, batches: list[list[int]], epoch: int, start: int = 0, ahead: int = 2) -> Iterator[Batch]:
        """Batches start, start+1, ... of an epoch, made up to `ahead` batches in advance in a thread."""
        return prefetch((self.batch(indices, epoch, k) for k, indices in enumerate(batches) if k >= start), ahead)


_DONE = object()


def prefetch(items: Iterator[T], ahead: int) -> Iterator[T]:
    """Yield from `items`, computed by a background thread at most `ahead` items in advance.

    Closing the generator (or leaving a for loop early) stops the thread after its current item;
    an exception in the thread is raised here, in the consumer.
    """
    ready: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(_DONE)
        except BaseException as error:  # handed to the consumer, which raises it
            offer(error)

    worker = threading.Thread(target=work, name="augment-prefetch", daemon=True)
    worker.start()
    try:
        while (item := ready.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        worker.join()
