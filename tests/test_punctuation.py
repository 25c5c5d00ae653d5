"""The punctuation-and-case restorer: labels, model files, training (overfit, exact resume), the Restorer, the CLI."""

import random
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import speech_s2s.punctuation.restore as restore
from speech_s2s.punctuation.labels import CAPITAL, COMMA, LOWER, NONE, QUESTION, STOP, UPPER, baseline, join, label_sentence, render, score
from speech_s2s.punctuation.model import PunctuationConfig, PunctuationModel, PunctuationModelError, load_restorer, save_restorer
from speech_s2s.punctuation.restore import BUNDLED, CHUNK_WORDS, LiveRestorer, RecordingRestorer, Restorer, chunks
from speech_s2s.punctuation.train import Checkpointing, PunctuationTrainConfig, ResumeError, checkpoint_step, group_of, train_restorer

ROOT = Path(__file__).resolve().parents[1]
TEXT = {
    "emma": ["Emma Woodhouse, handsome, clever, and rich, had lived nearly twenty-one years.", "Was she happy?",
             "I am, said Mr. Knightley, very glad; the 25th of May was fine.", "She had been mistress of his house.",
             "The U.S. Army came at 5 o'clock!"] * 20,
    "wordnet": ["he had a nasty spill on the ice", "how big is that part compared to the whole?"] * 20,
}
TINY = PunctuationConfig(word_size=8, char_size=4, char_filters=8, hidden_size=16, dropout=0.0)


def test_label_sentence_spells_numbers_and_keeps_case_and_marks():
    x = label_sentence('"I am," said Mr. Darcy, "born in 1811; the U.S. Army, well-known."')
    assert x.words == ("i", "am", "said", "mister", "darcy", "born", "in", "eighteen", "eleven", "the", "u", "s", "army", "well", "known")
    assert render(x.words, x.cases, x.marks) == "I am, said Mister Darcy, born in eighteen eleven, the U S Army, well known."
    assert x.cases[0] == UPPER and x.cases[3] == CAPITAL and x.cases[5] == LOWER
    assert label_sentence("how big is it").marks[-1] == STOP and label_sentence("how big is it").cases[0] == CAPITAL
    assert label_sentence("Can I go?").marks == (NONE, NONE, QUESTION)
    assert label_sentence("").words == () and label_sentence("-- !").words == ()


def test_render_never_changes_the_words_and_scores_count_marks():
    words = ("hello", "world", "how", "are", "you")
    ref = join([label_sentence("Hello, world."), label_sentence("How are you?")])
    assert ref.words == words and ref.marks == (COMMA, STOP, NONE, NONE, QUESTION)
    assert [w.lower().strip(",.?") for w in render(words, ref.cases, ref.marks).split()] == list(words)
    perfect = score([ref], [ref])
    assert perfect["f1"] == 1.0 and perfect["case_accuracy"] == 1.0 and perfect["slot_error_rate"] == 0.0
    trivial = score([ref], [baseline(words)])
    assert trivial["r,"] == 0.0 and trivial["case_accuracy"] == 0.8
    assert trivial["slot_error_rate"] == 1.0  # "," and "." deleted, "?" written "."
    assert trivial["f1"] == 0.0 and trivial["p."] == 0.0
    assert render(["ok."], [CAPITAL], [STOP]) == "Ok."  # a word already ending in a mark gets no second one


def test_chunks_tile_the_line_in_order():
    assert chunks(0) == [] and chunks(10) == [(0, 10, 0, 10)]
    spans = chunks(1000, 96, 24)
    assert [k for _, _, k, _ in spans][0] == 0 and spans[-1][3] == 1000
    assert all(a[3] == b[2] for a, b in zip(spans, spans[1:]))
    assert all(read <= keep < end <= read_end for read, read_end, keep, end in spans)


