"""tools/tts planning: the frozen test-tts benchmark, disjoint speakers and texts, the voice table, VTL."""

import hashlib
import shutil

import numpy as np
import pytest

from tools.tts import ENGINES, voices_table
from tools.tts.engine import SAMPLE_RATE
from tools.tts.plan import TRAIN_ENGINE_WEIGHTS, build_speakers, legacy_test_jobs
from tools.tts.render import vtl_shift

# What the first tool made for test-tts with --seed 0 (the project's benchmark). Never change these.
BENCHMARK_SPEAKERS = [
    "3001 M espeak voice=en-gb-x-gbclan+klatt3 speed=162 pitch=46",
    "3002 M espeak voice=en-gb-scotland+m5 speed=188 pitch=27",
    "3003 F espeak voice=en-gb-x-gbcwmd+f5 speed=180 pitch=59",
    "3004 F flite voice=slt duration_stretch=0.9 pitch_factor=0.9",
    "3005 M flite voice=awb duration_stretch=1.3 pitch_factor=0.9",
    "3006 F festival voice=voice_cmu_us_slt_arctic_hts duration_stretch=0.85",
    "3007 M piper voice=en_US-joe-medium length_scale=0.8 noise_scale=0.9 noise_w=0.78",
    "3008 M piper voice=en_US-joe-medium length_scale=0.9 noise_scale=0.9 noise_w=0.65",
]
BENCHMARK_TRANSCRIPTS_SHA256 = "bb08c2034fae6e0657cbf7630ab8e1464c7b55f22696c31b1ac0d0fdd3f2fe97"
BENCHMARK_SETTINGS_SHA256 = "5ec471852187b3c962932e308502cddb6abb306e9c3a6d334b80d2e9bcf444a6"
ALL = list(ENGINES)


def _sha(lines):
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def test_test_speakers_and_per_utterance_settings_are_the_benchmarks_whatever_engines_are_added():
    speakers = build_speakers(0, ALL)
    assert [f"{s.speaker_id} {s.gender} {s.describe()}" for s in speakers["test-tts"]] == BENCHMARK_SPEAKERS
    jobs = legacy_test_jobs(0, speakers["test-tts"], [f"S{i}" for i in range(400)], 400, 300)
    assert _sha(f"{j.utt_id} {j.speaker.describe()} {j.edge_silence} {j.peak}" for j in jobs) == BENCHMARK_SETTINGS_SHA256


def test_no_speaker_is_shared_between_splits_and_espeak_voices_are_held_out():
    speakers = build_speakers(0, ALL)
    keys = {split: {(s.engine, s.voice, s.settings) for s in spk} for split, spk in speakers.items()}
    assert not keys["train-tts"] & keys["dev-tts"] and not keys["train-tts"] & keys["test-tts"]
    assert not keys["dev-tts"] & keys["test-tts"]
    espeak = {split: {s.voice for s in spk if s.engine == "espeak"} for split, spk in speakers.items()}
    assert not espeak["train-tts"] & (espeak["dev-tts"] | espeak["test-tts"])
    ids = [s.speaker_id for spk in speakers.values() for s in spk]
    assert len(ids) == len(set(ids))
    assert len(speakers["train-tts"]) > 150 and {s.engine for s in speakers["dev-tts"]} == set(ALL)


def test_kokoro_blends_one_accent_and_gender_and_its_dev_voices_are_in_no_train_speaker():
    from tools.tts import kokoro

    speakers = build_speakers(0, ["kokoro"])
    parts = {split: {p for s in spk for p in kokoro.voice_parts(s.voice)} for split, spk in speakers.items()}
    assert parts["dev-tts"] and not parts["dev-tts"] & parts["train-tts"]
    assert len(speakers["train-tts"]) == 150 and len({s.voice for s in speakers["train-tts"]}) > 60
    for speaker in speakers["train-tts"]:
        names = speaker.voice.split("+")
        assert len({name[:2] for name in names}) == 1 and ("blend" in speaker.params) == (len(names) == 2)
    assert all(s.gender == ("F" if s.voice[1] == "f" else "M") for s in speakers["train-tts"])


