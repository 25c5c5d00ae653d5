#!/usr/bin/env python3
"""Write docs/bad-inputs.md: every kind of bad or odd input, run through the real `speech-s2s`
program, with what the user sees (standard output, standard error, exit status).

    python tools/bad_inputs.py                 # rewrites docs/bad-inputs.md
    python tools/bad_inputs.py --out table.md

Each case makes its input in a temporary folder, runs the installed command line in a fresh
process (as a user would), and records the result verbatim; nothing in the table is written by hand.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parent.parent
SAMPLE = REPO / "speech_s2s" / "assets" / "sample.flac"
MODEL = REPO / "speech_s2s" / "assets" / "model.safetensors"
RATE = 16000


def _speech() -> np.ndarray:
    samples, rate = soundfile.read(SAMPLE, dtype="float32")
    assert rate == RATE
    return samples


def _resampled(rate: int) -> np.ndarray:
    import torch
    import torchaudio

    return torchaudio.functional.resample(torch.from_numpy(_speech()), RATE, rate).numpy()


def _tones(seconds: float, channels: int) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    tone = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t)
    return np.stack([tone * (0.5 + c / 10) for c in range(channels)], axis=1).astype(np.float32)


def _write(folder: Path, name: str, samples: np.ndarray, rate: int = RATE, subtype: str | None = None) -> str:
    path = folder / name
    soundfile.write(path, samples, rate, subtype=subtype)
    return str(path)


def _model_with(folder: Path, name: str, change: Callable[[dict, dict], None]) -> str:
    """A copy of the bundled model with its metadata or tensors changed."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(MODEL), framework="pt") as handle:
        metadata = dict(handle.metadata())
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    change(metadata, tensors)
    path = folder / name
    save_file(tensors, str(path), metadata=metadata)
    return str(path)


def _bad_config(metadata: dict, tensors: dict) -> None:
    metadata["config"] = metadata["config"][:40]


def _unknown_field(metadata: dict, tensors: dict) -> None:
    config = json.loads(metadata["config"])
    config["encoder"]["bogus_option"] = 1
    metadata["config"] = json.dumps(config)


def _wrong_shape(metadata: dict, tensors: dict) -> None:
    tensors["ctc_head.bias"] = tensors["ctc_head.bias"][:5].clone()


NO_RAY = "sys.modules['ray'] = None"  # run as if Ray were not installed


