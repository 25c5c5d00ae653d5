"""Checkpoints: exact resume (after SIGKILL too), old checkpoints still resume, and what a resume may not change."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import MINI_CORPUS, tiny_model_with_mini_features

from speech_s2s.cli.main import main
from speech_s2s.data.sampler import BucketingSampler
from speech_s2s.model.files import load_model
from speech_s2s.training.checkpoint import CHECKPOINT, ResumeError
from speech_s2s.training.loop import TrainConfig, fit

CONFIG = TrainConfig(epochs=10, max_frames=400, learning_rate=1e-3, warmup_steps=3, checkpoint_every=2, log_every=1,
                     sampling_probability=0.2, dev_max_utterances=2)
REPOSITORY = Path(__file__).parent.parent


def _same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_a_checkpoint_written_before_distributed_training_still_resumes_exactly(tmp_path):
    unbroken, features = tiny_model_with_mini_features()
    fit(unbroken, features, features, dataclasses.replace(CONFIG, max_steps=7), tmp_path / "a")
    broken, _ = tiny_model_with_mini_features()
    fit(broken, features, features, dataclasses.replace(CONFIG, max_steps=4), tmp_path / "b")
    stored = torch.load(tmp_path / "b" / CHECKPOINT, weights_only=True)
    old_keys = ("model", "optimizer", "state", "history", "torch_rng", "augment_rng")  # all the old format held
    old = {key: stored[key] for key in old_keys}
    old["state"] = {k: v for k, v in old["state"].items() if k != "train_seconds"}
    torch.save(old, tmp_path / "b" / CHECKPOINT)

    resumed, _ = tiny_model_with_mini_features(seed=5)
    state = fit(resumed, features, features, dataclasses.replace(CONFIG, max_steps=7), tmp_path / "b", resume=True)
    assert state.step == 7
    _same_weights(unbroken.state_dict(), resumed.state_dict())
    assert "fixed" in torch.load(tmp_path / "b" / CHECKPOINT, weights_only=True)  # from now on it records its options


def test_a_resume_refuses_options_that_change_the_batches_or_the_shape_and_accepts_a_new_ctc_weight(tmp_path):
    model, features = tiny_model_with_mini_features()
    fit(model, features, features, dataclasses.replace(CONFIG, max_steps=2), tmp_path)
    with pytest.raises(ResumeError, match=r"cannot resume with max_frames = 800: the run was started with 400 and it fixes which batches"):
        fit(model, features, features, dataclasses.replace(CONFIG, max_steps=3, max_frames=800), tmp_path, resume=True)
    wider = tiny_model_with_mini_features()[0]
    wider.config = dataclasses.replace(wider.config, encoder=dataclasses.replace(wider.config.encoder, dropout=0.5))
    with pytest.raises(ResumeError, match=r"cannot resume with model.encoder.dropout = 0.5: the run was started with 0.0"):
        fit(wider, features, features, dataclasses.replace(CONFIG, max_steps=3), tmp_path, resume=True)
    model.config = dataclasses.replace(model.config, ctc_weight=0.5)
    assert fit(model, features, features, dataclasses.replace(CONFIG, max_steps=3, epochs=20), tmp_path, resume=True).step == 3


def test_a_checkpoint_older_than_a_model_option_resumes_at_the_option_s_default_and_refuses_another(tmp_path):
    model, features = tiny_model_with_mini_features()
    fit(model, features, features, dataclasses.replace(CONFIG, max_steps=2), tmp_path)
    stored = torch.load(tmp_path / CHECKPOINT, weights_only=True)
    fixed = json.loads(stored["fixed"])
    del fixed["model.features.utterance_mean"]  # as saved before the option existed (2026-12-07)
    stored["fixed"] = json.dumps(fixed)
    torch.save(stored, tmp_path / CHECKPOINT)
    with_mean = tiny_model_with_mini_features()[0]
    with_mean.config = dataclasses.replace(with_mean.config, features=dataclasses.replace(with_mean.config.features, utterance_mean=True))
    with pytest.raises(ResumeError, match=r"cannot resume with model.features.utterance_mean = true: the run was started with false"):
        fit(with_mean, features, features, dataclasses.replace(CONFIG, max_steps=3), tmp_path, resume=True)
    assert fit(model, features, features, dataclasses.replace(CONFIG, max_steps=3), tmp_path, resume=True).step == 3


def test_curriculum_epochs_may_change_once_the_saved_position_is_past_the_curriculum_either_way(tmp_path):
    model, features = tiny_model_with_mini_features()
    one_epoch = BucketingSampler(tuple(features.num_frames()), CONFIG.max_frames, CONFIG.seed, 1).epoch_length(0)
    assert one_epoch >= 2
    curriculum = dataclasses.replace(CONFIG, curriculum_epochs=1)
    fit(model, features, features, dataclasses.replace(curriculum, max_steps=one_epoch - 1), tmp_path)  # inside epoch 0
    with pytest.raises(ResumeError, match=r"cannot resume with curriculum_epochs = 0: the run was started with 1"):
        fit(model, features, features, dataclasses.replace(CONFIG, curriculum_epochs=0, max_steps=one_epoch + 1), tmp_path, resume=True)
    fit(model, features, features, dataclasses.replace(curriculum, max_steps=one_epoch + 1), tmp_path, resume=True)  # into epoch 1
    unbroken, _ = tiny_model_with_mini_features()
    fit(unbroken, features, features, dataclasses.replace(curriculum, max_steps=one_epoch + 3), tmp_path / "unbroken")
    state = fit(model, features, features, dataclasses.replace(CONFIG, curriculum_epochs=0, max_steps=one_epoch + 3), tmp_path, resume=True)
    assert state.step == one_epoch + 3
    _same_weights(unbroken.state_dict(), model.state_dict())  # the same batches as if the curriculum had stayed


TRAIN = ["train", "--train", str(MINI_CORPUS), "--dev", str(MINI_CORPUS), "--encoder-hidden", "32", "--encoder-layers", "3",
         "--decoder-hidden", "64", "--max-frames", "150", "--checkpoint-every", "3", "--dev-max-utterances", "1", "--threads", "1"]


def test_train_command_refuses_a_new_shape_on_resume_and_applies_a_new_ctc_weight(tmp_path, capsys):
    exp = tmp_path / "exp"
    assert main([*TRAIN, "--exp", str(exp), "--max-steps", "1"]) == 0
    capsys.readouterr()
    assert main([*TRAIN, "--exp", str(exp), "--max-steps", "2", "--resume", "--encoder-hidden", "48"]) == 1
    assert f"{exp / 'model_config.json'}: --encoder-hidden 48 differs from the run's 32; a resume cannot change the model's shape" in capsys.readouterr().err
    assert main([*TRAIN, "--exp", str(exp), "--max-steps", "2", "--resume", "--seed", "4"]) == 1
    assert "cannot resume with seed = 4: the run was started with 0" in capsys.readouterr().err
    assert main([*TRAIN, "--exp", str(exp), "--max-steps", "2", "--resume", "--ctc-weight", "0.6"]) == 0
    assert load_model(exp / "last.safetensors").config.ctc_weight == 0.6


def test_training_killed_mid_epoch_resumes_to_the_weights_of_an_unbroken_run(tmp_path):
    steps = ["--max-steps", "18"]  # 4 batches an epoch: checkpoints at steps 3, 4, 6, ... fall inside epochs and at their ends
    assert main([*TRAIN, "--exp", str(tmp_path / "unbroken"), *steps]) == 0

    killed = tmp_path / "killed"
    command = [sys.executable, "-m", "speech_s2s.cli", *TRAIN, "--exp", str(killed), *steps]
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (killed / CHECKPOINT).is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL  # killed, not finished
    assert torch.load(killed / CHECKPOINT, weights_only=True)["state"]["step"] < 18

    assert main([*TRAIN, "--exp", str(killed), *steps, "--resume"]) == 0
    _same_weights(load_model(tmp_path / "unbroken" / "last.safetensors").state_dict(), load_model(killed / "last.safetensors").state_dict())
