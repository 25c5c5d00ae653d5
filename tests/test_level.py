"""Input level: quiet or loud speech is moved into the training range; speech already in it is not touched."""

import dataclasses
import math

import numpy as np
import pytest

from speech_s2s.builder import BUNDLED_SAMPLE, load
from speech_s2s.frontend.audio import SAMPLE_RATE, load_audio
from speech_s2s.frontend.level import (
    LevelConfig,
    active_level_db,
    gain_into_range,
    into_range,
    level_config,
    measure_training_range,
    training_range,
)
from speech_s2s.streaming import StreamingRecognizer, StreamOptions
from speech_s2s.transcribe import Recognizer

SPEECH = load_audio(BUNDLED_SAMPLE)
SAMPLE_TEXT = "and your brother and sister were not very kind"


def tone(amplitude: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def sine_db(amplitude: float) -> float:
    return 20 * math.log10(amplitude / math.sqrt(2))


def test_the_active_level_is_that_of_the_speech_not_of_the_pauses_around_it():
    x = tone(0.1)
    padded = np.concatenate([x, np.zeros_like(x)])  # half silence: its mean power is 3 dB lower
    assert active_level_db(x) == pytest.approx(sine_db(0.1), abs=0.01)
    assert active_level_db(padded) == pytest.approx(sine_db(0.1), abs=0.01)
    assert active_level_db(np.zeros(SAMPLE_RATE, dtype=np.float32)) is None
    assert active_level_db(tone(0.1)[:399]) is None  # less than one 25 ms frame


def test_speech_in_range_is_untouched_and_speech_outside_goes_to_the_nearest_bound():
    config = LevelConfig()
    inside = tone(0.2)  # -17.0 dB
    assert into_range(inside) is inside and gain_into_range(inside) == 1.0
    assert active_level_db(into_range(tone(0.01))) == pytest.approx(config.low_db, abs=0.01)  # from -43 dB
    assert active_level_db(into_range(tone(0.9))) == pytest.approx(config.high_db, abs=0.01)  # from -3.9 dB
    quiet = tone(0.01)
    assert into_range(quiet, None) is quiet
    assert into_range(quiet).dtype == np.float32


def test_a_lift_stops_at_its_limit_and_short_of_clipping():
    very_quiet = tone(1e-4)  # -83 dB: lifted by 40 dB only
    assert active_level_db(into_range(very_quiet)) == pytest.approx(sine_db(1e-4) + 40, abs=0.01)
    clicky = tone(0.003)
    clicky[100] = 0.5  # one loud click in quiet speech
    lifted = into_range(clicky)
    assert np.abs(lifted).max() == pytest.approx(0.99, abs=1e-6)
    assert active_level_db(lifted) < LevelConfig().low_db


def _without_level(recognizer: Recognizer) -> Recognizer:
    return Recognizer(recognizer.model, dataclasses.replace(recognizer.options, keep_level=True), recognizer.lm)


@pytest.fixture(scope="module")
def default_recognizer() -> Recognizer:
    """The default decoding (beam search with the bundled LM), as `speech-s2s transcribe` runs."""
    import torch

    torch.set_num_threads(1)
    return load()


def test_speech_30_db_quieter_reads_the_same_and_without_the_correction_reads_nothing(default_recognizer):
    # The default decoding: with greedy search, the model of commit 0644b18 (2026-11-30) spells "not bury kind" once the
    # correction has brought the quiet copy to the band's lower edge (a b/v near-tie the LM settles).
    quiet = SPEECH * np.float32(10 ** (-30 / 20))
    assert [s.raw_text for s in default_recognizer.transcribe(SPEECH)[0]] == [SAMPLE_TEXT]
    assert [s.raw_text for s in default_recognizer.transcribe(quiet)[0]] == [SAMPLE_TEXT]
    assert [s.raw_text for s in _without_level(default_recognizer).transcribe(quiet)[0]] == [""]


def test_live_chunked_partials_take_the_level_of_the_last_finished_utterance(default_recognizer):
    silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
    recorded = np.concatenate([silence, SPEECH, silence, SPEECH, silence])
    quiet = recorded * np.float32(10 ** (-30 / 20))

    def partials_and_finals(which: Recognizer, audio: np.ndarray) -> tuple[list[str], list[str]]:
        events = list(StreamingRecognizer(which, StreamOptions(mode="chunked")).stream([audio[i : i + 800] for i in range(0, len(audio), 800)]))
        second = max(e.start for e in events)
        return [e.text for e in events if e.type == "partial" and e.start == second], [e.text for e in events if e.type == "final"]

    # Level invariance: 30 dB quieter, the stream says what it says at the recorded level, word for
    # word: the same two finals, and the second utterance's chunked-CTC partials (decoded at the
    # first utterance's gain) the same too. The default decoding, because with greedy search the
    # bundled model of 2026-12-07 (commit 047846e) hears the quiet copy's first "very" as "bury", a b/v
    # near-tie that the corrected level (the band's lower edge, not the recorded -19.5 dB) tips.
    partials, finals = partials_and_finals(default_recognizer, recorded)
    assert len(finals) == 2 and len(partials) >= 4 and all(finals), (partials, finals)
    assert partials_and_finals(default_recognizer, quiet) == (partials, finals)
    # without the level correction the quiet copy has no partials and empty finals
    assert partials_and_finals(_without_level(default_recognizer), quiet) == ([], ["", ""])


def test_the_cli_reads_a_quiet_recording_and_keep_level_decodes_it_as_recorded(tmp_path, capsys):
    import soundfile

    from speech_s2s.cli.main import main

    # 16-bit, as a quiet microphone records it: 30 dB below the sample's own level
    soundfile.write(tmp_path / "quiet.wav", SPEECH * 10 ** (-30 / 20), SAMPLE_RATE, subtype="PCM_16")
    capsys.readouterr()
    assert main(["transcribe", str(tmp_path / "quiet.wav"), "--beam", "1", "--no-punctuation"]) == 0
    assert capsys.readouterr().out == f"quiet {SAMPLE_TEXT}\n"
    assert main(["transcribe", str(tmp_path / "quiet.wav"), "--beam", "1", "--keep-level"]) == 0
    assert capsys.readouterr().out == "quiet\n"


def test_the_training_range_spans_the_10th_to_1_db_above_the_90th_percentile_rounded_outward():
    # the bundled model's corpora: 10th percentile -20.9 dB, 90th -13.7 dB -> LevelConfig's defaults
    assert training_range([-20.9] * 5 + [-13.7] * 5) == (LevelConfig().low_db, LevelConfig().high_db) == (-21.0, -12.0)
    assert training_range(list(np.linspace(-40.0, -20.0, 101))) == (-38.0, -21.0)  # 10th -38, 90th -22
    with pytest.raises(ValueError, match="no levels"):
        training_range([])


def test_the_training_range_is_measured_on_the_files_and_skips_silence_and_damage(tmp_path):
    import soundfile

    files = []
    for i, db in enumerate(np.linspace(-36.0, -24.0, 13)):  # a sine's active level is its RMS
        files.append(tmp_path / f"{i}.wav")
        soundfile.write(files[-1], tone(math.sqrt(2) * 10 ** (db / 20)), SAMPLE_RATE)
    soundfile.write(tmp_path / "silent.wav", np.zeros(SAMPLE_RATE, dtype=np.float32), SAMPLE_RATE)
    (tmp_path / "damaged.wav").write_bytes(b"RIFF not a wave")
    band = measure_training_range([*files, tmp_path / "silent.wav", tmp_path / "damaged.wav"])
    assert band == training_range(list(np.linspace(-36.0, -24.0, 13))) == (-35.0, -24.0)
    assert measure_training_range([tmp_path / "silent.wav"]) is None
    # a sample, not every file: seeded, so the same at every start of a run
    one = measure_training_range(files, limit=1)  # one file's level L: floor(L)..ceil(L) + 1
    assert one == measure_training_range(files, limit=1) and one[1] - one[0] <= 2


def test_decoding_scales_speech_into_the_range_the_model_file_states(tmp_path, capsys):
    import soundfile
    import torch

    from speech_s2s.builder import BUNDLED_MODEL
    from speech_s2s.cli.main import main
    from speech_s2s.model.files import load_model, save_model

    assert Recognizer(load_model(BUNDLED_MODEL)).level == LevelConfig()  # a file that states none: the bundled band
    # the bundled weights in a file that claims its training audio was 30 dB quieter: the quiet
    # recording is then in range and decoded as recorded (nothing), as with --keep-level above
    model = load_model(BUNDLED_MODEL)
    model.input_level_db = (-51.0, -42.0)
    save_model(model, tmp_path / "quiet-trained.safetensors", torch.float16)
    assert Recognizer(load_model(tmp_path / "quiet-trained.safetensors")).level == level_config((-51.0, -42.0))
    soundfile.write(tmp_path / "quiet.wav", SPEECH * 10 ** (-30 / 20), SAMPLE_RATE, subtype="PCM_16")
    capsys.readouterr()
    assert main(["transcribe", str(tmp_path / "quiet.wav"), "--beam", "1", "--model", str(tmp_path / "quiet-trained.safetensors")]) == 0
    assert capsys.readouterr().out == "quiet\n"
