#!/usr/bin/env python3
"""Live captions in a real browser: `speech-s2s serve` and headless Chromium whose fake microphone plays a WAV.

The WAV is held-out speech (tests/data/heldout, and with --asterisk some real-voice prompts of the
dev-asterisk set) joined with pauses, each clip trimmed of its silence first, so the file time where
each utterance's speech ends is known. The page is opened, Start pressed, and when the whole file
has been captured, Stop; its `window.captionLog` (every event with the page's audio clock when it
arrived) then gives:

- final latency: end of speech -> final on the page, in audio-clock seconds (the capture's own
  clock, not wall time). The audio the page sent is recorded too, and its offset in the file is
  found by cross-correlation, so latencies are exact whatever the browser skipped before capture.
  The clock advances by the worklet's 50 ms chunks, so it trails the capture by 25 ms on average
  (and the figures are as much smaller);
- partial lag: the audio clock when a partial arrived minus the end of the audio it covers;
- final WER against the offline decoding of the same WAV (`speech-s2s transcribe` with the same
  decoding options), against the offline decoding of the audio the page sent (which the server's
  finals should equal: what differs from the WAV is the browser's resampling and where capture
  began), and against the references; for all, the held-out set and the real voice apart.

It also saves screenshots of the page mid-caption and of the overlay view (--screenshots).

    python tools/bench_serve_browser.py --asterisk data/devsets/dev-asterisk --screenshots docs   # default decoding
    python tools/bench_serve_browser.py --asterisk data/devsets/dev-asterisk -- --beam 1          # greedy finals

Options after `--` go to both `serve` and `transcribe`. On a shared machine, --pause-pids stops the
given processes (SIGSTOP) while the page runs and always continues them after.

The functions above `main` are the harness of tests/test_serve_browser.py as well.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile

ROOT = Path(__file__).resolve().parent.parent
HELDOUT = ROOT / "tests" / "data" / "heldout"
SAMPLE_RATE = 16000  # of the WAVs written here and of the PCM the page sends
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
URL_LINE = re.compile(r"http://[^ ]+/")  # what `speech-s2s serve` prints to stderr once it listens
TRIM_DB = -35.0  # a 10 ms frame is speech when its energy is within this of the clip's loudest frame
FRAME = SAMPLE_RATE // 100
LIGHT_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "PYTHONPATH": str(ROOT)}  # no busy-waiting threads on a shared machine


# ---------------------------------------------------------------------------------------------- audio

@dataclass(frozen=True)
class Utterance:
    id: str
    reference: str
    start: float  # speech bounds in the joined file, seconds
    end: float


def trim_silence(audio: np.ndarray) -> np.ndarray:
    """The clip from its first to its last 10 ms frame within TRIM_DB of its loudest frame."""
    frames = audio[: len(audio) // FRAME * FRAME].reshape(-1, FRAME)
    energy = 10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(energy >= energy.max() + TRIM_DB)
    return audio[loud[0] * FRAME : (loud[-1] + 1) * FRAME]


def join_utterances(clips: list[tuple[str, str, Path]], pause: float = 1.0, lead: float = 0.5, tail: float = 2.5) -> tuple[np.ndarray, list[Utterance]]:
    """(16 kHz audio, utterances) of (id, reference, file) clips trimmed and joined with `pause` s of
    silence, after `lead` s and before `tail` s of it (the last utterance ends at a pause too)."""
    pieces, utterances, position = [np.zeros(round(lead * SAMPLE_RATE), np.float32)], [], lead
    for number, (utt_id, reference, path) in enumerate(clips):
        audio, rate = soundfile.read(path, dtype="float32")
        if rate != SAMPLE_RATE or audio.ndim != 1:
            raise ValueError(f"{path}: expected 16 kHz mono, got {rate} Hz, shape {audio.shape}")
        speech = trim_silence(audio)
        utterances.append(Utterance(utt_id, reference, position, position + len(speech) / SAMPLE_RATE))
        gap = tail if number == len(clips) - 1 else pause
        pieces += [speech, np.zeros(round(gap * SAMPLE_RATE), np.float32)]
        position += (len(speech) + round(gap * SAMPLE_RATE)) / SAMPLE_RATE
    return np.concatenate(pieces), utterances


def heldout_clips(ids: list[str] | None = None) -> list[tuple[str, str, Path]]:
    """(id, reference, file) of tests/data/heldout, all or the given ids, in order."""
    references = dict(line.split(maxsplit=1) for line in (HELDOUT / "ref.txt").read_text().splitlines() if line.strip())
    return [(i, references[i], HELDOUT / f"{i}.flac") for i in (ids or sorted(references))]


def librispeech_clips(split: Path, limit: int, min_seconds: float = 2.5, max_seconds: float = 6.0) -> list[tuple[str, str, Path]]:
    """The first `limit` utterances (by id) of a LibriSpeech-layout split lasting min..max seconds."""
    clips = []
    for transcript in sorted(split.rglob("*.trans.txt")):
        for line in transcript.read_text().splitlines():
            utt_id, reference = line.split(maxsplit=1)
            path = transcript.parent / f"{utt_id}.flac"
            if min_seconds <= soundfile.info(path).duration <= max_seconds:
                clips.append((utt_id, reference.lower(), path))
    return sorted(clips)[:limit]


def write_wav(path: Path, audio: np.ndarray) -> Path:
    soundfile.write(path, audio, SAMPLE_RATE, subtype="PCM_16")  # 16-bit PCM: what Chromium's fake microphone reads
    return path


def offset_in_file(sent: np.ndarray, played: np.ndarray, seconds: float = 8.0, max_lag: float = 3.0) -> float:
    """Where in the played file the page's first sent sample lies, seconds (negative: before the file
    began), by cross-correlating the first `seconds` of both."""
    n = round(seconds * SAMPLE_RATE)
    a, b = sent[:n].astype(np.float64), played[:n].astype(np.float64)
    size = 1 << int(np.ceil(np.log2(len(a) + len(b))))
    correlation = np.fft.irfft(np.fft.rfft(b, size) * np.conj(np.fft.rfft(a, size)), size)  # c[k] = sum a[i] b[i + k]
    lags = np.concatenate([np.arange(0, size // 2), np.arange(-size // 2, 0)])
    allowed = np.abs(lags) <= max_lag * SAMPLE_RATE
    return float(lags[allowed][np.argmax(correlation[allowed])] / SAMPLE_RATE)


# ---------------------------------------------------------------------------------------------- server

class Server:
    """`python -m speech_s2s.cli serve --port PORT ARGS` from this checkout (port 0: a free one); `url`
    once it listens. Stopped with SIGTERM on leaving; `returncode` is then its exit status."""

    def __init__(self, *args: str, port: int = 0, timeout: float = 120.0):
        self.command = [sys.executable, "-m", "speech_s2s.cli", "serve", "--port", str(port), *args]
        self.timeout = timeout
        self.lines: list[str] = []
        self.url: str | None = None
        self.returncode: int | None = None

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(self.command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT,
                                        env={**os.environ, **LIGHT_ENV})
        found = threading.Event()

        def read() -> None:  # all of stderr, so that the pipe never fills
            for line in self.process.stderr:
                self.lines.append(line.rstrip("\n"))
                match = URL_LINE.search(line)
                if match and self.url is None:
                    self.url = match.group(0)
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(self.timeout) or self.url is None:
            self.__exit__(None, None, None)
            raise RuntimeError(f"speech-s2s serve gave no URL: {' | '.join(self.lines[-10:])}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.returncode = self.process.returncode

    def stderr(self) -> str:
        return "\n".join(self.lines)


def _transcribe(wav: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "speech_s2s.cli", "transcribe", str(wav), *args], capture_output=True,
                            text=True, cwd=ROOT, env={**os.environ, **LIGHT_ENV}, timeout=1200)
    if result.returncode != 0:
        raise RuntimeError(f"transcribe failed: {result.stderr}")
    return result.stdout


def offline_text(wav: Path, *args: str) -> str:
    """`speech-s2s transcribe WAV ARGS`: the text of the whole file (its id dropped)."""
    return " ".join(line.split(maxsplit=1)[1] if " " in line else "" for line in _transcribe(wav, *args).splitlines())


def offline_segments(wav: Path, *args: str) -> list[dict]:
    """The segments ({start, end, text}, file time) of `speech-s2s transcribe WAV ARGS --output-format jsonl`."""
    return json.loads(_transcribe(wav, *args, "--output-format", "jsonl"))["segments"]


# ---------------------------------------------------------------------------------------------- browser

def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    return f"needs {', '.join(missing)} (apt-get install chromium chromium-driver; pip install selenium)" if missing else None


@contextmanager
def chromium(wav: Path | None = None, size: tuple[int, int] = (1000, 700), allow_microphone: bool = True) -> Iterator:
    """Headless Chromium (selenium) whose microphone plays `wav` once, then silence (None: a beep);
    without `allow_microphone` the page's request for it is refused, as when a user says no."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={size[0]},{size[1]}",
                     "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required"]:
        options.add_argument(argument)
    if allow_microphone:
        options.add_argument("--use-fake-ui-for-media-stream")  # grants the permission without asking
    if wav is not None:
        options.add_argument(f"--use-file-for-fake-audio-capture={wav}%noloop")  # %noloop: once, not over and over
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


