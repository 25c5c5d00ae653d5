"""Character LSTM language model for shallow fusion in beam search.

Same vocabulary as the recogniser; <eos> starts and ends each sentence. Trained on training text
only (the recipe's held-out sentences never reach it). B batch, L tokens, V vocabulary.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from speech_s2s.atomic import replacing
from speech_s2s.configs import flat_config_from_json
from speech_s2s.data.random_states import restore_random_states, saved_random_states
from speech_s2s.errors import first_line
from speech_s2s.model.int8_product import Int8Product
from speech_s2s.text import EOS_ID, Vocabulary


@dataclass(frozen=True)
class CharLMConfig:
    vocabulary: tuple[str, ...] = Vocabulary().tokens
    embedding_size: int = 64
    hidden_size: int = 512
    num_layers: int = 2
    dropout: float = 0.1


@dataclass(frozen=True)
class CharLMTrainConfig:
    steps: int = 3000
    batch_size: int = 64
    learning_rate: float = 2e-3
    seed: int = 0


LSTMState = tuple[torch.Tensor, torch.Tensor]  # (h, c), each [layers, B, H]


class CharLM(nn.Module):
    def __init__(self, config: CharLMConfig = CharLMConfig()):
        super().__init__()
        self.config = config
        self.vocabulary = Vocabulary(config.vocabulary)
        self.embedding = nn.Embedding(len(self.vocabulary), config.embedding_size)
        self.lstm = nn.LSTM(config.embedding_size, config.hidden_size, config.num_layers, batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.output = nn.Linear(config.hidden_size, len(self.vocabulary))
        self.int8_recurrent: list[Int8Product] = []  # `use_int8_search`

    def use_int8_search(self) -> None:
        """`step` multiplies each layer's hidden state by its recurrent weights in int8 from now on
        (inference only: training is not seen by the int8 copies)."""
        self.int8_recurrent = [Int8Product(getattr(self.lstm, f"weight_hh_l{i}")) for i in range(self.config.num_layers)]

    def forward(self, tokens: torch.Tensor, state: LSTMState | None = None) -> tuple[torch.Tensor, LSTMState]:
        """tokens [B, L] -> logits [B, L, V] and the LSTM state."""
        hidden, state = self.lstm(self.embedding(tokens), state)
        return self.output(hidden), state

    # The three hooks beam search uses (speech_s2s.decoding.search.LanguageModel).
    def initial_state(self, batch_size: int) -> LSTMState:
        zeros = torch.zeros(self.config.num_layers, batch_size, self.config.hidden_size, device=self.output.weight.device)
        return (zeros, zeros)

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        """One token per row [B] -> log-probabilities of the next [B, V] and the new state.

        The same arithmetic as `forward`, spelt out as matrix products: nn.LSTM called on one
        step of a small batch costs several times its work on CPU (about 5.5 against 1.4 ms for
        a beam of 16, commit 4ab3bf8), and beam search calls it once per output character."""
        table, layers = self._step_weights()
        hidden, cell, next_hidden, next_cell = state[0], state[1], [], []
        x = None
        for i, (input_weight, hidden_weight, bias) in enumerate(layers):
            gates = table[tokens] if i == 0 else torch.addmm(bias, x, input_weight.T)
            recurrent = gates.add_(self.int8_recurrent[i](hidden[i])) if self.int8_recurrent else gates.addmm_(hidden[i], hidden_weight.T)
            i_gate, f_gate, g_gate, o_gate = recurrent.chunk(4, dim=1)
            c = torch.sigmoid(f_gate) * cell[i] + torch.sigmoid(i_gate) * torch.tanh(g_gate)
            x = torch.sigmoid(o_gate) * torch.tanh(c)
            next_hidden.append(x)
            next_cell.append(c)
        return torch.log_softmax(self.output(x), dim=-1), (torch.stack(next_hidden), torch.stack(next_cell))

    def _step_weights(self) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
        """Each token's embedding through the first layer's input weights with both biases [V, 4H],
        and each layer's (input weights, recurrent weights, summed biases); made again whenever a
        parameter has changed (training, loading)."""
        key = tuple((p.data_ptr(), p._version) for p in self.parameters())
        if getattr(self, "_step_cache", (None,))[0] != key:
            with torch.no_grad():
                layers = [(getattr(self.lstm, f"weight_ih_l{i}"), getattr(self.lstm, f"weight_hh_l{i}"),
                           getattr(self.lstm, f"bias_ih_l{i}") + getattr(self.lstm, f"bias_hh_l{i}")) for i in range(self.config.num_layers)]
                table = self.embedding.weight @ layers[0][0].T + layers[0][2]
            self._step_cache = (key, (table, layers))
        return self._step_cache[1]

    def select_state(self, state: LSTMState, index: torch.Tensor) -> LSTMState:
        return (state[0][:, index], state[1][:, index])

    def sentence_log_prob(self, text: str) -> float:
        """log P(text <eos>) under the model."""
        ids = _framed(self.vocabulary, [text])[0]
        with torch.no_grad():
            logits, _ = self(torch.tensor([ids[:-1]]))
            return float(torch.log_softmax(logits[0], -1).gather(1, torch.tensor(ids[1:])[:, None]).sum())


def _framed(vocabulary: Vocabulary, texts: list[str]) -> list[list[int]]:
    """Each non-empty sentence's token ids between two <eos> (the first one starts it)."""
    return [[EOS_ID] + vocabulary.encode(t) + [EOS_ID] for t in texts if t.strip()]


