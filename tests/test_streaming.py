"""Live recognition with LocalAgreement: committed words never change, finals equal offline decoding."""

import time

import numpy as np
import pytest

from speech_s2s.builder import BUNDLED_SAMPLE, load
from speech_s2s.evaluation.scoring import normalize_for_scoring
from speech_s2s.frontend.audio import SAMPLE_RATE, load_audio
from speech_s2s.punctuation.restore import LiveRestorer
from speech_s2s.sources import FileSource
from speech_s2s.streaming import LocalAgreement, StreamingRecognizer, StreamOptions

SPEECH = load_audio(BUNDLED_SAMPLE)


def test_local_agreement_commits_what_two_hypotheses_share_and_never_retracts():
    agreement = LocalAgreement()
    assert agreement.insert(["and", "you"]) == ["and", "you"] and agreement.committed == []
    assert agreement.insert(["and", "your", "bro"]) == ["and", "your", "bro"] and agreement.committed == ["and"]
    assert agreement.insert(["and", "your", "brother"]) == ["and", "your", "brother"] and agreement.committed == ["and", "your"]
    # a hypothesis that changes a committed word only changes what follows the committed words
    assert agreement.insert(["an", "your", "brother", "and"]) == ["and", "your", "brother", "and"]
    assert agreement.committed == ["and", "your", "brother"]


@pytest.fixture(scope="module")
def recognizer():
    import torch

    torch.set_num_threads(1)
    return load(beam_size=1)  # greedy finals: the tests are about streaming, not search


