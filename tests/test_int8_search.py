"""int8 recurrent products in beam search (the default on the CPU): the product is close to float32's,
the character LM's steps stay close, the bundled sample decodes to the same words, `--float-search` and
other devices keep float32."""

import copy

import pytest
import torch

from speech_s2s.builder import BUNDLED_SAMPLE, RecognizerConfig, build_recognizer
from speech_s2s.decoding.char_lm import CharLM, CharLMConfig
from speech_s2s.frontend.audio import load_audio
from speech_s2s.model.int8_product import Int8Product


def test_an_int8_product_is_within_a_percent_of_the_float_one():
    torch.manual_seed(0)
    weight, rows = torch.randn(1280, 320) * 0.05, torch.tanh(torch.randn(32, 320))  # rows as an LSTM's hidden states
    product = Int8Product(weight)
    exact = rows @ weight.T
    assert product(rows).shape == (32, 1280)
    assert (product(rows) - exact).norm() / exact.norm() < 0.01
    assert product(rows.T.contiguous().T).allclose(product(rows))  # any layout of the rows
    assert copy.deepcopy(product) is product  # a model copied with it shares the packed weights


def test_the_character_lm_steps_alike_with_int8_recurrent_products():
    torch.manual_seed(0)
    lm = CharLM(CharLMConfig(embedding_size=16, hidden_size=64, num_layers=2)).eval()
    tokens = torch.tensor([1, 2, 3, 4])
    state = (torch.tanh(torch.randn(2, 4, 64)), torch.randn(2, 4, 64))  # a state after some letters
    exact, exact_state = lm.step(tokens, state)
    lm.use_int8_search()
    near, near_state = lm.step(tokens, state)
    assert not torch.equal(near, exact)  # the int8 products did run
    assert (near.exp() - exact.exp()).abs().max() < 0.01
    assert torch.allclose(near_state[0], exact_state[0], atol=0.02)
    lm.int8_recurrent = []  # back to float32
    assert torch.equal(lm.step(tokens, state)[0], exact)


@pytest.fixture(scope="module")
def recognizers():
    torch.set_num_threads(1)
    return build_recognizer(RecognizerConfig(punctuation=False, int8_search=False)), build_recognizer(RecognizerConfig(punctuation=False))


def test_int8_search_is_the_default_and_decodes_the_bundled_sample_to_the_same_words(recognizers):
    plain, int8 = recognizers
    assert int8.model.decoder.int8_recurrent is not None and plain.model.decoder.int8_recurrent is None
    audio = load_audio(BUNDLED_SAMPLE)
    results = [[s.text for s in r.decode_segments(list(r.segments_of([audio])))] for r in recognizers]
    assert results[0] == results[1] == ["and your brother and sister were not very kind"]


def test_float_search_turns_it_off(monkeypatch, capsys):
    from speech_s2s import builder
    from speech_s2s.cli.main import main

    built = []
    real = builder.build_decoding
    monkeypatch.setattr(builder, "build_decoding", lambda config: built.append(real(config)) or built[-1])
    for flags in ([], ["--float-search"]):
        assert main(["transcribe", str(BUNDLED_SAMPLE), "--beam", "1", "--no-punctuation", *flags]) == 0
    assert [b.model.decoder.int8_recurrent is not None for b in built] == [True, False]
    first, second = capsys.readouterr().out.splitlines()
    assert first == second == "sample and your brother and sister were not bury kind"  # greedy: no LM to say "very"
