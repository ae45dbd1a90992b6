"""Bulk steps (a COPY chunk, a table rewrite) run with Python's cyclic GC paused.

A bulk step allocates millions of short-lived containers (split lines, row tuples, buffer
entries) on an instance whose cache already holds millions of objects.  Allocation counts
trigger collections, and every full collection walks the whole heap: during a 1 M-row load
that was about half the writer's time.  Reference counting still frees everything the step
drops.  What it keeps would all sit in the youngest generation at the end, and the first
allocation after re-enabling would walk them at once (about 6 s after a 1 M-row table
rewrite); ``gc.freeze()`` + ``gc.unfreeze()`` moves every tracked object to the oldest
generation in constant time instead, so they are examined by the next full collection,
like the rest of the long-lived heap.  Only synchronous steps pause it (the event loop
runs nothing else meanwhile), and a nested or concurrent pause leaves the GC as the
outermost one found it.
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
        gc.freeze()
        gc.unfreeze()
        gc.enable()
