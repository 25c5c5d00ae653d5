#!/usr/bin/env python3
"""`speech-s2s stream` through a real (PulseAudio) microphone: end of speech -> final, on the wall clock.

A private PulseAudio server gets a null sink whose monitor is the default source, so what is played
into the sink is what the microphone hears. `speech-s2s stream --output-format jsonl` listens to it;
this script writes held-out utterances (trimmed, a pause after each) to `pacat` in real time, so it
knows when each utterance's speech was heard (its place in the audio, plus what still waited in the
pipe to pacat when it was written), and notes when each final line arrives. The difference includes
everything a user waits for: pacat's playback buffer (`--latency-msec`, counted against us),
PulseAudio and PortAudio's capture buffers, the queue, the decoding and the pipe back.

    python tools/bench_stream_microphone.py --split $DATA/evalcorpus/test-tts --utterances 20
"""

from __future__ import annotations

import argparse
import array
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serve import client_audio  # noqa: E402

from speech_s2s.data.corpus import read_librispeech  # noqa: E402
from speech_s2s.frontend.audio import SAMPLE_RATE  # noqa: E402

WRITE_SECONDS = 0.01  # pacat is fed 10 ms at a time, each when it would have been spoken


def _unread_bytes(fd: int) -> int:
    """Bytes written to a pipe and not yet read from it (Linux: FIONREAD works on either end)."""
    count = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, count)
    return count[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", required=True, help="held-out utterances (LibriSpeech layout)")
    parser.add_argument("--utterances", type=int, default=20)
    parser.add_argument("--stream-args", default="", help="more options for speech-s2s stream (e.g. '--beam 1')")
    parser.add_argument("--playback-latency-ms", type=int, default=20, help="pacat's buffer (counted in the latency)")
    args = parser.parse_args()
    missing = [tool for tool in ("pulseaudio", "pactl", "pacat") if shutil.which(tool) is None]
    if missing:
        parser.error(f"needs {', '.join(missing)} (apt-get install pulseaudio pulseaudio-utils libportaudio2)")

    audio, ends, _ = client_audio(read_librispeech(args.split)[: args.utterances])
    pcm = (np.clip(audio, -1, 32767 / 32768) * 32768).astype("<i2").tobytes()
    folder = Path(tempfile.mkdtemp(prefix="s2s-pulse-"))
    env = {**os.environ, "XDG_RUNTIME_DIR": str(folder), "PULSE_COOKIE": str(folder / "cookie"), "HOME": str(folder),
           "OMP_WAIT_POLICY": "PASSIVE"}
    subprocess.run(["pulseaudio", "-D", "-n", "--exit-idle-time=-1", "-L", "module-native-protocol-unix",
                    "-L", "module-null-sink sink_name=s2s_mic rate=16000 channels=1"], env=env, check=True, capture_output=True, timeout=20)
    stream = player = None
    try:
        subprocess.run(["pactl", "set-default-source", "s2s_mic.monitor"], env=env, check=True, timeout=10)
        subprocess.run(["pactl", "set-default-sink", "s2s_mic"], env=env, check=True, timeout=10)
        player = subprocess.Popen(["pacat", "--playback", "--raw", "--rate=16000", "--channels=1", "--format=s16le",
                                   f"--latency-msec={args.playback_latency_ms}"], stdin=subprocess.PIPE, env=env)
        silence = bytes(2 * round(WRITE_SECONDS * SAMPLE_RATE))
        stream = subprocess.Popen([sys.executable, "-m", "speech_s2s.cli", "stream", "--output-format", "jsonl", *args.stream_args.split()],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        finals, started = [], [None]

        def read_events() -> None:
            for line in stream.stdout:
                event = json.loads(line)
                if event["type"] == "final" and event["text"] and started[0] is not None:
                    finals.append((time.monotonic() - started[0], event))

        threading.Thread(target=read_events, daemon=True).start()
        ready = time.monotonic()
        while "listening on" not in stream.stderr.readline():  # silence meanwhile keeps the null sink awake
            player.stdin.write(silence)
            if time.monotonic() - ready > 120 or stream.poll() is not None:
                raise SystemExit("speech-s2s stream did not start")
        step = 2 * round(WRITE_SECONDS * SAMPLE_RATE)
        started[0] = time.monotonic()
        # `event.start/end` are on the stream's own clock (its first sample); ours starts here, a
        # moment later, so finals are matched to utterances by order of their end, not by time.
        # An end of speech is heard once the bytes before it in the pipe to pacat have been played:
        # pacat reads its input only as fast as PulseAudio plays it, so audio written before its stream
        # ran stays queued in the pipe for the whole run (50-155 ms in runs of 2026-12-07, a steady
        # offset each), which the schedule alone counted against the recogniser.
        end_samples, end_times, queued = [round(end * SAMPLE_RATE) for end in ends], [], []
        for i in range(0, len(pcm), step):
            time.sleep(max(0.0, started[0] + i / 2 / SAMPLE_RATE - time.monotonic()))
            player.stdin.write(pcm[i : i + step])
            player.stdin.flush()
            while len(end_times) < len(end_samples) and end_samples[len(end_times)] < (i + step) // 2:
                # bytes still in the pipe, less this write's (it may hold audio after the end): errs against us
                waiting = max(0, _unread_bytes(player.stdin.fileno()) - step) / 2 / SAMPLE_RATE
                queued.append(waiting)
                end_times.append(end_samples[len(end_times)] / SAMPLE_RATE + waiting)
        time.sleep(2.0)
        stream.send_signal(signal.SIGINT)
        summary = stream.stderr.read().strip().splitlines()[-1]
        stream.wait(30)
    finally:
        for process in (stream, player):
            if process is not None and process.poll() is None:
                process.kill()
        subprocess.run(["pulseaudio", "--kill"], env=env, timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
    arrivals = [arrived for arrived, _ in finals]
    # each end of speech: the first final to arrive after it
    latencies = [min(a for a in arrivals if a > end) - end for end in end_times if any(a > end for a in arrivals)]
    print(f"{len(finals)} finals for {len(ends)} utterances; end of speech -> final on the wall clock: median "
          f"{1000 * np.median(latencies):.0f} ms, p90 {1000 * np.percentile(latencies, 90):.0f} ms "
          f"(pacat buffer {args.playback_latency_ms} ms included; audio still in the pipe to pacat at an end of speech: "
          f"median {1000 * np.median(queued):.0f} ms, added to when it was heard)")
    print(f"stream's own summary: {summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
