"""The `speech-s2s` commands, run as a user would (in-process through cli.main)."""

import json
import shutil

import numpy as np
import pytest
import soundfile
import torch
from conftest import MINI_CORPUS

from speech_s2s.builder import (
    BUNDLED_LM,
    BUNDLED_MODEL,
    BUNDLED_PUNCTUATION,
    BUNDLED_SAMPLE,
    BUNDLED_WORD_LM,
)
from speech_s2s.cli.main import main
from speech_s2s.decoding.options import DecodingOptions
from speech_s2s.punctuation.restore import Restorer

# What the bundled model hears in the bundled sample (a held-out voice reading a held-out sentence).
SAMPLE_ID = BUNDLED_SAMPLE.name.split(".")[0]
SAMPLE_TEXT = (BUNDLED_SAMPLE.parent / "sample.txt").read_text().split(maxsplit=1)[1].strip().lower()
# ... and what a person reads: the same words with case and punctuation restored (the default).
SAMPLE_SHOWN = Restorer.load(BUNDLED_PUNCTUATION).restore(SAMPLE_TEXT)


def test_bundled_model_and_lms_are_small_enough_to_ship():
    files = (BUNDLED_MODEL, BUNDLED_LM, BUNDLED_WORD_LM, BUNDLED_PUNCTUATION)
    assert sum(path.stat().st_size for path in files) <= 25 * 1024 * 1024


@pytest.mark.parametrize("flags", [[], ["--beam", "4", "--no-lm"]])
def test_transcribe_bundled_sample_with_bundled_model(capsys, flags):
    assert main(["transcribe", str(BUNDLED_SAMPLE), *flags]) == 0  # default: beam 8 with the bundled LM
    assert capsys.readouterr().out == f"{SAMPLE_ID} {SAMPLE_SHOWN}\n"


def test_no_punctuation_gives_the_raw_words_and_scoring_is_the_same(tmp_path, capsys):
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--no-punctuation"]) == 0
    assert capsys.readouterr().out == f"{SAMPLE_ID} {SAMPLE_TEXT}\n"
    assert SAMPLE_SHOWN != SAMPLE_TEXT and normalize_scored(SAMPLE_SHOWN) == normalize_scored(SAMPLE_TEXT)
    reference, restored, raw = (tmp_path / name for name in ("ref.txt", "restored.txt", "raw.txt"))
    reference.write_text(f"{SAMPLE_ID} {SAMPLE_TEXT.replace('very', 'quite')}\n")
    restored.write_text(f"{SAMPLE_ID} {SAMPLE_SHOWN}\n")
    raw.write_text(f"{SAMPLE_ID} {SAMPLE_TEXT}\n")
    summaries = []
    for hypothesis in (restored, raw):
        assert main(["score", "--ref", str(reference), "--hyp", str(hypothesis)]) == 0
        summaries.append(capsys.readouterr().out)
    assert summaries[0] == summaries[1] and "11.1" in summaries[0]  # one word in nine, either way


def normalize_scored(text: str) -> str:
    from speech_s2s.evaluation.scoring import normalize_for_scoring

    return normalize_for_scoring(text)


def test_greedy_search_gives_the_sample_its_id_and_some_words(capsys):
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--beam", "1"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n") and out.count("\n") == 1
    utterance, text = out.rstrip("\n").split(" ", 1)
    assert utterance == SAMPLE_ID and text.split() and text == text.strip()


def test_greedy_search_through_the_cli_stays_within_its_wer_bound_on_the_heldout_set(tmp_path, capsys):
    """Greedy search is the fast path, not the accurate one: its accuracy is measured on the held-out
    set of several voices (tests/test_heldout.py has the bound and how it was measured), not on one
    sentence with a tolerance."""
    from test_heldout import FILES, GREEDY_WER_BOUND, HELDOUT

    from speech_s2s.evaluation.scoring import read_kaldi_text, score

    (tmp_path / "files.txt").write_text("".join(f"{path}\n" for path in FILES))
    assert main(["transcribe", "--file-list", str(tmp_path / "files.txt"), "--beam", "1", "--output", str(tmp_path / "hyp.txt")]) == 0
    hypotheses = read_kaldi_text(tmp_path / "hyp.txt")
    result = score(read_kaldi_text(HELDOUT / "ref.txt"), hypotheses, strict=True)
    assert sorted(hypotheses) == [path.stem for path in FILES] and result.missing == 0
    assert result.wer <= GREEDY_WER_BOUND, result.summary()
    capsys.readouterr()
    assert main(["score", "--ref", str(HELDOUT / "ref.txt"), "--hyp", str(tmp_path / "hyp.txt")]) == 0
    assert capsys.readouterr().out.startswith(f"%WER {100 * result.wer:.2f} [ ")


