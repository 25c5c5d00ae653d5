"""speech-s2s serve over the network: the protocols end to end, every misbehaving client beside a
well-behaved one, the token, origin and max-sessions rules, the page's files, and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("websockets")
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402

from speech_s2s.serve.protocol import (  # noqa: E402
    ClientError,
    VoskReplies,
    is_eof,
    parse_rate,
    pcm_samples,
    vosk_control,
)
from speech_s2s.streaming import Event  # noqa: E402

HELDOUT = Path(__file__).parent / "data" / "heldout"
ROOT = Path(__file__).parent.parent
ENV = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}


# ---------------------------------------------------------------------------- the protocol, apart from the network
def test_pcm_frames_must_hold_whole_samples():
    assert pcm_samples(np.array([0, 16384, -32768], dtype="<i2").tobytes()).tolist() == [0.0, 0.5, -1.0]
    with pytest.raises(ClientError) as error:
        pcm_samples(b"\x00\x01\x02")
    assert error.value.code == 1007 and "3 bytes" in error.value.reason


def test_rates_and_control_messages():
    assert parse_rate("8000") == 8000 and parse_rate(44100.0) == 44100
    for bad in ("fast", "12.5", "10", "10000000"):
        with pytest.raises(ClientError) as error:
            parse_rate(bad)
        assert error.value.code == 1008 and repr(bad) in error.value.reason
    assert is_eof('{"eof": true}') and is_eof('{"eof" : 1}')
    for text, code in (("hello", 1007), ('{"eof": tru', 1007), ("[1, 2]", 1003), ('{"config": {}}', 1003), ('{"eof": false}', 1003)):
        with pytest.raises(ClientError) as error:
            is_eof(text)
        assert error.value.code == code, text
    assert vosk_control('{"eof" : 1}').eof
    assert vosk_control('{"config": {"sample_rate": 8000, "words": 1}}').sample_rate == 8000
    with pytest.raises(ClientError):
        vosk_control('{"reset": 1}')


def test_vosk_answers_one_object_per_message():
    replies = VoskReplies()
    partial = Event("partial", "the bus", 0.0, 1.0, 10.0)
    final = Event("final", "The bus leaves.", 0.0, 2.0, 10.0)
    assert replies.answer([]) == {"partial": ""}
    assert replies.answer([partial]) == {"partial": "the bus"}
    assert replies.answer([]) == {"partial": "the bus"}  # nothing new: the same partial again
    assert replies.answer([final, Event("partial", "at", 2.5, 3.0, 10.0)]) == {"text": "The bus leaves."}
    assert replies.answer([]) == {"partial": "at"}
    assert replies.answer([Event("final", "", 2.5, 3.1, 1.0)]) == {"partial": ""}  # not speech after all
    assert replies.answer([], eof=True) == {"text": ""}


# ---------------------------------------------------------------------------- a server in this process
@pytest.fixture(scope="module")
def recognizer():
    """What the server's decoding processes build: the bundled model, greedy (as `--beam 1`)."""
    from speech_s2s.builder import RecognizerConfig
    from speech_s2s.decoding.options import GREEDY

    return RecognizerConfig(decoding=GREEDY)


@pytest.fixture(scope="module")
def speech(tmp_path_factory) -> Path:
    """Three held-out sentences with a second of silence after each (11 s)."""
    pieces = []
    for name in ("ho01", "ho02", "ho03"):
        audio, rate = sf.read(HELDOUT / f"{name}.flac", dtype="float32")
        assert rate == 16000
        pieces += [audio, np.zeros(rate, dtype=np.float32)]
    path = tmp_path_factory.mktemp("serve") / "three.wav"
    sf.write(path, np.concatenate(pieces), 16000, subtype="PCM_16")
    return path


@contextlib.contextmanager
def running(recognizer, **options):
    """A CaptionServer on a free port in a thread; yields (server, http URL)."""
    from speech_s2s.serve.server import CaptionServer, ServeConfig
    from speech_s2s.streaming import StreamOptions

    options.setdefault("stream", StreamOptions())
    server = CaptionServer(recognizer, ServeConfig(port=0, **options))
    urls: queue.Queue = queue.Queue()
    thread = threading.Thread(target=lambda: asyncio.run(server.run(urls.put)), daemon=True)
    thread.start()
    url = urls.get(timeout=60)
    try:
        yield server, url
    finally:
        server.stop()
        thread.join(30)
        assert not thread.is_alive()


