"""Give memory the server has freed back to the system, so a long lecture does not creep up.

glibc's malloc gives threads that allocate at the same time arenas of their own (up to eight
per core) and hands freed memory back to the system only from the top of a heap. The app
decodes pictures on many worker threads, torch tensors of a few MB each, so freed blocks
scattered over many arenas piled up: in a 300 s soak (`benchmarks/load.py`) the server's RSS
grew by 134 MB after its warm-up and did not level off, while Python's own heap (measured with
tracemalloc) grew only by its bounded caches. Two arenas and a `malloc_trim` every few seconds
give those pages back: +48 MB in the same soak. A slower creep remains (about 11 MB a minute
in a 600 s soak at 45 calls a second; see benchmarks/reports/load.md), outside Python's heap.

Elsewhere than on Linux with glibc (macOS, musl, Windows) this does nothing.
"""

from __future__ import annotations

import ctypes
import platform
import threading
import time

ARENAS = 2             # malloc arenas for the whole process (glibc's default: 8 per core)
TRIM_EVERY = 10.0      # seconds between two malloc_trim calls
_M_ARENA_MAX = -8      # mallopt's parameter number, from glibc's malloc.h

_started = threading.Event()


def _glibc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    libc = ctypes.CDLL(None)
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def trim() -> bool:
    """Hand freed heap pages back to the system now; True if glibc returned any."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False


def return_freed_memory(arenas: int = ARENAS, every: float = TRIM_EVERY) -> bool:
    """Limit malloc to `arenas` arenas and trim every `every` seconds in a daemon thread, once
    per process (later calls do nothing). Returns whether it is in force."""
    libc = _glibc()
    if libc is None:
        return False
    if _started.is_set():
        return True
    _started.set()
    libc.mallopt(_M_ARENA_MAX, arenas)

    def run() -> None:
        while True:
            time.sleep(every)
            libc.malloc_trim(0)

    threading.Thread(target=run, name="malloc-trim", daemon=True).start()
    return True