def test_default_decoding_is_beam_search_with_the_bundled_lms_and_greedy_uses_none(monkeypatch):
    from speech_s2s.decoding.char_lm import CharLM
    from speech_s2s.decoding.word_fusion import WordFusion
    from speech_s2s.transcribe import Recognizer

    defaults = DecodingOptions()

    made = []
    original = Recognizer.__init__

    def spy(self, model, options, lm=None, encoder=None, restorer=None):
        made.append((options.decoding, lm))
        original(self, model, options, lm, encoder, restorer)

    def word_lm_weight(lm) -> float | None:  # with a character LM inside (None: the word LM alone)
        assert isinstance(lm, WordFusion)
        return lm.weights.word_lm_weight if isinstance(lm.char_lm, CharLM) else None

    monkeypatch.setattr(Recognizer, "__init__", spy)
    assert main(["transcribe", str(BUNDLED_SAMPLE)]) == 0
    decoding, lm = made[-1]
    assert decoding == defaults  # every field: the one home of the defaults is what runs
    assert (lm.weights.word_lm_weight, lm.weights.char_lm_share) == (defaults.word_lm_weight, defaults.char_lm_share)
    assert word_lm_weight(lm) == defaults.word_lm_weight
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--no-word-lm"]) == 0
    assert isinstance(made[-1][1], CharLM)
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--word-lm-weight", "0.3"]) == 0
    assert word_lm_weight(made[-1][1]) == 0.3
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--lm-weight", "0.7"]) == 0
    assert made[-1][0].lm_weight == 0.7 and made[-1][1].word_scale == pytest.approx(defaults.word_lm_weight / 0.7)
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--beam", "1"]) == 0
    assert (made[-1][0].beam_size, made[-1][1]) == (1, None)
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--no-lm", "--no-word-lm"]) == 0
    assert (made[-1][0].beam_size, made[-1][0].lm_weight, made[-1][1]) == (defaults.beam_size, 0.0, None)
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--no-lm"]) == 0  # the word LM alone, at its own weight
    assert (made[-1][0].lm_weight, made[-1][0].internal_lm_weight, word_lm_weight(made[-1][1])) == (defaults.word_lm_weight, 0.0, None)
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--model", str(BUNDLED_MODEL)]) == 0  # another model: its vocabulary may differ
    assert made[-1][1] is None
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--model", str(BUNDLED_MODEL), "--word-lm", str(BUNDLED_WORD_LM)]) == 0
    assert word_lm_weight(made[-1][1]) is None


def test_transcribe_and_stream_default_to_the_product_beam():
    from speech_s2s.cli.main import build_parser

    commands = [action for action in build_parser()._subparsers._group_actions if action.choices][0].choices
    assert commands["transcribe"].get_default("beam") == commands["stream"].get_default("beam") == DecodingOptions().beam_size == 16


def test_the_weights_the_help_states_are_the_defaults():
    """--help (torch-free) states DecodingOptions' defaults, for transcribe and for decode --lm."""
    from speech_s2s.cli.main import build_parser

    defaults = DecodingOptions()
    commands = [action for action in build_parser()._subparsers._group_actions if action.choices][0].choices
    for command in ("transcribe", "decode"):
        for dest, default in (("lm_weight", defaults.lm_weight), ("internal_lm_weight", defaults.internal_lm_weight),
                              ("word_lm_weight", defaults.word_lm_weight), ("ctc_weight", defaults.ctc_weight)):
            help_text = next(a.help for a in commands[command]._actions if a.dest == dest)
            assert f"(default {default:g}" in help_text, (command, help_text)
    assert (defaults.lm_weight, defaults.internal_lm_weight, defaults.word_lm_weight, defaults.ctc_weight) == (0.5, 0.15, 0.4, 0.2)


@pytest.mark.parametrize("flags, error", [
    (["--internal-lm-weight", "0.1"], "--internal-lm-weight needs --lm"),
    (["--beam", "1", "--lm", "x.safetensors"],
        "--lm, --lm-weight, --internal-lm-weight, --word-lm, --word-lm-weight and --ctc-weight only apply to beam search"),
    (["--beam", "1", "--word-lm", "x.safetensors"], "--lm, --lm-weight, --internal-lm-weight, --word-lm, --word-lm-weight and --ctc-weight only apply"),
])
def test_decode_refuses_lm_options_it_cannot_use(tmp_path, capsys, flags, error):
    assert main(["decode", "missing.jsonl", "--model", "x.safetensors", "--output", str(tmp_path / "hyp.txt"), "--beam", "4", *flags]) == 2
    _one_line_error(capsys, error)


def test_int8_model_transcribes_the_bundled_sample_alike(capsys):
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--int8", "--threads", "1"]) == 0
    assert capsys.readouterr().out == f"{SAMPLE_ID} {SAMPLE_SHOWN}\n"


