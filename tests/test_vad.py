"""Voice activity detection and the segmenter that cuts long and live audio into utterances."""

import numpy as np
import pytest
import torch

from speech_s2s.builder import BUNDLED_SAMPLE
from speech_s2s.frontend.audio import SAMPLE_RATE, load_audio
from speech_s2s.frontend.vad import WINDOW, WINDOW_SECONDS, Segmenter, SegmenterConfig, SpeechDetector

SPEECH = load_audio(BUNDLED_SAMPLE)  # 2.5 s: ~0.3 s of silence, speech, ~0.1 s of silence


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)


def test_probabilities_equal_the_packaged_silero_model():
    threads = torch.get_num_threads()
    silero_vad = pytest.importorskip("silero_vad")
    packaged = silero_vad.load_silero_vad()
    torch.set_num_threads(threads)  # importing silero_vad sets it to 1
    packaged.reset_states()
    with torch.no_grad():
        expected = [float(packaged(torch.from_numpy(SPEECH[i : i + WINDOW].copy()), SAMPLE_RATE)) for i in range(0, len(SPEECH) - WINDOW + 1, WINDOW)]
    np.testing.assert_allclose(SpeechDetector().push(SPEECH), expected, atol=1e-4)


def test_probabilities_do_not_depend_on_how_the_audio_is_split():
    whole = SpeechDetector().push(SPEECH)
    detector = SpeechDetector()
    pieces = np.concatenate([detector.push(SPEECH[i : i + 777]) for i in range(0, len(SPEECH), 777)])
    np.testing.assert_allclose(pieces, whole, atol=1e-5)


@pytest.mark.parametrize("kind", ["tones", "white noise", "one sample", "silence"])
def test_non_speech_gives_no_segments(kind):
    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    audio = {
        "tones": 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t),
        "white noise": np.random.default_rng(0).normal(0, 0.1, len(t)),
        "one sample": np.array([0.5]),
        "silence": np.zeros(len(t)),
    }[kind].astype(np.float32)
    segmenter = Segmenter()
    assert segmenter.push(audio) + segmenter.flush() == []


def test_utterances_are_cut_at_pauses_with_their_speech_whole():
    gaps = [0.5, 0.8, 1.2]
    audio, starts = [_silence(0.4)], []
    for gap in gaps:
        starts.append(sum(len(a) for a in audio))
        audio += [SPEECH, _silence(gap)]
    audio = np.concatenate(audio)
    segmenter = Segmenter()
    segments = segmenter.push(audio) + segmenter.flush()
    assert len(segments) == len(gaps)
    for segment, start in zip(segments, starts):
        speech = (start + int(0.3 * SAMPLE_RATE), start + len(SPEECH) - int(0.1 * SAMPLE_RATE))
        assert segment.start <= speech[0] and segment.end >= speech[1]  # nothing of the speech is lost
        assert segment.end - segment.start < len(SPEECH) + 0.5 * SAMPLE_RATE  # and little else is taken
        np.testing.assert_array_equal(segment.samples, audio[segment.start : segment.end])


def test_the_closing_segment_is_known_after_a_pad_of_pause_and_is_the_one_the_pause_then_closes():
    audio = np.concatenate([_silence(0.4), SPEECH, _silence(1.0)])
    segmenter, closing, closed = Segmenter(), [], []
    for i in range(0, len(audio), WINDOW):
        closed += segmenter.push(audio[i : i + WINDOW])
        if not closed:
            closing.append(segmenter.closing())
    assert len(closed) == 1
    known = [c for c in closing if c is not None]
    assert known and all((c.start, c.end) == (closed[0].start, closed[0].end) for c in known)
    np.testing.assert_array_equal(known[0].samples, closed[0].samples)
    end_pad, silence = SegmenterConfig().end_pad_seconds, SegmenterConfig().min_silence_seconds
    assert len(known) == round(silence / WINDOW_SECONDS) - round(end_pad / WINDOW_SECONDS)  # from the end pad into the pause until it closes
    assert closing[: len(closing) - len(known)].count(None) == len(closing) - len(known)
    assert segmenter.closing() is None  # nothing open


def test_segments_do_not_depend_on_block_size_and_memory_stays_bounded():
    audio = np.concatenate([np.concatenate([SPEECH, _silence(0.6)]) for _ in range(8)])
    whole = Segmenter()
    expected = [(s.start, s.end) for s in whole.push(audio) + whole.flush()]
    segmenter, got, held = Segmenter(), [], 0
    for i in range(0, len(audio), 1000):
        got += [(s.start, s.end) for s in segmenter.push(audio[i : i + 1000])]
        held = max(held, len(segmenter._audio))
    got += [(s.start, s.end) for s in segmenter.flush()]
    assert got == expected and len(got) == 8
    assert held < 2 * len(SPEECH)  # only the current utterance is kept, never the whole stream


def test_speech_longer_than_the_limit_is_cut_into_pieces_that_cover_it():
    audio = np.concatenate([SPEECH[: int(2.4 * SAMPLE_RATE)]] * 6)  # 14 s with no pause
    segmenter = Segmenter(SegmenterConfig(max_seconds=5.0))
    segments = segmenter.push(audio) + segmenter.flush()
    assert len(segments) >= 3
    assert all(len(s.samples) <= 5.0 * SAMPLE_RATE for s in segments)
    assert all(a.end >= b.start for a, b in zip(segments, segments[1:]))  # no gap between pieces
