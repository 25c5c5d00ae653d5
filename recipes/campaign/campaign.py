#!/usr/bin/env python3
"""Book-keeping for the training campaign (recipes/campaign/run.sh): phases, the run log, promotion.

    campaign.py phase EXP TRAIN_SPLIT INIT [--restart] [--weight ENGINE=N ...]
                                                -> prints the phase folder to train in (makes a new one
                                                   when the corpus has grown by GROW since the last, or
                                                   the weights changed; with --restart, a new one from
                                                   INIT, for when the last phase's training settings
                                                   proved wrong). --weight: each utterance of ENGINE's
                                                   speakers (per the corpus's SPEAKERS.TXT) is in the
                                                   phase's manifest N times
    campaign.py steps PHASE                     -> prints the update count of PHASE's checkpoint (0 if none)
    campaign.py log EXP PHASE STEPS_BEFORE MINUTES SCORES.json [BUNDLED.json]
                                                -> appends one row to EXP/campaign.md
    campaign.py promote CANDIDATE.json BUNDLED.json -> exit 0 if the candidate is better on every dev set
    campaign.py subset MANIFEST SPEAKERS.TXT ENGINE[/VOICE] ...
                                                -> prints the manifest lines whose speaker is one of these
                                                   engines (or engine/voice pairs), per the corpus's SPEAKERS.TXT

A phase trains on a frozen manifest of the corpus as it was when the phase began, so `--resume`
within a phase is exact. The corpus tool can keep growing the corpus meanwhile; once it holds GROW
times the phase's utterances, the next run starts a new phase from the last phase's weights.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

GROW = 1.25


def _phases(exp: Path) -> list[Path]:
    return sorted(exp.glob("phase-*"), key=lambda p: int(p.name.split("-")[1]))


def _count(manifest: Path) -> int:
    return sum(1 for line in manifest.read_text().splitlines() if line.strip()) if manifest.is_file() else 0


def _weights_text(weights: dict[str, int]) -> str:
    return " ".join(f"{engine}={times}" for engine, times in sorted(weights.items()) if times != 1)


def _phase_weights(folder: Path) -> str:
    """The weights a phase was made with ("" for none: phases before weights existed had none)."""
    return (folder / "weights.txt").read_text().strip() if (folder / "weights.txt").is_file() else ""


def _unique_count(manifest: Path) -> int:
    return len({json.loads(line)["id"] for line in manifest.read_text().splitlines() if line.strip()}) if manifest.is_file() else 0


def _weighted(manifest: Path, speakers_table: Path, weights: dict[str, int]) -> str:
    """The manifest's lines in order, then the extra copies of weighted engines' lines, so that a
    feature cache of the unweighted manifest still holds the new one's prefix."""
    lines = [line for line in manifest.read_text().splitlines() if line.strip()]
    if not weights:
        return "".join(line + "\n" for line in lines)
    voice_of = _voices(speakers_table)
    extra = []
    for times in range(2, max(weights.values()) + 1):
        extra += [line for line in lines if weights.get(voice_of.get(json.loads(line)["speaker"], ("", ""))[0], 1) >= times]
    return "".join(line + "\n" for line in lines + extra)


def _share_features(previous: Path, folder: Path) -> None:
    """Hard-link the last phase's feature caches into the new phase: its manifest starts with the
    same utterances (the corpus grows as a prefix; weights append copies), and the store checks every
    shard against its audio and recomputes what differs, writing new files rather than into links."""
    for cache in ("feats-train0", "feats-dev"):
        if (previous / cache).is_dir():
            (folder / cache).mkdir()
            for path in (previous / cache).iterdir():
                if path.is_file() and not path.name.endswith(".tmp"):
                    try:
                        os.link(path, folder / cache / path.name)
                    except OSError:  # another file system, or no hard links: the copy costs disk, not time
                        shutil.copy2(path, folder / cache / path.name)


