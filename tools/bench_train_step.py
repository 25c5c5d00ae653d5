"""Time training updates (forward + backward + Adam) for model configurations on real batches.

Prints the median seconds per update and audio seconds trained per wall second, per config and
encoder context (full, or the chunks of dynamic chunk training), so batch size, width, thread
count and the chunk mix are chosen by measurement. Example:
    python tools/bench_train_step.py --corpus $DATA/corpus/dev-tts --threads 1 --max-frames 3000 --contexts full 32+16
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch

from speech_s2s.data.batches import (
    collate,
    compute_features,
    feature_stats,
    make_batches,
)
from speech_s2s.data.corpus import read_librispeech
from speech_s2s.model.encoder import ChunkConfig
from speech_s2s.model.seq2seq import ModelConfig, Seq2Seq

CANDIDATES = {
    "enc256-dec512": dict(encoder_hidden=256, decoder_hidden=512, attention=256),
    "enc224-dec320": dict(encoder_hidden=224, decoder_hidden=320, attention=128),  # the bundled model's shape
    "enc288-dec320": dict(encoder_hidden=288, decoder_hidden=320, attention=128),  # tools/widen_model.py's capacity run
    "enc192-dec320": dict(encoder_hidden=192, decoder_hidden=320, attention=128),
}


def build(encoder_hidden: int, decoder_hidden: int, attention: int) -> Seq2Seq:
    base = ModelConfig()
    decoder = dataclasses.replace(
        base.decoder, hidden_size=decoder_hidden, embedding_size=64,
        attention=dataclasses.replace(base.decoder.attention, attention_size=attention),
    )
    return Seq2Seq(dataclasses.replace(base, encoder=dataclasses.replace(base.encoder, hidden_size=encoder_hidden), decoder=decoder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-frames", type=int, default=5000)
    parser.add_argument("--updates", type=int, default=8)
    parser.add_argument("--configs", nargs="+", default=list(CANDIDATES))
    parser.add_argument("--contexts", nargs="+", default=["full"], metavar="full|C+R",
                        help="encoder context per update: full, or chunks of C frames with R of right context")
    args = parser.parse_args()
    contexts = {name: None if name == "full" else ChunkConfig(*map(int, name.split("+"))) for name in args.contexts}
    torch.set_num_threads(args.threads)
    utterances = read_librispeech(args.corpus)[:400]
    for name in args.configs:
        model = build(**CANDIDATES[name])
        features = compute_features(utterances, model.logmel, model.vocabulary)
        model.normalizer.set_stats(*feature_stats(features.features))
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        frames = features.num_frames()
        batches = make_batches(frames, args.max_frames, seed=0, epoch=1)[: args.updates + 1]
        for context_name, chunk in contexts.items():
            timings, audio = [], []
            for indices in batches:  # the same batches for every context
                feats, lengths, targets, target_lengths = collate(features, indices)
                start = time.perf_counter()
                loss = model.loss(model.encode(feats, lengths, chunk), targets, target_lengths).loss
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                timings.append(time.perf_counter() - start)
                audio.append(float(lengths.sum()) / 100)
            timings, audio = timings[1:], audio[1:]  # the first update pays one-off allocation costs
            parameters = sum(p.numel() for p in model.parameters()) / 1e6
            print(
                f"{name}, context {context_name}: {parameters:.1f}M params, threads {args.threads}, max_frames {args.max_frames}: "
                f"median {statistics.median(timings):.2f} s/update, {sum(audio) / sum(timings):.1f} audio s per s"
            )


if __name__ == "__main__":
    main()