def test_kokoro_is_not_a_default_engine_so_made_corpora_keep_their_plan():
    from tools.tts import DEFAULT_ENGINES

    assert "kokoro" in ENGINES and "kokoro" not in DEFAULT_ENGINES
    assert list(DEFAULT_ENGINES) == [name for name in ENGINES if name != "kokoro"]


def test_espeak_formant_voices_are_a_minority_of_train():
    assert TRAIN_ENGINE_WEIGHTS["espeak"] / sum(TRAIN_ENGINE_WEIGHTS.values()) <= 0.15
    assert max(TRAIN_ENGINE_WEIGHTS, key=TRAIN_ENGINE_WEIGHTS.get) in ("rhvoice", "kokoro")  # the most human-like


def test_voices_table_lists_every_voice_with_its_licence():
    table = voices_table()
    rows = table.strip().splitlines()[2:]
    assert len(rows) == sum(len(m.VOICES) for m in ENGINES.values())
    assert all(row.count("|") == 8 and (" yes " in row or " no " in row) for row in rows)


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")
def test_vtl_shift_keeps_duration_and_scales_frequencies():
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    tone = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    for factor in (0.88, 1.12):
        shifted = vtl_shift(tone, factor)
        assert abs(len(shifted) - len(tone)) < 0.01 * SAMPLE_RATE
        spectrum = np.abs(np.fft.rfft(shifted[2000:-2000]))
        peak_hz = np.argmax(spectrum) * SAMPLE_RATE / (len(shifted) - 4000)
        assert abs(peak_hz - 1000 * factor) < 15
    assert vtl_shift(tone, 1.0) is tone


def _have_text_sources():
    from tools.tts.text import find_austen_dir

    try:
        find_austen_dir()
        import rdata  # noqa: F401
    except (FileNotFoundError, ImportError):
        return False
    return shutil.which("bible") is not None


@pytest.mark.skipif(not _have_text_sources(), reason="r-cran-janeaustenr, bible-kjv or rdata not installed")
def test_text_pools_keep_test_and_dev_books_out_of_train_and_test_is_the_benchmark(tmp_path):
    from tools.tts.plan import build_plan
    from tools.tts.text import build_text_pools

    pools = build_text_pools(None, 0)
    train = {s for _, s in pools.train}
    assert not train & set(pools.dev) and not train & set(pools.test) and not set(pools.dev) & set(pools.test)
    assert {src for src, _ in pools.train} == {"emma", "persuasion", "prideprejudice", "mansfieldpark", "kjv"}
    jobs = build_plan(pools, build_speakers(0, ALL), 0, train_hours=0.0, dev_utts=300, test_utts=400)
    test = [j for j in jobs if j.split == "test-tts"]
    assert _sha(f"{j.utt_id} {j.text}" for j in test) == BENCHMARK_TRANSCRIPTS_SHA256
    assert {j.source for j in jobs if j.split == "dev-tts"} == {"northangerabbey"}


def test_resuming_with_a_different_plan_stops_instead_of_mislabelling(tmp_path):
    from tools.tts import layout

    speakers = build_speakers(0, ["espeak"])
    jobs = legacy_test_jobs(0, speakers["test-tts"], ["A B C", "D E F"], 2, 300)
    layout.check_and_write_plan(tmp_path, jobs)
    layout.write_flac(layout.flac_path(tmp_path, jobs[0]), np.zeros(1600, np.float32))
    layout.check_and_write_plan(tmp_path, jobs)  # same plan: fine
    import dataclasses

    changed = [dataclasses.replace(jobs[0], text="G H I"), jobs[1]]
    with pytest.raises(SystemExit, match="planned differently"):
        layout.check_and_write_plan(tmp_path, changed)
    layout.check_and_write_plan(tmp_path, [jobs[0], dataclasses.replace(jobs[1], text="G H I")])  # not made yet


