import json

import pytest

from speech_s2s.cli.main import main
from speech_s2s.evaluation.scoring import (
    ScoringError,
    paired_bootstrap,
    read_kaldi_text,
    score,
)


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


REFERENCE = {f"u{i}": "THE CAT SAT ON THE MAT" for i in range(40)}


def test_paired_bootstrap_of_a_system_against_itself_is_a_coin_toss():
    system = score(REFERENCE, {i: "the cat sat on a mat" for i in REFERENCE})
    comparison = paired_bootstrap(system, system, resamples=200)
    assert comparison.difference == 0.0 and (comparison.low, comparison.high) == (0.0, 0.0)
    assert comparison.candidate_better == 0.5  # every resample a tie


def test_paired_bootstrap_is_sure_of_a_system_better_on_every_utterance():
    baseline = score(REFERENCE, {i: "the cat sat on a mat" for i in REFERENCE})
    candidate = score(REFERENCE, dict.fromkeys(REFERENCE, "the cat sat on the mat"))
    comparison = paired_bootstrap(candidate, baseline, resamples=200)
    assert comparison.candidate_better == 1.0
    assert comparison.difference == pytest.approx(-1 / 6) and comparison.low == comparison.high == pytest.approx(-1 / 6)


def test_paired_bootstrap_interval_holds_the_observed_difference_and_is_seeded():
    # the candidate fixes 6 utterances and breaks 2 others: better, but not always in a resample
    baseline = score(REFERENCE, {i: ("the cat sat on a mat" if n < 6 else "the cat sat on the mat") for n, i in enumerate(REFERENCE)})
    candidate = score(REFERENCE, {i: ("the dog sat on the mat" if n in (10, 11) else "the cat sat on the mat") for n, i in enumerate(REFERENCE)})
    comparison = paired_bootstrap(candidate, baseline, resamples=500)
    assert comparison.difference == pytest.approx((2 - 6) / 240)
    assert comparison.low < comparison.difference < comparison.high < 0.005
    assert 0.8 < comparison.candidate_better < 1.0
    assert paired_bootstrap(candidate, baseline, resamples=500) == comparison
    assert paired_bootstrap(candidate, baseline, resamples=500, seed=1) != comparison


def test_paired_bootstrap_refuses_systems_scored_on_different_utterances():
    with pytest.raises(ScoringError, match="not scored on the same utterances"):
        paired_bootstrap(score({"a": "ONE"}, {"a": "one"}), score({"b": "ONE"}, {"b": "one"}))


def test_score_command_compares_with_a_baseline(tmp_path, capsys):
    (tmp_path / "ref").write_text("".join(f"u{i} THE CAT\n" for i in range(10)))
    (tmp_path / "new").write_text("".join(f"u{i} the cat\n" for i in range(10)))
    (tmp_path / "old").write_text("".join(f"u{i} the {'cat' if i else 'hat'}\n" for i in range(10)))
    args = ["score", "--ref", str(tmp_path / "ref"), "--hyp", str(tmp_path / "new"), "--worst", "0", "--compare", str(tmp_path / "old")]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("%WER 0.00 [ 0 / 20")
    assert lines[1].startswith(f"against {tmp_path / 'old'}: %WER 5.00 -> 0.00 (-5.00; 95 % interval ")
    assert main([*args, "--json"]) == 0
    compare = json.loads(capsys.readouterr().out)["compare"]
    assert compare["baseline"] == str(tmp_path / "old") and compare["difference"] == pytest.approx(-0.05)
    # the text report and the JSON from one run: the same JSON, written to a file
    assert main([*args, "--json-out", str(tmp_path / "summary.json")]) == 0
    assert capsys.readouterr().out.splitlines()[:2] == lines[:2]
    assert json.loads((tmp_path / "summary.json").read_text())["compare"] == compare
    assert main([*args, "--json-out", str(tmp_path / "no-folder" / "summary.json")]) == 1
    assert capsys.readouterr().err.startswith(f"speech-s2s: error: {tmp_path / 'no-folder' / 'summary.json'}: cannot write: ")
    assert main([*args[:-1], str(tmp_path / "missing")]) == 1
    assert capsys.readouterr().err == f"speech-s2s: error: {tmp_path / 'missing'}: no such file\n"
