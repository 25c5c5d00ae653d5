"""recipes/librispeech end to end on a tiny synthetic corpus in the LibriSpeech layout (split names
identical to LibriSpeech's), stage 0 to 7, with training under torchrun on two CPU processes."""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from speech_s2s.evaluation.scoring import read_kaldi_text, score

REPOSITORY = Path(__file__).parent.parent
RECIPE = REPOSITORY / "recipes" / "librispeech" / "recipe.py"
TINY = REPOSITORY / "recipes" / "librispeech" / "conf" / "tiny.toml"
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None and os.environ.get("CI") != "true",  # CI installs it: never skip there
    reason="espeak-ng is not installed",
)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """24 training, 8 dev (2 speakers) and 6 test utterances from espeak-ng, renamed to LibriSpeech's split names."""
    root = tmp_path_factory.mktemp("LibriSpeech")
    command = [sys.executable, str(REPOSITORY / "tools" / "make_tts_corpus.py"), "--out", str(root), "--seed", "0", "--jobs", "2",
               "--engines", "espeak", "--train-hours", "0.05", "--max-train-utts", "24", "--dev-utts", "8", "--test-utts", "6"]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    for ours, theirs in (("train-tts", "train-clean-100"), ("dev-tts", "dev-clean"), ("test-tts", "test-clean")):
        (root / ours).rename(root / theirs)
    transcripts = sorted((root / "train-clean-100").glob("*/*/*.trans.txt"))
    lines = [line.split(maxsplit=1)[1] for path in transcripts for line in path.read_text().splitlines()]
    (root / "lm-text.txt").write_text("\n".join(lines + ["CHAPTER 12 HAS DIGITS"]) + "\n")  # a line the vocabulary cannot spell is skipped
    return root


def _config(tmp_path: Path, **replacements: str) -> Path:
    text = TINY.read_text()
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "tiny-test.toml"
    path.write_text(text)
    return path


def _run(corpus: Path, exp: Path, config: Path, *stages: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(RECIPE), "--config", str(config), *stages, str(corpus), str(exp)],
                          capture_output=True, text=True, timeout=600, env=environment)


@needs_espeak
def test_stages_0_to_7_write_every_file_and_a_results_table_and_a_rerun_redoes_nothing(corpus, tmp_path):
    config = _config(tmp_path, **{'device = "cpu"': 'device = "cpu"\nnproc_per_node = 2'})  # torchrun, gloo
    exp = tmp_path / "exp"
    result = _run(corpus, exp, config)
    assert result.returncode == 0, result.stderr[-4000:]
    assert "torch.distributed.run --nproc_per_node=2" in result.stderr and "on 2 process(es)" in result.stderr

    sets = {"dev-clean": 8, "test-clean": 6}
    settings = ("greedy", "beam4", "beam4_lm")
    results = (exp / "RESULTS.md").read_text()
    assert results.startswith("# Results: tiny\n")
    assert re.search(r"- Model: mean of epochs \[1, 2\] \(the last ones\); 0\.\dM parameters", results)
    assert re.search(r"- Training: \d+ updates, 2 epochs, \d+\.\d\d h of wall-clock training on 2 x CPU", results)
    for split, count in sets.items():
        references = read_kaldi_text(exp / "data" / f"{split}.ref.txt")
        assert len(references) == count
        scores = {}
        for setting in settings:
            # the figures are those of the recipe's own hypotheses against its references
            hypotheses = read_kaldi_text(exp / "decode" / f"hyp-{split}-{setting}.txt")
            scores[setting] = scored = score(references, hypotheses, strict=True)
            errors = scored.substitutions + scored.deletions + scored.insertions
            row = f"| {split} | {setting} | {100 * scored.wer:.2f} | {100 * scored.cer:.2f} | {errors} / {scored.words} | {count} |"
            assert row in results.splitlines(), (row, results)
            recogs = (exp / f"recogs-{split}-{setting}.txt").read_text().splitlines()
            assert len(recogs) == 2 * count and recogs[0].split(":\t")[1].startswith("ref=[")
            errs = (exp / f"errs-{split}-{setting}.txt").read_text()
            assert errs.startswith(f"{split}, {setting}\n%WER ") and "SUBSTITUTIONS (top 30" in errs
            assert errs.count(" errors / ") == count
        summary = (exp / f"wer-summary-{split}.txt").read_text().splitlines()
        assert summary[0] == "setting\tWER%\tCER%"
        assert sorted(summary[1:]) == sorted(f"{name}\t{100 * r.wer:.2f}\t{100 * r.cer:.2f}" for name, r in scores.items())
    reports = {split: json.loads((exp / "data" / f"verify-{split}.json").read_text()) for split in ("train-clean-100", *sets)}
    assert {split: (r["valid"], r["problems"]) for split, r in reports.items()} == {"train-clean-100": (24, []), "dev-clean": (8, []), "test-clean": (6, [])}
    assert (exp / "train" / "learning_curve.png").is_file() and (exp / "train" / "attention-epoch002.png").is_file()
    assert "character LM on 24 sentences" in result.stderr

    outputs = sorted(exp.glob("decode/hyp-*.txt")) + [exp / "average.safetensors", exp / "lm" / "charlm.safetensors"]
    before = {path: path.stat().st_mtime_ns for path in outputs}
    summary_before = (exp / "wer-summary-test-clean.txt").read_text()
    again = _run(corpus, exp, config, "--stage", "4")
    assert again.returncode == 0, again.stderr[-3000:]
    assert {path: path.stat().st_mtime_ns for path in outputs} == before  # nothing decoded, averaged or trained again
    assert (exp / "wer-summary-test-clean.txt").read_text() == summary_before  # rewritten, never appended to


