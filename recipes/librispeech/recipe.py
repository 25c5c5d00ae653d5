#!/usr/bin/env python3
"""The LibriSpeech recipe: from a corpus on disk to a results table, in resumable stages.

    python recipes/librispeech/recipe.py [--config las_100h] [--stage N] [--stop-stage M] CORPUS EXP

CORPUS holds LibriSpeech's splits (train-clean-100, dev-clean, test-clean, ...; librispeech-lm-norm.txt
for the LM if present). Stages (README.md has disk and time per stage):

    0 verify     every split: missing splits, unreadable or truncated audio, transcript lines without
                 audio, audio without transcript; stops unless [data] skip_invalid (then valid part only)
    1 manifests  EXP/data/SPLIT.jsonl, .ref.txt, .files
    2 features   EXP/data/fbank/SPLIT/ shards (train and dev) and their normalisation statistics
    3 train      torchrun (or one process) -> EXP/train; resumes exactly from its checkpoint
    4 average    the best (or last) N epochs -> EXP/average.safetensors
    5 lm         character LM on the LM text -> EXP/lm/charlm.safetensors
    6 decode     every test set with every [[decode]] setting -> EXP/decode/
    7 score      EXP/recogs-*, errs-*, wer-summary-*, RESULTS.md

Every stage is idempotent (rerun, it redoes nothing finished), writes its outputs atomically, and
resumes after a kill: finished files are kept, training and decoding continue where they stopped.
The recipe orchestrates the library and holds no model code.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import subprocess
import sys
from pathlib import Path

# The recipe runs the library it ships with (this checkout), and imports its own modules beside it.
sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parent)]
from config import ConfigError, RecipeConfig, config_path, load_config  # noqa: E402

log = logging.getLogger("librispeech")
STAGES = ("verify", "manifests", "features", "train", "average", "lm", "decode", "score")


class RecipeError(RuntimeError):
    """A stage cannot go on; one line saying why and what to do."""


class Layout:
    """Where every stage reads and writes, under EXP."""

    def __init__(self, corpus: Path, exp: Path):
        self.corpus, self.exp = corpus, exp
        self.data = exp / "data"
        self.fbank = self.data / "fbank"
        self.train = exp / "train"
        self.conf = exp / "conf"  # the config's [model] and [train] as the JSON `speech-s2s train` reads
        self.average = exp / "average.safetensors"
        self.lm = exp / "lm" / "charlm.safetensors"
        self.decode = exp / "decode"

    def manifest(self, split: str) -> Path:
        return self.data / f"{split}.jsonl"

    def references(self, split: str) -> Path:
        return self.data / f"{split}.ref.txt"

    def audio_list(self, split: str) -> Path:
        return self.data / f"{split}.files"

    def report(self, split: str) -> Path:
        return self.data / f"verify-{split}.json"

    def hypotheses(self, split: str, setting: str) -> Path:
        return self.decode / f"hyp-{split}-{setting}.txt"

    def decoded_model(self, config: RecipeConfig) -> Path:
        return self.average if config.average.count > 0 else self.train / "best.safetensors"


def all_splits(config: RecipeConfig) -> list[str]:
    return list(dict.fromkeys([*config.data.train_splits, config.data.dev_split, *config.data.test_splits]))


def usable_splits(config: RecipeConfig, paths: Layout) -> list[str]:
    """The splits stage 0 found (a missing one is dropped when skip_invalid allowed it)."""
    unchecked = [s for s in all_splits(config) if not paths.report(s).is_file()]
    if unchecked:
        raise RecipeError(f"stage 1: {', '.join(unchecked)} not verified yet (run stage 0)")
    return [s for s in all_splits(config) if json.loads(paths.report(s).read_text())["exists"]]


def require(path: Path, stage: str, earlier: str) -> Path:
    if not path.is_file():
        raise RecipeError(f"{stage}: {path} is missing (run {earlier})")
    return path


# ---------------------------------------------------------------------------------------------- stages
def verify(config: RecipeConfig, paths: Layout) -> None:
    """Stage 0: check every split once (the report is kept); stop on problems unless skip_invalid."""
    from speech_s2s import atomic
    from speech_s2s.data.corpus import write_manifest
    from speech_s2s.data.corpus_check import verify_split

    failures = []
    for split in all_splits(config):
        if paths.report(split).is_file():
            report = json.loads(paths.report(split).read_text())
        else:
            checked = verify_split(paths.corpus / split, config.data.decode_audio, config.data.jobs)
            if checked.exists:
                write_manifest(checked.utterances, paths.data / "verified" / f"{split}.jsonl")
            report = {"split": split, "exists": checked.exists, "summary": checked.summary(), "counts": checked.counts(),
                      "problems": [{"kind": p.kind, "message": str(p)} for p in checked.problems], "valid": len(checked.utterances)}
            atomic.write_text(paths.report(split), json.dumps(report, indent=1))
        log.info("stage 0: %s", report["summary"])
        for problem in report["problems"][:10]:
            log.info("  %s: %s", problem["kind"], problem["message"])
        if len(report["problems"]) > 10:
            log.info("  ... %d more (all in %s)", len(report["problems"]) - 10, paths.report(split))
        if not report["exists"] or report["problems"]:
            failures.append(split)
    if failures and not config.data.skip_invalid:
        raise RecipeError(f"stage 0: problems in {', '.join(failures)} (listed above and in {paths.data}/verify-*.json); "
                          "fix the corpus, or set skip_invalid = true in [data] to go on with the valid part")
    missing = [s for s in all_splits(config) if not json.loads(paths.report(s).read_text())["exists"]]
    if config.data.dev_split in missing or set(config.data.train_splits) <= set(missing):
        lacking = "the dev split" if config.data.dev_split in missing else "any training split"
        raise RecipeError(f"stage 0: cannot train without {lacking} ({', '.join(missing)} missing)")


def manifests(config: RecipeConfig, paths: Layout) -> None:
    """Stage 1: manifest, references and audio list per split, from stage 0's valid utterances.
    The manifest is written last, so its presence means the split is done."""
    from speech_s2s import atomic
    from speech_s2s.data.corpus import (
        audio_list,
        read_manifest,
        reference_text,
        write_manifest,
    )

    for split in usable_splits(config, paths):
        if paths.manifest(split).is_file():
            continue
        utterances = read_manifest(paths.data / "verified" / f"{split}.jsonl")
        atomic.write_text(paths.references(split), reference_text(utterances))
        atomic.write_text(paths.audio_list(split), audio_list(utterances))
        write_manifest(utterances, paths.manifest(split))
        log.info("stage 1: %s: %d utterances, %.2f h", paths.manifest(split), len(utterances), sum(u.duration for u in utterances) / 3600)


def features(config: RecipeConfig, paths: Layout) -> None:
    """Stage 2: sharded features of the training and dev splits (test sets are decoded from audio)."""
    from speech_s2s.data.corpus import read_manifest
    from speech_s2s.data.feature_store import extract_features

    require(paths.manifest(config.data.dev_split), "stage 2", "stage 1")
    if not training_splits(config, paths):
        raise RecipeError(f"stage 2: no training manifests in {paths.data} (run stage 1)")
    for split in dict.fromkeys([*training_splits(config, paths), config.data.dev_split]):
        stored = extract_features(read_manifest(paths.manifest(split)), config.model.features, paths.fbank / split,
                                  config.data.shard_size, config.data.jobs, description=f"stage 2: features {split}")
        log.info("stage 2: %s: %d shards reused, %d computed", paths.fbank / split, stored.reused_shards, stored.computed_shards)


def training_splits(config: RecipeConfig, paths: Layout) -> list[str]:
    return [s for s in config.data.train_splits if paths.manifest(s).is_file()]


def train_command(config: RecipeConfig, paths: Layout) -> list[str]:
    """`speech-s2s train` for the configured processes: the same entry point on one CPU, one GPU or many."""
    launch = config.launch
    if launch.nproc_per_node > 1 or launch.nnodes > 1:
        runner = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={launch.nproc_per_node}", f"--nnodes={launch.nnodes}",
                  *(["--standalone"] if launch.nnodes == 1 and not launch.torchrun_args else []), *launch.torchrun_args, "-m", "speech_s2s.cli"]
    else:
        runner = [sys.executable, "-m", "speech_s2s.cli"]
    command = [
        *runner, "train", "--train", *[str(paths.manifest(s)) for s in training_splits(config, paths)], "--dev", str(paths.manifest(config.data.dev_split)),
        "--exp", str(paths.train), "--config", str(paths.conf / "model.json"), "--train-config", str(paths.conf / "train.json"),
        "--feature-dir", str(paths.fbank), "--resume",
    ]
    command += ["--device", launch.device] if launch.device else []
    command += ["--threads", str(launch.threads)] if launch.threads else []
    return command


def train(config: RecipeConfig, paths: Layout) -> None:
    """Stage 3: train (or continue training) until the configured epochs or steps."""
    from dataclasses import asdict

    from speech_s2s import atomic

    require(paths.manifest(config.data.dev_split), "stage 3", "stages 1-2")
    if not training_splits(config, paths):
        raise RecipeError(f"stage 3: no training manifests in {paths.data} (run stages 1-2)")
    atomic.write_text(paths.conf / "model.json", json.dumps(asdict(config.model), indent=1))
    train_config = {k: v for k, v in asdict(config.train).items() if k not in ("device", "augment")}
    atomic.write_text(paths.conf / "train.json", json.dumps(train_config, indent=1))
    command = train_command(config, paths)
    log.info("stage 3: %s", " ".join(command))
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")]))}
    if subprocess.run(command, env=environment).returncode != 0:
        raise RecipeError(f"stage 3: training stopped with an error (rerun stage 3 to continue from {paths.train / 'checkpoint.pt'})")


def average(config: RecipeConfig, paths: Layout) -> None:
    """Stage 4: average the best (by dev WER) or last N epoch snapshots into one model."""
    from speech_s2s.model.files import (
        average_info,
        average_models,
        read_model_info,
        save_model,
    )

    if config.average.count <= 0:
        log.info("stage 4: averaging off; stage 6 decodes %s", paths.train / "best.safetensors")
        return
    history = json.loads(require(paths.train / "history.json", "stage 4", "stage 3 for at least an epoch").read_text())
    epochs = [row for row in history if "dev_wer" in row and (paths.train / f"epoch{row['epoch']:03d}.safetensors").is_file()]
    if not epochs:
        raise RecipeError(f"stage 4: no epoch snapshots in {paths.train} (has stage 3 finished an epoch?)")
    ranked = sorted(epochs, key=lambda row: (row["dev_wer"], -row["epoch"])) if config.average.by == "best" else sorted(epochs, key=lambda row: -row["epoch"])
    chosen = sorted(row["epoch"] for row in ranked[: config.average.count])
    files = [paths.train / f"epoch{epoch:03d}.safetensors" for epoch in chosen]
    which = "with the lowest dev WER" if config.average.by == "best" else "the last ones"
    if paths.average.is_file() and read_model_info(paths.average).info.get("average", {}).get("epochs") == chosen \
            and all(paths.average.stat().st_mtime_ns >= f.stat().st_mtime_ns for f in files):
        log.info("stage 4: %s is already the mean of epochs %s (%s)", paths.average, chosen, which)
        return  # unchanged: rewriting it would make stage 6 decode everything again
    save_model(average_models(files), paths.average, info={**average_info(files), "average": {"by": config.average.by, "epochs": chosen}})
    log.info("stage 4: %s = mean of epochs %s (%s)", paths.average, chosen, which)


def lm_sentences(config: RecipeConfig, paths: Layout) -> tuple[list[str], str]:
    """The LM's training text: a seeded sample of the LM corpus, or the training transcripts."""
    from speech_s2s.data.corpus import read_manifest
    from speech_s2s.text import EOS_ID

    source = Path(config.lm.text) if Path(config.lm.text).is_absolute() else paths.corpus / config.lm.text
    if not source.is_file():
        texts = [u.text for s in training_splits(config, paths) for u in read_manifest(paths.manifest(s))]
        return texts, f"the training transcripts ({source} not found)"
    # Lines the model's characters spell, in either case (a regular expression: 6x faster than
    # Vocabulary.encode, measured, which matters for LibriSpeech's 40 million lines).
    characters = "".join(config.model.vocabulary[EOS_ID + 1 :])
    spellable = re.compile("[" + re.escape(characters + characters.upper()) + "]*")
    sample: list[str] = []
    rng = random.Random(0)
    with open(source, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle):  # reservoir sampling: any file size, bounded memory
            line = line.strip()
            if not line or not spellable.fullmatch(line):
                continue
            if len(sample) < config.lm.max_sentences:
                sample.append(line)
            elif (slot := rng.randrange(number + 1)) < config.lm.max_sentences:
                sample[slot] = line
    return sample, str(source)


