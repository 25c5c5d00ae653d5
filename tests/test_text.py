import pytest

from speech_s2s.text import BLANK_ID, EOS_ID, TranscriptError, Vocabulary


def test_encode_decode_round_trip_of_librispeech_transcript():
    vocabulary = Vocabulary()
    ids = vocabulary.encode("WE'RE  ALL FINE")
    assert len(ids) == len("we're all fine")
    assert BLANK_ID not in ids and EOS_ID not in ids
    assert vocabulary.decode(ids) == "we're all fine"


def test_decode_skips_blank_and_eos_and_squeezes_spaces():
    vocabulary = Vocabulary()
    space = vocabulary.tokens.index(" ")
    ids = [BLANK_ID] + vocabulary.encode("a") + [space] * 3 + [EOS_ID] + vocabulary.encode("b")
    assert vocabulary.decode(ids) == "a b"


@pytest.mark.parametrize("text", ["CHAPTER 1", "HELLO, WORLD", "CAFÉ"])
def test_characters_outside_vocabulary_are_rejected(text):
    with pytest.raises(TranscriptError, match="outside the vocabulary"):
        Vocabulary().encode(text)


def test_vocabulary_must_start_with_blank_and_eos():
    with pytest.raises(ValueError):
        Vocabulary(("a", "b"))
