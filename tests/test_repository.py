"""Rules the committed tree itself must keep."""

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Folders of the machine the project is built on; commands in committed files name variables
# ($DATA, $EXP, ...) or repository-relative paths instead, so they run anywhere.
MACHINE_FOLDERS = ("/" + "work/", "/" + "root/", "/" + "home/")
BINARY_SUFFIXES = {".safetensors", ".png", ".flac", ".wav", ".npz", ".pt", ".onnx"}


def _tracked_text_files() -> list[Path]:
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    paths = [ROOT / name for name in listed.decode().split("\0") if name]
    return [path for path in paths if path.suffix not in BINARY_SUFFIXES and path.is_file()]


def test_committed_files_name_no_folder_of_the_build_machine():
    offenders = []
    for path in _tracked_text_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if any(folder in line for folder in MACHINE_FOLDERS):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not offenders, "machine folders in committed files:\n" + "\n".join(offenders)


def test_committed_shell_scripts_parse():
    # recipes run for hours before they reach a late stage: a syntax error there must fail here first
    scripts = [path for path in _tracked_text_files() if path.suffix == ".sh" or path.name == "run"]
    assert any(path.name == "run.sh" for path in scripts)
    for path in scripts:
        checked = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
        assert checked.returncode == 0, f"{path.relative_to(ROOT)}: {checked.stderr.strip()}"
