#!/usr/bin/env python3
"""Memory of `speech-s2s stream` over a long recording: does anything grow with the hours streamed?

Replays one recording (e.g. the hour `tools/bench_long.py` builds) through `speech-s2s stream --file F
--fast` in each mode, samples the process's memory every 0.5 s from /proc, and maps each sample to
the audio time streamed so far (from the jsonl events' end times). Prints one table row per mode and
writes memory against streamed minutes as a PNG.

    python tools/bench_stream_memory.py $DATA/bench-long/long.flac --plot docs/stream-memory.png
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_long import CLI, memory_mib  # noqa: E402


def stream_sampled(recording: Path, mode: str, threads: str) -> dict:
    """Run the stream command on the recording; samples are (wall s, streamed audio s, resident, anonymous)."""
    process = subprocess.Popen(CLI + ["stream", "--file", str(recording), "--fast", "--output-format", "jsonl", "--mode", mode,
                                      "--threads", threads], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    streamed = [0.0]
    finals = []

    def read_events() -> None:  # the stdout pipe must be drained while the process runs
        for line in process.stdout:
            event = json.loads(line)
            streamed[0] = max(streamed[0], event["end"])
            if event["type"] == "final":
                finals.append(event["text"])

    reader = threading.Thread(target=read_events, daemon=True)
    reader.start()
    started = time.monotonic()
    samples = []
    while process.poll() is None:
        try:
            samples.append((time.monotonic() - started, streamed[0], *memory_mib(process.pid)))
        except (FileNotFoundError, KeyError, ProcessLookupError):
            pass
        time.sleep(0.5)
    reader.join()
    stderr = process.stderr.read()
    if process.returncode != 0:
        raise SystemExit(f"speech-s2s stream failed ({process.returncode}): {stderr.strip()[-500:]}")
    return {"seconds": time.monotonic() - started, "samples": samples, "finals": len(finals), "summary": stderr.strip().splitlines()[-3:]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recording", type=Path)
    parser.add_argument("--modes", nargs="+", default=["agreement", "chunked"], choices=["agreement", "chunked"])
    parser.add_argument("--threads", default="1")
    parser.add_argument("--plot", help="write memory against streamed minutes here (PNG)")
    args = parser.parse_args()
    minutes = soundfile.info(str(args.recording)).duration / 60
    runs = {}
    print("| mode | audio | wall | finals | resident MiB: at 10 % / 50 % / end (peak) | anonymous MiB: at 10 % / 50 % / end (peak) |")
    print("|---|---|---|---|---|---|")
    for mode in args.modes:
        run = runs[mode] = stream_sampled(args.recording, mode, args.threads)
        samples = run["samples"]

        def at(share: float, column: int, samples: list = samples) -> float:
            return next((s[column] for s in samples if s[1] >= share * minutes * 60), samples[-1][column])

        cells = [f"{at(0.1, c):.0f} / {at(0.5, c):.0f} / {samples[-1][c]:.0f} ({max(s[c] for s in samples):.0f})" for c in (2, 3)]
        print(f"| {mode} | {minutes:.1f} min | {run['seconds']:.0f} s | {run['finals']} | {cells[0]} | {cells[1]} |")
        for line in run["summary"]:
            print(f"    {mode} summary: {line}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(8, 4))
        for mode, run in runs.items():
            streamed = [s[1] / 60 for s in run["samples"]]
            axis.plot(streamed, [s[2] for s in run["samples"]], label=f"{mode}: resident")
            axis.plot(streamed, [s[3] for s in run["samples"]], linestyle="--", label=f"{mode}: anonymous")
        axis.set_xlabel("audio streamed (minutes)")
        axis.set_ylabel("MiB")
        axis.set_ylim(bottom=0)
        axis.set_title(f"speech-s2s stream --file ({minutes:.0f} min) --fast, memory")
        axis.legend(loc="lower right")
        figure.tight_layout()
        figure.savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
