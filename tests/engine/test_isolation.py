"""Isolation levels through a real cluster: PostgreSQL's anomaly table, row locks, timeouts.

Each test drives two or three asyncpg sessions step by step (no timing races: a session
that must block is shown to be blocked by a short bounded wait, then released by the other
session's COMMIT/ROLLBACK).  Expected outcomes are PostgreSQL 15's: with
``ISOLATION_DSN=postgresql://...`` the same tests run against a real PostgreSQL server
(the reader-endpoint test is skipped there), which is how they were checked.

    anomaly                 READ COMMITTED   REPEATABLE READ   SERIALIZABLE
    dirty read              no               no                no
    dirty write             no (blocks)      no (blocks)       no (blocks)
    non-repeatable read     yes              no                no
    phantom read            yes              no                no
    lost update             no (re-check)    no (40001)        no (40001)
    read skew               yes              no                no
    write skew              yes              yes               no (40001)
    read-only anomaly       yes              yes               no (40001)
"""

from __future__ import annotations

import asyncio
import os
from typing import Any, Awaitable

import asyncpg
import pytest

RC, RR, SER = "read committed", "repeatable read", "serializable"
LEVELS = pytest.mark.parametrize("level", [RC, RR, SER], ids=["rc", "rr", "ser"])
BLOCK_PROBE = 0.3  # seconds a blocked statement must stay blocked to count as blocked


@pytest.fixture
def dsn(request: pytest.FixtureRequest) -> str:
    override = os.environ.get("ISOLATION_DSN")
    if override:
        return override
    return request.getfixturevalue("cluster").writer_dsn


