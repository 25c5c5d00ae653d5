"""Chunked (latency-controlled) encoder: cost and accuracy against full context.

    OMP_WAIT_POLICY=PASSIVE python tools/bench_chunk.py --threads 1
    python tools/bench_chunk.py --corpus $DATA/corpus/dev-tts --chunks full 32,16 16,8 --skip-train --skip-stream

Reports, for the given model (default: the bundled one):
- one training step (forward, backward, Adam) on a synthetic batch, full context and chunked;
- greedy WER/CER on the bundled sample plus tests/data/mini (a sanity number on five utterances), or
  on a LibriSpeech-layout split with --corpus, full context and each chunk setting; beside it the WER
  of CTC greedy over the same encoder output, which is what a chunked stream's partial text says
  once the utterance is over;
- the time of one `encoder.stream` call per chunk, and the real-time factor it implies.
Times are CPU seconds of this process (time.process_time), so that other work on a shared machine
does not inflate them; with --threads 1 they are the single-core wall time of an idle machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import jiwer
import torch

from speech_s2s.builder import BUNDLED_MODEL
from speech_s2s.data.batches import collate, compute_features, make_batches
from speech_s2s.data.corpus import Utterance, read_librispeech
from speech_s2s.decoding.options import DecodingOptions
from speech_s2s.decoding.search import ctc_greedy_tokens, decode_encoded
from speech_s2s.frontend.audio import SAMPLE_RATE, load_audio
from speech_s2s.frontend.features import FeatureConfig
from speech_s2s.model.encoder import ChunkConfig
from speech_s2s.model.files import load_model

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "speech_s2s" / "assets" / "sample.flac"
MINI = ROOT / "tests" / "data" / "mini"
FRAME_SECONDS = FeatureConfig().hop_length / FeatureConfig().sample_rate


def parse_chunk(text: str) -> ChunkConfig | None:
    """'full' or 'C,R' in input frames."""
    if text == "full":
        return None
    chunk, context = (int(v) for v in text.split(","))
    return ChunkConfig(chunk, context)


def time_training_step(model, chunk, batch: int, frames: int, tokens: int, repeats: int) -> float:
    """Median seconds for one step on `batch` utterances of `frames` frames and `tokens` targets."""
    torch.manual_seed(0)
    feats = torch.randn(batch, frames, model.config.features.n_mels)
    lengths = torch.full((batch,), frames)
    targets = torch.randint(3, len(model.vocabulary), (batch, tokens))
    target_lengths = torch.full((batch,), tokens)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-5)
    times = []
    for _ in range(repeats + 1):  # the first step warms up
        started = time.process_time()
        output = model.loss(model.encoder(feats, lengths, chunk), targets, target_lengths)
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
        times.append(time.process_time() - started)
    return statistics.median(times[1:])


def sanity_set(model, corpus: str | None):
    """The bundled sample and tests/data/mini, or a LibriSpeech-layout corpus."""
    if corpus:
        return compute_features(read_librispeech(corpus, model.vocabulary), model.logmel, model.vocabulary)
    text = SAMPLE.with_suffix(".txt").read_text().split(maxsplit=1)[1].strip()
    utterances = [Utterance(SAMPLE.stem, str(SAMPLE), text, len(load_audio(SAMPLE)) / SAMPLE_RATE, "sample")]
    utterances += read_librispeech(MINI)
    return compute_features(utterances, model.logmel, model.vocabulary)


def greedy_error_rates(model, features, chunk, max_frames: int = 20000) -> tuple[float, float, float, list[str]]:
    """Attention greedy WER and CER, and the WER of CTC greedy over the same encoder output (what a
    chunked stream's partial text says once the utterance is over)."""
    hypotheses, ctc_hypotheses, references = [], [], []
    for indices in make_batches(features.num_frames(), max_frames, seed=0, epoch=0, shuffle=False):
        feats, lengths, _, _ = collate(features, indices)
        model.eval()
        with torch.no_grad():
            encoded = model.encode(feats, lengths, chunk)
            hypotheses += [r.text for r in decode_encoded(model, encoded, DecodingOptions(beam_size=1, chunk=chunk))]
            log_probs = model.ctc_log_probs(encoded)
        for row, length in zip(log_probs, encoded.ctc_lengths.tolist()):
            ctc_hypotheses.append(model.vocabulary.decode(ctc_greedy_tokens(row[:length])))
        references += [model.vocabulary.decode(features.targets[i].tolist()) for i in indices]
    return jiwer.wer(references, hypotheses), jiwer.cer(references, hypotheses), jiwer.wer(references, ctc_hypotheses), hypotheses


@torch.no_grad()
def time_stream(model, chunk: ChunkConfig, seconds: float) -> float:
    """Mean seconds per `stream` call (batch 1) over an utterance of `seconds` of random features."""
    model.eval()
    frames = int(seconds / FRAME_SECONDS)
    feats = model.normalizer(torch.randn(1, frames, model.config.features.n_mels), torch.tensor([frames]))
    state = model.encoder.initial_state(1, chunk)
    window = chunk.chunk_frames + chunk.right_context_frames
    starts = range(0, frames, chunk.chunk_frames)
    started = time.process_time()
    for start in starts:
        out, state = model.encoder.stream(feats[:, start : start + window], state)
        model.ctc_log_probs(out)
    return (time.process_time() - started) / len(starts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(BUNDLED_MODEL))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--chunks", nargs="+", default=["full", "32,16", "16,8", "32,0", "64,32"], help="'full' or C,R in input frames")
    parser.add_argument("--train-chunks", nargs="+", default=["full", "32,16"])
    parser.add_argument("--batch", type=int, default=5, help="training batch: utterances")
    parser.add_argument("--frames", type=int, default=1000, help="training batch: frames per utterance (5 x 1000 = the default --max-frames)")
    parser.add_argument("--tokens", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--corpus", help="score this LibriSpeech-layout corpus instead of the sample and tests/data/mini")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-stream", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)

    features = sanity_set(model, args.corpus)
    seconds = sum(int(f.shape[0]) for f in features.features) * FRAME_SECONDS
    print(f"greedy, {len(features.utterances)} utterances ({seconds:.1f} s), no fine-tuning:")
    for text in args.chunks:
        chunk = parse_chunk(text)
        started = time.process_time()
        wer, cer, ctc_wer, hypotheses = greedy_error_rates(model, features, chunk)
        print(f"  {text:>6}: WER {100 * wer:5.1f}%  CER {100 * cer:5.1f}%  CTC greedy WER {100 * ctc_wer:5.1f}%  "
              f"({time.process_time() - started:.1f} s)  | {hypotheses[0]}")

    for text in [] if args.skip_stream else args.chunks:
        chunk = parse_chunk(text)
        if chunk is None:
            continue
        per_call = time_stream(model, chunk, seconds=10.0)
        chunk_seconds = chunk.chunk_frames * FRAME_SECONDS
        print(f"stream {text}: {1000 * per_call:.1f} ms per call for {chunk_seconds:.2f} s of audio (encoder + CTC head, RTF {per_call / chunk_seconds:.3f})")

    if not args.skip_train:
        for text in args.train_chunks:
            step = time_training_step(model, parse_chunk(text), args.batch, args.frames, args.tokens, args.repeats)
            print(f"training step {text}: {step:.2f} s ({args.batch} x {args.frames} frames, {args.tokens} tokens, median of {args.repeats})")


if __name__ == "__main__":
    main()
