#!/usr/bin/env python3
"""Long-input benchmark for `speech-s2s transcribe`: one long recording and a long file list.

1. Joins utterances of LibriSpeech-layout splits (with seeded pauses of 0.3-1.2 s) into one
   recording of --minutes, transcribes it whole, and compares its WER with the WER of the same
   utterances transcribed one file each.
2. Transcribes a list of --files utterance files (repeating the splits' files if needed) and
   records when the first result line appears.
Both runs are separate `speech-s2s` processes whose memory is sampled every 0.25 s; the results
table is printed and a memory-over-time plot is written.

    python tools/bench_long.py --split $DATA/evalcorpus/test-tts --split $DATA/evalcorpus/dev-tts \
        --work $DATA/bench-long --minutes 60 --files 1000 --plot docs/long-input-memory.png
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from speech_s2s.data.corpus import read_librispeech  # noqa: E402
from speech_s2s.evaluation.scoring import read_kaldi_text, score  # noqa: E402

RATE = 16000
CLI = [sys.executable, "-c", "import sys; from speech_s2s.cli.main import main; sys.argv[0] = 'speech-s2s'; sys.exit(main())"]


def memory_mib(pid: int) -> tuple[float, float]:
    """(resident, anonymous) MiB of a process; anonymous leaves out the shared libraries' pages."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["RssAnon"].split()[0]) / 1024


def run_sampled(arguments: list[str], first_line_of: Path | None = None) -> dict:
    """Run speech-s2s, sampling its memory; note when `first_line_of` first holds a full line."""
    if first_line_of is not None:
        first_line_of.unlink(missing_ok=True)  # a previous run's output must not count as this one's first line
    started = time.monotonic()
    process = subprocess.Popen(CLI + arguments, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    samples, first = [], None
    while process.poll() is None:
        try:
            samples.append((time.monotonic() - started, *memory_mib(process.pid)))
        except (FileNotFoundError, KeyError, ProcessLookupError):
            pass
        if first is None and first_line_of is not None and first_line_of.is_file() and "\n" in first_line_of.read_text():
            first = time.monotonic() - started
        time.sleep(0.25)
    stderr = process.stderr.read()
    if process.returncode != 0:
        raise SystemExit(f"speech-s2s failed ({process.returncode}): {stderr.strip()[-500:]}")
    return {"seconds": time.monotonic() - started, "samples": samples, "first": first}


def build_long(utterances, minutes: float, work: Path, seed: int) -> tuple[Path, str, list]:
    rng = np.random.default_rng(seed)
    path = work / "long.flac"
    used, total, texts = [], 0.0, []
    with soundfile.SoundFile(path, "w", RATE, 1, subtype="PCM_16") as out:
        while total < minutes * 60:
            for utterance in utterances:
                audio, rate = soundfile.read(utterance.audio, dtype="float32")
                assert rate == RATE, utterance.audio
                pause = np.zeros(int(rng.uniform(0.3, 1.2) * RATE), np.float32)
                out.write(np.concatenate([audio, pause]))
                total += (len(audio) + len(pause)) / RATE
                texts.append(utterance.text)
                used.append(utterance)
                if total >= minutes * 60:
                    break
    return path, " ".join(texts), used


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", action="append", required=True, help="LibriSpeech-layout split directory (repeatable)")
    parser.add_argument("--work", required=True, help="folder for the recording, lists and outputs")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--threads", default="1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", help="write memory over time here (PNG)")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    utterances = [u for split in args.split for u in read_librispeech(split)]
    long_path, long_text, used = build_long(utterances, args.minutes, work, args.seed)
    minutes = soundfile.info(str(long_path)).duration / 60
    common = ["--threads", args.threads]

    # Per-utterance WER of exactly the utterances in the recording (each once).
    unique = list({u.id: u for u in used}.values())
    (work / "utts.list").write_text("".join(f"{u.audio}\n" for u in unique))
    (work / "utts.ref.txt").write_text("".join(f"{u.id} {u.text}\n" for u in unique))
    per_utt = run_sampled(["transcribe", "--file-list", str(work / "utts.list"), "--output", str(work / "utts.hyp.txt"), "--overwrite", *common])
    utt_score = score(read_kaldi_text(work / "utts.ref.txt"), read_kaldi_text(work / "utts.hyp.txt"))
    # The same speech as one recording; each utterance counts as often as it occurs.
    long_run = run_sampled(["transcribe", str(long_path), "--output", str(work / "long.hyp.txt"), "--overwrite", *common])
    long_hyp = read_kaldi_text(work / "long.hyp.txt")["long"]
    long_score = score({"long": long_text}, {"long": long_hyp})
    by_id = read_kaldi_text(work / "utts.hyp.txt")
    weighted = score({f"{i}-{u.id}": u.text for i, u in enumerate(used)}, {f"{i}-{u.id}": by_id.get(u.id, "") for i, u in enumerate(used)})
    # A long file list.
    listing = [utterances[i % len(utterances)].audio for i in range(args.files)]
    (work / "many.list").write_text("".join(f"{path}\n" for path in listing))
    many = run_sampled(["transcribe", "--file-list", str(work / "many.list"), "--output", str(work / "many.hyp.txt"), "--overwrite", *common],
                       first_line_of=work / "many.hyp.txt")

    def peaks(run: dict) -> str:
        rss = max(s[1] for s in run["samples"])
        anon = max(s[2] for s in run["samples"])
        return f"{rss:.0f} MiB resident ({anon:.0f} MiB anonymous)"

    def drift(run: dict) -> str:
        settled = [s[1] for s in run["samples"] if s[0] > 0.2 * run["seconds"]]
        return f"{min(settled):.0f}-{max(settled):.0f} MiB after the first 20 %"

    print(f"| long recording: {minutes:.1f} min, {len(used)} utterances joined | {long_run['seconds']:.0f} s | peak {peaks(long_run)}, {drift(long_run)} | "
          f"WER {100 * long_score.wer:.2f} % vs {100 * weighted.wer:.2f} % per utterance ({long_score.wer / max(weighted.wer, 1e-9):.3f}x) |")
    print(f"| the same {len(unique)} utterances, one file each | {per_utt['seconds']:.0f} s | peak {peaks(per_utt)} | WER {100 * utt_score.wer:.2f} % |")
    print(f"| file list: {args.files} files | {many['seconds']:.0f} s | peak {peaks(many)}, {drift(many)} | first result after {many['first']:.1f} s |")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(8, 4))
        for run, label in ((long_run, f"one {minutes:.0f}-minute recording"), (many, f"{args.files} files")):
            t = [s[0] for s in run["samples"]]
            axis.plot(t, [s[1] for s in run["samples"]], label=f"{label}: resident")
            axis.plot(t, [s[2] for s in run["samples"]], linestyle="--", label=f"{label}: anonymous")
        axis.set_xlabel("seconds since start")
        axis.set_ylabel("MiB")
        axis.set_ylim(bottom=0)
        axis.set_title("speech-s2s transcribe: memory over time")
        axis.legend(fontsize=8)
        figure.tight_layout()
        figure.savefig(args.plot, dpi=100)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