def test_save_load_roundtrip_and_errors(tmp_path):
    model = PunctuationModel(PunctuationConfig(vocabulary=("the", "a"), word_size=8, char_size=4, char_filters=8, hidden_size=16))
    path = tmp_path / "p.safetensors"
    save_restorer(model, path)
    loaded = load_restorer(path)
    assert loaded.config == model.config
    deep = PunctuationModel(PunctuationConfig(vocabulary=("the", "a"), word_size=8, char_size=4, char_filters=8, hidden_size=16, layers=2))
    save_restorer(deep, path)
    assert load_restorer(path).config.layers == 2 and "lstm.weight_ih_l1_reverse" in dict(load_restorer(path).named_parameters())
    for bad, message in ((tmp_path / "none.safetensors", "no such"), (ROOT / "README.md", "not a safetensors")):
        with pytest.raises(PunctuationModelError, match=message):
            load_restorer(bad)
    with pytest.raises(PunctuationModelError, match="not a speech_s2s punctuation model"):
        load_restorer(ROOT / "speech_s2s" / "assets" / "lm.safetensors")


def test_large_matrices_are_stored_as_int8_rows_and_float16_files_still_load(tmp_path):
    import json
    from dataclasses import asdict

    from safetensors.torch import load_file, save_file

    torch.manual_seed(0)
    model = PunctuationModel(PunctuationConfig(vocabulary=tuple(f"w{i}" for i in range(100)), word_size=8, char_size=4, char_filters=8, hidden_size=16))
    path = tmp_path / "p.safetensors"
    save_restorer(model, path)
    stored, loaded = load_file(str(path)), load_restorer(path).state_dict()
    for name, value in model.state_dict().items():
        if value.dim() == 2 and value.numel() >= 1024:  # each value within half a step of its row's scale
            assert stored[name].dtype == torch.int8 and stored[name + ".row_scale"].shape == (value.shape[0], 1)
            step = value.abs().amax(dim=1, keepdim=True) / 127
            assert ((loaded[name] - value).abs() <= step * 0.51 + 1e-7).all(), name
        else:
            assert stored[name].dtype == torch.float16 and torch.equal(loaded[name], value.half().float()), name
    old = tmp_path / "float16.safetensors"  # as restorers were written before int8 rows
    save_file({k: v.half().contiguous() for k, v in model.state_dict().items()}, str(old),
              metadata={"format": "speech_s2s_punctuation", "config": json.dumps(asdict(model.config))})
    assert all(torch.equal(t, model.state_dict()[k].half().float()) for k, t in load_restorer(old).state_dict().items())
    renamed = {(k + "x" if k.endswith(".row_scale") else k): v for k, v in stored.items()}
    save_file(renamed, str(old), metadata={"format": "speech_s2s_punctuation", "config": json.dumps(asdict(model.config))})
    with pytest.raises(PunctuationModelError, match="weights do not match its config"):
        load_restorer(old)


def test_training_overfits_and_resumes_exactly(tmp_path):
    train = PunctuationTrainConfig(steps=150, batch_size=8, min_words=8, max_words=16, learning_rate=2e-2, dev_every=50,
                                   weights=(("books", 1.0), ("wordnet", 0.5)))
    whole, history = train_restorer(TEXT, TEXT, TINY, train)
    assert history[-1]["dev_f1"] > 0.5 and history[-1]["dev_case"] > 0.9
    path = tmp_path / "ck"
    train_restorer(TEXT, TEXT, TINY, train, Checkpointing(path, max_minutes=0.0))
    assert checkpoint_step(path) == 0
    torch.manual_seed(123)  # a resume restores every random state
    resumed, _ = train_restorer(TEXT, TEXT, TINY, train, Checkpointing(path, resume=True))
    assert checkpoint_step(path) == 150
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ResumeError):
        train_restorer(TEXT, TEXT, TINY, PunctuationTrainConfig(steps=151, batch_size=8, min_words=8, max_words=16,
                       weights=(("books", 1.0),)), Checkpointing(path, resume=True))
    with pytest.raises(ValueError, match="no training text in source group 'poems'"):
        train_restorer(TEXT, TEXT, TINY, replace(train, weights=(("books", 1.0), ("poems", 1.0))))
    books_only = {source: sentences for source, sentences in TEXT.items() if group_of(source) == "books"}
    assert train_restorer(books_only, books_only, TINY, replace(train, steps=2, weights=PunctuationTrainConfig().weights))[1]  # sotu, ding, wordnet absent