WORDNET_HEADER = "  1 This software and database is being provided to you, the LICENSEE, by Princeton University\n"


def test_wordnet_definitions_and_examples_become_sentences_and_held_out_sentences_stay_out(tmp_path):
    from tools.tts.text import TextPools, language_model_text, load_wordnet

    (tmp_path / "data.noun").write_text(
        WORDNET_HEADER
        + '00001740 03 n 01 entity 0 003 ~ 00001930 n 0000 | that which is perceived or known (not necessarily material); '
          '"the `team\' is a unit"; "she was happy"\n'
        + "00002137 03 n 01 abstraction 0 000 | a concept\n"  # two words: too short
        + "00002452 03 n 01 thing 0 000\n")  # no gloss
    (tmp_path / "data.verb").write_text('00001740 29 v 01 breathe 0 005 | draw air into, and expel out of, the lungs; "I can breathe better"\n')
    for name in ("data.adj", "data.adv"):
        (tmp_path / name).write_text(WORDNET_HEADER)
    sentences = load_wordnet(tmp_path)
    assert sentences == ["THAT WHICH IS PERCEIVED OR KNOWN", "THE TEAM IS A UNIT", "SHE WAS HAPPY",
                         "DRAW AIR INTO AND EXPEL OUT OF THE LUNGS", "I CAN BREATHE BETTER"]
    pools = TextPools(train=[("emma", "A TRAIN SENTENCE HERE"), ("kjv", "SHE WAS HAPPY")], dev=["THE TEAM IS A UNIT"],
                      test=["I CAN BREATHE BETTER"], legacy_dev_size=0)
    assert language_model_text(pools, tmp_path) == ["A TRAIN SENTENCE HERE", "SHE WAS HAPPY", "THAT WHICH IS PERCEIVED OR KNOWN",
                                                    "DRAW AIR INTO AND EXPEL OUT OF THE LUNGS"]
    assert language_model_text(pools, None) == ["A TRAIN SENTENCE HERE", "SHE WAS HAPPY"]
    # a source left out: the same sentence from another source stays (WordNet's example here)
    assert language_model_text(pools, tmp_path, exclude=["kjv"]) == ["A TRAIN SENTENCE HERE", "THAT WHICH IS PERCEIVED OR KNOWN",
                                                                     "SHE WAS HAPPY", "DRAW AIR INTO AND EXPEL OUT OF THE LUNGS"]
    assert language_model_text(pools, tmp_path, exclude=["wordnet", "emma"]) == ["SHE WAS HAPPY"]
    # the modern corpus's dev pool is held out too, from every source
    assert language_model_text(pools, tmp_path, modern_dev=["SHE WAS HAPPY", "DRAW AIR INTO AND EXPEL OUT OF THE LUNGS"]) == [
        "A TRAIN SENTENCE HERE", "THAT WHICH IS PERCEIVED OR KNOWN"]
    with pytest.raises(ValueError, match=r"unknown text sources: \['bible'\]"):
        language_model_text(pools, tmp_path, exclude=["bible"])


def test_dings_english_example_sentences_are_kept_and_its_word_entries_and_placeholders_are_not(tmp_path):
    from tools.tts.text import load_ding_examples

    ding = tmp_path / "de-en"
    ding.write_text(
        "# Version :: 1.9\n"
        "Aal {m} [cook.] | Aal blau :: Eel (on a menu) | Eel au bleu\n"  # word entries
        "Bitte warten Sie. :: Please wait here a moment. | Wait! {v}\n"  # a sentence; an item too short
        "Das ist mir egal. :: I don\u2019t care about it at all. [coll.]; It doesn't matter to me.\n"  # curly apostrophe, a note
        "jdm. etw. geben :: to give sb. sth. | He gave sth. to sb. at noon.\n"  # placeholders
        "Er kam in der 83. Minute. :: He came on in the 83rd minute.\n"
        "kein Trenner hier\n")
    assert load_ding_examples(ding) == ["PLEASE WAIT HERE A MOMENT", "I DON'T CARE ABOUT IT AT ALL",
                                        "IT DOESN'T MATTER TO ME", "HE CAME ON IN THE EIGHTY THIRD MINUTE"]