def run(coro: Awaitable[Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


class Sessions:
    """``async with Sessions(dsn, n) as (a, b, ...)``; connections are terminated on exit
    (a session left blocked by a failing test cannot hang the next one)."""

    def __init__(self, dsn: str, n: int) -> None:
        self.dsn, self.n = dsn, n
        self.conns: list[asyncpg.Connection] = []

    async def __aenter__(self) -> list[asyncpg.Connection]:
        self.conns = [await asyncpg.connect(self.dsn) for _ in range(self.n)]
        return self.conns

    async def __aexit__(self, *exc: Any) -> None:
        for c in self.conns:
            c.terminate()


async def setup(dsn: str, *sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for s in sql:
            await conn.execute(s)
    finally:
        await conn.close()


async def begin(conn: asyncpg.Connection, level: str) -> None:
    await conn.execute(f"BEGIN ISOLATION LEVEL {level}")


async def sqlstate(aw: Awaitable[Any]) -> str | None:
    """Await ``aw``; the SQLSTATE it failed with, or None when it succeeded."""
    try:
        await aw
    except asyncpg.PostgresError as e:
        return e.sqlstate
    return None


async def is_blocked(task: asyncio.Task) -> bool:
    done, _ = await asyncio.wait({task}, timeout=BLOCK_PROBE)
    return not done


def table(name: str, level: str) -> str:
    return f"iso_{name}_{level.split()[0][:4]}"


# -- the anomaly table -----------------------------------------------------------------------

@LEVELS
def test_dirty_read_never(dsn: str, level: str) -> None:
    t = table("dirty_read", level)

    async def body() -> None:
        await setup(dsn, f"DROP TABLE IF EXISTS {t}", f"CREATE TABLE {t} (id int PRIMARY KEY, v int)",
                    f"INSERT INTO {t} VALUES (1, 10)")
        async with Sessions(dsn, 2) as (a, b):
            await a.execute("BEGIN")
            await a.execute(f"UPDATE {t} SET v = 99 WHERE id = 1")
            await a.execute(f"INSERT INTO {t} VALUES (2, 20)")
            await begin(b, level)
            assert await b.fetch(f"SELECT id, v FROM {t} ORDER BY id") == [(1, 10)]
            await a.execute("ROLLBACK")
            assert await b.fetch(f"SELECT id, v FROM {t} ORDER BY id") == [(1, 10)]
            await b.execute("COMMIT")

    run(body())


@LEVELS
def test_dirty_write_blocks_until_first_writer_ends(dsn: str, level: str) -> None:
    """The second writer of a row waits; after the first rolls back it proceeds on the old row."""
    t = table("dirty_write", level)

    async def body() -> None:
        await setup(dsn, f"DROP TABLE IF EXISTS {t}", f"CREATE TABLE {t} (id int PRIMARY KEY, v int)",
                    f"INSERT INTO {t} VALUES (1, 10)")
        async with Sessions(dsn, 2) as (a, b):
            await a.execute("BEGIN")
            await a.execute(f"UPDATE {t} SET v = 100 WHERE id = 1")
            await begin(b, level)
            second = asyncio.ensure_future(b.execute(f"UPDATE {t} SET v = v + 1 WHERE id = 1"))
            assert await is_blocked(second)
            await a.execute("ROLLBACK")
            assert await second == "UPDATE 1"
            await b.execute("COMMIT")
            assert await a.fetchval(f"SELECT v FROM {t} WHERE id = 1") == 11

    run(body())


@LEVELS
def test_lost_update(dsn: str, level: str) -> None:
    """Two read-modify-write increments: READ COMMITTED re-evaluates the second UPDATE on the
    committed row (no update lost); REPEATABLE READ and SERIALIZABLE fail it with 40001."""
    t = table("lost_update", level)

    async def body() -> None:
        await setup(dsn, f"DROP TABLE IF EXISTS {t}", f"CREATE TABLE {t} (id int PRIMARY KEY, n int)",
                    f"INSERT INTO {t} VALUES (1, 10)")
        async with Sessions(dsn, 2) as (a, b):
            await begin(a, level)
            await begin(b, level)
            assert await b.fetchval(f"SELECT n FROM {t} WHERE id = 1") == 10  # b's snapshot
            await a.execute(f"UPDATE {t} SET n = n + 1 WHERE id = 1")
            second = asyncio.ensure_future(b.execute(f"UPDATE {t} SET n = n + 1 WHERE id = 1"))
            assert await is_blocked(second)
            await a.execute("COMMIT")
            state = await sqlstate(second)
            if level == RC:
                assert state is None
                assert await b.fetchval(f"SELECT n FROM {t} WHERE id = 1") == 12
                await b.execute("COMMIT")
            else:
                assert state == "40001"
                await b.execute("ROLLBACK")
            assert await a.fetchval(f"SELECT n FROM {t} WHERE id = 1") == (12 if level == RC else 11)

    run(body())


@LEVELS
def test_update_without_wait_after_concurrent_commit(dsn: str, level: str) -> None:
    """The row changed and committed after the snapshot (no lock wait): RR/SER 40001 at once."""
    t = table("late_update", level)

    async def body() -> None:
        await setup(dsn, f"DROP TABLE IF EXISTS {t}", f"CREATE TABLE {t} (id int PRIMARY KEY, n int)",
                    f"INSERT INTO {t} VALUES (1, 10)")
        async with Sessions(dsn, 2) as (a, b):
            await begin(b, level)
            assert await b.fetchval(f"SELECT n FROM {t} WHERE id = 1") == 10
            await a.execute(f"UPDATE {t} SET n = 50 WHERE id = 1")
            state = await sqlstate(b.execute(f"DELETE FROM {t} WHERE id = 1"))
            assert state == (None if level == RC else "40001")
            await b.execute("COMMIT")
            assert await a.fetchval(f"SELECT count(*) FROM {t}") == (0 if level == RC else 1)

    run(body())


@LEVELS
def test_non_repeatable_read(dsn: str, level: str) -> None:
    t = table("nonrep", level)

    async def body() -> None:
        await setup(dsn, f"DROP TABLE IF EXISTS {t}", f"CREATE TABLE {t} (id int PRIMARY KEY, v int)",
                    f"INSERT INTO {t} VALUES (1, 10)")
        async with Sessions(dsn, 2) as (a, b):
            await begin(a, level)
            assert await a.fetchval(f"SELECT v FROM {t} WHERE id = 1") == 10
            await b.execute(f"UPDATE {t} SET v = 20 WHERE id = 1")
            assert await a.fetchval(f"SELECT v FROM {t} WHERE id = 1") == (20 if level == RC else 10)
            await a.execute("COMMIT")
            assert await a.fetchval(f"SELECT v FROM {t} WHERE id = 1") == 20

    run(body())


@LEVELS
def test_phantom_read(dsn: str, level: str) -> None:
    t = table("phantom", level)

    async def body() -> None:
        await setup(dsn, f"DROP TABLE IF EXISTS {t}", f"CREATE TABLE {t} (id int PRIMARY KEY, grp int)",
                    f"INSERT INTO {t} VALUES (1, 1), (2, 1), (3, 2)")
        async with Sessions(dsn, 2) as (a, b):
            await begin(a, level)
            assert await a.fetchval(f"SELECT count(*) FROM {t} WHERE grp = 1") == 2
            await b.execute(f"INSERT INTO {t} VALUES (4, 1)")
            await b.execute(f"DELETE FROM {t} WHERE id = 1")
            got = await a.fetch(f"SELECT id FROM {t} WHERE grp = 1 ORDER BY id")
            assert [r[0] for r in got] == ([2, 4] if level == RC else [1, 2])
            await a.execute("COMMIT")

    run(body())


@LEVELS
def test_read_skew(dsn: str, level: str) -> None:
    """A transfer commits between a reader's two reads: only READ COMMITTED sees a total that
    never existed."""
    t = table("read_skew", level)

    async def body() -> None:
        await setup(dsn, f"DROP TABLE IF EXISTS {t}", f"CREATE TABLE {t} (id int PRIMARY KEY, bal int)",
                    f"INSERT INTO {t} VALUES (1, 50), (2, 50)")
        async with Sessions(dsn, 2) as (a, b):
            await begin(a, level)
            x = await a.fetchval(f"SELECT bal FROM {t} WHERE id = 1")
            await b.execute(f"BEGIN; UPDATE {t} SET bal = bal - 10 WHERE id = 1; "
                            f"UPDATE {t} SET bal = bal + 10 WHERE id = 2; COMMIT")
            y = await a.fetchval(f"SELECT bal FROM {t} WHERE id = 2")
            assert x + y == (110 if level == RC else 100)
            await a.execute("COMMIT")

    run(body())


@LEVELS
def test_write_skew(dsn: str, level: str) -> None:
    """Two doctors on call each go off call after checking that the other is still on call:
    allowed below SERIALIZABLE; SERIALIZABLE fails the second committer with 40001."""
    t = table("write_skew", level)

    async def body() -> None:
        await setup(dsn, f"DROP TABLE IF EXISTS {t}", f"CREATE TABLE {t} (name text PRIMARY KEY, on_call bool)",
                    f"INSERT INTO {t} VALUES ('alice', true), ('bob', true)")
        async with Sessions(dsn, 2) as (a, b):
            await begin(a, level)
            await begin(b, level)
            assert await a.fetchval(f"SELECT count(*) FROM {t} WHERE on_call") == 2
            assert await b.fetchval(f"SELECT count(*) FROM {t} WHERE on_call") == 2
            await a.execute(f"UPDATE {t} SET on_call = false WHERE name = 'alice'")
            await b.execute(f"UPDATE {t} SET on_call = false WHERE name = 'bob'")
            await a.execute("COMMIT")
            state = await sqlstate(b.execute("COMMIT"))
            on_call = await a.fetchval(f"SELECT count(*) FROM {t} WHERE on_call")
            if level == SER:
                assert state == "40001" and on_call == 1
            else:
                assert state is None and on_call == 0

    run(body())


def test_serializable_disjoint_writers_both_commit(dsn: str) -> None:
    """No false alarm: SERIALIZABLE transactions reading and writing different rows by key."""
    t = "iso_ser_disjoint"

    async def body() -> None:
        await setup(dsn, f"DROP TABLE IF EXISTS {t}", f"CREATE TABLE {t} (id int PRIMARY KEY, v int)",
                    f"INSERT INTO {t} VALUES (1, 0), (2, 0)")
        async with Sessions(dsn, 2) as (a, b):
            await begin(a, SER)
            await begin(b, SER)
            assert await a.fetchval(f"SELECT v FROM {t} WHERE id = 1") == 0
            assert await b.fetchval(f"SELECT v FROM {t} WHERE id = 2") == 0
            await a.execute(f"UPDATE {t} SET v = 1 WHERE id = 1")
            await b.execute(f"UPDATE {t} SET v = 2 WHERE id = 2")
            await a.execute("COMMIT")
            await b.execute("COMMIT")
            assert await a.fetch(f"SELECT v FROM {t} ORDER BY id") == [(1,), (2,)]

    run(body())


@pytest.mark.parametrize("level", [RR, SER], ids=["rr", "ser"])
def test_read_only_transaction_anomaly(dsn: str, level: str) -> None:
    """A receipt is added to the current batch while the batch is closed; a read-only report
    then sees the batch closed but not the receipt.  SERIALIZABLE lets the report commit and
    fails the receipt's transaction (the pivot) at COMMIT with 40001; REPEATABLE READ commits
    both, and the report's total for the closed batch is wrong."""
    c, r = table("ro_control", level), table("ro_receipt", level)

    async def body() -> None:
        await setup(dsn, f"DROP TABLE IF EXISTS {c}", f"DROP TABLE IF EXISTS {r}",
                    f"CREATE TABLE {c} (deposit_no int NOT NULL)", f"INSERT INTO {c} VALUES (1)",
                    f"CREATE TABLE {r} (receipt_no int PRIMARY KEY, deposit_no int, amount numeric)",
                    f"INSERT INTO {r} VALUES (1, 1, 1.00), (2, 1, 2.00)")
        async with Sessions(dsn, 3) as (ins, close, report):
            await begin(ins, level)
            await ins.execute(f"INSERT INTO {r} VALUES (3, (SELECT deposit_no FROM {c}), 4.00)")
            await begin(close, level)
            assert await close.fetchval(f"SELECT deposit_no FROM {c}") == 1
            await close.execute(f"UPDATE {c} SET deposit_no = 2")
            await close.execute("COMMIT")
            await begin(report, level)
            await report.execute("SET TRANSACTION READ ONLY")
            assert await report.fetchval(f"SELECT deposit_no FROM {c}") == 2
            assert await report.fetchval(f"SELECT sum(amount) FROM {r} WHERE deposit_no = 1") == 3
            await report.execute("COMMIT")
            state = await sqlstate(ins.execute("COMMIT"))
            assert state == ("40001" if level == SER else None)
            assert await ins.fetchval(f"SELECT count(*) FROM {r}") == (2 if level == SER else 3)

    run(body())


# -- row locks ---------------------------------------------------------------------------------

@LEVELS
def test_select_for_update_returns_committed_version(dsn: str, level: str) -> None:
    """FOR UPDATE waits for the writer; READ COMMITTED then locks and returns the new version
    (if it still matches), REPEATABLE READ / SERIALIZABLE fail with 40001."""
    t = table("for_update", level)

    async def body() -> None:
        await setup(dsn, f"DROP TABLE IF EXISTS {t}", f"CREATE TABLE {t} (id int PRIMARY KEY, v int)",
                    f"INSERT INTO {t} VALUES (1, 10), (2, 10)")
        async with Sessions(dsn, 2) as (a, b):
            await begin(b, level)
            assert await b.fetchval(f"SELECT count(*) FROM {t}") == 2  # b's snapshot is taken
            await a.execute("BEGIN")
            await a.execute(f"UPDATE {t} SET v = 20 WHERE id = 1")
            await a.execute(f"UPDATE {t} SET v = 99 WHERE id = 2")
            locker = asyncio.ensure_future(b.fetch(f"SELECT id, v FROM {t} WHERE v < 50 ORDER BY id FOR UPDATE"))
            assert await is_blocked(locker)
            await a.execute("COMMIT")
            if level == RC:
                assert await locker == [(1, 20)]  # row 2 no longer matches v < 50
                update = asyncio.ensure_future(a.execute(f"UPDATE {t} SET v = 0 WHERE id = 1"))
                assert await is_blocked(update)  # b holds the row lock now
                await b.execute("COMMIT")
                assert await update == "UPDATE 1"
            else:
                assert await sqlstate(locker) == "40001"
                await b.execute("ROLLBACK")

    run(body())


def test_for_share_shares_and_blocks_writers(dsn: str) -> None:
    t = "iso_for_share"

    async def body() -> None:
        await setup(dsn, f"DROP TABLE IF EXISTS {t}", f"CREATE TABLE {t} (id int PRIMARY KEY, v int)",
                    f"INSERT INTO {t} VALUES (1, 10)")
        async with Sessions(dsn, 3) as (a, b, c):
            await a.execute("BEGIN")
            assert await a.fetchval(f"SELECT v FROM {t} WHERE id = 1 FOR SHARE") == 10
            await b.execute("BEGIN")
            assert await b.fetchval(f"SELECT v FROM {t} WHERE id = 1 FOR SHARE") == 10  # not blocked
            assert await sqlstate(c.execute(f"SELECT v FROM {t} WHERE id = 1 FOR UPDATE NOWAIT")) == "55P03"
            update = asyncio.ensure_future(c.execute(f"UPDATE {t} SET v = 11 WHERE id = 1"))
            assert await is_blocked(update)
            await a.execute("COMMIT")
            assert await is_blocked(update)  # b still shares the row
            await b.execute("COMMIT")
            assert await update == "UPDATE 1"

    run(body())


def test_nowait_and_skip_locked(dsn: str) -> None:
    t = "iso_queue"

    async def body() -> None:
        await setup(dsn, f"DROP TABLE IF EXISTS {t}", f"CREATE TABLE {t} (id int PRIMARY KEY, done bool)",
                    f"INSERT INTO {t} SELECT g, false FROM generate_series(1, 4) g")
        async with Sessions(dsn, 2) as (a, b):
            await a.execute("BEGIN")
            got = await a.fetch(f"SELECT id FROM {t} WHERE NOT done ORDER BY id LIMIT 2 FOR UPDATE SKIP LOCKED")
            assert [r[0] for r in got] == [1, 2]
            await b.execute("BEGIN")
            got = await b.fetch(f"SELECT id FROM {t} WHERE NOT done ORDER BY id LIMIT 2 FOR UPDATE SKIP LOCKED")
            assert [r[0] for r in got] == [3, 4]
            try:
                await b.fetch(f"SELECT id FROM {t} WHERE id = 1 FOR UPDATE NOWAIT")
                raise AssertionError("NOWAIT on a locked row must fail")
            except asyncpg.PostgresError as e:
                assert e.sqlstate == "55P03"
                assert str(e) == f'could not obtain lock on row in relation "{t}"'
            assert await sqlstate(b.execute("SELECT 1")) == "25P02"
            await b.execute("ROLLBACK")
            await a.execute("ROLLBACK")

    run(body())


def test_read_committed_recheck_skips_rows_that_stop_matching(dsn: str) -> None:
    """PostgreSQL's documented example: the DELETE waits on the row being updated, re-checks
    that row's new version (hits = 11, no longer 10) and keeps its own statement snapshot,
    in which no other row has hits = 10: nothing is deleted."""
    t = "iso_website"

    async def body() -> None:
        await setup(dsn, f"DROP TABLE IF EXISTS {t}", f"CREATE TABLE {t} (id int PRIMARY KEY, hits int)",
                    f"INSERT INTO {t} VALUES (1, 9), (2, 10)")
        async with Sessions(dsn, 2) as (a, b):
            await a.execute("BEGIN")
            await a.execute(f"UPDATE {t} SET hits = hits + 1")
            delete = asyncio.ensure_future(b.execute(f"DELETE FROM {t} WHERE hits = 10"))
            assert await is_blocked(delete)
            await a.execute("COMMIT")
            assert await delete == "DELETE 0"
            assert await b.fetch(f"SELECT id, hits FROM {t} ORDER BY id") == [(1, 10), (2, 11)]

    run(body())


def test_read_committed_waiting_update_keeps_its_snapshot(dsn: str) -> None:
    """A row inserted while an UPDATE waits for a lock is not in the UPDATE's snapshot:
    the statement is not restarted, it only re-checks the row it waited for."""
    t = "iso_rc_keep_snapshot"

    async def body() -> None:
        await setup(dsn, f"DROP TABLE IF EXISTS {t}", f"CREATE TABLE {t} (id int PRIMARY KEY, v int)",
                    f"INSERT INTO {t} VALUES (1, 0), (2, 0)")
        async with Sessions(dsn, 3) as (a, b, c):
            await a.execute("BEGIN")
            await a.execute(f"UPDATE {t} SET v = 10 WHERE id = 1")
            update = asyncio.ensure_future(b.execute(f"UPDATE {t} SET v = v + 1"))
            assert await is_blocked(update)
            await c.execute(f"INSERT INTO {t} VALUES (3, 0)")
            await a.execute("COMMIT")
            assert await update == "UPDATE 2"
            assert await c.fetch(f"SELECT id, v FROM {t} ORDER BY id") == [(1, 11), (2, 1), (3, 0)]

    run(body())


# -- deadlocks and timeouts --------------------------------------------------------------------

def test_deadlock_detected(dsn: str) -> None:
    t = "iso_deadlock"

    async def body() -> None:
        await setup(dsn, f"DROP TABLE IF EXISTS {t}", f"CREATE TABLE {t} (id int PRIMARY KEY, v int)",
                    f"INSERT INTO {t} VALUES (1, 0), (2, 0)")
        async with Sessions(dsn, 2) as (a, b):
            for conn in (a, b):
                await conn.execute("SET deadlock_timeout = '100ms'")
                await conn.execute("BEGIN")
            await a.execute(f"UPDATE {t} SET v = 1 WHERE id = 1")
            await b.execute(f"UPDATE {t} SET v = 2 WHERE id = 2")
            first = asyncio.ensure_future(sqlstate(a.execute(f"UPDATE {t} SET v = 1 WHERE id = 2")))
            assert await is_blocked(first)
            second = asyncio.ensure_future(sqlstate(b.execute(f"UPDATE {t} SET v = 2 WHERE id = 1")))
            # the victim's error aborts its transaction, which frees its lock for the other
            states = await asyncio.gather(first, second)
            assert sorted(states, key=str) == ["40P01", None]
            victim, survivor = (a, b) if states[0] == "40P01" else (b, a)
            await victim.execute("ROLLBACK")
            await survivor.execute("COMMIT")
            assert await a.fetchval(f"SELECT count(*) FROM {t} WHERE v = {1 if survivor is a else 2}") == 2

    run(body())


@pytest.mark.parametrize("guc,state", [("lock_timeout", "55P03"), ("statement_timeout", "57014")])
def test_lock_wait_timeouts(dsn: str, guc: str, state: str) -> None:
    t = f"iso_{guc}"

    async def body() -> None:
        await setup(dsn, f"DROP TABLE IF EXISTS {t}", f"CREATE TABLE {t} (id int PRIMARY KEY, v int)",
                    f"INSERT INTO {t} VALUES (1, 0)")
        async with Sessions(dsn, 2) as (a, b):
            await a.execute("BEGIN")
            await a.execute(f"UPDATE {t} SET v = 1 WHERE id = 1")
            await b.execute(f"SET {guc} = '200ms'")
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                await b.execute(f"UPDATE {t} SET v = 2 WHERE id = 1")
                raise AssertionError("the lock wait must time out")
            except asyncpg.PostgresError as e:
                assert e.sqlstate == state
                assert str(e) == ("canceling statement due to lock timeout" if guc == "lock_timeout"
                                  else "canceling statement due to statement timeout")
            assert 0.15 < loop.time() - started < 2.0
            await a.execute("COMMIT")
            assert await b.execute(f"UPDATE {t} SET v = 2 WHERE id = 1") == "UPDATE 1"  # no lock left

    run(body())


# -- savepoints and failed blocks ---------------------------------------------------------------

def test_rollback_to_savepoint_undoes_changes_and_frees_their_locks(dsn: str) -> None:
    t = "iso_savepoint"

    async def body() -> None:
        await setup(dsn, f"DROP TABLE IF EXISTS {t}", f"CREATE TABLE {t} (id int PRIMARY KEY, v int)",
                    f"INSERT INTO {t} VALUES (1, 0), (2, 0)")
        async with Sessions(dsn, 2) as (a, b):
            await a.execute("BEGIN")
            await a.execute(f"UPDATE {t} SET v = 1 WHERE id = 1")
            await a.execute("SAVEPOINT s1")
            await a.execute(f"UPDATE {t} SET v = 1 WHERE id = 2")
            await a.execute(f"INSERT INTO {t} VALUES (3, 1)")
            await a.execute("ROLLBACK TO SAVEPOINT s1")
            assert await a.fetch(f"SELECT id, v FROM {t} ORDER BY id") == [(1, 1), (2, 0)]
            # the row lock taken after the savepoint went with it; the one before stays
            assert await b.execute(f"UPDATE {t} SET v = 5 WHERE id = 2") == "UPDATE 1"
            blocked = asyncio.ensure_future(b.execute(f"UPDATE {t} SET v = 5 WHERE id = 1"))
            assert await is_blocked(blocked)
            await a.execute("COMMIT")
            assert await blocked == "UPDATE 1"
            assert await a.fetch(f"SELECT id, v FROM {t} ORDER BY id") == [(1, 5), (2, 5)]

    run(body())


def test_error_aborts_block_until_rollback(dsn: str) -> None:
    t = "iso_aborted"

    async def body() -> None:
        await setup(dsn, f"DROP TABLE IF EXISTS {t}", f"CREATE TABLE {t} (id int PRIMARY KEY, v int)",
                    f"INSERT INTO {t} VALUES (1, 0)")
        async with Sessions(dsn, 2) as (a, b):
            await a.execute("BEGIN")
            await a.execute(f"UPDATE {t} SET v = 1 WHERE id = 1")
            assert await sqlstate(a.execute(f"INSERT INTO {t} VALUES (1, 0)")) == "23505"
            assert await sqlstate(a.execute("SELECT 1")) == "25P02"
            assert await sqlstate(a.fetchval(f"SELECT v FROM {t}")) == "25P02"
            assert await a.execute("COMMIT") == "ROLLBACK"
            assert await b.fetchval(f"SELECT v FROM {t} WHERE id = 1") == 0
            # a savepoint taken before the error recovers the block
            await a.execute("BEGIN")
            await a.execute(f"UPDATE {t} SET v = 2 WHERE id = 1")
            await a.execute("SAVEPOINT before")
            assert await sqlstate(a.execute("SELECT 1/0")) == "22012"
            await a.execute("ROLLBACK TO before")
            assert await a.execute("COMMIT") == "COMMIT"
            assert await b.fetchval(f"SELECT v FROM {t} WHERE id = 1") == 2

    run(body())


# -- readers -------------------------------------------------------------------------------------

def test_reader_repeatable_read_is_one_snapshot(request: pytest.FixtureRequest) -> None:
    """A REPEATABLE READ transaction on a reader instance keeps its snapshot across
    statements while redo from the writer keeps arriving; a new transaction sees the change."""
    if os.environ.get("ISOLATION_DSN"):
        pytest.skip("needs a Borealis cluster's reader endpoint")
    cluster = request.getfixturevalue("cluster")
    acct, log_t = "iso_reader_acct", "iso_reader_log"

    async def seen(conn: asyncpg.Connection, want: int) -> None:
        for _ in range(100):
            if await conn.fetchval(f"SELECT count(*) FROM {log_t}") == want:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the reader never caught up")

    async def body() -> None:
        await setup(cluster.writer_dsn, f"DROP TABLE IF EXISTS {acct}", f"DROP TABLE IF EXISTS {log_t}",
                    f"CREATE TABLE {acct} (id int PRIMARY KEY, bal int)",
                    f"CREATE TABLE {log_t} (id int PRIMARY KEY, amount int)",
                    f"INSERT INTO {acct} VALUES (1, 100), (2, 100)")
        w = await asyncpg.connect(cluster.writer_dsn)
        r, probe = await asyncpg.connect(cluster.reader_dsn), await asyncpg.connect(cluster.reader_dsn)
        try:
            await seen(probe, 0)
            await r.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            assert await r.fetchval(f"SELECT sum(bal) FROM {acct}") == 200
            for i in range(1, 4):  # transfers that also log themselves, one transaction each
                await w.execute(f"BEGIN; UPDATE {acct} SET bal = bal - 10 WHERE id = 1; "
                                f"UPDATE {acct} SET bal = bal + 10 WHERE id = 2; "
                                f"INSERT INTO {log_t} VALUES ({i}, 10); COMMIT")
            await seen(probe, 3)  # the reader instance has applied all three
            assert await r.fetchval(f"SELECT count(*) FROM {log_t}") == 0
            assert await r.fetch(f"SELECT id, bal FROM {acct} ORDER BY id") == [(1, 100), (2, 100)]
            assert await sqlstate(r.execute(f"UPDATE {acct} SET bal = 0")) == "25006"
            await r.execute("ROLLBACK")
            assert await r.fetch(f"SELECT id, bal FROM {acct} ORDER BY id") == [(1, 70), (2, 130)]
        finally:
            for c in (w, r, probe):
                c.terminate()

    run(body())
