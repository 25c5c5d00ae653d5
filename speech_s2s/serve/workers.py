"""Decoding processes: each holds the model, its LMs and the voice detector, and the sessions given to it.

Why processes and not threads: beam search is thousands of small torch operations driven from
Python, each releasing and taking back the GIL. Two sessions decoding in threads of one process
waited on each other at every operation: with the default decoding on 2 cores, one client's finals
came 0.9 s after the end of speech and two clients' 12.6 s (tools/bench_serve.py, 2026-12-07),
while the event loop, starved of the GIL too, missed the keep-alive pings of every connection.
A process per session slot gives each its own interpreter and core.

The server keeps one process per usable core (fewer if it allows fewer sessions), spawned (so
nothing of the server's threads or event loop is copied) before it listens. Each connection's
session lives in the least busy process for the connection's lifetime; a process answers one
request at a time, so sessions that share it take turns rather than contend. A process that dies
(killed, out of memory) fails only the connections it held, and is replaced.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection
from multiprocessing.sharedctypes import Synchronized

import numpy as np

from speech_s2s.builder import RecognizerConfig
from speech_s2s.machine import usable_cores
from speech_s2s.streaming import Event, StreamOptions


class WorkerError(RuntimeError):
    """A decoding process failed or is gone; the message says how."""


def _serve_sessions(connection: Connection, config: RecognizerConfig, options: StreamOptions, threads: int, busy: Synchronized,
                    cores: int) -> None:
    """The process's loop: build the recogniser, then answer (operation, arguments) requests.
    `busy`: a shared count, kept by the server, of its processes answering a request now, out of `cores`."""
    import signal

    import torch

    from speech_s2s.builder import build_recognizer
    from speech_s2s.frontend.vad import SileroVAD
    from speech_s2s.machine import share_cores
    from speech_s2s.serve.session import CaptionSession
    from speech_s2s.streaming import StreamingRecognizer

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole process group: the server stops us
    torch.set_num_threads(threads)
    try:
        recognizer = build_recognizer(config, word_timestamps=False)
        vad = SileroVAD.load()
        StreamingRecognizer(recognizer, options, vad=vad)  # a chunk the model cannot take fails here
    except Exception as error:  # a model or LM file that cannot be used: the message names it
        connection.send(("error", str(error)))
        return
    connection.send(("ready", None))
    # A decoding lends itself a second core (machine.second_thread) only while another is idle: with
    # every process busy, its second thread would only take turns with them (tools/bench_serve.py,
    # 2 clients, 2026-12-07: finals 967 ms after the end of speech at the median with the LM thread in
    # every process, against 868 ms before it).
    # Read without its lock (`value` would take it): a process killed while holding it would leave
    # the server waiting for it at every request. A stale count only lends or withholds one core once.
    share_cores(lambda: busy.get_obj().value >= cores)
    sessions: dict[int, CaptionSession] = {}
    while True:
        try:
            operation, key, arguments = connection.recv()
        except (EOFError, OSError):  # the server is gone
            return
        try:
            if operation == "open":
                sessions[key], result = CaptionSession(recognizer, options, vad, *arguments), None
            elif operation == "close":
                sessions.pop(key, None)
                result = None
            elif operation == "rate":
                result = sessions[key].set_rate(*arguments)
            elif operation == "push":
                result = sessions[key].push(*arguments)
            elif operation == "finish":
                result = sessions[key].finish()
            else:
                raise ValueError(f"unknown operation {operation!r}")
            connection.send(("ok", result))
        except Exception as error:
            connection.send(("error", f"{type(error).__name__}: {error}"))


def busy_count() -> Synchronized:
    """A count of the server's processes answering a request now, read by all of them. The server
    keeps it (`DecodingProcess.call`), so a process killed mid-request neither leaves it raised nor
    dies holding its lock."""
    return multiprocessing.get_context("spawn").Value("i", 0)


@contextlib.contextmanager
def _counted(busy: Synchronized) -> Iterator[None]:
    """`busy` one higher while inside."""
    with busy.get_lock():
        busy.value += 1
    try:
        yield
    finally:
        with busy.get_lock():
            busy.value -= 1


class DecodingProcess:
    """One decoding process and the pipe to it; `call` blocks (run it in a thread)."""

    def __init__(self, connection: Connection, process: multiprocessing.process.BaseProcess, busy: Synchronized):
        """A process already started with the other end of `connection` (`start` makes both).
        `busy`: from `busy_count()`, one for all the server's processes."""
        self._connection = connection
        self.process = process
        self._lock = threading.Lock()
        self._busy = busy
        self.sessions = 0  # connections whose session lives here
        self.replacing = False
        # Its pipe closed: the process is dead or dying. A killed process's pipe closes before the
        # system reports it dead, so `alive` checked only the process, a server could keep sending
        # new sessions to it (tests/test_serve.py caught this under load).
        self._gone = False

    @classmethod
    def start(cls, config: RecognizerConfig, options: StreamOptions, threads: int, busy: Synchronized) -> DecodingProcess:
        """A new process that builds the recogniser of `config` and serves sessions over a pipe."""
        context = multiprocessing.get_context("spawn")
        connection, child = context.Pipe()
        process = context.Process(target=_serve_sessions, args=(child, config, options, threads, busy, usable_cores()),
                                  daemon=True, name="speech-s2s-decode")
        process.start()
        child.close()
        return cls(connection, process, busy)

    def wait_ready(self) -> None:
        """Until the recogniser is built; WorkerError with the reason if it could not be."""
        status, message = self._receive()
        if status != "ready":
            raise WorkerError(message)

    def call(self, operation: str, key: int, *arguments: object) -> object:
        """One request for session `key`; its answer (WorkerError: the request failed, or the process is gone)."""
        with self._lock, _counted(self._busy):
            try:
                self._connection.send((operation, key, arguments))
            except (OSError, ValueError) as error:
                self._gone = True
                raise WorkerError(f"decoding process gone ({error})") from None
            status, result = self._receive()
        if status != "ok":
            raise WorkerError(result)
        return result

    def _receive(self) -> tuple[str, object]:
        try:
            return self._connection.recv()
        except (EOFError, OSError):
            self._gone = True
            code = self.process.exitcode
            raise WorkerError(f"decoding process ended (exit code {code})" if code is not None else "decoding process gone") from None

    @property
    def alive(self) -> bool:
        return not self._gone and self.process.is_alive()

    def stop(self) -> None:
        self._connection.close()
        self.process.join(5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)


class RemoteSession:
    """A `CaptionSession` in a decoding process: the same calls, made over its pipe."""

    _keys = itertools.count()

    def __init__(self, worker: DecodingProcess, rate: int):
        self.worker = worker
        self.key = next(self._keys)
        self.rate = rate
        self.samples = 0
        worker.call("open", self.key, rate)

    def set_rate(self, rate: int) -> None:
        self.rate = rate
        self.worker.call("rate", self.key, rate)

    def push(self, samples: np.ndarray, arrived: float) -> list[Event]:
        self.samples += len(samples)
        return self.worker.call("push", self.key, samples, arrived)

    def finish(self) -> list[Event]:
        return self.worker.call("finish", self.key)

    def close(self) -> None:
        """Free the session's state in its process (nothing to do if the process is gone)."""
        with contextlib.suppress(WorkerError):
            self.worker.call("close", self.key)

    @property
    def seconds(self) -> float:
        return self.samples / self.rate
