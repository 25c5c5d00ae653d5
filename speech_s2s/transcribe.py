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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from speech_s2s.decoding.alignment import Word, word_times
from speech_s2s.frontend.audio import SAMPLE_RATE, AudioError, audio_info, stream_audio
from speech_s2s.model.encoder import EncoderOutput
from speech_s2s.inputs import InputFile
from speech_s2s.frontend.level import LevelConfig, decoding_level, into_range
from speech_s2s.model.seq2seq import Seq2Seq
from speech_s2s.decoding.search import DecodingOptions, LanguageModel, decode_encoded
from speech_s2s.text import Vocabulary
from speech_s2s.frontend.vad import Segment as AudioSegment
from speech_s2s.frontend.vad import Segmenter, SegmenterConfig, SpeechDetector

log = logging.getLogger(__name__)

ASSETS = Path(__file__).parent / "assets"
BUNDLED_MODEL = ASSETS / "model.safetensors"
BUNDLED_SAMPLE = ASSETS / "sample.flac"
BUNDLED_LM = ASSETS / "lm.safetensors"  # character LM over the bundled model's vocabulary (recipes/campaign/lm.sh)
BUNDLED_WORD_LM = ASSETS / "word_lm.safetensors"  # word trigram the search consults at word ends (recipes/campaign/lm.sh)
# How files are decoded unless told otherwise: joint CTC/attention beam search with the LM. On the
# bundled model's dev set it makes 33.8 % word errors where greedy search makes 42.0 %, at about
# twice greedy's time (BENCHMARKS.md). The LM weight is the better of 0.3 and 0.5 on both dev sets
# and on 18 minutes of dev-tts read as one recording; CTC's share is in DecodingOptions.
# Beam 16 since the eighteenth session's word LM: against 8, on the real voice 1.7 points fewer
# errors with the word LM re-ranking the n-best list, 1.5 with it inside the search (at weight 0.5); 1.3x the
# time (still about 19x faster than real time on one thread).
DEFAULT_BEAM = 16
DEFAULT_LM_WEIGHT = 0.5
# The decoder's internal LM subtracted beside the LM (DecodingOptions.internal_lm_weight): on the
# real-voice dev set 1.1 points fewer word errors, better on three of the four synthetic dev sets
# too (dev-kokoro 0.3 worse, within noise; BENCHMARKS.md).
DEFAULT_INTERNAL_LM_WEIGHT = 0.15
# The word LM inside the search (word_fusion.py): its weight, and the share of the character LM's
# weight each finished word keeps beside it. Chosen on the dev sets (BENCHMARKS.md): at 0.5, as
# the n-best re-ranking had it, dev-short was 2.1 points worse (95 % interval +0.3 .. +4.6); at 0.4
# no dev set is worse beyond noise and the real voice gains 0.9.
DEFAULT_WORD_LM_WEIGHT = 0.4
DEFAULT_CHAR_LM_SHARE = 0.5


def fusion_weights(fused: bool, lm_weight: float | None = None, internal_lm_weight: float | None = None) -> dict[str, float]:
    """`DecodingOptions`' LM weights for a decoding with an LM (`fused`) or without: those given,
    else the defaults; none without an LM."""
    if not fused:
        return {"lm_weight": 0.0, "internal_lm_weight": 0.0}
    return {"lm_weight": DEFAULT_LM_WEIGHT if lm_weight is None else lm_weight,
            "internal_lm_weight": DEFAULT_INTERNAL_LM_WEIGHT if internal_lm_weight is None else internal_lm_weight}


@dataclass(frozen=True)
class Segment:
    start: float  # seconds from the start of the file
    end: float
    text: str
    words: tuple[Word, ...] = ()


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
class _Pending:
    """A file on its way through the pipeline."""

    input: InputFile
    texts: dict[int, Segment] = field(default_factory=dict)
    segments: int = 0  # cut so far
    read: bool = False  # all its audio has been read and cut
    samples: int = 0
    error: str | None = None

    def done(self) -> bool:
        return self.error is not None or (self.read and len(self.texts) == self.segments)

    def result(self) -> FileTranscript | FailedFile:
        if self.error is not None:
            return FailedFile(self.input.path, self.input.id, self.error)
        segments = tuple(self.texts[i] for i in range(self.segments))
        text = " ".join(s.text for s in segments if s.text)
        return FileTranscript(self.input.path, self.input.id, text, self.samples / SAMPLE_RATE, segments)


