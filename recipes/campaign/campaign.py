#!/usr/bin/env python3
"""Book-keeping for the training campaign (recipes/campaign/run.sh): phases, the run log, promotion.

    campaign.py phase EXP TRAIN_SPLIT INIT [--restart] [--weight ENGINE=N ...] [--rehearse SPLIT ...]
                  [--held-out-text FILE ...] [--thin FILE=SHARE ...]
                                                -> prints the phase folder to train in (makes a new one
                                                   when the corpus has grown by GROW since the last, or
                                                   the mix changed; with --restart, a new one from
                                                   INIT, for when the last phase's training settings
                                                   proved wrong). --weight: each utterance of ENGINE's
                                                   speakers (per the corpus's SPEAKERS.TXT) is in the
                                                   phase's manifest N times. --rehearse: another
                                                   corpus's split joins the manifest once (ids and
                                                   speakers prefixed with its corpus folder's name;
                                                   repeatable; a new phase when one has grown by GROW,
                                                   as Kokoro's corpus does while it is synthesised).
                                                   --held-out-text: 'utt-id TEXT' files (dev sets)
                                                   whose sentences no training utterance may say.
                                                   --thin: of the utterances saying one of FILE's
                                                   sentences (one per line), keep SHARE (0..1): the
                                                   same ones in every phase, chosen by their ids
    campaign.py unread DEV SPLIT OUT            -> writes OUT.{jsonl,ref.txt,files}: the dev set DEV (the
                                                   prefix of `prepare`'s three files) without the
                                                   utterances whose sentence SPLIT's transcripts say
    campaign.py curve EXP OUT.png               -> plots every phase's in-training dev WER, phases that
                                                   continue another's weights on one line, and each
                                                   run's exported model on every dev set (campaign.md)
    campaign.py steps PHASE                     -> prints the update count of PHASE's checkpoint (0 if none)
    campaign.py transcribed SPLIT               -> prints how many utterances SPLIT's transcripts hold (the
                                                   count a joined split's growth is measured in)
    campaign.py log EXP PHASE STEPS_BEFORE MINUTES SCORES.json [BUNDLED.json]
                                                -> appends one row to EXP/campaign.md
    campaign.py promote CANDIDATE.json BUNDLED.json [--improve DEV_SET ... --comparisons PREFIX]
                                                -> exit 0 if the candidate is better on every dev set; with
                                                   --improve, better on those and not worse beyond noise
                                                   (paired bootstrap, PREFIX.DEV_SET.json) on the others
    campaign.py subset MANIFEST SPEAKERS.TXT ENGINE[/VOICE] ...
                                                -> prints the manifest lines whose speaker is one of these
                                                   engines (or engine/voice pairs), per the corpus's SPEAKERS.TXT

A phase trains on a frozen manifest of the corpus as it was when the phase began, so `--resume`
within a phase is exact. The corpus tool can keep growing the corpus meanwhile; once it holds GROW
times the phase's utterances, the next run starts a new phase from the last phase's weights.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

GROW = 1.25
# campaign.md's columns before one per dev set: `log` writes them, `runs` reads them back
RUN_COLUMNS = ("date", "phase (train audio)", "updates", "minutes")


def _phases(exp: Path) -> list[Path]:
    return sorted(exp.glob("phase-*"), key=lambda p: int(p.name.split("-")[1]))


def _split_key(split: str) -> str:
    """How a joined split is named in a phase's mix.txt and joined-utterances.json: its absolute path."""
    return str(Path(split).resolve())


def _mix_text(weights: dict[str, int], rehearse: list[str], thin: dict[str, float] | None = None) -> str:
    """One line saying what a phase's manifest is made of, beyond the corpus itself."""
    parts = [f"{engine}={times}" for engine, times in sorted(weights.items()) if times != 1]
    parts += [f"rehearse={_split_key(split)}" for split in rehearse]
    return " ".join(parts + [f"thin={_split_key(text)}:{share:g}" for text, share in sorted((thin or {}).items())])


def _kept(utterance_id: str, share: float) -> bool:
    """Whether a thinned utterance stays: its id's hash, as a fraction of the hash range, is below `share`.
    The same ids stay in every phase, so a grown mix still starts with the last phase's manifest."""
    digest = int.from_bytes(hashlib.sha256(utterance_id.encode()).digest()[:8], "big")
    return digest < share * 2**64


