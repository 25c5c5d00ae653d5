"""The caption page of `speech-s2s serve` in a real browser: headless Chromium's fake microphone plays
held-out speech (four utterances of tests/data/heldout joined with 1 s pauses, 15 s) into the page,
which sends it through its AudioWorklet and WebSocket to the server, and shows what comes back.

Nothing is mocked: the server is `python -m speech_s2s.cli serve` as users start it, the page is the
one it serves. The harness (audio, server, browser) is tools/bench_serve_browser.py. Needs `chromium`,
`chromium-driver` and selenium (CI installs them); skipped without them, except under CI=true.
"""

import contextlib
import math
import os
import socket
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

from speech_s2s.evaluation.scoring import normalize_for_scoring
from tools.bench_serve_browser import (
    RECORD_SENDS,
    SAMPLE_RATE,
    Server,
    caption_run,
    chromium,
    final_latencies,
    heldout_clips,
    join_utterances,
    missing_browser,
    offline_text,
    offset_in_file,
    state_of,
    wait_for,
    wer,
    write_wav,
)

UTTERANCES = ["ho01", "ho02", "ho03", "ho04"]
DECODING = ("--beam", "1")  # greedy finals: faster on a small machine; the offline reference decodes the same way
TOKEN = "s3cret/+&= x"  # to be URL-encoded in the page's address and again in the WebSocket's
# Final text on the page against the offline decoding of the same WAV: they differ only through the
# audio (Chromium's resampling to its audio rate, then the worklet's to 16 kHz, and where in the file
# capture starts, +-20 ms), which moves a greedy decoding by a word now and then. Measured on
# 2026-12-07 (beam 1, 33 words) over 12 runs: 0 to 12.1 % (4 words); the bound allows 6.
PAGE_VS_OFFLINE_WER_BOUND = 0.19
# The issue's goal for the finals' WER against the references: at most 1.1 x offline + 2 points.
GOAL_FACTOR, GOAL_POINTS = 1.1, 0.02
# Measured as above: the page 21.2 to 27.3 %, offline 27.3 % (goal: 32.0 %). One word (of 33) of slack:
# the goal is about the mean over many recordings, this is one of 15 s.
GOAL_SLACK = 0.031

reason = missing_browser()
if reason and os.environ.get("CI") == "true":
    pytest.fail(f"CI must test the caption page; {reason}", pytrace=False)
pytestmark = pytest.mark.skipif(reason is not None, reason=reason or "")


def _with_token(url: str, token: str | None = TOKEN, **query: str) -> str:
    parameters = ({"token": token} if token is not None else {}) | query
    return f"{url}?{urllib.parse.urlencode(parameters)}" if parameters else url


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    audio, utterances = join_utterances(heldout_clips(UTTERANCES))
    return write_wav(tmp_path_factory.mktemp("speech") / "speech.wav", audio), audio, utterances


@pytest.fixture(scope="module")
def server():
    with Server(*DECODING, "--token", TOKEN, "--max-sessions", "1") as running:
        yield running
    assert running.returncode == 0, running.stderr()  # SIGTERM: a clean exit


@pytest.fixture(scope="module")
def plain_browser():
    """A browser whose fake microphone beeps: for what needs no speech."""
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def speech_browser(speech):
    with chromium(speech[0]) as driver:
        yield driver


@pytest.fixture(scope="module")
def captioned(server, speech, speech_browser, plain_browser, tmp_path_factory):
    """The page captions the WAV; meanwhile a second page tries to join the full server (--max-sessions 1),
    and the offline decodings run."""
    wav, audio, _ = speech
    seen = {}

    def meanwhile(driver) -> None:
        if "bystander" not in seen and state_of(driver)[0] == "listening":
            plain_browser.get(_with_token(server.url))
            plain_browser.execute_script(RECORD_SENDS, False)
            plain_browser.find_element("id", "start").click()
            seen["bystander"] = []
        elif "bystander" in seen and "bystander_done" not in seen:
            seen["bystander"].append(state_of(plain_browser))
            if "full" in seen["bystander"][-1][1]:
                plain_browser.find_element("id", "stop").click()  # or it would try again every few seconds
                seen["bystander_done"] = plain_browser.execute_script("return window.sent.frames")
        guess = driver.execute_script("const g = document.getElementById('partial-guess'); return [g.textContent, getComputedStyle(g).color]")
        if guess[0] and "grey" not in seen:
            seen["grey"] = guess[1]

    offline = {}
    worker = threading.Thread(target=lambda: offline.update(wav=offline_text(wav, *DECODING)))
    worker.start()  # while the page runs: it is not timed here
    run = caption_run(speech_browser, _with_token(server.url), len(audio) / SAMPLE_RATE, keep_pcm=True, while_running=meanwhile)
    worker.join()
    sent = write_wav(tmp_path_factory.mktemp("sent") / "sent.wav", run.pcm)
    offline["sent"] = offline_text(sent, *DECODING)
    return run, offline, seen


