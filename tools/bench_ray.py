#!/usr/bin/env python3
"""Throughput and memory of `speech-s2s transcribe --ray` (1 and 2 workers) against one process, on the same files.

    python tools/bench_ray.py --corpus data/evalcorpus/test-tts --minutes 10 --out exp/bench-ray
    python tools/bench_ray.py --driver-ceiling 2000 1      # the driver alone: stand-in workers that do no work

Each run is the real command line in a fresh process (a local Ray started for it, as a user gets with
a bare --ray), timed from start to exit: start-up included. Two sets of the same audio: the corpus's
short files as they are, and the same files joined into recordings of about `--long-minutes` each (with
0.5 s pauses). A run on the bundled 2.5 s sample gives each command's fixed cost (start-up, loading,
shut-down), so the marginal rate is audio / (wall - fixed). Peak memory is each process's high-water
resident set (VmHWM), polled from /proc: the driver, each decoder and reader actor, and Ray's own
processes together. Each command runs `--repeats` times, in turn with the others, and the fastest run
is reported, with the CPU time other processes on the machine took meanwhile. Every reported run's
output is checked byte for byte against one process's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "speech_s2s" / "assets" / "sample.flac"
RATE = 16000
TICKS = os.sysconf("SC_CLK_TCK")


def _proc(pid: int, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_text(errors="replace")
    except OSError:
        return ""


def _parent(pid: int) -> int:
    stat = _proc(pid, "stat")
    return int(stat.rsplit(")", 1)[1].split()[1]) if stat else 0


class MemoryWatch(threading.Thread):
    """Polls the peak resident set of a process and all its descendants, and the root's CPU time."""

    def __init__(self, root: int, every: float = 0.2):
        super().__init__(daemon=True)
        self.root, self.every = root, every
        self.peaks: dict[int, tuple[str, int]] = {}  # pid -> (role, peak kB)
        self.cpu: dict[int, float] = {}  # pid -> CPU seconds, as last seen
        self.root_cpu = 0.0
        self.done = threading.Event()

    def _descends(self, pid: int) -> bool:
        for _ in range(8):
            if pid == self.root:
                return True
            pid = _parent(pid)
            if pid <= 1:
                return False
        return False

    def run(self) -> None:
        while not self.done.is_set():
            for entry in os.listdir("/proc"):
                if not entry.isdigit() or not self._descends(int(entry)):
                    continue
                pid = int(entry)
                status = _proc(pid, "status")
                peak = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
                command = _proc(pid, "cmdline").replace("\0", " ")
                role = ("driver" if pid == self.root else "decoder" if command.startswith("ray::Decoder")
                        else "reader" if command.startswith("ray::Reader") else "ray")
                if peak:
                    self.peaks[pid] = (role, max(peak, self.peaks.get(pid, ("", 0))[1]))
                stat = _proc(pid, "stat")
                if stat:
                    fields = stat.rsplit(")", 1)[1].split()
                    self.cpu[pid] = (int(fields[11]) + int(fields[12])) / TICKS
            self.root_cpu = self.cpu.get(self.root, self.root_cpu)
            self.done.wait(self.every)

    def summary(self) -> dict[str, list[int]]:
        roles: dict[str, list[int]] = {}
        for role, peak in self.peaks.values():
            roles.setdefault(role, []).append(peak // 1024)
        return roles


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores), from /proc/stat."""
    user, nice, system, _, _, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICKS


def run(arguments: list[str], workers: int | None) -> tuple[float, dict[str, list[int]], float, float]:
    """(wall seconds, peak MB per role, driver CPU seconds, CPU seconds other processes took meanwhile) of one command line."""
    command = [sys.executable, "-m", "speech_s2s.cli", "transcribe", *arguments] + (["--ray", "--workers", str(workers)] if workers else [])
    start, busy = time.perf_counter(), _machine_busy()
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}, stderr=subprocess.PIPE, text=True)
    watch = MemoryWatch(process.pid)
    watch.start()
    _, err = process.communicate()
    wall, busy = time.perf_counter() - start, _machine_busy() - busy
    watch.done.set()
    watch.join()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)}: exit {process.returncode}\n{err}")
    return wall, watch.summary(), watch.root_cpu, max(0.0, busy - sum(watch.cpu.values()))


def make_sets(corpus: Path, minutes: float, long_minutes: float, folder: Path) -> dict[str, tuple[list[str], float]]:
    """The corpus's first files (sorted) up to `minutes` of audio, and the same audio joined into long recordings."""
    files, seconds = [], 0.0
    for path in sorted(corpus.rglob("*.flac")):
        files.append(str(path))
        seconds += soundfile.info(path).duration
        if seconds >= minutes * 60:
            break
    joined, part, pause = [], [], np.zeros(RATE // 2, np.float32)
    for path in files:
        audio, rate = soundfile.read(path, dtype="float32")
        assert rate == RATE, f"{path}: {rate} Hz"
        part += [audio, pause]
        if sum(len(a) for a in part) >= long_minutes * 60 * RATE or path == files[-1]:
            joined.append(str(folder / f"long{len(joined):02d}.flac"))
            soundfile.write(joined[-1], np.concatenate(part), RATE)
            part = []
    long_seconds = sum(soundfile.info(path).duration for path in joined)
    return {"short files": (files, seconds), "long files": (joined, long_seconds)}


def driver_ceiling(files: int, segments: int, workers: int) -> str:
    """The driver's own cost: RayTranscriber over `files` inputs of `segments` segments each, with stand-in
    readers and decoders that do no work (so the driver, Ray's calls and its object store are all that is timed)."""
    import logging

    import ray

    from speech_s2s.cluster import ray_runner
    from speech_s2s.frontend.vad import Segment as AudioSegment
    from speech_s2s.input_files import InputFile
    from speech_s2s.transcribe import Segment, TranscribeOptions

    class StandInReader:
        def __init__(self, *_):
            pass

        def ready(self):
            return os.getpid()

        def read(self, path, shown, chunk):
            samples = np.zeros(RATE * 4, np.float32)  # 4 s: what a segment of speech weighs in the object store
            for first in range(0, segments, chunk):
                count = min(chunk, segments - first)
                yield ray_runner._Chunk(count)
                yield [AudioSegment(i * RATE * 5, samples) for i in range(first, first + count)]
            yield ray_runner._FileEnd(segments * RATE * 5, None)

    class StandInDecoder:
        def __init__(self, *_):
            pass

        def ready(self):
            return os.getpid(), None

        def decode(self, picks, *chunks):
            return [Segment(0.0, 4.0, "a") for _ in picks]

    ray.init(num_cpus=max(2, workers), include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    ray_runner._ReaderActor = ray.remote(num_cpus=0)(StandInReader)
    ray_runner._DecoderActor = ray.remote(StandInDecoder)
    runner = ray_runner.RayTranscriber(ray_runner.RecognizerConfig(), TranscribeOptions(), workers, 1)
    runner.start()
    inputs = [InputFile(f"/none/{n}.flac", str(n)) for n in range(files)]
    cpu, start = time.process_time(), time.perf_counter()
    done = sum(1 for _ in runner.transcribe_files(inputs))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - start
    runner.close()
    ray.shutdown()
    assert done == files
    return (f"{files} files of {segments} segments, {workers} stand-in workers: {wall / files * 1000:.1f} ms wall and "
            f"{cpu / files * 1000:.1f} ms of the driver's CPU per file ({cpu / (files * segments) * 1000:.2f} ms per segment)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, help="a folder of 16 kHz FLAC files (searched recursively)")
    parser.add_argument("--minutes", type=float, default=10.0, help="audio to transcribe per run")
    parser.add_argument("--long-minutes", type=float, default=2.5, help="length of the joined recordings")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="--workers values to run with --ray")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each command; the fastest is reported (a shared machine is noisy)")
    parser.add_argument("--out", type=Path, default=None, help="keep the sets and outputs here (default: a temporary folder)")
    parser.add_argument("--driver-ceiling", type=int, nargs=2, metavar=("FILES", "SEGMENTS"),
                        help="instead: time the driver alone over FILES stand-in inputs of SEGMENTS segments each (--corpus unused)")
    args = parser.parse_args()
    if args.driver_ceiling:
        print(driver_ceiling(*args.driver_ceiling, max(args.workers)))
        return 0
    if args.corpus is None:
        parser.error("--corpus is needed (or --driver-ceiling)")
    folder = args.out or Path(tempfile.mkdtemp(prefix="bench-ray-"))
    folder.mkdir(parents=True, exist_ok=True)
    sets = make_sets(args.corpus, args.minutes, args.long_minutes, folder)
    configs: list[tuple[str, int | None]] = [("one process", None)] + [(f"--ray --workers {n}", n) for n in args.workers]

    fixed, fixed_cpu = {}, {}
    for name, workers in configs:
        fixed[name], _, fixed_cpu[name], _ = run([str(SAMPLE), "--output", str(folder / "fixed.txt"), "--overwrite"], workers)
        print(f"fixed cost, {name}: {fixed[name]:.1f} s, driver CPU {fixed_cpu[name]:.1f} s", file=sys.stderr)
    rows = []
    for set_name, (files, seconds) in sets.items():
        listing = folder / f"{set_name.split()[0]}.list"
        listing.write_text("".join(f"{path}\n" for path in files))
        best: dict[str, tuple] = {}
        walls: dict[str, list[float]] = {}
        for _ in range(args.repeats):  # the configurations in turn, so that a disturbance does not fall on one alone
            for name, workers in configs:
                output = folder / f"{set_name.split()[0]}-{workers or 0}.txt"
                result = run(["--file-list", str(listing), "--output", str(output), "--overwrite"], workers)
                walls.setdefault(name, []).append(result[0])
                print(f"{set_name}, {name}: {result[0]:.1f} s, others took {result[3]:.1f} CPU s", file=sys.stderr)
                if name not in best or result[0] < best[name][0]:
                    best[name] = (*result, output.read_bytes())
        outputs = [best[name][4] for name, _ in configs]
        for name, _ in configs:
            wall, memory, driver_cpu, others, _ = best[name]
            rate = seconds / wall
            marginal = seconds / max(wall - fixed[name], 1e-9)
            shown = "; ".join(f"{role} {'/'.join(map(str, sorted(peaks)))}" for role, peaks in sorted(memory.items()) if role != "ray")
            ray_total = sum(memory.get("ray", []))
            rows.append(f"| {set_name} ({len(files)}, {seconds / 60:.1f} min) | {name} | {wall:.1f} ({', '.join(f'{w:.0f}' for w in walls[name])}) | "
                        f"{rate:.1f} | {marginal:.1f} | {shown}{f'; Ray processes {ray_total} in all' if ray_total else ''} | {driver_cpu:.1f} | "
                        f"{others / wall / (os.cpu_count() or 1) * 100:.0f} % |")
        same = all(output == outputs[0] for output in outputs)
        print(f"{set_name}: outputs {'identical' if same else 'DIFFER'}", file=sys.stderr)
        if not same:
            return 1
    print("| files | command | wall s, best (all) | audio h per wall h (x real time) | marginal x real time | peak RSS, MB | driver CPU s | "
          "other processes' CPU |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\nfixed cost per command (the bundled 2.5 s sample): " + ", ".join(
        f"{name} {seconds:.1f} s (driver CPU {fixed_cpu[name]:.1f} s)" for name, seconds in fixed.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
