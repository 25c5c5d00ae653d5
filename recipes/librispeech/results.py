"""RESULTS.md: what the recipe measured, beside the published results it should be compared with."""

from __future__ import annotations

import json
import time
from pathlib import Path

from config import RecipeConfig

ANCHOR_SETS = ("test-clean", "test-other")


def _training_record(train_dir: Path) -> dict:
    """Updates, epochs, wall-clock training time and hardware, from the run's checkpoint and config."""
    import torch

    record: dict = {}
    checkpoint = train_dir / "checkpoint.pt"
    if checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=True, map_location="cpu")["state"]
        record.update(updates=state["step"], epochs=state["epoch"], hours=state.get("train_seconds", 0.0) / 3600)
    settings = train_dir / "train_config.json"
    if settings.is_file():
        values = json.loads(settings.read_text())
        record.update(hardware=values.get("hardware", "?"), processes=values.get("processes", 1))
    return record


def results_markdown(config: RecipeConfig, paths, rows: list) -> str:
    """rows: (test set, setting name, scoring.Score) for every decoding."""
    from speech_s2s.model.files import read_model_info

    model_file = paths.decoded_model(config)
    info = read_model_info(model_file)
    trained = info.info.get("training", {})
    record = _training_record(paths.train)
    averaged = info.info.get("average")
    chosen = "with the lowest dev WER" if averaged and averaged["by"] == "best" else "the last ones"
    what = f"mean of epochs {averaged['epochs']} ({chosen})" if averaged else model_file.name
    lines = [
        f"# Results: {config.name}",
        "",
        f"Written by stage 7 of recipes/librispeech on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.",
        "",
        f"- Model: {what}; {info.parameters / 1e6:.1f}M parameters ({model_file.name}).",
        f"- Training data: {', '.join(trained.get('splits', [])) or '?'}, {trained.get('hours', '?')} h of audio, {trained.get('utterances', '?')} utterances.",
        f"- Training: {record.get('updates', '?')} updates, {record.get('epochs', '?')} epochs, "
        f"{record.get('hours', float('nan')):.2f} h of wall-clock training on {record.get('hardware', '?')}.",
        "- Decoding settings: "
        + "; ".join(f"{s.name} (beam {s.options.beam_size}, CTC weight {s.options.ctc_weight}, LM weight {s.options.lm_weight})" for s in config.decode) + ".",
        "",
        "| test set | setting | WER % | CER % | word errors / words | utterances |",
        "|---|---|---|---|---|---|",
    ]
    for split, setting, score in rows:
        errors = score.substitutions + score.deletions + score.insertions
        lines.append(f"| {split} | {setting} | {100 * score.wer:.2f} | {100 * score.cer:.2f} | {errors} / {score.words} | {score.utterances} |")
    if config.anchors:
        ours = {(split, setting): score for split, setting, score in rows if split in ANCHOR_SETS}
        lines += ["", "## Against published results (WER %, test-clean / test-other)", "", "| system | LM | test-clean | test-other | source |",
            "|---|---|---|---|---|"]
        for anchor in config.anchors:
            lines.append(f"| {anchor.system} | {'yes' if anchor.lm else 'no'} | {anchor.test_clean:.1f} | {anchor.test_other:.1f} | {anchor.source} |")
        for setting in config.decode:
            clean, other = ours.get(("test-clean", setting.name)), ours.get(("test-other", setting.name))
            if clean or other:
                cell = lambda score: f"{100 * score.wer:.1f}" if score else "-"  # noqa: E731
                lines.append(f"| **this run, {setting.name}** | {'yes' if setting.uses_lm else 'no'} | {cell(clean)} | {cell(other)} | RESULTS.md |")
    return "\n".join(lines) + "\n"
