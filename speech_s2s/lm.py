"""Character LSTM language model for shallow fusion in beam search.

Same vocabulary as the recogniser; <eos> starts and ends each sentence. Trained on training text
only (the recipe's held-out sentences never reach it). B batch, L tokens, V vocabulary.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

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


class CharLM(nn.Module):
    def __init__(self, config: CharLMConfig = CharLMConfig()):
        super().__init__()
        self.config = config
        self.vocabulary = Vocabulary(config.vocabulary)
        self.embedding = nn.Embedding(len(self.vocabulary), config.embedding_size)
        self.lstm = nn.LSTM(config.embedding_size, config.hidden_size, config.num_layers, batch_first=True, dropout=config.dropout if config.num_layers > 1 else 0.0)
        self.output = nn.Linear(config.hidden_size, len(self.vocabulary))

    def forward(self, tokens: torch.Tensor, state=None):
        """tokens [B, L] -> logits [B, L, V] and the LSTM state."""
        hidden, state = self.lstm(self.embedding(tokens), state)
        return self.output(hidden), state

    # The three hooks beam search uses (speech_s2s.search.LanguageModel).
    def initial_state(self, batch_size: int):
        zeros = torch.zeros(self.config.num_layers, batch_size, self.config.hidden_size)
        return (zeros, zeros)

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, state):
        logits, state = self(tokens[:, None], state)
        return torch.log_softmax(logits[:, 0], dim=-1), state

    def select_state(self, state, index: torch.Tensor):
        return (state[0][:, index], state[1][:, index])

    def sentence_log_prob(self, text: str) -> float:
        """log P(text <eos>) under the model."""
        ids = [EOS_ID] + self.vocabulary.encode(text) + [EOS_ID]
        with torch.no_grad():
            logits, _ = self(torch.tensor([ids[:-1]]))
            return float(torch.log_softmax(logits[0], -1).gather(1, torch.tensor(ids[1:])[:, None]).sum())


def train_char_lm(texts: list[str], config: CharLMConfig = CharLMConfig(), train: CharLMTrainConfig = CharLMTrainConfig()) -> CharLM:
    """Fit on sentences (random mini-batches of whole sentences framed by <eos>)."""
    torch.manual_seed(train.seed)
    rng = random.Random(train.seed)
    model = CharLM(config)
    sentences = [[EOS_ID] + model.vocabulary.encode(t) + [EOS_ID] for t in texts if t.strip()]
    optimizer = torch.optim.Adam(model.parameters(), lr=train.learning_rate)
    model.train()
    progress = tqdm(range(train.steps), desc="char LM", unit="step")
    for step in progress:
        batch = [torch.tensor(s) for s in rng.sample(sentences, min(train.batch_size, len(sentences)))]
        padded = nn.utils.rnn.pad_sequence(batch, batch_first=True, padding_value=-100)
        inputs = padded[:, :-1].clamp_min(0)
        logits, _ = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), padded[:, 1:].reshape(-1), ignore_index=-100)
        for group in optimizer.param_groups:  # linear decay to 10% keeps the late steps stable
            group["lr"] = train.learning_rate * (1 - 0.9 * step / train.steps)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % 50 == 0:
            progress.set_postfix(loss=f"{float(loss.detach()):.3f}")
    return model.eval()


def save_lm(model: CharLM, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(temporary), metadata={"format": "speech_s2s_char_lm", "config": json.dumps(asdict(model.config))})
    os.replace(temporary, path)


def load_lm(path: str | Path) -> CharLM:
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path))
    except Exception as error:
        raise ValueError(f"{path}: not a safetensors language model ({str(error).splitlines()[0] if str(error) else type(error).__name__})") from None
    if metadata.get("format") != "speech_s2s_char_lm":
        raise ValueError(f"{path}: not a speech_s2s character language model")
    values = json.loads(metadata["config"])
    model = CharLM(CharLMConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}))
    model.load_state_dict(tensors)
    return model.eval()