def _token_loss(model: CharLM, sentences: list[list[int]], reduction: str) -> torch.Tensor:
    """Cross-entropy of predicting each sentence's next tokens; padding (-100) is not scored."""
    padded = nn.utils.rnn.pad_sequence([torch.tensor(s) for s in sentences], batch_first=True, padding_value=-100)
    logits, _ = model(padded[:, :-1].clamp_min(0))
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), padded[:, 1:].reshape(-1), ignore_index=-100, reduction=reduction)


@dataclass(frozen=True)
class LMCheckpointing:
    """Where `train_char_lm` saves its whole state (weights, optimizer, step, random states), how
    often, whether it starts from that file, and when it stops early (to be resumed later)."""

    path: Path
    resume: bool = False
    every_s: float = 300.0
    max_minutes: float | None = None


class LMResumeError(ValueError):
    """A checkpoint cannot be resumed (another text or setting, a foreign file); one line naming it."""


def _fingerprint(model: CharLM, sentences: list[list[int]], train: CharLMTrainConfig) -> str:
    """What a resume must find unchanged: the text, the LM's shape and the training settings."""
    digest = hashlib.sha256(json.dumps([asdict(model.config), asdict(train)], sort_keys=True).encode())
    for sentence in sentences:
        digest.update(bytes(str(sentence), "ascii"))
    return digest.hexdigest()


def _save_lm_checkpoint(path: Path, model: CharLM, optimizer: torch.optim.Optimizer, step: int, rng: random.Random, fingerprint: str) -> None:
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "fingerprint": fingerprint,
             **saved_random_states(rng)}
    with replacing(path) as temporary:
        torch.save(state, temporary)


def _load_lm_checkpoint(path: Path, model: CharLM, optimizer: torch.optim.Optimizer, rng: random.Random, fingerprint: str) -> int:
    """Restore a checkpoint into the model, optimizer and random states; return its step. Never unpickles code."""
    try:
        state = torch.load(path, weights_only=True, map_location="cpu")
        stored = state["fingerprint"]
    except Exception as error:
        raise LMResumeError(f"{path}: not a language-model checkpoint ({first_line(error)})") from None
    if stored != fingerprint:
        raise LMResumeError(f"{path}: saved with another text, LM shape or training settings; it cannot be resumed by this run")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    restore_random_states(state, rng)
    return int(state["step"])