def _thinned(lines: list[str], thin: dict[str, float]) -> list[str]:
    """`lines` without the share (1 - SHARE) of the utterances that say one of a thinned file's sentences."""
    for text_file, share in thin.items():
        sentences = {line.strip() for line in Path(text_file).read_text().splitlines() if line.strip()}
        lines = [line for line in lines
                 if (record := json.loads(line))["text"] not in sentences or _kept(record["id"], share)]
    return lines


def _transcribed(split: str) -> int:
    """Utterances a corpus split holds so far (lines of its transcripts: cheap, unlike `prepare`)."""
    return sum(len(path.read_text().splitlines()) for path in Path(split).rglob("*.trans.txt"))


def _joined_grew(folder: Path, rehearse: list[str]) -> bool:
    """Whether a joined split still being synthesised (Kokoro's corpus) has grown by GROW since the
    phase took it; phases made before the counts were kept never re-phase for it."""
    counted = folder / "joined-utterances.json"
    if not counted.is_file():
        return False
    before = json.loads(counted.read_text())
    return any(_transcribed(split) >= GROW * before.get(_split_key(split), 0) > 0 for split in rehearse)


def _phase_mix(folder: Path) -> str:
    """The mix a phase was made with ("" for none: the first phases had none; phase 4 wrote weights.txt)."""
    for name in ("mix.txt", "weights.txt"):
        if (folder / name).is_file():
            return (folder / name).read_text().strip()
    return ""


def _phase_corpus_count(folder: Path) -> int:
    """Utterances the phase took from the growing corpus (older phases: its manifest's distinct ids)."""
    counted = folder / "corpus-utterances.txt"
    return int(counted.read_text()) if counted.is_file() else _unique_count(folder / "train.jsonl")


