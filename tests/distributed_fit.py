"""Run by tests/test_distributed.py under torchrun: each process trains its replica, then saves its
weights and the batches it was given, for the test to compare across ranks.

    torchrun --nproc_per_node 2 tests/distributed_fit.py OUT_DIR MAX_STEPS
"""

import sys
from pathlib import Path

import torch

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent.parent)]  # conftest, and this checkout's speech_s2s
from conftest import tiny_model_with_mini_features  # noqa: E402

from speech_s2s.data.batches import FeatureSet  # noqa: E402
from speech_s2s.training import distributed
from speech_s2s.training import loop as training  # noqa: E402

CONFIG = training.TrainConfig(epochs=10, max_frames=400, learning_rate=1e-3, warmup_steps=3, checkpoint_every=2, log_every=1,
                              sampling_probability=0.2, dev_max_utterances=2, device="cpu")


def training_set(features: FeatureSet, copies: int = 3) -> FeatureSet:
    """The mini corpus three times over (12 utterances), so an epoch holds several rounds of batches."""
    return FeatureSet(features.utterances * copies, features.features * copies, features.targets * copies)


def main() -> None:
    out, max_steps = Path(sys.argv[1]), int(sys.argv[2])
    context = distributed.setup("cpu")
    torch.set_num_threads(1)
    model, features = tiny_model_with_mini_features(seed=context.rank)  # different start: DDP must broadcast rank 0's
    train = training_set(features)
    seen: list[list[int]] = []
    collate = training.collate

    def recording_collate(feature_set, indices):
        if feature_set is train:
            seen.append(list(indices))
        return collate(feature_set, indices)

    training.collate = recording_collate
    config = training.TrainConfig(**{**CONFIG.__dict__, "max_steps": max_steps})
    state = training.fit(model, train, features, config, out / "exp", context=context)
    torch.save({"weights": model.state_dict(), "seen": seen, "step": state.step}, out / f"rank{context.rank}.pt")
    distributed.teardown(context)


if __name__ == "__main__":
    main()
