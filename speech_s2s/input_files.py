"""What to transcribe: files, folders (searched recursively), file lists and standard input,
each with an utterance id that no other input shares.

The id rule, used everywhere (txt, jsonl, tsv, --output-dir file names, --resume):
  1. The id is the file name without its last extension, with whitespace made `_`
     (`1089-134686-0000.flac` -> `1089-134686-0000`, `dup.a.flac` -> `dup.a`); `-` is `stdin`.
  2. Inputs that would share an id instead get their path relative to the folder they have in
     common, still without the extension (`a/s01.flac`, `b/s01.flac` -> `a/s01`, `b/s01`).
  3. If that is still shared (`s.mp3`, `s.ogg`), the extension stays (`s.mp3`, `s.ogg`).
The same path given twice is transcribed once.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from speech_s2s.frontend.audio import STDIN

# What a folder is searched for: the formats soundfile and ffmpeg read.
AUDIO_EXTENSIONS = frozenset(
    ".wav .flac .ogg .oga .opus .mp3 .m4a .aac .wma .webm .mka .mp4 .aiff .aif .aifc .au .caf .w64 .sph .amr .3gp".split()
)


class InputError(ValueError):
    """An input cannot be used at all (a folder without audio, an unreadable file list)."""


@dataclass(frozen=True)
class InputFile:
    path: str
    id: str


def _clean(name: str) -> str:
    return re.sub(r"\s+", "_", name.strip()) or "_"


def _base_id(path: str) -> str:
    return "stdin" if path == STDIN else _clean(Path(path).stem if Path(path).suffix else Path(path).name)


def assign_ids(paths: list[str]) -> tuple[list[InputFile], list[str]]:
    """Inputs with ids by the module's rule, and a warning per group of inputs whose ids were
    made from their paths."""
    groups: dict[str, list[int]] = {}
    for index, path in enumerate(paths):
        groups.setdefault(_base_id(path), []).append(index)
    ids = {index: base for base, members in groups.items() for index in members}
    warnings = []
    for base, members in groups.items():
        if len(members) < 2:
            continue
        absolute = [os.path.abspath(paths[i]) for i in members]
        common = os.path.commonpath([os.path.dirname(a) for a in absolute])
        relative = [os.path.relpath(a, common) for a in absolute]
        stems = [os.path.splitext(r)[0] for r in relative]
        chosen = stems if len(set(stems)) == len(stems) else relative
        for index, name in zip(members, chosen):
            ids[index] = _clean(name)
        warnings.append(f"{len(members)} inputs share the id {base!r}; their ids are made from their paths: {', '.join(ids[i] for i in members)}")
    return [InputFile(path, ids[i]) for i, path in enumerate(paths)], warnings


def _audio_in(folder: Path) -> list[str]:
    found = []
    for root, directories, files in os.walk(folder):
        directories.sort()
        found.extend(str(Path(root) / name) for name in sorted(files) if Path(name).suffix.lower() in AUDIO_EXTENSIONS)
    return found


def expand_inputs(names: list[str], file_list: str | None = None) -> tuple[list[InputFile], list[str]]:
    """Files, folders (recursively, audio extensions only) and `-`, plus the lines of `file_list`,
    in the order given. Returns the inputs and warnings; raises InputError for a folder that holds
    no audio or a file list that cannot be read."""
    names = list(names)
    if file_list is not None:
        try:
            names += [line.strip() for line in Path(file_list).read_text(encoding="utf-8").splitlines() if line.strip()]
        except OSError as error:
            raise InputError(f"{file_list}: cannot read file list ({(error.strerror or type(error).__name__).lower()})") from None
        except UnicodeDecodeError:
            raise InputError(f"{file_list}: file list is not UTF-8 text") from None
    paths: list[str] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for name in names:
        expanded = [name]
        if name != STDIN and Path(name).is_dir():
            expanded = _audio_in(Path(name))
            if not expanded:
                raise InputError(f"{name}: folder holds no audio files ({', '.join(sorted(AUDIO_EXTENSIONS)[:6])}, ...)")
        for path in expanded:
            key = path if path == STDIN else os.path.abspath(path)
            if key in seen:
                warnings.append(f"{path}: given more than once; transcribed once")
                continue
            seen.add(key)
            paths.append(path)
    inputs, id_warnings = assign_ids(paths)
    return inputs, warnings + id_warnings


def inputs(names: list[str]) -> list[InputFile]:
    """`expand_inputs` for the Python API: files, folders and `-` with their ids (warnings dropped)."""
    return expand_inputs(names)[0]
