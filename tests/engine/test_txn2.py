"""Savepoints, SET LOCAL / transactional SET, FOR UPDATE (NOWAIT / SKIP LOCKED), deadlocks, timeouts."""

from __future__ import annotations

import asyncio

import pytest

from engine import errors
from tests.engine.conftest import new_db, one, run


async def _db():
    db = await new_db()
    s = db.session("u", "postgres", {})
    await run(s, "create table acct (id int primary key, bal int)")
    await run(s, "insert into acct values (1, 1), (2, 100)")
    return db, s


def test_savepoints(arun):
    async def body():
        _, s = await _db()
        with pytest.raises(errors.SqlError) as ei:
            await run(s, "savepoint a")
        assert ei.value.sqlstate == "25P01"
        await run(s, "begin; update acct set bal = 10 where id = 1; savepoint a")
        await run(s, "update acct set bal = 20 where id = 1; insert into acct values (3, 3)")
        with pytest.raises(errors.DivisionByZero):
            await run(s, "select 1/0")
        assert (await one(s, "rollback to savepoint a")).command_tag == "ROLLBACK"
        assert s.transaction_status == "T"
        assert (await one(s, "select id, bal from acct order by id")).rows == [(1, 10), (2, 100)]
        await run(s, "savepoint b; delete from acct where id = 2; release savepoint b")
        with pytest.raises(errors.SqlError) as ei:
            await run(s, "rollback to b")
        assert ei.value.sqlstate == "3B001"
        await run(s, "rollback to a; commit")
        assert (await one(s, "select id, bal from acct order by id")).rows == [(1, 10), (2, 100)]

    arun(body())


def test_set_local_and_transactional_set(arun):
    async def body():
        _, s = await _db()
        await run(s, "set work_mem = '4MB'")
        await run(s, "begin; set local work_mem = '8MB'")
        assert (await one(s, "show work_mem")).rows == [("8MB",)]
        await run(s, "commit")
        assert (await one(s, "show work_mem")).rows == [("4MB",)]
        await run(s, "begin; set work_mem = '16MB'; rollback")
        assert (await one(s, "show work_mem")).rows == [("4MB",)]
        await run(s, "begin; set work_mem = '16MB'; commit")
        assert (await one(s, "show work_mem")).rows == [("16MB",)]

    arun(body())


def test_for_update_nowait_skip_locked(arun):
    async def body():
        db, s = await _db()
        o = db.session("v", "postgres", {})
        await run(s, "begin")
        assert (await one(s, "select bal from acct where id = 1 for update")).rows == [(1,)]
        await run(o, "begin")
        with pytest.raises(errors.SqlError) as ei:
            await run(o, "select * from acct where id = 1 for update nowait")
        assert ei.value.sqlstate == "55P03"
        await run(o, "rollback; begin")
        assert (await one(o, "select id from acct for update skip locked")).rows == [(2,)]
        await run(o, "rollback")
        # a waiting locker gets the row after the holder commits, re-reading the new value
        waiter = asyncio.create_task(one(o, "select bal from acct where id = 1 for update"))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        await run(s, "update acct set bal = 5 where id = 1; commit")
        assert (await waiter).rows == [(5,)]

    arun(body())


def test_deadlock_and_statement_timeout(arun):
    async def body():
        db, a = await _db()
        b = db.session("v", "postgres", {})
        await run(a, "begin; update acct set bal = 0 where id = 1")
        await run(b, "begin; update acct set bal = 0 where id = 2")
        ta = asyncio.create_task(run(a, "update acct set bal = 0 where id = 2"))
        await asyncio.sleep(0.05)
        with pytest.raises(errors.DeadlockDetected) as ei:
            await run(b, "update acct set bal = 0 where id = 1")
        assert ei.value.sqlstate == "40P01"
        await run(b, "rollback")
        await ta
        await run(a, "commit")
        c = db.session("w", "postgres", {})
        await run(a, "begin; update acct set bal = 1 where id = 1")
        await run(c, "set statement_timeout = 100")
        with pytest.raises(errors.SqlError) as ei:
            await run(c, "update acct set bal = 2 where id = 1")
        assert ei.value.sqlstate == "57014"
        await run(a, "rollback")

    arun(body())
