"""tools/gpu_check.py's CPU dry run: every step passes, the report is written, and a resumed run's weights are bit-equal."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPOSITORY = Path(__file__).parent.parent
STEPS = ["environment", "corpus", "train", "torchrun", "resume", "decode", "throughput"]


def test_the_gpu_check_dry_run_passes_every_step_on_cpu(tmp_path):
    out = tmp_path / "out"
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(REPOSITORY), os.environ.get("PYTHONPATH", "")) if p),
                   "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(REPOSITORY / "tools" / "gpu_check.py"), "--device", "cpu", "--dry-run", "--out", str(out),
                           "--work", str(tmp_path / "work")], env=environment, capture_output=True, text=True, timeout=600)
    report = json.loads((out / "gpu_check.json").read_text())
    failed = {name: step.get("error") for name, step in report["steps"].items() if step["status"] != "passed"}
    assert done.returncode == 0 and not failed, (failed, done.stderr[-2000:])
    assert list(report["steps"]) == STEPS and report["passed"]

    resume = report["steps"]["resume"]
    assert resume["unequal_tensors"] == 0 and resume["max_abs_difference"] == 0.0  # on CPU a resumed run is exactly an unbroken one
    assert 0 < resume["killed_at_batch"] and resume["killed_after_step"] >= report["plan"]["train_steps"] // 2
    assert resume["resumed_from_step"] < report["plan"]["train_steps"]
    torchrun = report["steps"]["torchrun"]
    assert torchrun["collective"]["backend"] == "gloo" and torchrun["unequal_tensors_from_train"] == 0  # one process under torchrun: the same run
    assert report["steps"]["decode"]["greedy_differing_utterances"] == 0
    timed = {(m["search"], m["batch"]) for m in report["steps"]["throughput"]["decoding"]}
    assert timed == {("greedy", 1), ("greedy", 4), ("beam16_lms", 1), ("beam16_lms", 4)}
    assert report["steps"]["throughput"]["training"][0]["audio_seconds_per_second"] > 0

    table = (out / "gpu_check.md").read_text()
    assert "all steps passed" in table and "| resume | passed |" in table and "## Training throughput" in table