class Recognizer:
    """A model with its decoding options: transcribes files or arrays of any length."""

    def __init__(self, model: Seq2Seq, options: TranscribeOptions = TranscribeOptions(), lm: LanguageModel | None = None,
                 encoder: Callable[[torch.Tensor, torch.Tensor], EncoderOutput] | None = None):
        """lm: fused into beam search (a character LM, or one with a word LM: `with_word_lm`).
        encoder: computes `model.encode` another way (an `onnx_encoder.OnnxEncoder`); full context only."""
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
        segmenter = Segmenter(self.options.segmenter, self._detector)
        for block in blocks:
            yield from segmenter.push(block)
        yield from segmenter.flush()

    # ------------------------------------------------------------------ decoding
    @torch.no_grad()
    def decode_segments(self, segments: list[AudioSegment]) -> list[Segment]:
        """Decode segments (in any order) as batches of similar length; results in input order."""
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
                results[i] = Segment(round(start, 3), round(end, 3), result.text, words)
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
        every earlier input are done. Segments of neighbouring files share batches."""
        window = self.options.batch_size  # the first results come after one batch, later ones in bigger windows
        pending: deque[_Pending] = deque()
        queue: list[tuple[_Pending, int, AudioSegment]] = []
        for item in inputs:
            state = _Pending(item)
            pending.append(state)
            try:
                for segment in self.segments_of(self._counted(stream_audio(item.path), state)):
                    queue.append((state, state.segments, segment))
                    state.segments += 1
                    if len(queue) >= window:
                        self._decode_queue(queue)
                        queue, window = [], self.options.batch_size * self.options.read_ahead
                        yield from _ready(pending)
                state.read = True
            except AudioError as error:
                state.error = str(error)
            except Exception as error:  # a reader's surprise must not end the batch; --verbose shows where
                log.debug("reading %s failed", item.path, exc_info=True)
                state.error = f"{item.path}: unexpected {type(error).__name__} while reading ({str(error).splitlines()[0] if str(error) else ''})"
            queue = [entry for entry in queue if entry[0].error is None]
            if not queue:
                yield from _ready(pending)
        self._decode_queue(queue)
        yield from _ready(pending)

    def _decode_queue(self, queue: list[tuple[_Pending, int, AudioSegment]]) -> None:
        for (state, index, _), segment in zip(queue, self.decode_segments([entry[2] for entry in queue])):
            state.texts[index] = segment

    @staticmethod
    def _counted(blocks: Iterator[np.ndarray], state: _Pending) -> Iterator[np.ndarray]:
        for block in blocks:
            state.samples += len(block)
            yield block


def language_model_file(model: str | Path | None, beam_size: int, lm: str | Path | bool | None = True,
                        bundled: Path = BUNDLED_LM) -> str | Path | None:
    """The LM a decoding uses: none for greedy search (`beam_size` 1) or with `lm` None/False; the
    file `lm` names; with `lm` True, the `bundled` LM (the character LM, or BUNDLED_WORD_LM) for the
    bundled model (`model` None) and none for any other, whose vocabulary or text may differ."""
    if beam_size == 1 or not lm:
        return None
    if lm is True:
        return bundled if model is None else None
    return lm


def with_word_lm(word_lm_file: str | Path | None, vocabulary: Vocabulary, decoding: DecodingOptions, lm: LanguageModel | None,
                 word_lm_weight: float | None = None) -> tuple[LanguageModel | None, DecodingOptions]:
    """The LM beam search fuses and the decoding options it needs: with a word LM file, the word LM
    at word ends beside `lm` (word_fusion.py); without one (None), `lm` and `decoding` as they are.
    Raises WordLMError."""
    if word_lm_file is None:
        return lm, decoding
    from speech_s2s.decoding.word_fusion import WordFusionWeights, fuse_word_lm
    from speech_s2s.decoding.word_lm import load_word_lm

    weights = WordFusionWeights(DEFAULT_WORD_LM_WEIGHT if word_lm_weight is None else word_lm_weight, DEFAULT_CHAR_LM_SHARE)
    return fuse_word_lm(load_word_lm(word_lm_file), vocabulary, decoding, lm, weights)


def load_recognizer(
    model: str | Path | None = None, *, beam_size: int = DEFAULT_BEAM, lm: str | Path | None | bool = True,
    lm_weight: float = DEFAULT_LM_WEIGHT, internal_lm_weight: float = DEFAULT_INTERNAL_LM_WEIGHT,
    word_lm: str | Path | None | bool = True, word_lm_weight: float = DEFAULT_WORD_LM_WEIGHT,
    batch_size: int = 8, word_timestamps: bool = True, threads: int | None = None, device: str = "cpu",
) -> Recognizer:
    """A Recognizer for a model file (default: the bundled model), decoding by beam search with a
    character LM by default, less the decoder's internal LM at `internal_lm_weight` beside it, and a
    word LM at word ends (word_fusion.py). `lm`, `word_lm`: an LM file; True (default) = the bundled
    one with the bundled model and none with any other (its vocabulary may differ); None or False =
    none. `beam_size` 1 is greedy search, which uses no LM. Raises ModelFileError / LMError /
    WordLMError naming the file."""
    from speech_s2s.model.files import load_model

    if threads:
        torch.set_num_threads(threads)
    recogniser_model = load_model(model or BUNDLED_MODEL, device)
    language_model = None
    lm_file = language_model_file(model, beam_size, lm)
    if lm_file:
        from speech_s2s.decoding.char_lm import load_lm

        language_model = load_lm(lm_file, vocabulary=recogniser_model.vocabulary).to(device)
    decoding = DecodingOptions(beam_size=beam_size, **fusion_weights(language_model is not None, lm_weight, internal_lm_weight))
    language_model, decoding = with_word_lm(language_model_file(model, beam_size, word_lm, BUNDLED_WORD_LM), recogniser_model.vocabulary,
                                            decoding, language_model, word_lm_weight)
    options = TranscribeOptions(decoding=decoding, batch_size=batch_size, word_timestamps=word_timestamps)
    return Recognizer(recogniser_model, options, language_model)


def _ready(pending: deque[_Pending]) -> Iterator[FileTranscript | FailedFile]:
    while pending and pending[0].done():
        yield pending.popleft().result()