def lm_checkpoint_step(path: str | Path) -> int:
    """The updates a language-model checkpoint holds (0 when there is none)."""
    path = Path(path)
    return int(torch.load(path, weights_only=True, map_location="cpu")["step"]) if path.is_file() else 0


def train_char_lm(texts: list[str], config: CharLMConfig = CharLMConfig(), train: CharLMTrainConfig = CharLMTrainConfig(),
                  init: CharLM | None = None, checkpointing: LMCheckpointing | None = None) -> CharLM:
    """Fit on sentences (random mini-batches of whole sentences framed by <eos>). With `init`, go on
    training that model (its shape; `config` is then unused), e.g. to add steps to a bundled LM.
    With `checkpointing`, save the whole state now and then and at the end, resume from it exactly
    (the same updates as an unbroken run), and stop after `max_minutes`; `lm_checkpoint_step` then
    says whether all `train.steps` were done."""
    torch.manual_seed(train.seed)
    rng = random.Random(train.seed)
    model = init if init is not None else CharLM(config)
    sentences = _framed(model.vocabulary, texts)
    optimizer = torch.optim.Adam(model.parameters(), lr=train.learning_rate)
    fingerprint = _fingerprint(model, sentences, train) if checkpointing else ""
    start = 0
    if checkpointing and checkpointing.resume and Path(checkpointing.path).is_file():
        start = _load_lm_checkpoint(Path(checkpointing.path), model, optimizer, rng, fingerprint)
    began = last_save = time.monotonic()
    model.train()
    progress = tqdm(range(start, train.steps), desc="char LM", unit="step", initial=start, total=train.steps)
    step = start
    for step in progress:
        if checkpointing and checkpointing.max_minutes is not None and time.monotonic() - began > 60 * checkpointing.max_minutes:
            break
        loss = _token_loss(model, rng.sample(sentences, min(train.batch_size, len(sentences))), "mean")
        for group in optimizer.param_groups:  # linear decay to 10% keeps the late steps stable
            group["lr"] = train.learning_rate * (1 - 0.9 * step / train.steps)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 50 == 0:
            progress.set_postfix(loss=f"{float(loss.detach()):.3f}")
        if checkpointing and time.monotonic() - last_save > checkpointing.every_s:
            _save_lm_checkpoint(Path(checkpointing.path), model, optimizer, step + 1, rng, fingerprint)
            last_save = time.monotonic()
    else:
        step = train.steps  # every update done (the loop ran out, or there was nothing left to do)
    if checkpointing:
        _save_lm_checkpoint(Path(checkpointing.path), model, optimizer, step, rng, fingerprint)
    return model.eval()


@torch.no_grad()
def bits_per_character(model: CharLM, texts: list[str], batch_size: int = 64) -> float:
    """Cross-entropy of the sentences under the model, in bits per predicted token (characters and
    each sentence's end), the usual measure of a character LM on held-out text."""
    model.eval()
    sentences = _framed(model.vocabulary, texts)
    total = sum(float(_token_loss(model, sentences[start:start + batch_size], "sum")) for start in range(0, len(sentences), batch_size))
    count = sum(len(s) - 1 for s in sentences)  # every token after the first <eos> is predicted
    return total / max(count, 1) / math.log(2)