def _prepare(split: str, out: Path) -> list[str]:
    subprocess.run(["speech-s2s", "prepare", split, "--out", str(out), "--skip-invalid"], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines = [line for line in out.read_text().splitlines() if line.strip()]
    out.unlink()
    return lines


def _sentences(files) -> set[str]:
    """The sentences of Kaldi-style 'utt-id TEXT' files (dev references, a corpus's trans.txt)."""
    from speech_s2s.evaluation.scoring import read_kaldi_text

    return {text for name in files for text in read_kaldi_text(name).values() if text}


def _rehearsal(split: str, out: Path) -> list[str]:
    """The rehearsed corpus's lines, ids and speakers prefixed with its corpus folder's name, so that
    they never collide with the campaign corpus's (both tools number speakers from 1001)."""
    corpus = Path(split).resolve().parent.name
    lines = []
    for line in _prepare(split, out):
        record = json.loads(line)
        record["id"], record["speaker"] = f"{corpus}/{record['id']}", f"{corpus}/{record['speaker']}"
        lines.append(json.dumps(record))
    return lines


def _unique_count(manifest: Path) -> int:
    return len({json.loads(line)["id"] for line in manifest.read_text().splitlines() if line.strip()}) if manifest.is_file() else 0


def _weighted(lines: list[str], speakers_table: Path, weights: dict[str, int]) -> list[str]:
    """The corpus's lines in order, then the extra copies of weighted engines' lines, so that a
    feature cache of the unweighted manifest still holds the new one's prefix."""
    if not weights:
        return lines
    voice_of = _voices(speakers_table)
    extra = []
    for times in range(2, max(weights.values()) + 1):
        extra += [line for line in lines if weights.get(voice_of.get(json.loads(line)["speaker"], ("", ""))[0], 1) >= times]
    return lines + extra


def _share_features(previous: Path, folder: Path) -> None:
    """Hard-link the last phase's feature caches into the new phase: its manifest starts with the
    same utterances (the corpus grows as a prefix; weights append copies), and the store checks every
    shard against its audio and recomputes what differs, writing new files rather than into links."""
    from speech_s2s.atomic import is_temporary

    for cache in ("feats-train0", "feats-dev"):
        if (previous / cache).is_dir():
            (folder / cache).mkdir()
            for path in (previous / cache).iterdir():
                if path.is_file() and not is_temporary(path):  # a killed run's half-written shard
                    try:
                        os.link(path, folder / cache / path.name)
                    except OSError:  # another file system, or no hard links: the copy costs disk, not time
                        shutil.copy2(path, folder / cache / path.name)


def phase(exp: Path, train_split: str, init: str, restart: bool = False, weights: dict[str, int] | None = None,
          rehearse: list[str] | None = None, held_out_text: list[str] | None = None,
          thin: dict[str, float] | None = None) -> int:
    exp.mkdir(parents=True, exist_ok=True)
    phases = _phases(exp)
    weights = {engine: times for engine, times in (weights or {}).items() if times != 1}
    rehearse = rehearse or []
    thin = {text: share for text, share in (thin or {}).items() if share < 1}
    mix = _mix_text(weights, rehearse, thin)
    corpus = _prepare(train_split, exp / "train-now.jsonl")
    if (phases and not restart and len(corpus) < GROW * _phase_corpus_count(phases[-1])
            and _phase_mix(phases[-1]) == mix and not _joined_grew(phases[-1], rehearse)):
        print(phases[-1])
        return 0
    # the manifest before the folder: a missing speaker table must leave no phase behind
    lines = _weighted(corpus, Path(train_split).parent / "SPEAKERS.TXT", weights)
    joined = {}
    for split in rehearse:
        extra = _rehearsal(split, exp / "rehearse-now.jsonl")
        lines = lines + extra  # a new list: `corpus` is counted below
        joined[_split_key(split)] = _transcribed(split)
    held_out = _sentences(held_out_text or [])
    lines = _thinned([line for line in lines if json.loads(line)["text"] not in held_out], thin)
    number = int(phases[-1].name.split("-")[1]) + 1 if phases else 1
    folder = exp / f"phase-{number}"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(line + "\n" for line in lines))
    (folder / "corpus-utterances.txt").write_text(f"{len(corpus)}\n")
    (folder / "mix.txt").write_text(mix + "\n")
    (folder / "joined-utterances.json").write_text(json.dumps(joined) + "\n")
    if phases:
        _share_features(phases[-1], folder)
    continue_from_last = phases and not restart and (phases[-1] / "last.safetensors").is_file()
    start = phases[-1] / "last.safetensors" if continue_from_last else Path(init)
    (folder / "init.txt").write_text(f"{start}\n")
    print(folder)
    return 0


def unread(dev: str, split: str, out: str) -> int:
    """A dev set without the sentences a corpus's train split says: a model trained on that split has
    read them (by other voices), which flatters its score against a model that has not."""
    said = _sentences(Path(split).rglob("*.trans.txt"))
    records = [json.loads(line) for line in Path(f"{dev}.jsonl").read_text().splitlines() if line.strip()]
    kept = [r for r in records if r["text"] not in said]
    ids = {r["id"] for r in kept}
    Path(f"{out}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    Path(f"{out}.ref.txt").write_text("".join(line + "\n" for line in Path(f"{dev}.ref.txt").read_text().splitlines()
                                            if line.split(maxsplit=1)[0] in ids))
    # last: stage 1 takes OUT.files as the sign that all three exist
    Path(f"{out}.files").write_text("".join(line + "\n" for line in Path(f"{dev}.files").read_text().splitlines()
                                          if Path(line).stem in ids))
    print(f"{out}: {len(kept)} of {len(records)} utterances; left out, as {split} says their sentence: {len(records) - len(kept)}")
    return 0


def _lineage_offsets(exp: Path) -> dict[str, tuple[str, int]]:
    """Phase name -> (its lineage's first phase, the lineage's updates before it began), along the
    phases' init.txt: a phase that starts from another's last weights continues its updates."""
    offsets: dict[str, tuple[str, int]] = {}
    for folder in _phases(exp):
        start = Path((folder / "init.txt").read_text().strip()) if (folder / "init.txt").is_file() else None
        parent = start.parent.name if start is not None and start.parent.name in offsets else None
        if parent is not None:  # the parent's last weights: where its checkpoint had got to
            first, before = offsets[parent]
            offsets[folder.name] = (first, before + _checkpoint_step(exp / parent))
        else:
            offsets[folder.name] = (folder.name, 0)
    return offsets


