"""Check the GPU path in one command: training (fp32, bf16, torchrun), kill and resume, decoding, throughput.

Steps, each a function below with its own time budget; a failing step is recorded and the others still run:

  environment   torch, CUDA, cuDNN, the GPU, the TF32 flags, the third-party modules training imports
  corpus        manifests of a small LibriSpeech-layout corpus (train and dev splits)
  train         `speech-s2s train` (the real entry point, a subprocess) with the bundled model's shape,
                a few hundred updates in fp32 and in bf16 autocast
  torchrun      the same under `torchrun --standalone --nproc_per_node 1`; then the collectives training uses
                (NCCL on CUDA, gloo on CPU) in a process group of one: with one process `distributed.setup`
                joins no group, so that training never touches NCCL, and one GPU cannot hold two NCCL ranks
  resume        SIGKILL a run mid-epoch after a checkpoint past its middle, `--resume` it, and compare its
                final weights with an unbroken run's (on CUDA a second unbroken run measures how far
                non-deterministic kernels alone move the weights)
  decode        `speech-s2s decode` of the dev set on the device and on the CPU, greedy and the default beam
                search with both LMs, transcripts compared
  throughput    training updates on synthetic LibriSpeech-like batches at the frame budgets and model sizes of
                recipes/librispeech/conf/las_100h.toml and las_960h.toml (fp32 and bf16), and the bundled
                model's decoding real-time factor at batch 1 and batched

Writes OUT/gpu_check.json (every step's status, figures and error) and OUT/gpu_check.md after every step;
the exit status is 0 when every step passed. Progress goes to stderr.

Prepare on the CPU machine, once (about a minute; 17 MiB of corpus, 4.6 MiB of wheels, both ignored by git):

    python tools/make_tts_corpus.py --engines espeak --out .gpucheck/corpus --train-hours 0.25 \\
        --dev-utts 20 --test-utts 0 --seed 0 --jobs 2
    tools/fetch_gpu_wheels.sh        # soundfile, cffi, pycparser, jiwer, rapidfuzz for Python 3.12; how to refresh: see it

On the GPU machine (one H100/H200, Python 3.12, torch 2.11; about 5 minutes), carrying .gpucheck and .whl:

    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && \\
    export PYTHONPATH=/tmp/site:$PWD && python3 tools/gpu_check.py --device cuda --corpus .gpucheck/corpus --out $OUT

The CPU dry run (tests/test_gpu_check.py; tiny model, tests/data/mini, seconds per step):

    python tools/gpu_check.py --device cpu --dry-run --out /tmp/gpu-check
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
MINI_CORPUS = REPOSITORY / "tests" / "data" / "mini"
CONF_DIR = REPOSITORY / "recipes" / "librispeech" / "conf"
FRAMES_PER_SECOND = 100  # the features' frame rate (10 ms hop)
CHARS_PER_SECOND = 15  # LibriSpeech read speech: about 2.7 words/s of 5.5 characters with their spaces
JSON_NAME, MARKDOWN_NAME = "gpu_check.json", "gpu_check.md"


@dataclass(frozen=True)
class Plan:
    """How big each step is: `FULL` on a GPU, `DRY` for the CPU dry run of CI."""

    train_steps: int  # updates per training run
    max_frames: int  # padded frames per training batch
    checkpoint_every: int
    warmup_steps: int
    dev_max_utterances: int  # validated at each epoch's end
    log_every: int  # updates per logged training loss
    train_copies: int  # the train split's utterances this many times over (the dry run's epochs outlast its updates: no validation)
    model: str  # "bundled": the shipped model's shape; "tiny": conf/tiny.toml's
    throughput_configs: tuple[tuple[str, int], ...]  # (conf name, padded frames per batch)
    utterance_seconds: float  # length of each synthetic training utterance
    warmup_updates: int
    timed_updates: int
    decode_batch: int  # batched decoding (las_100h's decode_batch_size)
    rtf_utterances: int  # dev utterances timed for the real-time factor
    budgets: dict[str, float]  # seconds per step; the whole check stays within their sum


FULL = Plan(
    train_steps=200, max_frames=4000, checkpoint_every=20, warmup_steps=50, dev_max_utterances=10, log_every=10, train_copies=1, model="bundled",
    throughput_configs=(("las_100h", 20000), ("las_960h", 30000)), utterance_seconds=16.0, warmup_updates=3, timed_updates=10,
    decode_batch=16, rtf_utterances=20,
    budgets={"environment": 20, "corpus": 20, "train": 100, "torchrun": 60, "resume": 130, "decode": 70, "throughput": 80},  # 8 minutes
)
DRY = Plan(
    train_steps=8, max_frames=150, checkpoint_every=2, warmup_steps=2, dev_max_utterances=1, log_every=1, train_copies=8, model="tiny",
    throughput_configs=(("tiny", 600),), utterance_seconds=1.5, warmup_updates=1, timed_updates=2,
    decode_batch=4, rtf_utterances=4,
    budgets={"environment": 60, "corpus": 30, "train": 150, "torchrun": 150, "resume": 240, "decode": 120, "throughput": 120},  # a busy CI machine
)


class StepTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise StepTimeout in this (main) thread after `seconds`; subprocesses started inside are killed by `run`."""
    def expire(signum: int, frame: object) -> None:
        raise StepTimeout(f"over its budget of {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def progress(message: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Check:
    """The run's settings, working folder and results; `record` rewrites the JSON and Markdown."""

    def __init__(self, args: argparse.Namespace):
        self.device: str = args.device
        self.dry_run: bool = args.dry_run
        self.plan = DRY if args.dry_run else FULL
        if args.train_steps:
            self.plan = dataclasses.replace(self.plan, train_steps=args.train_steps, checkpoint_every=max(1, args.train_steps // 10))
        self.corpus = Path(args.corpus) if args.corpus else MINI_CORPUS
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="gpu_check-"))
        self.work.mkdir(parents=True, exist_ok=True)
        self.threads = 1 if args.dry_run else min(8, os.cpu_count() or 1)
        self.results: dict = {"device": self.device, "dry_run": self.dry_run, "corpus": str(self.corpus), "plan": dataclasses.asdict(self.plan),
                              "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()), "commit": _commit(), "steps": {}}
        self.manifests: dict[str, Path] = {}  # "train", "dev" -> manifest
        self.trained: dict[str, Path] = {}  # precision -> experiment of a finished `train` step run (the resume step's unbroken run)

    @property
    def environment(self) -> dict[str, str]:
        """For subprocesses: this repository first on the path (ahead of an installed copy), as many threads as the check uses."""
        path = os.pathsep.join(p for p in (str(REPOSITORY), os.environ.get("PYTHONPATH", "")) if p)
        return {**os.environ, "PYTHONPATH": path, "OMP_NUM_THREADS": str(self.threads), "PYTHONUNBUFFERED": "1"}

    def record(self, name: str, result: dict) -> None:
        self.results["steps"][name] = result
        self.write()

    def write(self) -> None:
        self.results["passed"] = all(r["status"] == "passed" for r in self.results["steps"].values())
        (self.out / JSON_NAME).write_text(json.dumps(self.results, indent=1, default=str))
        (self.out / MARKDOWN_NAME).write_text(markdown(self.results))


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPOSITORY, capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None  # the GPU machine gets the working tree without .git


# ---------------------------------------------------------------------------------------------------- subprocesses


def run(command: list[str], check: Check, log: Path, timeout: float) -> int:
    """Run `command` in its own process group with its output in `log`; kill the group on timeout or StepTimeout."""
    progress(f"  $ {' '.join(command[:8])}{' ...' if len(command) > 8 else ''}")
    with open(log, "w") as handle:
        process = subprocess.Popen(command, cwd=REPOSITORY, env=check.environment, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise StepTimeout(f"{' '.join(command[:6])} ran over {timeout:.0f} s") from None
        finally:
            _kill_group(process)


def _kill_group(process: subprocess.Popen) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def tail(log: Path, lines: int = 3) -> str:
    """The last lines of a log, joined into one line (tqdm's carriage returns split too)."""
    text = log.read_text(errors="replace").replace("\r", "\n") if log.is_file() else ""
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())[-600:] if lines else ""


# ---------------------------------------------------------------------------------------------------- steps


def step_environment(check: Check) -> dict:
    import torch

    result: dict = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda, "cpus": os.cpu_count(),
                    "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}
    for module in ("numpy", "soundfile", "jiwer", "rapidfuzz", "cffi", "safetensors", "matplotlib", "tqdm", "torchaudio"):
        spec = importlib.util.find_spec(module)
        result[f"module_{module}"] = _version(module) if spec else "missing"
    missing = [m for m in ("soundfile", "jiwer") if result[f"module_{m}"] == "missing"]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not importable: install the wheels of tools/fetch_gpu_wheels.sh")
    if check.device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda but torch.cuda.is_available() is False")
        properties = torch.cuda.get_device_properties(check.device)
        result.update(gpu=properties.name, gpu_memory_gib=round(properties.total_memory / 2**30, 1), multiprocessors=properties.multi_processor_count,
                      bf16_supported=torch.cuda.is_bf16_supported(), nccl=str(torch.cuda.nccl.version()),
                      # fp32 LSTMs in cuDNN may run in TF32 when cudnn.allow_tf32 is on (the default): it bounds how close GPU decoding gets to CPU's
                      cudnn_allow_tf32=torch.backends.cudnn.allow_tf32, matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32)
    result["summary"] = f"torch {result['torch']}, {result.get('gpu', 'CPU')}"
    return result


def _version(module: str) -> str:
    try:
        return getattr(__import__(module), "__version__", "?")
    except Exception as error:  # an importable spec whose import fails (a missing shared library) is what this step exists to catch
        return f"import failed: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"


def step_corpus(check: Check) -> dict:
    """Manifests of the corpus's train and dev splits (a corpus root holding train-*/dev-*, or one split used for both)."""
    from speech_s2s.cli.main import main
    from speech_s2s.data.corpus import read_manifest

    root = check.corpus
    splits = {kind: sorted(p for p in root.glob(f"{kind}-*") if p.is_dir()) for kind in ("train", "dev")}
    chosen = {kind: found[0] if found else root for kind, found in splits.items()}
    result: dict = {"bytes": sum(f.stat().st_size for f in root.rglob("*") if f.is_file())}
    for kind, split in chosen.items():
        manifest = check.work / f"{kind}.jsonl"
        with contextlib.redirect_stdout(sys.stderr):
            if main(["prepare", str(split), "--out", str(manifest)]) != 0:
                raise RuntimeError(f"speech-s2s prepare {split} failed")
        utterances = read_manifest(manifest)
        if kind == "train" and check.plan.train_copies > 1:
            utterances = [dataclasses.replace(u, id=f"{u.id}-{copy}") for copy in range(check.plan.train_copies) for u in utterances]
            manifest.write_text("".join(json.dumps(dataclasses.asdict(u)) + "\n" for u in utterances))
        check.manifests[kind] = manifest
        result[f"{kind}_split"] = split.name
        result[f"{kind}_utterances"] = len(utterances)
        result[f"{kind}_seconds"] = round(sum(u.duration for u in utterances), 1)
    result["summary"] = (f"train {result['train_utterances']} utts ({result['train_seconds']:.0f} s), dev {result['dev_utterances']} utts "
                         f"({result['dev_seconds']:.0f} s), {result['bytes'] / 2**20:.1f} MiB")
    return result


def _model_config_file(check: Check) -> Path:
    """The shape every training run uses, as --config JSON: the bundled model's, or conf/tiny.toml's (with dropout, so resuming must restore the RNG)."""
    from speech_s2s.builder import BUNDLED_MODEL
    from speech_s2s.model.files import read_model_info

    path = check.work / "model_config.json"
    if not path.is_file():
        if check.plan.model == "bundled":
            config = read_model_info(BUNDLED_MODEL).config
        else:
            config = _recipe_config("tiny").model
            config = dataclasses.replace(config, encoder=dataclasses.replace(config.encoder, dropout=0.1),
                                         decoder=dataclasses.replace(config.decoder, dropout=0.1))
        path.write_text(json.dumps(dataclasses.asdict(config)))
    return path


def _recipe_config(name: str):
    """recipes/librispeech/config.py's RecipeConfig for conf/NAME.toml (the recipe is no package: loaded by path)."""
    spec = importlib.util.spec_from_file_location("librispeech_recipe_config", CONF_DIR.parent / "config.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module.load_config(str(CONF_DIR / f"{name}.toml"))


def _needs_manifests(check: Check) -> None:
    if not check.manifests:
        raise RuntimeError("no manifests: the corpus step failed")


def train_command(check: Check, exp: Path, precision: str, launcher: list[str] | None = None) -> list[str]:
    plan = check.plan
    command = [*(launcher or [sys.executable, "-m"]), "speech_s2s.cli", "train", "--train", str(check.manifests["train"]), "--dev", str(check.manifests["dev"]),
               "--exp", str(exp), "--config", str(_model_config_file(check)), "--max-frames", str(plan.max_frames), "--max-steps", str(plan.train_steps),
               "--epochs", "1000", "--checkpoint-every", str(plan.checkpoint_every), "--warmup-steps", str(plan.warmup_steps),
               "--dev-max-utterances", str(plan.dev_max_utterances), "--sampling-probability", "0.2", "--seed", "0", "--device", check.device,
               "--precision", precision, "--feature-dir", str(check.work / "features"), "--train-config", str(_train_config_file(check))]
    return [*command, "--threads", str(check.threads)]


def _train_config_file(check: Check) -> Path:
    """TrainConfig fields the command line has no option for."""
    path = check.work / "train_config.json"
    path.write_text(json.dumps({"log_every": max(1, min(check.plan.log_every, check.plan.train_steps // 5))}))
    return path


def _precisions(check: Check) -> list[str]:
    return ["fp32", "bf16"] if check.device.startswith("cuda") else ["fp32"]  # the CLI refuses bf16 off CUDA


def _finished_run(exp: Path, rc: int, log: Path, steps: int) -> dict:
    """What a training run left: its final step and the first and last logged training loss."""
    import math

    import torch

    from speech_s2s.training.checkpoint import CHECKPOINT

    if rc != 0:
        raise RuntimeError(f"exit status {rc}: {tail(log)}")
    saved = torch.load(exp / CHECKPOINT, map_location="cpu", weights_only=True)
    state, history = saved["state"], json.loads(saved["history"])
    losses = [h["train_loss"] for h in history if "train_loss" in h]
    dev = [h for h in history if "dev_wer" in h]
    if state["step"] != steps:
        raise RuntimeError(f"stopped at step {state['step']}, not {steps}")
    if not losses:
        raise RuntimeError("no training loss logged")
    if not all(math.isfinite(x) for x in losses):
        raise RuntimeError(f"training loss not finite: {losses[-3:]}")
    return {"step": state["step"], "epoch": state["epoch"], "first_loss": round(losses[0], 4), "last_loss": round(losses[-1], 4),
            "dev_wer": round(dev[-1]["dev_wer"], 4) if dev else None, "gpu_rng_saved": _gpu_rng_saved(saved)}


def step_train(check: Check) -> dict:
    _needs_manifests(check)
    result: dict = {}
    for precision in _precisions(check):
        exp = check.work / f"train-{precision}"
        started = time.monotonic()
        rc = run(train_command(check, exp, precision), check, check.work / f"train-{precision}.log", timeout=check.plan.budgets["train"])
        seconds = time.monotonic() - started
        run_result = _finished_run(exp, rc, check.work / f"train-{precision}.log", check.plan.train_steps)
        result[precision] = {**run_result, "seconds": round(seconds, 1), "updates_per_second": round(check.plan.train_steps / seconds, 2)}
        check.trained[precision] = exp
        progress(f"  {precision}: {seconds:.1f} s, loss {run_result['first_loss']} -> {run_result['last_loss']}")
    if not check.device.startswith("cuda"):
        result["note"] = "bf16 autocast needs CUDA: fp32 only"
    result["summary"] = "; ".join(f"{p}: loss {result[p]['first_loss']} -> {result[p]['last_loss']}, {result[p]['seconds']} s" for p in _precisions(check))
    return result


def step_torchrun(check: Check) -> dict:
    _needs_manifests(check)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "1"]
    exp = check.work / "torchrun"
    log = check.work / "torchrun.log"
    started = time.monotonic()
    precision = "bf16" if check.device.startswith("cuda") else "fp32"
    rc = run(train_command(check, exp, precision, [*launcher, "-m"]), check, log, timeout=check.plan.budgets["torchrun"])
    result: dict = {"precision": precision, **_finished_run(exp, rc, log, check.plan.train_steps), "seconds": round(time.monotonic() - started, 1)}
    if precision in check.trained:  # the same command without torchrun: equal on CPU; on CUDA within non-deterministic kernels' reach
        from speech_s2s.training.loop import LAST_MODEL

        difference, unequal = _difference(_weights(check.trained[precision] / LAST_MODEL), _weights(exp / LAST_MODEL))
        result.update(max_abs_difference_from_train=difference, unequal_tensors_from_train=unequal)
    result["collective"] = collective_probe(check.device)
    result["summary"] = f"{precision}: loss {result['first_loss']} -> {result['last_loss']}; {result['collective']['backend']} all-reduce and gather passed"
    return result


def collective_probe(device: str) -> dict:
    """Join a process group of one in this process (NCCL on CUDA, gloo on CPU, as `distributed.setup` picks) and run
    the collectives training uses: one GPU cannot hold two NCCL ranks, and torchrun with one process joins no group."""
    import socket

    import torch
    import torch.distributed as dist

    backend = "nccl" if device.startswith("cuda") else "gloo"
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    if device.startswith("cuda"):
        torch.cuda.set_device(device if ":" in device else "cuda:0")
    dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        value = torch.tensor([2.0], device=device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        gathered: list = [None]
        dist.all_gather_object(gathered, {"rank": 0})
        box = ["from rank 0"]
        dist.broadcast_object_list(box, src=0)
        dist.barrier()
    finally:
        dist.destroy_process_group()
    if float(value.item()) != 2.0 or gathered != [{"rank": 0}] or box != ["from rank 0"]:
        raise RuntimeError(f"{backend} collectives returned {value.item()}, {gathered}, {box}")
    return {"backend": backend, "all_reduce": float(value.item()), "all_gather_object": True, "broadcast_object_list": True, "barrier": True}


def _weights(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def _difference(a: dict, b: dict) -> tuple[float, int]:
    """(max abs difference over all tensors, number of tensors not bit-equal)."""
    import torch

    if a.keys() != b.keys():
        raise RuntimeError(f"different tensors: {sorted(a.keys() ^ b.keys())[:5]}")
    worst, unequal = 0.0, 0
    for name in a:
        if not torch.equal(a[name], b[name]):
            unequal += 1
            worst = max(worst, float((a[name].double() - b[name].double()).abs().max()))
    return worst, unequal


def kill_after_middle_checkpoint(process: subprocess.Popen, checkpoint: Path, middle: int) -> dict | None:
    """Poll the run's checkpoint; SIGKILL the run once one at step >= middle, inside an epoch, is on disk.
    Returns that checkpoint's state, or None if the run ended first."""
    import torch

    seen = None
    while process.poll() is None:
        try:
            stat = checkpoint.stat()
            key = (stat.st_ino, stat.st_mtime_ns)
        except FileNotFoundError:
            key = None
        if key is not None and key != seen:
            seen = key
            try:
                state = torch.load(checkpoint, map_location="cpu", weights_only=True, mmap=True)["state"]
            except (FileNotFoundError, RuntimeError, EOFError):  # replaced while being opened: read the next one
                continue
            if state["step"] >= middle and state["batch_in_epoch"] > 0:
                process.send_signal(signal.SIGKILL)
                process.wait()
                return state
        time.sleep(0.005)
    return None


def step_resume(check: Check) -> dict:
    """Unbroken run(s) against a run SIGKILLed mid-epoch and resumed. Bit-equal weights pass; on CUDA a difference
    passes only when a second unbroken run differs from the first by as much (non-deterministic kernels)."""
    import torch

    from speech_s2s.training.checkpoint import CHECKPOINT
    from speech_s2s.training.loop import LAST_MODEL

    _needs_manifests(check)
    precision = "bf16" if check.device.startswith("cuda") else "fp32"
    deadline = time.monotonic() + check.plan.budgets["resume"]
    left = lambda: max(1.0, deadline - time.monotonic())  # noqa: E731
    unbroken = []
    for name in ["unbroken-a", "unbroken-b"] if check.device.startswith("cuda") else ["unbroken-a"]:
        if name == "unbroken-a" and precision in check.trained:  # the train step ran this very command
            unbroken.append(_weights(check.trained[precision] / LAST_MODEL))
            continue
        exp = check.work / f"resume-{name}"
        rc = run(train_command(check, exp, precision), check, check.work / f"resume-{name}.log", timeout=left())
        _finished_run(exp, rc, check.work / f"resume-{name}.log", check.plan.train_steps)
        unbroken.append(_weights(exp / LAST_MODEL))

    killed = check.work / "resume-killed"
    log = check.work / "resume-killed.log"
    command = train_command(check, killed, precision)
    progress(f"  $ {' '.join(command[:8])} ... (to be killed after step {check.plan.train_steps // 2})")
    with open(log, "w") as handle:
        process = subprocess.Popen(command, cwd=REPOSITORY, env=check.environment, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        try:  # the step's time limit (main) interrupts the polling; the run is killed either way
            at = kill_after_middle_checkpoint(process, killed / CHECKPOINT, check.plan.train_steps // 2)
        finally:
            _kill_group(process)
    if at is None:
        raise RuntimeError(f"the run ended (exit status {process.returncode}) before a checkpoint past step {check.plan.train_steps // 2} "
                           f"inside an epoch: {tail(log)}")
    on_disk = torch.load(killed / CHECKPOINT, map_location="cpu", weights_only=True)
    progress(f"  killed after the checkpoint at step {at['step']} (epoch {at['epoch']}, batch {at['batch_in_epoch']}); "
             f"resuming from step {on_disk['state']['step']}")
    rc = run([*command, "--resume"], check, check.work / "resume-resumed.log", timeout=left())
    _finished_run(killed, rc, check.work / "resume-resumed.log", check.plan.train_steps)
    resumed = _weights(killed / LAST_MODEL)

    difference, unequal = _difference(unbroken[0], resumed)
    result: dict = {"precision": precision, "killed_after_step": at["step"], "killed_in_epoch": at["epoch"], "killed_at_batch": at["batch_in_epoch"],
                    "resumed_from_step": on_disk["state"]["step"], "gpu_rng_in_checkpoint": _gpu_rng_saved(on_disk),
                    "max_abs_difference": difference, "unequal_tensors": unequal, "tensors": len(resumed)}
    if len(unbroken) > 1:
        noise, noise_unequal = _difference(unbroken[0], unbroken[1])
        result.update(unbroken_runs_max_abs_difference=noise, unbroken_runs_unequal_tensors=noise_unequal)
    else:
        noise = 0.0
    if check.device.startswith("cuda") and not result["gpu_rng_in_checkpoint"]:
        raise RuntimeError("the checkpoint holds no CUDA random state")
    if unequal and not (noise > 0 and difference <= 10 * noise):
        raise RuntimeError(f"resumed weights differ from the unbroken run's: {unequal} tensors, max abs {difference:.3g} "
                           f"(two unbroken runs: max abs {noise:.3g})")
    result["summary"] = (f"killed after step {at['step']} (epoch {at['epoch']}, batch {at['batch_in_epoch']}), resumed: "
                         + ("bit-equal weights" if not unequal else f"max abs {difference:.3g}, within 10x two unbroken runs' {noise:.3g}"))
    return result


def _gpu_rng_saved(checkpoint: dict) -> bool:
    """Whether every process's saved random state holds its GPU generator's."""
    return bool(checkpoint.get("rng")) and all("cuda" in state for state in checkpoint["rng"])


def step_decode(check: Check) -> dict:
    """`speech-s2s decode` (its main(), in this process) on the device and on the CPU; transcripts compared."""
    import jiwer

    from speech_s2s.builder import BUNDLED_LM, BUNDLED_MODEL, BUNDLED_WORD_LM
    from speech_s2s.cli.main import main
    from speech_s2s.data.corpus import read_manifest

    _needs_manifests(check)
    manifest = check.manifests["dev"]
    references = {u.id: u.text.lower() for u in read_manifest(manifest)}  # the corpus's capitals; the model writes lower case
    settings = {"greedy": ["--beam", "1"], "beam16_lms": ["--beam", "16", "--lm", str(BUNDLED_LM), "--word-lm", str(BUNDLED_WORD_LM)]}
    result: dict = {"utterances": len(references),
                    "tolerance": "transcripts equal; else at most 10% of utterances differ and the device's words differ from the CPU's by at most 2% "
                                 "(float32 sums run in another order on the GPU, and cuDNN may run fp32 LSTMs in TF32: near-ties between "
                                 "hypotheses can flip)"}
    failures = []
    for name, options in settings.items():
        hypotheses = {}
        for device in dict.fromkeys([check.device, "cpu"]) if check.device != "cpu" else ["cpu", "cpu-again"]:
            output = check.work / f"hyp-{name}-{device}.txt"
            started = time.monotonic()
            with contextlib.redirect_stdout(sys.stderr):
                # float32 search on the CPU too: the comparison is of devices, not of the CPU's int8 products
                rc = main(["decode", str(manifest), "--model", str(BUNDLED_MODEL), *options, "--float-search", "--device", device.removesuffix("-again"),
                           "--threads", str(check.threads), "--output", str(output), "--overwrite"])
            if rc != 0:
                raise RuntimeError(f"speech-s2s decode --device {device} ({name}) failed with status {rc}")
            hypotheses[device] = dict(line.split(" ", 1) if " " in line else (line, "") for line in output.read_text().splitlines())
            result[f"{name}_{device}_seconds"] = round(time.monotonic() - started, 2)
            ids = sorted(references)
            result[f"{name}_{device}_wer"] = round(jiwer.wer([references[k] for k in ids], [hypotheses[device].get(k, "") for k in ids]), 4)
        device_hyp, cpu_hyp = (hypotheses[d] for d in hypotheses)
        ids = sorted(references)
        differing = [k for k in ids if device_hyp.get(k) != cpu_hyp.get(k)]
        cross = jiwer.wer([cpu_hyp.get(k, "") or "<empty>" for k in ids], [device_hyp.get(k, "") or "<empty>" for k in ids])
        result[f"{name}_differing_utterances"] = len(differing)
        result[f"{name}_device_vs_cpu_wer"] = round(cross, 4)
        if differing:
            result[f"{name}_first_difference"] = {"id": differing[0], "cpu": cpu_hyp.get(differing[0]), "device": device_hyp.get(differing[0])}
        if differing and (len(differing) > 0.1 * len(ids) or cross > 0.02):
            failures.append(f"{name}: {len(differing)} of {len(ids)} utterances differ, word difference {100 * cross:.1f}%")
    if failures:
        raise RuntimeError("; ".join(failures))
    result["summary"] = "; ".join(f"{n}: {result[f'{n}_differing_utterances']} of {len(references)} differ from CPU, "
                                  f"WER {100 * result[f'{n}_{check.device}_wer']:.1f}%" for n in settings)
    return result


def step_throughput(check: Check) -> dict:
    result: dict = {"training": [], "decoding": []}
    for name, frames in check.plan.throughput_configs:
        for precision in _precisions(check):
            measured = training_throughput(check, name, frames, precision)
            result["training"].append(measured)
            progress(f"  train {name} {precision}: {measured['audio_seconds_per_second']} audio s/s, {measured['updates_per_second']} updates/s, "
                     f"peak {measured['peak_memory_gib']} GiB")
    result["decoding"] = decoding_throughput(check)
    result["summary"] = "; ".join(f"{m['config']} {m['precision']}: {m['audio_seconds_per_second']:.0f} audio s/s" for m in result["training"])
    return result


def _synchronize(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def training_throughput(check: Check, name: str, max_frames: int, precision: str) -> dict:
    """Updates (normalise, SpecAugment, forward under autocast for bf16, backward, clip, Adam) on synthetic batches of equal
    utterances filling `max_frames`, as the training loop runs them."""
    import torch

    from speech_s2s.frontend.features import spec_augment
    from speech_s2s.model.seq2seq import Seq2Seq
    from speech_s2s.text import EOS_ID
    from speech_s2s.training.loop import TrainingStep

    plan, device = check.plan, check.device
    config = _recipe_config(name)
    torch.manual_seed(0)
    model = Seq2Seq(config.model).to(device).train()
    parameters = sum(p.numel() for p in model.parameters())
    step = TrainingStep(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    frames = int(plan.utterance_seconds * FRAMES_PER_SECOND)
    batch = max(1, max_frames // frames)
    tokens = int(plan.utterance_seconds * CHARS_PER_SECOND)
    feats = torch.randn(batch, frames, config.model.features.n_mels, device=device)
    lengths = torch.full((batch,), frames, device=device)
    targets = torch.randint(EOS_ID + 1, len(config.model.vocabulary), (batch, tokens), device=device)
    target_lengths = torch.full((batch,), tokens, device=device)
    generator = torch.Generator().manual_seed(0)
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)

    def update() -> None:
        normalised = model.normalizer(feats, lengths)
        normalised = spec_augment(normalised, lengths, config.train.spec_augment, generator) if config.train.spec_augment else normalised
        with torch.autocast("cuda", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext():
            output = step(normalised, lengths, targets, target_lengths, None, None, 0.0)
        optimizer.zero_grad(set_to_none=True)
        output.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()

    for _ in range(plan.warmup_updates):
        update()
    _synchronize(device)
    started = time.perf_counter()
    for _ in range(plan.timed_updates):
        update()
    _synchronize(device)
    seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.startswith("cuda") else None
    return {"config": name, "precision": precision, "parameters_m": round(parameters / 1e6, 2),
            "max_frames": max_frames, "batch": batch, "utterance_seconds": plan.utterance_seconds, "target_tokens": tokens,
            "seconds_per_update": round(seconds / plan.timed_updates, 4), "updates_per_second": round(plan.timed_updates / seconds, 3),
            "audio_seconds_per_second": round(plan.timed_updates * batch * plan.utterance_seconds / seconds, 1),
            "peak_memory_gib": round(peak, 2) if peak is not None else None}


def decoding_throughput(check: Check) -> list[dict]:
    """Real-time factor of the bundled model on the dev set (the first rtf_utterances), batch 1 and batched, greedy and
    the default beam search with both LMs; reading and feature extraction included, as `decode` runs them."""
    from speech_s2s.builder import RecognizerConfig, build_decoding
    from speech_s2s.data.corpus import read_manifest
    from speech_s2s.decoding.options import GREEDY, DecodingOptions
    from speech_s2s.evaluation.corpus_decode import decode_utterances

    _needs_manifests(check)
    utterances = read_manifest(check.manifests["dev"])[: check.plan.rtf_utterances]
    audio_seconds = sum(u.duration for u in utterances)
    measured = []
    for search, options in (("greedy", GREEDY), ("beam16_lms", DecodingOptions())):
        built = build_decoding(RecognizerConfig(decoding=options, device=check.device))
        decode_utterances(built.model, utterances[:2], check.work / f"rtf-warmup-{search}.txt", built.options, "warm-up", built.lm, 2, check.device)
        for batch in (1, check.plan.decode_batch):
            output = check.work / f"rtf-{search}-{batch}.txt"
            for stale in (output, output.with_name(output.name + ".partial")):
                stale.unlink(missing_ok=True)
            _synchronize(check.device)
            started = time.perf_counter()
            with contextlib.redirect_stdout(sys.stderr):
                decode_utterances(built.model, utterances, output, built.options, f"rtf {search} {batch}", built.lm, batch, check.device)
            _synchronize(check.device)
            seconds = time.perf_counter() - started
            measured.append({"search": search, "batch": batch, "utterances": len(utterances), "audio_seconds": round(audio_seconds, 1),
                             "seconds": round(seconds, 2), "rtf": round(seconds / audio_seconds, 4)})
            progress(f"  decode {search} batch {batch}: RTF {measured[-1]['rtf']}")
    return measured


STEPS: dict[str, Callable[[Check], dict]] = {
    "environment": step_environment, "corpus": step_corpus, "train": step_train, "torchrun": step_torchrun, "resume": step_resume,
    "decode": step_decode, "throughput": step_throughput,
}


# ---------------------------------------------------------------------------------------------------- report


def markdown(results: dict) -> str:
    lines = [f"# GPU check: {results['device']}{' (dry run)' if results['dry_run'] else ''}", "",
             f"{results['started']}, commit {results.get('commit') or 'unknown'}, corpus `{results['corpus']}`: "
             f"**{'all steps passed' if results.get('passed') else 'FAILED'}**", "",
             "| step | status | seconds | result |", "|---|---|---|---|"]
    for name, step in results["steps"].items():
        text = step.get("error") or step.get("summary", "")
        lines.append(f"| {name} | {step['status']} | {step['seconds']} | {str(text).replace('|', '/')} |")
    throughput = results["steps"].get("throughput", {})
    if throughput.get("training"):
        lines += ["", "## Training throughput (synthetic batches)", "",
                  "| config | parameters (M) | precision | padded frames | batch | s/update | updates/s | audio s/s | peak GiB |",
                  "|---|---|---|---|---|---|---|---|---|"]
        lines += [f"| {m['config']} | {m['parameters_m']} | {m['precision']} | {m['max_frames']} | {m['batch']} x {m['utterance_seconds']} s | "
                  f"{m['seconds_per_update']} | {m['updates_per_second']} | {m['audio_seconds_per_second']} | {m['peak_memory_gib'] or '-'} |"
                  for m in throughput["training"]]
    if throughput.get("decoding"):
        lines += ["", "## Decoding real-time factor (bundled model, dev set)", "", "| search | batch | utterances | audio s | seconds | RTF |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {m['search']} | {m['batch']} | {m['utterances']} | {m['audio_seconds']} | {m['seconds']} | {m['rtf']} |" for m in throughput["decoding"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu")
    parser.add_argument("--corpus", help="LibriSpeech-layout corpus root (train-*/ and dev-* splits) or one split (default: tests/data/mini)")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes for a CPU run in CI")
    parser.add_argument("--work", help="working folder (default: a new temporary folder)")
    parser.add_argument("--train-steps", type=int, help="updates per training run (default: 200, or 8 with --dry-run)")
    parser.add_argument("--steps", nargs="+", choices=list(STEPS), help="run only these steps (those after corpus need it)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPOSITORY))  # this checkout's speech_s2s, ahead of any installed one
    began = time.monotonic()
    check = Check(args)
    progress(f"{'dry run' if args.dry_run else 'check'} on {args.device}; corpus {check.corpus}; work in {check.work}; results in {check.out}")
    wanted = args.steps or list(STEPS)
    if "corpus" not in wanted and set(wanted) - {"environment", "throughput"}:
        wanted = ["corpus", *wanted]
    for name in [n for n in STEPS if n in wanted]:
        budget = check.plan.budgets[name]
        progress(f"{name} (budget {budget:.0f} s)")
        started = time.monotonic()
        try:
            with time_limit(budget):
                result = {"status": "passed", **STEPS[name](check)}
        except Exception as error:  # every step's failure is recorded; the next step still runs
            where = traceback.extract_tb(error.__traceback__)[-1]
            result = {"status": "failed", "error": f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''} "
                                                   f"({Path(where.filename).name}:{where.lineno})"}
        result["seconds"] = round(time.monotonic() - started, 1)
        check.record(name, result)
        progress(f"{name}: {result['status']} in {result['seconds']} s: {result.get('error') or result.get('summary', '')}")
    check.results["total_seconds"] = round(time.monotonic() - began, 1)
    check.write()
    progress(f"{'all steps passed' if check.results['passed'] else 'FAILED'} in {check.results['total_seconds']} s; "
             f"{check.out / JSON_NAME}, {check.out / MARKDOWN_NAME}")
    return 0 if check.results["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