def test_state_of_the_union_addresses_from_a_year_on_become_sentences_without_asides(tmp_path):
    from tools.tts.text import load_sotu

    (tmp_path / "1946_harry_s_truman_d.txt").write_text("To the Congress of the United States: A year of war is over.\n")
    (tmp_path / "1995_william_j_clinton_d.txt").write_text(
        "Mr. President, Mr. Speaker, Members of the 104th Congress. [Applause] We hear you. Thank you.\n\n"
        "And now all of us must work together to earn the jobs you have given us.\n")
    (tmp_path / "1995_william_j_clinton_d.json").write_text("{}")
    # the 1946 address is before 1950; "Thank you" is under MIN_WORDS
    assert load_sotu(tmp_path) == ["MISTER PRESIDENT MISTER SPEAKER MEMBERS OF THE ONE HUNDRED FOURTH CONGRESS", "WE HEAR YOU",
                                   "AND NOW ALL OF US MUST WORK TOGETHER TO EARN THE JOBS YOU HAVE GIVEN US"]
    assert load_sotu(tmp_path, since=1900)[0] == "TO THE CONGRESS OF THE UNITED STATES A YEAR OF WAR IS OVER"
    with pytest.raises(FileNotFoundError, match="no State of the Union address"):
        load_sotu(tmp_path, since=2000)


def test_extra_text_sources_join_the_language_models_text_after_the_books_and_can_be_left_out():
    from tools.tts.text import TextPools, language_model_text

    pools = TextPools(train=[("emma", "A TRAIN SENTENCE HERE")], dev=["THE DEV SENTENCE"], test=[], legacy_dev_size=0)
    extra = {"ding": ["PLEASE WAIT HERE A MOMENT", "THE DEV SENTENCE"], "sotu": ["WE HEAR YOU NOW", "A TRAIN SENTENCE HERE"]}
    assert language_model_text(pools, None, extra=extra) == ["A TRAIN SENTENCE HERE", "PLEASE WAIT HERE A MOMENT", "WE HEAR YOU NOW"]
    assert language_model_text(pools, None, exclude=["ding"], extra=extra) == ["A TRAIN SENTENCE HERE", "WE HEAR YOU NOW"]
    with pytest.raises(ValueError, match=r"unknown text sources: \['news'\]"):
        language_model_text(pools, None, extra={"news": ["A B C"]})


