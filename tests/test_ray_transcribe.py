"""`speech-s2s transcribe --ray` (speech_s2s/cluster/ray_runner.py) on a local Ray with 2 CPUs: the same
bytes as one process, resumable, a worker killed mid-run, bad files; and one line where Ray is missing."""

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from conftest import MINI_CORPUS

from speech_s2s.builder import BUNDLED_SAMPLE
from speech_s2s.cli.main import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray for the module (starting one takes seconds); each run joins it, as `--ray auto` would."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Path:
    """Short files, a silent one, and a 40 s one cut into many segments: segments of neighbouring files share batches."""
    folder = tmp_path_factory.mktemp("recordings")
    sentences = [soundfile.read(path, dtype="float32")[0] for path in sorted(MINI_CORPUS.rglob("*.flac"))]
    sample = soundfile.read(BUNDLED_SAMPLE, dtype="float32")[0]
    for path in sorted(MINI_CORPUS.rglob("*.flac")):
        shutil.copy(path, folder / path.name)
    shutil.copy(BUNDLED_SAMPLE, folder / "sample.flac")
    soundfile.write(folder / "quiet.flac", sample * 0.05, 16000)  # scaled into the model's level band before decoding
    soundfile.write(folder / "silence.wav", np.zeros(2 * 16000, np.float32), 16000)
    pause = np.zeros(int(0.7 * 16000), np.float32)
    soundfile.write(folder / "long.flac", np.concatenate([part for _ in range(3) for s in [sample, *sentences] for part in (s, pause)]), 16000)
    return folder


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture(scope="module")
def one_process(recordings, tmp_path_factory) -> dict:
    """What one process writes (txt with the defaults; jsonl in batches of 2), and which segments
    (file id, segment index) it decoded together in the jsonl run, to compare with."""
    from speech_s2s.transcribe import Recognizer

    folder = tmp_path_factory.mktemp("one-process")
    outputs: dict = {"calls": []}
    real_decode_queue = Recognizer._decode_queue

    def recorded(self, queue):
        outputs["calls"].append([(state.input.id, index) for state, index, _ in queue])
        return real_decode_queue(self, queue)

    for name, flags in (("txt", []), ("jsonl", ["--output-format", "jsonl", "--batch-size", "2"])):
        with pytest.MonkeyPatch.context() as patch:
            if name == "jsonl":
                patch.setattr(Recognizer, "_decode_queue", recorded)
            assert main(["transcribe", str(recordings), *flags, "--output", str(folder / name)]) == 0
        outputs[name] = (folder / name).read_text()
    return outputs


def test_ray_writes_the_same_bytes_as_one_process(ray_cluster, recordings, one_process, tmp_path, capsys, monkeypatch):
    from speech_s2s.cluster import ray_runner

    out = tmp_path / "hyp.txt"
    status, stdout, err = _run(["transcribe", str(recordings), "--output", str(out), "--ray", "--workers", "2"], capsys)
    assert (status, stdout, err) == (0, "", "")
    assert out.read_text() == one_process["txt"]
    assert len(out.read_text().splitlines()) == 8
    # jsonl (segment and word times) on standard output, in batches of 2: many calls, spread over both workers,
    # each with the very segments one process decodes together (a segment's restored text can depend on its batch)
    real_submit, calls = ray_runner.RayTranscriber._submit, []

    def recorded(self, batch, pending):
        calls.append([(state.input.id, index) for state, index, _, _ in batch])
        yield from real_submit(self, batch, pending)

    monkeypatch.setattr(ray_runner.RayTranscriber, "_submit", recorded)
    status, stdout, err = _run(["transcribe", str(recordings), "--output-format", "jsonl", "--batch-size", "2", "--ray"], capsys)
    assert (status, err) == (0, "") and stdout == one_process["jsonl"]
    assert calls == [call for call in one_process["calls"] if call] and len(calls) == 4


def test_an_interrupted_ray_run_resumes_as_one_process_does(ray_cluster, recordings, tmp_path, capsys, monkeypatch):
    from speech_s2s import writers

    real_lines, written = writers.lines, []

    def ctrl_c_at_the_third_file(transcript, output_format):
        written.append(transcript.id)
        if len(written) == 3:
            raise KeyboardInterrupt
        return real_lines(transcript, output_format)

    out = tmp_path / "ray.txt"
    monkeypatch.setattr(writers, "lines", ctrl_c_at_the_third_file)
    status, _, err = _run(["transcribe", str(recordings), "--output", str(out), "--ray", "--workers", "1"], capsys)
    assert status == 130 and "interrupted after 2 of 8 inputs (add --resume to continue)" in err
    monkeypatch.setattr(writers, "lines", real_lines)
    with open(out, "a") as handle:
        handle.write("long and your bro")  # a line cut short by the kill is redone, not kept
    reference = tmp_path / "one.txt"
    reference.write_text(out.read_text())
    status, _, err = _run(["transcribe", str(recordings), "--output", str(out), "--resume", "--ray", "--workers", "1"], capsys)
    assert status == 0 and err == "speech-s2s: resuming: 2 of 8 inputs already done\n"
    assert main(["transcribe", str(recordings), "--output", str(reference), "--resume"]) == 0
    assert out.read_text() == reference.read_text()
    assert [line.split()[0] for line in out.read_text().splitlines()] == sorted(
        path.name.split(".")[0] for path in recordings.iterdir())  # every file once


