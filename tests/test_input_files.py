"""Inputs and their ids: the one rule, and no two inputs sharing an id."""

import pytest

from speech_s2s.input_files import InputError, assign_ids, expand_inputs


def _ids(paths):
    return [i.id for i in assign_ids(paths)[0]]


def test_id_is_the_name_without_its_last_extension():
    assert _ids(["/data/1089-134686-0000.flac", "x/dup.a.flac", "x/dup.flac", "my talk.wav", "-"]) == [
        "1089-134686-0000", "dup.a", "dup", "my_talk", "stdin"]


def test_same_names_in_different_folders_get_their_relative_paths():
    inputs, warnings = assign_ids(["corpus/a/s01.flac", "corpus/b/s01.flac", "corpus/c/s02.flac"])
    assert [i.id for i in inputs] == ["a/s01", "b/s01", "s02"]
    assert len(warnings) == 1 and "'s01'" in warnings[0]


def test_same_name_with_different_extensions_keeps_the_extension():
    assert _ids(["d/s.mp3", "d/s.ogg"]) == ["s.mp3", "s.ogg"]


def test_folders_are_searched_recursively_for_audio_and_repeats_are_dropped(tmp_path):
    (tmp_path / "b" / "deep").mkdir(parents=True)
    for name in ("a.flac", "notes.txt", "b/c.WAV", "b/deep/d.mp3"):
        (tmp_path / name).write_bytes(b"x")
    inputs, warnings = expand_inputs([str(tmp_path), str(tmp_path / "a.flac")])
    assert [i.id for i in inputs] == ["a", "c", "d"]
    assert warnings == [f"{tmp_path / 'a.flac'}: given more than once; transcribed once"]


def test_a_folder_without_audio_is_an_error(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(InputError, match="folder holds no audio files"):
        expand_inputs([str(tmp_path)])


def test_the_package_level_inputs_stays_the_function_after_the_recognizer_loads():
    """`speech_s2s.inputs(...)` is the API the package docstring and README show; a submodule of the
    same name would replace it once anything imported that submodule (load() does)."""
    import speech_s2s

    speech_s2s.load(beam_size=1)
    assert callable(speech_s2s.inputs)
    assert [item.id for item in speech_s2s.inputs([str(speech_s2s.builder.BUNDLED_SAMPLE)])] == ["sample"]