def test_restorer_keeps_every_word_on_odd_and_long_input():
    restorer = Restorer(PunctuationModel(PunctuationConfig(vocabulary=("the",), word_size=8, char_size=4, char_filters=8, hidden_size=16)))
    assert restorer.restore("") == "" and restorer.restore("   ") == ""
    odd = "naïve café 42 über ok. x"
    assert [w.lower().rstrip(".,?!") for w in restorer.restore(odd).split()] == ["naïve", "café", "42", "über", "ok", "x"]
    words = [f"w{i % 7}" for i in range(3000)]
    restored = restorer.restore(" ".join(words)).split()
    assert len(restored) == 3000 and [w.lower().rstrip(".,?!") for w in restored] == words
    assert restored[0][0] == "W" and restored[-1][-1] in ".?!"
    batch = restorer.restore_many(["one two three", "four five six seven", ""])
    assert batch == [restorer.restore("one two three"), restorer.restore("four five six seven"), ""]


@pytest.mark.skipif(not BUNDLED.is_file(), reason="no bundled restorer")
def test_bundled_restorer_restores_a_sentence():
    restored = Restorer.load().restore("my name is john and i live in london where do you live")
    assert restored.startswith("My name is John") and restored[-1] in ".?" and " I " in restored
    assert BUNDLED.stat().st_size <= 2 * 1024 * 1024  # its share of the 25 MB of bundled files (tests/test_cli.py checks the sum)


@pytest.mark.skipif(not BUNDLED.is_file(), reason="no bundled restorer")
def test_a_line_is_restored_the_same_whatever_it_is_batched_with():
    """Lines of short words batched with a line holding a long word: each comes out as it does alone."""
    restorer = Restorer.load()
    lines = ["so we sat on the mat and he said it was a good day to go out", "was it you or was it me that saw him",
             "the extraordinarily uncharacteristically long words were incomprehensible to us", "i am here now", "no"]
    assert restorer.restore_many(lines) == [restorer.restore(line) for line in lines]
    assert restorer.restore_many(lines[::-1]) == [restorer.restore(line) for line in lines[::-1]]


