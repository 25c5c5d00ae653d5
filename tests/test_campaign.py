"""The campaign's phase book-keeping (recipes/campaign/campaign.py): which folder a run trains in, and from what."""

import contextlib
import importlib.util
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import MINI_CORPUS

CAMPAIGN = Path(__file__).resolve().parents[1] / "recipes" / "campaign" / "campaign.py"


def _phase(exp: Path, split: Path, init: str, *extra: str) -> Path:
    result = subprocess.run([sys.executable, str(CAMPAIGN), "phase", str(exp), str(split), init, *extra],
                            capture_output=True, text=True, check=True)
    return Path(result.stdout.strip())


def _add_speaker(split: Path, speaker: str, new_speaker: str) -> None:
    """Copy a speaker's chapters under a new speaker id (files and transcript ids renamed)."""
    for chapter in (split / speaker).iterdir():
        target = split / new_speaker / chapter.name
        target.mkdir(parents=True)
        for path in chapter.iterdir():
            renamed = target / path.name.replace(f"{speaker}-", f"{new_speaker}-", 1)
            if path.suffix == ".txt":
                renamed.write_text(path.read_text().replace(f"{speaker}-", f"{new_speaker}-"))
            else:
                shutil.copy(path, renamed)


def test_a_phase_continues_until_the_corpus_grows_then_starts_from_the_last_weights(tmp_path):
    split = tmp_path / "train-tts"
    shutil.copytree(MINI_CORPUS, split)
    exp = tmp_path / "exp"

    first = _phase(exp, split, "bundled.safetensors")
    assert first == exp / "phase-1"
    assert (first / "init.txt").read_text().strip() == "bundled.safetensors"
    utterances = len((first / "train.jsonl").read_text().splitlines())
    assert utterances > 0

    (first / "last.safetensors").write_bytes(b"weights")
    assert _phase(exp, split, "bundled.safetensors") == first  # the corpus has not grown: same phase, exact resume

    _add_speaker(split, "900", "901")  # twice the utterances: past 1.25 times the phase's
    second = _phase(exp, split, "bundled.safetensors")
    assert second == exp / "phase-2"
    assert (second / "init.txt").read_text().strip() == str(first / "last.safetensors")
    assert len((second / "train.jsonl").read_text().splitlines()) == 2 * utterances


def test_restart_begins_a_new_phase_from_init_once(tmp_path):
    split = tmp_path / "train-tts"
    shutil.copytree(MINI_CORPUS, split)
    exp = tmp_path / "exp"
    first = _phase(exp, split, "bundled.safetensors")
    (first / "last.safetensors").write_bytes(b"weights")

    restarted = _phase(exp, split, "bundled.safetensors", "--restart")
    assert restarted == exp / "phase-2"
    assert (restarted / "init.txt").read_text().strip() == "bundled.safetensors"  # not phase 1's weights
    assert _phase(exp, split, "bundled.safetensors") == restarted  # later runs resume it


def test_engine_weights_repeat_their_speakers_utterances_in_a_new_phase_from_the_last_weights(tmp_path):
    split = tmp_path / "train-tts"
    shutil.copytree(MINI_CORPUS, split)
    _add_speaker(split, "900", "901")
    (tmp_path / "SPEAKERS.TXT").write_text(";ID  |SEX| SUBSET | ENGINE/VOICE SETTINGS\n"
                                           "900  | F | train-tts | espeak voice=en+f3 speed=150\n"
                                           "901  | M | train-tts | rhvoice voice=alan rate=100\n")
    exp = tmp_path / "exp"
    first = _phase(exp, split, "bundled.safetensors")
    (first / "last.safetensors").write_bytes(b"weights")
    (first / "feats-train0").mkdir()
    (first / "feats-train0" / "shard-00000.pt").write_bytes(b"features")
    base = (first / "train.jsonl").read_text().splitlines()

    weighted = _phase(exp, split, "bundled.safetensors", "--weight", "espeak=3", "--weight", "rhvoice=1")
    assert weighted == exp / "phase-2"  # new weights: a new phase, from where the last one got to
    assert (weighted / "init.txt").read_text().strip() == str(first / "last.safetensors")
    lines = (weighted / "train.jsonl").read_text().splitlines()
    espeak = [line for line in base if '"speaker": "900"' in line]
    assert len(espeak) == len(base) // 2
    assert lines == base + espeak + espeak  # the unweighted manifest first: its feature cache stays valid
    assert (weighted / "mix.txt").read_text().strip() == "espeak=3"
    shared = weighted / "feats-train0" / "shard-00000.pt"  # the new phase starts with the last one's features
    assert shared.read_bytes() == b"features" and shared.stat().st_ino == (first / "feats-train0" / "shard-00000.pt").stat().st_ino

    (weighted / "last.safetensors").write_bytes(b"weights")
    assert _phase(exp, split, "bundled.safetensors", "--weight", "espeak=3") == weighted  # same weights: resume
    assert _phase(exp, split, "bundled.safetensors") == exp / "phase-3"  # weights dropped: a new phase again


