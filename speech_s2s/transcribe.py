"""Audio of any length -> speech segments -> batched search -> text with segment and word times.

A `Recognizer` holds a model, its decoding options and a voice-activity segmenter. Files flow
through it as a pipeline: audio is read a block at a time, cut at pauses into utterances no
longer than the model was trained on, and segments of consecutive files are decoded together in
batches; each file's result is handed out as soon as it and every earlier file are finished.
Memory is bounded by one read block plus `read_ahead` batches of segments, whatever the number
or length of the files.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
import torch

from speech_s2s.decoding.alignment import Word, word_times
from speech_s2s.decoding.options import DecodingOptions
from speech_s2s.decoding.search import LanguageModel, decode_encoded
from speech_s2s.frontend.audio import SAMPLE_RATE, AudioError, audio_info, stream_audio
from speech_s2s.frontend.level import LevelConfig, decoding_level, into_range
from speech_s2s.frontend.vad import Segment as AudioSegment
from speech_s2s.frontend.vad import Segmenter, SegmenterConfig, SpeechDetector
from speech_s2s.input_files import InputFile
from speech_s2s.model.encoder import EncoderOutput
from speech_s2s.model.seq2seq import Seq2Seq
from speech_s2s.punctuation.restore import RecordingRestorer, Restorer

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class Segment:
    start: float  # seconds from the start of the file
    end: float
    text: str  # cased and punctuated when the recogniser has a restorer, else as the model spelt it
    words: tuple[Word, ...] = ()  # the model's words with their times, one for one with `text`'s words
    raw_text: str = ""  # the model's words as it spelt them (lowercase, no marks); `text` when not given

    def __post_init__(self) -> None:
        if not self.raw_text and self.text:
            object.__setattr__(self, "raw_text", self.text)


@dataclass(frozen=True)
class FileTranscript:
    path: str
    id: str
    text: str
    duration: float  # seconds of audio read
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class FailedFile:
    path: str
    id: str
    error: str  # one line, naming the file


@dataclass(frozen=True)
class TranscribeOptions:
    decoding: DecodingOptions = DecodingOptions()
    segmenter: SegmenterConfig = SegmenterConfig()
    batch_size: int = 8  # segments decoded together
    read_ahead: int = 4  # batches of segments gathered (and sorted by length) before decoding
    word_timestamps: bool = True
    keep_level: bool = False  # decode at the recorded level; by default each segment's goes into the model's training range (speech_s2s.frontend.level)


@dataclass(frozen=True)
class AudioInfo:
    """What is known of an input before decoding: from its header, or from the array."""

    path: str | None
    sample_rate: int | None
    channels: int | None
    duration: float | None  # seconds; None where the header does not say


@dataclass
class PendingFile:
    """A file on its way through the pipeline (here or on a Ray cluster: speech_s2s/cluster)."""

    input: InputFile
    texts: dict[int, Segment] = field(default_factory=dict)
    segments: int = 0  # cut so far
    read: bool = False  # all its audio has been read and cut
    samples: int = 0
    error: str | None = None

    def done(self) -> bool:
        return self.error is not None or (self.read and len(self.texts) == self.segments)

    def result(self, restorer: Restorer | None = None) -> FileTranscript | FailedFile:
        """The file's transcript; `restorer`: case and punctuation restored over the whole file (`restored_in_order`)."""
        if self.error is not None:
            return FailedFile(self.input.path, self.input.id, self.error)
        segments = tuple(restored_in_order((self.texts[i] for i in range(self.segments)), restorer))
        text = " ".join(s.text for s in segments if s.text)
        return FileTranscript(self.input.path, self.input.id, text, self.samples / SAMPLE_RATE, segments)


Entry = TypeVar("Entry")


class SegmentBatcher(Generic[Entry]):
    """Which segments are decoded together: the one rule `Recognizer.transcribe_files` and the Ray
    runner (speech_s2s/cluster/ray_runner.py) both follow, so that their batches, and so their
    results, are the same: a batch's shape can change the last bits of the arithmetic (padding, the
    kernels chosen for its size), and a beam search can turn on them.

    Segments queue in input order (one entry each, across files); the queue is decoded whole when it
    holds `batch_size` entries the first time (so the first results come soon), then
    `batch_size * read_ahead` (`decode_segments` sorts it by length into batches of `batch_size`).
    """

    def __init__(self, options: TranscribeOptions):
        self._window = options.batch_size
        self._later = options.batch_size * options.read_ahead
        self.queue: list[Entry] = []

    def add(self, entry: Entry) -> list[Entry]:
        """Queue one segment; -> the entries to decode now (the whole queue), or [] while it fills."""
        self.queue.append(entry)
        if len(self.queue) < self._window:
            return []
        batch, self.queue, self._window = self.queue, [], self._later
        return batch

    def drop(self, keep: Callable[[Entry], bool]) -> None:
        """Forget the queued entries `keep` rejects (those of a file that failed while being read)."""
        self.queue = [entry for entry in self.queue if keep(entry)]

    def rest(self) -> list[Entry]:
        """What is still queued once every input has been read."""
        batch, self.queue = self.queue, []
        return batch


