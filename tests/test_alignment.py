"""Word times: CTC forced alignment of a known text against speech with known word boundaries."""

import shutil
import subprocess

import numpy as np
import pytest
import torch

from speech_s2s.builder import BUNDLED_MODEL
from speech_s2s.decoding.alignment import token_frames, word_times
from speech_s2s.frontend.audio import SAMPLE_RATE, load_audio
from speech_s2s.model.files import load_model
from speech_s2s.text import Vocabulary


def test_token_frames_follow_the_best_path_and_refuse_impossible_texts():
    vocabulary = Vocabulary()
    a, b = vocabulary.encode("a")[0], vocabulary.encode("b")[0]
    path = [0, a, a, 0, b, 0]  # blank a a blank b blank
    log_probs = torch.full((6, len(vocabulary)), -20.0)
    log_probs[torch.arange(6), torch.tensor(path)] = 0.0
    assert token_frames(log_probs, [a, b]) == [(1, 2), (4, 4)]
    assert token_frames(log_probs[:2], [a, a, a]) is None  # 'aaa' needs at least 5 frames


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="needs espeak-ng")
def test_word_times_on_speech_with_known_word_boundaries(tmp_path):
    words = "and your brother and sister were not very kind".split()
    rng = np.random.default_rng(1)
    pieces, truth, position = [np.zeros(3200, np.float32)], [], 3200
    for word in words:
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(tmp_path / "w.wav"), word], check=True)
        audio = load_audio(tmp_path / "w.wav")
        loud = np.flatnonzero(np.abs(audio) > 0.02)
        audio = audio[loud[0] : loud[-1] + 1]  # the word itself, without espeak's own silence
        truth.append((position / SAMPLE_RATE, (position + len(audio)) / SAMPLE_RATE))
        gap = np.zeros(int(rng.uniform(0.1, 0.4) * SAMPLE_RATE), np.float32)
        pieces += [audio, gap]
        position += len(audio) + len(gap)
    signal = torch.from_numpy(np.concatenate(pieces))
    model = load_model(BUNDLED_MODEL)
    with torch.no_grad():
        feats, lengths = model.features(signal[None], torch.tensor([len(signal)]))
        ctc = model.ctc_log_probs(model.encode(feats, lengths))[0]
    found = word_times(ctc, model.vocabulary.encode(" ".join(words)), model.vocabulary, 0.04, 0.0, len(signal) / SAMPLE_RATE)
    assert [w.word for w in found] == words
    starts = np.array([w.start - t[0] for w, t in zip(found, truth)])
    ends = np.array([w.end - t[1] for w, t in zip(found, truth)])
    assert np.abs(starts).max() <= 0.08 and np.abs(ends).max() <= 0.12  # within two or three 40 ms frames
    assert np.abs(starts).mean() <= 0.04 and np.abs(ends).mean() <= 0.05


def test_unalignable_text_is_spread_evenly_over_the_segment():
    vocabulary = Vocabulary()
    words = word_times(torch.zeros(2, len(vocabulary)), vocabulary.encode("ab cd"), vocabulary, 0.04, 1.0, 2.0)
    assert [(w.word, w.start, w.end) for w in words] == [("ab", 1.0, 1.5), ("cd", 1.5, 2.0)]
