"""Bulk steps (a COPY chunk, a table rewrite) run with Python's cyclic GC paused.

A bulk step allocates millions of short-lived containers (split lines, row tuples, buffer
entries) on an instance whose cache already holds millions of objects.  Allocation counts
trigger collections, and every full collection walks the whole heap: during a 1 M-row load
that was about half the writer's time.  Reference counting still frees everything the step
drops; the objects it keeps are examined once, by the first collection after it.  Only
synchronous steps pause it (the event loop runs nothing else meanwhile), and a nested or
concurrent pause leaves the GC as the outermost one found it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