def speech_segments(blocks: Iterable[np.ndarray], config: SegmenterConfig, detector: SpeechDetector) -> Iterator[AudioSegment]:
    """Speech segments of a stream of 16 kHz blocks, as they are found (a fresh segmenter per stream)."""
    segmenter = Segmenter(config, detector)
    for block in blocks:
        yield from segmenter.push(block)
    yield from segmenter.flush()


def reading_error(path: str, error: Exception) -> str:
    """The one line that names a file whose reading failed: AudioError's own, or the unexpected error's type and first line."""
    if isinstance(error, AudioError):
        return str(error)
    first = str(error).splitlines()[0] if str(error) else ""
    return f"{path}: unexpected {type(error).__name__} while reading ({first})"


class Recognizer:
    """A model with its decoding options: transcribes files or arrays of any length."""

    def __init__(self, model: Seq2Seq, options: TranscribeOptions = TranscribeOptions(), lm: LanguageModel | None = None,
                 encoder: Callable[[torch.Tensor, torch.Tensor], EncoderOutput] | None = None, restorer: Restorer | None = None):
        """lm: fused into beam search (a character LM, or one with a word LM: `with_word_lm`).
        encoder: computes `model.encode` another way (an `onnx_encoder.OnnxEncoder`); full context only.
        restorer: puts case and punctuation into the segments' text, reading each recording's segments
        together (speech_s2s.punctuation; `restored_in_order`); raw_text keeps the words."""
        self.restorer = restorer
        if encoder is not None and options.decoding.chunk is not None:
            raise ValueError("another encoder computes the full-context form only; it cannot encode in chunks")
        self.model = model.eval()
        self.options = options
        self.lm = lm
        # the level band speech is scaled into: the one the model's file states, else the bundled model's
        self.level: LevelConfig | None = decoding_level(model.input_level_db, options.keep_level)
        self.encode = encoder or (lambda feats, lengths: model.encode(feats, lengths, options.decoding.chunk))
        self._detector = SpeechDetector()
        encoder = model.config.encoder
        reduction = 2 ** sum(1 for layer in encoder.reduce_before if layer <= encoder.ctc_layer)
        self.ctc_frame_seconds = reduction * model.config.features.hop_length / model.config.features.sample_rate

    # ------------------------------------------------------------------ segmentation
    def segments_of(self, blocks: Iterable[np.ndarray]) -> Iterator[AudioSegment]:
        """Speech segments of a stream of 16 kHz blocks, as they are found."""
        return speech_segments(blocks, self.options.segmenter, self._detector)

    # ------------------------------------------------------------------ decoding
    @torch.no_grad()
    def decode_segments(self, segments: list[AudioSegment]) -> list[Segment]:
        """Decode segments (in any order) as batches of similar length; results in input order, as the
        model spells them (the restorer reads a recording's segments together: `restored_in_order`)."""
        results: list[Segment | None] = [None] * len(segments)
        order = sorted(range(len(segments)), key=lambda i: len(segments[i].samples))
        size = self.options.batch_size
        for first in range(0, len(order), size):
            batch = order[first : first + size]
            waves = [torch.from_numpy(into_range(segments[i].samples, self.level)) for i in batch]
            padded = torch.nn.utils.rnn.pad_sequence(waves, batch_first=True)
            feats, lengths = self.model.features(padded, torch.tensor([len(w) for w in waves]))
            encoded = self.encode(feats, lengths)
            decoded = decode_encoded(self.model, encoded, self.options.decoding, self.lm)
            ctc = self.model.ctc_log_probs(encoded) if self.options.word_timestamps else None
            for row, (i, result) in enumerate(zip(batch, decoded)):
                start, end = segments[i].start / SAMPLE_RATE, segments[i].end / SAMPLE_RATE
                words: tuple[Word, ...] = ()
                if ctc is not None and result.tokens:
                    frames = int(encoded.ctc_lengths[row])
                    words = tuple(word_times(ctc[row, :frames], result.tokens, self.model.vocabulary, self.ctc_frame_seconds, start, end))
                results[i] = Segment(round(start, 3), round(end, 3), result.text, words, result.text)
        return results  # type: ignore[return-value]

    # ------------------------------------------------------------------ one input
    def transcribe(self, audio: str | Path | np.ndarray) -> tuple[Iterator[Segment], AudioInfo]:
        """(segments, info) for one file, `-`, or a 16 kHz mono float32 array. Segments are a
        generator in time order: decoding happens as it is consumed, a batch at a time. A file
        that cannot be read raises AudioError (naming it), at once or when its bad part is reached."""
        if isinstance(audio, np.ndarray):
            samples = np.asarray(audio, dtype=np.float32)
            info = AudioInfo(None, SAMPLE_RATE, 1, len(samples) / SAMPLE_RATE)
            return self._segments([samples]), info
        header = audio_info(audio)
        info = AudioInfo(str(audio), *(header or (None, None, None)))
        blocks = stream_audio(audio)
        return self._segments(blocks), info

    def _segments(self, blocks: Iterable[np.ndarray]) -> Iterator[Segment]:
        return restored_in_order(self._decoded(blocks), self.restorer)

    def _decoded(self, blocks: Iterable[np.ndarray]) -> Iterator[Segment]:
        window = self.options.batch_size  # the first results come after one batch, later ones in bigger windows
        pending: list[AudioSegment] = []
        for segment in self.segments_of(blocks):
            pending.append(segment)
            if len(pending) >= window:
                yield from self.decode_segments(pending)
                pending, window = [], self.options.batch_size * self.options.read_ahead
        if pending:
            yield from self.decode_segments(pending)

    # ------------------------------------------------------------------ many inputs
    def transcribe_files(self, inputs: Iterable[InputFile]) -> Iterator[FileTranscript | FailedFile]:
        """One FileTranscript (or FailedFile) per input, in input order, each as soon as it and
        every earlier input are done. Segments of neighbouring files share batches (SegmentBatcher)."""
        batcher: SegmentBatcher[tuple[PendingFile, int, AudioSegment]] = SegmentBatcher(self.options)
        pending: deque[PendingFile] = deque()
        for item in inputs:
            state = PendingFile(item)
            pending.append(state)
            try:
                for segment in self.segments_of(counted_blocks(stream_audio(item.path), state)):
                    batch = batcher.add((state, state.segments, segment))
                    state.segments += 1
                    if batch:
                        self._decode_queue(batch)
                        yield from ready_in_order(pending, self.restorer)
                state.read = True
            except Exception as error:  # a reader's surprise must not end the batch; --verbose shows where
                if not isinstance(error, AudioError):
                    log.debug("reading %s failed", item.path, exc_info=True)
                state.error = reading_error(item.path, error)
            batcher.drop(lambda entry: entry[0].error is None)
            if not batcher.queue:
                yield from ready_in_order(pending, self.restorer)
        self._decode_queue(batcher.rest())
        yield from ready_in_order(pending, self.restorer)

    def _decode_queue(self, queue: list[tuple[PendingFile, int, AudioSegment]]) -> None:
        for (state, index, _), segment in zip(queue, self.decode_segments([entry[2] for entry in queue])):
            state.texts[index] = segment


def counted_blocks(blocks: Iterator[np.ndarray], state: PendingFile) -> Iterator[np.ndarray]:
    """`blocks`, adding their samples to `state.samples` as they pass."""
    for block in blocks:
        state.samples += len(block)
        yield block


def ready_in_order(pending: deque[PendingFile], restorer: Restorer | None = None) -> Iterator[FileTranscript | FailedFile]:
    """The results of the files at the front of `pending` that are done, removing them."""
    while pending and pending[0].done():
        yield pending.popleft().result(restorer)


def restored_in_order(segments: Iterable[Segment], restorer: Restorer | None) -> Iterator[Segment]:
    """One recording's segments, in time order, with case and punctuation restored over the recording
    as one text (`RecordingRestorer`: a pause cut between two segments is not a sentence end by
    itself). A segment comes out once the words it needs for that have been decoded, or at the end."""
    if restorer is None:
        yield from segments
        return
    recording = RecordingRestorer(restorer)
    held: deque[Segment] = deque()
    for segment in segments:
        held.append(segment)
        for words in recording.add(segment.raw_text.split()):
            yield replace(held.popleft(), text=" ".join(words))
    for words in recording.finish():
        yield replace(held.popleft(), text=" ".join(words))
