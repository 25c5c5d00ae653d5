"""A word n-gram LM (interpolated Kneser-Ney), which beam search consults at each word's end (word_fusion.py).

The character LM fused into the search judges spelling a few letters at a time; it cannot tell that
"please enter your agent number" is likelier than "please enter you're agent number" as words.

Estimation is interpolated Kneser-Ney (Chen & Goodman, 1998) with one discount per order
(D = n1 / (n1 + 2 n2)) and count cut-offs: an n-gram of order 2 or more seen fewer than `min_count`
times is not stored, and the mass it would have kept goes to its history's back-off weight, so every
distribution still sums to one. Unknown words share the uniform floor of the unigram distribution.

Stored in back-off form, like an ARPA file: each kept n-gram's interpolated log-probability, and a
log back-off weight per history; safetensors, no pickle. The log-probabilities are stored as float16
(a step of at most 0.016 nats where they are lowest): the search weighs them at 0.5 beside scores
that differ by whole nats, and the bundled file is 1 MB smaller.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from speech_s2s.atomic import replacing
from speech_s2s.errors import first_line

WORD_LM_FORMAT = "speech_s2s.word_ngram.v1"
UNK, BOS, EOS = "<unk>", "<s>", "</s>"
_ID_BITS = 21  # word ids packed into one int64 key per n-gram: up to 2**21 - 1 words, order up to 3


class WordLMError(ValueError):
    """A word LM file is missing, foreign or damaged; the one-line message names the file."""


@dataclass(frozen=True)
class WordLMConfig:
    order: int = 3
    # n-grams of order 2 and up with a smaller Kneser-Ney count are not stored (their mass backs off):
    # below the top order that count is how many distinct words precede the n-gram
    min_count: int = 2


def _key(ids: Sequence[int]) -> int:
    key = 0
    for position, word in enumerate(ids):
        key |= word << (_ID_BITS * position)
    return key


def _discount(counts: Iterable[int]) -> float:
    """Ney's estimate n1 / (n1 + 2 n2), from how many n-grams were seen once and twice."""
    histogram = Counter(count for count in counts if count <= 2)
    n1, n2 = histogram[1], histogram[2]
    return n1 / (n1 + 2 * n2) if n1 and n2 else 0.5


class WordNgramLM:
    """Log-probabilities (natural log) of word sequences; built by `estimate_word_lm` or `load_word_lm`."""

    def __init__(self, config: WordLMConfig, words: list[str], tables: dict[str, np.ndarray]):
        self.config = config
        self.words = words
        self._index = {word: i for i, word in enumerate(words)}
        self._tables = tables

    @property
    def tables(self) -> dict[str, np.ndarray]:
        return dict(self._tables)

    def log_prob(self, history: Sequence[int], word: int) -> float:
        """log P(word | the words before it), ids; only the last order - 1 of `history` count."""
        context = self.config.order - 1
        return _log_prob(self._tables, tuple(history[len(history) - context:]) if context else (), word)

    def word_id(self, word: str) -> int:
        """The id of a (lower-case) word; 0, <unk>, for a word the LM never saw."""
        return self._index.get(word, 0)

    def ids(self, text: str) -> list[int]:
        return [self.word_id(word) for word in text.lower().split()]

    def sentence_log_prob(self, text: str) -> float:
        """log P(words, then the end of the sentence), the history starting with <s>."""
        context = self.config.order - 1
        history = [self._index[BOS]] * context
        total = 0.0
        for word in self.ids(text) + [self._index[EOS]]:
            total += self.log_prob(history, word)
            history.append(word)
        return total


def _lookup(tables: dict[str, np.ndarray], name: str, key: int) -> float | None:
    keys = tables[f"{name}.keys"]
    position = int(np.searchsorted(keys, key))
    if position < len(keys) and keys[position] == key:
        return float(tables[f"{name}.values"][position])
    return None


def _log_prob(tables: dict[str, np.ndarray], history: tuple[int, ...], word: int) -> float:
    """log P(word | history) by backing off: the stored n-gram's value, else the history's back-off
    weight (none stored: it was never a history, or none of its n-grams was kept; weight 1) plus the
    shorter history's estimate."""
    if not history:
        return float(tables["1.values"][word])
    order = len(history) + 1
    stored = _lookup(tables, str(order), _key(history + (word,)))
    if stored is not None:
        return stored
    backoff = _lookup(tables, f"backoff{order}", _key(history)) or 0.0
    return backoff + _log_prob(tables, history[1:], word)


