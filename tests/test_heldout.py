"""Accuracy of the bundled model on tests/data/heldout: ten sentences written for these tests, each
read by a different offline voice (tests/data/heldout/README.md says how each file was made). No
choice of model, LM or decoding setting looks at this set; it is only scored here.

The bounds are the corpus WER measured on 2026-12-07 (commit 047846e) rounded up to a whole point,
plus 3 points for small changes in search or arithmetic. A model or decoding change that raises a
WER past its bound must be looked at (which utterances got worse, and why), not answered by raising
the bound."""

from pathlib import Path

import pytest

from speech_s2s.evaluation.scoring import Score, read_kaldi_text, score

HELDOUT = Path(__file__).parent / "data" / "heldout"
REFERENCES = read_kaldi_text(HELDOUT / "ref.txt")
FILES = sorted(HELDOUT.glob("*.flac"))

# Default decoding (beam 16, character and word LM): measured 18.07 % (15 errors in 83 words).
DEFAULT_WER_BOUND = 0.22
# Greedy (beam 1, no LM): measured 28.92 % (24 errors in 83 words).
GREEDY_WER_BOUND = 0.32


def transcribe_heldout(recognizer) -> dict[str, str]:
    """utt-id -> text for every file of the set, in one pass sharing `recognizer`."""
    from speech_s2s import inputs

    results = list(recognizer.transcribe_files(inputs([str(path) for path in FILES])))
    assert [type(r).__name__ for r in results] == ["FileTranscript"] * len(FILES), results
    return {r.id: r.text for r in results}


@pytest.fixture(scope="module")
def scores() -> dict[str, Score]:
    import torch

    import speech_s2s

    torch.set_num_threads(1)
    return {name: score(REFERENCES, transcribe_heldout(speech_s2s.load(**kwargs)), strict=True)
            for name, kwargs in (("default", {}), ("greedy", {"beam_size": 1}))}


def _report(result: Score) -> str:
    return result.summary() + "".join(f"\n  {u.id}: {u.hypothesis!r}" for u in result.worst(5))


def test_the_set_is_what_its_reference_and_readme_say():
    assert sorted(REFERENCES) == [path.stem for path in FILES] and len(FILES) >= 8
    readme = (HELDOUT / "README.md").read_text()
    assert all(f"{path.name}" in readme for path in FILES)
    assert all(text == text.lower() and text.replace(" ", "").isalpha() for text in REFERENCES.values())


def test_default_decoding_wer_on_the_heldout_set(scores):
    result = scores["default"]
    assert (result.utterances, result.missing, result.words) == (len(FILES), 0, 83)
    assert result.wer <= DEFAULT_WER_BOUND, _report(result)


def test_greedy_wer_on_the_heldout_set(scores):
    result = scores["greedy"]
    assert (result.utterances, result.missing) == (len(FILES), 0)
    assert result.wer <= GREEDY_WER_BOUND, _report(result)


def test_default_decoding_is_no_worse_than_greedy_on_the_heldout_set(scores):
    # measured: 15 against 24 word errors
    assert scores["default"].wer <= scores["greedy"].wer, (_report(scores["default"]), _report(scores["greedy"]))