def test_bad_file_in_batch_fails_alone_and_the_rest_are_transcribed(tmp_path, capsys):
    broken = tmp_path / "broken.flac"
    broken.write_bytes(b"not audio" * 100)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    good = tmp_path / "good.flac"
    shutil.copy(BUNDLED_SAMPLE, good)
    code = main(["transcribe", str(broken), str(good), str(empty), "--output-format", "jsonl"])
    captured = capsys.readouterr()
    assert code == 1
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert [(line["path"], line["text"]) for line in lines] == [(str(good), SAMPLE_SHOWN)]
    errors = captured.err.splitlines()
    assert errors[0].startswith(f"speech-s2s: error: {broken}: not a readable audio file")
    assert errors[1] == f"speech-s2s: error: {empty}: empty file"
    assert errors[2] == "speech-s2s: error: 2 of 3 inputs could not be transcribed"


def test_file_list_and_output_file(tmp_path):
    listing = tmp_path / "files.txt"
    listing.write_text(f"{BUNDLED_SAMPLE}\n")
    out = tmp_path / "hyp.txt"
    assert main(["transcribe", "--file-list", str(listing), "--output", str(out)]) == 0
    assert out.read_text() == f"{SAMPLE_ID} {SAMPLE_SHOWN}\n"


def test_foreign_model_file_is_a_one_line_error(tmp_path, capsys):
    bogus = tmp_path / "model.safetensors"
    bogus.write_bytes(b"\x00" * 64)
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--model", str(bogus)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"speech-s2s: error: {bogus}: not a safetensors model file") and err.count("\n") == 1


def test_prepare_writes_manifest_and_references(tmp_path, capsys):
    assert main(["prepare", str(MINI_CORPUS), "--out", str(tmp_path / "m.jsonl"), "--text", str(tmp_path / "ref.txt"), "--files", str(tmp_path / "files")]) == 0
    assert (tmp_path / "files").read_text().splitlines()[3] == str(MINI_CORPUS / "900" / "1" / "900-1-0004.flac")
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 4
    assert (tmp_path / "ref.txt").read_text().splitlines()[0] == "900-1-0001 THE CAT SAT"