def cases(folder: Path) -> list[tuple]:
    """(what the input is, speech-s2s arguments[, Python run before the program]) for every case in the table."""
    speech = _speech()
    f = folder
    (f / "empty-folder").mkdir()
    (f / "recordings" / "a").mkdir(parents=True)
    (f / "recordings" / "b").mkdir(parents=True)
    shutil.copy(SAMPLE, f / "recordings" / "a" / "s01.flac")
    shutil.copy(SAMPLE, f / "recordings" / "b" / "s01.flac")
    text = f / "notes.wav"
    text.write_text("This is a text file, not audio.\n")
    empty = f / "empty.wav"
    empty.write_bytes(b"")
    whole = Path(_write(f, "whole.wav", speech, subtype="PCM_16"))
    truncated = f / "truncated.wav"
    truncated.write_bytes(whole.read_bytes()[: len(whole.read_bytes()) // 3])
    flac = SAMPLE.read_bytes()
    (f / "truncated.flac").write_bytes(flac[: len(flac) // 3])
    nan = speech.copy()
    nan[5000:5100] = np.nan
    lm_without_config = f / "lm.safetensors"
    import torch
    from safetensors.torch import save_file

    save_file({"weight": torch.zeros(3, 3)}, str(lm_without_config))
    (f / "exists.txt").write_text("earlier results\n")
    hyp, ref = f / "hyp.txt", f / "ref.txt"
    ref.write_text("u1 HELLO WORLD\nu2\n")
    hyp.write_text("u1 hello world\nu2\nu3 extra utterance\n")
    split = f / "corpus" / "dev-clean"  # LibriSpeech layout: one transcript line has no audio
    (split / "11" / "1").mkdir(parents=True)
    shutil.copy(SAMPLE, split / "11" / "1" / "11-1-0000.flac")
    (split / "11" / "1" / "11-1.trans.txt").write_text("11-1-0000 SOME WORDS\n11-1-0001 NO AUDIO FOR THIS LINE\n")
    utterance = {"id": "11-1-0000", "audio": str(SAMPLE), "text": "SOME WORDS", "duration": 2.5, "speaker": "11"}
    (f / "good.jsonl").write_text(json.dumps(utterance) + "\n")
    (f / "missing-audio.jsonl").write_text(json.dumps({**utterance, "id": "11-1-0001", "audio": str(f / "gone.flac")}) + "\n")
    (f / "corrupt-audio.jsonl").write_text(json.dumps(utterance) + "\n" + json.dumps({**utterance, "id": "11-1-0002", "audio": str(text)}) + "\n")
    (f / "not-json.jsonl").write_text("this is not a manifest\n")
    t = "transcribe"
    return [
        ("speech, 16 kHz FLAC (the bundled sample)", [t, str(SAMPLE)]),
        ("speech, 8-bit WAV", [t, _write(f, "pcm8.wav", speech, subtype="PCM_U8")]),
        ("speech, 24-bit WAV", [t, _write(f, "pcm24.wav", speech, subtype="PCM_24")]),
        ("speech, 32-bit float WAV", [t, _write(f, "float.wav", speech, subtype="FLOAT")]),
        *[(f"speech, {rate / 1000:g} kHz", [t, _write(f, f"rate{rate}.wav", _resampled(rate), rate)]) for rate in (8000, 11025, 22050, 44100, 48000)],
        ("speech, 6 channels", [t, _write(f, "six.wav", np.repeat(speech[:, None], 6, axis=1))]),
        ("speech, clipped (gain x8)", [t, _write(f, "clipped.wav", np.clip(speech * 8, -1, 1))]),
        ("a missing file", [t, str(f / "missing.flac")]),
        ("an empty file", [t, str(empty)]),
        ("a text file named .wav", [t, str(text)]),
        ("a WAV cut to a third", [t, str(truncated)]),
        ("a FLAC cut to a third", [t, str(f / "truncated.flac")]),
        ("NaN samples", [t, _write(f, "nan.wav", nan, subtype="FLOAT")]),
        ("3 s of silence", [t, _write(f, "silence.wav", np.zeros(3 * RATE, np.float32))]),
        ("0.01 s of noise", [t, _write(f, "noise.wav", np.random.default_rng(0).normal(0, 0.3, 160).astype(np.float32))]),
        ("one sample", [t, _write(f, "one.wav", np.array([0.4], np.float32))]),
        ("3 s of tones, 6 channels", [t, _write(f, "tones.wav", _tones(3, 6))]),
        ("a folder (searched recursively; two files share a name)", [t, str(f / "recordings")]),
        ("a folder with no audio", [t, str(f / "empty-folder")]),
        ("good and bad files in one batch", [t, str(SAMPLE), str(f / "missing.flac"), str(text)]),
        ("model: config JSON cut short", [t, str(SAMPLE), "--model", _model_with(f, "badjson.safetensors", _bad_config)]),
        ("model: unknown config field", [t, str(SAMPLE), "--model", _model_with(f, "unknown.safetensors", _unknown_field)]),
        ("model: a wrongly shaped tensor", [t, str(SAMPLE), "--model", _model_with(f, "shape.safetensors", _wrong_shape)]),
        ("model: not a model (a text file)", [t, str(SAMPLE), "--model", str(text)]),
        ("LM: safetensors without an LM config", [t, str(SAMPLE), "--beam", "4", "--lm", str(lm_without_config)]),
        ("--lm with greedy decoding", [t, str(SAMPLE), "--beam", "1", "--lm", str(lm_without_config)]),
        ("--ctc-weight with greedy decoding", [t, str(SAMPLE), "--beam", "1", "--ctc-weight", "0.5"]),
        ("--batch-size 0", [t, str(SAMPLE), "--batch-size", "0"]),
        ("--output in a missing folder", [t, str(SAMPLE), "--output", str(f / "no" / "hyp.txt")]),
        ("--output is a folder", [t, str(SAMPLE), "--output", str(f)]),
        ("--output exists (no --resume/--overwrite)", [t, str(SAMPLE), "--output", str(f / "exists.txt")]),
        ("srt with two inputs and no --output-dir", [t, str(SAMPLE), str(whole), "--output-format", "srt"]),
        ("score: empty reference and hypothesis; a hypothesis id not in the reference", ["score", "--ref", str(ref), "--hyp", str(hyp), "--worst", "0"]),
        ("prepare: a transcript line without its audio", ["prepare", str(split), "--out", str(f / "dev.jsonl")]),
        ("prepare --skip-invalid: the same corpus", ["prepare", str(split), "--out", str(f / "dev.jsonl"), "--skip-invalid"]),
        ("features: a manifest line whose audio is gone", ["features", str(f / "missing-audio.jsonl"), "--out", str(f / "fbank")]),
        ("decode: a manifest that is not JSON", ["decode", str(f / "not-json.jsonl"), "--model", str(MODEL), "--output", str(f / "hyp-a.txt")]),
        ("decode: one utterance's audio is a text file", ["decode", str(f / "corrupt-audio.jsonl"), "--model", str(MODEL), "--output", str(f / "hyp-b.txt")]),
        ("stream: --file is missing", ["stream", "--file", str(f / "missing.flac")]),
        ("stream: --file is a text file", ["stream", "--file", str(text)]),
        ("serve: a port out of range", ["serve", "--port", "70000"]),
        ("serve: a TLS certificate that is not one", ["serve", "--certfile", str(text)]),
        ("--ray: good and bad files (a Ray started for the run)", [t, str(SAMPLE), str(f / "missing.flac"), str(text), "--ray", "--workers", "1"]),
        ("--ray without Ray installed", [t, str(SAMPLE), "--ray"], NO_RAY),
        ("--ray with an address where no cluster answers", [t, str(SAMPLE), "--ray", "127.0.0.1:1"]),
        ("--ray auto with no cluster running", [t, str(SAMPLE), "--ray", "auto"]),
        ("--ray given before the inputs", [t, "--ray", str(SAMPLE)]),
        ("--ray with standard input", [t, "-", "--ray"]),
        ("--workers without --ray", [t, str(SAMPLE), "--workers", "4"]),
    ]


SERVE_TOKEN = "s3cret"


def serve_rows() -> list[str]:
    """`speech-s2s serve` with misbehaving clients: what each client is told and the server's line.
    One server (`--token`, one session, 2 s idle timeout) takes them in turn, then SIGTERM."""
    import asyncio
    import contextlib
    import re
    import threading

    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed, InvalidStatus

    command = ["serve", "--port", "0", "--beam", "1", "--token", SERVE_TOKEN, "--max-sessions", "1", "--idle-timeout", "2"]
    server = subprocess.Popen([sys.executable, "-c", program(), *command], stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    log: list[str] = [server.stderr.readline().strip()]
    url = re.search(r"http://[^ ]+/", log[0]).group(0)
    threading.Thread(target=lambda: log.extend(line.strip() for line in server.stderr), daemon=True).start()
    ws_url = url.replace("http", "ws", 1)
    pcm = (np.clip(_speech(), -1, 32767 / 32768) * 32768).astype("<i2").tobytes()

    async def told(path: str, *sends, headers: dict | None = None, origin: str | None = None, vanish: bool = False) -> str:
        try:
            async with connect(ws_url + path, additional_headers=headers, origin=origin, max_size=None) as ws:
                with contextlib.suppress(ConnectionClosed):
                    for message in sends:
                        await ws.send(message)
                    if vanish:
                        await asyncio.sleep(0.3)
                        ws.transport.abort()
                        return "(gone)"
                    async for _ in ws:
                        pass
        except InvalidStatus as refused:
            return f"HTTP {refused.response.status_code}: {refused.response.body.decode().strip()}"
        return f"close {ws.close_code}: {ws.close_reason}"

    async def full() -> str:
        async with connect(f"{ws_url}ws?token={SERVE_TOKEN}") as holder:
            await holder.send(bytes(3200))
            return await told(f"ws?token={SERVE_TOKEN}")

    token = f"?token={SERVE_TOKEN}"
    eof = json.dumps({"eof": True})
    cases = [
        ("speech, then {\"eof\": true}", lambda: told(f"ws{token}", pcm, eof)),
        ("no token", lambda: told("ws")),
        ("a wrong token", lambda: told("ws", headers={"Authorization": "Bearer guess"})),
        ("a page from another origin", lambda: told(f"ws{token}", origin="https://elsewhere.example")),
        ("malformed JSON", lambda: told(f"ws{token}", '{"eof": tru')),
        ("an unknown message", lambda: told(f"ws{token}", '{"reset": 1}')),
        ("text where audio is expected", lambda: told(f"ws{token}", "hello")),
        ("a frame over the limit (2 MiB)", lambda: told(f"ws{token}", bytes(2 << 20))),
        ("an odd number of bytes", lambda: told(f"ws{token}", pcm[:4001])),
        ("?rate=abc", lambda: told(f"ws{token}&rate=abc")),
        ("nothing sent", lambda: told(f"ws{token}")),
        ("one more than --max-sessions", full),
        ("gone mid-utterance", lambda: told(f"ws{token}", pcm[: len(pcm) // 4], vanish=True)),
        ("Vosk: config after audio", lambda: told(f"vosk{token}", bytes(3200), json.dumps({"config": {"sample_rate": 8000}}))),
    ]
    rows = []
    for what, case in cases:
        before = len(log)
        seen = asyncio.run(case())
        time.sleep(0.5)
        said = [line.split(" INFO ", 1)[-1] for line in log[before:] if " closed " in line or " refused" in line]
        rows.append(f"| {what} | {_cell(seen)} | {_cell(re.sub(r'127.0.0.1:[0-9]+', 'CLIENT', said[0] if said else ''))} |")
        print(f"  serve: {what}: {seen}", file=sys.stderr)
    with urllib.request.urlopen(url + "health") as response:
        assert response.status == 200
    for path in ("/../pyproject.toml", "/server.py"):
        try:
            urllib.request.urlopen(url.rstrip("/") + path)
            seen = "200"
        except urllib.error.HTTPError as error:
            seen = f"HTTP {error.code}: {error.read().decode().strip()}"
        rows.append(f"| GET {path} | {_cell(seen)} |  |")

    async def shutdown() -> str:
        async with connect(f"{ws_url}ws{token}") as ws:
            await ws.send(pcm[:32000])
            server.terminate()
            with contextlib.suppress(ConnectionClosed):
                async for _ in ws:
                    pass
        return f"close {ws.close_code}: {ws.close_reason}"

    before = len(log)
    seen = asyncio.run(shutdown())
    status = server.wait(30)
    time.sleep(0.2)
    said = [re.sub(r"127.0.0.1:[0-9]+", "CLIENT", line.split(" INFO ", 1)[-1]) for line in log[before:]]
    rows.append(f"| SIGTERM to the server during a connection | {_cell(seen)} | {_cell(chr(10).join(said))} (exit {status}) |")
    return rows




# What the table cannot show, as it needs a process killed mid-run (tests/test_ray_transcribe.py does it).
RAY_FAULTS = "\n".join([
    "",
    "## --ray: a worker lost mid-run",
    "",
    "A decoder or reader that dies (`kill -9`, the kernel's OOM killer, a lost node) is restarted by Ray, which runs its call",
    "again: nothing is missing from the output and nothing is written twice. At the end one line says so, and the exit status",
    "is unchanged (tests/test_ray_transcribe.py kills a decoder mid-run):",
    "",
    "`speech-s2s: warning: 1 of 2 Ray workers were lost and restarted; Ray ran their work again`",
    "",
    "A decoding call whose worker dies every time it runs (say, on a file that always exhausts its node's memory: Ray runs it",
    "three times, and the driver sends it twice) fails the files it held, each named in one line, and the others are still",
    "transcribed (exit status 1). Each death also counts against the call queued behind it on the same worker, which may fail",
    "with it. For instance:",
    "",
    "`speech-s2s: error: long.flac: decoding failed on the Ray cluster (its worker was lost each of the 6 times it ran)`",
    "",
    "Ray's own notices about lost workers go to standard error with `--verbose` only, never into the transcripts on standard",
    "output. A cluster with token authentication (new Ray clusters have it by default) refuses a driver that names its",
    "address without the token:",
    "",
    "`speech-s2s: error: --ray head-node:6379: the cluster refused this machine's token; it uses token authentication: "
    "export RAY_AUTH_MODE=token (and RAY_AUTH_TOKEN, or the head node's ~/.ray/auth_token)`",
    "",
])


def program(prelude: str = "") -> str:
    """`python -c` code that runs the command line as `speech-s2s`, after `prelude` (e.g. NO_RAY)."""
    return f"import sys; {prelude + '; ' if prelude else ''}from speech_s2s.cli.main import main; sys.argv[0] = 'speech-s2s'; sys.exit(main())"


def run(arguments: list[str], folder: Path, prelude: str = "") -> tuple[int, str, str]:
    command = [sys.executable, "-c", program(prelude), *arguments]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}, timeout=300)
    clean = lambda text: text.replace(str(folder) + "/", "").replace(str(folder), ".").replace(str(REPO) + "/", "").strip()  # noqa: E731
    return done.returncode, clean(done.stdout), clean(done.stderr)


def _cell(text: str) -> str:
    return "<br>".join(f"`{line}`" for line in text.replace("|", "\\|").splitlines()) if text else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "bad-inputs.md"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        for what, arguments, *prelude in cases(folder):
            status, out, err = run(arguments, folder, *prelude)
            shown = " ".join(shlex.quote(a.replace(str(folder) + "/", "").replace(str(folder), ".").replace(str(REPO) + "/", "")) for a in arguments)
            rows.append(f"| {what} | `speech-s2s {shown}` | {_cell(out)} | {_cell(err)} | {status} |")
            print(f"{status:>3}  {what}", file=sys.stderr)
    Path(args.out).write_text(
        "# What speech-s2s does with bad and odd inputs\n\n"
        f"Generated by `python tools/bad_inputs.py` on {datetime.date.today()} from the real program with the bundled "
        "model; paths shortened to the file name. Exit status: 0 all transcribed, 1 some input failed (the others are "
        "still transcribed), 2 bad options (nothing was done), 130 interrupted.\n\n"
        "| input | command | standard output | standard error | exit |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n" + RAY_FAULTS + "\n"
        "## `speech-s2s serve`: misbehaving clients\n\n"
        f"One server (`speech-s2s serve --beam 1 --token {SERVE_TOKEN} --max-sessions 1 --idle-timeout 2`) takes each client in "
        "turn; what the client is told (WebSocket close code and reason, or the HTTP refusal) and the one line the server "
        "logs. The server serves on after each. A client that stops reading is dropped by the keep-alive (1011 after at most "
        "40 s without a pong; tests/test_serve.py). Close codes: 1000 normal, 1001 going away (idle, shutdown), 1003 a message "
        "this endpoint does not take, 1007 malformed data, 1008 refused by policy, 1009 too big, 1011 internal error, "
        "1013 server full.\n\n"
        "| client | what it is told | the server's line |\n|---|---|---|\n" + "\n".join(serve_rows()) + "\n"
    )
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
