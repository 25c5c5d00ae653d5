"""One way to build a recogniser: model file, language models, fusion weights, device and threads.

`speech-s2s transcribe`, `stream` and `decode` and `speech_s2s.load()` all call `build_decoding`
(or `build_recognizer` on top of it), so an option means the same everywhere. The bundled model's
files are named here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from speech_s2s.decoding.options import DecodingOptions

if TYPE_CHECKING:  # annotations only: building imports torch, naming the types must not
    from speech_s2s.decoding.word_fusion import WordFusionWeights
    from speech_s2s.transcribe import Recognizer

ASSETS = Path(__file__).parent / "assets"
BUNDLED_MODEL = ASSETS / "model.safetensors"
BUNDLED_SAMPLE = ASSETS / "sample.flac"
BUNDLED_LM = ASSETS / "lm.safetensors"  # character LM over the bundled model's vocabulary (recipes/campaign/lm.sh)
BUNDLED_WORD_LM = ASSETS / "word_lm.safetensors"  # word trigram the search consults at word ends (recipes/campaign/lm.sh)
BUNDLED_PUNCTUATION = ASSETS / "punctuation.safetensors"  # case-and-punctuation restorer (speech-s2s train-punctuation; RESULTS.md)


@dataclass(frozen=True)
class RecognizerConfig:
    """What a recogniser is made of. `lm`, `word_lm`: an LM file; True = the bundled one with the
    bundled model and none with any other (its vocabulary or text may differ); False = none. Greedy
    search (`decoding.beam_size` 1) uses no LM whatever these say."""

    model: str | Path | None = None  # None: the bundled model
    lm: str | Path | bool = True
    word_lm: str | Path | bool = True
    decoding: DecodingOptions = DecodingOptions()
    device: str = "cpu"
    threads: int | None = None  # torch's CPU threads; None leaves them as they are
    int8: bool = False  # int8 weights in the encoder's LSTMs and the CTC head (CPU)
    # The search's recurrent products (the decoder's, the character LM's) with int8 weights, on the CPU (other
    # devices ignore it): 6 % less decoding time for the same words but for rare near-ties (RESULTS.md).
    int8_search: bool = True
    onnx_encoder: str | Path | None = None  # encode with ONNX Runtime from this file (export-onnx of the same model)
    punctuation: str | Path | bool = True  # restore case and punctuation: True = the bundled restorer, a file, or False = none

    @property
    def int8_search_used(self) -> bool:
        """Whether the search's recurrent products are int8: asked for, and on the CPU."""
        return self.int8_search and self.device == "cpu"

    def punctuation_file(self) -> Path | None:
        if self.punctuation is False or self.punctuation is None:
            return None
        return BUNDLED_PUNCTUATION if self.punctuation is True else Path(self.punctuation)

    def lm_file(self) -> Path | None:
        return _language_model_file(self, self.lm, BUNDLED_LM)

    def word_lm_file(self) -> Path | None:
        return _language_model_file(self, self.word_lm, BUNDLED_WORD_LM)


def _language_model_file(config: RecognizerConfig, lm: str | Path | bool, bundled: Path) -> Path | None:
    if config.decoding.greedy or lm is False or lm is None:
        return None
    if lm is True:
        return bundled if config.model is None else None
    return Path(lm)


@dataclass
class Decoding:
    """A loaded model with what its search fuses: the parts a `Recognizer` or a corpus decoding runs."""

    model: object  # Seq2Seq (typed loosely so that this module imports no torch until it builds)
    lm: object | None  # the LanguageModel beam search fuses: the character LM, the word LM at word ends, or both
    options: DecodingOptions  # with the LM weights that apply (none without an LM)
    encoder: Callable | None  # an ONNX encoder in the model's place, or None
    config: RecognizerConfig

    @property
    def word_lm_weights(self) -> WordFusionWeights | None:
        """The word fusion's weights when the search consults a word LM, else None."""
        return getattr(self.lm, "weights", None) if self.config.word_lm_file() else None


