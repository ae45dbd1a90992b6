"""Helpers: a Database over a MemoryStore, and a synchronous-looking query helper."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from engine.database import Database
from engine.memstore import MemoryStore


async def run(session: Any, sql: str) -> list:
    out = []
    async for r in session.execute(sql):
        out.append(r)
    return out


async def one(session: Any, sql: str) -> Any:
    res = await run(session, sql)
    return res[-1]


async def new_db(read_only: bool = False) -> Database:
    db = Database(MemoryStore(read_only=read_only), instance_name="w1", role="writer")
    await db.start()
    return db


@pytest.fixture
def arun():
    def _run(coro: Any) -> Any:
        return asyncio.run(asyncio.wait_for(coro, 10))

    return _run
