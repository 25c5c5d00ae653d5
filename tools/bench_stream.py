#!/usr/bin/env python3
"""Streaming benchmark: a split's utterances streamed one by one, against offline decoding of the same files.

Each utterance (followed by --tail seconds of silence, so the endpoint comes from a pause as it
would live) goes through `StreamingRecognizer` in 50 ms blocks. Replay is simulated
in real time on a virtual clock rather than waited out: a block becomes available when its last
sample would have been spoken, and the recogniser starts on it once it is free, so work that falls
behind delays the next blocks exactly as it would live (and shows in the latencies), while the
benchmark itself runs as fast as the CPU allows. Work is timed by the wall clock (`--clock wall`,
the default: beam search steps its LMs on a second thread, whose work the main thread's CPU time
would miss; pause other work on the machine first), or in CPU seconds of the recognising thread
(`--clock cpu`: as if it had a core to itself, right only where decoding runs on one thread).

Reports WER of streaming finals and of offline decoding (`Recognizer.transcribe`) against the
references, WER of the last partial before each final (what a viewer read just before the text
settled), median and 90th percentile of end of speech -> final and of partial latency, partial
cadence, and the real-time factor.

    python tools/bench_stream.py --split $DATA/evalcorpus/test-tts --limit 100
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speech_s2s.builder import load  # noqa: E402
from speech_s2s.data.corpus import read_librispeech  # noqa: E402
from speech_s2s.decoding.options import DecodingOptions  # noqa: E402
from speech_s2s.evaluation.scoring import score  # noqa: E402
from speech_s2s.frontend.audio import SAMPLE_RATE, load_audio  # noqa: E402
from speech_s2s.model.encoder import ChunkConfig  # noqa: E402
from speech_s2s.sources import BLOCK_SECONDS  # noqa: E402
from speech_s2s.streaming import StreamingRecognizer, StreamOptions  # noqa: E402


def stream_on_virtual_clock(streamer: StreamingRecognizer, audio: np.ndarray, block: int, clock_of_work=time.perf_counter) -> tuple[list, float]:
    """(events, processing seconds) of one utterance replayed in simulated real time."""
    clock = 0.0  # seconds of audio time at which the recogniser is next free
    events, busy = [], 0.0
    streamer.reset()
    for start in range(0, len(audio), block):
        chunk = audio[start : start + block]
        heard = (start + len(chunk)) / SAMPLE_RATE  # when its last sample was spoken
        begin = max(clock, heard)
        now = clock_of_work()
        events += streamer.push(chunk, arrived=now - (begin - heard))  # it arrived `begin - heard` s ago
        spent = clock_of_work() - now
        clock, busy = begin + spent, busy + spent
    now = clock_of_work()
    events += streamer.finish()
    return events, busy + clock_of_work() - now


def last_partials(events: list) -> str:
    """The text of the last partial before each final, joined: what was on screen as each utterance ended."""
    shown, texts = "", []
    for event in events:
        if event.type == "partial":
            shown = event.text
        elif event.type == "final":
            if shown:
                texts.append(shown)
            shown = ""
    return " ".join(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", required=True, help="a LibriSpeech-layout split (e.g. evalcorpus/test-tts)")
    parser.add_argument("--model", help="default: the bundled model")
    parser.add_argument("--limit", type=int, default=None, help="the first N utterances only")
    parser.add_argument("--tail", type=float, default=1.0, help="seconds of silence after each utterance")
    parser.add_argument("--update-seconds", type=float, default=0.4)
    parser.add_argument("--mode", choices=("agreement", "chunked"), default="agreement")
    parser.add_argument("--chunk", type=int, nargs=2, default=(32, 16), metavar=("C", "R"))
    parser.add_argument("--no-speculative-finals", action="store_true", help="decode each final only when its pause ends the utterance (as before)")
    parser.add_argument("--beam", type=int, default=16, help="beam size of the finals, with the bundled LMs (default 16, as `speech-s2s stream`)")
    parser.add_argument("--internal-lm-weight", type=float, default=DecodingOptions().internal_lm_weight,
                        help=f"the decoder's internal LM subtracted in the finals (default {DecodingOptions().internal_lm_weight}, as `speech-s2s stream`)")
    parser.add_argument("--no-word-lm", action="store_true", help="finals without the bundled word LM")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="what times the work: the wall clock (default; pause other work first) or this thread's CPU time")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    recognizer = load(args.model, beam_size=args.beam, internal_lm_weight=args.internal_lm_weight, word_lm=not args.no_word_lm,
                                 word_timestamps=False)
    clock_of_work = time.perf_counter if args.clock == "wall" else time.thread_time
    streamer = StreamingRecognizer(recognizer, StreamOptions(args.mode, args.update_seconds, chunk=ChunkConfig(*args.chunk),
                                                            speculative_finals=not args.no_speculative_finals),
                                   clock=clock_of_work)
    utterances = read_librispeech(args.split)[: args.limit]
    block = round(BLOCK_SECONDS * SAMPLE_RATE)
    references, streamed, offline, partial_text = {}, {}, {}, {}
    finals, partials, intervals, first_partials = [], [], [], []
    audio_seconds = busy = 0.0
    for utterance in utterances:
        audio = np.concatenate([load_audio(utterance.audio), np.zeros(round(args.tail * SAMPLE_RATE), dtype=np.float32)])
        events, spent = stream_on_virtual_clock(streamer, audio, block, clock_of_work)
        summary = streamer.summary()
        audio_seconds, busy = audio_seconds + len(audio) / SAMPLE_RATE, busy + spent
        references[utterance.id] = utterance.text
        streamed[utterance.id] = " ".join(e.text for e in events if e.type == "final" and e.text)
        partial_text[utterance.id] = last_partials(events)
        offline[utterance.id] = " ".join(s.text for s in recognizer.transcribe(audio)[0] if s.text)
        finals += [e.latency_ms for e in events if e.type == "final" and e.text]
        partials += [e.latency_ms for e in events if e.type == "partial"]
        if summary.partial_interval_ms is not None:
            intervals.append(summary.partial_interval_ms)
        if summary.first_partial_ms is not None:
            first_partials.append(summary.first_partial_ms)

    def stats(values: list[float]) -> str:
        return f"median {np.median(values):.0f} ms, p90 {np.percentile(values, 90):.0f} ms" if values else "-"

    same = sum(streamed[k] == offline[k] for k in references)
    print(f"{len(utterances)} utterances, {audio_seconds:.0f} s of audio (with {args.tail:g} s of silence after each), {args.clock} clock, mode {args.mode}")
    print(f"streaming WER {100 * score(references, streamed).wer:.2f}%  offline WER {100 * score(references, offline).wer:.2f}%  "
          f"(identical text: {same}/{len(references)})")
    print(f"last partial before each final: WER {100 * score(references, partial_text).wer:.2f}%")
    print(f"end of speech -> final: {stats(finals)}")
    print(f"partial latency (newest audio -> partial): {stats(partials)}")
    print(f"speech onset -> first partial: {stats(first_partials)}")
    print(f"partial cadence (median per utterance): {stats(intervals)}")
    print(f"real-time factor: {busy / audio_seconds:.3f}")


if __name__ == "__main__":
    main()