@pytest.fixture(scope="module")
def default_server(recognizer):
    """One server with the default rules (2 decoding processes), shared by the tests that need no other."""
    with running(recognizer) as (server, url):
        yield server, url


def _all_closed(server) -> bool:
    """Every session's slot given back (the server finishes a close after its client has seen it)."""
    deadline = time.monotonic() + 30
    while server.sessions and time.monotonic() < deadline:
        time.sleep(0.05)
    return server.sessions == 0


def _ws(url: str, path: str = "ws", query: str = "") -> str:
    return url.replace("http", "ws", 1) + path + query


def _pcm(path: Path) -> tuple[bytes, int]:
    audio, rate = sf.read(path, dtype="int16")
    return audio.tobytes(), rate


async def stream_client(url: str, pcm: bytes, rate: int = 16000, realtime: bool = True, chunk_seconds: float = 0.1,
                        query: str = "", **connect_options) -> tuple[list[dict], int, str]:
    """Sends the PCM (in real time or as fast as the server takes it) and {"eof": true}; returns the
    events, the close code and the reason."""
    events = []
    step = 2 * round(rate * chunk_seconds)
    async with connect(_ws(url, "ws", f"?rate={rate}{query}"), **connect_options) as ws:
        async def read() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for message in ws:
                    events.append(json.loads(message))

        reader = asyncio.create_task(read())
        started = time.monotonic()
        for i in range(0, len(pcm), step):
            await ws.send(pcm[i : i + step])
            if realtime:
                await asyncio.sleep(max(0.0, started + (i + step) / 2 / rate - time.monotonic()))
        await ws.send(json.dumps({"eof": True}))
        await reader
    return events, ws.close_code, ws.close_reason


def finals(events: list[dict]) -> list[tuple]:
    return [(e["text"], e["start"], e["end"]) for e in events if e["type"] == "final" and e["text"]]