def _recipe_module():
    spec = importlib.util.spec_from_file_location("librispeech_recipe", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_espeak
def test_stage_0_names_the_damage_and_stops_unless_asked_to_go_on_with_the_valid_part(corpus, tmp_path, capsys):
    damaged = tmp_path / "LibriSpeech"
    shutil.copytree(corpus, damaged)
    flac = sorted((damaged / "train-clean-100").glob("*/*/*.flac"))[0]
    flac.write_bytes(flac.read_bytes()[:200])  # cut short
    recipe = _recipe_module()
    test_sets = 'test_splits = ["dev-clean", "test-clean"]'
    config = _config(tmp_path, **{test_sets: 'test_splits = ["test-clean", "test-other"]'})
    assert recipe.main(["--config", str(config), "--stop-stage", "1", str(damaged), str(tmp_path / "exp")]) == 1
    error = capsys.readouterr().err
    assert "recipe: error: stage 0: problems in train-clean-100, test-other" in error and "skip_invalid = true" in error
    report = json.loads((tmp_path / "exp" / "data" / "verify-train-clean-100.json").read_text())
    assert report["counts"] == {"truncated audio": 1} and report["problems"][0]["message"].startswith(str(flac))
    assert not (tmp_path / "exp" / "data" / "train-clean-100.jsonl").exists()

    going_on = _config(tmp_path, **{test_sets: 'test_splits = ["test-clean", "test-other"]', "shard_size = 8": "shard_size = 8\nskip_invalid = true"})
    assert recipe.main(["--config", str(going_on), "--stop-stage", "1", str(damaged), str(tmp_path / "exp")]) == 0
    manifest = (tmp_path / "exp" / "data" / "train-clean-100.jsonl").read_text().splitlines()
    assert len(manifest) == 23 and flac.stem not in "".join(manifest)
    assert not (tmp_path / "exp" / "data" / "test-other.jsonl").exists()


def test_the_shipped_configs_load_and_a_wrong_field_is_named(tmp_path):
    sys.path.insert(0, str(RECIPE.parent))
    from config import ConfigError, load_config

    small, large = load_config("las_100h"), load_config("las_960h")
    assert small.data.train_splits == ("train-clean-100",) and small.launch.nproc_per_node == 1
    assert large.data.train_splits == ("train-clean-100", "train-clean-360", "train-other-500") and large.launch.nproc_per_node == 8
    assert [d.name for d in small.decode] == ["greedy", "beam10", "beam10_lm"] and small.decode[2].options.lm_weight == 0.3
    assert (large.anchors[0].test_clean, large.anchors[0].test_other) == (2.8, 6.8)
    bad = tmp_path / "bad.toml"
    bad.write_text("[model.encoder]\nhidden_size = 'wide'\n")
    with pytest.raises(ConfigError, match=r"bad.toml: EncoderConfig.hidden_size must be int, not 'wide'"):
        load_config(str(bad))
    bad.write_text("[train]\ndevice = 'cuda'\n")
    with pytest.raises(ConfigError, match=r"\[train\] sets neither device"):
        load_config(str(bad))