# Records what the page sends (before it goes): window.sent.frames = [{bytes} | {text}], and with
# keep, the binary frames themselves (for the offset of the audio in the played file).
RECORD_SENDS = """
window.sent = {frames: [], chunks: [], keep: arguments[0]};
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  if (typeof data === 'string') window.sent.frames.push({text: data});
  else {
    window.sent.frames.push({bytes: data.byteLength});
    if (window.sent.keep) window.sent.chunks.push(new Uint8Array(data.slice(0)));
  }
  return send.call(this, data);
};
"""

SENT_PCM = """
let binary = '';
for (const chunk of window.sent.chunks) for (let i = 0; i < chunk.length; i += 8192) binary += String.fromCharCode(...chunk.subarray(i, i + 8192));
return btoa(binary);
"""


@dataclass
class PageRun:
    log: list[dict]  # window.captionLog
    finals: list[str]  # the text of each child of #finals
    status: str
    state: str  # #status's data-state
    frames: list[dict]  # what the page sent: {bytes} or {text}
    stopped_at: float  # the audio clock when Stop was pressed
    pcm: np.ndarray | None = None  # the audio sent, with keep_pcm
    notes: list[str] = field(default_factory=list)


def state_of(driver) -> tuple[str, str]:
    return tuple(driver.execute_script("const s = document.getElementById('status'); return [s.dataset.state, s.textContent];"))