def test_train_command_on_a_broken_corpus_names_file_and_line(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    shutil.copytree(MINI_CORPUS, corpus)
    transcript = corpus / "900" / "1" / "900-1.trans.txt"
    transcript.write_text(transcript.read_text().replace("900-1-0003 SHE WAS HERE", "900-1-0003"))
    assert main(["train", "--train", str(corpus), "--dev", str(MINI_CORPUS), "--exp", str(tmp_path / "exp")]) == 1
    assert f"{transcript}:3: expected '<utterance-id> TRANSCRIPT'" in capsys.readouterr().err


def test_train_then_transcribe_end_to_end(tmp_path, capsys):
    exp = tmp_path / "exp"
    args = ["train", "--train", str(MINI_CORPUS), "--dev", str(MINI_CORPUS), "--exp", str(exp), "--encoder-hidden", "32",
            "--encoder-layers", "3", "--decoder-hidden", "64", "--max-frames", "400", "--threads", "1"]
    assert main(args + ["--max-steps", "3"]) == 0
    assert main(args + ["--max-steps", "5", "--resume"]) == 0  # continues the same run from step 3 to step 5
    assert torch.load(exp / "checkpoint.pt", weights_only=True)["state"]["step"] == 5
    assert main(["transcribe", str(MINI_CORPUS / "900" / "1" / "900-1-0001.flac"), "--model", str(exp / "last.safetensors")]) == 0
    assert capsys.readouterr().out.startswith("900-1-0001")


def test_train_init_starts_from_the_given_model_and_rejects_a_second_shape(tmp_path, capsys):
    base = ["--train", str(MINI_CORPUS), "--dev", str(MINI_CORPUS), "--max-frames", "400", "--threads", "1"]
    first = tmp_path / "first"
    assert main(["train", *base, "--exp", str(first), "--encoder-hidden", "32", "--encoder-layers", "3", "--decoder-hidden", "64", "--max-steps", "2"]) == 0
    second = tmp_path / "second"
    assert main(["train", *base, "--exp", str(second), "--init", str(first / "last.safetensors"), "--max-steps", "0"]) == 0
    started = torch.load(second / "checkpoint.pt", weights_only=True)["model"]
    trained = torch.load(first / "checkpoint.pt", weights_only=True)["model"]
    assert started.keys() == trained.keys()
    for name in trained:  # weights and normalisation statistics carried over unchanged
        assert torch.equal(started[name], trained[name]), name
    assert json.loads((second / "model_config.json").read_text())["encoder"]["hidden_size"] == 32
    assert main(["train", *base, "--exp", str(second), "--init", str(first / "last.safetensors"), "--max-steps", "1", "--resume"]) == 0
    assert torch.load(second / "checkpoint.pt", weights_only=True)["state"]["step"] == 1
    # the training audio's level band: measured by the first run, kept by the fine-tune (resumed too)
    from speech_s2s.frontend.level import measure_training_range
    from speech_s2s.model.files import read_model_info

    band = measure_training_range(sorted(MINI_CORPUS.rglob("*.flac")))
    assert band is not None and read_model_info(first / "last.safetensors").input_level_db == band
    assert read_model_info(second / "last.safetensors").input_level_db == band
    capsys.readouterr()
    assert main(["train", *base, "--exp", str(tmp_path / "third"), "--init", str(first / "last.safetensors"), "--encoder-hidden", "64"]) == 1
    assert "--init takes the model's shape from MODEL" in capsys.readouterr().err


def test_train_utterance_mean_norm_travels_in_the_model_and_a_resume_cannot_add_it(tmp_path, capsys):
    from speech_s2s.model.files import load_model

    base = ["--train", str(MINI_CORPUS), "--dev", str(MINI_CORPUS), "--max-frames", "400", "--threads", "1"]
    first = tmp_path / "first"
    assert main(["train", *base, "--exp", str(first), "--encoder-hidden", "32", "--encoder-layers", "3", "--decoder-hidden", "64", "--max-steps", "1"]) == 0
    second = tmp_path / "second"
    tuned = ["train", *base, "--exp", str(second), "--init", str(first / "last.safetensors"), "--utterance-mean-norm"]
    assert main([*tuned, "--max-steps", "1"]) == 0
    assert main([*tuned, "--max-steps", "2", "--resume"]) == 0
    model = load_model(second / "last.safetensors")
    assert model.config.features.utterance_mean and model.normalizer.utterance_mean
    assert not load_model(first / "last.safetensors").normalizer.utterance_mean
    capsys.readouterr()
    assert main(["train", *base, "--exp", str(first), "--utterance-mean-norm", "--max-steps", "2", "--resume"]) == 1
    assert "--utterance-mean-norm was not set when the run started" in capsys.readouterr().err
    assert torch.load(first / "checkpoint.pt", weights_only=True)["state"]["step"] == 1


def test_train_augment_records_its_config_and_rejects_missing_sources(tmp_path, capsys):
    noise = tmp_path / "noise"
    noise.mkdir()
    shutil.copy(MINI_CORPUS / "900" / "1" / "900-1-0002.flac", noise / "n.flac")
    exp = tmp_path / "exp"
    args = ["train", "--train", str(MINI_CORPUS), "--dev", str(MINI_CORPUS), "--exp", str(exp), "--encoder-hidden", "32",
            "--encoder-layers", "3", "--decoder-hidden", "64", "--max-frames", "400", "--threads", "1", "--dev-max-utterances", "1"]
    assert main(args + ["--max-steps", "1", "--augment", "strong", "--noise-dir", str(noise)]) == 0
    augment = json.loads((exp / "train_config.json").read_text())["augment"]
    assert augment["noise_dirs"] == [str(noise.resolve())] and augment["noise_prob"] == 0.7 and augment["rir_bank"] is None
    capsys.readouterr()
    assert main(args + ["--max-steps", "1", "--rir-bank", str(tmp_path / "none.npz")]) == 1
    assert main(args + ["--max-steps", "1", "--augment", "--rir-bank", str(tmp_path / "none.npz")]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "speech-s2s: error: --noise-dir and --rir-bank need --augment", f"speech-s2s: error: {tmp_path / 'none.npz'}: no such file"]


def test_every_epoch_leaves_a_snapshot_that_average_combines(tmp_path, capsys):
    exp = tmp_path / "exp"
    assert main(["train", "--train", str(MINI_CORPUS), "--dev", str(MINI_CORPUS), "--exp", str(exp), "--encoder-hidden", "32",
                 "--encoder-layers", "3", "--decoder-hidden", "64", "--max-frames", "400", "--threads", "1", "--epochs", "2"]) == 0
    snapshots = [str(exp / "epoch001.safetensors"), str(exp / "epoch002.safetensors")]
    averaged = tmp_path / "averaged.safetensors"
    assert main(["average", *snapshots, "--out", str(averaged)]) == 0
    assert main(["transcribe", str(MINI_CORPUS / "900" / "1" / "900-1-0001.flac"), "--model", str(averaged)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith("900-1-0001")
    not_a_model = tmp_path / "notes.safetensors"
    not_a_model.write_text("hello")
    assert main(["average", snapshots[0], str(not_a_model), "--out", str(tmp_path / "x.safetensors")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"speech-s2s: error: {not_a_model}: not a safetensors model file") and err.count("\n") == 1
    assert not (tmp_path / "x.safetensors").exists()
    assert main(["average", *snapshots, "--weights", "1", "--out", str(tmp_path / "x.safetensors")]) == 1
    assert capsys.readouterr().err == "speech-s2s: error: 1 weights for 2 model files; give one weight per file\n"
    assert main(["average", *snapshots, "--weights", "0", "1", "--out", str(averaged)]) == 0
    assert "weighted mean of 2 models" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- transcribe: issue 9
def _one_line_error(capsys, starts: str) -> None:
    err = capsys.readouterr().err
    assert err.startswith(f"speech-s2s: error: {starts}") and err.count("\n") == 1, err


@pytest.mark.parametrize("flags", [["--lm", "x.safetensors"], ["--no-lm"], ["--ctc-weight", "0.5"], ["--length-bonus", "1"],
                                   ["--internal-lm-weight", "0.1"]])
def test_options_that_only_apply_to_beam_search_are_refused_with_greedy(capsys, flags):
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--beam", "1", *flags]) == 2
    _one_line_error(capsys, f"{flags[0]} only applies to beam search: drop --beam 1 (the default is 16)\n")


@pytest.mark.parametrize("flags, error", [
    (["--lm", "x.safetensors", "--no-lm"], "give --lm or --no-lm, not both"),
    (["--no-lm", "--lm-weight", "0.5"], "--lm-weight needs a language model"),
    (["--model", "other.safetensors", "--lm-weight", "0.5"], "--lm-weight needs a language model"),
    (["--no-lm", "--internal-lm-weight", "0.1"], "--internal-lm-weight needs a language model"),
    (["--word-lm", "x.safetensors", "--no-word-lm"], "give --word-lm or --no-word-lm, not both"),
    (["--no-word-lm", "--word-lm-weight", "0.5"], "--word-lm-weight needs a word LM"),
    (["--model", "other.safetensors", "--word-lm-weight", "0.5"], "--word-lm-weight needs a word LM"),
    (["--beam", "1", "--word-lm", "x.safetensors"], "--word-lm only applies to beam search"),
])
def test_contradictory_lm_options_are_refused(capsys, flags, error):
    assert main(["transcribe", str(BUNDLED_SAMPLE), *flags]) == 2
    _one_line_error(capsys, error)


def test_batch_size_zero_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["transcribe", str(BUNDLED_SAMPLE), "--batch-size", "0"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err.count("\n") == 1
    assert err == "speech-s2s transcribe: error: argument --batch-size: must be at least 1, got 0 (see speech-s2s transcribe --help)\n"


def test_output_in_a_missing_folder_or_on_a_folder_is_refused_before_any_work(tmp_path, capsys):
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--output", str(tmp_path / "no" / "hyp.txt")]) == 2
    _one_line_error(capsys, f"--output {tmp_path / 'no' / 'hyp.txt'}: folder {tmp_path / 'no'} does not exist")
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--output", str(tmp_path)]) == 2
    _one_line_error(capsys, f"--output {tmp_path}: is a folder")


def test_an_existing_output_is_never_emptied_and_a_killed_run_resumes(tmp_path, capsys, monkeypatch):
    from speech_s2s import writers

    inputs = [tmp_path / f"s{n}.flac" for n in range(3)]
    for path in inputs:
        shutil.copy(BUNDLED_SAMPLE, path)
    out = tmp_path / "hyp.txt"
    out.write_text("old results\n")
    assert main(["transcribe", *map(str, inputs), "--output", str(out)]) == 2
    _one_line_error(capsys, f"--output {out}: exists; add --resume")
    assert out.read_text() == "old results\n"

    real_lines, calls = writers.lines, []

    def ctrl_c_after_the_first_file(transcript, output_format):
        calls.append(transcript.id)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_lines(transcript, output_format)

    monkeypatch.setattr(writers, "lines", ctrl_c_after_the_first_file)
    assert main(["transcribe", *map(str, inputs), "--output", str(out), "--overwrite"]) == 130
    assert out.read_text() == f"s0 {SAMPLE_SHOWN}\n"  # written and flushed as soon as it was done
    assert "add --resume to continue" in capsys.readouterr().err
    monkeypatch.setattr(writers, "lines", real_lines)
    with open(out, "a") as handle:
        handle.write("s1 and your bro")  # a line cut short by the kill is redone, not kept
    assert main(["transcribe", *map(str, inputs), "--output", str(out), "--resume"]) == 0
    assert out.read_text() == "".join(f"s{n} {SAMPLE_SHOWN}\n" for n in range(3))
    assert "resuming: 1 of 3 inputs already done" in capsys.readouterr().err


def test_folders_and_colliding_names_get_distinct_ids(tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        shutil.copy(BUNDLED_SAMPLE, tmp_path / folder / "s01.flac")
    assert main(["transcribe", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"a/s01 {SAMPLE_SHOWN}\nb/s01 {SAMPLE_SHOWN}\n"
    assert "2 inputs share the id 's01'" in captured.err


def test_standard_input(monkeypatch, capsys):
    import io

    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(BUNDLED_SAMPLE.read_bytes())))
    assert main(["transcribe", "-"]) == 0
    assert capsys.readouterr().out == f"stdin {SAMPLE_SHOWN}\n"


def test_captions_need_one_input_or_an_output_folder(tmp_path, capsys):
    assert main(["transcribe", str(BUNDLED_SAMPLE), str(MINI_CORPUS), "--output-format", "srt"]) == 2
    _one_line_error(capsys, "srt holds one recording's captions")
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--output-format", "srt", "--output-dir", str(tmp_path / "subs")]) == 0
    assert (tmp_path / "subs" / "sample.srt").read_text().splitlines()[2] == SAMPLE_SHOWN


def test_unexpected_errors_are_one_line_unless_verbose(monkeypatch, capsys):
    from speech_s2s.transcribe import Recognizer

    def broken(self, inputs):
        raise RuntimeError("something broke\nsecond line")

    monkeypatch.setattr(Recognizer, "transcribe_files", broken)
    assert main(["transcribe", str(BUNDLED_SAMPLE)]) == 1
    _one_line_error(capsys, "RuntimeError: something broke (rerun with --verbose for the traceback)")
    with pytest.raises(RuntimeError):
        main(["transcribe", str(BUNDLED_SAMPLE), "--verbose"])


def test_info_describes_the_bundled_model(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "parameters:    7.36M, stored as float16" in out and "CTC reads layer 2" in out
    assert main(["info", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["vocabulary"][2] == " "


def test_score_warns_about_hypotheses_the_reference_lacks_and_strict_refuses_them(tmp_path, capsys):
    ref, hyp = tmp_path / "ref.txt", tmp_path / "hyp.txt"
    ref.write_text("u1 HELLO WORLD\nu2\n")
    hyp.write_text("u1 hello world\nu2\nu3 stray line\n")
    assert main(["score", "--ref", str(ref), "--hyp", str(hyp), "--worst", "0"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("%WER 0.00 [ 0 / 2,")
    assert captured.err == f"speech-s2s: warning: {hyp}: 1 hypothesis ids are not in the reference (u3); they are not scored\n"
    assert main(["score", "--ref", str(ref), "--hyp", str(hyp), "--strict"]) == 1
    _one_line_error(capsys, f"{hyp}: 1 hypothesis ids are not in the reference")


def test_score_by_speaker_groups_ids_by_their_speaker_prefix_and_describes_corpus_speakers(tmp_path, capsys):
    split = tmp_path / "corpus" / "dev"
    for speaker, words in (("11", "A B C D"), ("22", "E F")):
        chapter = split / speaker / "1"
        chapter.mkdir(parents=True)
        (chapter / f"{speaker}-1.trans.txt").write_text(f"{speaker}-1-0000 {words}\n{speaker}-1-0001 {words}\n")
        for utterance in ("0000", "0001"):
            soundfile.write(chapter / f"{speaker}-1-{utterance}.flac", np.zeros(1600, np.float32), 16000)
    (split.parent / "SPEAKERS.TXT").write_text("; ID | SEX | SUBSET | NAME\n11 | F | dev | voice one\n22 | M | dev | voice two\n")
    hyp = tmp_path / "hyp.txt"  # speaker 11: 1 of 8 words wrong; speaker 22: 2 of 4 (one deleted, one substituted)
    hyp.write_text("11-1-0000 A B C X\n11-1-0001 A B C D\n22-1-0000 E\n22-1-0001 E G\n")
    assert main(["score", "--ref", str(split), "--hyp", str(hyp), "--by-speaker", "--worst", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:] == ["speaker | utterances | words | WER % | speaker", "11 | 2 | 8 | 12.50 | F | voice one",
                         "22 | 2 | 4 | 50.00 | M | voice two"]
    assert main(["score", "--ref", str(split), "--hyp", str(hyp), "--by-speaker", "--json"]) == 0
    by_speaker = json.loads(capsys.readouterr().out)["by_speaker"]
    assert by_speaker == {"11": {"wer": 0.125, "errors": 1, "words": 8, "utterances": 2},
                          "22": {"wer": 0.5, "errors": 2, "words": 4, "utterances": 2}}


def test_train_fine_tunes_the_bundled_model_with_dynamic_chunks(tmp_path, capsys):
    base = ["--train", str(MINI_CORPUS), "--dev", str(MINI_CORPUS), "--max-frames", "400", "--threads", "1", "--init", str(BUNDLED_MODEL)]
    exp = tmp_path / "chunked"
    chunks = ["--chunk-sizes", "16", "32", "--chunk-right-contexts", "0", "16", "--full-context-probability", "0"]
    assert main(["train", *base, "--exp", str(exp), *chunks, "--max-steps", "2"]) == 0
    config = json.loads((exp / "train_config.json").read_text())
    assert config["chunk_sizes"] == [16, 32] and config["chunk_right_contexts"] == [0, 16] and config["full_context_probability"] == 0
    assert torch.load(exp / "checkpoint.pt", weights_only=True)["state"]["step"] == 2
    capsys.readouterr()
    assert main(["train", *base, "--exp", str(tmp_path / "bad"), "--chunk-sizes", "12", "--max-steps", "1"]) == 1
    assert "multiples of 8" in capsys.readouterr().err


def test_prepare_can_keep_the_valid_part_of_a_corpus_being_made(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    shutil.copytree(MINI_CORPUS, corpus)
    shutil.copy(corpus / "900" / "1" / "900-1-0001.flac", corpus / "900" / "1" / "900-1-0005.flac")  # audio not yet transcribed
    assert main(["prepare", str(corpus), "--out", str(tmp_path / "m.jsonl")]) == 1
    assert "900-1-0005.flac: no transcript line for this audio file" in capsys.readouterr().err
    assert main(["prepare", str(corpus), "--out", str(tmp_path / "m.jsonl"), "--skip-invalid"]) == 0
    assert len((tmp_path / "m.jsonl").read_text().splitlines()) == 4
    assert "warning: skipped: " in capsys.readouterr().err


def test_an_lm_that_spells_with_other_tokens_is_refused(tmp_path, capsys):
    from speech_s2s.decoding.char_lm import CharLM, CharLMConfig, save_lm
    from speech_s2s.text import Vocabulary

    lm = tmp_path / "dash.safetensors"
    save_lm(CharLM(CharLMConfig(vocabulary=Vocabulary().tokens + ("-",), embedding_size=8, hidden_size=16, num_layers=1)), lm)
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--beam", "2", "--lm", str(lm)]) == 1
    _one_line_error(capsys, f"{lm}: vocabulary differs from the model's")


def test_a_character_lm_given_as_the_word_lm_is_refused_naming_it(capsys):
    assert main(["transcribe", str(BUNDLED_SAMPLE), "--word-lm", str(BUNDLED_LM)]) == 1
    _one_line_error(capsys, f"{BUNDLED_LM}: not a speech_s2s word LM (format 'speech_s2s_char_lm')")


# ---------------------------------------------------------------------------------------------- start-up
def _torch_free_run(argv: list[str], cwd) -> tuple[int, str]:
    """Run cli.main(argv) in a fresh interpreter; -> (exit status, what it printed), failing if torch was loaded."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\nfrom speech_s2s.cli.main import main\n"
        "try:\n    status = main(sys.argv[1:])\nexcept SystemExit as stop:\n    status = stop.code\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\nsys.exit(status)\n"
    )
    import os

    import speech_s2s

    root = str(Path(speech_s2s.__file__).parent.parent)  # this checkout, not whichever one pip installed
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=cwd, env=env, timeout=60)
    assert "torch was imported" not in done.stderr, f"{argv}: {done.stderr}"
    return done.returncode, done.stdout + done.stderr


def test_help_usage_errors_score_and_prepare_never_import_torch(tmp_path):
    from speech_s2s.cli.main import build_parser

    (tmp_path / "ref.txt").write_text("u1 a b c\nu2 d e\n")
    (tmp_path / "hyp.txt").write_text("u1 a b x\nu2 d e\n")
    commands = [action for action in build_parser()._subparsers._group_actions if action.choices][0].choices
    runs = [["--help"], ["no-such-command"], ["score", "--ref", "ref.txt", "--hyp", "hyp.txt"],
            ["prepare", str(MINI_CORPUS), "--out", "mini.jsonl"], ["transcribe", "x.flac", "--no-lm", "--lm-weight", "0.3"],
            ["transcribe", "--file-list", "missing.txt"], ["transcribe"]]
    runs += [[command, "--help"] for command in commands] + [[command, "--no-such-option"] for command in commands]
    for argv in runs:
        status, output = _torch_free_run(argv, tmp_path)
        expected = 0 if argv[-1] == "--help" or (argv[0] in ("score", "prepare") and "--no-such-option" not in argv) else 2
        assert status == expected, (argv, output)
    assert "%WER 20.00 " in _torch_free_run(["score", "--ref", "ref.txt", "--hyp", "hyp.txt"], tmp_path)[1]


def test_train_defaults_in_help_are_the_config_defaults():
    """train/train-lm options default to None (their config classes import torch); the help states the real default."""
    import re

    from speech_s2s.cli.main import build_parser
    from speech_s2s.decoding.char_lm import CharLMConfig, CharLMTrainConfig
    from speech_s2s.frontend.features import SpecAugmentConfig
    from speech_s2s.training.loop import TrainConfig

    fields = {
        "train": {"epochs": (TrainConfig, "epochs"), "max_frames": (TrainConfig, "max_frames"), "lr": (TrainConfig, "learning_rate"),
                  "warmup_steps": (TrainConfig, "warmup_steps"), "decay": (TrainConfig, "decay"),
                  "ctc_only_steps": (TrainConfig, "ctc_only_steps"), "sampling_probability": (TrainConfig, "sampling_probability"),
                  "freq_masks": (SpecAugmentConfig, "freq_masks"), "freq_mask_width": (SpecAugmentConfig, "freq_width"),
                  "time_masks": (SpecAugmentConfig, "time_masks"), "time_mask_width": (SpecAugmentConfig, "time_width"),
                  "curriculum_epochs": (TrainConfig, "curriculum_epochs"), "checkpoint_every": (TrainConfig, "checkpoint_every"),
                  "dev_max_utterances": (TrainConfig, "dev_max_utterances"), "seed": (TrainConfig, "seed"),
                  "full_context_probability": (TrainConfig, "full_context_probability"), "time_warp": (SpecAugmentConfig, "time_warp")},
        "train-lm": {"steps": (CharLMTrainConfig, "steps"), "batch_size": (CharLMTrainConfig, "batch_size"),
                     "hidden": (CharLMConfig, "hidden_size"), "layers": (CharLMConfig, "num_layers"),
                     "lr": (CharLMTrainConfig, "learning_rate")},
    }
    parser = build_parser()
    commands = [action for action in parser._subparsers._group_actions if action.choices][0].choices
    for command, wanted in fields.items():
        actions = {action.dest: action for action in commands[command]._actions}
        for dest, (config, name) in wanted.items():
            stated = re.search(r"default (\S+?)\)?$", actions[dest].help).group(1)
            assert actions[dest].default is None and type(getattr(config(), name))(stated) == getattr(config(), name), (command, dest)
    # Unset, so that --train-config can set them; the help says what TrainConfig does then.
    assert commands["train"].get_default("chunk_sizes") is None and commands["train"].get_default("chunk_right_contexts") is None
    assert (TrainConfig().chunk_sizes, TrainConfig().chunk_right_contexts) == ((), (0,))
    train = {action.dest: action for action in commands["train"]._actions}
    assert "default: full context only" in train["chunk_sizes"].help and "(default 0)" in train["chunk_right_contexts"].help


def test_a_trained_model_says_what_it_was_trained_on(tmp_path, capsys):
    exp = tmp_path / "exp"
    assert main(["train", "--train", str(MINI_CORPUS), "--dev", str(MINI_CORPUS), "--exp", str(exp), "--encoder-hidden", "32",
                 "--encoder-layers", "3", "--decoder-hidden", "64", "--max-frames", "400", "--threads", "1", "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main(["info", str(exp / "epoch001.safetensors"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)["info"]
    assert info["training"]["splits"] == ["mini"] and info["training"]["utterances"] == 4 and info["training"]["epochs"] == 1
    # the dev figures are those the run logged for that epoch, not just some number
    logged = [entry for entry in json.loads((exp / "history.json").read_text()) if "dev_wer" in entry]
    assert [entry["epoch"] for entry in logged] == [1] and info["dev"]["epoch"] == 1
    assert (info["dev"]["greedy_wer"], info["dev"]["greedy_cer"]) == (round(logged[0]["dev_wer"], 4), round(logged[0]["dev_cer"], 4))


def test_train_config_file_sets_training_options_and_a_wrong_one_is_named(tmp_path, capsys):
    exp = tmp_path / "exp"
    settings = tmp_path / "train.json"
    settings.write_text(json.dumps({"max_frames": 400, "max_steps": 2, "spec_augment": {"freq_masks": 1}, "dev_max_utterances": 1}))
    base = ["train", "--train", str(MINI_CORPUS), "--dev", str(MINI_CORPUS), "--exp", str(exp), "--encoder-hidden", "32",
            "--encoder-layers", "3", "--decoder-hidden", "64", "--threads", "1", "--train-config", str(settings)]
    assert main([*base, "--max-steps", "1"]) == 0  # an option given on the command line wins over the file
    written = json.loads((exp / "train_config.json").read_text())
    assert (written["max_frames"], written["max_steps"], written["spec_augment"]["freq_masks"], written["spec_augment"]["time_masks"]) == (400, 1, 1, 2)
    settings.write_text(json.dumps({"max_frames": "many"}))
    capsys.readouterr()
    assert main(base) == 1
    assert capsys.readouterr().err == f"speech-s2s: error: --train-config {settings}: TrainConfig.max_frames must be int, not 'many'\n"


def test_decoding_defaults_to_one_thread_and_training_to_the_usable_cpus(monkeypatch):
    import argparse
    import os

    import torch

    from speech_s2s.cli.options import MAX_DEFAULT_THREADS, apply_threads

    before = torch.get_num_threads()
    try:
        apply_threads(argparse.Namespace(threads=None), decoding=True)
        assert torch.get_num_threads() == 1
        apply_threads(argparse.Namespace(threads=2), decoding=True)
        assert torch.get_num_threads() == 2
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(16)), raising=False)
        apply_threads(argparse.Namespace(threads=None))
        assert torch.get_num_threads() == MAX_DEFAULT_THREADS
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")  # torchrun: 8 processes share the 16 CPUs
        apply_threads(argparse.Namespace(threads=None))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_output_into_a_closed_pipe_ends_quietly(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "ref.txt").write_text("a-1 hello world\n")
    (tmp_path / "hyp.txt").write_text("a-1 hello word\n")
    read_end, write_end = os.pipe()
    os.close(read_end)  # as `speech-s2s score ... | head -0`: nobody reads
    try:
        result = subprocess.run([sys.executable, "-m", "speech_s2s.cli", "score", "--ref", str(tmp_path / "ref.txt"),
                                 "--hyp", str(tmp_path / "hyp.txt")], stdout=write_end, stderr=subprocess.PIPE, text=True)
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (141, "")
