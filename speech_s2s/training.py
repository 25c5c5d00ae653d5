"""Training: fit a model on a FeatureSet, validate each epoch, checkpoint atomically, resume exactly.

Knows nothing of argparse; `cli.py` and recipes call `fit`.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jiwer
import torch
from tqdm import tqdm

from speech_s2s.augment import AugmentConfig
from speech_s2s.data import FeatureSet, collate, make_batches
from speech_s2s.encoder import ChunkConfig
from speech_s2s.features import LogMel, SpecAugmentConfig, spec_augment
from speech_s2s.model import Seq2Seq, save_model
from speech_s2s.plots import plot_attention, plot_learning_curve
from speech_s2s.search import DecodingOptions, decode

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"  # full training state, for --resume
LAST_MODEL = "last.safetensors"
BEST_MODEL = "best.safetensors"  # lowest dev WER so far
EPOCH_MODEL = "epoch{:03d}.safetensors"  # one per epoch, for `speech-s2s average`


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    max_frames: int = 5000  # padded feature frames per batch; small batches give more updates per hour
    learning_rate: float = 1e-3
    warmup_steps: int = 500
    decay: str = "inverse_sqrt"  # after warm-up: "inverse_sqrt" or "constant"
    grad_clip: float = 5.0
    seed: int = 0
    ctc_only_steps: int = 0  # CTC-only warm start: the encoder learns to listen before attention must align
    sampling_probability: float = 0.0  # scheduled sampling
    spec_augment: SpecAugmentConfig | None = field(default_factory=SpecAugmentConfig)
    augment: AugmentConfig | None = None  # waveform augmentation: batches made from audio, not cached features
    curriculum_epochs: int = 1  # epochs whose batches run shortest first
    checkpoint_every: int = 200  # updates
    log_every: int = 20
    max_steps: int | None = None
    max_minutes: float | None = None  # stop cleanly (checkpoint written) after this much training time
    dev_max_utterances: int = 200
    device: str = "cpu"
    # Dynamic chunk training (WeNet U2), so one model decodes offline and live: each batch sees full
    # context with this probability, else chunks of a size and right context drawn from these lists
    # (input frames, multiples of the encoder's reduction). No chunk sizes: always full context.
    chunk_sizes: tuple[int, ...] = ()
    chunk_right_contexts: tuple[int, ...] = (0,)
    full_context_probability: float = 0.5


def chunk_for_step(config: TrainConfig, step: int) -> ChunkConfig | None:
    """This step's dynamic-chunk draw (None = full context), a function of (seed, step) alone, so a
    resumed run repeats it without any stored random state."""
    if not config.chunk_sizes:
        return None
    rng = random.Random(f"dynamic-chunk {config.seed} {step}")  # string seeds hash the same in every process
    if rng.random() < config.full_context_probability:
        return None
    return ChunkConfig(rng.choice(config.chunk_sizes), rng.choice(config.chunk_right_contexts))


def learning_rate_at(step: int, config: TrainConfig) -> float:
    warm = min(1.0, (step + 1) / config.warmup_steps)
    if config.decay == "inverse_sqrt" and step >= config.warmup_steps:
        return config.learning_rate * math.sqrt(config.warmup_steps / (step + 1))
    return config.learning_rate * warm


@dataclass
class TrainingState:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_wer: float = float("inf")
    history: list[dict] = field(default_factory=list)


def _atomic_torch_save(obj: dict, path: Path) -> None:
    temporary = path.with_name(path.name + ".tmp")
    torch.save(obj, temporary)
    os.replace(temporary, path)


def model_info(train: FeatureSet, state: TrainingState) -> dict:
    """What a saved model says of its training (shown by `speech-s2s info`): the corpora by split
    name (never a machine's paths), their size, and where the run stood."""
    splits = sorted({Path(u.audio).parent.parent.parent.name for u in train.utterances})
    dev = next((h for h in reversed(state.history) if "dev_wer" in h), None)
    return {
        "training": {"splits": splits, "utterances": len(train), "hours": round(sum(u.duration for u in train.utterances) / 3600, 2),
                     "speakers": len({u.speaker for u in train.utterances}), "updates": state.step, "epochs": state.epoch},
        **({"dev": {"epoch": dev["epoch"], "greedy_wer": round(dev["dev_wer"], 4), "greedy_cer": round(dev["dev_cer"], 4)}} if dev else {}),
        "saved": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def save_checkpoint(directory: Path, model: Seq2Seq, optimizer: torch.optim.Optimizer, state: TrainingState, augment_rng: torch.Generator, info: dict | None = None) -> None:
    _atomic_torch_save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "state": {k: v for k, v in asdict(state).items() if k != "history"},
            "history": json.dumps(state.history),
            "torch_rng": torch.get_rng_state(),
            "augment_rng": augment_rng.get_state(),
        },
        directory / CHECKPOINT,
    )
    save_model(model, directory / LAST_MODEL, info=info)