def language_model(config: RecipeConfig, paths: Layout) -> None:
    """Stage 5: a character LM for shallow fusion (restarts from scratch if killed: it is the shortest stage)."""
    from speech_s2s.decoding.char_lm import save_lm, train_char_lm

    if paths.lm.is_file():
        log.info("stage 5: %s exists", paths.lm)
        return
    sentences, source = lm_sentences(config, paths)
    log.info("stage 5: character LM on %d sentences from %s", len(sentences), source)
    save_lm(train_char_lm(sentences, config.lm.model, config.lm.train), paths.lm)


def decode(config: RecipeConfig, paths: Layout) -> None:
    """Stage 6: every test set with every setting; finished ones are kept, a killed one continues."""
    import torch

    from speech_s2s.data.corpus import read_manifest
    from speech_s2s.decoding.char_lm import load_lm
    from speech_s2s.evaluation.corpus_decode import (
        decode_utterances,
        is_complete,
        run_signature,
    )
    from speech_s2s.model.files import load_model

    model_file = require(paths.decoded_model(config), "stage 6", "stages 3-4")
    if any(s.uses_lm for s in config.decode) and not paths.lm.is_file():
        raise RecipeError(f"stage 6: settings {[s.name for s in config.decode if s.uses_lm]} need {paths.lm} (run stage 5)")
    device = config.launch.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, lm = load_model(model_file), None
    for split in [s for s in config.data.test_splits if paths.manifest(s).is_file()]:
        utterances = read_manifest(paths.manifest(split))
        for setting in config.decode:
            signature = run_signature(model_file, setting.options, paths.lm if setting.uses_lm else None)
            output = paths.hypotheses(split, setting.name)
            if is_complete(output, signature):
                continue
            if setting.uses_lm and lm is None:
                lm = load_lm(paths.lm, vocabulary=model.vocabulary).to(device)
            output.parent.mkdir(parents=True, exist_ok=True)
            decode_utterances(model, utterances, output, setting.options, signature, lm if setting.uses_lm else None,
                              config.decode_batch_size, device, description=f"stage 6: {split} {setting.name}")
            log.info("stage 6: %s", output)


