"""The transcription pipeline: any length, bounded memory, results in order as soon as ready."""

import numpy as np
import pytest
import soundfile

from speech_s2s.builder import BUNDLED_MODEL, BUNDLED_SAMPLE
from speech_s2s.decoding.options import DecodingOptions
from speech_s2s.frontend.audio import SAMPLE_RATE, load_audio
from speech_s2s.input_files import InputFile
from speech_s2s.model.files import load_model
from speech_s2s.transcribe import (
    FailedFile,
    FileTranscript,
    Recognizer,
    TranscribeOptions,
)

SENTENCE = "and your brother and sister were not very kind"


@pytest.fixture(scope="module")
def recognizer():
    # Beam search (no LM): these tests are about the pipeline, and since commit 4f8c638 (2026-11-30) the
    # bundled model's greedy search hears the sample's "very" as "bury" in some of its segment cuts.
    return Recognizer(load_model(BUNDLED_MODEL), TranscribeOptions(decoding=DecodingOptions(beam_size=4), batch_size=4, read_ahead=1))


def _write(path, samples, rate=SAMPLE_RATE):
    soundfile.write(path, samples, rate)
    return str(path)


def test_fourteen_sentences_in_45_seconds_are_all_transcribed(recognizer, tmp_path):
    sentence, rng = load_audio(BUNDLED_SAMPLE), np.random.default_rng(0)
    parts = [np.concatenate([sentence, np.zeros(int(rng.uniform(0.4, 1.0) * SAMPLE_RATE), np.float32)]) for _ in range(14)]
    path = _write(tmp_path / "long.flac", np.concatenate(parts))
    [result] = list(recognizer.transcribe_files([InputFile(path, "long")]))
    assert result.text == " ".join([SENTENCE] * 14)
    assert len(result.segments) == 14 and all(s.end - s.start < 10 for s in result.segments)
    assert all(a.end <= b.start for a, b in zip(result.segments, result.segments[1:]))
    assert abs(result.duration - sum(len(p) for p in parts) / SAMPLE_RATE) < 1e-3
    words = [w for s in result.segments for w in s.words]
    assert [w.word for w in words] == (SENTENCE.split() * 14)
    assert all(a.start <= b.start for a, b in zip(words, words[1:]))


def test_results_come_out_in_input_order_before_later_inputs_are_read(recognizer, tmp_path):
    sample = _write(tmp_path / "s.flac", load_audio(BUNDLED_SAMPLE))
    consumed = []

    def inputs():
        for n in range(6):
            consumed.append(n)
            yield InputFile(sample if n != 2 else str(tmp_path / "missing.flac"), f"f{n}")

    results = recognizer.transcribe_files(inputs())
    first = next(results)
    assert first.id == "f0" and first.text == SENTENCE
    assert len(consumed) < 6  # a pipeline, not a pile: the rest are not even opened yet
    rest = list(results)
    assert [r.id for r in rest] == ["f1", "f2", "f3", "f4", "f5"]
    assert isinstance(rest[1], FailedFile) and rest[1].error == f"{tmp_path / 'missing.flac'}: no such file"


@pytest.mark.parametrize("kind", ["noise_10ms", "one_sample", "tones_6ch", "silence"])
def test_sounds_that_are_not_speech_give_empty_text(recognizer, tmp_path, kind):
    t = np.arange(3 * SAMPLE_RATE) / SAMPLE_RATE
    tones = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1250 * t)
    audio = {
        "noise_10ms": np.random.default_rng(0).normal(0, 0.3, 160),
        "one_sample": np.array([0.4]),
        "tones_6ch": np.stack([tones * (0.5 + c / 10) for c in range(6)], axis=1),
        "silence": np.zeros(len(t)),
    }[kind]
    [result] = list(recognizer.transcribe_files([InputFile(_write(tmp_path / f"{kind}.wav", audio), kind)]))
    assert isinstance(result, FileTranscript) and result.text == "" and result.segments == ()


def test_the_python_api_transcribes_a_path_or_an_array_as_a_generator_of_segments(tmp_path):
    import speech_s2s

    recognizer = speech_s2s.load(batch_size=2)
    segments, info = recognizer.transcribe(str(BUNDLED_SAMPLE))
    assert (info.sample_rate, info.channels, info.duration) == (SAMPLE_RATE, 1, 2.5)
    segments = list(segments)
    assert [s.raw_text for s in segments] == [SENTENCE]  # the model's words; `text` has them cased and punctuated
    restored = segments[0]
    assert restored.text[0].isupper() and restored.text[-1] in ".?!" and restored.text.lower().replace(",", "").rstrip(".?!") == SENTENCE
    assert [w.word for w in restored.words] == SENTENCE.split() and len(restored.text.split()) == len(restored.words)
    assert [s.text for s in speech_s2s.load(batch_size=2, punctuation=False).transcribe(str(BUNDLED_SAMPLE))[0]] == [SENTENCE]
    sentence = load_audio(BUNDLED_SAMPLE)
    audio = np.concatenate([np.zeros(SAMPLE_RATE, np.float32), sentence, np.zeros(SAMPLE_RATE, np.float32), sentence])
    segments, info = recognizer.transcribe(audio)
    assert not isinstance(segments, list) and info.duration == len(audio) / SAMPLE_RATE
    segments = list(segments)
    assert [s.raw_text for s in segments] == [SENTENCE, SENTENCE]
    assert 0.7 < segments[0].start < 1.4 and segments[1].start > 3.4


def test_a_recording_is_restored_as_one_text_the_same_by_every_path(recognizer, tmp_path):
    """The segments of one recording are cased and punctuated together (a pause inside a sentence is
    no sentence end), and the generator, the file pipeline and the segments restored afterwards agree."""
    from speech_s2s.punctuation.labels import render
    from speech_s2s.punctuation.restore import Restorer
    from speech_s2s.transcribe import restored_in_order

    restoring = Recognizer(recognizer.model, recognizer.options, restorer=Restorer.load())
    sentence, rng = load_audio(BUNDLED_SAMPLE), np.random.default_rng(1)
    audio = np.concatenate([np.concatenate([sentence, np.zeros(int(rng.uniform(0.4, 1.0) * SAMPLE_RATE), np.float32)]) for _ in range(14)])
    raw = recognizer.decode_segments(list(recognizer.segments_of([audio])))
    generated = list(restoring.transcribe(audio)[0])
    [filed] = list(restoring.transcribe_files([InputFile(_write(tmp_path / "long.flac", audio), "long")]))
    assert [s.raw_text for s in generated] == [SENTENCE] * 14
    assert generated == list(filed.segments) == list(restored_in_order(raw, restoring.restorer))
    joined = restoring.restorer.label_many([" ".join([SENTENCE] * 14).split()], pauses=[[9 * i - 1 for i in range(1, 15)]])[0]
    assert " ".join(s.text for s in generated) == render(joined.words, joined.cases, joined.marks)
    assert [len(s.text.split()) for s in generated] == [9] * 14 and generated[0].text[0] == "A" and generated[-1].text[-1] in ".?!"
