"""Files replaced whole: a reader, or a run killed half-way, sees the old file or the new one, never a
mix. Everything is written to a temporary file beside the target, then renamed over it (a rename within
a folder is atomic on POSIX and Windows)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# the process id keeps writers apart: under torchrun every process may write the same file
_TEMPORARY_NAME = re.compile(r"\.tmp\d*$")


def temporary_beside(path: Path) -> Path:
    return path.with_name(f"{path.name}.tmp{os.getpid()}")


def is_temporary(path: Path) -> bool:
    """Whether `path` is a writer's temporary file (what a killed run may leave behind)."""
    return _TEMPORARY_NAME.search(path.name) is not None


@contextmanager
def replacing(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write instead of `path`; when the block ends, rename it over `path`.
    If the block raises, the temporary file is removed and `path` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_beside(path)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with replacing(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