def test_a_rehearsed_corpus_joins_with_its_own_ids_and_dev_sentences_are_kept_out(tmp_path):
    split = tmp_path / "train-tts"
    shutil.copytree(MINI_CORPUS, split)
    old = tmp_path / "corpus-legacy" / "train-tts"
    shutil.copytree(MINI_CORPUS, old)
    exp = tmp_path / "exp"
    first = _phase(exp, split, "bundled.safetensors")
    (first / "last.safetensors").write_bytes(b"weights")
    base = [json.loads(line) for line in (first / "train.jsonl").read_text().splitlines()]
    dev = tmp_path / "dev.ref.txt"
    dev.write_text(f"900-9-0000 {base[0]['text']}\n")  # a dev sentence the old corpus also says

    mixed = _phase(exp, split, "bundled.safetensors", "--rehearse", str(old), "--held-out-text", str(dev))
    assert mixed == exp / "phase-2"  # a new mix: a new phase from the last weights
    assert (mixed / "init.txt").read_text().strip() == str(first / "last.safetensors")
    lines = [json.loads(line) for line in (mixed / "train.jsonl").read_text().splitlines()]
    kept = [u for u in base if u["text"] != base[0]["text"]]
    assert [u["id"] for u in lines] == [u["id"] for u in kept] + [f"corpus-legacy/{u['id']}" for u in kept]
    assert {u["speaker"] for u in lines} == {"900", "corpus-legacy/900"}
    assert (mixed / "corpus-utterances.txt").read_text().strip() == str(len(base))
    assert (mixed / "mix.txt").read_text().strip() == f"rehearse={old.resolve()}"
    (mixed / "last.safetensors").write_bytes(b"weights")
    assert _phase(exp, split, "bundled.safetensors", "--rehearse", str(old), "--held-out-text", str(dev)) == mixed  # resumes

    # a second joined corpus still being synthesised: a new phase when it joins, and again when it has grown by GROW
    growing = tmp_path / "corpus-kokoro" / "train-tts"
    shutil.copytree(MINI_CORPUS, growing)
    transcript = next(growing.rglob("*.trans.txt"))
    first_line = transcript.read_text().splitlines()[0]
    transcript.write_text(first_line + "\n")  # one utterance synthesised so far
    for audio in transcript.parent.glob("*.flac"):
        if not audio.name.startswith(first_line.split()[0]):
            audio.unlink()
    both = ("--rehearse", str(old), "--rehearse", str(growing), "--held-out-text", str(dev))
    joined = _phase(exp, split, "bundled.safetensors", *both)
    assert joined == exp / "phase-3" and (joined / "mix.txt").read_text().split() == [f"rehearse={old.resolve()}", f"rehearse={growing.resolve()}"]
    first_count = json.loads((joined / "joined-utterances.json").read_text())[str(growing.resolve())]
    assert 0 < first_count < len(base)
    counted = subprocess.run([sys.executable, str(CAMPAIGN), "transcribed", str(growing)], capture_output=True, text=True, check=True)
    assert int(counted.stdout) == first_count  # what run.sh compares with KOKORO_JOIN_UTTS
    (joined / "last.safetensors").write_bytes(b"weights")
    assert _phase(exp, split, "bundled.safetensors", *both) == joined  # not grown: resumes
    shutil.rmtree(growing)
    shutil.copytree(MINI_CORPUS, growing)
    assert _phase(exp, split, "bundled.safetensors", *both) == exp / "phase-4"


