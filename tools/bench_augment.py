"""Time waveform augmentation: each component in ms per second of audio, then training updates with and without it.

Part 1 runs every component with fixed, typical parameters over the corpus's utterances (plus
FLAC decoding and log-mel, for scale). Part 2 times training updates (forward, backward, Adam)
on the same batches: cached features, then audio augmented in the background thread that
training uses; "wait" is the time an update waited for its batch. Example:
    python tools/bench_augment.py --corpus $DATA/devsets/dev-asterisk --rir-bank rirs.npz \\
        --noise-dir /usr/share/asterisk/moh --threads 1
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

import speech_s2s
from speech_s2s.data import augment as A
from speech_s2s.data.augmented_batches import AugmentedBatches, load_waveforms
from speech_s2s.data.batches import (
    collate,
    compute_features,
    feature_stats,
    make_batches,
)
from speech_s2s.data.corpus import read_librispeech
from speech_s2s.frontend.audio import SAMPLE_RATE
from speech_s2s.model.files import load_model
from speech_s2s.model.seq2seq import ModelConfig, Seq2Seq


def components(rirs: list[np.ndarray], noises: list[np.ndarray], speech: list[np.ndarray]) -> dict:
    rng = np.random.default_rng(0)
    eq = np.stack([A.biquad("peak", 1000, 6, 1), A.biquad("lowshelf", 200, -6), A.biquad("highshelf", 4000, 4)])
    table = {
        "speed 1.1": lambda x: A.speed_perturb(x, 1.1),
        "speed 0.9": lambda x: A.speed_perturb(x, 0.9),
        "vtlp 1.1": lambda x: A.vtlp(x, 1.1),
        "coloured noise (pink) + mix": lambda x: A.add_noise(x, A.coloured_noise(len(x), "pink", rng), 10),
        "babble (5 talkers) + mix": lambda x: A.add_noise(x, A.babble(speech, len(x), 5, rng), 10),
        "eq (3 biquads)": lambda x: A.equalise(x, eq),
        "band limit": lambda x: A.band_limit(x, 200, 4000),
        "telephone (mu-law)": lambda x: A.telephone(x, True),
        "mp3 round trip": lambda x: A.codec_round_trip(x, "mp3", 0.9),
        "opus round trip": lambda x: A.codec_round_trip(x, "opus", 0.9),
        "clip": lambda x: A.clip(x, 3),
    }
    if rirs:
        table["reverb (random RIR)"] = lambda x: A.reverberate(x, rirs[int(rng.integers(len(rirs)))])
    if noises:
        table["music file + mix"] = lambda x: A.add_noise(x, A._as_float(noises[0][: len(x)]), 10)
    return table


def time_per_second(function, audio: list[np.ndarray]) -> float:
    start = time.perf_counter()
    for x in audio:
        function(x)
    return 1000 * (time.perf_counter() - start) / (sum(len(x) for x in audio) / SAMPLE_RATE)


def bench_updates(model: Seq2Seq, features, batches, augmented: AugmentedBatches | None) -> tuple[float, float]:
    """Median seconds per update (batch wait included) and median wait for the batch."""
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    source = (collate(features, b) for b in batches) if augmented is None else (b for _, b in augmented.iterate(list(enumerate(batches)), epoch=1))
    totals, waits = [], []
    for _ in batches:
        start = time.perf_counter()
        feats, lengths, targets, target_lengths = next(source)
        ready = time.perf_counter()
        loss = model.loss(model.encode(feats, lengths), targets, target_lengths).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        totals.append(time.perf_counter() - start)
        waits.append(ready - start)
    source.close()
    return float(np.median(totals[1:])), float(np.median(waits[1:]))  # the first pays one-off costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True, help="LibriSpeech-layout split")
    parser.add_argument("--utterances", type=int, default=100)
    parser.add_argument("--rir-bank")
    parser.add_argument("--noise-dir", action="append", default=[])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--model", choices=["bundled", "tiny"], default="bundled", help="shape of the model trained (fresh weights)")
    parser.add_argument("--max-frames", type=int, default=5000)
    parser.add_argument("--updates", type=int, default=6)
    parser.add_argument("--preset", default="medium", choices=list(A.PRESETS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    utterances = read_librispeech(args.corpus)[: args.utterances]
    hours = sum(u.duration for u in utterances) / 3600
    start = time.perf_counter()
    waveforms = load_waveforms(utterances)
    decode = 1000 * (time.perf_counter() - start) / (hours * 3600)
    audio = [A._as_float(w) for w in waveforms]
    rirs = A.load_rir_bank(args.rir_bank) if args.rir_bank else []
    noises = A.load_noise_dirs(args.noise_dir)
    print(f"{len(utterances)} utterances, {hours * 60:.1f} min of audio, torch threads {args.threads}")
    print(f"  {'FLAC decode to int16 (load_waveforms)':34s} {decode:7.2f} ms per audio second")
    logmel = Seq2Seq(ModelConfig()).logmel
    print(f"  {'log-mel (for scale)':34s} {time_per_second(lambda x: logmel(torch.from_numpy(x)[None], torch.tensor([len(x)])), audio):7.2f}")
    for name, function in components(rirs, noises, waveforms).items():
        print(f"  {name:34s} {time_per_second(function, audio):7.2f}")
    for name in A.PRESETS:
        augmenter = A.Augmenter(A.preset(name, noise_dirs=tuple(args.noise_dir), rir_bank=args.rir_bank), speech=waveforms)
        rng = np.random.default_rng(0)
        print(f"  {'Augmenter preset ' + name:34s} {time_per_second(lambda x, augmenter=augmenter, rng=rng: augmenter(x, rng), audio):7.2f}")

    bundled = load_model(Path(speech_s2s.__file__).parent / "assets" / "model.safetensors").config
    config = bundled if args.model == "bundled" else dataclasses.replace(
        bundled, encoder=dataclasses.replace(bundled.encoder, hidden_size=64, num_layers=3, reduce_before=(0, 1, 2), ctc_layer=1),
        decoder=dataclasses.replace(bundled.decoder, hidden_size=128, embedding_size=32),
    )
    torch.manual_seed(0)
    model = Seq2Seq(config)
    features = compute_features(utterances, model.logmel, model.vocabulary)
    model.normalizer.set_stats(*feature_stats(features.features))
    batches = make_batches(features.num_frames(), args.max_frames, seed=0, epoch=1)[: args.updates + 1]
    augment_config = A.preset(args.preset, noise_dirs=tuple(args.noise_dir), rir_bank=args.rir_bank)
    augmented = AugmentedBatches(waveforms, features.targets, model.logmel, augment_config, seed=0)
    start = time.perf_counter()
    for k, b in enumerate(batches[1:]):
        augmented.batch(b, 1, k)
    making = (time.perf_counter() - start) / (len(batches) - 1)
    parameters = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"training updates, {args.model} model ({parameters:.1f}M parameters), max_frames {args.max_frames}, {args.updates} updates:")
    print(f"  making one augmented batch ({args.preset}) alone: {making:.2f} s")
    for name, source in (("cached features", None), (f"augmented ({args.preset})", augmented)):
        total, wait = bench_updates(model, features, batches, source)
        print(f"  {name:22s} median {total:.2f} s per update, of which waiting for the batch {wait:.3f} s")


if __name__ == "__main__":
    main()
