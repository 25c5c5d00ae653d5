"""`speech-s2s serve`: live captions over WebSocket, and the page that shows them.

One asyncio server (the `websockets` library) answers HTTP for the page's files and two WebSocket
endpoints, `/ws` (ours) and `/vosk` (vosk-server's protocol); `protocol.py` says what each takes.
Decoding runs in one process per usable core (`workers.py`), each with the model and its LMs
loaded once; a connection's session lives in the least busy one, called from a thread one request
at a time, so the event loop only moves bytes. Every queue is bounded, so no client can make the server hold more than a few
MB for it:

- audio a connection has sent but we have not decoded: `AUDIO_QUEUE` frames (each ≤ `max_frame_bytes`);
  when full, the connection is not read, so a client sending faster than real time is slowed by
  TCP to what the CPU decodes, and what queued is decoded in one go (one call for many frames);
- events waiting to be sent: `SEND_QUEUE`; a client that stops reading is dropped when it fills;
- frames waiting in the library's buffer: `max_queue`; one frame: `max_frame_bytes` (1009 past it).

A client that breaks the protocol, or goes, is closed with a code and reason
(`protocol.ClientError`) and one log line; a worker call of its session still running finishes
in its thread and is dropped. Nothing a client sends reaches another client's session.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import json
import logging
import mimetypes
import signal
import ssl
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from speech_s2s.builder import RecognizerConfig
from speech_s2s.frontend.audio import SAMPLE_RATE
from speech_s2s.machine import usable_cores
from speech_s2s.serve.protocol import (
    GOING_AWAY,
    INTERNAL,
    NORMAL,
    POLICY,
    TRY_LATER,
    ClientError,
    VoskReplies,
    is_eof,
    parse_rate,
    pcm_samples,
    vosk_control,
)
from speech_s2s.serve.workers import DecodingProcess, RemoteSession, WorkerError, busy_count
from speech_s2s.streaming import Event, StreamOptions

STATIC = Path(__file__).with_name("static")
AUDIO_QUEUE = 8  # received frames not yet decoded, per connection
SEND_QUEUE = 256  # events not yet sent, per connection: about a minute of partials
log = logging.getLogger("speech_s2s.serve")


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8765  # 0: any free port
    token: str | None = None  # when set, /ws and /vosk need ?token= or "Authorization: Bearer"
    max_sessions: int = field(default_factory=usable_cores)  # connections decoding at once; one more is refused
    allow_origins: tuple[str, ...] = ()  # pages from these origins may connect, besides the server's own; "*": any
    max_frame_bytes: int = 1 << 20  # one WebSocket message, at most
    idle_seconds: float = 60.0  # a connection that sends nothing for this long is closed
    ping_seconds: float = 20.0  # keep-alive pings; a client that answers none within this is gone
    stream: StreamOptions = StreamOptions()
    verbose: bool = False  # tracebacks of internal errors in the log
    ssl: ssl.SSLContext | None = None  # https and wss

    def __post_init__(self):
        if self.max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1, got {self.max_sessions}")
        if self.idle_seconds <= 0:
            raise ValueError(f"idle_seconds must be positive, got {self.idle_seconds}")


def _static_files() -> dict[str, Path]:
    """URL path -> file: the shipped files only, by exact name (nothing else on disk is reachable)."""
    files = {f"/{path.name}": path for path in STATIC.iterdir() if path.is_file()} if STATIC.is_dir() else {}
    if "/index.html" in files:
        files["/"] = files["/index.html"]
    return files


class _Finished(Exception):
    """The connection ended as it should; nothing more to send."""


class CaptionServer:
    """The decoding processes, the connections' sessions, and the rules on who may connect."""

    def __init__(self, recognizer: RecognizerConfig, config: ServeConfig = ServeConfig(), threads: int = 1):
        self.recognizer = recognizer
        self.config = config
        self.threads = threads  # torch's threads in each decoding process
        self.pool = ThreadPoolExecutor(config.max_sessions + 1, thread_name_prefix="decode")
        self.sessions = 0  # connections with a session
        self.files = _static_files()
        self.processes = min(config.max_sessions, usable_cores())
        self._workers: list[DecodingProcess] = []
        self._busy = busy_count()  # the processes decoding now: one lends itself a second core only while one is idle
        self._server: Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Future | None = None

    def _start_worker(self) -> DecodingProcess:
        worker = DecodingProcess.start(self.recognizer, self.config.stream, self.threads, self._busy)
        try:
            worker.wait_ready()
        except WorkerError:
            worker.stop()
            raise
        return worker

    async def _replace(self, worker: DecodingProcess) -> None:
        """A process that died is stopped and a new one started in its place."""
        if worker.replacing:
            return
        worker.replacing = True
        log.warning("a decoding process ended (exit code %s); starting another", worker.process.exitcode)
        self._workers.remove(worker)
        worker.stop()
        try:
            self._workers.append(await asyncio.get_running_loop().run_in_executor(self.pool, self._start_worker))
        except WorkerError as error:
            log.error("cannot start a decoding process: %s", error)

    # ------------------------------------------------------------------ HTTP
    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """Files for GET, refusals of a WebSocket handshake from a foreign page; None: go on with it."""
        path = urlsplit(request.path).path
        if path in ("/ws", "/vosk"):
            origin = request.headers.get("Origin")
            if origin is not None and not self._origin_allowed(origin, request.headers.get("Host", "")):
                log.info("%s %s refused: origin %s not allowed", _peer(connection), path, origin)
                return connection.respond(403, f"origin {origin} is not allowed here (speech-s2s serve --allow-origin)\n")
            return None
        if path == "/health":
            body = json.dumps({"sessions": self.sessions, "max_sessions": self.config.max_sessions}) + "\n"
            return _response(200, "OK", body.encode(), "application/json")
        file = self.files.get(path)
        if file is None:
            return connection.respond(404, "not found\n")
        content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        return _response(200, "OK", file.read_bytes(), content_type)

    def _origin_allowed(self, origin: str, host: str) -> bool:
        if "*" in self.config.allow_origins or origin in self.config.allow_origins:
            return True
        return urlsplit(origin).netloc.lower() == host.lower()  # the page this server sent

    def _authorized(self, request: Request) -> bool:
        if self.config.token is None:
            return True
        given = parse_qs(urlsplit(request.path).query).get("token", [""])[-1]
        header = request.headers.get("Authorization", "")
        if header.startswith("Bearer "):
            given = given or header[len("Bearer "):]
        return hmac.compare_digest(given.encode(), self.config.token.encode())

    # ------------------------------------------------------------------ WebSocket
    async def handle(self, connection: ServerConnection) -> None:
        request = connection.request
        path = urlsplit(request.path).path
        peer = f"{_peer(connection)} {path}"
        if path not in ("/ws", "/vosk"):
            await connection.close(POLICY, f"no WebSocket endpoint at {path}: use /ws or /vosk")
            return
        if not self._authorized(request):
            log.info("%s refused: no valid token", peer)
            await connection.close(POLICY, "unauthorized: missing or wrong token")
            return
        if self.sessions >= self.config.max_sessions or not self._workers:
            log.info("%s refused: server full (%d sessions)", peer, self.sessions)
            await connection.close(TRY_LATER, f"server full: all {self.config.max_sessions} sessions in use; try again later")
            return
        worker = min(self._workers, key=lambda candidate: candidate.sessions)
        worker.sessions += 1
        self.sessions += 1
        started = time.monotonic()
        session = None
        try:
            rate = parse_rate(parse_qs(urlsplit(request.path).query).get("rate", [SAMPLE_RATE])[-1])
            session = await self._decode(functools.partial(RemoteSession, worker, rate))
            log.info("%s open (%d Hz; %d of %d sessions)", peer, rate, self.sessions, self.config.max_sessions)
            if path == "/ws":
                await self._serve_events(connection, session)
            else:
                await self._serve_vosk(connection, session)
            await connection.close(NORMAL, "end of audio")
        except ClientError as error:
            await connection.close(error.code, error.reason)
        except ConnectionClosed:
            pass
        except Exception as error:  # a bug, an unusable input, a decoding process that died: this client only
            log.error("%s internal error: %s", peer, error, exc_info=self.config.verbose)
            await connection.close(INTERNAL, "internal error")
        finally:
            self.sessions -= 1
            worker.sessions -= 1
            if session is not None and worker.alive:
                self.pool.submit(session.close)
            if not worker.alive:
                asyncio.ensure_future(self._replace(worker))
        audio = session.seconds if session is not None else 0.0
        log.info("%s closed %s after %.1f s, %.1f s of audio", peer, _how_closed(connection), time.monotonic() - started, audio)

    async def _receive(self, connection: ServerConnection) -> str | bytes:
        try:
            return await asyncio.wait_for(connection.recv(), self.config.idle_seconds)
        except TimeoutError:
            raise ClientError(GOING_AWAY, f"idle for {self.config.idle_seconds:g} s") from None

    async def _decode(self, call: Callable[[], list[Event]]) -> list[Event]:
        return await asyncio.get_running_loop().run_in_executor(self.pool, call)

    async def _serve_events(self, connection: ServerConnection, session: RemoteSession) -> None:
        """Ours: three tasks joined by bounded queues: read frames, decode them, send events."""
        audio: asyncio.Queue = asyncio.Queue(AUDIO_QUEUE)
        outbox: asyncio.Queue = asyncio.Queue(SEND_QUEUE)

        async def read() -> None:
            while True:
                message = await self._receive(connection)
                if isinstance(message, str):
                    if is_eof(message):
                        await audio.put(None)
                        return
                else:
                    await audio.put((pcm_samples(message), time.monotonic()))  # waits while decoding is behind

        async def decode() -> None:
            while True:
                items = [await audio.get()]
                while not audio.empty() and items[-1] is not None:
                    items.append(audio.get_nowait())  # a client ahead of us: decode what queued at once
                blocks = [item for item in items if item is not None]
                if blocks:
                    samples = blocks[0][0] if len(blocks) == 1 else np.concatenate([block for block, _ in blocks])
                    arrived = blocks[-1][1]
                    self._post(outbox, await self._decode(functools.partial(session.push, samples, arrived)))
                if items[-1] is None:
                    self._post(outbox, await self._decode(session.finish))
                    outbox.put_nowait(None)
                    return

        async def send() -> None:
            while (event := await outbox.get()) is not None:
                await connection.send(json.dumps(event.to_dict()))

        await _run_together(read(), decode(), send())

    def _post(self, outbox: asyncio.Queue, events: list[Event]) -> None:
        for event in events:
            try:
                outbox.put_nowait(event)
            except asyncio.QueueFull:
                raise ClientError(POLICY, f"client too slow: {SEND_QUEUE} events unread") from None

    async def _serve_vosk(self, connection: ServerConnection, session: RemoteSession) -> None:
        """vosk-server's: one answer per message, in order."""
        replies = VoskReplies()
        received_audio = False
        while True:
            message = await self._receive(connection)
            if isinstance(message, bytes):
                received_audio = True
                samples, arrived = pcm_samples(message), time.monotonic()
                events = await self._decode(functools.partial(session.push, samples, arrived))
                await connection.send(json.dumps(replies.answer(events)))
                continue
            control = vosk_control(message)
            if control.eof:
                await connection.send(json.dumps(replies.answer(await self._decode(session.finish), eof=True)))
                return
            if control.sample_rate is not None:
                if received_audio:
                    raise ClientError(POLICY, "config after audio: send it first")
                await self._decode(functools.partial(session.set_rate, control.sample_rate))

    # ------------------------------------------------------------------ running
    async def run(self, ready: Callable[[str], None] | None = None) -> None:
        """Start the decoding processes (WorkerError if the model cannot be loaded), then serve until
        SIGINT or SIGTERM; every connection is closed with 1001, then return."""
        self._loop = asyncio.get_running_loop()
        started = [self._loop.run_in_executor(self.pool, self._start_worker) for _ in range(self.processes)]
        results = await asyncio.gather(*started, return_exceptions=True)
        self._workers = [worker for worker in results if isinstance(worker, DecodingProcess)]
        failed = [error for error in results if isinstance(error, BaseException)]
        if failed:
            for worker in self._workers:
                worker.stop()
            raise failed[0]
        self._stopping = self._loop.create_future()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread: stop() ends it
                self._loop.add_signal_handler(signum, self._request_stop)
        async with serve(
            self.handle, self.config.host, self.config.port, process_request=self.process_request, ssl=self.config.ssl,
            max_size=self.config.max_frame_bytes, max_queue=4, compression=None, server_header=None,
            ping_interval=self.config.ping_seconds, ping_timeout=self.config.ping_seconds, close_timeout=5,
        ) as server:
            self._server = server
            if ready is not None:
                ready(self.url)
            await self._stopping
            server.close(code=GOING_AWAY, reason="server shutting down")
            await server.wait_closed()
        for worker in self._workers:
            worker.stop()
        self.pool.shutdown(wait=True)

    @property
    def url(self) -> str:
        """http://host:port/ as bound (the port chosen when 0 was asked for)."""
        assert self._server is not None
        address = next(iter(self._server.sockets)).getsockname()
        host = address[0] if ":" not in address[0] else f"[{address[0]}]"
        return f"{'https' if self.config.ssl else 'http'}://{host}:{address[1]}/"

    def _request_stop(self) -> None:
        if not self._stopping.done():
            self._stopping.set_result(None)

    def stop(self) -> None:
        """From another thread (tests, embedding): as SIGTERM."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._request_stop)


async def _run_together(*coroutines: object) -> None:
    """Run the tasks until all end; the first to fail cancels the rest and its error is raised."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                raise task.exception()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _response(status: int, reason: str, body: bytes, content_type: str) -> Response:
    headers = Headers({"Content-Type": content_type, "Content-Length": str(len(body)), "Cache-Control": "no-cache",
                       "X-Content-Type-Options": "nosniff"})
    return Response(status, reason, headers, body)


def _how_closed(connection: ServerConnection) -> str:
    """The close frame we sent (first: what the client was told, by us or the library's keep-alive),
    else the client's, else none: the connection was lost."""
    protocol = connection.protocol
    if protocol.close_sent is not None and (protocol.close_sent.reason or protocol.close_rcvd is None):
        return f"{protocol.close_sent.code} ({protocol.close_sent.reason})"
    if protocol.close_rcvd is not None:
        return f"{protocol.close_rcvd.code} (closed by the client: {protocol.close_rcvd.reason or 'no reason'})"
    return "1006 (connection lost)"


def _peer(connection: ServerConnection) -> str:
    address = connection.remote_address
    return f"{address[0]}:{address[1]}" if address else "?"
