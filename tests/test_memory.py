"""explorer.memory: freed heap memory goes back to the system."""

from __future__ import annotations

import os
import threading

import pytest

from benchmarks.load import rss_mb as rss_of
from explorer import memory

glibc_only = pytest.mark.skipif(memory._glibc() is None, reason="malloc_trim is glibc's (Linux)")


def rss_mb() -> float:
    return rss_of(os.getpid())


@glibc_only
def test_trim_gives_freed_heap_pages_back():
    # 3,000 blocks of 64 kB (under malloc's mmap threshold, so from the heap), touched so they
    # count in RSS; the last one stays allocated, so free() alone cannot shrink the heap's top.
    blocks = [bytearray(b"x" * (64 * 1024)) for _ in range(3000)]
    pin = blocks[-1]
    full = rss_mb()
    del blocks[:-1]
    before = rss_mb()
    assert memory.trim()
    after = rss_mb()
    assert full - before < 50, "free() alone gave the pages back: the test no longer shows anything"
    assert before - after > 100, (before, after)
    assert pin[0] == ord("x")


@glibc_only
def test_return_freed_memory_starts_one_trimming_thread_per_process():
    assert memory.return_freed_memory(every=3600)
    assert memory.return_freed_memory(every=3600)
    names = [t.name for t in threading.enumerate()]
    assert names.count("malloc-trim") == 1
    assert all(t.daemon for t in threading.enumerate() if t.name == "malloc-trim")


def test_without_glibc_nothing_happens(monkeypatch):
    monkeypatch.setattr(memory.platform, "system", lambda: "Darwin")
    assert memory._glibc() is None
    assert memory.trim() is False
    assert memory.return_freed_memory() is False