def split_held_out(texts: list[str], count: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """(train, held out): `count` sentences drawn with the seed, the same every run."""
    order = list(range(len(texts)))
    random.Random(f"held-out-{seed}").shuffle(order)
    chosen = set(order[:count])
    return [t for i, t in enumerate(texts) if i not in chosen], [t for i, t in enumerate(texts) if i in chosen]


class LMError(ValueError):
    """A language model file is missing, foreign or damaged, or does not fit the recogniser; one line naming the file."""


LM_FORMAT = "speech_s2s_char_lm"


def save_lm(model: CharLM, path: str | Path) -> None:
    """Write weights (float16) and config (vocabulary included) to a safetensors file, atomically.

    float16 halves the file (the bundled LM: 4.58 -> 2.29 MiB), and `load_lm` computes in float32
    again. Default decoding with the bundled LM rounded so, against float32 (2026-12-07): the same
    transcript on 1,140 of 1,141 dev utterances (dev-asterisk, dev-tts, dev-kokoro, dev-short), one
    wrong word for another on the last, every WER the same. Training resumes from OUT.checkpoint,
    which keeps float32."""
    tensors = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    with replacing(path) as temporary:
        save_file(tensors, str(temporary), metadata={"format": LM_FORMAT, "config": json.dumps(asdict(model.config))})


def _config_from_json(text: str) -> CharLMConfig:
    """The LM config from its JSON metadata. Fields it lacks take their defaults: an LM file
    without a vocabulary is assumed to use the default `Vocabulary()`."""
    return flat_config_from_json(CharLMConfig, text)


def load_lm(path: str | Path, vocabulary: Vocabulary | None = None) -> CharLM:
    """Load an LM written by `save_lm`; never unpickles. With `vocabulary` (the recogniser's),
    also check that the LM spells with exactly the same tokens (see `check_vocabulary`).

    Raises LMError (a ValueError) with one line naming the file for anything it cannot use.
    """
    path = Path(path)
    if not path.is_file():
        raise LMError(f"{path}: no such language model file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            stored = {name: (handle.get_slice(name).get_shape(), handle.get_slice(name).get_dtype()) for name in handle.keys()}
    except Exception as error:
        raise LMError(f"{path}: not a safetensors language model ({first_line(error)})") from None
    if metadata.get("format") == "speech_s2s":
        raise LMError(f"{path}: a speech_s2s recognition model, not a language model")
    if metadata.get("format") != LM_FORMAT or "config" not in metadata:
        raise LMError(f"{path}: not a speech_s2s character language model (no LM config in its metadata)")
    try:
        model = CharLM(_config_from_json(metadata["config"]))
    except Exception as error:  # the config is data from the file: any failure is the file's fault
        raise LMError(f"{path}: unusable LM config ({first_line(error)})") from None
    expected = model.state_dict()
    for name in sorted(set(expected) | set(stored)):
        if name not in stored or name not in expected:
            raise LMError(f"{path}: weights do not match its config ({name} is {'missing' if name not in stored else 'unexpected'})")
        shape, dtype = stored[name]
        if list(shape) != list(expected[name].shape):
            raise LMError(f"{path}: {name} has shape {list(shape)} in the file; the config needs {list(expected[name].shape)}")
        if not dtype.startswith(("F", "BF")):
            raise LMError(f"{path}: {name} holds {dtype} values; floating point expected")
    model.load_state_dict({name: t.float() for name, t in load_file(str(path)).items()})
    model.eval()
    if vocabulary is not None:
        check_vocabulary(model, vocabulary, path)
    return model


def check_vocabulary(lm: CharLM, vocabulary: Vocabulary | tuple[str, ...], name: str | Path = "language model") -> None:
    """Raise LMError unless the LM's token list equals the recogniser's, id for id.

    Shallow fusion adds LM and recogniser scores token id by token id, so a different list either
    fails on the sizes or, worse, silently adds up the scores of different characters.
    """
    ours = tuple(lm.vocabulary.tokens)
    theirs = tuple(vocabulary.tokens if isinstance(vocabulary, Vocabulary) else vocabulary)
    if ours == theirs:
        return
    only_lm, only_model = [t for t in ours if t not in theirs], [t for t in theirs if t not in ours]
    if only_lm or only_model:
        detail = f"LM only {''.join(only_lm)!r}, model only {''.join(only_model)!r}"
    else:
        first = next(i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b)
        detail = f"the same {len(ours)} tokens in another order (id {first} is {ours[first]!r} in the LM, {theirs[first]!r} in the model)"
    raise LMError(f"{name}: vocabulary differs from the model's: {detail}")
