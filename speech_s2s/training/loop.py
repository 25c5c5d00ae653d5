"""Training: fit a model on a FeatureSet, validate each epoch, checkpoint atomically, resume exactly.

One process or many: launched by torchrun, each process trains a DistributedDataParallel replica on
its share of every epoch's batches (`sampler.py`) and rank 0 alone validates, logs, plots and writes
files. On CUDA the forward pass runs under bf16 autocast where the GPU supports it, and the LSTMs are
cuDNN's (nn.LSTM over unpacked, right-padded batches). Knows nothing of argparse; `cli/train.py` and
recipes call `fit`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import jiwer
import torch
from torch import nn
from tqdm import tqdm

from speech_s2s.data.augment import AugmentConfig
from speech_s2s.data.batches import (
    FeatureSet,
    collate,
    make_batches,
    speaker_balanced_subset,
)
from speech_s2s.data.sampler import BucketingSampler
from speech_s2s.decoding.options import DecodingOptions
from speech_s2s.decoding.search import decode
from speech_s2s.frontend.features import LogMel, SpecAugmentConfig, spec_augment
from speech_s2s.model.encoder import ChunkConfig
from speech_s2s.model.files import save_model
from speech_s2s.model.seq2seq import LossOutput, Seq2Seq
from speech_s2s.training import distributed
from speech_s2s.training.checkpoint import (
    CHECKPOINT,
    TrainingState,
    fixed_defaults,
    fixed_options,
    load_checkpoint,
    rank_seed,
    rng_state,
    save_checkpoint,
)
from speech_s2s.training.plots import plot_attention, plot_learning_curve

__all__ = ["CHECKPOINT", "TrainConfig", "TrainingState", "fit", "evaluate", "chunk_for_step", "learning_rate_at"]

log = logging.getLogger(__name__)

LAST_MODEL = "last.safetensors"
BEST_MODEL = "best.safetensors"  # lowest dev WER so far
EPOCH_MODEL = "epoch{:03d}.safetensors"  # one per epoch, for `speech-s2s average`
PRECISIONS = ("auto", "bf16", "fp32")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 30
    max_frames: int = 5000  # padded feature frames per batch and process; small batches give more updates per hour
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
    dev_max_utterances: int = 200  # validation subset, drawn across all dev speakers
    device: str = "cpu"
    # "auto": bf16 autocast on GPUs that support it, float32 elsewhere. bf16 keeps float32's range,
    # so no loss scaling is needed; the weights and the optimiser stay float32.
    precision: str = "auto"
    # Dynamic chunk training (WeNet U2), so one model decodes offline and live: each batch sees full
    # context with this probability, else chunks of a size and right context drawn from these lists
    # (input frames, multiples of the encoder's reduction). No chunk sizes: always full context.
    chunk_sizes: tuple[int, ...] = ()
    chunk_right_contexts: tuple[int, ...] = (0,)
    full_context_probability: float = 0.5


def chunk_for_step(config: TrainConfig, step: int) -> ChunkConfig | None:
    """This step's dynamic-chunk draw (None = full context), a function of (seed, step) alone, so a
    resumed run repeats it without any stored random state, and every process draws the same."""
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


def uses_bf16(config: TrainConfig) -> bool:
    if config.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {config.precision!r}")
    on_gpu = config.device.startswith("cuda")
    if config.precision == "bf16" and not on_gpu:
        raise ValueError("precision bf16 needs a CUDA device (on CPU, train in fp32)")
    return on_gpu and config.precision != "fp32" and torch.cuda.is_bf16_supported()


class TrainingStep(nn.Module):
    """The model's training pass (encoder and joint loss) as one module call, so that
    DistributedDataParallel, which synchronises gradients of what its forward computed, can wrap it."""

    def __init__(self, model: Seq2Seq):
        super().__init__()
        self.model = model

    def forward(self, normalised: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor, target_lengths: torch.Tensor,
                chunk: ChunkConfig | None, ctc_weight: float | None, sampling_probability: float) -> LossOutput:
        encoded = self.model.encoder(normalised, lengths, chunk)
        return self.model.loss(encoded, targets, target_lengths, ctc_weight, sampling_probability)


def hardware(device: str, context: distributed.Distributed) -> str:
    """What trained the model, in words, for the results table: e.g. '8 x NVIDIA A100-SXM4-80GB'."""
    if device.startswith("cuda"):
        name = torch.cuda.get_device_name(device)
    else:
        name = _cpu_name()
    return f"{context.world_size} x {name}" if context.active else name


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"CPU ({line.split(':', 1)[1].strip()}, {torch.get_num_threads()} threads)"
    except OSError:
        pass
    return f"CPU ({torch.get_num_threads()} threads)"


def model_info(train: FeatureSet, state: TrainingState, machine: str = "") -> dict:
    """What a saved model says of its training (shown by `speech-s2s info`): the corpora by split
    name (never a machine's paths), their size, and where the run stood."""
    splits = sorted({Path(u.audio).parent.parent.parent.name for u in train.utterances})
    dev = next((h for h in reversed(state.history) if "dev_wer" in h), None)
    return {
        "training": {"splits": splits, "utterances": len(train), "hours": round(sum(u.duration for u in train.utterances) / 3600, 2),
                     "speakers": len({u.speaker for u in train.utterances}), "updates": state.step, "epochs": state.epoch,
                     "training_hours": round(state.train_seconds / 3600, 3), **({"hardware": machine} if machine else {})},
        **({"dev": {"epoch": dev["epoch"], "greedy_wer": round(dev["dev_wer"], 4), "greedy_cer": round(dev["dev_cer"], 4)}} if dev else {}),
        "saved": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


@torch.no_grad()
def evaluate(model: Seq2Seq, dev: FeatureSet, config: TrainConfig, plot_path: Path | None = None) -> dict:
    """Dev loss (teacher forced) and greedy WER/CER on up to dev_max_utterances utterances, drawn
    across all dev speakers (a prefix by id would be a handful of them)."""
    model.eval()
    chosen = speaker_balanced_subset(dev.utterances, config.dev_max_utterances)
    subset = FeatureSet([dev.utterances[i] for i in chosen], [dev.features[i] for i in chosen], [dev.targets[i] for i in chosen])
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
        plot_attention(weights.float().cpu().numpy(), references[0], plot_path, subset.utterances[0].id)
    model.train()
    return {
        "dev_loss": total_loss / max(1, batches),
        "dev_wer": jiwer.wer(references, hypotheses),
        "dev_cer": jiwer.cer(references, hypotheses),
        "example": {"ref": references[0], "hyp": hypotheses[0]},
    }


def fit(
    model: Seq2Seq, train: FeatureSet, dev: FeatureSet, config: TrainConfig, directory: str | Path, resume: bool = False,
    context: distributed.Distributed = distributed.SINGLE,
) -> TrainingState:
    """Train until `epochs`, `max_steps` or `max_minutes`; returns the final state.

    A killed run restarted with resume=True continues from its last checkpoint with the same
    batches, optimiser, learning rate, and random state, so it ends where an unbroken run would.
    With `context` from `distributed.setup()` under torchrun, every process calls this alike.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.to(config.device).train()
    for size in config.chunk_sizes:  # fail now, not at the first batch that draws a bad size
        for context_frames in config.chunk_right_contexts:
            model.encoder.check_chunk(ChunkConfig(size, context_frames))
    bf16 = uses_bf16(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    augment_rng = torch.Generator().manual_seed(rank_seed(config.seed, context.rank))
    fixed = fixed_options(model.config, config)
    if resume and (directory / CHECKPOINT).is_file():
        state = load_checkpoint(directory / CHECKPOINT, model, optimizer, fixed, context.rank, context.world_size, config.device, augment_rng,
                                config.seed, fixed_defaults(model.config, config))
        log.info("resumed from %s at step %d (epoch %d, batch %d)", directory / CHECKPOINT, state.step, state.epoch, state.batch_in_epoch)
    else:
        torch.manual_seed(rank_seed(config.seed, context.rank))
        state = TrainingState()
    step_module: nn.Module = TrainingStep(model)
    if context.active:  # replicas start from rank 0's weights: the wrapper broadcasts them
        step_module = nn.parallel.DistributedDataParallel(
            step_module, device_ids=[context.local_rank] if config.device.startswith("cuda") else None,
            broadcast_buffers=False,  # the buffers (filterbank, normalisation) never change in training
            find_unused_parameters=config.ctc_only_steps > 0,  # CTC-only steps leave the decoder out
        )
    machine = hardware(config.device, context)
    if context.is_main:
        (directory / "train_config.json").write_text(json.dumps({**asdict(config), "processes": context.world_size, "hardware": machine}, indent=2))
    started, seconds_before = time.monotonic(), state.train_seconds
    sampler = BucketingSampler(tuple(train.num_frames()), config.max_frames, config.seed, config.curriculum_epochs, context.rank, context.world_size)
    augmented = _augmented_batches(model, train, config)
    running_loss, running_count = 0.0, 0

    def out_of_budget() -> bool:
        over_steps = config.max_steps is not None and state.step >= config.max_steps
        over_time = config.max_minutes is not None and (time.monotonic() - started) / 60 >= config.max_minutes
        return over_steps or (distributed.any_rank(context, over_time) if config.max_minutes is not None else False)

    def checkpoint() -> None:
        state.train_seconds = seconds_before + time.monotonic() - started
        states = distributed.gather(context, rng_state(config.device, augment_rng))  # every rank takes part
        if context.is_main:
            save_checkpoint(directory / CHECKPOINT, model, optimizer, state, states, fixed)
            save_model(model, directory / LAST_MODEL, info=model_info(train, state, machine))

    while state.epoch < config.epochs and not out_of_budget():
        mine = sampler.rank_batches(state.epoch, state.batch_in_epoch)
        progress = tqdm(total=sampler.epoch_length(state.epoch) // context.world_size, initial=state.batch_in_epoch // context.world_size,
                        desc=f"epoch {state.epoch + 1}", unit="batch", leave=False, disable=not context.is_main)  # shown in logs too: runs go to nohup files
        if augmented is None:
            batch_source = ((position, collate(train, indices)) for position, indices in mine)
        else:
            batch_source = augmented.iterate(mine, state.epoch)
        while not out_of_budget():  # checked before a batch is made: a stopped run reads no batch it will not train on
            item = next(batch_source, None)
            if item is None:
                break
            position, batch = item
            feats, lengths, targets, target_lengths = (t.to(config.device) for t in batch)
            normalised = model.normalizer(feats, lengths)
            if config.spec_augment is not None:
                normalised = spec_augment(normalised, lengths, config.spec_augment, augment_rng)
            ctc_weight = 1.0 if state.step < config.ctc_only_steps else None
            with torch.autocast("cuda", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
                output = step_module(normalised, lengths, targets, target_lengths, chunk_for_step(config, state.step), ctc_weight, config.sampling_probability)
            for group in optimizer.param_groups:
                group["lr"] = learning_rate_at(state.step, config)
            optimizer.zero_grad(set_to_none=True)
            output.loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            if torch.isfinite(grad_norm):  # one bad batch must not poison the weights (the norm is the same on every rank)
                optimizer.step()
            state.step += 1
            state.batch_in_epoch = position - context.rank + context.world_size  # the whole round this step consumed
            running_loss += float(output.loss.detach())
            running_count += 1
            progress.update(1)
            progress.set_postfix(loss=f"{float(output.loss.detach()):.3f}", ctc=f"{float(output.ctc_loss.detach()):.3f}",
                acc=f"{output.attention_accuracy:.2f}")
            if state.step % config.log_every == 0:
                state.history.append({"step": state.step, "train_loss": running_loss / running_count, "lr": learning_rate_at(state.step - 1, config)})
                running_loss, running_count = 0.0, 0
            if state.step % config.checkpoint_every == 0:
                checkpoint()
        progress.close()
        batch_source.close()
        if sampler.is_epoch_done(state.epoch, state.batch_in_epoch):
            state.epoch += 1
            state.batch_in_epoch = 0
            if context.is_main:  # the other ranks wait at the barrier; validation never calls a collective
                _validate(model, dev, config, directory, state, train, machine)
            distributed.barrier(context)
            checkpoint()
    checkpoint()
    return state


def _augmented_batches(model: Seq2Seq, train: FeatureSet, config: TrainConfig):
    """With config.augment: the training audio in memory, ready to be augmented batch by batch."""
    if config.augment is None:
        return None
    from speech_s2s.data.augmented_batches import AugmentedBatches, load_waveforms

    return AugmentedBatches(load_waveforms(train.utterances), train.targets, LogMel(model.config.features), config.augment, config.seed)


def _validate(model: Seq2Seq, dev: FeatureSet, config: TrainConfig, directory: Path, state: TrainingState, train: FeatureSet, machine: str) -> None:
    result = evaluate(model, dev, config, directory / f"attention-epoch{state.epoch:03d}.png")
    state.history.append({"step": state.step, "epoch": state.epoch, **{k: v for k, v in result.items() if k != "example"}})
    log.info(
        "epoch %d step %d: dev loss %.3f, greedy WER %.2f%%, CER %.2f%% | ref: %s | hyp: %s",
        state.epoch, state.step, result["dev_loss"], 100 * result["dev_wer"], 100 * result["dev_cer"], result["example"]["ref"], result["example"]["hyp"],
    )
    info = model_info(train, state, machine)
    save_model(model, directory / EPOCH_MODEL.format(state.epoch), info=info)
    if result["dev_wer"] < state.best_wer:
        state.best_wer = result["dev_wer"]
        save_model(model, directory / BEST_MODEL, info=info)
    (directory / "history.json").write_text(json.dumps(state.history, indent=1))
    plot_learning_curve(state.history, directory / "learning_curve.png")
