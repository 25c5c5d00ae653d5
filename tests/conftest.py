from pathlib import Path

import pytest

from speech_s2s.model.attention import AttentionConfig
from speech_s2s.model.decoder import DecoderConfig
from speech_s2s.model.encoder import EncoderConfig
from speech_s2s.model.seq2seq import ModelConfig

DATA = Path(__file__).parent / "data"
MINI_CORPUS = DATA / "mini"  # 4 espeak-ng utterances in the LibriSpeech layout


def tiny_config(**overrides) -> ModelConfig:
    """A model small enough to train in seconds on CPU: 3 pyramid layers, CTC at 4x, attention at 8x."""
    config = ModelConfig(
        encoder=EncoderConfig(hidden_size=64, num_layers=3, reduce_before=(0, 1, 2), ctc_layer=1, dropout=0.0),
        decoder=DecoderConfig(embedding_size=32, hidden_size=128, dropout=0.0, attention=AttentionConfig(attention_size=64)),
        label_smoothing=0.0,
    )
    return ModelConfig(**{**config.__dict__, **overrides})


def tiny_model_with_mini_features(seed: int = 0):
    """A fresh tiny model (seeded) with the mini corpus's features and its normalisation set from them."""
    import torch

    from speech_s2s.data.batches import compute_features, feature_stats
    from speech_s2s.data.corpus import read_librispeech
    from speech_s2s.model.seq2seq import Seq2Seq

    torch.manual_seed(seed)
    model = Seq2Seq(tiny_config())
    features = compute_features(read_librispeech(MINI_CORPUS), model.logmel, model.vocabulary)
    model.normalizer.set_stats(*feature_stats(features.features))
    return model, features


def copied_mini_corpus(folder: Path, copies: int, longer_per_copy: float = 0.0) -> list:
    """The mini corpus's audio copied `copies` times into folder/audio, under ids ending -COPY; each copy's
    durations are `longer_per_copy` seconds longer than the last (an order for length-sorted decoding)."""
    import dataclasses
    import shutil

    from speech_s2s.data.corpus import read_librispeech

    utterances = []
    for copy in range(copies):
        for u in read_librispeech(MINI_CORPUS):
            audio = folder / "audio" / f"{copy}-{Path(u.audio).name}"
            audio.parent.mkdir(exist_ok=True)
            shutil.copy(u.audio, audio)
            utterances.append(dataclasses.replace(u, id=f"{u.id}-{copy}", audio=str(audio), duration=u.duration + copy * longer_per_copy))
    return utterances


@pytest.fixture
def mini_corpus() -> Path:
    return MINI_CORPUS
