"""tools/make_real_heldout.py: text and label parsing on inline examples (no packages needed), and a
small build from the Debian packages when those are installed."""

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from speech_s2s.data.corpus import read_librispeech

TOOL = Path(__file__).parent.parent / "tools" / "make_real_heldout.py"


def _load_tool():
    spec = importlib.util.spec_from_file_location("make_real_heldout", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


tool = _load_tool()

# A Tux Paint description file as shipped (shortened): the untagged line is English.
FROG_TXT = """\
A frog.
ach.utf8=Ogwalogwal
ca@valencia.utf8=Una granota.
en_AU.utf8=A frog.
en_GB.utf8=A frog.
fr.utf8=Une grenouille.
pt_BR.utf8=Um sapo.
sr@latin.utf8=Žaba.
"""

SOUNDTHEME = """\
<language code="en">
    <sound name="ball" file="en/ball.ogg" />
    <sound name="egypt_sphynx" file="en/egypt_sphynx.ogg" />
    <sound name="pizzeria_brocolli" file="en/pizzeria_broccolli.ogg" />
    <sound name="moon_ufo" file="en/moon_ufo.ogg" />
</language>
"""


def test_tuxpaint_english_line_is_the_untagged_one():
    assert tool.tuxpaint_english(FROG_TXT.splitlines()) == "A frog."


def test_tuxpaint_english_falls_back_to_an_english_locale_line():
    assert tool.tuxpaint_english(["fr.utf8=Une grenouille.", "en_US.utf8=A frog."]) == "A frog."
    assert tool.tuxpaint_english(["fr.utf8=Une grenouille.", "en_GB.utf8=A frog."]) is None
    assert tool.tuxpaint_english(["", "de.utf8=Ein Frosch."]) is None


def test_transcripts_are_normalised_librispeech_style():
    assert tool.to_transcript("Two wild boars.") == ("TWO WILD BOARS", "")
    assert tool.to_transcript("3 red kangaroos!") == ("THREE RED KANGAROOS", "")
    assert tool.to_transcript("A mountaingoat.", tool.TUXPAINT_FIXES) == ("A MOUNTAIN GOAT", "")


def test_unknown_or_foreign_or_unsure_text_is_skipped():
    assert tool.to_transcript(None) == (None, "text unknown")
    assert tool.to_transcript("  ") == (None, "text unknown")
    assert tool.to_transcript("Une grenouille à l'eau.")[1] == "not English (letters outside ASCII)"
    text, reason = tool.to_transcript("A UFO.")
    assert text is None and "UFO" in reason


def test_ktuberling_sound_theme_and_words():
    sounds = tool.ktuberling_sounds(SOUNDTHEME)
    assert sounds["en/ball.ogg"] == "ball"
    assert sounds["en/pizzeria_broccolli.ogg"] == "pizzeria_brocolli"
    assert tool.ktuberling_word("ball") == ("ball", "")
    assert tool.ktuberling_word("egypt_sphynx") == ("sphinx", "")
    assert tool.ktuberling_word("pizzeria_brocolli") == ("broccoli", "")
    assert tool.ktuberling_word("egypt_palmtree") == ("palm tree", "")
    assert tool.ktuberling_word("moon_ufo")[0] is None


def test_ids_are_per_source_in_path_order():
    kept = [tool.Decision(tool.Clip("ktuberling", Path("/k/en/b.ogg"), "b"), "B", ""),
            tool.Decision(tool.Clip("tuxpaint", Path("/t/z_desc.ogg"), "Z"), "Z", ""),
            tool.Decision(tool.Clip("ktuberling", Path("/k/en/a.ogg"), "a"), "A", "")]
    assigned = tool.assign_ids(kept)
    assert [(utt, d.text) for utt, d in assigned] == [("9101-1-0000", "Z"), ("9102-1-0000", "A"), ("9102-1-0001", "B")]


def test_build_from_small_package_trees(tmp_path):
    """The layout, the texts and the skips, with two packages' trees laid out by hand (audio made by ffmpeg)."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed")
    import subprocess

    def tone(path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=300:duration=0.5",
                        "-ac", "2", "-ar", "44100", str(path)], check=True)

    stamps, sounds = tmp_path / "stamps", tmp_path / "sounds"
    tone(stamps / "animals" / "frog_desc.ogg")
    (stamps / "animals" / "frog.txt").write_text(FROG_TXT, encoding="utf-8")
    tone(stamps / "animals" / "frog_desc_fr.ogg")  # another language: not picked up
    tone(stamps / "animals" / "wallaby_desc.ogg")  # no description file: skipped
    (sounds / "en.soundtheme").parent.mkdir(parents=True, exist_ok=True)
    (sounds / "en.soundtheme").write_text(SOUNDTHEME, encoding="utf-8")
    for name in ("ball", "egypt_sphynx", "moon_ufo", "tv_tree"):
        tone(sounds / "en" / f"{name}.ogg")
    out = tmp_path / "out"
    assert tool.build(stamps, sounds, out) == 0
    utterances = read_librispeech(out / tool.SPLIT)
    assert {u.id: u.text for u in utterances} == {
        "9101-1-0000": "A FROG", "9102-1-0000": "BALL", "9102-1-0001": "SPHINX", "9102-1-0002": "TREE"}
    dropped = (out / f"{tool.SPLIT}-dropped.tsv").read_text(encoding="utf-8")
    assert "wallaby_desc.ogg\ttext unknown" in dropped and "moon_ufo" in dropped
    assert "9101 | ? | test-real" in (out / "SPEAKERS.TXT").read_text(encoding="utf-8")
    import soundfile

    info = soundfile.info(str(out / tool.SPLIT / "9102" / "1" / "9102-1-0000.flac"))
    assert (info.samplerate, info.channels) == (16000, 1)
    assert tool.build(stamps, sounds, out) == 0  # resumable: a second run keeps the files


@pytest.mark.skipif(not (tool.DEFAULT_TUXPAINT.is_dir() and tool.DEFAULT_KTUBERLING.is_dir()),
                    reason="tuxpaint-stamps-default and ktuberling-data are not installed")
def test_the_packages_have_the_expected_english_clips():
    """The Debian packages' clips and texts, without decoding any audio."""
    tux = tool.decide(tool.tuxpaint_clips(tool.DEFAULT_TUXPAINT))
    kept = {d.clip.audio.name: d.text for d in tux if d.text}
    assert kept["frog_desc.ogg"] == "A FROG"
    assert len(kept) >= 60
    clips, unsure = tool.ktuberling_clips(tool.DEFAULT_KTUBERLING)
    words = {c.audio.name: c.raw for c in clips}
    assert words["egypt_sphynx.ogg"] == "sphinx" and "moon_ufo.ogg" not in words
    assert len(clips) >= 60 and {d.clip.audio.name for d in unsure} >= {"moon_ufo.ogg"}
