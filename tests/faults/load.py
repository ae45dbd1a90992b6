"""Write load for fault tests: concurrent asyncpg clients committing two-table transactions.

Each transaction inserts the same id into ``fa`` and ``fb`` (tables in different protection
groups), so a half-applied transaction is visible as an id in one table only.  Every id whose
COMMIT was acknowledged is recorded in ``acked``; latencies of acknowledged commits in
``latencies``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field

import asyncpg
import psycopg

SCHEMA = (
    "CREATE TABLE fa (id bigint PRIMARY KEY, v text)",
    "CREATE TABLE fb (id bigint PRIMARY KEY, v text)",
)


@dataclass
class Load:
    dsn: str
    workers: int = 4
    acked: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    latencies: list[tuple[float, float]] = field(default_factory=list)  # (start time, seconds)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def create_schema(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for stmt in SCHEMA:
                conn.execute(stmt)

    def start(self) -> "Load":
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=120)

    def count(self) -> int:
        return len(self.acked)

    def wait_for_progress(self, more: int, timeout: float) -> bool:
        target = self.count() + more
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= target:
                return True
            time.sleep(0.05)
        return False

    async def _main(self) -> None:
        await asyncio.gather(*(self._worker(w) for w in range(self.workers)))

    async def _worker(self, w: int) -> None:
        n = 0
        while not self._stop.is_set():
            try:
                conn = await asyncpg.connect(self.dsn, timeout=3)
            except Exception as e:  # noqa: BLE001 - the cluster may be mid-fault
                self.errors.append(f"connect: {e}")
                await asyncio.sleep(0.1)
                continue
            try:
                while not self._stop.is_set():
                    ident = w * 10_000_000 + n
                    n += 1
                    t0 = time.monotonic()
                    async with conn.transaction():
                        await conn.execute("INSERT INTO fa VALUES ($1, 'a')", ident)
                        await conn.execute("INSERT INTO fb VALUES ($1, 'b')", ident)
                    self.latencies.append((t0, time.monotonic() - t0))
                    self.acked.append(ident)
            except Exception as e:  # noqa: BLE001
                self.errors.append(f"{type(e).__name__}: {e}")
                await asyncio.sleep(0.05)
            finally:
                conn.terminate()


def verify(dsn: str, acked: list[int]) -> tuple[set[int], set[int]]:
    """Every acknowledged id is present in both tables; no id is in only one."""
    deadline = time.monotonic() + 30
    while True:
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
                a = {r[0] for r in conn.execute("SELECT id FROM fa").fetchall()}
                b = {r[0] for r in conn.execute("SELECT id FROM fb").fetchall()}
            break
        except psycopg.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    missing = set(acked) - a
    assert not missing, f"{len(missing)} acknowledged commits lost, e.g. {sorted(missing)[:5]}"
    assert a == b, f"half-applied transactions visible: {sorted(a ^ b)[:10]}"
    return a, b
