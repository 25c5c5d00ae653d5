"""One training process among many: who it is, which device it drives, and the few collectives training needs.

Launched by torchrun (`torchrun --nproc_per_node N -m speech_s2s.cli train ...`, or with
--nnodes/--rdzv-endpoint across machines), a process reads its rank from the environment torchrun
sets and joins the process group: NCCL between GPUs, gloo between CPU processes. Started any other
way it is the only process, and nothing here talks to anyone. No launcher of our own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0  # this process's index on its machine: which GPU it drives
    device: str = "cpu"

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, validates and writes every file; the others only train."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


SINGLE = Distributed()


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ


def setup(device: str | None = None) -> Distributed:
    """This process's place in the run. device None: CUDA when available, else CPU.

    Under torchrun each process takes the GPU numbered by its local rank (so `--device cuda`
    means one GPU per process) and joins the process group; otherwise nothing is initialised.
    """
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if not launched_by_torchrun():
        return Distributed(device=device)
    rank, world_size, local_rank = (int(os.environ[name]) for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if world_size == 1:
        return Distributed(device=device)
    if device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    return Distributed(rank, world_size, local_rank, device)


def teardown(context: Distributed) -> None:
    if context.active and dist.is_initialized():
        dist.destroy_process_group()


def barrier(context: Distributed) -> None:
    if context.active:
        dist.barrier()


def any_rank(context: Distributed, flag: bool) -> bool:
    """True on every rank if it is true on any (so all stop together, or none does)."""
    if not context.active:
        return flag
    value = torch.tensor([1.0 if flag else 0.0], device=context.device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def gather(context: Distributed, value: Any) -> list[Any]:
    """Every rank's `value` (picklable), in rank order, on every rank."""
    if not context.active:
        return [value]
    values: list[Any] = [None] * context.world_size
    dist.all_gather_object(values, value)
    return values


def broadcast(context: Distributed, value: Any) -> Any:
    """Rank 0's `value` on every rank."""
    if not context.active:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