def test_thinning_keeps_a_share_of_a_texts_utterances_and_the_same_ones_when_the_mix_grows(tmp_path):
    split = tmp_path / "train-tts"
    shutil.copytree(MINI_CORPUS, split)
    for speaker in range(901, 910):
        _add_speaker(split, "900", str(speaker))  # 10 speakers reading the same 4 sentences
    verses = tmp_path / "verses.txt"
    verses.write_text("THE CAT SAT\nOPEN THE DOOR\n")
    exp = tmp_path / "exp"

    thinned = _phase(exp, split, "bundled.safetensors", "--thin", f"{verses}=0.5")
    assert (thinned / "mix.txt").read_text().strip() == f"thin={verses.resolve()}:0.5"
    lines = [json.loads(line) for line in (thinned / "train.jsonl").read_text().splitlines()]
    texts = [u["text"] for u in lines]
    assert texts.count("SHE WAS HERE") == texts.count("WE'RE ALL FINE") == 10  # other sentences stay whole
    kept = sum(text in ("THE CAT SAT", "OPEN THE DOOR") for text in texts)
    assert 0 < kept < 20
    assert (thinned / "corpus-utterances.txt").read_text().strip() == "40"  # growth is counted before thinning
    (thinned / "last.safetensors").write_bytes(b"weights")
    assert _phase(exp, split, "bundled.safetensors", "--thin", f"{verses}=0.5") == thinned  # resumes

    for speaker in range(910, 920):
        _add_speaker(split, "900", str(speaker))
    grown = _phase(exp, split, "bundled.safetensors", "--thin", f"{verses}=0.5")
    assert grown == exp / "phase-2"
    grown_lines = (grown / "train.jsonl").read_text().splitlines()
    # the same utterances thinned away: the last manifest is a prefix, so its feature shards are reused
    assert grown_lines[:len(lines)] == (thinned / "train.jsonl").read_text().splitlines()

    (grown / "last.safetensors").write_bytes(b"weights")
    gone = _phase(exp, split, "bundled.safetensors", "--thin", f"{verses}=0")
    assert gone == exp / "phase-3"  # a changed share is a changed mix
    assert {json.loads(line)["text"] for line in (gone / "train.jsonl").read_text().splitlines()} == {"SHE WAS HERE", "WE'RE ALL FINE"}


def test_the_thinned_share_is_near_the_one_asked_for():
    spec = importlib.util.spec_from_file_location("campaign", CAMPAIGN)
    campaign = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(campaign)
    ids = [f"corpus/{speaker}-{speaker}00-{n:04d}" for speaker in range(1001, 1101) for n in range(100)]
    for share in (0.1, 0.25, 0.5):
        assert abs(sum(campaign._kept(i, share) for i in ids) / len(ids) - share) < 0.01
    assert all(campaign._kept(i, 0.5) for i in ids if campaign._kept(i, 0.25))  # a smaller share keeps a subset


def test_unread_drops_the_dev_sentences_a_train_split_says(tmp_path):
    dev = tmp_path / "dev"
    subprocess.run(["speech-s2s", "prepare", str(MINI_CORPUS), "--out", f"{dev}.jsonl", "--text", f"{dev}.ref.txt",
                    "--files", f"{dev}.files"], check=True, capture_output=True)
    records = [json.loads(line) for line in Path(f"{dev}.jsonl").read_text().splitlines()]
    split = tmp_path / "old" / "train-tts" / "7" / "1"
    split.mkdir(parents=True)
    (split / "7-1.trans.txt").write_text(f"7-1-0000 {records[1]['text']}\n7-1-0001 A SENTENCE NO DEV SET SAYS\n")
    result = subprocess.run([sys.executable, str(CAMPAIGN), "unread", str(dev), str(tmp_path / "old" / "train-tts"), str(tmp_path / "clean")],
                            capture_output=True, text=True, check=True)
    kept = [r["id"] for r in records if r["id"] != records[1]["id"]]
    assert [json.loads(line)["id"] for line in (tmp_path / "clean.jsonl").read_text().splitlines()] == kept
    assert [line.split()[0] for line in (tmp_path / "clean.ref.txt").read_text().splitlines()] == kept
    assert [Path(line).stem for line in (tmp_path / "clean.files").read_text().splitlines()] == kept
    assert result.stdout.strip().endswith(f"{len(kept)} of {len(records)} utterances; left out, as {tmp_path / 'old' / 'train-tts'} says their sentence: 1")


