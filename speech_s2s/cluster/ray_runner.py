"""`speech-s2s transcribe --ray`: the same transcripts as one process, from many machines.

This process (the driver) lists the inputs and writes the results; Ray runs the work:

  reader actors (one per 4 workers)     stream each file and cut it at pauses (VAD), yielding its
                                        segments in chunks that stay in Ray's object store
  the driver                            queues the segments in input order with the `SegmentBatcher`
                                        the single process uses, so each decoding call gets exactly
                                        the segments it gets there (only their count is sent here)
  decoder actors (--workers)            load the model and LMs once; decode a queue's segments
                                        (`Recognizer.decode_segments`) and return the text
  the driver                            gathers each file's segments, restores their case and
                                        punctuation over the file (the restorer reads a recording's
                                        segments together) and hands the files out in input order,
                                        as soon as each and every earlier one is done

Results are byte-identical to `transcribe` in one process with the same options on the same kind of
CPU: same segments, same batches, same code, same thread count. Faults: Ray restarts an actor that
dies and runs its calls again (a read from its start, READ_RETRIES times; a decoding call
MAX_DECODE_RETRIES times, and the driver sends it again once); a call that still fails fails its
files, each named, and the rest goes on. Nothing is written twice: each call has one result, and
the driver writes each file once.

Ray Data is not used: its batches are formed by its own rule, not the single process's, and a
segment's decoded text can depend on its batch (speech_s2s.transcribe.SegmentBatcher).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import tempfile
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import IO

import numpy as np
import ray
from ray.exceptions import RayActorError, RayError

from speech_s2s.builder import RecognizerConfig
from speech_s2s.frontend.audio import stream_audio
from speech_s2s.frontend.vad import Segment as AudioSegment
from speech_s2s.frontend.vad import SegmenterConfig, SpeechDetector
from speech_s2s.input_files import InputFile
from speech_s2s.punctuation.restore import Restorer
from speech_s2s.transcribe import (
    FailedFile,
    FileTranscript,
    PendingFile,
    Segment,
    SegmentBatcher,
    TranscribeOptions,
    counted_blocks,
    reading_error,
    ready_in_order,
    speech_segments,
)

MAX_DECODE_RETRIES = 2  # Ray runs a decoding call whose worker dies again this often...
SENDS = 2  # ...and the driver sends it this often, so a call that kills its worker 6 times fails its files
READ_RETRIES = 3  # a read whose reader dies is run again this often
CALLS_PER_WORKER = 2  # decoding calls sent to a worker at once: one running, one waiting, so it never waits for the driver
WORKERS_PER_READER = 4  # reading and cutting takes about a tenth of decoding's CPU time (RESULTS.md): a reader feeds several workers
READS_PER_READER = 2  # files sent to each reader ahead of the one being queued
CONNECT_SECONDS = 5.0  # how long the address may take to answer before it is called unreachable


class ClusterError(Exception):
    """No Ray cluster can be joined as asked: one line."""


@dataclass(frozen=True)
class _Chunk:
    """Reader -> driver: the next object in the stream holds this many segments of the file."""

    count: int


@dataclass(frozen=True)
class _FileEnd:
    """Reader -> driver: the file is read (or failed, named in `error`)."""

    samples: int
    error: str | None


# ---------------------------------------------------------------------------------------- on the workers
class Reader:
    """A Ray actor: reads and cuts files as `Recognizer.transcribe_files` does, with its
    voice-activity model loaded once."""

    def __init__(self, segmenter: SegmenterConfig, threads: int):
        import torch

        torch.set_num_threads(threads)  # as the single process, so the VAD's sums are the same
        self.segmenter = segmenter
        self.detector = SpeechDetector()

    def ready(self) -> int:
        return os.getpid()

    def read(self, path: str, shown: str, chunk: int) -> Iterator[_Chunk | list[AudioSegment] | _FileEnd]:
        """A `_Chunk` and its segments (up to `chunk`) in turn, then `_FileEnd`. `path` is opened;
        messages name `shown`, the path as given."""
        state = PendingFile(InputFile(shown, ""))
        segments: list[AudioSegment] = []
        error = None
        try:
            for segment in speech_segments(counted_blocks(stream_audio(path), state), self.segmenter, self.detector):
                segments.append(segment)
                if len(segments) == chunk:
                    yield _Chunk(len(segments))
                    yield segments
                    segments = []
        except Exception as caught:  # named in one line, as in one process; the run goes on
            error = reading_error(shown, caught).replace(path, shown)
        if segments:  # before an error too: one process queues (and may decode) them before it fails
            yield _Chunk(len(segments))
            yield segments
        yield _FileEnd(state.samples, error)


_ReaderActor = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=READ_RETRIES)(Reader)


class Decoder:
    """A Ray actor: one recogniser, loaded once, decoding the segments the driver picks."""

    def __init__(self, config: RecognizerConfig, batch_size: int, keep_level: bool, threads: int):
        import torch

        from speech_s2s.builder import build_recognizer

        torch.set_num_threads(threads)
        self.problem: tuple[str, str] | None = None  # what stopped the recogniser loading, given back by `ready`
        try:
            self.recognizer = build_recognizer(config, batch_size=batch_size, keep_level=keep_level)
        except ImportError as error:
            self.problem = ("ImportError", str(error))
        except ValueError as error:
            self.problem = ("ValueError", str(error))

    def ready(self) -> tuple[int, tuple[str, str] | None]:
        """(process id, None or the loading error's type and message)."""
        return os.getpid(), self.problem

    def decode(self, picks: list[tuple[int, int]], *chunks: list[AudioSegment]) -> list[Segment]:
        """The segments `chunks[c][i]` for each (c, i) in `picks`, decoded together, in that order."""
        # Copied: arrays from the object store are read-only, and torch warns about those.
        segments = [AudioSegment(chunks[c][i].start, np.array(chunks[c][i].samples)) for c, i in picks]
        return self.recognizer.decode_segments(segments)


_DecoderActor = ray.remote(max_restarts=-1, max_task_retries=MAX_DECODE_RETRIES)(Decoder)


# ---------------------------------------------------------------------------------------- on the driver
def connect(address: str | None, cpus_wanted: int, verbose: bool = False) -> bool:
    """Join the Ray cluster at `address` (auto: the one this machine belongs to; None or local: start
    one here with `cpus_wanted` CPUs or more), unless this process has joined one already. Returns
    whether this call started Ray (and so should stop it). Raises ClusterError in one line when no
    cluster answers."""
    if address not in (None, "local", "auto"):
        _probe(address)
    if ray.is_initialized():
        return False
    settings = dict(logging_level=logging.INFO if verbose else logging.ERROR, log_to_driver=verbose)
    if address in (None, "local"):
        ray.init(num_cpus=max(cpus_wanted, os.cpu_count() or 1), include_dashboard=False, **settings)
        return True
    if address != "auto":
        os.environ.setdefault("RAY_gcs_server_port_wait_time_s", "1")  # one try at the cluster's store, not minutes of them
    with tempfile.TemporaryFile() as said:
        try:
            with _standard_error_to(said):  # Ray's own warnings while it joins: kept for the message below
                ray.init(address=address, **settings)
        except (ConnectionError, ValueError, RuntimeError, TimeoutError) as error:
            said.seek(0)
            if b"Unauthenticated" in said.read():
                raise ClusterError(f"--ray {address}: the cluster refused this machine's token; it uses token authentication: "
                                   "export RAY_AUTH_MODE=token (and RAY_AUTH_TOKEN, or the head node's ~/.ray/auth_token)") from None
            if address == "auto":
                raise ClusterError("--ray auto: no running Ray cluster found from this machine (start one with 'ray start --head', "
                                   "or give its address)") from None
            raise ClusterError(f"--ray {address}: cannot join the Ray cluster there ({_first_line(error)})") from None
        if verbose:
            said.seek(0)
            sys.stderr.write(said.read().decode(errors="replace"))
    return False


@contextlib.contextmanager
def _standard_error_to(file: IO[bytes]) -> Iterator[None]:
    """Send this process's standard error (file descriptor 2, where Ray's C++ core writes) to `file`."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(file.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def _probe(address: str) -> None:
    """Raise ClusterError at once when nothing answers at `address`, rather than after Ray's minutes of retries."""
    host, port = address.removeprefix("ray://").rsplit(":", 1)
    host = host.strip("[]")
    if not address.startswith("ray://"):
        try:  # Ray itself dials the node's own address for localhost; so does the probe
            from ray._private.services import canonicalize_bootstrap_address

            host, port = canonicalize_bootstrap_address(address).rsplit(":", 1)
        except Exception:  # a private helper: without it, the address as written
            pass
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
    except OSError as error:
        reason = (error.strerror or type(error).__name__).lower() if not isinstance(error, TimeoutError) else "no answer"
        raise ClusterError(f"--ray {address}: no Ray cluster answers there ({reason}); start one with 'ray start --head', "
                           "or leave the address out for a Ray on this machine alone") from None


def cluster_cpus() -> int:
    return int(ray.cluster_resources().get("CPU", 1))


def _absolute(config: RecognizerConfig) -> tuple[RecognizerConfig, dict[str, str]]:
    """`config` with its files as absolute paths (workers may run elsewhere), and each absolute path's
    name as given, so that messages name files as the user wrote them."""
    changes, given = {}, {}
    for field in fields(config):
        value = getattr(config, field.name)
        if isinstance(value, (str, Path)) and field.name != "device":
            changes[field.name] = os.path.abspath(value)
            given[changes[field.name]] = str(value)
    return replace(config, **changes), given


def _as_given(message: str, given: dict[str, str]) -> str:
    for absolute, name in given.items():
        message = message.replace(absolute, name)
    return message


@dataclass
class _Call:
    """A decoding call: what it decodes, the (file, segment index) each result belongs to, where it runs."""

    picks: list[tuple[int, int]]  # (chunk, index in the chunk) of each segment, in queue order
    chunks: list  # object refs of the chunks it reads
    entries: list[tuple[PendingFile, int]]
    worker: int = -1
    sent: int = 0  # times the driver has sent it


class RayTranscriber:
    """`transcribe_files` on a Ray cluster, for `connect`ed Ray: start the workers with `start`,
    and `close` (or leave the `with` block) to stop them."""

    def __init__(self, config: RecognizerConfig, options: TranscribeOptions, workers: int, threads: int):
        self.config, self._given = _absolute(config)
        self.options = options
        self.threads = threads
        self.size = workers
        self.workers: list = []  # decoder actors
        self.readers: list = []  # reader actors
        self.pids: list[int] = []  # each decoder's process when it started
        self._busy: list[int] = []  # calls in flight per decoder
        self._calls: dict = {}  # ObjectRef -> _Call
        self._reads = 0  # files sent to readers so far
        self.restorer: Restorer | None = None  # loaded by `start`, used here on the driver

    def start(self) -> None:
        """Start the readers and decoders and wait until each is loaded. Raises what `build_recognizer`
        raises (ValueError naming the file, ImportError) when the decoders cannot load."""
        punctuation_file = self.config.punctuation_file()
        try:
            self.restorer = Restorer.load(punctuation_file) if punctuation_file else None
        except ValueError as error:
            raise ValueError(_as_given(str(error), self._given)) from None
        decoder = _DecoderActor.options(num_cpus=self.threads, scheduling_strategy="SPREAD")
        decoding = replace(self.config, punctuation=False)  # the driver restores whole files
        self.workers = [decoder.remote(decoding, self.options.batch_size, self.options.keep_level, self.threads) for _ in range(self.size)]
        reader = _ReaderActor.options(scheduling_strategy="SPREAD")
        self.readers = [reader.remote(self.options.segmenter, self.threads) for _ in range(-(-self.size // WORKERS_PER_READER))]
        self._busy = [0] * self.size
        pending = [worker.ready.remote() for worker in self.workers]
        _, waiting = ray.wait(pending, num_returns=len(pending), timeout=120)
        if waiting:
            print(f"speech-s2s: waiting for the cluster to make room for {len(waiting)} of {len(pending)} Ray workers "
                  f"({self.threads} CPU each)", file=sys.stderr)
        answers = ray.get(pending)
        ray.get([reader.ready.remote() for reader in self.readers])
        self.pids = [pid for pid, _ in answers]
        problems = [problem for _, problem in answers if problem]
        if problems:
            kind, message = problems[0]
            raise (ImportError if kind == "ImportError" else ValueError)(_as_given(message, self._given))

    def restarted(self) -> int:
        """How many decoders are no longer the process they started as (killed and restarted by Ray)."""
        try:
            now = ray.get([worker.ready.remote() for worker in self.workers], timeout=30)
        except RayError:  # gone or busy: nothing to say for sure
            return 0
        return sum(pid != before for (pid, _), before in zip(now, self.pids))

    def close(self) -> None:
        for actor in self.workers + self.readers:
            ray.kill(actor)
        self.workers, self.readers, self._calls = [], [], {}

    def __enter__(self) -> RayTranscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the pipeline
    def transcribe_files(self, inputs: Iterable[InputFile]) -> Iterator[FileTranscript | FailedFile]:
        """One FileTranscript (or FailedFile) per input, in input order, as `Recognizer.transcribe_files`."""
        batcher: SegmentBatcher[tuple[PendingFile, int, object, int]] = SegmentBatcher(self.options)
        chunk = self.options.batch_size * self.options.read_ahead
        pending: deque[PendingFile] = deque()
        reads: deque[tuple[PendingFile, object]] = deque()
        remaining = iter(inputs)
        while True:
            while len(reads) < READS_PER_READER * len(self.readers):
                item = next(remaining, None)
                if item is None:
                    break
                reader = self.readers[self._reads % len(self.readers)]
                stream = reader.read.options(_generator_backpressure_num_objects=-1).remote(os.path.abspath(item.path), item.path, chunk)
                reads.append((PendingFile(item), stream))
                self._reads += 1
            if not reads:
                break
            state, stream = reads.popleft()
            pending.append(state)
            try:
                for segments, count in self._chunks(state, iter(stream)):
                    for index in range(count):
                        batch = batcher.add((state, state.segments, segments, index))
                        state.segments += 1
                        if batch:
                            yield from self._submit(batch, pending)
            except RayError as error:  # its reader died READ_RETRIES + 1 times
                state.error = f"{state.input.path}: lost on the Ray cluster while being read ({_first_line(error)})"
            batcher.drop(lambda entry: entry[0].error is None)
            yield from self._collect(pending, wait=False)
        rest = batcher.rest()
        if rest:
            yield from self._submit(rest, pending)
        while self._calls:
            yield from self._collect(pending, wait=True)
        yield from ready_in_order(pending, self.restorer)

    @staticmethod
    def _chunks(state: PendingFile, stream: Iterator) -> Iterator[tuple[object, int]]:
        """(chunk's object ref, its segment count) for each chunk of a read stream; its end sets
        `state`'s samples and error (or read)."""
        for marker_ref in stream:
            marker = ray.get(marker_ref)
            if isinstance(marker, _FileEnd):
                state.samples, state.error, state.read = marker.samples, marker.error, marker.error is None
                return
            yield next(stream), marker.count
        state.error = f"{state.input.path}: its read on the Ray cluster ended early"

    def _submit(self, batch: list[tuple[PendingFile, int, object, int]], pending: deque[PendingFile]) -> Iterator[FileTranscript | FailedFile]:
        """Send one decoding call, once a worker has room; yields what is done meanwhile."""
        while min(self._busy) >= CALLS_PER_WORKER:
            yield from self._collect(pending, wait=True)
        chunks: list = []
        picks = []
        for _, _, ref, index in batch:
            if not chunks or chunks[-1] is not ref:
                chunks.append(ref)
            picks.append((len(chunks) - 1, index))
        self._send(_Call(picks, chunks, [(state, number) for state, number, _, _ in batch]))

    def _send(self, call: _Call) -> None:
        call.worker = self._busy.index(min(self._busy))
        call.sent += 1
        self._calls[self.workers[call.worker].decode.remote(call.picks, *call.chunks)] = call
        self._busy[call.worker] += 1

    def _collect(self, pending: deque[PendingFile], wait: bool) -> Iterator[FileTranscript | FailedFile]:
        """Take in the decoding calls that are done (waiting for one if `wait`); yield the files now complete."""
        if self._calls:
            done, _ = ray.wait(list(self._calls), num_returns=1 if wait else len(self._calls), timeout=None if wait else 0)
            for ref in done:
                call = self._calls.pop(ref)
                self._busy[call.worker] -= 1
                try:
                    segments = ray.get(ref)
                except RayActorError:
                    # Ray ran it MAX_DECODE_RETRIES times more, its worker dying each time. Perhaps it was only queued
                    # behind the call that kills its worker: once more, on a fresh count, before its files fail.
                    if call.sent < SENDS:
                        self._send(call)
                        continue
                    self._fail(call, f"its worker was lost each of the {SENDS * (MAX_DECODE_RETRIES + 1)} times it ran")
                    continue
                except RayError as error:
                    self._fail(call, _first_line(error))
                    continue
                for (state, number), segment in zip(call.entries, segments):
                    state.texts[number] = segment
        yield from ready_in_order(pending, self.restorer)

    @staticmethod
    def _fail(call: _Call, reason: str) -> None:
        for state, _ in call.entries:
            if state.error is None:
                state.error = f"{state.input.path}: decoding failed on the Ray cluster ({reason})"


def _first_line(error: BaseException) -> str:
    """The cause's type and first line, from a Ray error that may wrap a traceback."""
    error = getattr(error, "cause", None) or error  # RayTaskError: the exception raised in the task
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
