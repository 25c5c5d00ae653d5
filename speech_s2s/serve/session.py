"""One client's live recognition: PCM in, events out. Runs in a worker thread, one call at a time."""

from __future__ import annotations

import numpy as np

from speech_s2s.frontend.audio import SAMPLE_RATE, StreamResampler
from speech_s2s.frontend.vad import SileroVAD
from speech_s2s.streaming import Event, StreamingRecognizer, StreamOptions
from speech_s2s.transcribe import Recognizer

RESAMPLER_BLOCK_SECONDS = 0.05  # as a live source's blocks: resampling adds at most this much delay


class CaptionSession:
    """A `StreamingRecognizer` of its own over the server's shared recogniser and voice detector."""

    def __init__(self, recognizer: Recognizer, options: StreamOptions, vad: SileroVAD, rate: int = SAMPLE_RATE):
        self.streamer = StreamingRecognizer(recognizer, options, vad=vad)
        self.rate = rate
        self._resampler = StreamResampler(rate, block_seconds=RESAMPLER_BLOCK_SECONDS)

    def set_rate(self, rate: int) -> None:
        """Before any audio (Vosk's config message)."""
        self.rate = rate
        self._resampler = StreamResampler(rate, block_seconds=RESAMPLER_BLOCK_SECONDS)

    def push(self, samples: np.ndarray, arrived: float) -> list[Event]:
        """Audio at the client's rate, received at `arrived` (time.monotonic) -> the events it causes."""
        block = self._resampler.push(samples)
        return self.streamer.push(block, arrived) if len(block) else []

    def finish(self) -> list[Event]:
        """The end of the audio: the open utterance's final."""
        tail = self._resampler.flush()
        events = self.streamer.push(tail) if len(tail) else []
        return events + self.streamer.finish()
