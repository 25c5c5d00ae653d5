"""Output formats: exact renderings of a known transcript, and resume ids read back."""

import json

from speech_s2s.decoding.alignment import Word
from speech_s2s.transcribe import FileTranscript, Segment
from speech_s2s.writers import captions, document, ids_in_output, lines

TRANSCRIPT = FileTranscript(
    "/data/talk.flac", "talk", "he hoped so that was all", 3725.5,
    (
        Segment(0.5, 1.75, "he hoped so", (Word("he", 0.5, 0.62), Word("hoped", 0.66, 1.1), Word("so", 1.2, 1.7))),
        Segment(3600.0, 3601.25, "that was all", ()),
    ),
)


def test_txt_and_tsv():
    assert lines(TRANSCRIPT, "txt") == ["talk he hoped so that was all"]
    assert document(TRANSCRIPT, "txt") == "he hoped so\nthat was all\n"
    assert lines(TRANSCRIPT, "tsv") == ["talk\t500\t1750\the hoped so", "talk\t3600000\t3601250\tthat was all"]
    assert document(TRANSCRIPT, "tsv") == "start\tend\ttext\n500\t1750\the hoped so\n3600000\t3601250\tthat was all\n"


def test_srt_and_vtt():
    assert document(TRANSCRIPT, "srt") == (
        "1\n00:00:00,500 --> 00:00:01,750\nhe hoped so\n\n2\n01:00:00,000 --> 01:00:01,250\nthat was all\n"
    )
    assert document(TRANSCRIPT, "vtt") == (
        "WEBVTT\n\n00:00:00.500 --> 00:00:01.750\nhe hoped so\n\n01:00:00.000 --> 01:00:01.250\nthat was all\n"
    )


def test_jsonl_holds_segment_and_word_times():
    row = json.loads(lines(TRANSCRIPT, "jsonl")[0])
    assert row["id"] == "talk" and row["duration"] == 3725.5
    assert row["segments"][0]["words"][1] == {"word": "hoped", "start": 0.66, "end": 1.1}
    assert row["segments"][1] == {"start": 3600.0, "end": 3601.25, "text": "that was all", "words": [], "raw_text": "that was all"}


def test_long_segments_become_captions_of_at_most_84_characters_split_at_word_times():
    words = tuple(Word(f"word{i:02d}", i * 0.5, i * 0.5 + 0.4) for i in range(30))
    segment = Segment(0.0, 15.2, " ".join(w.word for w in words), words)
    cues = captions((segment,))
    assert all(len(text) <= 84 for _, _, text in cues) and len(cues) == 3
    assert " ".join(text for _, _, text in cues) == segment.text
    assert cues[1][0] == words[12].start  # 12 words of 6 letters fill 83 characters and cues[-1][1] == 15.2


def test_silence_still_leaves_a_row_and_resume_reads_ids_back():
    silent = FileTranscript("q.wav", "q", "", 2.0, ())
    for output_format in ("txt", "jsonl", "tsv"):
        text = "".join(line + "\n" for t in (TRANSCRIPT, silent) for line in lines(t, output_format))
        assert ids_in_output(text, output_format) == {"talk", "q"}, output_format
    assert ids_in_output('{"id": "a"}\n{"id": "b", "te', "jsonl") == {"a"}  # a line cut short is not done


def test_the_command_line_offers_exactly_the_writers_formats():
    from speech_s2s import writers
    from speech_s2s.cli import transcribe as cli

    assert cli.FORMATS == writers.FORMATS  # named twice so that --help needs no torch


def test_restored_captions_show_the_restored_words_and_break_at_sentence_ends():
    raw = "and so it was done we went home then it rained all night long and we stayed in by the fire reading"
    shown = "And so it was done. We went home, then it rained all night long, and we stayed in by the fire reading."
    words = tuple(Word(w, i * 0.5, i * 0.5 + 0.4) for i, w in enumerate(raw.split()))
    cues = captions((Segment(0.0, 12.0, shown, words, raw),), limit=40)
    assert " ".join(text for _, _, text in cues) == shown
    assert cues[0][2] == "And so it was done." and cues[0][1] == words[4].end  # the sentence's end, not the 40th character
    assert all(len(text) <= 40 for _, _, text in cues)
    record = json.loads(lines(FileTranscript("a.wav", "a", shown, 12.0, (Segment(0.0, 12.0, shown, words, raw),)), "jsonl")[0])
    assert record["text"] == shown and record["segments"][0]["raw_text"] == raw
    assert [w["word"] for w in record["segments"][0]["words"]] == raw.split()