def load_checkpoint(directory: Path, model: Seq2Seq, optimizer: torch.optim.Optimizer, augment_rng: torch.Generator) -> TrainingState:
    """Restore everything `save_checkpoint` wrote. weights_only=True: tensors and plain data, no code."""
    stored = torch.load(directory / CHECKPOINT, weights_only=True, map_location="cpu")
    model.load_state_dict(stored["model"])
    optimizer.load_state_dict(stored["optimizer"])
    torch.set_rng_state(stored["torch_rng"])
    augment_rng.set_state(stored["augment_rng"])
    return TrainingState(**stored["state"], history=json.loads(stored["history"]))


@torch.no_grad()
def evaluate(model: Seq2Seq, dev: FeatureSet, config: TrainConfig, plot_path: Path | None = None) -> dict:
    """Dev loss (teacher forced) and greedy WER/CER on up to dev_max_utterances utterances."""
    model.eval()
    count = min(len(dev), config.dev_max_utterances)
    subset = FeatureSet(dev.utterances[:count], dev.features[:count], dev.targets[:count])
    references, hypotheses, total_loss, batches = [], [], 0.0, 0
    for indices in make_batches(subset.num_frames(), config.max_frames, seed=0, epoch=0, shuffle=False):
        feats, lengths, targets, target_lengths = (t.to(config.device) for t in collate(subset, indices))
        encoded = model.encode(feats, lengths)
        total_loss += float(model.loss(encoded, targets, target_lengths).loss)
        batches += 1
        for i, result in zip(indices, decode(model, feats, lengths, DecodingOptions(beam_size=1))):
            references.append(model.vocabulary.decode(subset.targets[i].tolist()))
            hypotheses.append(result.text)
    if plot_path is not None:
        feats, lengths, targets, target_lengths = (t.to(config.device) for t in collate(subset, [0]))
        weights = model.loss(model.encode(feats, lengths), targets, target_lengths).attention_weights[0]
        plot_attention(weights.cpu().numpy(), references[0], plot_path, subset.utterances[0].id)
    model.train()
    return {
        "dev_loss": total_loss / max(1, batches),
        "dev_wer": jiwer.wer(references, hypotheses),
        "dev_cer": jiwer.cer(references, hypotheses),
        "example": {"ref": references[0], "hyp": hypotheses[0]},
    }