def phase(exp: Path, train_split: str, init: str, restart: bool = False, weights: dict[str, int] | None = None) -> int:
    exp.mkdir(parents=True, exist_ok=True)
    phases = _phases(exp)
    weights = {engine: times for engine, times in (weights or {}).items() if times != 1}
    candidate = exp / "train-now.jsonl"
    subprocess.run(["speech-s2s", "prepare", train_split, "--out", str(candidate), "--skip-invalid"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    available = _count(candidate)
    if (phases and not restart and available < GROW * _unique_count(phases[-1] / "train.jsonl")
            and _phase_weights(phases[-1]) == _weights_text(weights)):
        print(phases[-1])
        return 0
    manifest = _weighted(candidate, Path(train_split).parent / "SPEAKERS.TXT", weights)  # before the folder: it may fail
    number = int(phases[-1].name.split("-")[1]) + 1 if phases else 1
    folder = exp / f"phase-{number}"
    folder.mkdir()
    (folder / "train.jsonl").write_text(manifest)
    candidate.unlink()
    (folder / "weights.txt").write_text(_weights_text(weights) + "\n")
    if phases:
        _share_features(phases[-1], folder)
    continue_from_last = phases and not restart and (phases[-1] / "last.safetensors").is_file()
    start = phases[-1] / "last.safetensors" if continue_from_last else Path(init)
    (folder / "init.txt").write_text(f"{start}\n")
    print(folder)
    return 0


def steps(folder: Path) -> int:
    checkpoint = folder / "checkpoint.pt"
    if not checkpoint.is_file():
        print(0)
        return 0
    import torch

    print(torch.load(checkpoint, weights_only=True, map_location="cpu")["state"]["step"])
    return 0


def log(exp: Path, folder: Path, steps_before: int, minutes: float, scores_path: Path, bundled_path: Path | None) -> int:
    import torch

    state = torch.load(folder / "checkpoint.pt", weights_only=True, map_location="cpu")["state"] if (folder / "checkpoint.pt").is_file() else {"step": 0, "epoch": 0}
    scores = json.loads(scores_path.read_text())
    bundled = json.loads(bundled_path.read_text()) if bundled_path and bundled_path.is_file() else {}
    hours = sum(json.loads(line)["duration"] for line in (folder / "train.jsonl").read_text().splitlines()) / 3600
    row = (f"| {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} | {folder.name} ({hours:.1f} h) | {steps_before} -> {state['step']} "
           f"(epoch {state['epoch']}) | {minutes:.0f} | " + " | ".join(f"{100 * scores[k]:.2f} ({100 * bundled.get(k, float('nan')):.2f})" for k in sorted(scores)) + " |")
    table = exp / "campaign.md"
    header = f"| date | phase (train audio) | updates | minutes | {' | '.join(sorted(scores))} |"
    if not table.is_file():
        table.write_text("# Training campaign\n\nOne row per run of recipes/campaign/run.sh. Dev WER % of the exported model, greedy "
                         "(in brackets: the bundled model on the same set).\n")
    headers = [line for line in table.read_text().splitlines() if line.startswith("| date |")]
    with open(table, "a") as handle:
        if not headers or headers[-1] != header:  # first run, or the dev sets changed: a new table
            handle.write(f"\n{header}\n|---|---|---|---|{'---|' * len(scores)}\n")
        handle.write(row + "\n")
    print(row)
    return 0


def promote(candidate: Path, bundled: Path) -> int:
    new, old = json.loads(candidate.read_text()), json.loads(bundled.read_text())
    if set(new) != set(old):  # a dev set scored for one model only: no comparison, no promotion
        print(f"not comparable: candidate scored on {sorted(new)}, bundled model on {sorted(old)}")
        return 1
    better = all(new[k] < old[k] for k in old)
    print(("better" if better else "not better") + " on every dev set: " + ", ".join(f"{k} {100 * new[k]:.2f} vs {100 * old[k]:.2f}" for k in sorted(old)))
    return 0 if better else 1


def _voices(speakers_table: Path) -> dict[str, tuple[str, str]]:
    """speaker id -> (engine, voice), from a corpus's SPEAKERS.TXT (tools/tts/layout.py writes it)."""
    if not speakers_table.is_file():
        raise SystemExit(f"{speakers_table}: no such file (the corpus tool writes it; needed to weight engines)")
    voice_of: dict[str, tuple[str, str]] = {}
    for line in speakers_table.read_text().splitlines():
        if line.startswith(";") or "|" not in line:
            continue
        speaker, _, _, description = (field.strip() for field in line.split("|", 3))
        engine, *settings = description.split()
        voice = next((s.split("=", 1)[1] for s in settings if s.startswith("voice=")), "")
        voice_of[speaker] = (engine, voice)
    return voice_of


def subset(manifest: Path, speakers_table: Path, wanted: list[str]) -> int:
    voice_of = _voices(speakers_table)
    engines = {w for w in wanted if "/" not in w}
    pairs = {tuple(w.split("/", 1)) for w in wanted if "/" in w}
    kept = 0
    for line in manifest.read_text().splitlines():
        if line.strip():
            engine, voice = voice_of.get(json.loads(line)["speaker"], ("", ""))
            if engine in engines or (engine, voice) in pairs:
                print(line)
                kept += 1
    if not kept:
        print(f"subset: no utterance of {manifest} is spoken by {' '.join(wanted)}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str]) -> int:
    command, *rest = argv
    if command == "phase":
        options = rest[3:]
        weights = {}
        for index, option in enumerate(options):
            if option == "--weight":
                engine, _, times = (options[index + 1] if index + 1 < len(options) else "").partition("=")
                if not engine or not times.isdigit() or int(times) < 1:
                    raise SystemExit("--weight takes ENGINE=N, N a whole number of times (at least 1)")
                weights[engine] = int(times)
        return phase(Path(rest[0]), rest[1], rest[2], restart="--restart" in options, weights=weights)
    if command == "steps":
        return steps(Path(rest[0]))
    if command == "log":
        return log(Path(rest[0]), Path(rest[1]), int(rest[2]), float(rest[3]), Path(rest[4]), Path(rest[5]) if len(rest) > 5 else None)
    if command == "promote":
        return promote(Path(rest[0]), Path(rest[1]))
    if command == "subset":
        return subset(Path(rest[0]), Path(rest[1]), rest[2:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