def _label(first: str, offsets: dict[str, tuple[str, int]]) -> str:
    return f"from {first}" + "".join(f", {name}" for name, (root, _) in offsets.items() if root == first and name != first)


def lineages(exp: Path, offsets: dict[str, tuple[str, int]] | None = None) -> list[tuple[str, list[tuple[int, float]]]]:
    """(label, [(update, dev WER)]) per lineage: dev WER per epoch of every phase, updates counted
    from the lineage's start (`offsets`: `_lineage_offsets(exp)`, when the caller has them)."""
    offsets = offsets if offsets is not None else _lineage_offsets(exp)
    lines: dict[str, list[tuple[int, float]]] = {}
    for folder in _phases(exp):
        history = json.loads((folder / "history.json").read_text()) if (folder / "history.json").is_file() else []
        first, before = offsets[folder.name]
        lines.setdefault(first, []).extend((before + r["step"], r["dev_wer"]) for r in history if "dev_wer" in r)
    return [(_label(first, offsets), points) for first, points in lines.items()]


def runs(exp: Path, offsets: dict[str, tuple[str, int]] | None = None) -> list[tuple[str, list[tuple[int, float]]]]:
    """(label, [(update, WER)]) per dev set and lineage: each run's exported model, greedy, as `log`
    wrote it in campaign.md (updates at the run's end, counted from the lineage's start)."""
    table = exp / "campaign.md"
    offsets = offsets if offsets is not None else _lineage_offsets(exp)
    lines: dict[tuple[str, str], list[tuple[int, float]]] = {}
    sets: list[str] = []
    for row in table.read_text().splitlines() if table.is_file() else []:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        if cells[0] == RUN_COLUMNS[0]:
            sets = cells[len(RUN_COLUMNS):]
        elif row.startswith("| 2") and len(cells) == len(RUN_COLUMNS) + len(sets):
            phase_name = cells[1].split()[0]
            first, before = offsets.get(phase_name, (phase_name, 0))
            update = before + int(cells[2].split("->")[1].split()[0])
            for name, cell in zip(sets, cells[len(RUN_COLUMNS):]):
                lines.setdefault((name, first), []).append((update, float(cell.split()[0]) / 100))
    several = len({first for _, first in lines}) > 1
    return [(f"{name} ({_label(first, offsets)})" if several else name, points) for (name, first), points in lines.items()]


def curve(exp: Path, out: Path) -> int:
    from speech_s2s.training.plots import plot_campaign

    offsets = _lineage_offsets(exp)  # reads every phase's checkpoint: once for both panels
    plot_campaign(lineages(exp, offsets), out, runs(exp, offsets))
    print(out)
    return 0


def ablation_plot(folder: Path, out: Path, runs: list[str], title: str = "") -> int:
    """real_voice_ablation.sh's runs against the first one (the model they all started from), as bars."""
    from speech_s2s.training.plots import plot_ablation

    scores = {run: json.loads((folder / run / "scores.json").read_text()) for run in runs if (folder / run / "scores.json").is_file()}
    if runs[0] not in scores:
        print(f"campaign.py: {folder / runs[0] / 'scores.json'}: no such file", file=sys.stderr)
        return 1
    plot_ablation(scores, runs[0], out, title)
    print(out)
    return 0


def _checkpoint_step(folder: Path) -> int:
    checkpoint = folder / "checkpoint.pt"
    if not checkpoint.is_file():
        return 0
    import torch

    return int(torch.load(checkpoint, weights_only=True, map_location="cpu")["state"]["step"])


def steps(folder: Path) -> int:
    print(_checkpoint_step(folder))
    return 0


