"""Fixtures of the engine tests (helpers in sqlconn.py): ``pgdb(words)`` makes a ``Db`` of
connections to the shared cluster with this test's own table names; ``pool`` runs
statements that must block."""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlconn import Db, Names


@pytest.fixture
def pgdb(cluster: Any) -> Iterator[Callable[..., Db]]:
    made: list[Db] = []

    def make(words: str = "") -> Db:
        db = Db(cluster.writer_dsn, cluster.reader_dsn, Names("e" + uuid.uuid4().hex[:8], words))
        made.append(db)
        return db

    yield make
    for db in made:
        db.cleanup()


@pytest.fixture
def pool() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    """Threads for statements that must block on another session's lock."""
    ex = concurrent.futures.ThreadPoolExecutor(4)
    yield ex
    # not waiting: a thread still blocked ends when pgdb's teardown closes its connection
    ex.shutdown(wait=False, cancel_futures=True)




# -- in-process helpers of the tests not yet moved to the cluster (going away) -------------

async def run(session: Any, sql: str) -> list:
    out = []
    async for r in session.execute(sql):
        out.append(r)
    return out


async def one(session: Any, sql: str) -> Any:
    res = await run(session, sql)
    return res[-1]


async def new_db(read_only: bool = False) -> Any:
    from engine.database import Database
    from engine.memstore import MemoryStore

    db = Database(MemoryStore(read_only=read_only), instance_name="w1", role="writer")
    await db.start()
    return db


@pytest.fixture
def arun():
    import asyncio

    def _run(coro: Any) -> Any:
        return asyncio.run(asyncio.wait_for(coro, 10))

    return _run
