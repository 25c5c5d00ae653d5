"""`speech-s2s stream` on files and standard input (the microphone: test_stream_microphone.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from speech_s2s.builder import BUNDLED_SAMPLE
from speech_s2s.frontend.audio import SAMPLE_RATE, load_audio

ROOT = Path(__file__).parent.parent
SPEECH = load_audio(BUNDLED_SAMPLE)
EXPECTED = "and your brother and sister were not very kind"
RESTORED = "And your brother and sister were not very kind."


def _run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run([sys.executable, "-m", "speech_s2s.cli", "stream", *args], input=stdin, capture_output=True,
                          env=env, timeout=120)


def test_building_the_parser_imports_no_torch():
    code = "import sys; from speech_s2s.cli.stream import add_stream; import argparse; " \
           "add_stream(argparse.ArgumentParser().add_subparsers()); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "False", out.stderr


def test_a_file_gives_jsonl_partials_then_the_final_and_a_summary():
    result = _run("--file", str(BUNDLED_SAMPLE), "--fast", "--output-format", "jsonl", "--threads", "1")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert events[-1]["type"] == "final" and " ".join(events[-1]["text"].lower().replace(",", " ").rstrip(".?!").split()) == EXPECTED
    assert set(events[0]) >= {"type", "text", "start", "end", "latency_ms"} and events[0]["type"] == "partial"
    assert "real-time factor" in result.stderr.decode() and "dropped 0.00 s" in result.stderr.decode()


def test_raw_pcm_on_standard_input_at_another_rate():
    import torch
    import torchaudio.functional

    audio = np.concatenate([SPEECH, np.zeros(SAMPLE_RATE // 2, dtype=np.float32)])
    at_22k = torchaudio.functional.resample(torch.from_numpy(audio), SAMPLE_RATE, 22050).numpy()
    pcm = np.clip(np.round(at_22k * 32767), -32768, 32767).astype("<i2").tobytes()
    result = _run("-", "--rate", "22050", "--threads", "1", stdin=pcm)
    assert result.returncode == 0, result.stderr
    assert result.stdout.decode().splitlines() == [RESTORED]  # not a terminal: final lines only, case and punctuation restored


@pytest.mark.parametrize("args, message", [
    (["--fast"], "--fast needs --file"),
    (["-", "--file", "x.wav"], "give one input, not --file and -"),
    (["--rate", "8000"], "--rate applies to -"),
    (["x.wav"], "unexpected input 'x.wav': use --file x.wav"),
])
def test_bad_options_are_one_line_and_status_2(args, message):
    result = _run(*args)
    assert result.returncode == 2 and message in result.stderr.decode() and len(result.stderr.decode().splitlines()) == 1


def test_a_missing_file_is_one_line_naming_it():
    result = _run("--file", "nowhere.flac")
    assert result.returncode == 1 and result.stderr.decode().strip() == "speech-s2s: error: nowhere.flac: no such file"


def test_on_a_terminal_the_partial_line_is_rewritten_in_place():
    import io

    from speech_s2s.cli.stream import _Display
    from speech_s2s.streaming import Event

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    display = _Display(out, "txt")
    for event in (Event("partial", "and your", 0, 1, 90), Event("partial", "and your brother", 0, 1.4, 90),
                  Event("final", "and your brother", 0, 1.6, 400), Event("partial", "um", 2, 2.4, 90), Event("final", "", 2, 2.6, 400)):
        display.show(event)
    assert out.getvalue() == "\r\x1b[Kand your\r\x1b[Kand your brother\r\x1b[Kand your brother\n\r\x1b[Kum\r\x1b[K"


def test_without_sounddevice_the_microphone_says_what_to_install(monkeypatch):
    from speech_s2s.sources import MicrophoneSource, SourceError

    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails as if not installed
    with pytest.raises(SourceError, match=r"^microphone input needs the sounddevice package: pip install 'speech_s2s\[mic\]'$"):
        MicrophoneSource()


def test_the_microphone_hands_over_what_queued_while_the_recogniser_was_busy_in_one_block(monkeypatch):
    """A recogniser that was busy gets everything that arrived meanwhile at once, in order and
    complete, instead of catching up one 20 ms block per push; the device is opened with 20 ms blocks."""
    import types

    import numpy as np

    from speech_s2s.sources import MicrophoneSource

    blocks = [np.full((320, 1), i, dtype=np.float32) for i in range(5)]
    opened = {}

    class FakeStream:
        def __init__(self, **settings):
            opened.update(settings)

        def start(self):
            for block in blocks:  # five periods arrive before the consumer looks
                opened["callback"](block, len(block), None, types.SimpleNamespace(input_overflow=False))

        def stop(self):
            pass

        def close(self):
            pass

    fake = types.SimpleNamespace(
        default=types.SimpleNamespace(device=(0, 0)),
        query_devices=lambda: [{"name": "fake microphone", "max_input_channels": 1, "default_samplerate": 16000.0}],
        check_input_settings=lambda *args, **kwargs: None,
        InputStream=FakeStream,
    )
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    source = MicrophoneSource()
    first = next(iter(source))
    assert opened["blocksize"] == 320 and opened["samplerate"] == 16000
    np.testing.assert_array_equal(first, np.concatenate([b[:, 0] for b in blocks]))
    assert source.dropped_seconds == 0 and source.overflows == 0