def log(exp: Path, folder: Path, steps_before: int, minutes: float, scores_path: Path, bundled_path: Path | None) -> int:
    import torch

    state = torch.load(folder / "checkpoint.pt", weights_only=True,
        map_location="cpu")["state"] if (folder / "checkpoint.pt").is_file() else {"step": 0, "epoch": 0}
    scores = json.loads(scores_path.read_text())
    bundled = json.loads(bundled_path.read_text()) if bundled_path and bundled_path.is_file() else {}
    hours = sum(json.loads(line)["duration"] for line in (folder / "train.jsonl").read_text().splitlines()) / 3600
    row = (f"| {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} | {folder.name} ({hours:.1f} h) | {steps_before} -> {state['step']} "
           f"(epoch {state['epoch']}) | {minutes:.0f} | "
           + " | ".join(f"{100 * scores[k]:.2f} ({100 * bundled.get(k, float('nan')):.2f})" for k in sorted(scores)) + " |")
    table = exp / "campaign.md"
    header = f"| {' | '.join(RUN_COLUMNS + tuple(sorted(scores)))} |"
    if not table.is_file():
        table.write_text("# Training campaign\n\nOne row per run of recipes/campaign/run.sh. Dev WER % of the exported model, greedy "
                         "(in brackets: the bundled model on the same set).\n")
    headers = [line for line in table.read_text().splitlines() if line.startswith(f"| {RUN_COLUMNS[0]} |")]
    with open(table, "a") as handle:
        if not headers or headers[-1] != header:  # first run, or the dev sets changed: a new table
            handle.write(f"\n{header}\n|{'---|' * (len(RUN_COLUMNS) + len(scores))}\n")
        handle.write(row + "\n")
    print(row)
    return 0


def promote(candidate: Path, bundled: Path, improve: list[str] | None = None, comparisons: str | None = None) -> int:
    """Exit status 0 when the candidate should replace the bundled model.

    Without `improve`, it must make fewer errors on every dev set. With it, on those dev sets (the
    issue's two: the synthetic dev split and the real voice) it must make fewer errors, and on each
    other set (guards: voices it must not forget) it must either make fewer errors or not be
    significantly worse: the 95 % paired-bootstrap interval of its WER minus the bundled model's,
    read from `score --compare --json` output at COMPARISONS.SET.json, must reach down to zero. A
    dev set of a few hundred utterances moves by tenths of a point from which utterances it holds,
    so "fewer errors on all five" blocked real gains on two sets for a tie within noise on a third.
    """
    new, old = json.loads(candidate.read_text()), json.loads(bundled.read_text())
    if set(new) != set(old):  # a dev set scored for one model only: no comparison, no promotion
        print(f"not comparable: candidate scored on {sorted(new)}, bundled model on {sorted(old)}")
        return 1
    must_improve = set(old) if improve is None else set(improve)
    if not must_improve <= set(old):
        print(f"not comparable: {', '.join(sorted(must_improve - set(old)))} not scored (scored: {', '.join(sorted(old))})")
        return 1
    verdicts, promoted = [], True
    for name in sorted(old):
        line = f"{name} {100 * new[name]:.2f} vs {100 * old[name]:.2f}"
        if new[name] < old[name]:
            verdicts.append(f"{line} better")
            continue
        if name in must_improve:
            verdicts.append(f"{line} NOT BETTER")
            promoted = False
            continue
        low = _interval_low(comparisons, name, new[name], old[name])
        if isinstance(low, str):
            verdicts.append(f"{line} NOT BETTER ({low})")
            promoted = False
        elif low > 0:
            verdicts.append(f"{line} WORSE beyond noise (95 % interval {100 * low:+.2f} ..)")
            promoted = False
        else:
            verdicts.append(f"{line} worse within noise (95 % interval from {100 * low:+.2f})")
    rule = "better on every dev set" if improve is None else f"better on {', '.join(sorted(must_improve))}, no other set worse beyond noise"
    print(("promote" if promoted else "keep the bundled model") + f" ({rule}): " + "; ".join(verdicts))
    return 0 if promoted else 1


def _interval_low(prefix: str | None, name: str, candidate_wer: float, bundled_wer: float) -> float | str:
    """The lower end of a guard set's bootstrap interval, or why there is none to trust."""
    if prefix is None:
        return "no --comparisons"
    path = Path(f"{prefix}.{name}.json")
    try:
        compared = json.loads(path.read_text())["compare"]
        low, wers = float(compared["low"]), (float(compared["candidate_wer"]), float(compared["baseline_wer"]))
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"{path}: no comparison ({type(error).__name__})"
    if max(abs(wers[0] - candidate_wer), abs(wers[1] - bundled_wer)) > 1e-9:
        return f"{path} compares other transcripts (WER {100 * wers[0]:.2f} vs {100 * wers[1]:.2f})"
    return low


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