def build_decoding(config: RecognizerConfig = RecognizerConfig()) -> Decoding:
    """Load the model and LMs `config` names and fix the weights the search uses. Raises ValueError
    in one line naming the file for anything unusable (ModelFileError, LMError, WordLMError, a
    mismatched ONNX encoder), ImportError when `onnx_encoder` is asked for without onnxruntime."""
    import torch

    from speech_s2s.model.files import load_model, quantize_int8

    if config.threads:
        torch.set_num_threads(config.threads)
    model = load_model(config.model or BUNDLED_MODEL, config.device)
    encoder = None
    if config.onnx_encoder:
        from speech_s2s.model.onnx_encoder import OnnxEncoder

        encoder = OnnxEncoder(config.onnx_encoder, model)  # checked against the float weights
    if config.int8:
        model = quantize_int8(model)
    if config.int8_search_used:
        model.decoder.use_int8_search()
    lm = None
    options = config.decoding
    lm_file = config.lm_file()
    if lm_file:
        from speech_s2s.decoding.char_lm import load_lm

        lm = load_lm(lm_file, vocabulary=model.vocabulary).to(config.device)
        if config.int8_search_used:
            lm.use_int8_search()
    else:
        options = options.without_lm()
    word_lm_file = config.word_lm_file()
    if word_lm_file:
        from speech_s2s.decoding.word_fusion import WordFusionWeights, fuse_word_lm
        from speech_s2s.decoding.word_lm import load_word_lm

        weights = WordFusionWeights(options.word_lm_weight, options.char_lm_share)
        lm, options = fuse_word_lm(load_word_lm(word_lm_file), model.vocabulary, options, lm, weights)
    return Decoding(model, lm, options, encoder, config)


def build_recognizer(config: RecognizerConfig = RecognizerConfig(), *, batch_size: int = 8, word_timestamps: bool = True,
                     keep_level: bool = False) -> Recognizer:
    """A `Recognizer` (speech_s2s.transcribe) for `config`; raises as `build_decoding`."""
    from speech_s2s.transcribe import Recognizer, TranscribeOptions

    built = build_decoding(config)
    options = TranscribeOptions(decoding=built.options, batch_size=batch_size, word_timestamps=word_timestamps, keep_level=keep_level)
    restorer = None
    punctuation_file = config.punctuation_file()
    if punctuation_file:
        from speech_s2s.punctuation.restore import Restorer

        restorer = Restorer.load(punctuation_file)
    return Recognizer(built.model, options, built.lm, built.encoder, restorer)


def load(
    model: str | Path | None = None, *, beam_size: int | None = None, lm: str | Path | None | bool = True, lm_weight: float | None = None,
    internal_lm_weight: float | None = None, word_lm: str | Path | None | bool = True, word_lm_weight: float | None = None,
    batch_size: int = 8, word_timestamps: bool = True, threads: int | None = None, device: str = "cpu",
    decoding: DecodingOptions | None = None, punctuation: str | Path | bool = True, int8_search: bool = True,
) -> Recognizer:
    """`speech_s2s.load()`: a Recognizer for a model file (default: the bundled model) that decodes as
    `speech-s2s transcribe` does by default (DecodingOptions()); any argument given overrides it.
    `lm`, `word_lm`: an LM file; True (default) = the bundled one with the bundled model and none
    with any other; None or False = none. `beam_size` 1 is greedy search, which uses no LM.
    `punctuation`: restore case and punctuation in the segments' text, each recording read as one text
    (True: the bundled restorer; a file; False: none), the model's own words staying in `Segment.raw_text`.
    `int8_search`: the search's recurrent products with int8 weights on the CPU (default; False: float32).
    Raises ModelFileError / LMError / WordLMError / PunctuationModelError naming the file."""
    from speech_s2s.decoding.options import with_overrides

    options = with_overrides(decoding or DecodingOptions(), beam_size=beam_size, lm_weight=lm_weight, internal_lm_weight=internal_lm_weight,
                             word_lm_weight=word_lm_weight)
    config = RecognizerConfig(model=model, lm=bool(lm) if lm in (None, False, True) else lm,
                              word_lm=bool(word_lm) if word_lm in (None, False, True) else word_lm,
                              decoding=options, device=device, threads=threads, punctuation=punctuation, int8_search=int8_search)
    return build_recognizer(config, batch_size=batch_size, word_timestamps=word_timestamps)


def with_decoding(config: RecognizerConfig, **overrides) -> RecognizerConfig:
    """`config` with some decoding options replaced, ignoring overrides given as None."""
    from speech_s2s.decoding.options import with_overrides

    return replace(config, decoding=with_overrides(config.decoding, **overrides))