def score(config: RecipeConfig, paths: Layout) -> None:
    """Stage 7: recogs-*, errs-*, wer-summary-* per test set and RESULTS.md; every file rewritten whole."""
    from results import results_markdown

    from speech_s2s import atomic
    from speech_s2s.evaluation.error_report import errs_text, recogs_text
    from speech_s2s.evaluation.scoring import read_kaldi_text
    from speech_s2s.evaluation.scoring import score as score_texts

    rows = []
    for split in [s for s in config.data.test_splits if paths.manifest(s).is_file()]:
        references = read_kaldi_text(paths.references(split))
        summary = []
        for setting in config.decode:
            hypotheses_file = require(paths.hypotheses(split, setting.name), "stage 7", "stage 6")
            result = score_texts(references, read_kaldi_text(hypotheses_file))
            atomic.write_text(paths.exp / f"recogs-{split}-{setting.name}.txt", recogs_text(result))
            atomic.write_text(paths.exp / f"errs-{split}-{setting.name}.txt", errs_text(result, f"{split}, {setting.name}"))
            summary.append((setting.name, result))
            rows.append((split, setting.name, result))
        lines = [f"{name}\t{100 * result.wer:.2f}\t{100 * result.cer:.2f}" for name, result in sorted(summary, key=lambda item: (item[1].wer, item[0]))]
        atomic.write_text(paths.exp / f"wer-summary-{split}.txt", "setting\tWER%\tCER%\n" + "\n".join(lines) + "\n")
        log.info("stage 7: %s: %s", split, ", ".join(f"{name} {100 * result.wer:.2f}%" for name, result in summary))
    atomic.write_text(paths.exp / "RESULTS.md", results_markdown(config, paths, rows))
    log.info("stage 7: %s", paths.exp / "RESULTS.md")


