from speech_s2s.evaluation.error_report import (
    AlignedWord,
    align_words,
    errs_text,
    recogs_text,
)
from speech_s2s.evaluation.scoring import score


def test_alignment_marks_substitutions_deletions_and_insertions_in_place():
    aligned = align_words("THE CAT SAT ON THE MAT", "THE BAT SAT THE MAT TODAY")
    assert " ".join(str(w) for w in aligned) == "THE (CAT->BAT) SAT (ON->*) THE MAT (*->TODAY)"
    assert align_words("", "OH NO") == [AlignedWord("*", "OH"), AlignedWord("*", "NO")]
    assert align_words("GONE", "") == [AlignedWord("GONE", "*")]


def test_errs_and_recogs_files_list_every_utterance_and_the_commonest_confusions():
    result = score({"u1": "THE CAT SAT", "u2": "A CAT RAN", "u3": "HELLO"}, {"u1": "THE BAT SAT", "u2": "A BAT RAN AWAY", "u3": "HELLO"})
    errs = errs_text(result, "test-clean, greedy")
    assert errs.startswith("test-clean, greedy\n%WER 42.86 [ 3 / 7, 1 ins, 0 del, 2 sub ]")
    assert "u1: 1 errors / 3 words: THE (CAT->BAT) SAT\n" in errs and "u3: 0 errors / 1 words: HELLO\n" in errs
    assert "SUBSTITUTIONS (top 30: count ref -> hyp):\n2 CAT -> BAT\n" in errs
    assert "DELETIONS (top 30: count word):\n(none)" in errs and "INSERTIONS (top 30: count word):\n1 AWAY" in errs
    assert "WORDS MOST OFTEN WRONG (top 30: count word):\n2 CAT\n1 AWAY\n" in errs
    assert recogs_text(result).splitlines()[:2] == ["u1:\tref=['THE', 'CAT', 'SAT']", "u1:\thyp=['THE', 'BAT', 'SAT']"]
