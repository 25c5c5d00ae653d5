"""Beam search cost against greedy, batched against one utterance at a time, on the same encoded audio.

The utterances are encoded in length-sorted batches, as transcription does; the encoder (with the
features) and each search are timed separately, as CPU seconds of this process (steadier than wall
time on a shared machine), median of --repeats. The real-time factor adds the encoder's time to
the search's. Example:

    python tools/bench_beam.py --corpus $DATA/evalcorpus/test-tts --utterances 100 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import speech_s2s  # noqa: E402,F401 (sets the OpenMP environment before torch loads)
from speech_s2s.builder import BUNDLED_MODEL  # noqa: E402
from speech_s2s.data.corpus import read_librispeech  # noqa: E402
from speech_s2s.decoding.options import DecodingOptions
from speech_s2s.decoding.search import beam_search_one, decode_encoded  # noqa: E402
from speech_s2s.evaluation.scoring import score  # noqa: E402
from speech_s2s.frontend.audio import load_audio  # noqa: E402
from speech_s2s.model.files import load_model, quantize_int8  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True, help="LibriSpeech-layout split")
    parser.add_argument("--utterances", type=int, default=100)
    parser.add_argument("--model", default=str(BUNDLED_MODEL))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--beam", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--candidates", type=int, nargs="+", default=[0, 10, 16], help="CTC candidates per hypothesis; 0 = every token")
    parser.add_argument("--int8", action="store_true", help="quantise the model first (model.quantize_int8)")
    parser.add_argument("--onnx-encoder", help="encode with ONNX Runtime from this file (speech-s2s export-onnx)")
    parser.add_argument("--one-at-a-time", action="store_true", help="also time the search one utterance at a time (slow)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model).eval()
    onnx_encoder = None
    if args.onnx_encoder:  # checked against the float weights, so before quantising
        from speech_s2s.model.onnx_encoder import OnnxEncoder

        onnx_encoder = OnnxEncoder(args.onnx_encoder, model, threads=args.threads)
    if args.int8:
        model = quantize_int8(model)
    encode = onnx_encoder or model.encode
    utterances = read_librispeech(args.corpus)[: args.utterances]
    audio = sum(u.duration for u in utterances)
    references = {u.id: u.text for u in utterances}
    order = sorted(range(len(utterances)), key=lambda i: utterances[i].duration)
    groups = [order[first : first + args.batch_size] for first in range(0, len(order), args.batch_size)]
    waves = [[torch.from_numpy(load_audio(utterances[i].audio)) for i in ids] for ids in groups]
    encode_times = []
    with torch.no_grad():
        for _ in range(args.repeats):  # features and encoder, timed as the search is
            start = time.process_time()
            batches = []
            for ids, group in zip(groups, waves):
                feats, lengths = model.features(torch.nn.utils.rnn.pad_sequence(group, batch_first=True), torch.tensor([len(w) for w in group]))
                batches.append((ids, encode(feats, lengths)))
            encode_times.append(time.process_time() - start)
    encode_seconds = statistics.median(encode_times)
    vocab = len(model.vocabulary)
    print(f"{len(utterances)} utterances, {audio:.0f} s of audio; {'int8' if args.int8 else 'fp32'}{', ONNX Runtime encoder' if args.onnx_encoder else ''}; "
          f"{args.threads} thread(s), batches of {args.batch_size}; encoder {encode_seconds:.2f} CPU s; median of {args.repeats}")
    print("| search | CPU s (search) | real-time factor (encoder + search) | WER % |")
    print("|---|---|---|---|")

    def run(name: str, search) -> None:
        times, texts = [], {}
        for _ in range(args.repeats):
            start = time.process_time()
            for ids, encoded in batches:
                for i, text in zip(ids, search(encoded)):
                    texts[utterances[i].id] = text
            times.append(time.process_time() - start)
        seconds = statistics.median(times)
        print(f"| {name} | {seconds:.2f} | {(seconds + encode_seconds) / audio:.4f} | {100 * score(references, texts).wer:.2f} |", flush=True)

    def batched(options: DecodingOptions):
        return lambda encoded: [r.text for r in decode_encoded(model, encoded, options)]

    def one_at_a_time(options: DecodingOptions):
        def search(encoded):
            texts = []
            for b in range(encoded.ctc_lengths.shape[0]):
                single = type(encoded)(**{k: v[b : b + 1] for k, v in vars(encoded).items()})
                texts.extend(r.text for r in decode_encoded(model, single, options))
            return texts
        return search

    def reference(options: DecodingOptions):  # the former search: beam_search_one per utterance
        def search(encoded):
            memory, ctc = model.prepare_memory(encoded), model.ctc_log_probs(encoded)
            texts = []
            for b in range(ctc.shape[0]):
                hyps = beam_search_one(model, memory.select(torch.tensor([b])), ctc[b, : int(encoded.ctc_lengths[b])], options)
                texts.append(model.vocabulary.decode(hyps[0].tokens) if hyps else "")
            return texts
        return search

    with torch.no_grad():
        run("greedy", batched(DecodingOptions(beam_size=1)))
        beam = DecodingOptions(beam_size=args.beam)
        for candidates in args.candidates:
            label = f"beam {args.beam}, batched, CTC candidates {candidates or f'all {vocab}'}"
            run(label, batched(replace(beam, ctc_candidates=candidates or vocab)))
        if args.one_at_a_time:
            run(f"beam {args.beam}, one at a time (batched code, B=1), CTC candidates {args.candidates[-1] or vocab}",
                one_at_a_time(replace(beam, ctc_candidates=args.candidates[-1] or vocab)))
            run(f"beam {args.beam}, former per-utterance search (beam_search_one), all {vocab}", reference(beam))


if __name__ == "__main__":
    main()