def test_modern_text_is_wordnets_examples_split_into_dev_and_train_without_the_books_held_out_sentences(tmp_path):
    from tools.tts.plan import build_plan
    from tools.tts.text import TextPools, modern_text_pools

    examples = [f"THE {w} IS ON THE TABLE" for w in ("CUP", "BOOK", "KEY", "PHONE", "PEN", "BOWL")]
    synsets = "".join(f'0000{i} 03 n 01 thing 0 000 | an object of some kind; "{text.lower()}"\n' for i, text in enumerate(examples))
    (tmp_path / "data.noun").write_text(WORDNET_HEADER + synsets + '00009 03 n 01 x 0 000 | a thing; "the cup is on the table"\n')
    for name in ("data.verb", "data.adj", "data.adv"):
        (tmp_path / name).write_text(WORDNET_HEADER)
    books = TextPools(train=[("kjv", "AND IT WAS SO")], dev=["THE KEY IS ON THE TABLE"], test=["THE PEN IS ON THE TABLE"],
                      legacy_dev_size=9)
    modern = modern_text_pools(books, tmp_path, seed=0, dev_pool=2)
    train = [text for _, text in modern.train]
    # examples only (never the definitions), each once, and never a sentence the books hold out
    assert sorted(train + modern.dev) == sorted({"THE CUP IS ON THE TABLE", "THE BOOK IS ON THE TABLE",
                                                  "THE PHONE IS ON THE TABLE", "THE BOWL IS ON THE TABLE"})
    assert len(modern.dev) == 2 and modern.test == [] and modern.legacy_dev_size == 0
    assert {source for source, _ in modern.train} == {"wordnet"} and modern.dev_source == "wordnet"
    assert modern_text_pools(books, tmp_path, seed=0, dev_pool=2) == modern  # seeded
    assert len({tuple(modern_text_pools(books, tmp_path, seed=seed, dev_pool=2).dev) for seed in range(6)}) > 1  # the seed decides
    jobs = build_plan(modern, build_speakers(0, ["espeak"]), 0, train_hours=1.0, dev_utts=2, test_utts=0)
    assert {(j.split, j.source) for j in jobs} == {("dev-tts", "wordnet"), ("train-tts", "wordnet")}


def _number_words() -> set[str]:
    from speech_s2s.data.normalize import number_to_words, ordinal_to_words

    spoken = [number_to_words(n) for n in range(10000)] + [ordinal_to_words(n) for n in range(1, 101)]
    return {word for text in spoken for word in text.split()} | {"OH"}


def test_short_texts_are_spans_of_each_pools_sentences_and_numbers_and_dev_text_stays_out_of_train():
    from tools.tts.text import SHORT_MAX_WORDS, TextPools, short_text_pools

    train = [("emma", f"THE {w} WENT DOWN TO THE RIVER") for w in ("MAN", "DOG", "GIRL", "HORSE", "CART")] * 40
    pools = TextPools(train=train, dev=["SHE READ THE LETTER TWICE", "HE SAID NOTHING AT ALL"] * 20,
                      test=["NEVER USED HERE"], legacy_dev_size=7)
    short = short_text_pools(pools, seed=0)
    assert short.test == [] and short.legacy_dev_size == 0
    assert {source for source, _ in short.train} == {"short"}
    train_texts = [text for _, text in short.train]
    assert len(set(train_texts)) == len(train_texts) and len(set(short.dev)) == len(short.dev)
    assert not set(train_texts) & set(short.dev)  # the dev split's texts are never trained on

    def is_span(text, sentences):
        return any(f" {text} " in f" {s} " for s in sentences)

    numbers = _number_words()
    for texts, sentences in ((train_texts, [s for _, s in train]), (short.dev, pools.dev)):
        spans = [t for t in texts if is_span(t, sentences)]
        assert all(1 <= len(t.split()) <= SHORT_MAX_WORDS for t in spans)
        assert any(len(t.split()) == 1 for t in spans) and any(len(t.split()) == 2 for t in spans)
        others = [t for t in texts if t not in spans]
        assert others and all(set(t.split()) <= numbers for t in others)  # the rest are numbers, in words
    assert short_text_pools(pools, seed=0) == short  # seeded


def test_number_texts_say_counts_positions_digits_and_years():
    import random

    from tools.tts.text import number_text

    rng = random.Random(0)
    texts = [number_text(rng) for _ in range(400)]
    assert any(t.endswith(("TH", "FIRST", "SECOND", "THIRD")) for t in texts)  # ordinals
    assert any(len(t.split()) >= 3 and set(t.split()) <= set("ZERO ONE TWO THREE FOUR FIVE SIX SEVEN EIGHT NINE".split()) for t in texts)
    assert any("HUNDRED" in t or "THOUSAND" in t for t in texts)
    numbers = _number_words()
    assert all(set(t.split()) <= numbers for t in texts)
