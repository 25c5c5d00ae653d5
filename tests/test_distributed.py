"""Training under torchrun on CPU (gloo, 2 processes): the same entry point as one process or many GPUs."""

import os
import subprocess
import sys
from pathlib import Path

import torch
from conftest import tiny_model_with_mini_features
from distributed_fit import CONFIG, training_set

from speech_s2s.data.sampler import BucketingSampler
from speech_s2s.training.loop import CHECKPOINT, TrainConfig, fit

WORKER = Path(__file__).parent / "distributed_fit.py"


def test_two_processes_train_identical_replicas_on_disjoint_batches_and_the_checkpoint_resumes_alone(tmp_path):
    steps = 5  # two epochs of two rounds, then one step into the third: the checkpoint is mid-epoch
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER), str(tmp_path), str(steps)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["step"] == ranks[1]["step"] == steps
    for name, tensor in ranks[0]["weights"].items():
        assert torch.equal(tensor, ranks[1]["weights"][name]), name

    model, features = tiny_model_with_mini_features()
    train = training_set(features)
    frames = tuple(train.num_frames())
    per_epoch = BucketingSampler(frames, CONFIG.max_frames, CONFIG.seed, CONFIG.curriculum_epochs, 0, 2).epoch_length(0) // 2
    assert per_epoch == 2
    for rank in (0, 1):  # each rank got exactly its share, epoch after epoch
        sampler = BucketingSampler(frames, CONFIG.max_frames, CONFIG.seed, CONFIG.curriculum_epochs, rank, 2)
        expected = [indices for epoch in range(3) for _, indices in sampler.rank_batches(epoch)][:steps]
        assert ranks[rank]["seen"] == expected
    for epoch in range(2):  # and within an epoch the two shares never meet
        share = [{i for batch in ranks[r]["seen"][epoch * per_epoch : (epoch + 1) * per_epoch] for i in batch} for r in (0, 1)]
        assert share[0] and share[1] and not share[0] & share[1]

    exp = tmp_path / "exp"
    assert (exp / CHECKPOINT).is_file() and not list(exp.glob("*.tmp*"))  # rank 0 alone wrote, atomically
    assert torch.load(exp / CHECKPOINT, weights_only=True)["world_size"] == 2
    state = fit(model, train, features, TrainConfig(**{**CONFIG.__dict__, "max_steps": steps}), exp, resume=True)
    assert state.step == steps and (state.epoch, state.batch_in_epoch) == (2, 2)  # one global round into epoch 3
    for name, tensor in ranks[0]["weights"].items():
        assert torch.equal(tensor, model.state_dict()[name]), name
    state = fit(model, train, features, TrainConfig(**{**CONFIG.__dict__, "max_steps": steps + 3}), exp, resume=True)
    assert state.step == steps + 3 and state.epoch == 3 and state.batch_in_epoch == 1  # 4 global batches per epoch: 2 + 2, then 1