class _OneLineParser(argparse.ArgumentParser):
    """Usage mistakes in one line (the recipe's log shows them beside tqdm's), not argparse's two."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}\n")


def _engine_times(value: str) -> tuple[str, int]:
    engine, _, times = value.partition("=")
    if not engine or not times.isdigit() or int(times) < 1:
        raise argparse.ArgumentTypeError("takes ENGINE=N, N a whole number of times (at least 1)")
    return engine, int(times)


def _text_share(value: str) -> tuple[str, float]:
    text_file, _, share = value.rpartition("=")
    try:
        fraction = float(share)
    except ValueError:
        fraction = -1.0
    if not text_file or not 0 <= fraction <= 1:
        raise argparse.ArgumentTypeError("takes FILE=SHARE, SHARE a fraction from 0 to 1")
    if not Path(text_file).is_file():
        raise argparse.ArgumentTypeError(f"{text_file}: no such file")
    return text_file, fraction


def _parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="campaign.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    command = commands.add_parser("phase")
    command.add_argument("exp", type=Path)
    command.add_argument("train_split")
    command.add_argument("init")
    command.add_argument("--restart", action="store_true")
    command.add_argument("--weight", type=_engine_times, action="append", default=[], metavar="ENGINE=N")
    command.add_argument("--rehearse", action="append", default=[], metavar="SPLIT")
    command.add_argument("--held-out-text", action="append", default=[], metavar="FILE")
    command.add_argument("--thin", type=_text_share, action="append", default=[], metavar="FILE=SHARE")
    command = commands.add_parser("unread")
    for name in ("dev", "split", "out"):
        command.add_argument(name)
    command = commands.add_parser("curve")
    command.add_argument("exp", type=Path)
    command.add_argument("out", type=Path)
    commands.add_parser("steps").add_argument("phase", type=Path)
    commands.add_parser("transcribed").add_argument("split")
    command = commands.add_parser("log")
    command.add_argument("exp", type=Path)
    command.add_argument("phase", type=Path)
    command.add_argument("steps_before", type=int)
    command.add_argument("minutes", type=float)
    command.add_argument("scores", type=Path)
    command.add_argument("bundled", type=Path, nargs="?")
    command = commands.add_parser("promote")
    command.add_argument("candidate", type=Path)
    command.add_argument("bundled", type=Path)
    command.add_argument("--improve", nargs="+", metavar="DEV_SET", help="the dev sets it must be better on; the others must not be worse beyond noise")
    command.add_argument("--comparisons", metavar="PREFIX", help="PREFIX.DEV_SET.json: `speech-s2s score --compare --json` of each other set")
    command = commands.add_parser("ablation-plot")
    command.add_argument("folder", type=Path, help="the ablation's folder: RUN/scores.json for each run")
    command.add_argument("out", type=Path)
    command.add_argument("runs", nargs="+", metavar="RUN", help="the reference run first, then the others")
    command.add_argument("--title", default="")
    command = commands.add_parser("subset")
    command.add_argument("manifest", type=Path)
    command.add_argument("speakers_table", type=Path)
    command.add_argument("wanted", nargs="+", metavar="ENGINE[/VOICE]")
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command == "phase":
        return phase(args.exp, args.train_split, args.init, restart=args.restart, weights=dict(args.weight),
                     rehearse=args.rehearse, held_out_text=args.held_out_text, thin=dict(args.thin))
    if args.command == "curve":
        return curve(args.exp, args.out)
    if args.command == "unread":
        return unread(args.dev, args.split, args.out)
    if args.command == "steps":
        return steps(args.phase)
    if args.command == "transcribed":
        print(_transcribed(args.split))  # the count a joined split's growth is measured in
        return 0
    if args.command == "log":
        return log(args.exp, args.phase, args.steps_before, args.minutes, args.scores, args.bundled)
    if args.command == "promote":
        return promote(args.candidate, args.bundled, args.improve, args.comparisons)
    if args.command == "ablation-plot":
        return ablation_plot(args.folder, args.out, args.runs, args.title)
    return subset(args.manifest, args.speakers_table, args.wanted)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
