"""Transcription speed under load: threads x OpenMP wait policy x busy neighbour processes.

Each run is a fresh process that loads the model, then transcribes the files (greedy, as
`speech-s2s transcribe` does); the time reported is the transcription only (wall and CPU seconds),
the median of --repeats runs. A neighbour is `python -c 'while True: pass'`, started at the same
niceness as this script. Example (48 files of the held-out split):

    python tools/bench_threads.py --corpus $DATA/evalcorpus/test-tts --files 48 --repeats 3
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

RUN = r"""
import json, sys, time
import speech_s2s
import torch
threads, beam, paths = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
if threads:
    torch.set_num_threads(threads)
from speech_s2s.input_files import expand_inputs
from speech_s2s.decoding.options import DecodingOptions
from speech_s2s.transcribe import Recognizer, TranscribeOptions
from speech_s2s.builder import BUNDLED_MODEL
from speech_s2s.model.files import load_model
recognizer = Recognizer(load_model(BUNDLED_MODEL), TranscribeOptions(decoding=DecodingOptions(beam_size=beam)))
files = expand_inputs(paths, None)[0]
wall, cpu = time.perf_counter(), time.process_time()
results = list(recognizer.transcribe_files(files))
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu, "threads": torch.get_num_threads()}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True, help="folder of audio files (searched recursively)")
    parser.add_argument("--files", type=int, default=48, help="the first N files, by name")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="0 = torch's default")
    parser.add_argument("--policies", nargs="+", default=["PASSIVE", "ACTIVE"])
    parser.add_argument("--neighbours", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--beam", type=int, default=1)
    args = parser.parse_args()
    files = sorted(str(p) for p in Path(args.corpus).rglob("*.flac"))[: args.files]
    import soundfile

    audio = sum(soundfile.info(f).duration for f in files)
    print(f"{len(files)} files, {audio:.0f} s of audio; {os.cpu_count()} CPUs; median of {args.repeats}")
    print("| busy neighbours | OMP_WAIT_POLICY | threads | wall s | CPU s | real-time factor | load average at start |")
    print("|---|---|---|---|---|---|---|")
    for neighbours in args.neighbours:
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(neighbours)]
        try:
            for policy, threads in itertools.product(args.policies, args.threads):
                load = os.getloadavg()[0]
                env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": policy}
                runs = []
                for _ in range(args.repeats):
                    out = subprocess.run([sys.executable, "-c", RUN, str(threads), str(args.beam), *files], check=True,
                                         capture_output=True, text=True, env=env, cwd=ROOT).stdout
                    runs.append(json.loads(out.splitlines()[-1]))
                wall = statistics.median(r["wall"] for r in runs)
                cpu = statistics.median(r["cpu"] for r in runs)
                print(f"| {neighbours} | {policy} | {runs[0]['threads']} | {wall:.2f} | {cpu:.2f} | {wall / audio:.4f} | {load:.1f} |", flush=True)
        finally:
            for process in busy:
                process.kill()
                process.wait()


if __name__ == "__main__":
    main()
