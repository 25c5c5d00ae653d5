"""Verifying a split: every kind of damage counted and named, and the valid part kept."""

import shutil

from conftest import MINI_CORPUS

from speech_s2s.data.corpus import MISSING_AUDIO, TRUNCATED_AUDIO, UNTRANSCRIBED_AUDIO
from speech_s2s.data.corpus_check import decode_to_end, verify_split


def test_damaged_split_reports_each_problem_by_kind_and_name_and_keeps_the_valid_utterances(tmp_path):
    split = tmp_path / "dev-clean"
    shutil.copytree(MINI_CORPUS, split)
    chapter = split / "900" / "1"
    truncated = chapter / "900-1-0002.flac"
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2])  # the header still promises every sample
    (chapter / "900-1-0003.flac").unlink()  # a transcript line without audio
    shutil.copy(chapter / "900-1-0001.flac", chapter / "900-1-0009.flac")  # audio without a transcript line

    report = verify_split(split)
    assert [u.id for u in report.utterances] == ["900-1-0001", "900-1-0004"]
    assert report.counts() == {MISSING_AUDIO: 1, TRUNCATED_AUDIO: 1, UNTRANSCRIBED_AUDIO: 1}
    named = {p.kind: str(p) for p in report.problems}
    assert named[TRUNCATED_AUDIO].startswith(f"{truncated}: cannot be decoded to its end")
    assert named[MISSING_AUDIO] == f"{chapter / '900-1.trans.txt'}:3: audio file 900-1-0003.flac is missing"
    assert named[UNTRANSCRIBED_AUDIO] == f"{chapter / '900-1-0009.flac'}: no transcript line for this audio file"
    assert report.summary() == "dev-clean: 2 valid utterances (0.00 h, 1 speakers); 1 missing audio, 1 truncated audio, 1 untranscribed audio"

    headers_only = verify_split(split, decode_audio=False)  # the header check alone misses the truncation
    assert len(headers_only.utterances) == 3 and TRUNCATED_AUDIO not in headers_only.counts()
    assert decode_to_end(str(chapter / "900-1-0001.flac")) is None


def test_missing_split_and_split_without_transcripts_are_reported_not_raised(tmp_path):
    missing = verify_split(tmp_path / "test-other")
    assert not missing.exists and missing.summary() == f"test-other: missing ({tmp_path / 'test-other'} is not a directory)"
    (tmp_path / "empty").mkdir()
    empty = verify_split(tmp_path / "empty")
    assert empty.exists and not empty.utterances and "no <speaker>/<chapter>/*.trans.txt files" in str(empty.problems[0])