def test_finals_match_the_offline_decoding_of_the_recording(captioned, speech):
    run, offline, _ = captioned
    references = " ".join(u.reference for u in speech[2])
    finals = [e["text"] for e in run.log if e["type"] == "final"]
    page = " ".join(finals)
    assert run.state == "stopped" and run.status == "stopped", run.status
    # One child of #finals per final with text, in order, its text the final's; none for an empty final.
    assert run.finals == [text for text in finals if text] and all(run.finals)
    assert wer(offline["wav"], page) <= PAGE_VS_OFFLINE_WER_BOUND, (page, offline["wav"])
    goal = GOAL_FACTOR * wer(references, offline["wav"]) + GOAL_POINTS
    assert wer(references, page) <= goal + GOAL_SLACK, (page, offline["wav"])
    # What the server received is exactly what the page sent: its offline decoding is the page's text.
    assert normalize_for_scoring(page) == normalize_for_scoring(offline["sent"])


def test_partials_come_first_in_grey_then_the_final_replaces_them(captioned, speech_browser):
    run, _, seen = captioned
    types = [e["type"] for e in run.log]
    assert types.count("partial") >= len(UTTERANCES) and types[0] == "partial"
    red, green, blue = (int(v) for v in seen["grey"].removeprefix("rgb(").rstrip(")").split(","))
    assert red == green == blue and 100 < red < 200, seen["grey"]  # grey, against black settled text
    assert speech_browser.find_element("id", "partial").text == ""  # no utterance left open


MARGIN = 256  # samples each side of a window that a circular fractional delay may spoil


def _delayed(x: np.ndarray, delay: float) -> np.ndarray:
    """x delayed by `delay` samples (a fraction), band-limited through the FFT; circular, so the caller
    keeps the middle."""
    spectrum = np.fft.rfft(x)
    return np.fft.irfft(spectrum * np.exp(-2j * np.pi * np.arange(len(spectrum)) * delay / len(x)), len(x))


