"""The sharded feature cache: the same features as computing them in memory, reused while audio and
settings hold, recomputed shard by shard when they change, and resumed after a kill."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from conftest import copied_mini_corpus

from speech_s2s.data.batches import compute_features, feature_stats
from speech_s2s.data.corpus import Utterance, write_manifest
from speech_s2s.data.feature_store import SHARD, extract_features
from speech_s2s.frontend.features import FeatureConfig, LogMel
from speech_s2s.text import Vocabulary

REPOSITORY = Path(__file__).parent.parent


def _corpus(tmp_path: Path, copies: int = 2) -> list[Utterance]:
    """The mini corpus's audio copied `copies` times under new ids (8 utterances by default)."""
    return copied_mini_corpus(tmp_path, copies)


def _mtimes(directory: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(directory.glob("shard-*.pt"))}


def test_shards_hold_the_in_memory_features_and_are_reused_until_audio_or_settings_change(tmp_path):
    utterances = _corpus(tmp_path)
    store = tmp_path / "store"
    first = extract_features(utterances, FeatureConfig(), store, shard_size=3)
    in_memory = compute_features(utterances, LogMel(), Vocabulary())
    assert (first.reused_shards, first.computed_shards) == (0, 3)
    assert all(torch.equal(a, b) for a, b in zip(first.features, in_memory.features))
    mean, std = first.moments.mean_std()
    assert torch.allclose(mean, feature_stats(in_memory.features)[0]) and torch.allclose(std, feature_stats(in_memory.features)[1])
    assert json.loads((store / "stats.json").read_text())["frames"] == sum(f.shape[0] for f in in_memory.features)

    before = _mtimes(store)
    again = extract_features(utterances, FeatureConfig(), store)  # no size given: the store keeps its own
    assert (again.reused_shards, again.computed_shards) == (3, 0) and _mtimes(store) == before

    changed = Path(utterances[4].audio)  # in shard 1
    shutil.copy(utterances[0].audio, changed)  # other audio under the same name
    refreshed = extract_features(utterances, FeatureConfig(), store)
    assert (refreshed.reused_shards, refreshed.computed_shards) == (2, 1)
    after = _mtimes(store)
    assert [name for name in before if after[name] != before[name]] == [SHARD.format(1)]
    assert torch.equal(refreshed.features[4], in_memory.features[0])

    fewer_bins = dataclasses.replace(FeatureConfig(), n_mels=40)
    assert extract_features(utterances, fewer_bins, store).computed_shards == 3
    assert extract_features(utterances, fewer_bins, store).features[0].shape[1] == 40


def test_feature_extraction_killed_midway_keeps_its_finished_shards_and_ends_as_an_unbroken_run(tmp_path):
    utterances = _corpus(tmp_path, copies=2)
    blocking = Path(utterances[3].audio)  # the last utterance of shard 1 (shards of 2)
    real = blocking.read_bytes()
    blocking.unlink()
    os.mkfifo(blocking)  # reading it blocks for good: shard 1 cannot finish, so the kill lands after shard 0, wherever
    write_manifest(utterances, tmp_path / "train.jsonl")
    command = [sys.executable, "-m", "speech_s2s.cli", "features", str(tmp_path / "train.jsonl"), "--out", str(tmp_path / "cache"), "--shard-size", "2"]
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cache = tmp_path / "cache" / "train"
    deadline = time.monotonic() + 120
    while not (cache / SHARD.format(0)).is_file() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert sorted(_mtimes(cache)) == [SHARD.format(0)]
    finished = _mtimes(cache)

    blocking.unlink()
    blocking.write_bytes(real)
    resumed = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"{cache}: 8 utterances" in resumed.stdout and "1 shards reused, 3 computed" in resumed.stdout
    assert _mtimes(cache)[SHARD.format(0)] == finished[SHARD.format(0)]
    assert not list(cache.glob("*.tmp*"))
    unbroken = extract_features(utterances, FeatureConfig(), tmp_path / "unbroken", shard_size=2)
    killed = extract_features(utterances, FeatureConfig(), cache)
    assert killed.reused_shards == 4
    assert all(torch.equal(a, b) for a, b in zip(unbroken.features, killed.features))