def test_the_campaign_curve_chains_phases_that_continue_each_other(tmp_path):
    import torch

    spec = importlib.util.spec_from_file_location("campaign", CAMPAIGN)
    campaign = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(campaign)
    exp = tmp_path / "exp"
    phases = {"phase-1": ("bundled.safetensors", 300, [(100, 0.6), (200, 0.5)]),
              "phase-2": (str(exp / "phase-1" / "last.safetensors"), 50, [(40, 0.45)]),
              "phase-3": ("bundled.safetensors", 80, [(80, 0.55)])}  # a restart: a new line
    for name, (init, step, dev) in phases.items():
        (exp / name).mkdir(parents=True)
        (exp / name / "init.txt").write_text(init + "\n")
        (exp / name / "history.json").write_text(json.dumps([{"step": 10, "train_loss": 1.0}] + [{"step": s, "dev_wer": w} for s, w in dev]))
        torch.save({"state": {"step": step}}, exp / name / "checkpoint.pt")
    assert campaign.lineages(exp) == [("from phase-1, phase-2", [(100, 0.6), (200, 0.5), (340, 0.45)]),  # 300 + 40
                                      ("from phase-3", [(80, 0.55)])]

    # each run's exported model, as `log` writes it to campaign.md: one line per dev set (and lineage)
    for name, (_, step, _) in phases.items():
        torch.save({"state": {"step": step, "epoch": 1}}, exp / name / "checkpoint.pt")
        (exp / name / "train.jsonl").write_text(json.dumps({"duration": 3600.0}) + "\n")
        scores = tmp_path / f"{name}.json"
        scores.write_text(json.dumps({"dev-asterisk": 0.8 - step / 1000, "dev-bench": 0.25}))
        with contextlib.redirect_stdout(io.StringIO()):
            campaign.log(exp, exp / name, 0, 10, scores, None)
    assert campaign.runs(exp) == [("dev-asterisk (from phase-1, phase-2)", [(300, 0.5), (350, 0.75)]),
                                  ("dev-bench (from phase-1, phase-2)", [(300, 0.25), (350, 0.25)]),
                                  ("dev-asterisk (from phase-3)", [(80, 0.72)]), ("dev-bench (from phase-3)", [(80, 0.25)])]
    result = subprocess.run([sys.executable, str(CAMPAIGN), "curve", str(exp), str(tmp_path / "curve.png")], capture_output=True, text=True, check=True)
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and result.stdout.strip() == str(tmp_path / "curve.png")


def test_weights_need_the_corpus_speaker_table(tmp_path):
    split = tmp_path / "train-tts"
    shutil.copytree(MINI_CORPUS, split)
    result = subprocess.run([sys.executable, str(CAMPAIGN), "phase", str(tmp_path / "exp"), str(split), "init", "--weight", "espeak=2"],
                            capture_output=True, text=True)
    assert result.returncode != 0
    assert result.stderr.strip() == f"{tmp_path / 'SPEAKERS.TXT'}: no such file (the corpus tool writes it; needed to weight engines)"
    assert not list((tmp_path / "exp").glob("phase-*"))  # no phase folder without a manifest


def test_a_malformed_weight_is_one_line_and_makes_nothing(tmp_path):
    for weight in ("espeak", "espeak=x", "espeak=0"):
        result = subprocess.run([sys.executable, str(CAMPAIGN), "phase", str(tmp_path / "exp"), str(MINI_CORPUS), "init", "--weight", weight],
                                capture_output=True, text=True)
        assert (result.returncode, result.stderr.strip()) == (2, "campaign.py phase: argument --weight: takes ENGINE=N, N a whole number of times (at least 1)")
    (tmp_path / "verses.txt").write_text("THE CAT SAT\n")
    for thin, said in ((f"{tmp_path / 'verses.txt'}=2", "takes FILE=SHARE, SHARE a fraction from 0 to 1"),
                       (f"{tmp_path / 'verses.txt'}", "takes FILE=SHARE, SHARE a fraction from 0 to 1"),
                       (f"{tmp_path / 'none.txt'}=0.5", f"{tmp_path / 'none.txt'}: no such file")):
        result = subprocess.run([sys.executable, str(CAMPAIGN), "phase", str(tmp_path / "exp"), str(MINI_CORPUS), "init", "--thin", thin],
                                capture_output=True, text=True)
        assert (result.returncode, result.stderr.strip()) == (2, f"campaign.py phase: argument --thin: {said}")
    for option in ("--rehearse", "--held-out-text"):
        result = subprocess.run([sys.executable, str(CAMPAIGN), "phase", str(tmp_path / "exp"), str(MINI_CORPUS), "init", option],
                                capture_output=True, text=True)
        assert (result.returncode, result.stderr.strip()) == (2, f"campaign.py phase: argument {option}: expected one argument")
    assert not (tmp_path / "exp").exists()


