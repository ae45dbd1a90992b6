"""Transactions: rollback, failed blocks (25P02), read-only (25006), locks, conflicts, uniqueness."""

from __future__ import annotations

import asyncio

import pytest

from engine import errors
from tests.engine.conftest import new_db, one, run


async def _db_with_row():
    db = await new_db()
    s = db.session("u", "postgres", {})
    await run(s, "create table acct (id int primary key, bal int)")
    await run(s, "insert into acct values (1, 1), (2, 100)")
    return db, s


def test_rollback_and_own_writes(arun):
    async def body():
        db, s = await _db_with_row()
        other = db.session("v", "postgres", {})
        await run(s, "begin")
        assert s.transaction_status == "T"
        await run(s, "insert into acct values (3, 3)")
        await run(s, "update acct set bal = 50 where id = 1")
        assert (await one(s, "select bal from acct where id = 1")).rows == [(50,)]  # own write
        assert (await one(s, "select count(*) from acct")).rows == [(3,)]
        assert (await one(other, "select count(*) from acct")).rows == [(2,)]  # not visible to others
        assert (await one(s, "rollback")).command_tag == "ROLLBACK"
        assert (await one(s, "select bal from acct where id = 1")).rows == [(1,)]
        assert s.transaction_status == "I"

    arun(body())


def test_failed_transaction_block(arun):
    async def body():
        db, s = await _db_with_row()
        await run(s, "begin; update acct set bal = 7 where id = 1")
        with pytest.raises(errors.DivisionByZero):
            await run(s, "select 1/0")
        assert s.transaction_status == "E"
        with pytest.raises(errors.InFailedTransaction) as ei:
            await run(s, "select 1")
        assert ei.value.sqlstate == "25P02"
        r = await one(s, "commit")
        assert r.command_tag == "ROLLBACK" and s.transaction_status == "I"
        assert (await one(s, "select bal from acct where id = 1")).rows == [(1,)]

    arun(body())


def test_ddl_is_transactional(arun):
    async def body():
        db, s = await _db_with_row()
        await run(s, "begin; create table tmp (a int); insert into tmp values (1)")
        assert (await one(s, "select count(*) from tmp")).rows == [(1,)]
        other = db.session("v", "postgres", {})
        with pytest.raises(errors.UndefinedTable):
            await run(other, "select * from tmp")
        await run(s, "rollback")
        with pytest.raises(errors.UndefinedTable):
            await run(s, "select * from tmp")
        await run(s, "drop table acct")
        with pytest.raises(errors.UndefinedTable) as ei:
            await run(s, "drop table acct")
        assert ei.value.message == 'table "acct" does not exist'
        r = await one(s, "drop table if exists acct, nothing")
        assert r.command_tag == "DROP TABLE" and len(r.notices) == 2

    arun(body())


def test_read_only_store(arun):
    async def body():
        db, s = await _db_with_row()
        db.store.read_only = True
        r = db.session("u", "postgres", {})
        assert (await one(r, "select bal from acct where id = 2")).rows == [(100,)]
        with pytest.raises(errors.ReadOnlyTransaction) as ei:
            await run(r, "insert into acct values (5, 5)")
        assert ei.value.sqlstate == "25006"
        assert ei.value.message == "cannot execute INSERT in a read-only transaction"
        with pytest.raises(errors.ReadOnlyTransaction):
            await run(r, "create table z (a int)")

    arun(body())


def test_lock_wait_read_committed_sees_update(arun):
    async def body():
        db, s1 = await _db_with_row()
        s2 = db.session("v", "postgres", {})
        await run(s1, "begin; update acct set bal = bal + 1 where id = 1")
        task = asyncio.create_task(one(s2, "update acct set bal = bal * 10 where id = 1 returning bal"))
        await asyncio.sleep(0.01)
        assert not task.done()  # blocked on s1's row lock
        await run(s1, "commit")
        r = await task
        assert r.rows == [(20,)]  # re-ran on the committed value (1 + 1) * 10
        assert (await one(s1, "select bal from acct where id = 1")).rows == [(20,)]

    arun(body())


