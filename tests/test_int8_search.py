"""int8 recurrent products in beam search (the default on the CPU): the product is close to float32's,
the character LM's steps stay close, the bundled sample decodes to the same words, `--float-search` and
other devices keep float32."""

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
    # each row's product is that row's alone: the same batched with other rows as by itself
    assert torch.equal(product(rows)[3:4], product(rows[3:4])) and torch.equal(product(rows[:5])[4], product(rows)[4])
    assert torch.equal(product(torch.zeros(2, 320)), torch.zeros(2, 1280))


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


def test_a_segment_decodes_alike_alone_and_batched(recognizers):
    """A live final is the offline decoding of its segment, which `transcribe` decodes in a batch: the
    int8 products must not let the batch change a segment's search (each row is quantised alone; one
    scale for the whole batch changed the scores, and words now and then)."""
    import numpy as np

    from speech_s2s.decoding.search import decode_encoded
    from speech_s2s.frontend.level import into_range

    _, int8 = recognizers
    audio = load_audio(BUNDLED_SAMPLE)
    slower = np.interp(np.arange(0, len(audio) - 1, 0.9), np.arange(len(audio)), audio).astype(np.float32)
    variants = [audio, 0.3 * audio, slower, audio[: len(audio) // 2]]

    def search(waves):
        feats, lengths = int8.model.features(torch.nn.utils.rnn.pad_sequence(waves, batch_first=True), torch.tensor([len(w) for w in waves]))
        return [(r.text, r.score) for r in decode_encoded(int8.model, int8.encode(feats, lengths), int8.options.decoding, int8.lm)]

    waves = [torch.from_numpy(into_range(v, int8.level)) for v in variants]
    batched, alone = search(waves), [search([w])[0] for w in waves]
    assert [text for text, _ in batched] == [text for text, _ in alone]
    # float32 sums run in another order in a batch (2e-6 apart here); one int8 scale for the batch moved
    # the scores by 5e-3
    assert all(abs(a - b) < 1e-4 for (_, a), (_, b) in zip(batched, alone)), (batched, alone)
