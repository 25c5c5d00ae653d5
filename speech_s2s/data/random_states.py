"""The random states an exactly resumable run saves in its checkpoint and restores from it: torch's CPU
generator and a Python `random.Random`, as tensors and numbers so that `torch.load(weights_only=True)`
reads them back (a checkpoint never unpickles code)."""

from __future__ import annotations

import math
import random

import torch


def saved_random_states(rng: random.Random) -> dict[str, object]:
    """torch's CPU generator and `rng`, as checkpoint entries."""
    version, internal, gauss = rng.getstate()
    return {"torch_rng": torch.get_rng_state(), "python_rng": torch.tensor(internal, dtype=torch.int64),
            "python_rng_version": version, "python_rng_gauss": gauss if gauss is not None else float("nan")}


def restore_random_states(state: dict, rng: random.Random) -> None:
    """Put back what `saved_random_states` saved into torch's CPU generator and `rng`."""
    torch.set_rng_state(state["torch_rng"])
    gauss = state["python_rng_gauss"]
    rng.setstate((state["python_rng_version"], tuple(int(v) for v in state["python_rng"]), None if math.isnan(gauss) else gauss))
