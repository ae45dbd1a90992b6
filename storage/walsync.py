"""Group commit for a storage node: many writers, one shared WAL fsync at a time.

A caller writes its batch unsynced, then ``await flusher.sync()``.  The first caller
starts a flush in a worker thread; callers arriving while a flush is in flight wait for
the *next* flush (theirs may have been written after the in-flight fsync began), and all
of them share it.  ``snapshot()`` is taken on the event loop just before each flush
starts, so it describes state made of writes that the flush covers; ``on_durable`` gets
it once the fsync returns.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class GroupFlusher:
    def __init__(
        self,
        flush: Callable[[], None],
        snapshot: Callable[[], Any] = lambda: None,
        on_durable: Callable[[Any], None] = lambda _: None,
    ) -> None:
        self._flush = flush
        self._snapshot = snapshot
        self._on_durable = on_durable
        self._waiters: list[asyncio.Future] = []
        self._task: asyncio.Task | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="walsync")
        self.flushes = 0

    async def sync(self) -> None:
        """Return once every write made before this call is durable."""
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        await fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiters:
                waiters, self._waiters = self._waiters, []
                snap = self._snapshot()
                try:
                    await loop.run_in_executor(self._pool, self._flush)
                except Exception as e:  # noqa: BLE001 -- handed to every waiter
                    for w in waiters:
                        if not w.done():
                            w.set_exception(e)
                    continue
                self.flushes += 1
                self._on_durable(snap)
                for w in waiters:
                    if not w.done():
                        w.set_result(None)
        finally:
            self._task = None

    async def drain(self) -> None:
        """Wait for the in-flight flush (if any) to finish."""
        while self._task is not None:
            await asyncio.sleep(0.005)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