def test_lock_wait_repeatable_read_fails(arun):
    async def body():
        db, s1 = await _db_with_row()
        s2 = db.session("v", "postgres", {})
        await run(s2, "begin isolation level repeatable read")
        assert (await one(s2, "select bal from acct where id = 1")).rows == [(1,)]
        await run(s1, "begin; update acct set bal = 5 where id = 1")
        task = asyncio.create_task(one(s2, "update acct set bal = 6 where id = 1"))
        await asyncio.sleep(0.01)
        assert not task.done()
        await run(s1, "commit")
        with pytest.raises(errors.SerializationFailure) as ei:
            await task
        assert ei.value.sqlstate == "40001"
        assert (await one(s2, "rollback")).command_tag == "ROLLBACK"
        assert (await one(s2, "select bal from acct where id = 1")).rows == [(5,)]

    arun(body())


def test_repeatable_read_snapshot_and_conflict_without_wait(arun):
    async def body():
        db, s1 = await _db_with_row()
        s2 = db.session("v", "postgres", {})
        await run(s2, "begin transaction isolation level repeatable read; select 1")
        await run(s1, "update acct set bal = 9 where id = 2")  # autocommit, after s2's snapshot
        assert (await one(s2, "select bal from acct where id = 2")).rows == [(100,)]
        with pytest.raises(errors.SerializationFailure):
            await run(s2, "update acct set bal = 0 where id = 2")

    arun(body())


def test_concurrent_duplicate_insert(arun):
    async def body():
        db, s1 = await _db_with_row()
        s2 = db.session("v", "postgres", {})
        await run(s1, "begin; insert into acct values (7, 7)")
        task = asyncio.create_task(run(s2, "insert into acct values (7, 70)"))
        await asyncio.sleep(0.01)
        assert not task.done()
        await run(s1, "commit")
        with pytest.raises(errors.UniqueViolation) as ei:
            await task
        assert ei.value.sqlstate == "23505" and ei.value.detail == "Key (id)=(7) already exists."
        assert (await one(s2, "select bal from acct where id = 7")).rows == [(7,)]

    arun(body())


def test_concurrent_duplicate_insert_after_rollback_succeeds(arun):
    async def body():
        db, s1 = await _db_with_row()
        s2 = db.session("v", "postgres", {})
        await run(s1, "begin; insert into acct values (8, 8)")
        task = asyncio.create_task(run(s2, "insert into acct values (8, 80)"))
        await asyncio.sleep(0.01)
        await run(s1, "rollback")
        assert (await task)[0].command_tag == "INSERT 0 1"
        assert (await one(s1, "select bal from acct where id = 8")).rows == [(80,)]

    arun(body())


def test_unique_constraint(arun):
    async def body():
        db = await new_db()
        s = db.session("u", "postgres", {})
        await run(s, "create table un (id serial primary key, email text unique)")
        await run(s, "insert into un (email) values ('a'), (null), (null)")
        with pytest.raises(errors.UniqueViolation) as ei:
            await run(s, "insert into un (email) values ('a')")
        assert ei.value.message == 'duplicate key value violates unique constraint "un_email_key"'

    arun(body())


def test_empty_write_set_does_not_commit(arun):
    async def body():
        db, s = await _db_with_row()
        lsn = db.store.snapshot()
        await run(s, "select * from acct; begin; select 1; commit")
        await run(s, "update acct set bal = 0 where id = 999")
        assert db.store.snapshot() == lsn

    arun(body())


def test_catalog_survives_restart(arun):
    async def body():
        db, s = await _db_with_row()
        from engine.database import Database

        db2 = Database(db.store, instance_name="w2", role="writer")
        await db2.start()
        s2 = db2.session("u", "postgres", {})
        assert (await one(s2, "select bal from acct where id = 2")).rows == [(100,)]
        with pytest.raises(errors.UndefinedDatabase):
            db2.session("u", "nodb", {})

    arun(body())
