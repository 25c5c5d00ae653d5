"""tools/make_asterisk_devset.py: transcript parsing and normalisation (no apt packages needed), and a
three-prompt build from the Debian G.722 prompts when those are installed."""

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from speech_s2s.data.corpus import read_librispeech

TOOL = Path(__file__).parent.parent / "tools" / "make_asterisk_devset.py"


def _load_tool():
    spec = importlib.util.spec_from_file_location("make_asterisk_devset", TOOL)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


tool = _load_tool()

# Lines as core-sounds-en.txt ships them (a few verbatim, a few made up to cover each rule).
SAMPLE = """\
; Core Asterisk Sounds in English

agent-pass: Please enter your password followed by the pound key.
beep: [this is a simple beep tone]
confbridge-join: <beep ascending>
silence/3: (3 seconds of silence)
letters/at: at [@]
letters/x: x
digits/a-m: A.M.
digits/h-40: fourtieth
conf-usermenu: Please press 1 to mute or unmute yourself, 4 or 6 to decrease or increase your volume, or 8 to exit.
confbridge-binaural-on: 3D audio enabled
demo-thanks: Goodbye.  Thank you for trying out the Asterisk Open Source PBX.
spy-iax2: IAX (note: does not say "2")
dictate/both_help: press * to toggle pause, press # to enter a new dictation filename
demo-moreinfo: For more information, visit www.asterisk.org.
spy-h323: H.323
demo-instruct: The sample configuration also has a single user with extension 1234.
dir-multi1: Press ...
queue-periodic-announce: All of our represenatives are currently busy.
"""

EXPECTED = {
    "agent-pass": "PLEASE ENTER YOUR PASSWORD FOLLOWED BY THE POUND KEY",
    "letters/at": "AT",
    "letters/x": "X",
    "digits/a-m": "A M",
    "digits/h-40": "FORTIETH",
    "conf-usermenu": "PLEASE PRESS ONE TO MUTE OR UNMUTE YOURSELF FOUR OR SIX TO DECREASE OR INCREASE YOUR VOLUME OR EIGHT TO EXIT",
    "confbridge-binaural-on": "THREE D AUDIO ENABLED",
    "demo-thanks": "GOODBYE THANK YOU FOR TRYING OUT THE ASTERISK OPEN SOURCE P B X",
    "dir-multi1": "PRESS",
    "queue-periodic-announce": "ALL OF OUR REPRESENTATIVES ARE CURRENTLY BUSY",
}
DROPPED = {
    "beep": "non-speech", "confbridge-join": "non-speech", "silence/3": "non-speech",
    "spy-iax2": "acronym", "dictate/both_help": "symbol", "demo-moreinfo": "web address",
    "spy-h323": "H.323", "demo-instruct": "3+ digits",
}


def test_prompt_list_is_parsed_and_every_entry_kept_or_dropped_for_a_stated_reason():
    prompts = tool.read_prompt_list(SAMPLE.splitlines(keepends=True))
    assert len(prompts) == len(EXPECTED) + len(DROPPED)
    assert prompts[0] == tool.Prompt("agent-pass", "Please enter your password followed by the pound key.")
    decisions = {d.prompt.name: d for d in tool.decide(prompts, {p.name for p in prompts})}
    assert {name: d.text for name, d in decisions.items() if d.text is not None} == EXPECTED
    for name, reason in DROPPED.items():
        assert decisions[name].text is None and reason in decisions[name].reason, (name, decisions[name].reason)


def test_prompt_without_audio_is_dropped_and_bad_lines_name_their_line():
    prompts = tool.read_prompt_list(["hello: Hello.\n", "goodbye: Goodbye!\n"])
    decisions = tool.decide(prompts, {"hello"})
    assert [(d.prompt.name, d.text, d.reason) for d in decisions] == [("hello", "HELLO", ""), ("goodbye", None, "no audio file")]
    with pytest.raises(tool.PromptListError, match=r"x.txt:2: expected"):
        tool.read_prompt_list(["hello: Hello.\n", "no colon here\n"], "x.txt")
    with pytest.raises(tool.PromptListError, match=r":2: prompt 'hello' is listed twice"):
        tool.read_prompt_list(["hello: Hello.\n", "hello: Hi.\n"])


def test_ids_follow_prompt_names_in_chapters():
    kept = [tool.Decision(tool.Prompt(name, name), name.upper(), "") for name in ("c", "a", "e", "b", "d")]
    assigned = tool.assign_ids(kept, "9000", per_chapter=2)
    assert [(utt, d.prompt.name) for utt, d in assigned] == [
        ("9000-1-0000", "a"), ("9000-1-0001", "b"), ("9000-2-0000", "c"), ("9000-2-0001", "d"), ("9000-3-0000", "e")]


needs_prompts = pytest.mark.skipif(
    not (tool.DEFAULT_SOUNDS / "hello-world.g722").is_file() or shutil.which("ffmpeg") is None,
    reason="asterisk-core-sounds-en-g722 or ffmpeg is not installed",
)


@needs_prompts
def test_three_prompts_build_into_a_readable_librispeech_split_and_resume(tmp_path, capsys):
    sounds = tmp_path / "sounds"
    (sounds / "digits").mkdir(parents=True)
    for name in ("hello-world", "beep", "digits/7"):
        (sounds / f"{name}.g722").symlink_to(tool.DEFAULT_SOUNDS / f"{name}.g722")
    transcripts = tmp_path / "core-sounds-en.txt"
    transcripts.write_text("hello-world: Hello world.\nbeep: [this is a simple beep tone]\ndigits/7: seven\n")
    out = tmp_path / "out"
    assert tool.build(sounds, transcripts, out, per_chapter=1) == 0
    utterances = read_librispeech(out / tool.SPLIT)
    assert [(u.id, u.text) for u in utterances] == [("9000-1-0000", "SEVEN"), ("9000-2-0000", "HELLO WORLD")]
    assert all(0.3 < u.duration < 3 for u in utterances)
    assert (out / "dev-asterisk-prompts.tsv").read_text().splitlines()[1:] == [
        "9000-1-0000\tdigits/7\tseven", "9000-2-0000\thello-world\tHello world."]
    assert (out / "dev-asterisk-dropped.tsv").read_text().splitlines()[1].startswith("beep\tnon-speech")
    flac = Path(utterances[0].audio)
    before = flac.stat().st_mtime_ns
    capsys.readouterr()
    assert tool.build(sounds, transcripts, out, per_chapter=1) == 0
    assert "(0 decoded now, 0 failed)" in capsys.readouterr().err
    assert flac.stat().st_mtime_ns == before