def test_a_worker_killed_mid_run_is_restarted_and_nothing_is_lost_or_doubled(ray_cluster, recordings, one_process, tmp_path, capsys, monkeypatch):
    from speech_s2s.cluster import ray_runner

    real_submit, killed = ray_runner.RayTranscriber._submit, []

    def submit_then_kill(self, batch, pending):
        yield from real_submit(self, batch, pending)
        if not killed:  # the first call is on the first worker: kill it while the call is sent or running
            time.sleep(0.2)
            os.kill(self.pids[0], signal.SIGKILL)
            killed.append(self.pids[0])

    monkeypatch.setattr(ray_runner.RayTranscriber, "_submit", submit_then_kill)
    out = tmp_path / "hyp.jsonl"
    argv = ["transcribe", str(recordings), "--output-format", "jsonl", "--batch-size", "2", "--output", str(out), "--ray", "--workers", "2"]
    status, _, err = _run(argv, capsys)
    assert killed and status == 0
    assert err == "speech-s2s: warning: 1 of 2 Ray workers were lost and restarted; Ray ran their work again\n"
    assert out.read_text() == one_process["jsonl"]


def test_a_bad_file_is_named_in_one_line_and_the_rest_is_transcribed(ray_cluster, recordings, tmp_path, capsys):
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"not audio" * 100)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    cut = tmp_path / "cut.flac"
    cut.write_bytes((recordings / "long.flac").read_bytes()[:200_000])  # fails part-way, after some of its segments are queued
    inputs = [str(broken), str(recordings / "sample.flac"), str(empty), str(cut), str(tmp_path / "missing.flac"), str(recordings / "long.flac")]
    expected = _run(["transcribe", *inputs, "--batch-size", "2"], capsys)
    assert expected[0] == 1 and len(expected[1].splitlines()) == 2
    assert expected[2].splitlines()[-1] == "speech-s2s: error: 4 of 6 inputs could not be transcribed"
    assert _run(["transcribe", *inputs, "--batch-size", "2", "--ray", "--workers", "1"], capsys) == expected


def test_ray_options_that_cannot_work_are_one_line_before_any_work(ray_cluster, tmp_path, capsys):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    sample = str(BUNDLED_SAMPLE)
    for argv, message in (
        ([sample, "--workers", "2"], "--workers applies only with --ray"),
        (["--ray", sample], f"--ray took {sample!r} as the Ray cluster's address: give the inputs before --ray"),
        (["-", "--ray"], "--ray cannot read standard input (-)"),
        ([sample, "--ray", f"127.0.0.1:{port}"], f"--ray 127.0.0.1:{port}: no Ray cluster answers there (connection refused)"),
    ):
        status, out, err = _run(["transcribe", *argv], capsys)
        assert (status, out) == (2, ""), argv
        assert err.startswith(f"speech-s2s: error: {message}") and err.count("\n") == 1, err


def _fresh_interpreter(code: str, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)


def test_without_ray_it_is_one_line_and_the_default_path_never_imports_it(tmp_path):
    no_ray = ("import sys\nsys.modules['ray'] = None  # as if Ray were not installed\nfrom speech_s2s.cli.main import main\n"
              f"sys.exit(main(['transcribe', {str(BUNDLED_SAMPLE)!r}, '--ray']))\n")
    done = _fresh_interpreter(no_ray, tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "speech-s2s: error: --ray needs Ray: pip install 'speech_s2s[ray]'\n"
    plain = ("import sys\nfrom speech_s2s.cli.main import main\n"
             f"status = main(['transcribe', {str(BUNDLED_SAMPLE)!r}, '--beam', '1'])\n"
             "assert not [m for m in sys.modules if m == 'ray' or m.startswith(('ray.', 'speech_s2s.cluster'))], 'Ray was imported'\n"
             "sys.exit(status)\n")
    done = _fresh_interpreter(plain, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("sample ")
