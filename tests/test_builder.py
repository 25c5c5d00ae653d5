"""speech_s2s.builder: one way from options to a recogniser, for the CLI and the Python API alike."""

from pathlib import Path

import pytest

from speech_s2s.builder import (
    BUNDLED_LM,
    BUNDLED_MODEL,
    BUNDLED_WORD_LM,
    RecognizerConfig,
    build_decoding,
    load,
)
from speech_s2s.decoding.char_lm import CharLM
from speech_s2s.decoding.options import GREEDY, DecodingOptions
from speech_s2s.decoding.word_fusion import WordFusion


@pytest.mark.parametrize("config, lm_file, word_lm_file", [
    (RecognizerConfig(), BUNDLED_LM, BUNDLED_WORD_LM),  # the bundled model takes the bundled LMs
    (RecognizerConfig(decoding=GREEDY), None, None),  # greedy search uses no LM
    (RecognizerConfig(model="mine.safetensors"), None, None),  # another model's vocabulary may differ
    (RecognizerConfig(model="mine.safetensors", lm="c.safetensors", word_lm="w.safetensors"), Path("c.safetensors"), Path("w.safetensors")),
    (RecognizerConfig(lm=False), None, BUNDLED_WORD_LM),
    (RecognizerConfig(word_lm=False), BUNDLED_LM, None),
])
def test_which_language_models_a_config_takes(config, lm_file, word_lm_file):
    assert (config.lm_file(), config.word_lm_file()) == (lm_file, word_lm_file)


def test_the_default_build_fuses_both_bundled_lms_at_the_default_weights():
    built = build_decoding()
    assert built.options == DecodingOptions()
    assert isinstance(built.lm, WordFusion) and isinstance(built.lm.char_lm, CharLM)
    assert (built.word_lm_weights.word_lm_weight, built.word_lm_weights.char_lm_share) == (0.4, 0.5)


def test_a_decoding_without_an_lm_records_no_lm_weights():
    built = build_decoding(RecognizerConfig(model=BUNDLED_MODEL))  # no bundled LMs with a named model
    assert built.lm is None and built.word_lm_weights is None
    assert built.options == DecodingOptions(lm_weight=0.0, internal_lm_weight=0.0)
    greedy = build_decoding(RecognizerConfig(decoding=GREEDY))
    assert greedy.lm is None and greedy.options.beam_size == 1 and greedy.options.lm_weight == 0.0


def test_the_word_lm_alone_takes_its_own_weight_and_no_internal_lm():
    built = build_decoding(RecognizerConfig(lm=False))
    assert isinstance(built.lm, WordFusion) and built.lm.char_lm is None
    assert (built.options.lm_weight, built.options.internal_lm_weight) == (0.4, 0.0)


def test_load_decodes_as_the_command_line_does_by_default():
    recognizer = load()
    assert recognizer.options.decoding == DecodingOptions() and isinstance(recognizer.lm, WordFusion)
    assert load(beam_size=1).options.decoding == DecodingOptions(beam_size=1, lm_weight=0.0, internal_lm_weight=0.0)
    assert load(lm_weight=0.3, word_lm=None).options.decoding.lm_weight == 0.3


def test_an_unusable_model_file_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match=rf"^{bad}: not a safetensors model file") as raised:
        build_decoding(RecognizerConfig(model=bad))
    assert "\n" not in str(raised.value)