def test_a_missing_argument_is_one_line_not_a_traceback():
    for argv, said in ((["steps"], "campaign.py steps: the following arguments are required: phase"),
                       (["promote", "new.json"], "campaign.py promote: the following arguments are required: bundled"),
                       (["log", "exp", "phase-1", "many", "3", "s.json"], "campaign.py log: argument steps_before: invalid int value: 'many'"),
                       (["sort"],
                           "campaign.py: argument command: invalid choice: 'sort' "
                           "(choose from 'phase', 'unread', 'curve', 'steps', 'transcribed', 'log', 'promote', 'ablation-plot', 'subset')")):
        result = subprocess.run([sys.executable, str(CAMPAIGN), *argv], capture_output=True, text=True)
        assert (result.returncode, result.stderr.strip()) == (2, said)


def test_promotion_needs_every_dev_set_better_and_the_same_sets_scored(tmp_path):
    import json

    def promote(new: dict, old: dict) -> tuple[int, str]:
        (tmp_path / "new.json").write_text(json.dumps(new))
        (tmp_path / "old.json").write_text(json.dumps(old))
        done = subprocess.run([sys.executable, str(CAMPAIGN), "promote", str(tmp_path / "new.json"), str(tmp_path / "old.json")],
                              capture_output=True, text=True)
        return done.returncode, done.stdout

    old = {"dev-tts": 0.4197, "dev-asterisk": 1.0389}
    assert promote({"dev-tts": 0.4191, "dev-asterisk": 0.9683}, old)[0] == 0
    # phase 3: better on both, but it forgot the benchmark's voices
    status, said = promote({"dev-tts": 0.4191, "dev-asterisk": 0.9683, "dev-bench": 0.3563}, old)
    assert status == 1 and said.startswith("not comparable")
    status, said = promote({"dev-tts": 0.4191, "dev-asterisk": 0.9683, "dev-bench": 0.3563}, {**old, "dev-bench": 0.2948})
    assert status == 1 and "dev-bench 35.63 vs 29.48" in said


def _scored(folder: Path, name: str, references: list[str], hypotheses: list[str]) -> Path:
    path = folder / f"{name}.txt"
    path.write_text("".join(f"u{i} {text}\n" for i, text in enumerate(hypotheses)))
    (folder / "ref.txt").write_text("".join(f"u{i} {text}\n" for i, text in enumerate(references)))
    return path