def test_a_recording_is_restored_as_one_text_however_its_segments_arrive():
    """Segments out one for one, each as soon as its labels are settled, and together exactly the
    recording's words restored as one line with a pause after each segment."""
    torch.manual_seed(0)
    restorer = Restorer(PunctuationModel(PunctuationConfig(vocabulary=("the", "and"), word_size=8, char_size=4, char_filters=8, hidden_size=16)))
    rng = random.Random(0)
    words = [rng.choice(["the", "and", "cat", "sat", "on", "mat", "i", "was", "here"]) for _ in range(400)]
    for trial in range(6):
        cuts = sorted(rng.sample(range(1, len(words)), rng.randint(1, 80)))
        segments = [words[a:b] for a, b in zip([0] + cuts, cuts + [len(words)])]
        segments.insert(trial, [])  # a segment the recogniser heard no word in
        recording, out, early = RecordingRestorer(restorer), [], 0
        for segment in segments:
            out += recording.add(segment)
            early = len(out)
        out += recording.finish()
        assert [len(x) for x in out] == [len(x) for x in segments]
        assert early > 0  # segments came out before the end of a recording longer than a chunk
        ends = [sum(map(len, segments[:i + 1])) - 1 for i in range(len(segments))]
        whole = restorer.label_many([words], pauses=[[e for e in ends if e >= 0]])[0]
        assert [w for x in out for w in x] == render(whole.words, whole.cases, whole.marks).split(" ")
    short = RecordingRestorer(restorer)  # a recording of one chunk or less: nothing settles before the end
    assert short.add(words[:CHUNK_WORDS // 2]) == [] and short.add(words[:CHUNK_WORDS // 2]) == []
    assert [len(x) for x in short.finish()] == [CHUNK_WORDS // 2] * 2
    assert RecordingRestorer(restorer).finish() == []


@pytest.mark.skipif(not BUNDLED.is_file(), reason="no bundled restorer")
def test_a_pause_inside_a_sentence_does_not_end_it():
    """Restored alone, a segment ends a sentence and the next starts one; read together, a pause after
    "the" is no sentence end."""
    restorer = Restorer.load()
    segments = ["i went to the", "store and bought some bread"]
    assert [restorer.restore(x) for x in segments] == ["I went to the.", "Store and bought some bread."]
    recording = RecordingRestorer(restorer)
    assert recording.add(segments[0].split()) == [] and recording.add(segments[1].split()) == []
    assert recording.finish() == [["I", "went", "to", "the"], ["store", "and", "bought", "some", "bread."]]


@pytest.mark.skipif(not BUNDLED.is_file(), reason="no bundled restorer")
def test_live_finals_go_on_from_the_finals_before_them():
    """A live final is read after the ones before it: a pause inside a sentence leaves it open, and the
    next final goes on in lowercase; the stream's last final ends a sentence; `reset` forgets."""
    live = LiveRestorer(Restorer.load())
    assert live.restore("i went to the".split()) == ["I", "went", "to", "the"]
    assert live.restore("store and bought some bread".split()) == ["store", "and", "bought", "some", "bread."]
    assert live.restore("it was late".split()) == ["It", "was", "late."]
    assert live.restore([]) == []
    assert live.restore("so that was".split(), last=True)[-1][-1] in ".?!"
    live.reset()
    assert live.restore("store".split())[0].rstrip(".?!") == "Store"  # a new sentence again
    long = ("and then we walked along the river " * 30).split()  # longer than a chunk: still one for one
    assert [w.lower().rstrip(".,?!") for w in live.restore(long)] == long


@pytest.mark.skipif(not BUNDLED.is_file(), reason="no bundled restorer")
def test_a_live_final_after_a_long_silence_starts_a_new_text():
    """Within LIVE_NEW_TEXT_SILENCE_SECONDS the next final goes on with the open sentence; after that
    much silence it starts one, as after `reset`."""
    live = LiveRestorer(Restorer.load())
    assert live.restore("i went to the".split()) == ["I", "went", "to", "the"]
    below = restore.LIVE_NEW_TEXT_SILENCE_SECONDS - 0.1
    assert live.restore("store and bought some bread".split(), silence_before=below)[0] == "store"
    live.reset()
    live.restore("i went to the".split())
    after = live.restore("store and bought some bread".split(), silence_before=restore.LIVE_NEW_TEXT_SILENCE_SECONDS)
    assert after[0].rstrip(",.?!") == "Store" and after == LiveRestorer(Restorer.load()).restore("store and bought some bread".split())


def test_punctuate_command(tmp_path):
    if not BUNDLED.is_file():
        pytest.skip("no bundled restorer")
    lines = tmp_path / "in.txt"
    lines.write_text("hello world how are you\n\nu1 twenty five\n")
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "speech_s2s.cli", "punctuate", str(lines)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    out = done.stdout.split("\n")
    assert out[1] == "" and out[0][0] == "H" and out[2].lower().startswith("u1 twenty five")
    missing = subprocess.run([sys.executable, "-m", "speech_s2s.cli", "punctuate", str(tmp_path / "none.txt")], capture_output=True, text=True, env=env)
    assert missing.returncode != 0 and len(missing.stderr.strip().splitlines()) == 1


def test_train_punctuation_reads_source_weights(tmp_path):
    from speech_s2s.cli.punctuate import source_weight

    assert source_weight("books=0.6") == ("books", 0.6)
    text = tmp_path / "train.tsv"
    text.write_text("emma\tIt was a fine day, and we walked.\n")
    env = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "speech_s2s.cli", "train-punctuation", "--train", str(text), "--out", str(tmp_path / "p.safetensors")]
    for weights, message in ((["books"], "expected GROUP=WEIGHT"), (["books=-1"], "expected GROUP=WEIGHT"),
                             (["books=1", "poems=1"], "no training text in source group 'poems'")):
        done = subprocess.run(command + ["--source-weights", *weights], capture_output=True, text=True, env=env)
        assert done.returncode != 0 and message in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