def wait_for(driver, condition: Callable, seconds: float, what: str) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition(driver)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; status: {state_of(driver)}")


def caption_run(driver, url: str, audio_seconds: float, *, keep_pcm: bool = False, click: bool = True,
                while_running: Callable | None = None) -> PageRun:
    """Opens `url`, presses Start (unless the view starts by itself), waits until `audio_seconds` of
    audio are captured (calling `while_running(driver)` every poll), presses Stop and waits for the
    server to close the stream."""
    driver.get(url)
    driver.execute_script(RECORD_SENDS, keep_pcm)
    if click:
        driver.find_element("id", "start").click()
    deadline = time.monotonic() + 3 * audio_seconds + 60  # a generous bound: the page's clock is the capture's
    while driver.execute_script("return window.captions.audioSeconds") < audio_seconds:
        state, status = state_of(driver)
        if state in ("error", "stopped") or time.monotonic() > deadline:
            raise AssertionError(f"the page stopped capturing: {state}: {status}")
        if while_running is not None:
            while_running(driver)
        time.sleep(0.25)
    stopped_at = driver.execute_script("document.getElementById('stop').click(); return window.captions.audioSeconds")
    wait_for(driver, lambda d: state_of(d)[0] == "stopped", 60, "the stream to end after Stop")
    state, status = state_of(driver)
    log = driver.execute_script("return window.captionLog")
    finals = driver.execute_script("return [...document.getElementById('finals').children].map(e => e.textContent)")
    frames = driver.execute_script("return window.sent.frames")
    pcm = np.frombuffer(base64.b64decode(driver.execute_script(SENT_PCM)), "<i2").astype(np.float32) / 32768 if keep_pcm else None
    return PageRun(log, finals, status, state, frames, stopped_at, pcm)


# ---------------------------------------------------------------------------------------------- figures

def wer(reference: str, hypothesis: str) -> float:
    from speech_s2s.evaluation.scoring import score

    return score({"all": reference}, {"all": hypothesis}).wer


def final_latencies(run: PageRun, utterances: list[Utterance], offset: float) -> tuple[list[float], int]:
    """Seconds from each utterance's end of speech to the last final covering it, on the audio clock
    (stream time = file time - offset), and how many utterances no final covered."""
    finals = [e for e in run.log if e["type"] == "final" and e["text"]]
    latencies, missed = [], 0
    for u in utterances:
        start, end = u.start - offset, u.end - offset
        covering = [e for e in finals if min(e["end"], end) - max(e["start"], start) > 0]
        if covering:
            latencies.append(covering[-1]["audioSeconds"] - end)
        else:
            missed += 1
    return latencies, missed


