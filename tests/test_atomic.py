import pytest

from speech_s2s import atomic


def test_write_text_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    atomic.write_text(target, "first\n")
    atomic.write_text(target, "second\n")
    assert target.read_text(encoding="utf-8") == "second\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic.replacing(target) as temporary:
            temporary.write_text("half a new fi")
            raise RuntimeError("disk full")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


def test_the_temporary_is_beside_the_target_and_recognised(tmp_path):
    target = tmp_path / "shard-00003.pt"
    with atomic.replacing(target) as temporary:
        assert temporary.parent == tmp_path and temporary != target
        assert atomic.is_temporary(temporary)
        temporary.write_bytes(b"x")
    assert not atomic.is_temporary(target)
    assert not atomic.is_temporary(tmp_path / "notes.tmpl")
    assert atomic.is_temporary(tmp_path / "model.safetensors.tmp")  # an older release's name