def fit(model: Seq2Seq, train: FeatureSet, dev: FeatureSet, config: TrainConfig, directory: str | Path, resume: bool = False) -> TrainingState:
    """Train until `epochs`, `max_steps` or `max_minutes`; returns the final state.

    A killed run restarted with resume=True continues from its last checkpoint with the same
    batches, optimiser, learning rate, and random state, so it ends where an unbroken run would.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.to(config.device).train()
    for size in config.chunk_sizes:  # fail now, not at the first batch that draws a bad size
        for context in config.chunk_right_contexts:
            model.encoder.check_chunk(ChunkConfig(size, context))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    augment_rng = torch.Generator().manual_seed(config.seed)
    if resume and (directory / CHECKPOINT).is_file():
        state = load_checkpoint(directory, model, optimizer, augment_rng)
        log.info("resumed from %s at step %d (epoch %d, batch %d)", directory / CHECKPOINT, state.step, state.epoch, state.batch_in_epoch)
    else:
        torch.manual_seed(config.seed)
        state = TrainingState()
    (directory / "train_config.json").write_text(json.dumps(asdict(config), indent=2))
    started = time.monotonic()
    frames = train.num_frames()  # clean lengths, so augmentation never changes the batches
    augmented = _augmented_batches(model, train, config)
    running_loss, running_count = 0.0, 0

    def out_of_budget() -> bool:
        over_steps = config.max_steps is not None and state.step >= config.max_steps
        over_time = config.max_minutes is not None and (time.monotonic() - started) / 60 >= config.max_minutes
        return over_steps or over_time

    while state.epoch < config.epochs and not out_of_budget():
        batches = make_batches(frames, config.max_frames, config.seed, state.epoch, shuffle=state.epoch >= config.curriculum_epochs)
        progress = tqdm(total=len(batches), initial=state.batch_in_epoch, desc=f"epoch {state.epoch + 1}", unit="batch", leave=False)
        if augmented is None:
            batch_source = (collate(train, indices) for indices in batches[state.batch_in_epoch :])
        else:
            batch_source = augmented.iterate(batches, state.epoch, state.batch_in_epoch)
        while state.batch_in_epoch < len(batches) and not out_of_budget():
            feats, lengths, targets, target_lengths = (t.to(config.device) for t in next(batch_source))
            encoded_input = model.normalizer(feats, lengths)
            if config.spec_augment is not None:
                encoded_input = spec_augment(encoded_input, lengths, config.spec_augment, augment_rng)
            encoded = model.encoder(encoded_input, lengths, chunk_for_step(config, state.step))
            ctc_weight = 1.0 if state.step < config.ctc_only_steps else None
            output = model.loss(encoded, targets, target_lengths, ctc_weight, config.sampling_probability)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(state.step, config)
            optimizer.zero_grad(set_to_none=True)
            output.loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            if torch.isfinite(grad_norm):  # one bad batch must not poison the weights
                optimizer.step()
            state.step += 1
            state.batch_in_epoch += 1
            running_loss += float(output.loss.detach())
            running_count += 1
            progress.update(1)
            progress.set_postfix(loss=f"{float(output.loss.detach()):.3f}", ctc=f"{float(output.ctc_loss.detach()):.3f}", acc=f"{output.attention_accuracy:.2f}")
            if state.step % config.log_every == 0:
                state.history.append({"step": state.step, "train_loss": running_loss / running_count, "lr": learning_rate_at(state.step - 1, config)})
                running_loss, running_count = 0.0, 0
            if state.step % config.checkpoint_every == 0:
                save_checkpoint(directory, model, optimizer, state, augment_rng, model_info(train, state))
        progress.close()
        batch_source.close()
        if state.batch_in_epoch >= len(batches):
            state.epoch += 1
            state.batch_in_epoch = 0
            _validate(model, dev, config, directory, state, train)
            save_checkpoint(directory, model, optimizer, state, augment_rng, model_info(train, state))
    save_checkpoint(directory, model, optimizer, state, augment_rng, model_info(train, state))
    return state


def _augmented_batches(model: Seq2Seq, train: FeatureSet, config: TrainConfig):
    """With config.augment: the training audio in memory, ready to be augmented batch by batch."""
    if config.augment is None:
        return None
    from speech_s2s.augmented_data import AugmentedBatches, load_waveforms

    return AugmentedBatches(load_waveforms(train.utterances), train.targets, LogMel(model.config.features), config.augment, config.seed)


def _validate(model: Seq2Seq, dev: FeatureSet, config: TrainConfig, directory: Path, state: TrainingState, train: FeatureSet) -> None:
    result = evaluate(model, dev, config, directory / f"attention-epoch{state.epoch:03d}.png")
    state.history.append({"step": state.step, "epoch": state.epoch, **{k: v for k, v in result.items() if k != "example"}})
    log.info(
        "epoch %d step %d: dev loss %.3f, greedy WER %.2f%%, CER %.2f%% | ref: %s | hyp: %s",
        state.epoch, state.step, result["dev_loss"], 100 * result["dev_wer"], 100 * result["dev_cer"], result["example"]["ref"], result["example"]["hyp"],
    )
    info = model_info(train, state)
    save_model(model, directory / EPOCH_MODEL.format(state.epoch), info=info)
    if result["dev_wer"] < state.best_wer:
        state.best_wer = result["dev_wer"]
        save_model(model, directory / BEST_MODEL, info=info)
    (directory / "history.json").write_text(json.dumps(state.history, indent=1))
    plot_learning_curve(state.history, directory / "learning_curve.png")
