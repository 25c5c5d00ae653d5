"""Training the restorer on cased, punctuated text, with exact resume, progress and a learning curve.

Each source's sentences become one running stream of words (documents in order, unrelated example
sentences shuffled once), and every update reads windows of consecutive words cut from a stream at random,
across sentence ends, as a transcript line holds several sentences. Sources are drawn by weight, so a large
one (WordNet's examples) does not drown the books.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from speech_s2s.atomic import replacing
from speech_s2s.data.random_states import restore_random_states, saved_random_states
from speech_s2s.errors import first_line
from speech_s2s.punctuation.labels import MARKS, NONE, Labelled, join
from speech_s2s.punctuation.model import PunctuationConfig, PunctuationModel


@dataclass(frozen=True)
class PunctuationTrainConfig:
    steps: int = 20000
    batch_size: int = 32
    min_words: int = 16  # each update's windows hold min_words..max_words words
    max_words: int = 64
    learning_rate: float = 3e-3
    vocabulary_size: int = 4000  # the most frequent training words
    weights: tuple[tuple[str, float], ...] = (("books", 0.4), ("sotu", 0.3), ("ding", 0.15), ("wordnet", 0.15))
    dev_every: int = 500
    seed: int = 0


@dataclass(frozen=True)
class Checkpointing:
    """Where training saves its whole state, how often, whether it resumes, and when it stops early."""

    path: Path
    resume: bool = False
    every_s: float = 300.0
    max_minutes: float | None = None


class ResumeError(ValueError):
    """A checkpoint cannot be resumed (other text or settings, a foreign file); one line naming it."""


GROUPS = ("books", "sotu", "ding", "wordnet")  # what PunctuationTrainConfig.weights may name


def group_of(source: str) -> str:
    """A source's group in PunctuationTrainConfig.weights: every novel is 'books'."""
    return source if source in GROUPS else "books"


def read_tsv(path: str | Path) -> dict[str, list[str]]:
    """`source<TAB>sentence` lines (tools/punctuation_text.py) -> sentences per source, in file order."""
    out: dict[str, list[str]] = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        source, _, sentence = line.partition("\t")
        if sentence.strip():
            out.setdefault(source, []).append(sentence)
    return out


def build_vocabulary(streams: Mapping[str, Labelled], size: int) -> tuple[str, ...]:
    counts = Counter(w for stream in streams.values() for w in stream.words)
    return tuple(w for w, _ in sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:size])


def streams_by_group(sentences: Mapping[str, Sequence[Labelled]], seed: int) -> dict[str, Labelled]:
    """One stream of words per group; example sentences (WordNet, Ding) shuffled with the seed."""
    grouped: dict[str, list[Labelled]] = {}
    for source in sorted(sentences):
        grouped.setdefault(group_of(source), []).extend(sentences[source])
    for group in ("wordnet", "ding"):
        if group in grouped:
            random.Random(f"{seed}-{group}").shuffle(grouped[group])
    return {group: join(items) for group, items in grouped.items() if items}


class _Stream:
    """A group's words encoded once: ids [N], chars [N, C], cases [N], marks [N]."""

    def __init__(self, model: PunctuationModel, stream: Labelled):
        ids, chars = model.encode(stream.words)
        width = model.config.max_chars
        self.words = torch.tensor(ids, dtype=torch.long)
        self.chars = torch.tensor([c + [0] * (width - len(c)) for c in chars], dtype=torch.long).reshape(len(ids), width)
        self.cases = torch.tensor(stream.cases)
        self.marks = torch.tensor(stream.marks)

    def __len__(self) -> int:
        return len(self.cases)

    def window(self, start: int, length: int) -> tuple[torch.Tensor, ...]:
        end = start + length
        return self.words[start:end], self.chars[start:end], self.cases[start:end], self.marks[start:end]


