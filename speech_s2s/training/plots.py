"""Pictures people look at: learning curves and attention alignments, as PNG files."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on training machines
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_learning_curve(history: list[dict], path: str | Path) -> None:
    """history rows: {"step", "train_loss"} per logging interval and {"step", "dev_loss", "dev_wer"} per validation."""
    train = [(r["step"], r["train_loss"]) for r in history if "train_loss" in r]
    dev = [(r["step"], r["dev_loss"], r["dev_wer"], r.get("dev_cer", float("nan"))) for r in history if "dev_loss" in r]
    fig, (loss_axis, wer_axis) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        loss_axis.plot(*zip(*train), label="train", alpha=0.8)
    if dev:
        steps, losses, wers, cers = zip(*dev)
        loss_axis.plot(steps, losses, "o-", label="dev")
        wer_axis.plot(steps, [100 * w for w in wers], "o-", label="dev WER (greedy)")
        wer_axis.plot(steps, [100 * c for c in cers], "s--", label="dev CER (greedy)")
    loss_axis.set(xlabel="update", ylabel="joint loss", title="loss", yscale="log")
    wer_axis.set(xlabel="update", ylabel="%", title="dev error rate")
    for axis in (loss_axis, wer_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_campaign(lines: list[tuple[str, list[tuple[int, float]]]], path: str | Path,
                  runs: list[tuple[str, list[tuple[int, float]]]] | None = None) -> None:
    """A training campaign's dev WER across its phases: one line per lineage of phases (a phase that
    continues another's weights extends its line), x the updates since the lineage's start. With
    `runs` (a line per dev set: each resumed run's exported model), a second panel beside it."""
    fig, axes = plt.subplots(1, 2 if runs else 1, figsize=(13 if runs else 8, 4), squeeze=False)
    panels = [(axes[0][0], lines, "dev WER % (greedy, in training)", "in training: the phase's dev split, each epoch")]
    if runs:
        panels.append((axes[0][1], runs, "WER % (greedy)", "each run's exported model, every dev set"))
    for axis, series, ylabel, title in panels:
        drawn = [(label, points) for label, points in series if points]
        for label, points in drawn:
            axis.plot([s for s, _ in points], [100 * w for _, w in points], "o-", label=label)
        axis.set(xlabel="updates since the lineage began", ylabel=ylabel, title=title)
        axis.grid(alpha=0.3)
        if drawn:
            axis.legend(fontsize=8)
        else:  # a new machine's first phases, before an epoch ends
            axis.text(0.5, 0.5, "no epoch has finished yet", ha="center", va="center", transform=axis.transAxes, color="grey")
    fig.suptitle("training campaign")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_ablation(scores: dict[str, dict[str, float]], reference: str, path: str | Path, title: str = "") -> None:
    """An ablation's WER against its reference run, per evaluation set: `scores` maps each run
    (the reference among them) to {set: WER as a fraction}; one bar per run and set, the change in
    points (below zero: fewer errors), with the reference's own WER under each set's name."""
    sets = list(scores[reference])
    runs = [run for run in scores if run != reference]
    fig, axis = plt.subplots(figsize=(max(8, 1.4 * len(sets)), 4))
    width = 0.8 / max(1, len(runs))
    for index, run in enumerate(runs):
        changes = [100 * (scores[run][name] - scores[reference][name]) if name in scores[run] else np.nan for name in sets]
        axis.bar(np.arange(len(sets)) + (index - (len(runs) - 1) / 2) * width, changes, width, label=run)
    axis.axhline(0, color="black", linewidth=0.8)
    axis.set_xticks(range(len(sets)), [f"{name}\n{100 * scores[reference][name]:.1f} %" for name in sets], fontsize=8)
    axis.set(ylabel=f"WER change, points (against {reference})", title=title or "ablation")
    axis.grid(axis="y", alpha=0.3)
    if runs:
        axis.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_attention(weights: np.ndarray, text: str, path: str | Path, title: str = "") -> None:
    """weights [L, T]: one row per output token (the text, then <eos>)."""
    fig, axis = plt.subplots(figsize=(max(6, weights.shape[1] / 10), max(4, weights.shape[0] / 8)))
    axis.imshow(weights, aspect="auto", origin="lower", interpolation="nearest", cmap="viridis")
    labels = list(text) + ["<eos>"]
    if len(labels) == weights.shape[0] and len(labels) <= 120:
        axis.set_yticks(range(len(labels)), [c if c != " " else "␣" for c in labels], fontsize=6)
    axis.set(xlabel="encoder frame", ylabel="output token", title=title or "attention alignment")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_restorer_curve(history: list[dict], path: str | Path) -> None:
    """The punctuation restorer's training: history rows {"step", "train_loss"} and {"step", "dev_loss",
    "dev_f1", "dev_case"} (speech_s2s.punctuation.train)."""
    train = [(r["step"], r["train_loss"]) for r in history if "train_loss" in r]
    dev = [(r["step"], r["dev_loss"], r["dev_f1"], r["dev_case"]) for r in history if "dev_f1" in r]
    fig, (loss_axis, score_axis) = plt.subplots(1, 2, figsize=(11, 4))
    if train:
        loss_axis.plot(*zip(*train), label="train (case + mark, per word)", alpha=0.8)
    if dev:
        steps, losses, f1s, cases = zip(*dev)
        loss_axis.plot(steps, losses, "o-", label="dev")
        score_axis.plot(steps, [100 * f for f in f1s], "o-", label="dev punctuation F1")
        score_axis.plot(steps, [100 * c for c in cases], "s--", label="dev case accuracy")
    loss_axis.set(xlabel="update", ylabel="cross-entropy", title="loss", yscale="log")
    score_axis.set(xlabel="update", ylabel="%", title="dev scores")
    for axis in (loss_axis, score_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