@pytest.fixture(scope="module")
def stream_finals(speech) -> list[tuple]:
    """What `speech-s2s stream` makes of the same audio, with the same decoding (greedy)."""
    out = subprocess.run([sys.executable, "-m", "speech_s2s.cli", "stream", "--file", str(speech), "--fast", "--beam", "1",
                          "--output-format", "jsonl"], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    result = finals([json.loads(line) for line in out.stdout.splitlines()])
    assert len(result) == 3
    return result


def test_finals_over_the_websocket_equal_streams_in_real_time(default_server, speech, stream_finals):
    pcm, rate = _pcm(speech)
    _, url = default_server
    events, code, reason = asyncio.run(stream_client(url, pcm, rate))
    assert (code, reason) == (1000, "end of audio")
    assert finals(events) == stream_finals
    assert {e["type"] for e in events} == {"partial", "final"}
    assert set(events[0]) == {"type", "text", "start", "end", "latency_ms", "committed"}  # stream --output-format jsonl's schema


def test_another_rate_is_resampled_as_stream_resamples_it(default_server, speech):
    import torch
    import torchaudio.functional

    audio, _ = sf.read(speech, dtype="float32")
    audio8k = torchaudio.functional.resample(torch.from_numpy(audio), 16000, 8000).numpy()
    pcm = (np.clip(audio8k, -1, 32767 / 32768) * 32768).astype("<i2").tobytes()
    out = subprocess.run([sys.executable, "-m", "speech_s2s.cli", "stream", "-", "--rate", "8000", "--beam", "1", "--output-format", "jsonl"],
                         input=pcm, capture_output=True, env=ENV, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr
    expected = finals([json.loads(line) for line in out.stdout.decode().splitlines()])
    _, url = default_server
    events, code, _ = asyncio.run(stream_client(url, pcm, 8000, realtime=False, chunk_seconds=0.25))
    assert code == 1000 and len(expected) == 3
    assert finals(events) == expected


async def vosk_client(url: str, pcm: bytes, rate: int, chunk_seconds: float = 0.2) -> tuple[list[dict], int]:
    """As vosk-server's own test client: config, then a chunk and one answer at a time, then eof."""
    answers = []
    step = 2 * round(rate * chunk_seconds)
    async with connect(_ws(url, "vosk")) as ws:
        await ws.send(json.dumps({"config": {"sample_rate": rate}}))
        for i in range(0, len(pcm), step):
            await ws.send(pcm[i : i + step])
            answers.append(json.loads(await ws.recv()))
        await ws.send('{"eof" : 1}')
        answers.append(json.loads(await ws.recv()))
        with contextlib.suppress(ConnectionClosed):
            await ws.recv()
    return answers, ws.close_code


def test_vosk_protocol_gives_the_same_words(default_server, speech, stream_finals):
    pcm, rate = _pcm(speech)
    _, url = default_server
    answers, code = asyncio.run(vosk_client(url, pcm, rate))
    assert code == 1000
    assert len(answers) == -(-len(pcm) // (2 * round(rate * 0.2))) + 1  # one answer per message
    assert all(set(answer) in ({"partial"}, {"text"}) for answer in answers)
    texts = [answer["text"] for answer in answers if answer.get("text")]
    assert texts == [text for text, _, _ in stream_finals]
    assert any(answer.get("partial") for answer in answers)


# ---------------------------------------------------------------------------- misbehaving clients
async def _bad_clients(url: str, pcm: bytes) -> dict[str, int]:
    """Each misbehaviour on its own connection, all at once; the local port of each."""
    ports = {}

    async def misbehave(name: str, act) -> None:
        async with connect(_ws(url), max_size=None, max_queue=1) as ws:
            ports[name] = ws.local_address[1]
            with contextlib.suppress(ConnectionClosed):
                await act(ws)
                async for _ in ws:
                    pass

    async def vanish(ws) -> None:  # mid-utterance, without a close frame
        await ws.send(pcm[: 2 * 16000])
        await asyncio.sleep(0.5)
        ws.transport.abort()

    async def never_read(ws) -> None:  # streams on in real time but never reads its captions (nor, so, the server's pings)
        for i in range(0, len(pcm), 3200):
            await ws.send(pcm[i : i + 3200])
            await asyncio.sleep(0.1)

    async def fast(ws) -> None:  # faster than real time: everything at once
        for i in range(0, len(pcm), 32000):
            await ws.send(pcm[i : i + 32000])
        await ws.send(json.dumps({"eof": True}))

    cases = {
        "malformed JSON": lambda ws: ws.send('{"eof": tru'),
        "unknown message": lambda ws: ws.send('{"reset": 1}'),
        "text where audio is expected": lambda ws: ws.send("hello"),
        "frame over the limit": lambda ws: ws.send(bytes(2 * 1024 * 1024)),
        "odd number of bytes": lambda ws: ws.send(pcm[:4001]),
        "idle": lambda ws: asyncio.sleep(0),
        "stops reading": never_read,
        "faster than real time": fast,
        "vanishes": vanish,
    }
    await asyncio.gather(*(misbehave(name, act) for name, act in cases.items()), return_exceptions=True)
    return ports


def test_misbehaving_clients_are_closed_and_the_others_unaffected(recognizer, speech, stream_finals, caplog):
    pcm, rate = _pcm(speech)
    with running(recognizer, max_sessions=12, idle_seconds=3.0, ping_seconds=1.0) as (server, url):

        async def together():
            return await asyncio.gather(stream_client(url, pcm, rate), _bad_clients(url, pcm))

        with caplog.at_level("INFO", logger="speech_s2s.serve"):
            (events, code, _), ports = asyncio.run(together())
            assert _all_closed(server)
            deadline = time.monotonic() + 30  # each connection's line comes just after its slot is given back
            while sum(" closed " in r.getMessage() for r in caplog.records) < 10 and time.monotonic() < deadline:
                time.sleep(0.05)
    assert code == 1000 and finals(events) == stream_finals

    closes = {}  # the server's one line per connection, by the client's port
    for record in caplog.records:
        message = record.getMessage()
        if " closed " in message:
            port = int(message.split()[0].rsplit(":", 1)[1])
            closes[port] = message.split(" closed ", 1)[1]
    said = {name: closes[port] for name, port in ports.items()}
    assert said["malformed JSON"].startswith("1007 (a text frame that is not JSON")
    assert said["unknown message"].startswith("1003 (unknown message {reset}: send audio as binary frames")
    assert said["text where audio is expected"].startswith("1007 (a text frame that is not JSON (Expecting value): audio goes in binary frames)")
    assert said["frame over the limit"].startswith("1009 (frame with 2097152 bytes exceeds limit of 1048576 bytes)")
    assert said["odd number of bytes"].startswith("1007 (binary frame of 4001 bytes: 16-bit PCM needs an even number)")
    assert said["idle"].startswith("1001 (idle for 3 s)")
    assert said["stops reading"].startswith("1011 (keepalive ping timeout)")
    assert said["faster than real time"].startswith("1000 (end of audio)")
    assert said["vanishes"].startswith("1006 (connection lost)")
    assert len(closes) == 10 and not any("Traceback" in r.getMessage() for r in caplog.records)


def test_fast_client_gets_the_same_finals(default_server, speech, stream_finals):
    pcm, rate = _pcm(speech)
    _, url = default_server
    events, code, _ = asyncio.run(stream_client(url, pcm, rate, realtime=False, chunk_seconds=2.0))
    assert code == 1000 and finals(events) == stream_finals


def test_a_killed_decoding_process_fails_its_client_only_and_is_replaced(recognizer, speech, stream_finals):
    pcm, rate = _pcm(speech)
    with running(recognizer, max_sessions=1) as (server, url):
        victim = server._workers[0].process

        async def killed_mid_utterance():
            async with connect(_ws(url)) as ws:
                await ws.send(pcm[: 2 * rate])
                await asyncio.sleep(0.5)
                os.kill(victim.pid, signal.SIGKILL)
                await ws.send(pcm[2 * rate : 4 * rate])
                with contextlib.suppress(ConnectionClosed):
                    async for _ in ws:
                        pass
            return ws.close_code, ws.close_reason

        assert asyncio.run(killed_mid_utterance()) == (1011, "internal error")
        deadline = time.monotonic() + 60
        while (not server._workers or server._workers[0].process is victim) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert server._workers and server._workers[0].process is not victim, "no new decoding process within 60 s"
        events, code, _ = asyncio.run(stream_client(url, pcm, rate, realtime=False, chunk_seconds=1.0))
        assert code == 1000 and finals(events) == stream_finals  # a new process took its place


def test_a_decoding_process_whose_pipe_closed_is_not_alive_before_the_system_says_so():
    """A killed process's pipe closes before the system reports it dead: the failed call itself must
    mark it gone, or the server would keep sending new sessions to it."""
    import multiprocessing
    import types

    from speech_s2s.serve.workers import DecodingProcess, WorkerError, busy_count

    connection, child = multiprocessing.Pipe()
    child.close()
    busy = busy_count()
    # no real process: one that still looks alive
    worker = DecodingProcess(connection, types.SimpleNamespace(is_alive=lambda: True, exitcode=None), busy)
    assert worker.alive
    with pytest.raises(WorkerError, match="^decoding process"):
        worker.call("push", 0, np.zeros(160, dtype=np.float32), 0.0)
    assert not worker.alive
    assert busy.value == 0  # the count came down with the failed call


# ---------------------------------------------------------------------------- who may connect
async def _close_of(uri: str, **connect_options) -> tuple[int, str, int]:
    """Connects, sends a little audio, returns the close code and reason and how many events came."""
    count = 0
    async with connect(uri, **connect_options) as ws:
        with contextlib.suppress(ConnectionClosed):
            await ws.send(bytes(3200))
            await ws.send(json.dumps({"eof": True}))
            async for _ in ws:
                count += 1
    return ws.close_code, ws.close_reason, count


def test_token_is_needed_before_any_audio(recognizer):
    with running(recognizer, token="s3cret", max_sessions=1) as (server, url):
        for query, headers in (("", None), ("?token=wrong", None), ("", {"Authorization": "Bearer nope"})):
            code, reason, _ = asyncio.run(_close_of(_ws(url, "ws", query), additional_headers=headers))
            assert (code, reason) == (1008, "unauthorized: missing or wrong token")
        code, reason, _ = asyncio.run(_close_of(_ws(url, "vosk")))
        assert code == 1008
        assert asyncio.run(_close_of(_ws(url, "ws", "?token=s3cret")))[:2] == (1000, "end of audio")
        assert asyncio.run(_close_of(_ws(url), additional_headers={"Authorization": "Bearer s3cret"}))[:2] == (1000, "end of audio")
        assert _all_closed(server)


def test_origin_same_or_allowed_or_none(recognizer):
    with running(recognizer, allow_origins=("https://captions.example",), max_sessions=1) as (_, url):
        own = url.rstrip("/")
        for origin in (None, own, "https://captions.example"):
            assert asyncio.run(_close_of(_ws(url), origin=origin))[0] == 1000, origin
        with pytest.raises(InvalidStatus) as refused:
            asyncio.run(_close_of(_ws(url), origin="https://elsewhere.example"))
        assert refused.value.response.status_code == 403


def test_one_more_than_max_sessions_is_refused_and_the_others_go_on(recognizer, speech, stream_finals):
    pcm, rate = _pcm(speech)
    with running(recognizer, max_sessions=1) as (server, url):

        async def both():
            first = asyncio.create_task(stream_client(url, pcm, rate))
            await asyncio.sleep(1.0)
            second = await _close_of(_ws(url))
            return await first, second

        (events, code, _), second = asyncio.run(both())
        assert second[:2] == (1013, "server full: all 1 sessions in use; try again later")
        assert code == 1000 and finals(events) == stream_finals
        assert _all_closed(server)
        assert asyncio.run(_close_of(_ws(url)))[0] == 1000  # its slot is free again


def test_only_the_shipped_files_are_served(default_server):
    from speech_s2s.serve.server import STATIC

    server, url = default_server
    def get(path: str) -> tuple[int, bytes, str]:
        try:
            with urllib.request.urlopen(url.rstrip("/") + path, timeout=10) as response:
                return response.status, response.read(), response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            return error.code, b"", ""

    status, body, content_type = get("/")
    assert status == 200 and body == (STATIC / "index.html").read_bytes() and content_type.startswith("text/html")
    for path in sorted(STATIC.iterdir()):
        assert get(f"/{path.name}")[:2] == (200, path.read_bytes())
    for path in ("/../pyproject.toml", "/%2e%2e/pyproject.toml", "/static/../../README.md", "/server.py", "/nothing.html"):
        assert get(path)[0] == 404, path
    assert json.loads(get("/health")[1]) == {"sessions": 0, "max_sessions": server.config.max_sessions}


# ---------------------------------------------------------------------------- the command
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_command_closes_every_connection_and_exits_0(speech, signum):
    process = subprocess.Popen([sys.executable, "-m", "speech_s2s.cli", "serve", "--port", "0", "--beam", "1"],
                               stderr=subprocess.PIPE, text=True, env=ENV, cwd=ROOT)
    try:
        line = process.stderr.readline()
        assert line.startswith("speech-s2s: captions at http://127.0.0.1:"), line
        url = line.split()[3]
        pcm, rate = _pcm(speech)

        async def interrupted():
            async with connect(_ws(url)) as ws:
                await ws.send(pcm[: 2 * rate])
                await asyncio.sleep(0.5)
                process.send_signal(signum)
                with contextlib.suppress(ConnectionClosed):
                    async for _ in ws:
                        pass
            return ws.close_code, ws.close_reason

        assert asyncio.run(interrupted()) == (1001, "server shutting down")
        assert process.wait(30) == 0
        rest = process.stderr.read()
        assert "Traceback" not in rest and rest.rstrip().endswith("speech-s2s: stopped")
    finally:
        process.kill()


def test_the_command_explains_bad_options_and_a_missing_extra():
    def serve(*args: str, code: str = "") -> subprocess.CompletedProcess:
        program = f"import sys; {code}from speech_s2s.cli.main import main; sys.exit(main(['serve', *sys.argv[1:]]))"
        return subprocess.run([sys.executable, "-c", program, *args], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=120)

    out = serve(code="sys.modules['websockets'] = None; ")
    assert (out.returncode, out.stderr) == (2, "speech-s2s serve: error: needs the websockets package: pip install 'speech-s2s[serve]'\n")
    out = serve("--port", "70000")
    assert (out.returncode, out.stderr) == (2, "speech-s2s serve: error: --port 70000: give 0 to 65535\n")
    out = serve("--keyfile", "k.pem")
    assert out.returncode == 2 and "--keyfile needs --certfile" in out.stderr
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    with taken:
        out = serve("--host", "0.0.0.0", "--port", str(port), "--beam", "1")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    warning, error = out.stderr.splitlines()
    assert warning == "speech-s2s serve: warning: listening on 0.0.0.0 without --token: anyone who can reach this port can use it"
    assert error.startswith(f"speech-s2s: error: cannot listen on 0.0.0.0:{port}: ")
