import pytest

from speech_s2s.cli import main
from speech_s2s.scoring import ScoringError, read_kaldi_text, score


def test_counts_substitutions_deletions_insertions_case_insensitively():
    result = score(
        {"u1": "THE CAT SAT ON THE MAT", "u2": "HELLO WORLD"},
        {"u1": "the cat sat on a mat today", "u2": "hello"},
    )
    assert (result.substitutions, result.deletions, result.insertions, result.words) == (1, 1, 1, 8)
    assert result.wer == pytest.approx(3 / 8)
    assert result.worst(1)[0].id == "u2"


def test_missing_hypothesis_scores_as_deletions():
    result = score({"a": "ONE TWO", "b": "THREE"}, {"a": "one two"})
    assert result.missing == 1 and result.deletions == 1 and result.wer == pytest.approx(1 / 3)


def test_duplicate_ids_are_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "hyp.txt"
    path.write_text("a ONE\nb TWO\na THREE\n")
    with pytest.raises(ScoringError, match=f"{path}:3: utterance id 'a' appears twice"):
        read_kaldi_text(path)


def test_score_command_prints_wer_and_worst(tmp_path, capsys):
    (tmp_path / "ref").write_text("a THE CAT\nb A DOG\n")
    (tmp_path / "hyp").write_text("a the cat\nb a frog\n")
    assert main(["score", "--ref", str(tmp_path / "ref"), "--hyp", str(tmp_path / "hyp"), "--worst", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("%WER 25.00 [ 1 / 4, 0 ins, 0 del, 1 sub ]")
    assert "REF: A DOG" in out and "HYP: A FROG" in out


def test_empty_reference_with_empty_hypothesis_counts_no_errors():
    result = score({"a": "ONE TWO", "silence": ""}, {"a": "one two", "silence": ""})
    assert (result.substitutions, result.deletions, result.insertions, result.words) == (0, 0, 0, 2)
    assert result.wer == 0.0 and result.cer == 0.0
    assert [u.errors for u in result.per_utterance] == [0, 0]


def test_empty_reference_counts_hypothesis_words_and_characters_as_insertions():
    result = score({"a": "ONE TWO", "silence": ""}, {"a": "one two", "silence": "hello there"})
    assert (result.substitutions, result.deletions, result.insertions, result.words) == (0, 0, 2, 2)
    assert result.wer == pytest.approx(2 / 2)
    assert result.cer == pytest.approx(len("HELLO THERE") / len("ONE TWO"))
    assert {u.id: u.errors for u in result.per_utterance} == {"a": 0, "silence": 2}


def test_hypotheses_without_reference_are_reported_not_ignored():
    result = score({"a": "ONE"}, {"a": "one", "z": "noise", "y": "more"})
    assert result.extra == 2 and result.extra_ids == ("y", "z")
    assert result.wer == 0.0 and result.missing == 0
    assert "2 hypotheses not in the reference" in result.summary()
    with pytest.raises(ScoringError, match="2 hypothesis ids are not in the reference: 'y', 'z'"):
        score({"a": "ONE"}, {"a": "one", "z": "noise", "y": "more"}, strict=True)