STAGE_FUNCTIONS = (verify, manifests, features, train, average, language_model, decode, score)


# ---------------------------------------------------------------------------------------------- main
def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, help="LibriSpeech root (the folder holding train-clean-100, dev-clean, ...)")
    parser.add_argument("exp", type=Path, help="experiment folder (everything the recipe writes)")
    parser.add_argument("--config", default="las_100h", help="conf/NAME.toml or a path (default las_100h)")
    parser.add_argument("--stage", type=int, default=0, choices=range(len(STAGES)), metavar="N", help=f"first stage, 0-{len(STAGES) - 1}")
    parser.add_argument("--stop-stage", type=int, default=len(STAGES) - 1, choices=range(len(STAGES)), metavar="M", help="last stage (default 7)")
    parser.add_argument("--verbose", action="store_true", help="tracebacks on errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"recipe: error: {error}", file=sys.stderr)
        return 2
    paths = Layout(args.corpus, args.exp)
    paths.data.mkdir(parents=True, exist_ok=True)
    if not (args.exp / "config.toml").is_file() or args.stage == 0:  # what produced this experiment
        from speech_s2s import atomic

        atomic.write_text(args.exp / "config.toml", config_path(args.config).read_text(encoding="utf-8"))
    try:
        for number in range(args.stage, args.stop_stage + 1):
            log.info("stage %d: %s", number, STAGES[number])
            STAGE_FUNCTIONS[number](config, paths)
    except RecipeError as error:
        print(f"recipe: error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # a bug or an unforeseen input: one line unless asked for more
        if args.verbose:
            raise
        print(f"recipe: error: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''} (rerun with --verbose)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