def _audio() -> np.ndarray:
    silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
    return np.concatenate([silence, SPEECH, silence, SPEECH[: len(SPEECH) // 2], silence])


def test_finals_equal_offline_decoding_of_the_same_segments_and_partials_only_grow(recognizer, tmp_path):
    import soundfile

    audio = _audio()
    path = tmp_path / "two.wav"
    soundfile.write(path, audio, SAMPLE_RATE, subtype="FLOAT")
    streamer = StreamingRecognizer(recognizer, StreamOptions(update_seconds=0.3))
    began = time.perf_counter()
    events = list(streamer.stream(FileSource(path, fast=True)))
    elapsed = time.perf_counter() - began
    finals = [e for e in events if e.type == "final"]
    offline = recognizer.decode_segments(list(recognizer.segments_of([audio])))  # the model's words
    live = LiveRestorer(recognizer.restorer)  # each final restored after the ones before it (all end at pauses here)
    assert [(e.text, e.start, e.end) for e in finals] == [(" ".join(live.restore(s.raw_text.split())), s.start, s.end) for s in offline]
    assert len(finals) == 2 and normalize_for_scoring(finals[0].text) == "AND YOUR BROTHER AND SISTER WERE NOT VERY KIND"
    assert finals[0].text[0] == "A" and finals[0].text[-1] in ".?!"  # finals restored (partials stay raw)

    committed: list[str] = []
    partials_per_utterance = [0]
    for event in events:
        if event.type == "final":
            committed = []
            partials_per_utterance.append(0)
            continue
        words = event.committed.split()
        assert words[: len(committed)] == committed, "committed words were taken back"
        assert event.text.split()[: len(words)] == words
        committed = words
        partials_per_utterance[-1] += 1
    assert partials_per_utterance[0] >= 3  # 2 s of speech, a decoding every 0.3 s

    summary = streamer.summary()
    assert summary.utterances == 2 and summary.partials == sum(partials_per_utterance)
    assert summary.audio_seconds == len(audio) / SAMPLE_RATE
    assert summary.final_ms is not None and summary.first_partial_ms is not None
    # the time spent recognising lies inside the wall time of the stream, and the real-time factor is
    # that time over the audio's
    assert 0 < summary.processing_seconds <= elapsed
    assert summary.real_time_factor == summary.processing_seconds / (len(audio) / SAMPLE_RATE)


def _counting_decodes(recognizer, monkeypatch) -> list[int]:
    calls = []
    original = recognizer.decode_segments

    def counted(segments):
        calls.append(len(segments))
        return original(segments)

    monkeypatch.setattr(recognizer, "decode_segments", counted)
    return calls


def test_a_final_decoded_in_the_pause_is_used_once_and_only_for_its_own_segment(recognizer, monkeypatch):
    calls = _counting_decodes(recognizer, monkeypatch)
    silence = lambda seconds: np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)  # noqa: E731
    # a pause of 0.25 s (longer than the pad, shorter than the pause that ends an utterance), then more speech
    audio = np.concatenate([silence(0.5), SPEECH[: int(1.4 * SAMPLE_RATE)], silence(0.25), SPEECH[int(0.3 * SAMPLE_RATE) :], silence(1.0)])
    events = []
    streamer = StreamingRecognizer(recognizer)
    for start in range(0, len(audio), 800):
        events += streamer.push(audio[start : start + 800])
    events += streamer.finish()
    finals = [e for e in events if e.type == "final"]
    offline = recognizer.decode_segments(list(recognizer.segments_of([audio])))  # the model's words
    live = LiveRestorer(recognizer.restorer)  # each final restored after the ones before it (all end at pauses here)
    assert [(e.text, e.start, e.end) for e in finals] == [(" ".join(live.restore(s.raw_text.split())), s.start, s.end) for s in offline]
    segments = len(offline)
    assert segments == 1  # the short pause did not end the utterance
    calls.pop()  # the offline decoding above
    # each final was decoded once, in its pause; a short pause's guess was decoded too, and not used
    assert len(calls) == segments + 1 and len(finals) == segments

    calls.clear()
    off = StreamingRecognizer(recognizer, StreamOptions(speculative_finals=False))
    unspeculated = [e for start in range(0, len(audio), 800) for e in off.push(audio[start : start + 800])] + off.finish()
    assert [(e.text, e.start, e.end) for e in unspeculated if e.type == "final"] == [(e.text, e.start, e.end) for e in finals]
    assert len(calls) == segments  # decoded when the pause ended each utterance


def test_partials_are_not_decoded_in_a_pause_nor_while_the_decoder_is_behind(recognizer, monkeypatch):
    """A partial decoded in a pause would show no new words and hold up the final; one decoded while
    older audio waits would come out late and push everything after it later still. Finals are the
    same either way."""
    audio = np.concatenate([np.zeros(SAMPLE_RATE // 2, dtype=np.float32), SPEECH, np.zeros(SAMPLE_RATE, dtype=np.float32)])

    def run(arrived_ago: float | None) -> tuple[list, list[bool]]:
        streamer = StreamingRecognizer(recognizer, StreamOptions(update_seconds=0.1))  # a partial every 0.1 s of speech
        in_pause_at_partials = []
        decode = streamer._decode_words

        def watched(samples):
            in_pause_at_partials.append(streamer._segmenter.in_pause)
            return decode(samples)

        monkeypatch.setattr(streamer, "_decode_words", watched)
        events = []
        for start in range(0, len(audio), 800):
            arrived = None if arrived_ago is None else time.monotonic() - arrived_ago
            events += streamer.push(audio[start : start + 800], arrived)
        return events + streamer.finish(), in_pause_at_partials

    events, in_pause = run(None)
    assert len(in_pause) >= 10 and not any(in_pause)  # about 2 s of speech: partials all through it, none in its pauses
    behind, in_pause_behind = run(1.0)  # every block heard a second before the decoder gets to it
    assert in_pause_behind == [] and [e.type for e in behind] == ["final"]
    assert [(e.text, e.start, e.end) for e in behind] == [(e.text, e.start, e.end) for e in events if e.type == "final"]


def test_the_stream_can_be_cut_short_and_finished(recognizer):
    """What Ctrl-C does: stop pushing mid-utterance, then finish: the open utterance becomes a final."""
    streamer = StreamingRecognizer(recognizer)
    audio = np.concatenate([np.zeros(SAMPLE_RATE // 2, dtype=np.float32), SPEECH[: int(1.6 * SAMPLE_RATE)]])
    events = []
    for start in range(0, len(audio), 800):
        events += streamer.push(audio[start : start + 800])
    assert events and all(e.type == "partial" for e in events)
    finals = streamer.finish()
    assert len(finals) == 1 and finals[0].type == "final" and finals[0].text.startswith("And your brother")


def test_silence_and_noise_give_no_events(recognizer):
    streamer = StreamingRecognizer(recognizer)
    noise = np.random.default_rng(0).normal(0, 0.01, 3 * SAMPLE_RATE).astype(np.float32)
    assert list(streamer.stream([noise[i : i + 1600] for i in range(0, len(noise), 1600)])) == []


def test_chunked_ctc_partials_equal_ctc_over_the_offline_chunked_encoder(recognizer):
    import torch

    from speech_s2s.decoding.search import BLANK_ID
    from speech_s2s.model.encoder import ChunkConfig
    from speech_s2s.streaming import ChunkedCTC

    model, chunk = recognizer.model, ChunkConfig(32, 16)
    chunked = ChunkedCTC(model, chunk)
    rng = np.random.default_rng(0)
    start, text = 0, ""
    while start < len(SPEECH):
        size = int(rng.integers(100, 3000))
        text = chunked.push(SPEECH[start : start + size])
        start += size
    with torch.no_grad():
        feats, lengths = model.features(torch.from_numpy(SPEECH)[None], torch.tensor([len(SPEECH)]))
        best = model.ctc_log_probs(model.encode(feats, lengths, chunk))[0].argmax(-1).tolist()[: chunked.ctc_frames]
    tokens = [t for i, t in enumerate(best) if t != BLANK_ID and (i == 0 or t != best[i - 1])]
    assert chunked.ctc_frames > 0.8 * len(SPEECH) / SAMPLE_RATE * 25  # all but the last window's frames (25 Hz)
    # Exactly: until commit 279113c (2026-11-30) the bundled model's float16 Hann window made its offline
    # features differ from the streaming extractor's, and the stream spelled "werd" for "word".
    assert text == model.vocabulary.decode(tokens)


def test_each_final_is_restored_with_the_silence_since_the_final_before_it(recognizer, monkeypatch):
    """The stream tells the live restorer how long the pause before a final was (a long one starts a
    new text): the gap between one final's end and the next one's start, nothing before the first."""
    seen = []
    original = LiveRestorer.restore

    def recording(self, words, last=False, silence_before=0.0):
        seen.append(silence_before)
        return original(self, words, last, silence_before)

    monkeypatch.setattr(LiveRestorer, "restore", recording)
    silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
    audio = np.concatenate([silence, SPEECH, np.zeros(5 * SAMPLE_RATE, dtype=np.float32), SPEECH, silence])
    finals = [e for e in StreamingRecognizer(recognizer).stream([audio[i:i + 1600] for i in range(0, len(audio), 1600)]) if e.type == "final"]
    assert len(finals) == 2 and len(seen) == 2
    assert seen[0] == 0.0 and seen[1] == pytest.approx(finals[1].start - finals[0].end) and seen[1] > 4.0
    assert finals[1].text[0].isupper()


def test_chunked_mode_finals_still_equal_offline_decoding(recognizer):
    streamer = StreamingRecognizer(recognizer, StreamOptions(mode="chunked"))
    audio = _audio()
    events = list(streamer.stream([audio[i : i + 800] for i in range(0, len(audio), 800)]))
    offline = recognizer.decode_segments(list(recognizer.segments_of([audio])))
    live = LiveRestorer(recognizer.restorer)
    assert [e.text for e in events if e.type == "final"] == [" ".join(live.restore(s.raw_text.split())) for s in offline]
    partials = [e for e in events if e.type == "partial"]
    assert len(partials) >= 4
    for before, after in zip(partials, partials[1:]):
        if before.start == after.start:
            assert after.committed.split()[: len(before.committed.split())] == before.committed.split()