def _loss(model: PunctuationModel, batch: Sequence[tuple[torch.Tensor, ...]], reduction: str = "mean") -> torch.Tensor:
    words, chars, cases, marks = (torch.stack(parts) for parts in zip(*batch))
    width = max(int((chars > 0).sum(-1).max()), 1)
    case_logits, mark_logits = model(words, chars[:, :, :width])
    return (F.cross_entropy(case_logits.reshape(-1, case_logits.shape[-1]), cases.reshape(-1), reduction=reduction)
            + F.cross_entropy(mark_logits.reshape(-1, mark_logits.shape[-1]), marks.reshape(-1), reduction=reduction))


def dev_windows(streams: Mapping[str, _Stream], length: int = 48, per_group: int = 100) -> list[tuple[torch.Tensor, ...]]:
    return [stream.window(start, length) for stream in streams.values()
            for start in range(0, len(stream) - length + 1, length)[:per_group]]


@torch.no_grad()
def evaluate(model: PunctuationModel, windows: Sequence[tuple[torch.Tensor, ...]], batch_size: int = 64) -> dict[str, float]:
    """Loss per word, mark F1 over all marks and case accuracy on fixed windows."""
    model.eval()
    total = tp = fp = fn = correct = count = 0.0
    for start in range(0, len(windows), batch_size):
        batch = windows[start:start + batch_size]
        total += float(_loss(model, batch, "sum"))
        words, chars, cases, marks = (torch.stack(parts) for parts in zip(*batch))
        case_logits, mark_logits = model(words, chars)
        predicted = mark_logits.argmax(-1)
        tp += float(((predicted == marks) & (marks != NONE)).sum())
        fp += float(((predicted != marks) & (predicted != NONE)).sum())
        fn += float(((predicted != marks) & (marks != NONE)).sum())
        correct += float((case_logits.argmax(-1) == cases).sum())
        count += cases.numel()
    model.train()
    return {"dev_loss": total / max(count, 1), "dev_f1": 2 * tp / max(2 * tp + fp + fn, 1), "dev_case": correct / max(count, 1)}


def _fingerprint(model: PunctuationModel, streams: Mapping[str, Labelled], train: PunctuationTrainConfig) -> str:
    digest = hashlib.sha256(json.dumps([asdict(model.config), asdict(train)], sort_keys=True).encode())
    for name in sorted(streams):
        digest.update(name.encode())
        digest.update(" ".join(streams[name].words).encode())
        digest.update(bytes(streams[name].cases) + bytes(streams[name].marks))
    return digest.hexdigest()


def _save_checkpoint(path: Path, model: PunctuationModel, optimizer: torch.optim.Optimizer, step: int, rng: random.Random,
                     fingerprint: str, history: list[dict]) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "fingerprint": fingerprint,
             **saved_random_states(rng),
             "history": json.dumps(history), "vocabulary": json.dumps(model.config.vocabulary)}
    with replacing(path) as temporary:
        torch.save(state, temporary)


def _load_checkpoint(path: Path, model: PunctuationModel, optimizer: torch.optim.Optimizer, rng: random.Random,
                     fingerprint: str) -> tuple[int, list[dict]]:
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
        stored = state["fingerprint"]
    except Exception as error:
        raise ResumeError(f"{path}: not a punctuation training checkpoint ({first_line(error)})") from None
    if stored != fingerprint:
        raise ResumeError(f"{path}: saved with another text, model shape or training settings; it cannot be resumed by this run")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    restore_random_states(state, rng)
    return int(state["step"]), json.loads(state["history"])


def checkpoint_step(path: str | Path) -> int:
    """The updates a training checkpoint holds (0 when there is none)."""
    path = Path(path)
    return int(torch.load(path, weights_only=True, map_location="cpu")["step"]) if path.is_file() else 0