def by_utterance(segments: list[dict], utterances: list[Utterance], shift: float = 0.0) -> dict[str, str]:
    """utt-id -> the text of the segments ({start, end, text}; file time = their time + shift) that
    overlap its speech most."""
    texts: dict[str, list[str]] = {u.id: [] for u in utterances}
    for segment in segments:
        overlaps = [min(segment["end"] + shift, u.end) - max(segment["start"] + shift, u.start) for u in utterances]
        if max(overlaps) > 0:
            texts[utterances[int(np.argmax(overlaps))].id].append(segment["text"])
    return {utt_id: " ".join(parts) for utt_id, parts in texts.items()}


def partial_lags(run: PageRun) -> list[float]:
    return [e["audioSeconds"] - e["end"] for e in run.log if e["type"] == "partial"]


def percentiles(values: list[float]) -> str:
    if not values:
        return "none"
    return f"{1000 * np.percentile(values, 50):.0f} / {1000 * np.percentile(values, 90):.0f} ms (median / p90, n={len(values)})"


# ---------------------------------------------------------------------------------------------- main

@contextmanager
def paused(pids: list[int]) -> Iterator[None]:
    """The given processes stopped (SIGSTOP) for the measurement and always continued (SIGCONT) after."""
    stopped = []
    try:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
            except ProcessLookupError:
                pass
        yield
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


def screenshot_when_captioning(path: Path, min_finals: int) -> Callable:
    """A `while_running` hook: one screenshot once `min_finals` finals are shown and a partial is open."""
    taken = []

    def hook(driver) -> None:
        if not taken and driver.execute_script(
                "return document.getElementById('finals').children.length >= arguments[0] && "
                "document.getElementById('partial').textContent.trim().split(' ').length >= 3", min_finals):
            driver.save_screenshot(str(path))
            taken.append(path)
    return hook


