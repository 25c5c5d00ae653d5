#!/usr/bin/env python3
"""Concurrent live clients against `speech-s2s serve`: final latency, partial lag and memory per session.

Starts the server (a subprocess, the given decoding options), then for each client count N runs N
WebSocket clients at once. Each streams its own utterances of a held-out split in real time, in
50 ms chunks as a browser's microphone does, with a pause after each utterance; the clients start
a random fraction of a second apart. Every utterance's speech ends where its trimmed audio ends, so
a client knows when each end of speech was captured and measures, on its own clock:

- end of speech -> final: when the final covering it arrived, less when its last sample was captured;
- partial lag: when a partial arrived, less when the last sample it covers (`end`) was captured;
- final WER against the references, and "starved": a client with any final later than 5 s.

Memory per session is the server's peak resident memory (with its decoding processes) during the
run, less that before it (model and LMs loaded in each process), over N.

    python tools/bench_serve.py --split $DATA/evalcorpus/test-tts --clients 1 2 4 8 --plot docs/serve-latency.png
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speech_s2s.data.corpus import read_librispeech  # noqa: E402
from speech_s2s.evaluation.scoring import score  # noqa: E402
from speech_s2s.frontend.audio import SAMPLE_RATE, load_audio  # noqa: E402

CHUNK_SECONDS = 0.05  # what the page's worklet posts
PAUSE_SECONDS = 1.0
STARVED_SECONDS = 5.0


def trimmed(audio: np.ndarray, floor_db: float = -40.0) -> np.ndarray:
    """The audio from its first to its last 10 ms frame within `floor_db` of its loudest."""
    frames = len(audio) // 160
    rms = np.sqrt(np.mean(audio[: frames * 160].reshape(frames, 160) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(20 * np.log10(rms / rms.max()) > floor_db)
    return audio[loud[0] * 160 : (loud[-1] + 1) * 160]


def client_audio(utterances: list) -> tuple[np.ndarray, list[float], list[str]]:
    """The utterances, trimmed, each followed by a pause; the second at which each one's speech ends."""
    pieces, ends, texts, position = [np.zeros(SAMPLE_RATE // 2, dtype=np.float32)], [], [], SAMPLE_RATE // 2
    for utterance in utterances:
        speech = trimmed(load_audio(utterance.audio))
        pieces += [speech, np.zeros(round(PAUSE_SECONDS * SAMPLE_RATE), dtype=np.float32)]
        position += len(speech)
        ends.append(position / SAMPLE_RATE)
        position += round(PAUSE_SECONDS * SAMPLE_RATE)
        texts.append(utterance.text)
    return np.concatenate(pieces), ends, texts


async def run_client(url: str, audio: np.ndarray, delay: float) -> dict:
    from websockets.asyncio.client import connect

    await asyncio.sleep(delay)
    pcm = (np.clip(audio, -1, 32767 / 32768) * 32768).astype("<i2").tobytes()
    step = 2 * round(CHUNK_SECONDS * SAMPLE_RATE)
    finals, partial_lags = [], []
    async with connect(url.replace("http", "ws", 1) + "ws") as ws:
        started = time.monotonic()  # sample 0 was captured now

        async def read() -> None:
            async for message in ws:
                event, now = json.loads(message), time.monotonic() - started
                if event["type"] == "final" and event["text"]:
                    finals.append((now, event))
                elif event["type"] == "partial":
                    partial_lags.append(now - event["end"])

        reader = asyncio.create_task(read())
        for i in range(0, len(pcm), step):
            await asyncio.sleep(max(0.0, started + (i + step) / 2 / SAMPLE_RATE - time.monotonic()))  # captured by then
            await ws.send(pcm[i : i + step])
        await ws.send(json.dumps({"eof": True}))
        await reader
    return {"finals": finals, "partial_lags": partial_lags}


def final_latencies(finals: list, ends: list[float]) -> list[float]:
    """For each end of speech, the arrival of the first final that covers it, less the end."""
    latencies = []
    for end in ends:
        covering = [arrived for arrived, event in finals if event["start"] <= end <= event["end"] + 0.3]
        if covering:
            latencies.append(covering[0] - end)
    return latencies


def resident_mib(pid: int) -> float:
    """Resident memory of the server and its decoding processes (its children), MiB."""
    total = 0.0
    for process in [pid, *_children(pid)]:
        with contextlib.suppress(OSError, AttributeError), open(f"/proc/{process}/status") as status:
            total += int(re.search(r"VmRSS:\s+(\d+)", status.read()).group(1)) / 1024
    return total


def _children(pid: int) -> list[int]:
    """Children of any of the process's threads (the decoding processes are started from a pool's)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", required=True, help="held-out utterances (LibriSpeech layout)")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--utterances", type=int, default=10, help="per client (each client its own)")
    parser.add_argument("--serve-args", default="", help="more options for speech-s2s serve (e.g. '--beam 1')")
    parser.add_argument("--plot", help="PNG of final latency by client count")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    most = max(args.clients)
    utterances = read_librispeech(args.split)[: most * args.utterances]
    if len(utterances) < most * args.utterances:
        parser.error(f"{args.split} has {len(utterances)} utterances; {most} clients need {most * args.utterances}")
    audios = [client_audio(utterances[k * args.utterances : (k + 1) * args.utterances]) for k in range(most)]
    command = [sys.executable, "-m", "speech_s2s.cli", "serve", "--port", "0", "--max-sessions", str(most), *args.serve_args.split()]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    rows = []
    try:
        line = server.stderr.readline()
        url = re.search(r"http://[^ ]+/", line).group(0)
        threading.Thread(target=server.stderr.read, daemon=True).start()  # the log, drained
        idle_mib = resident_mib(server.pid)
        rng = random.Random(0)
        for n in args.clients:
            peak = [idle_mib]
            sampling = threading.Event()

            def sample(peak: list = peak, sampling: threading.Event = sampling) -> None:
                while not sampling.wait(0.2):
                    peak[0] = max(peak[0], resident_mib(server.pid))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()

            async def clients(n: int = n) -> list:
                return await asyncio.gather(*(run_client(url, audios[k][0], rng.uniform(0, 1)) for k in range(n)), return_exceptions=True)

            results = asyncio.run(clients())
            sampling.set()
            sampler.join()
            latencies, lags, per_client, hypotheses, references = [], [], [], [], []
            dropped = [k for k, result in enumerate(results) if isinstance(result, BaseException)]
            for k in dropped:
                print(f"  client {k} was dropped: {results[k]}", file=sys.stderr)
            for k, result in enumerate(results):
                if k in dropped:
                    continue
                _, ends, texts = audios[k]
                mine = final_latencies(result["finals"], ends)
                latencies += mine
                lags += result["partial_lags"]
                per_client.append(float(np.median(mine)) if mine else float("inf"))
                hypotheses.append(" ".join(event["text"] for _, event in result["finals"]))
                references.append(" ".join(texts))
                missing = len(ends) - len(mine)
                if missing:
                    print(f"  client {k}: {missing} of {len(ends)} utterances got no final", file=sys.stderr)
            if not latencies:
                print(f"{n} clients: no final came back (every client dropped)", flush=True)
                continue
            wer = score({str(k): r for k, r in enumerate(references)}, {str(k): h for k, h in enumerate(hypotheses)}).wer
            row = {
                "clients": n, "final_p50_ms": 1000 * float(np.median(latencies)), "final_p90_ms": 1000 * float(np.percentile(latencies, 90)),
                "partial_lag_p50_ms": 1000 * float(np.median(lags)), "partial_lag_p90_ms": 1000 * float(np.percentile(lags, 90)),
                "worst_client_median_ms": 1000 * max(per_client), "starved": sum(1 for x in latencies if x > STARVED_SECONDS),
                "finals": len(latencies), "utterances": n * args.utterances, "dropped_clients": len(dropped), "wer": 100 * wer,
                "mib_per_session": (peak[0] - idle_mib) / n, "idle_mib": idle_mib,
            }
            rows.append(row)
            print(f"{n} clients: final {row['final_p50_ms']:.0f} / {row['final_p90_ms']:.0f} ms (p50 / p90), worst client median "
                  f"{row['worst_client_median_ms']:.0f} ms, partial lag {row['partial_lag_p50_ms']:.0f} / {row['partial_lag_p90_ms']:.0f} ms, "
                  f"{row['finals']} of {row['utterances']} finals, {len(dropped)} clients dropped, {row['starved']} later than {STARVED_SECONDS:g} s, "
                  f"WER {row['wer']:.2f} %, "
                  f"{row['mib_per_session']:.0f} MiB per session (server idle {idle_mib:.0f} MiB)", flush=True)
    finally:
        server.terminate()
        server.wait(30)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(6, 3.5))
        counts = [row["clients"] for row in rows]
        axis.plot(counts, [row["final_p50_ms"] for row in rows], "o-", label="end of speech → final, median")
        axis.plot(counts, [row["final_p90_ms"] for row in rows], "s--", label="… 90th percentile")
        axis.plot(counts, [row["partial_lag_p50_ms"] for row in rows], "^-", label="partial lag, median")
        axis.axhline(1000, color="grey", lw=0.8, ls=":")
        axis.set_xscale("log", base=2)
        axis.set_xticks(counts, [str(c) for c in counts])
        axis.set_yscale("log")
        axis.set_xlabel("concurrent real-time clients (2 cores)")
        axis.set_ylabel("ms")
        axis.set_title(f"speech-s2s serve {args.serve_args or '(default decoding)'}")
        axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(args.plot, dpi=120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