def estimate_word_lm(sentences: Iterable[str], config: WordLMConfig = WordLMConfig()) -> WordNgramLM:
    """Interpolated Kneser-Ney estimates from sentences (one per item; case is folded)."""
    if not 1 <= config.order <= 3:
        raise ValueError(f"order {config.order}: 1, 2 or 3")
    if config.min_count < 1:
        raise ValueError(f"min_count {config.min_count}: 1 or more")
    order = config.order
    tokenised = [sentence.lower().split() for sentence in sentences]
    if not tokenised:
        raise ValueError("no sentences to estimate a word LM from")
    frequency = Counter(word for words in tokenised for word in words)
    words = [UNK, BOS, EOS] + sorted(frequency, key=lambda w: (-frequency[w], w))
    if len(words) >= 2 ** _ID_BITS:
        raise ValueError(f"{len(words)} distinct words: at most {2 ** _ID_BITS - 1}")
    index = {word: i for i, word in enumerate(words)}
    bos, eos = index[BOS], index[EOS]

    # raw counts of every order, over sentences padded with order-1 <s>
    raw: list[Counter] = [Counter() for _ in range(order + 1)]
    for sentence in tokenised:
        ids = [bos] * (order - 1) + [index[w] for w in sentence] + [eos]
        for position in range(order - 1, len(ids)):
            for n in range(1, order + 1):
                raw[n][tuple(ids[position - n + 1 : position + 1])] += 1
    # Kneser-Ney's counts: the highest order's raw counts; below it, how many distinct words precede
    # each n-gram, except for n-grams starting at <s>, which nothing can precede
    counts: list[dict] = [{} for _ in range(order + 1)]
    counts[order] = dict(raw[order])
    for n in range(order - 1, 0, -1):
        continuation = Counter(gram[1:] for gram in raw[n + 1])
        counts[n] = {gram: raw[n][gram] if gram[0] == bos else continuation[gram] for gram in raw[n]}

    vocabulary_size = len(words) - 1  # every word but <s> can be predicted; <unk> gets the floor alone
    tables: dict[str, np.ndarray] = {}
    # unigrams: discounted counts interpolated with the uniform distribution
    discount = _discount(counts[1].values())
    total = sum(counts[1].values())
    floor = discount * len(counts[1]) / total / vocabulary_size
    unigram = np.full(len(words), floor, dtype=np.float64)
    for (word,), count in counts[1].items():
        unigram[word] += (count - discount) / total
    unigram[bos] = 1.0  # never predicted; keeps log finite
    tables["1.values"] = np.log(unigram).astype(np.float32)

    for n in range(2, order + 1):
        discount = _discount(counts[n].values())
        totals: dict[tuple, float] = defaultdict(float)
        kept_mass: dict[tuple, float] = defaultdict(float)
        for gram, count in counts[n].items():
            totals[gram[:-1]] += count
            if count >= config.min_count:
                kept_mass[gram[:-1]] += count - discount
        # the back-off weight: the discounts' mass plus all of what pruning removed
        backoff = {history: (totals[history] - kept_mass[history]) / totals[history] for history in totals}
        kept = sorted((_key(gram), gram) for gram, count in counts[n].items() if count >= config.min_count)
        values = np.empty(len(kept), dtype=np.float32)
        for i, (_, gram) in enumerate(kept):
            history, word = gram[:-1], gram[-1]
            probability = (counts[n][gram] - discount) / totals[history] \
                + backoff[history] * math.exp(_log_prob(tables, history[1:], word))  # the orders below are done
            values[i] = math.log(probability)
        tables[f"{n}.keys"] = np.array([key for key, _ in kept], dtype=np.int64)
        tables[f"{n}.values"] = values
        # a history none of whose n-grams was kept backs off with weight 1 (log 0), as an unseen one does
        histories = sorted((_key(history), history) for history in backoff if kept_mass[history] > 0)
        tables[f"backoff{n}.keys"] = np.array([key for key, _ in histories], dtype=np.int64)
        tables[f"backoff{n}.values"] = np.array([math.log(backoff[h]) for _, h in histories], dtype=np.float32)
    return WordNgramLM(config, words, tables)


def perplexity(lm: WordNgramLM, sentences: Sequence[str]) -> float:
    """Per word, the end of each sentence counted as one."""
    total = sum(lm.sentence_log_prob(sentence) for sentence in sentences)
    return math.exp(-total / sum(len(sentence.split()) + 1 for sentence in sentences))


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------
def save_word_lm(lm: WordNgramLM, path: str | Path) -> None:
    from safetensors.torch import save_file

    tensors = {name: torch.from_numpy(np.ascontiguousarray(array if name.endswith(".keys") else array.astype(np.float16)))
               for name, array in lm.tables.items()}
    tensors["words"] = torch.frombuffer(bytearray("\n".join(lm.words).encode("utf-8")), dtype=torch.uint8)
    with replacing(path) as temporary:
        save_file(tensors, str(temporary), metadata={"format": WORD_LM_FORMAT, "config": json.dumps(asdict(lm.config))})


def load_word_lm(path: str | Path) -> WordNgramLM:
    """Read a word LM written by `save_word_lm`; WordLMError names the file and the cause."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise WordLMError(f"{path}: no such word LM file")
    try:
        with safe_open(str(path), framework="pt") as stored:
            metadata = stored.metadata() or {}
            if metadata.get("format") != WORD_LM_FORMAT:
                raise WordLMError(f"{path}: not a speech_s2s word LM (format {metadata.get('format')!r})")
            config = WordLMConfig(**json.loads(metadata["config"]))
            words = bytes(stored.get_tensor("words").numpy()).decode("utf-8").split("\n")
            tables = {name: stored.get_tensor(name).numpy() if name.endswith(".keys") else stored.get_tensor(name).float().numpy()
                      for name in stored.keys() if name != "words"}
    except WordLMError:
        raise
    except Exception as error:  # a truncated or foreign file: safetensors, JSON or the dataclass complain
        raise WordLMError(f"{path}: unreadable word LM ({first_line(error)})") from None
    expected = {"1.values"} | {f"{kind}{n}.{part}" for n in range(2, config.order + 1) for kind in ("", "backoff")
                                for part in ("keys", "values")}
    if set(tables) != expected or words[:3] != [UNK, BOS, EOS] or len(tables["1.values"]) != len(words):
        raise WordLMError(f"{path}: damaged word LM (its tables do not match its order {config.order} and {len(words)} words)")
    return WordNgramLM(config, words, tables)
