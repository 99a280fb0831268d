"""Fewer garbage collections during long builds (the site, the workbook).

A build makes millions of short-lived SymPy objects; CPython's cyclic collector then walks every object
alive, and in a process that already holds a large heap (a notebook, a test session, a long CLI run) each
full collection costs more than the build step that triggered it. While paused, the objects that existed
before are frozen (not walked again) and the first generation collects less often; both are restored after.
Reference counting still frees almost everything at once; only cycles wait.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: allocations between young collections while paused (CPython's default is 700)
THRESHOLD = 50_000


@contextmanager
def fewer_collections() -> Iterator[None]:
    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(old[0], THRESHOLD), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()
