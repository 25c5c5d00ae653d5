"""Live recognition: audio blocks in, partial and final text out, as the words are spoken.

Mode "agreement" (works with any model, the default): the voice-activity `Segmenter` finds where
an utterance begins and ends. While one is open, its audio so far is decoded again every
`update_seconds`; the words on which the last two hypotheses agree become committed
(LocalAgreement-2, as in ufal/whisper_streaming) and are never taken back, and a partial event
shows them followed by the rest of the newest hypothesis. When the segmenter closes the utterance
at a pause, the final event's text is exactly the offline decoding of that segment
(`Recognizer.decode_segments`), so streaming and file transcription agree.

    recognizer = StreamingRecognizer(speech_s2s.load())
    for event in recognizer.stream(FileSource("talk.flac")):   # or MicrophoneSource(), StdinSource()
        print(event.type, event.text)
    print(recognizer.summary().format())

Mode "chunked" (`StreamOptions(mode="chunked")`) takes partial text instead from CTC's best path
over the chunked (LC-BLSTM) encoder, one chunk at a time with bounded work; finals are the same
offline decoding. It needs a model fine-tuned with dynamic chunks for useful partials.

Latency is measured against the audio clock: an event's `latency_ms` is how long after its
reference sample was heard the event came out, i.e. the audio received since that sample plus the
time spent since the newest block arrived. Reference: the newest sample for partials, the end of
speech (before the segmenter's trailing pad) for finals.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch

from speech_s2s.decoding.options import with_overrides
from speech_s2s.decoding.search import decode_encoded
from speech_s2s.frontend.audio import SAMPLE_RATE
from speech_s2s.frontend.features import StreamingLogMel
from speech_s2s.frontend.level import gain_into_range, into_range
from speech_s2s.frontend.vad import (
    Segment,
    Segmenter,
    SileroVAD,
    SpeechDetector,
)
from speech_s2s.model.encoder import ChunkConfig
from speech_s2s.model.seq2seq import Seq2Seq
from speech_s2s.punctuation.restore import LiveRestorer
from speech_s2s.text import BLANK_ID
from speech_s2s.transcribe import Recognizer
from speech_s2s.transcribe import Segment as TextSegment

MODES = ("agreement", "chunked")


@dataclass(frozen=True)
class StreamOptions:
    mode: str = "agreement"  # partials by re-decoding and LocalAgreement, or "chunked": CTC over the chunked encoder
    update_seconds: float = 0.4  # agreement: new audio between two decodings of the open utterance
    partial_beam_size: int = 1  # agreement: beam of the partial decodings (greedy: cheap); finals use the recognizer's options
    chunk: ChunkConfig = ChunkConfig(32, 16)  # chunked: 320 ms chunks with 160 ms of look-ahead
    # Decode an utterance's final text as soon as its segment is known (its pause as long as the
    # segmenter's end pad, 0.1 s) rather than when the pause ends it (0.3 s): the final comes up to
    # 0.2 s sooner, and is the same text. Off only to measure what it saves.
    speculative_finals: bool = True

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")


@dataclass(frozen=True)
class Event:
    type: str  # "partial" (may still change) or "final" (the utterance's text; "" when it held no words)
    text: str
    start: float  # seconds from the start of the stream
    end: float
    latency_ms: float
    committed: str = ""  # partials: the words that will not change before the final

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class StreamSummary:
    audio_seconds: float
    processing_seconds: float  # spent recognising (not waiting for audio)
    utterances: int
    partials: int
    first_partial_ms: float | None  # median, speech onset -> first partial of the utterance
    final_ms: float | None  # median, end of speech -> final event
    final_p90_ms: float | None
    partial_interval_ms: float | None  # median audio time between consecutive partials of an utterance
    dropped_seconds: float  # audio the source lost

    @property
    def real_time_factor(self) -> float:
        return self.processing_seconds / self.audio_seconds if self.audio_seconds else 0.0

    def format(self) -> str:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value:.0f} ms"

        return (f"{self.audio_seconds:.1f} s of audio, {self.utterances} utterances, {self.partials} partials; "
                f"first partial {ms(self.first_partial_ms)}, final {ms(self.final_ms)} (p90 {ms(self.final_p90_ms)}), "
                f"partials every {ms(self.partial_interval_ms)}; real-time factor {self.real_time_factor:.2f}; "
                f"dropped {self.dropped_seconds:.2f} s")


def _common_prefix(a: list[str], b: list[str]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


class LocalAgreement:
    """Commits the words two consecutive hypotheses of a growing utterance agree on.

    Committed words only grow: a later hypothesis that disagrees with them changes only the
    uncommitted rest. Agreement is sought on the words after the committed ones."""

    def __init__(self):
        self.committed: list[str] = []
        self._previous: list[str] | None = None

    def insert(self, words: list[str]) -> list[str]:
        """Add the newest hypothesis (whole-utterance words); returns what to show: committed + the rest."""
        n = len(self.committed)
        if self._previous is not None:
            self.committed += words[n : n + _common_prefix(self._previous[n:], words[n:])]
        self._previous = words
        return self.committed + words[len(self.committed) :]


class ChunkedCTC:
    """Mode "chunked": partial text from CTC's best path over the chunked encoder's frames so far.

    Audio goes through the streaming log-mel, then `encoder.stream` one window of C + R frames at a
    time with the forward state carried, so the work per chunk is bounded whatever the utterance's
    length, and text already emitted for past frames never changes. Needs a model trained with
    dynamic chunks to be accurate; a full-context model gives rough partials (its finals are unaffected)."""

    def __init__(self, model: Seq2Seq, chunk: ChunkConfig):
        model.encoder.check_chunk(chunk)
        self.model, self.chunk = model, chunk
        self.features = StreamingLogMel(model.logmel)
        # The input level's correction (speech_s2s.frontend.level) needs the whole utterance, which a chunk
        # does not wait for: it uses the last finished utterance's, as a live microphone's level
        # changes little from one to the next. 1.0 until one has finished.
        self.gain = 1.0
        self.start()

    def start(self) -> None:
        """A new utterance."""
        self.features.reset()
        self._frames = torch.zeros(0, self.model.config.features.n_mels)  # normalised, not yet encoded
        self._normalisation = None  # the running utterance mean's state (FeatureConfig.utterance_mean)
        self._state = self.model.encoder.initial_state(1, self.chunk)
        self._tokens: list[int] = []
        self.ctc_frames = 0  # CTC frames decoded so far
        self._last = BLANK_ID  # the previous frame's best token, for collapsing repeats

    @torch.no_grad()
    def push(self, samples: np.ndarray) -> str:
        """Feed audio; returns the text so far."""
        frames = self.features.push(samples * np.float32(self.gain) if self.gain != 1.0 else samples)
        normalised, self._normalisation = self.model.normalizer.running(frames, self._normalisation)
        self._frames = torch.cat([self._frames, normalised])
        window = self.chunk.chunk_frames + self.chunk.right_context_frames
        while len(self._frames) >= window:
            encoded, self._state = self.model.encoder.stream(self._frames[None, :window], self._state)
            best = self.model.ctc_log_probs(encoded)[0].argmax(-1).tolist()
            self.ctc_frames += len(best)
            for token in best:
                if token != self._last and token != BLANK_ID:
                    self._tokens.append(token)
                self._last = token
            self._frames = self._frames[self.chunk.chunk_frames :]
        return self.model.vocabulary.decode(self._tokens)


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


class StreamingRecognizer:
    """A `Recognizer` run live: `push` audio blocks, get `Event`s; `finish` at the end of the stream."""

    def __init__(self, recognizer: Recognizer, options: StreamOptions = StreamOptions(), clock: Callable[[], float] = time.monotonic,
                 vad: SileroVAD | None = None):
        """`clock`: what times processing and latency; a benchmark on a shared machine passes time.thread_time.
        `vad`: a voice-activity model to share (a server's sessions use one); by default one is loaded."""
        self.recognizer = recognizer
        self.options = options
        self._clock = clock
        self._partial_decoding = with_overrides(recognizer.options.decoding, beam_size=options.partial_beam_size)
        self._segmenter = Segmenter(recognizer.options.segmenter, SpeechDetector(vad))
        self._update = round(options.update_seconds * SAMPLE_RATE)
        self._chunked = ChunkedCTC(recognizer.model, options.chunk) if options.mode == "chunked" else None
        self._live = LiveRestorer(recognizer.restorer) if recognizer.restorer is not None else None
        self.reset()

    def reset(self) -> None:
        self._segmenter.reset()
        if self._live is not None:
            self._live.reset()
        self._position = 0  # samples received
        self._arrived = self._clock()  # when the newest block arrived
        self._processing = 0.0
        self._dropped = 0.0
        self._first_partial: list[float] = []
        self._finals: list[float] = []
        self._intervals: list[float] = []
        self._partials = 0
        self._utterances = 0
        self._last_final_end: float | None = None  # seconds into the stream where the last final with words ended
        self._new_utterance()

    def _new_utterance(self) -> None:
        self._agreement = LocalAgreement()
        self._chunked_words: list[str] = []
        self._open_start: int | None = None  # first sample of the open utterance we have decoded
        self._decoded_at = 0  # position at the last partial decoding
        self._last_partial_at: int | None = None
        self._shown = False  # a partial of the open utterance has gone out
        self._speculated: tuple[tuple[int, int], TextSegment] | None = None  # ((start, end), result) of the closing segment

    # ------------------------------------------------------------------ driving
    def stream(self, source: Iterable[np.ndarray]) -> Iterator[Event]:
        """Events for a source of 16 kHz blocks, as they happen, ending with the last final."""
        self.reset()
        origin = None  # when the stream's first sample was heard, on the clock
        for block in source:
            now = self._clock()
            if origin is None:
                origin = now - len(block) / SAMPLE_RATE
            # A live source's block was heard when its last sample was, even if it waited in a queue
            # while we were busy; a fast file source is ahead of that, and arrives now.
            heard = origin + (self._position + len(block)) / SAMPLE_RATE
            yield from self.push(block, min(now, heard))
        yield from self.finish(getattr(source, "dropped_seconds", 0.0))

    def push(self, block: np.ndarray, arrived: float | None = None) -> list[Event]:
        """Events caused by one more block of 16 kHz mono float32 audio (`arrived`: when, on the clock)."""
        started = self._clock()
        self._arrived = started if arrived is None else arrived
        self._position += len(block)
        events = [self._final(segment) for segment in self._segmenter.push(block)]
        if not self._segmenter.in_speech and not events and self._shown:
            events.append(self._discarded())  # too short to be speech: take the partial back
        if self._segmenter.in_speech:
            current = self._segmenter.current()
            if self._open_start is None or current.start != self._open_start:
                if self._open_start is not None and self._shown and not events:
                    events.append(self._discarded())
                self._new_utterance()
                self._open_start, self._decoded_at = current.start, current.start + self._segmenter.pad_samples
                if self._chunked is not None:
                    self._chunked.start()
                    block = current.samples  # the utterance so far, this block included
            closing = self._segmenter.closing() if self.options.speculative_finals else None
            if self._chunked is not None:
                event = self._chunked_partial(current, self._chunked.push(block))
                if event is not None:
                    events.append(event)
            elif self._partial_due(started):
                event = self._partial(current)
                if event is not None:
                    events.append(event)
            if closing is not None and (self._speculated is None or self._speculated[0] != (closing.start, closing.end)):
                self._speculated = ((closing.start, closing.end), self.recognizer.decode_segments([closing])[0])
        self._processing += self._clock() - started
        return events

    def _partial_due(self, now: float) -> bool:
        """Whether to decode the open utterance again for a partial now. Not in a pause: no new words
        are being spoken, and a partial decoded there would hold up the final, which is decoded
        the segmenter's end pad into the pause. Not while the audio waiting to be decoded is an update's worth or more:
        partials are optional and finals are not, so a decoder that falls behind (a slow CPU, a
        server's busy process) drops partials until it has caught up, instead of falling further back."""
        return (self._position - self._decoded_at >= self._update and not self._segmenter.in_pause
                and now - self._arrived < self.options.update_seconds)

    def finish(self, dropped_seconds: float = 0.0) -> list[Event]:
        """End of the stream (or Ctrl-C): the open utterance is decoded as a final."""
        started = self._clock()
        self._arrived = started
        self._dropped = dropped_seconds
        events = [self._final(segment, flushed=True) for segment in self._segmenter.flush()]
        if not events and self._shown:
            events.append(self._discarded())
        self._new_utterance()
        self._processing += self._clock() - started
        return events

    def summary(self) -> StreamSummary:
        return StreamSummary(
            self._position / SAMPLE_RATE, self._processing, self._utterances, self._partials,
            _percentile(self._first_partial, 50), _percentile(self._finals, 50), _percentile(self._finals, 90),
            _percentile(self._intervals, 50), self._dropped,
        )

    # ------------------------------------------------------------------ events
    def _latency_ms(self, sample: int) -> float:
        return max(0.0, (self._position - sample) / SAMPLE_RATE * 1000 + (self._clock() - self._arrived) * 1000)

    def _seconds(self, sample: int) -> float:
        return round(sample / SAMPLE_RATE, 3)

    def _partial(self, current: Segment) -> Event | None:
        self._decoded_at = self._position
        shown = self._agreement.insert(self._decode_words(current.samples))
        if not shown and not self._shown:
            return None
        return self._emit_partial(current, shown, self._agreement.committed)

    def _emit_partial(self, current: Segment, shown: list[str], committed: list[str]) -> Event:
        self._shown = True
        self._partials += 1
        if self._last_partial_at is None:
            onset = min(self._position, current.start + self._segmenter.pad_samples)
            self._first_partial.append(self._latency_ms(onset))
        else:
            self._intervals.append((self._position - self._last_partial_at) / SAMPLE_RATE * 1000)
        self._last_partial_at = self._position
        return Event("partial", " ".join(shown), self._seconds(current.start), self._seconds(self._position),
                     round(self._latency_ms(self._position), 1), " ".join(committed))

    def _chunked_partial(self, current: Segment, text: str) -> Event | None:
        words = text.split()
        if words == self._chunked_words or (not words and not self._shown):
            return None  # nothing new
        self._chunked_words = words
        return self._emit_partial(current, words, words[:-1])  # past frames' text is fixed; the last word may grow

    def _final(self, segment: Segment, flushed: bool = False) -> Event:
        """The offline decoding of a finished segment (decoded already if it was speculated on)."""
        if self._speculated is not None and self._speculated[0] == (segment.start, segment.end):
            result = self._speculated[1]
        else:
            result = self.recognizer.decode_segments([segment])[0]
        if self._chunked is not None and self.recognizer.level is not None:
            self._chunked.gain = gain_into_range(segment.samples, self.recognizer.level)
        # A segment closed at a pause ends with the end pad: samples of the silence that closed it.
        speech_end = segment.end if flushed or self._segmenter.in_speech else max(segment.start, segment.end - self._segmenter.end_pad_samples)
        latency = self._latency_ms(speech_end)
        self._finals.append(latency)
        self._utterances += 1
        self._new_utterance()
        # A live final cannot wait for the words after it: it is restored after the finals before it,
        # the pause that ended it raising a sentence end (LiveRestorer); files are restored as one text
        # (speech_s2s.transcribe.restored_in_order).
        words = result.text.split()
        silence = result.start - self._last_final_end if self._last_final_end is not None else 0.0
        text = " ".join(self._live.restore(words, last=flushed, silence_before=silence)) if self._live is not None else result.text
        if words:
            self._last_final_end = result.end
        return Event("final", text, result.start, result.end, round(latency, 1))

    def _discarded(self) -> Event:
        """The open utterance turned out not to be speech: an empty final replaces its partial."""
        start = self._open_start or 0
        self._new_utterance()
        return Event("final", "", self._seconds(start), self._seconds(self._position), round(self._latency_ms(self._position), 1))

    @torch.no_grad()
    def _decode_words(self, samples: np.ndarray) -> list[str]:
        model = self.recognizer.model
        wave = torch.from_numpy(into_range(samples, self.recognizer.level))[None]
        feats, lengths = model.features(wave, torch.tensor([len(samples)]))
        encoded = model.encode(feats, lengths, self._partial_decoding.chunk)
        result = decode_encoded(model, encoded, self._partial_decoding, self.recognizer.lm if self._partial_decoding.beam_size > 1 else None)[0]
        return result.text.split()