def overlay_screenshot(url: str, wav: Path, seconds: float, path: Path) -> None:
    """The overlay view after `seconds` of `wav`, over a dark backdrop standing for the video beneath."""
    with chromium(wav, size=(1280, 360)) as driver:
        driver.get(url + ("&" if "?" in url else "?") + "view=overlay")
        driver.execute_cdp_cmd("Emulation.setDefaultBackgroundColorOverride", {"color": {"r": 38, "g": 44, "b": 52, "a": 1}})
        wait_for(driver, lambda d: d.execute_script("return window.captions.audioSeconds") >= seconds, 3 * seconds + 60, "the overlay's audio")
        wait_for(driver, lambda d: d.execute_script("return document.getElementById('partial').textContent.length > 10"), 30, "a partial")
        driver.save_screenshot(str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:]))
    parser.add_argument("--asterisk", type=Path, help="also real-voice prompts of this split (dev-asterisk), after the held-out set")
    parser.add_argument("--asterisk-count", type=int, default=14)
    parser.add_argument("--pause", type=float, default=1.0, help="seconds of silence between utterances (default 1)")
    parser.add_argument("--pause-pids", type=int, nargs="*", default=[], help="processes to SIGSTOP while measuring (always continued after)")
    parser.add_argument("--screenshots", type=Path, help="folder for serve-page.png and serve-overlay.png")
    parser.add_argument("--offline-shifts-ms", type=float, nargs="*", default=[],
                        help="also decode the WAV offline as if capture had begun this many ms into it (negative: before it), "
                        "to see how much the start alone moves WER")
    parser.add_argument("--json", type=Path, help="also write the figures and the page's event log here")
    parser.add_argument("decoding", nargs="*", help="after --: options for both `serve` and `transcribe` (e.g. --beam 1)")
    args = parser.parse_args()
    reason = missing_browser()
    if reason:
        sys.exit(f"bench_serve_browser: {reason}")

    clips = heldout_clips() + (librispeech_clips(args.asterisk, args.asterisk_count) if args.asterisk else [])
    folder = Path(tempfile.mkdtemp(prefix="s2s-bench-serve-"))
    try:
        audio, utterances = join_utterances(clips, pause=args.pause)
        wav = write_wav(folder / "speech.wav", audio)
        seconds = len(audio) / SAMPLE_RATE
        print(f"{len(utterances)} utterances, {seconds:.1f} s: {wav}", file=sys.stderr)
        offline = offline_segments(wav, *args.decoding)  # before the pause: not timed
        shifted = {}  # shift (s) -> offline segments of the WAV started that far in
        for milliseconds in args.offline_shifts_ms:
            samples = round(abs(milliseconds) * SAMPLE_RATE / 1000)
            moved = audio[samples:] if milliseconds >= 0 else np.concatenate([np.zeros(samples, np.float32), audio])
            shifted[milliseconds / 1000] = offline_segments(write_wav(folder / "shifted.wav", moved), *args.decoding)
        with Server(*args.decoding) as server:
            with paused(args.pause_pids), chromium(wav) as driver:
                load = os.getloadavg()[0]
                hook = screenshot_when_captioning(args.screenshots / "serve-page.png", 6) if args.screenshots else None
                run = caption_run(driver, server.url, seconds, keep_pcm=True, while_running=hook)
                load = max(load, os.getloadavg()[0])
            if args.screenshots:
                overlay_screenshot(server.url, wav, 12.0, args.screenshots / "serve-overlay.png")
        # The audio the page sent, decoded offline: what the server's finals should be, word for word.
        offline_sent = offline_segments(write_wav(folder / "sent.wav", run.pcm), *args.decoding)
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    offset = offset_in_file(run.pcm, audio)
    latencies, missed = final_latencies(run, utterances, offset)
    finals = [e for e in run.log if e["type"] == "final" and e["text"]]
    late = sum(1 for e in finals if e["audioSeconds"] >= run.stopped_at)
    page_texts, offline_texts = by_utterance(finals, utterances, offset), by_utterance(offline, utterances)
    sent_texts = by_utterance(offline_sent, utterances, offset)
    references = {u.id: u.reference for u in utterances}
    sets = {"all": [u.id for u in utterances], "heldout": [u.id for u in utterances if u.id.startswith("ho")]}
    sets["asterisk"] = [i for i in sets["all"] if i not in sets["heldout"]]

    def set_wer(truth: dict[str, str], hypotheses: dict[str, str], ids: list[str]) -> float:
        from speech_s2s.evaluation.scoring import score

        return round(100 * score({i: truth[i] for i in ids}, {i: hypotheses[i] for i in ids}).wer, 2)

    shifted_wers = {name: [set_wer(references, by_utterance(segments, utterances, shift), ids) for shift, segments in shifted.items()]
                    for name, ids in sets.items() if ids}
    lags = partial_lags(run)
    figures = {
        "decoding": " ".join(args.decoding) or "default",
        "audio_seconds": round(seconds, 2),
        "utterances": len(utterances),
        "finals": len(finals),
        "finals_after_stop": late,
        "utterances_without_final": missed,
        "capture_offset_ms": round(1000 * offset, 1),
        "load_average": round(load, 2),
        "final_latency_ms": {"median": round(1000 * float(np.median(latencies)), 1), "p90": round(1000 * float(np.percentile(latencies, 90)), 1)},
        "partial_lag_ms": {"median": round(1000 * float(np.median(lags)), 1), "p90": round(1000 * float(np.percentile(lags, 90)), 1)},
        "wer": {name: {"page_vs_offline": set_wer(offline_texts, page_texts, ids), "page_vs_offline_of_sent": set_wer(sent_texts, page_texts, ids),
                       "page_vs_reference": set_wer(references, page_texts, ids),
                       "offline_vs_reference": set_wer(references, offline_texts, ids), "utterances": len(ids),
                       **({"offline_shifted_vs_reference": shifted_wers[name]} if shifted else {})}
                for name, ids in sets.items() if ids},
        **({"offline_shifts_ms": args.offline_shifts_ms} if shifted else {}),
    }
    print(f"decoding: {figures['decoding']}; {len(utterances)} utterances, {seconds:.1f} s of audio; "
          f"capture started {1000 * offset:+.0f} ms into the file; load average {load:.1f} on {os.cpu_count()} CPUs")
    print(f"end of speech -> final on the page: {percentiles(latencies)}; {missed} utterances without a final, {late} finals after Stop")
    print(f"partial lag (audio clock at arrival - partial end): {percentiles(lags)}")
    for name, w in figures["wer"].items():
        print(f"final WER, {name} ({w['utterances']} utterances): page vs offline {w['page_vs_offline']:.2f} % "
              f"(vs offline of the audio sent: {w['page_vs_offline_of_sent']:.2f} %), page vs reference {w['page_vs_reference']:.2f} %, "
              f"offline vs reference {w['offline_vs_reference']:.2f} %")
        if shifted:
            values = w["offline_shifted_vs_reference"]
            print(f"  offline vs reference, capture begun {', '.join(f'{m:+g}' for m in args.offline_shifts_ms)} ms into the WAV: "
                  f"{', '.join(f'{v:.2f}' for v in values)} % (mean {np.mean(values):.2f} %)")
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "offline": offline_texts, "page": page_texts, "log": run.log}, indent=1))


if __name__ == "__main__":
    main()
