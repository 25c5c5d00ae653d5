import json

import numpy as np

from speech_s2s.audio import SAMPLE_RATE
from speech_s2s.transcribe import MAX_SEGMENT_SECONDS, Transcript, format_transcript, split_long_audio


def test_long_audio_is_cut_at_the_quiet_point_into_pieces_under_the_limit():
    rng = np.random.default_rng(0)
    samples = rng.normal(0, 0.3, int(50 * SAMPLE_RATE)).astype(np.float32)
    quiet = int(18.0 * SAMPLE_RATE)
    samples[quiet : quiet + SAMPLE_RATE // 10] = 0.0  # 100 ms of silence inside the first cut window
    pieces = split_long_audio(samples)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(samples)
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:]))
    assert all(end - start <= MAX_SEGMENT_SECONDS * SAMPLE_RATE for start, end in pieces)
    assert quiet <= pieces[0][1] <= quiet + SAMPLE_RATE // 10


def test_short_audio_is_one_piece():
    assert split_long_audio(np.zeros(SAMPLE_RATE, dtype=np.float32)) == [(0, SAMPLE_RATE)]


def test_output_formats():
    transcript = Transcript("/data/1089-134686-0000.flac", "he hoped", 1.5, ((0.0, 1.5, "he hoped"),))
    assert format_transcript(transcript, "txt") == "1089-134686-0000 he hoped"
    row = json.loads(format_transcript(transcript, "jsonl"))
    assert row["path"] == "/data/1089-134686-0000.flac" and row["text"] == "he hoped" and row["segments"][0]["end"] == 1.5
