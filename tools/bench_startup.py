"""Where start-up time goes: `speech-s2s --help`, one short file transcribed end to end, and each loading step.

Each figure is the median of --repeats fresh processes, as wall and CPU (user + system) seconds; CPU
time is the steadier one on a shared machine. Run from the repository root:

    python tools/bench_startup.py --repeats 5 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "speech_s2s" / "assets" / "sample.flac"

# One fresh process timing each loading step in turn (cumulative order: each step needs the ones before).
STEPS = r"""
import json, sys, time
marks = []
def mark(name, t=[time.perf_counter(), time.process_time()]):
    now = (time.perf_counter(), time.process_time())
    marks.append((name, now[0] - t[0], now[1] - t[1])); t[:] = now
import speech_s2s  # sets the OpenMP/oneDNN environment first, as the CLI does
import torch; mark("import torch")
torch.set_num_threads(int(sys.argv[1]))
import torchaudio; mark("import torchaudio")
from speech_s2s.transcribe import BUNDLED_MODEL, BUNDLED_SAMPLE, Recognizer; mark("import speech_s2s.transcribe")
from speech_s2s.model.files import load_model
model = load_model(BUNDLED_MODEL); mark("load the model (safetensors)")
recognizer = Recognizer(model); mark("Recognizer(model): loads Silero VAD (torch.jit)")
from speech_s2s.input_files import expand_inputs
files = expand_inputs([str(BUNDLED_SAMPLE)], None)[0]
result = list(recognizer.transcribe_files(files)); mark("transcribe the sample (first call)")
result = list(recognizer.transcribe_files(files)); mark("transcribe the sample again")
print(json.dumps(marks))
"""


def timed(command: list[str], env: dict) -> tuple[float, float]:
    """(wall, CPU) seconds of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=ROOT)  # a usage error exits 2
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "speech_s2s.cli"]
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs; median of {args.repeats} fresh processes")
    print(f"{'':46s} {'wall s':>7s} {'CPU s':>7s}")
    for name, command in [
        ("speech-s2s --help", cli + ["--help"]),
        ("speech-s2s transcribe --bogus (usage error)", cli + ["transcribe", "--bogus"]),
        ("speech-s2s transcribe sample.flac (3.4 s)", cli + ["transcribe", str(SAMPLE), "--threads", str(args.threads)]),
        ("python -c 'import torch'", [sys.executable, "-c", "import torch"]),
    ]:
        runs = [timed(command, env) for _ in range(args.repeats)]
        print(f"{name:46s} {statistics.median(r[0] for r in runs):7.2f} {statistics.median(r[1] for r in runs):7.2f}")
    steps = []
    for _ in range(args.repeats):
        out = subprocess.run([sys.executable, "-c", STEPS, str(args.threads)], check=True, capture_output=True, text=True, env=env, cwd=ROOT).stdout
        steps.append(json.loads(out.splitlines()[-1]))
    print("inside one process, step by step:")
    for index, (name, _, _) in enumerate(steps[0]):
        print(f"  {name:44s} {statistics.median(s[index][1] for s in steps):7.2f} {statistics.median(s[index][2] for s in steps):7.2f}")


if __name__ == "__main__":
    main()