def train_restorer(train_text: Mapping[str, Sequence[str]], dev_text: Mapping[str, Sequence[str]],
                   config: PunctuationConfig = PunctuationConfig(), train: PunctuationTrainConfig = PunctuationTrainConfig(),
                   checkpointing: Checkpointing | None = None) -> tuple[PunctuationModel, list[dict]]:
    """Fit on written sentences per source (dev_text: the learning curve's). Returns the model and its
    history ({"step", "train_loss"} every 50 updates, {"step", "dev_loss", "dev_f1", "dev_case"} every
    dev_every). With `checkpointing`, save the whole state now and then and at the end, resume from it
    exactly (the same updates as an unbroken run), and stop after `max_minutes`."""
    from speech_s2s.punctuation.labels import label_sentence

    torch.manual_seed(train.seed)
    rng = random.Random(train.seed)
    labelled = {s: [x for x in map(label_sentence, texts) if x.words] for s, texts in train_text.items()}
    streams = streams_by_group(labelled, train.seed)
    if not streams:
        raise ValueError("no training text")
    if not config.vocabulary:
        config = replace(config, vocabulary=build_vocabulary(streams, train.vocabulary_size))
    model = PunctuationModel(config)
    encoded = {name: _Stream(model, stream) for name, stream in streams.items()}
    dev_streams = streams_by_group({s: [x for x in map(label_sentence, t) if x.words] for s, t in dev_text.items()}, train.seed)
    dev = dev_windows({name: _Stream(model, stream) for name, stream in dev_streams.items()})
    weights = dict(train.weights)
    unknown = sorted(set(weights) - set(GROUPS))  # a known group the text lacks is skipped, as the defaults name all four
    if unknown:
        raise ValueError(f"no training text in source group {unknown[0]!r} (the groups: {', '.join(GROUPS)})")
    groups = [name for name in sorted(encoded) if weights.get(name, 0) > 0 and len(encoded[name]) > train.max_words]
    if not groups:
        raise ValueError(f"no source longer than {train.max_words} words with a weight")
    group_weights = [weights[name] for name in groups]
    optimizer = torch.optim.Adam(model.parameters(), lr=train.learning_rate)
    fingerprint = _fingerprint(model, streams, train) if checkpointing else ""
    start, history = 0, []
    if checkpointing and checkpointing.resume and Path(checkpointing.path).is_file():
        start, history = _load_checkpoint(Path(checkpointing.path), model, optimizer, rng, fingerprint)
    began = last_save = time.monotonic()
    model.train()
    progress = tqdm(range(start, train.steps), desc="punctuation", unit="step", initial=start, total=train.steps)
    running, step = 0.0, start
    for step in progress:
        if checkpointing and checkpointing.max_minutes is not None and time.monotonic() - began > 60 * checkpointing.max_minutes:
            break
        length = rng.randint(train.min_words, train.max_words)
        batch = []
        for _ in range(train.batch_size):
            stream = encoded[rng.choices(groups, group_weights)[0]]
            batch.append(stream.window(rng.randrange(len(stream) - length), length))
        loss = _loss(model, batch)
        for group in optimizer.param_groups:  # linear decay to 10%
            group["lr"] = train.learning_rate * (1 - 0.9 * step / train.steps)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running += float(loss.detach())
        if (step + 1) % 50 == 0:
            history.append({"step": step + 1, "train_loss": running / 50})
            progress.set_postfix(loss=f"{running / 50:.3f}")
            running = 0.0
        if dev and (step + 1) % train.dev_every == 0:
            history.append({"step": step + 1, **evaluate(model, dev)})
            progress.set_postfix(dev_f1=f"{history[-1]['dev_f1']:.3f}")
        if checkpointing and time.monotonic() - last_save > checkpointing.every_s:
            _save_checkpoint(Path(checkpointing.path), model, optimizer, step + 1, rng, fingerprint, history)
            last_save = time.monotonic()
    else:
        step = train.steps
        if dev and (not history or history[-1].get("step") != step or "dev_f1" not in history[-1]):
            history.append({"step": step, **evaluate(model, dev)})
    if checkpointing:
        _save_checkpoint(Path(checkpointing.path), model, optimizer, step, rng, fingerprint, history)
    return model.eval(), history


__all__ = ["MARKS", "Checkpointing", "PunctuationTrainConfig", "ResumeError", "checkpoint_step", "evaluate", "read_tsv", "train_restorer"]
