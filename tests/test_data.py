import shutil

import pytest
from conftest import MINI_CORPUS

from speech_s2s.data.batches import make_batches
from speech_s2s.data.corpus import (
    CorpusError,
    read_librispeech,
    read_manifest,
    write_manifest,
)


def test_reads_librispeech_layout(mini_corpus):
    utterances = read_librispeech(mini_corpus)
    assert [u.id for u in utterances] == ["900-1-0001", "900-1-0002", "900-1-0003", "900-1-0004"]
    assert utterances[3].text == "WE'RE ALL FINE" and utterances[3].speaker == "900"
    assert 1.0 < utterances[0].duration < 1.3


def test_manifest_round_trip(tmp_path, mini_corpus):
    utterances = read_librispeech(mini_corpus)
    write_manifest(utterances, tmp_path / "m.jsonl")
    assert read_manifest(tmp_path / "m.jsonl") == utterances


@pytest.fixture
def corpus_copy(tmp_path):
    shutil.copytree(MINI_CORPUS, tmp_path / "corpus")
    return tmp_path / "corpus"


def _edit_transcript(corpus, replace_line):
    path = corpus / "900" / "1" / "900-1.trans.txt"
    lines = path.read_text().splitlines()
    lines[1] = replace_line
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    "line, message",
    [
        ("900-1-0002", "expected '<utterance-id> TRANSCRIPT'"),
        ("900-1-0002 OPEN THE DOOR 2", "outside the vocabulary"),
        ("901-1-0002 OPEN THE DOOR", "does not start with '900-1-'"),
        ("900-1-0009 OPEN THE DOOR", "audio file 900-1-0009.flac is missing"),
    ],
)
def test_bad_transcript_line_is_reported_with_file_and_line(corpus_copy, line, message):
    path = _edit_transcript(corpus_copy, line)
    with pytest.raises(CorpusError) as error:
        read_librispeech(corpus_copy)
    assert str(error.value).startswith(f"{path}:2: ") and message in str(error.value)


def test_audio_without_transcript_is_reported(corpus_copy):
    shutil.copy(corpus_copy / "900" / "1" / "900-1-0001.flac", corpus_copy / "900" / "1" / "900-1-0005.flac")
    with pytest.raises(CorpusError, match="900-1-0005.flac: no transcript line"):
        read_librispeech(corpus_copy)


def test_missing_corpus_and_empty_directory(tmp_path):
    with pytest.raises(CorpusError, match="no such corpus directory"):
        read_librispeech(tmp_path / "absent")
    with pytest.raises(CorpusError, match="no <speaker>/<chapter>/\\*.trans.txt"):
        read_librispeech(tmp_path)


def test_batches_respect_frame_budget_cover_everything_and_are_deterministic():
    frames = [100, 350, 120, 90, 400, 80, 300, 310, 95]
    batches = make_batches(frames, max_frames=700, seed=1, epoch=2)
    assert sorted(i for b in batches for i in b) == list(range(len(frames)))
    assert all(max(frames[i] for i in b) * len(b) <= 700 for b in batches)
    assert batches == make_batches(frames, max_frames=700, seed=1, epoch=2)
    curriculum = make_batches(frames, max_frames=700, seed=1, epoch=0, shuffle=False)
    assert [max(frames[i] for i in b) for b in curriculum] == sorted(max(frames[i] for i in b) for b in curriculum)


def test_dev_subset_hears_every_speaker_and_is_the_same_every_time():
    from speech_s2s.data.batches import speaker_balanced_subset
    from speech_s2s.data.corpus import Utterance

    # 40 speakers in id order, 30 utterances each: a prefix of 200 would hear 7 of them.
    utterances = [Utterance(f"{s:04d}-1-{i:04d}", "", "", 1.0, f"{s:04d}") for s in range(40) for i in range(30)]
    chosen = speaker_balanced_subset(utterances, 200)
    assert len(chosen) == 200 and chosen == sorted(set(chosen))
    per_speaker = [sum(utterances[i].speaker == f"{s:04d}" for i in chosen) for s in range(40)]
    assert per_speaker == [5] * 40
    assert chosen == speaker_balanced_subset(utterances, 200)
    assert {utterances[i].id.split("-")[2] for i in chosen} != {"0000", "0001", "0002", "0003", "0004"}  # not each speaker's first five
    assert speaker_balanced_subset(utterances[:3], 10) == [0, 1, 2]