def test_the_page_sends_16khz_pcm_in_50ms_frames_then_eof(captioned, speech):
    run, _, _ = captioned
    _, audio, _ = speech
    sizes = [f["bytes"] for f in run.frames if "bytes" in f]
    assert [f["text"] for f in run.frames if "text" in f] == ['{"eof":true}'] and "text" in run.frames[-1]
    assert all(size % 2 == 0 for size in sizes) and set(sizes[:-1]) == {2 * SAMPLE_RATE // 20} and 0 < sizes[-1] <= 1600
    assert abs(sum(sizes) / 2 / SAMPLE_RATE - run.stopped_at) < 0.06  # the page's audio clock is what it sent
    # The audio sent is the file at 16 kHz: aligned at the offset found, each quarter second of speech
    # matches it closely (the median: a glitch of a starved audio thread on a busy machine may not
    # count). Each is aligned again within 20 ms of that offset: on a busy machine the fake microphone
    # can drop or repeat a block, which moves every later sample (CI, 2026-12-07: every second at -18 to
    # -27 dB at the first offset; a loaded build machine, the same day: seconds re-aligned at -28 to
    # -37 dB, a dropped block inside a second counting against it; quarter seconds leave it to fewer).
    offset = round(offset_in_file(run.pcm, audio) * SAMPLE_RATE)
    shift, window = SAMPLE_RATE // 50, SAMPLE_RATE // 4
    residuals = []
    for start in range(max(0, offset) + shift, len(audio) - window, window):
        played = audio[start : start + window]
        around = run.pcm[start - offset - shift : start - offset + window + shift]
        if np.mean(played**2) > 1e-4 and len(around) == window + 2 * shift and start >= MARGIN:
            lag = int(np.argmax(np.correlate(around, played, "valid")))
            sent = around[lag : lag + window]
            # the page's resampler may start between two of the file's samples: the best fraction of a
            # sample too (a third of a sample off read -16 dB in CI, 2026-12-07)
            context = audio[start - MARGIN : start + window + MARGIN]
            residuals.append(min(10 * np.log10(np.mean((sent - _delayed(context, d)[MARGIN : MARGIN + window]) ** 2) / np.mean(played**2))
                                 for d in np.arange(-0.5, 0.51, 1 / 6)))
    assert abs(offset) < SAMPLE_RATE // 2 and len(residuals) >= 32 and np.median(residuals) < -30, (offset, residuals)


def test_final_times_and_latency(captioned, speech, speech_browser):
    run, _, _ = captioned
    _, audio, utterances = speech
    offset = offset_in_file(run.pcm, audio)
    finals = [e for e in run.log if e["type"] == "final" and e["text"]]
    for u in utterances:  # each utterance lies within a final, on the stream's clock
        assert any(f["start"] - 0.3 <= u.start - offset and u.end - offset <= f["end"] + 0.3 for f in finals), (u, finals)
    latencies, missed = final_latencies(run, utterances, offset)
    assert missed == 0 and all(0 < latency < 5 for latency in latencies), latencies  # loose: this machine is shared
    shown = speech_browser.execute_script("return [...document.getElementById('finals').children].map(e => getComputedStyle(e, '::before').content)")
    tenths = [math.floor(10 * f["start"] + 0.5) for f in finals]  # as JavaScript's Math.round
    assert shown == [f'"{t // 600}:{t // 10 % 60:02d}.{t % 10}"' for t in tenths], shown  # the transcript's times, m:ss.s


def test_a_second_page_hears_the_server_is_full(captioned):
    _, _, seen = captioned
    states = seen["bystander"]
    assert "bystander_done" in seen, states
    assert ("reconnecting" in states[-1][0] and "the server is full" in states[-1][1] and "trying again" in states[-1][1]), states
    assert not any("bytes" in f for f in seen["bystander_done"])  # it never got to send audio


def test_downloads_build_txt_srt_and_vtt_from_the_finals(captioned, speech_browser, tmp_path):
    run, _, _ = captioned
    finals = [e for e in run.log if e["type"] == "final" and e["text"]]
    speech_browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    for name in ("txt", "srt", "vtt"):
        speech_browser.find_element("id", f"download-{name}").click()
    def finished(_) -> list[Path] | None:
        files = sorted(tmp_path.iterdir())
        return files if len(files) == 3 and not any(p.name.endswith(".crdownload") for p in files) else None

    files = wait_for(speech_browser, finished, 20, "three downloads")
    contents = {p.suffix[1:]: p.read_text(encoding="utf-8") for p in files}
    assert contents["txt"] == "".join(f"{f['text']}\n" for f in finals)
    assert contents["srt"].count(" --> ") == len(finals) and contents["srt"].startswith("1\n00:00:0")
    assert contents["vtt"].startswith("WEBVTT\n\n") and contents["vtt"].count(" --> ") == len(finals)
    cues = contents["vtt"].split("\n\n")[1:-1]
    assert [" ".join(cue.split("\n")[1:]) for cue in cues] == [f["text"] for f in finals]  # lines wrapped, words kept


def test_the_caption_formats_for_edge_cases(server, plain_browser):
    plain_browser.get(_with_token(server.url))
    finals = [{"text": "Fish & chips <b>now</b>.", "start": 0.0, "end": 1.2345},
              {"text": "Twenty past seven at the station, then the bus to the market and home.", "start": 3599.9996, "end": 3725.5}]
    built = plain_browser.execute_script("const f = arguments[0]; return [captions.buildTxt(f), captions.buildSrt(f), captions.buildVtt(f)]", finals)
    assert built[0] == "Fish & chips <b>now</b>.\nTwenty past seven at the station, then the bus to the market and home.\n"
    assert built[1] == ("1\n00:00:00,000 --> 00:00:01,235\nFish & chips <b>now</b>.\n\n"
                        "2\n01:00:00,000 --> 01:02:05,500\nTwenty past seven at the station, then the\nbus to the market and home.\n\n")
    assert built[2] == ("WEBVTT\n\n00:00:00.000 --> 00:00:01.235\nFish &amp; chips &lt;b&gt;now&lt;/b&gt;.\n\n"
                        "01:00:00.000 --> 01:02:05.500\nTwenty past seven at the station, then the\nbus to the market and home.\n\n")


@pytest.mark.parametrize("token, says", [("wrong", "wrong token"), (None, "missing token")])
def test_a_wrong_or_missing_token_is_refused_in_words_and_no_audio_is_sent(server, plain_browser, token, says):
    plain_browser.get(_with_token(server.url, token))
    plain_browser.execute_script(RECORD_SENDS, False)
    plain_browser.find_element("id", "start").click()
    wait_for(plain_browser, lambda d: state_of(d)[0] == "error", 20, "the refusal")
    time.sleep(1.5)  # long enough for a reconnection attempt or a chunk of audio, were there any
    state, status = state_of(plain_browser)
    assert state == "error" and says in status and "unauthorized" in status, status
    assert plain_browser.execute_script("return window.sent.frames") == []
    assert plain_browser.find_element("id", "start").is_enabled()


def test_a_refused_microphone_is_said_in_words(server):
    with chromium(allow_microphone=False) as driver:
        driver.get(_with_token(server.url))
        driver.execute_script(RECORD_SENDS, False)
        driver.find_element("id", "start").click()
        wait_for(driver, lambda d: state_of(d)[0] == "error", 20, "the refusal")
        assert state_of(driver)[1].startswith("no microphone permission")
        assert not any("bytes" in f for f in driver.execute_script("return window.sent.frames"))
        assert driver.find_element("id", "start").is_enabled() and not driver.find_element("id", "stop").is_enabled()


def test_the_overlay_view_shows_the_last_two_lines(server, speech):
    wav, _, _ = speech
    with chromium(wav, size=(900, 500)) as driver:
        driver.get(_with_token(server.url, view="overlay"))  # starts by itself: an OBS source cannot click
        wait_for(driver, lambda d: d.execute_script("return document.getElementById('finals').children.length") >= 3, 60, "three finals")
        layout = driver.execute_script("""
            const box = document.getElementById('transcript').getBoundingClientRect();
            const style = getComputedStyle(document.getElementById('transcript'));
            const range = document.createRange();
            range.selectNodeContents(document.getElementById('captions'));
            // The line boxes of text inside the box (the rest is clipped above it), by their tops.
            const inside = [...range.getClientRects()].filter((r) => r.height > 0 && r.top >= box.top - 1 && r.bottom <= box.bottom + 1);
            const finals = [...document.getElementById('finals').children].map((e) => {
              const rects = e.getClientRects();
              return [rects[0].top, rects[rects.length - 1].bottom];
            });
            return {
              box: [box.top, box.bottom], fontSize: parseFloat(style.fontSize), lines: new Set(inside.map((r) => Math.round(r.top))).size,
              finals, controls: getComputedStyle(document.querySelector('.controls')).display,
              background: [document.body, document.documentElement].map((e) => getComputedStyle(e).backgroundColor),
            };
        """)
    top, bottom = layout["box"]
    assert layout["background"] == ["rgba(0, 0, 0, 0)"] * 2 and layout["controls"] == "none" and layout["fontSize"] >= 40
    assert layout["lines"] == 2, layout  # no more than two lines of caption are visible...
    assert layout["finals"][-1][1] <= bottom + 1  # ...the newest text at the bottom...
    assert layout["finals"][0][1] <= top + 1, layout  # ...and the first final long gone above the box


class CuttableProxy:
    """A TCP proxy to a server whose connections can all be cut at once: the browser then sees its
    WebSocket end without a close frame (1006), as when a network goes, while the server stays up."""

    def __init__(self, url: str):
        address = urllib.parse.urlsplit(url)
        self.target = (address.hostname, address.port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.open: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(self.target)
            self.open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        for connection in self.open:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        self.open = []

    def close(self) -> None:
        self.cut()
        self.listener.close()


def test_a_lost_connection_reconnects(server, plain_browser):
    proxy = CuttableProxy(server.url)
    try:
        plain_browser.get(_with_token(proxy.url))
        plain_browser.find_element("id", "start").click()
        wait_for(plain_browser, lambda d: state_of(d)[0] == "listening", 30, "listening")
        proxy.cut()
        status = wait_for(plain_browser, lambda d: state_of(d)[0] == "reconnecting" and state_of(d)[1], 10, "the lost connection")
        assert status.startswith("connection lost, trying again in 1 s"), status
        wait_for(plain_browser, lambda d: state_of(d)[0] == "listening", 30, "the reconnection")
        before = plain_browser.execute_script("return window.captions.audioSeconds")
        time.sleep(0.5)
        assert plain_browser.execute_script("return window.captions.audioSeconds") > before > 1.0  # the microphone ran on throughout
        plain_browser.find_element("id", "stop").click()
        wait_for(plain_browser, lambda d: state_of(d)[0] == "stopped", 30, "the stream to end")
    finally:
        proxy.close()


def test_the_worklet_filters_before_it_downsamples(server, plain_browser):
    plain_browser.get(server.url)
    gains = plain_browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const script = document.createElement('script');
        script.src = 'pcm-worklet.js';  // as a plain script it only defines the downsampler
        script.onload = () => {
          const result = {};
          for (const rate of [44100, 48000]) {
            for (const hz of [1000, 7000, 8500, 12000]) {
              const input = Float32Array.from({length: rate}, (_, i) => 0.5 * Math.sin(2 * Math.PI * hz * i / rate));
              const out = [];
              const resampler = new PcmDownsampler(rate, 16000);
              for (let i = 0; i < input.length; i += 128) resampler.push(input.subarray(i, i + 128), (v) => out.push(v));
              const middle = out.slice(2000, 14000);  // away from the start
              const rms = Math.sqrt(middle.reduce((s, v) => s + v * v, 0) / middle.length);
              result[`${rate}:${hz}`] = [20 * Math.log10(rms / (0.5 / Math.SQRT2)), out.length];
            }
          }
          result.clip = [pcmToInt16(1.5), pcmToInt16(-1.5), pcmToInt16(0.5)];
          done(result);
        };
        document.head.appendChild(script);
    """)
    clip = gains.pop("clip")
    assert clip == [32767, -32768, 16384]
    for key, (gain_db, count) in gains.items():
        hz = int(key.split(":")[1])
        assert abs(count - SAMPLE_RATE) <= 200, (key, count)  # one second in, one second out, less the filter's look-ahead
        if hz <= 7000:
            assert abs(gain_db) < 0.1, (key, gain_db)  # speech passes untouched
        else:
            assert gain_db < -60, (key, gain_db)  # above 8 kHz: removed, not folded back


def test_the_page_files_are_served_as_their_types(server):
    import urllib.request

    for name, kind in (("", "text/html"), ("captions.js", "javascript"), ("pcm-worklet.js", "javascript"), ("captions.css", "text/css")):
        with urllib.request.urlopen(server.url + name, timeout=10) as response:
            assert kind in response.headers["Content-Type"], (name, response.headers["Content-Type"])
    static = Path(__file__).parent.parent / "speech_s2s" / "serve" / "static"
    assert all(f'id="{i}"' in (static / "index.html").read_text() for i in ("start", "stop", "partial", "finals", "status"))
    for path in static.iterdir():  # nothing fetched from elsewhere: no absolute URL in any of the page's files
        assert "http://" not in path.read_text() and "https://" not in path.read_text(), path


def test_the_server_shutting_down_is_said_in_words(server, plain_browser):
    """Last in this file: it stops the module's server (SIGTERM), as its fixture would."""
    plain_browser.get(_with_token(server.url))
    plain_browser.find_element("id", "start").click()
    wait_for(plain_browser, lambda d: state_of(d)[0] == "listening", 30, "listening")
    server.__exit__(None, None, None)
    wait_for(plain_browser, lambda d: state_of(d)[0] == "error", 30, "the page to hear of it")
    assert state_of(plain_browser)[1] == "the server is shutting down"
    assert server.returncode == 0, server.stderr()
