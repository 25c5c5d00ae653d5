"""The microphone path for real: PulseAudio plays speech into a null sink, `speech-s2s stream` records its monitor.

Nothing is mocked: sounddevice opens ALSA's `default` device (PulseAudio's ALSA plugin), the audio
goes through PortAudio's callback, the queue, the segmenter and the recogniser, and Ctrl-C (SIGINT)
ends the program. Needs `pulseaudio pulseaudio-utils libportaudio2` (CI installs them); skipped
without them, except under CI=true.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from speech_s2s.builder import BUNDLED_SAMPLE, load

ROOT = Path(__file__).parent.parent
KEEP_ALIVE_SECONDS = 2.5  # an idle null sink wakes only every ~2 s; a silent stream keeps it running


def _missing() -> list[str]:
    missing = [tool for tool in ("pulseaudio", "pactl", "pacat", "paplay") if shutil.which(tool) is None]
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError):
        missing.append("sounddevice with libportaudio2")
    return missing


def _wait_for(path: Path, text: str, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if text in path.read_text():
            return
        if process.poll() is not None:
            break
        time.sleep(0.1)
    raise AssertionError(f"no {text!r} from speech-s2s stream: {path.read_text()}")


@pytest.fixture
def pulse_env():
    missing = _missing()
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must test the microphone path; missing: {', '.join(missing)} (apt-get install pulseaudio pulseaudio-utils libportaudio2)")
        pytest.skip(f"needs {', '.join(missing)}")
    folder = Path(tempfile.mkdtemp(prefix="s2s-pulse-"))  # short: the server's socket path must fit in 108 bytes
    env = {**os.environ, "XDG_RUNTIME_DIR": str(folder), "PULSE_COOKIE": str(folder / "cookie"), "HOME": str(folder)}
    subprocess.run(["pulseaudio", "-D", "-n", "--exit-idle-time=-1", "-L", "module-native-protocol-unix",
                    "-L", "module-null-sink sink_name=s2s_mic rate=16000 channels=1"], env=env, check=True, capture_output=True, timeout=20)
    keep_alive = None
    try:
        subprocess.run(["pactl", "set-default-source", "s2s_mic.monitor"], env=env, check=True, timeout=10)
        subprocess.run(["pactl", "set-default-sink", "s2s_mic"], env=env, check=True, timeout=10)
        keep_alive = subprocess.Popen(["pacat", "--playback", "--raw", "--rate=16000", "--channels=1", "--format=s16le", "/dev/zero"], env=env)
        yield env, time.monotonic(), folder
    finally:
        if keep_alive is not None:
            os.kill(keep_alive.pid, signal.SIGTERM)
            keep_alive.wait(timeout=10)
        subprocess.run(["pulseaudio", "--kill"], env=env, timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def test_speech_played_into_the_default_microphone_is_transcribed_as_offline(pulse_env):
    env, keep_alive_started, folder = pulse_env
    errors = folder / "stderr.txt"
    command = [sys.executable, "-m", "speech_s2s.cli", "stream", "--output-format", "jsonl", "--threads", "1"]
    with open(errors, "w") as stderr:
        stream = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, cwd=folder,
                                  env={**env, "PYTHONPATH": str(ROOT), "OMP_WAIT_POLICY": "PASSIVE"})
    try:
        offline = " ".join(s.text for s in load().transcribe(str(BUNDLED_SAMPLE))[0])  # while it starts
        _wait_for(errors, "listening on", stream, seconds=60)
        time.sleep(max(0.0, keep_alive_started + KEEP_ALIVE_SECONDS - time.monotonic()))
        subprocess.run(["paplay", str(BUNDLED_SAMPLE)], env=env, check=True, timeout=30)
        time.sleep(1.5)  # the pause that ends the utterance, then decoding
        stream.send_signal(signal.SIGINT)  # Ctrl-C
        out, _ = stream.communicate(timeout=30)
    finally:
        if stream.poll() is None:
            stream.kill()
            stream.wait()
    assert stream.returncode == 0, errors.read_text()
    events = [json.loads(line) for line in out.decode().splitlines()]
    finals = [e["text"] for e in events if e["type"] == "final" and e["text"]]
    assert finals == [offline], errors.read_text()
    assert any(e["type"] == "partial" for e in events)
    assert "listening on default (16000 Hz)" in errors.read_text() and "1 utterances" in errors.read_text()