def test_with_improve_the_named_sets_must_be_better_and_the_others_not_worse_beyond_noise(tmp_path):
    # Two guard sets scored by the real `score --compare --json`: 40 utterances of four words each.
    # "tie": the candidate misses a word the bundled model got and gets one it missed (within noise);
    # "forgot": it misses one word in every utterance the bundled model read right (beyond noise).
    references = [f"word{i} and the rest" for i in range(40)]
    wrong_first = ["wrong and the rest" for _ in range(40)]
    hyps = {
        "tie": (references[:1] + wrong_first[1:2] + references[2:], wrong_first[:1] + references[1:]),
        "forgot": (references[:20] + wrong_first[20:], references),
    }
    wer = {}
    for name, (candidate, bundled) in hyps.items():
        folder = tmp_path / name
        folder.mkdir()
        _scored(folder, "bundled", references, bundled)
        candidate_file = _scored(folder, "candidate", references, candidate)
        done = subprocess.run([sys.executable, "-m", "speech_s2s.cli", "score", "--ref", str(folder / "ref.txt"), "--hyp", str(candidate_file),
                               "--worst", "0", "--compare", str(folder / "bundled.txt"), "--json"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        (tmp_path / f"compare.dev-{name}.json").write_text(done.stdout)
        compared = json.loads(done.stdout)["compare"]
        wer[name] = (compared["candidate_wer"], compared["baseline_wer"])
    (tmp_path / "compare.dev-missing.json").write_text("{}")

    def promote(new: dict, old: dict, *improve: str, comparisons: str | None = str(tmp_path / "compare")) -> tuple[int, str]:
        (tmp_path / "new.json").write_text(json.dumps(new))
        (tmp_path / "old.json").write_text(json.dumps(old))
        argv = [sys.executable, str(CAMPAIGN), "promote", str(tmp_path / "new.json"), str(tmp_path / "old.json"), "--improve", *improve]
        done = subprocess.run(argv + (["--comparisons", comparisons] if comparisons else []), capture_output=True, text=True)
        assert done.stderr == ""
        return done.returncode, done.stdout

    issue_sets_better = ({"dev-tts": 0.33, "dev-asterisk": 0.90}, {"dev-tts": 0.34, "dev-asterisk": 0.95})
    tie = ({"dev-tie": wer["tie"][0]}, {"dev-tie": wer["tie"][1]})
    assert wer["tie"][0] == wer["tie"][1]  # a tie is not "fewer errors": the old rule would keep the bundled model
    status, said = promote({**issue_sets_better[0], **tie[0]}, {**issue_sets_better[1], **tie[1]}, "dev-tts", "dev-asterisk")
    assert status == 0 and said.startswith("promote (better on dev-asterisk, dev-tts, no other set worse beyond noise): ")
    assert "dev-tie 0.62 vs 0.62 worse within noise (95 % interval from " in said
    # a guard set worse beyond noise keeps the bundled model, however good the issue's sets are
    forgot = ({"dev-forgot": wer["forgot"][0]}, {"dev-forgot": wer["forgot"][1]})
    status, said = promote({**issue_sets_better[0], **forgot[0]}, {**issue_sets_better[1], **forgot[1]}, "dev-tts", "dev-asterisk")
    assert status == 1 and said.startswith("keep the bundled model") and "dev-forgot 12.50 vs 0.00 WORSE beyond noise (95 % interval +" in said
    # an issue set that is not better keeps it, even by a hair
    status, said = promote({"dev-tts": 0.34, "dev-asterisk": 0.90}, {"dev-tts": 0.34, "dev-asterisk": 0.95}, "dev-tts", "dev-asterisk")
    assert status == 1 and "dev-tts 34.00 vs 34.00 NOT BETTER" in said
    # a guard without a comparison to read, or one of other transcripts (stale), counts as not better
    status, said = promote({"dev-missing": 0.5, "dev-asterisk": 0.9}, {"dev-missing": 0.5, "dev-asterisk": 0.95}, "dev-asterisk")
    assert status == 1 and f"dev-missing 50.00 vs 50.00 NOT BETTER ({tmp_path / 'compare'}.dev-missing.json: no comparison (KeyError))" in said
    status, said = promote({"dev-tie": 0.5, "dev-asterisk": 0.9}, {"dev-tie": 0.5, "dev-asterisk": 0.95}, "dev-asterisk")
    assert status == 1 and "dev-tie.json compares other transcripts (WER 0.62 vs 0.62)" in said
    status, said = promote({**tie[0], "dev-asterisk": 0.9}, {**tie[1], "dev-asterisk": 0.95}, "dev-asterisk", comparisons=None)
    assert status == 1 and "NOT BETTER (no --comparisons)" in said
    # a set to improve that was never scored is no comparison at all
    status, said = promote({"dev-tts": 0.3}, {"dev-tts": 0.4}, "dev-tts", "dev-asterisk")
    assert (status, said.strip()) == (1, "not comparable: dev-asterisk not scored (scored: dev-tts)")


def test_the_campaign_curve_says_so_when_no_epoch_has_finished(tmp_path):
    import warnings

    from speech_s2s.training.plots import plot_campaign

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns of a legend with nothing in it
        plot_campaign([("from phase-1", [])], tmp_path / "curve.png", [("dev-asterisk (from phase-1)", [(800, 0.71)])])
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_ablation_plot_draws_each_run_against_the_first_and_names_a_missing_reference(tmp_path):
    for run, wer in [("bundled", 0.5), ("cmn", 0.45)]:
        (tmp_path / run).mkdir()
        (tmp_path / run / "scores.json").write_text(json.dumps({"dev-asterisk": wer, "test-real": wer + 0.5}))
    out = tmp_path / "ablation.png"
    result = subprocess.run([sys.executable, str(CAMPAIGN), "ablation-plot", str(tmp_path), str(out), "bundled", "cmn", "wide"],
                            capture_output=True, text=True, check=True)
    assert result.stdout.strip() == str(out) and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # a run without scores is left out
    missing = subprocess.run([sys.executable, str(CAMPAIGN), "ablation-plot", str(tmp_path), str(out), "control", "cmn"], capture_output=True, text=True)
    assert missing.returncode == 1 and missing.stderr.strip() == f"campaign.py: {tmp_path / 'control' / 'scores.json'}: no such file"
