"""What this process may run on, and the one thread it keeps for work beside its own."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

_second_thread: ThreadPoolExecutor | None = None
_all_cores_busy: Callable[[], bool] | None = None


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity where the system has one, else all of them)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def second_thread() -> ThreadPoolExecutor | None:
    """A thread to run a piece of work beside this one's, or None on a single core: one per process,
    made when first asked for. Decoding splits small independent parts onto it (an encoder layer's
    backward direction, beam search's language models); torch releases the GIL inside its kernels,
    so the two parts share the wall time. Work run on it must not wait on it. None too while
    `share_cores`'s check says every core is busy: the thread would only take turns with other work."""
    global _second_thread
    if _all_cores_busy is not None and _all_cores_busy():
        return None
    if _second_thread is None and usable_cores() > 1:
        _second_thread = ThreadPoolExecutor(1, thread_name_prefix="speech-s2s-beside")
    return _second_thread


def share_cores(all_busy: Callable[[], bool]) -> None:
    """Processes that share the machine's cores (a server's decoding processes) say, through
    `all_busy`, when none is free: then `second_thread` gives None, and each process works on one."""
    global _all_cores_busy
    _all_cores_busy = all_busy
