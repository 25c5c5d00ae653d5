"""Decoding a manifest's utterances whole: resumable after a kill, complete or absent, redone for another model."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from conftest import copied_mini_corpus, tiny_config

from speech_s2s.cli.main import main
from speech_s2s.data.corpus import write_manifest
from speech_s2s.decoding.options import DecodingOptions
from speech_s2s.evaluation.corpus_decode import (
    is_complete,
    partial_path,
    run_signature,
    signature_path,
)
from speech_s2s.model.files import save_model
from speech_s2s.model.seq2seq import Seq2Seq

REPOSITORY = Path(__file__).parent.parent


def _setup(tmp_path: Path, copies: int = 3):
    """A tiny model file and a manifest of the mini corpus's audio under 12 ids."""
    torch.manual_seed(0)
    save_model(Seq2Seq(tiny_config()), tmp_path / "model.safetensors")
    return tmp_path / "model.safetensors", copied_mini_corpus(tmp_path, copies, longer_per_copy=1.0)


def test_decoding_killed_midway_resumes_and_ends_with_the_unbroken_output(tmp_path, capsys):
    model, utterances = _setup(tmp_path)
    write_manifest(utterances, tmp_path / "test.jsonl")
    decode = ["decode", str(tmp_path / "test.jsonl"), "--model", str(model), "--batch-size", "1", "--threads", "1", "--device", "cpu"]
    assert main([*decode, "--output", str(tmp_path / "unbroken.txt")]) == 0
    unbroken = (tmp_path / "unbroken.txt").read_text()
    assert [line.split()[0] for line in unbroken.splitlines()] == sorted(u.id for u in utterances)

    last = max(utterances, key=lambda u: u.duration)  # decoded last: utterances go shortest first
    real = Path(last.audio).read_bytes()
    Path(last.audio).unlink()
    os.mkfifo(last.audio)  # reading it blocks for good: the kill lands after the other 11 are written
    output = tmp_path / "killed.txt"
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "speech_s2s.cli", *decode, "--output", str(output)], env=environment,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        if partial_path(output).is_file() and partial_path(output).read_text().count("\n") == 1 + 11:
            break
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    assert not output.exists()  # only ever complete
    with open(partial_path(output), "a") as handle:
        handle.write(f"{last.id} half a li")  # what a kill in the middle of a write would leave

    Path(last.audio).unlink()
    Path(last.audio).write_bytes(real)
    capsys.readouterr()
    assert main([*decode, "--output", str(output)]) == 0
    assert "resumed: 11 of 12 utterances were already decoded" in capsys.readouterr().err
    assert output.read_text() == unbroken and not partial_path(output).exists()

    assert main([*decode, "--output", str(output)]) == 2
    assert f"--output {output}: exists and is complete; add --overwrite" in capsys.readouterr().err


def test_a_finished_decoding_counts_only_for_the_model_and_options_that_made_it(tmp_path):
    model, utterances = _setup(tmp_path, copies=1)
    greedy, beam = DecodingOptions(beam_size=1), DecodingOptions(beam_size=2)
    from speech_s2s.evaluation.corpus_decode import decode_utterances
    from speech_s2s.model.files import load_model

    output = tmp_path / "hyp.txt"
    decode_utterances(load_model(model), utterances, output, greedy, run_signature(model, greedy, None))
    assert is_complete(output, run_signature(model, greedy, None))
    assert not is_complete(output, run_signature(model, beam, None))
    assert not is_complete(output, run_signature(model, greedy, None, level=None))  # decoded at the recorded level: another run
    partial_path(output).write_text("# speech_s2s decode {\"another\": \"run\"}\n900-1-0001 stale text\n")
    done = decode_utterances(load_model(model), utterances, output, beam, run_signature(model, beam, None))
    assert done.reused == 0 and done.decoded == 4  # a partial file of another run is started afresh
    assert signature_path(output).read_text() == run_signature(model, beam, None)
    os.utime(model, ns=(1, 1))  # the model file changed
    assert not is_complete(output, run_signature(model, beam, None))


def test_an_unreadable_utterance_is_named_the_rest_are_decoded_and_a_rerun_finishes_after_repair(tmp_path, capsys):
    model, utterances = _setup(tmp_path, copies=1)
    broken = Path(utterances[1].audio)
    good_audio = broken.read_bytes()
    broken.write_text("not audio")
    write_manifest(utterances, tmp_path / "test.jsonl")
    output = tmp_path / "hyp.txt"
    decode = ["decode", str(tmp_path / "test.jsonl"), "--model", str(model), "--output", str(output), "--threads", "1"]
    assert main(decode) == 1
    err = capsys.readouterr().err
    assert f"speech-s2s: error: {utterances[1].id}: {broken}: not a readable audio file" in err
    assert f"1 of {len(utterances)} utterances could not be read" in err
    assert not output.exists()
    decoded = [line.split()[0] for line in partial_path(output).read_text().splitlines()[1:]]
    assert sorted(decoded) == sorted(u.id for u in utterances if u is not utterances[1])
    broken.write_bytes(good_audio)
    assert main(decode) == 0
    assert "resumed: 3 of 4 utterances were already decoded" in capsys.readouterr().err
    assert [line.split()[0] for line in output.read_text().splitlines()] == sorted(u.id for u in utterances)


def test_a_word_lm_is_part_of_the_runs_signature(tmp_path, capsys):
    import json

    from speech_s2s.builder import BUNDLED_WORD_LM

    model, utterances = _setup(tmp_path, copies=1)
    write_manifest(utterances, tmp_path / "test.jsonl")
    decode = ["decode", str(tmp_path / "test.jsonl"), "--model", str(model), "--beam", "2", "--threads", "1", "--device", "cpu"]
    assert main([*decode, "--output", str(tmp_path / "plain.txt")]) == 0
    assert main([*decode, "--word-lm", str(BUNDLED_WORD_LM), "--word-lm-weight", "0.3", "--output", str(tmp_path / "words.txt")]) == 0
    plain = json.loads(signature_path(tmp_path / "plain.txt").read_text())
    words = json.loads(signature_path(tmp_path / "words.txt").read_text())
    assert "word_lm" not in plain  # the signature of runs without one is what it always was
    assert words["word_lm"][0][0] == str(BUNDLED_WORD_LM.resolve())
    assert words["word_lm"][1:] == ["in the search", {"word_lm_weight": 0.3, "char_lm_share": 0.5}]
    assert words["options"] == {**plain["options"], "lm_weight": 0.3}  # without a character LM, the word LM's weight is the search's
    assert {k: v for k, v in words.items() if k not in ("word_lm", "options")} == {k: v for k, v in plain.items() if k != "options"}
    capsys.readouterr()
    assert main([*decode, "--word-lm-weight", "0.3", "--output", str(tmp_path / "x.txt")]) == 2
    assert capsys.readouterr().err == "speech-s2s: error: --word-lm-weight needs --word-lm\n"
