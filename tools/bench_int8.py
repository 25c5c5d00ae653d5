"""Transcription time and WER of the model's precisions and encoders: torch float32, torch int8
(`quantize_int8`), and, with the `onnx` extra, the ONNX Runtime encoder in float32 and int8.

One process loads everything once, then transcribes the same files with each variant in turn
(greedy, as `speech-s2s transcribe`), --repeats rounds; the time is the transcription only (VAD,
features, encoder, search: CPU seconds of this process), the median over rounds. Interleaving in one
process keeps a shared machine's drift out of the comparison; torch's import (about 3 CPU s, the
same for every variant) is not counted. Example:

    python tools/bench_int8.py --corpus $DATA/evalcorpus/test-tts --files 400 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

import speech_s2s  # noqa: E402,F401 (sets the OpenMP environment before torch loads)
from speech_s2s.builder import BUNDLED_MODEL  # noqa: E402
from speech_s2s.data.corpus import read_librispeech  # noqa: E402
from speech_s2s.evaluation.scoring import score  # noqa: E402
from speech_s2s.input_files import expand_inputs  # noqa: E402
from speech_s2s.model.files import load_model, quantize_int8  # noqa: E402
from speech_s2s.transcribe import FileTranscript, Recognizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True, help="LibriSpeech-layout split")
    parser.add_argument("--files", type=int, default=400, help="its first N utterances")
    parser.add_argument("--model", default=str(BUNDLED_MODEL))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    utterances = read_librispeech(args.corpus)[: args.files]
    references = {u.id: u.text for u in utterances}
    files = expand_inputs([str(u.audio) for u in utterances], None)[0]
    audio = sum(u.duration for u in utterances)
    model = load_model(args.model)
    int8 = quantize_int8(model)
    variants = {"torch float32": Recognizer(model), "torch int8 (encoder LSTMs, CTC head)": Recognizer(int8)}
    folder = tempfile.TemporaryDirectory()
    try:
        from speech_s2s.model.onnx_encoder import OnnxEncoder, export_onnx_encoder

        exported = {}
        for name, quantised in (("float32", False), ("int8", True)):
            exported[name] = Path(folder.name) / f"encoder-{name}.onnx"
            export_onnx_encoder(model, exported[name], int8=quantised)
            variants[f"ONNX Runtime encoder {name}"] = Recognizer(model, encoder=OnnxEncoder(exported[name], model, args.threads))
        variants["ONNX Runtime encoder int8 + torch int8 CTC head"] = Recognizer(int8, encoder=OnnxEncoder(exported["int8"], model, args.threads))
    except ImportError:
        print("(onnx or onnxruntime missing: torch variants only)")
    times: dict[str, list[float]] = {name: [] for name in variants}
    texts: dict[str, dict[str, str]] = {}
    for _ in range(args.repeats):
        for name, recognizer in variants.items():
            start = time.process_time()
            results = list(recognizer.transcribe_files(files))
            times[name].append(time.process_time() - start)
            texts[name] = {r.id: r.text for r in results if isinstance(r, FileTranscript)}
    folder.cleanup()
    base = statistics.median(times["torch float32"])
    print(f"{len(files)} files, {audio:.0f} s of audio; greedy; {args.threads} thread(s); median of {args.repeats} interleaved rounds")
    print("| variant | CPU s (transcription) | speed-up vs torch float32 | real-time factor | WER % | CER % |")
    print("|---|---|---|---|---|---|")
    for name, runs in times.items():
        seconds, result = statistics.median(runs), score(references, texts[name])
        print(f"| {name} | {seconds:.2f} | {base / seconds:.2f}x | {seconds / audio:.4f} | {100 * result.wer:.2f} | {100 * result.cer:.2f} |")


if __name__ == "__main__":
    main()
