"""Training checkpoints: all a run needs to continue exactly, on any device and any number of processes.

A checkpoint holds the weights, the optimiser, the position (step, epoch, global batches consumed
in the epoch), every process's random state (CPU, CUDA, SpecAugment's generator), and the options
a resume may not change. It is written atomically by rank 0 and read with weights_only=True
(tensors and plain data, never code). Checkpoints from before distributed training (one process,
`torch_rng`/`augment_rng` only, no recorded options) still load.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from speech_s2s.atomic import replacing

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
# What a resume may change, and why the rest is refused. Loss weights only reweigh the gradient; the
# shape, features and vocabulary are the weights' meaning, and seed, max_frames and curriculum_epochs
# say which batches the saved position refers to.
CHANGEABLE_MODEL_FIELDS = ("ctc_weight", "label_smoothing")
FIXED_TRAIN_FIELDS = ("seed", "max_frames", "curriculum_epochs")
# Keeps each rank's random streams apart; rank 0 keeps the plain seed, as a one-process run does.
RANK_SEED_STRIDE = 1_000_003


class ResumeError(ValueError):
    """A checkpoint cannot continue with the options given; one line naming the file and the option."""


@dataclass
class TrainingState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # global batches (all processes together) consumed in this epoch
    best_wer: float = float("inf")
    train_seconds: float = 0.0  # wall-clock training time over every run that led here
    history: list[dict] = field(default_factory=list)


def rank_seed(seed: int, rank: int) -> int:
    return seed + RANK_SEED_STRIDE * rank


def rng_state(device: str, augment_rng: torch.Generator) -> dict[str, torch.Tensor]:
    """This process's random state: CPU, SpecAugment's generator and, on a GPU, that GPU's."""
    state = {"torch": torch.get_rng_state(), "augment": augment_rng.get_state()}
    if device.startswith("cuda"):
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def fixed_options(model_config: Any, train_config: Any) -> dict[str, Any]:
    """The options a resume must repeat, flattened to dotted names with JSON values."""
    model = {k: v for k, v in asdict(model_config).items() if k not in CHANGEABLE_MODEL_FIELDS}
    fixed = {**_flatten(model, "model."), **{name: getattr(train_config, name) for name in FIXED_TRAIN_FIELDS}}
    return json.loads(json.dumps(fixed))  # tuples become lists, as they come back from the file


def fixed_defaults(model_config: Any, train_config: Any) -> dict[str, Any]:
    """`fixed_options` of the default configs: what a checkpoint saved before an option existed used
    (an option is added with the default that keeps the behaviour from before it)."""
    return fixed_options(type(model_config)(), type(train_config)())


def _flatten(values: dict[str, Any], prefix: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def save_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, state: TrainingState,
    rng_states: list[dict[str, torch.Tensor]], fixed: dict[str, Any],
) -> None:
    """Write the checkpoint atomically. rng_states: one per rank, in rank order."""
    stored = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "state": {k: v for k, v in asdict(state).items() if k != "history"},
        "history": json.dumps(state.history),
        # Rank 0's state under the old names too, so older code can still resume a one-process run.
        "torch_rng": rng_states[0]["torch"],
        "augment_rng": rng_states[0]["augment"],
        "rng": rng_states,
        "world_size": len(rng_states),
        "fixed": json.dumps(fixed),
    }
    with replacing(path) as temporary:
        torch.save(stored, temporary)


def load_checkpoint(
    path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, fixed: dict[str, Any],
    rank: int, world_size: int, device: str, augment_rng: torch.Generator, seed: int, defaults: dict[str, Any] | None = None,
) -> TrainingState:
    """Restore what `save_checkpoint` wrote into this process; raise ResumeError if `fixed` differs.
    An option the checkpoint does not record (it is older than the option) is compared at its value
    in `defaults` (`fixed_defaults`).

    On the number of processes that saved it, every rank gets its own random state back and the
    run continues exactly. On another number, the position still holds (it counts global batches)
    but the random streams cannot be shared out again: each rank reseeds from (seed, step, rank).
    """
    stored = torch.load(path, weights_only=True, map_location="cpu")
    if "fixed" in stored:  # checkpoints from before this check recorded nothing to compare
        recorded = {**(defaults or {}), **json.loads(stored["fixed"])}
        _check_fixed(_past_curriculum(recorded, fixed, stored["state"]["epoch"]), fixed, path)
    model.load_state_dict(stored["model"])
    optimizer.load_state_dict(stored["optimizer"])
    state = TrainingState(**stored["state"], history=json.loads(stored["history"]))
    states = stored.get("rng") or [{"torch": stored["torch_rng"], "augment": stored["augment_rng"]}]
    if len(states) != world_size:
        log.warning("%s was saved by %d processes and resumes on %d: same data position, new random streams", path, len(states), world_size)
        _reseed(seed, state.step, rank, augment_rng)
        return state
    mine = states[rank]
    torch.set_rng_state(mine["torch"])
    augment_rng.set_state(mine["augment"])
    if device.startswith("cuda"):
        if "cuda" in mine:
            torch.cuda.set_rng_state(mine["cuda"], device)
        else:
            log.warning("%s holds no GPU random state (saved on CPU): the GPU's is seeded from step %d", path, state.step)
            torch.cuda.manual_seed(_stream_seed(seed, state.step, rank))
    return state


def _stream_seed(seed: int, step: int, rank: int) -> int:
    return (rank_seed(seed, rank) * 1_000_033 + step) % 2**63


def _reseed(seed: int, step: int, rank: int, augment_rng: torch.Generator) -> None:
    torch.manual_seed(_stream_seed(seed, step, rank))  # seeds every GPU as well
    augment_rng.manual_seed(_stream_seed(seed, step, rank) + 1)


def _past_curriculum(stored: dict[str, Any], given: dict[str, Any], epoch: int) -> dict[str, Any]:
    """The stored options, with curriculum_epochs taken as given when the saved position is past the
    curriculum either way: from there on every epoch's batches are shuffled under both values, so
    the position means the same batches (the campaign turned its curriculum off mid-phase)."""
    name = "curriculum_epochs"
    if name in stored and name in given and epoch >= max(stored[name], given[name]):
        return {**stored, name: given[name]}
    return stored


def _check_fixed(stored: dict[str, Any], given: dict[str, Any], path: Path) -> None:
    for name in sorted(set(stored) | set(given)):
        if stored.get(name) != given.get(name):
            why = "it fixes which batches the saved position means" if name in FIXED_TRAIN_FIELDS else "the saved weights were learnt with it"
            raise ResumeError(
                f"{path}: cannot resume with {name} = {json.dumps(given.get(name))}: the run was started with "
                f"{json.dumps(stored.get(name))} and {why} (a resume may change {', '.join(CHANGEABLE_MODEL_FIELDS)} "
                f"and every other training option; start a new experiment folder to change this one)"
            )
