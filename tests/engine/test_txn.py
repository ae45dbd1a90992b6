"""Transactions: rollback, failed blocks (25P02), read-only (25006), locks, conflicts, uniqueness."""

from __future__ import annotations

import asyncio

import asyncpg
import psycopg
import pytest
from sqlconn import is_blocked, message

from cluster import wait_for

WORDS = "acct tmp un un_email_key z"


def _db_with_row(pgdb):
    db = pgdb(WORDS)
    s = db.connect()
    s.run("create table acct (id int primary key, bal int)")
    s.run("insert into acct values (1, 1), (2, 100)")
    return db, s


def test_rollback_and_own_writes(pgdb):
    db, s = _db_with_row(pgdb)
    other = db.connect()
    s.run("begin")
    assert s.status == "T"
    s.run("insert into acct values (3, 3)")
    s.run("update acct set bal = 50 where id = 1")
    assert s.rows("select bal from acct where id = 1") == [(50,)]  # own write
    assert s.rows("select count(*) from acct") == [(3,)]
    assert other.rows("select count(*) from acct") == [(2,)]  # not visible to others
    assert s.tag("rollback") == "ROLLBACK"
    assert s.rows("select bal from acct where id = 1") == [(1,)]
    assert s.status == "I"


def test_failed_transaction_block(pgdb):
    _, s = _db_with_row(pgdb)
    s.run("begin; update acct set bal = 7 where id = 1")
    s.fails("select 1/0", "22012")
    assert s.status == "E"
    s.fails("select 1", "25P02")
    assert s.tag("commit") == "ROLLBACK" and s.status == "I"
    assert s.rows("select bal from acct where id = 1") == [(1,)]


def test_ddl_is_transactional(pgdb):
    db, s = _db_with_row(pgdb)
    s.run("begin; create table tmp (a int); insert into tmp values (1)")
    assert s.rows("select count(*) from tmp") == [(1,)]
    db.connect().fails("select * from tmp", "42P01")
    s.run("rollback")
    s.fails("select * from tmp", "42P01")
    s.run("drop table acct")
    assert message(s.fails("drop table acct", "42P01")) == s.names('table "acct" does not exist')
    s.notices.clear()
    assert s.tag("drop table if exists acct, nothing") == "DROP TABLE"
    assert len(s.notices) == 2


def test_read_only_store(pgdb):
    """A reader instance (the reader endpoint) serves reads and refuses writes with 25006."""
    db, _ = _db_with_row(pgdb)
    r = db.connect(reader=True)

    def replicated():
        try:
            return r.rows("select bal from acct where id = 2") == [(100,)]
        except psycopg.errors.UndefinedTable:
            return False

    wait_for(replicated, 30, "the reader to see the writer's table")
    e = r.fails("insert into acct values (5, 5)", "25006")
    assert message(e) == "cannot execute INSERT in a read-only transaction"
    r.fails("create table z (a int)", "25006")


def test_lock_wait_read_committed_sees_update(pgdb, pool):
    db, s1 = _db_with_row(pgdb)
    s2 = db.connect()
    s1.run("begin; update acct set bal = bal + 1 where id = 1")
    fut = pool.submit(s2.rows, "update acct set bal = bal * 10 where id = 1 returning bal")
    assert is_blocked(fut)  # on s1's row lock
    s1.run("commit")
    assert fut.result(timeout=10) == [(20,)]  # re-ran on the committed value (1 + 1) * 10
    assert s1.rows("select bal from acct where id = 1") == [(20,)]


def test_lock_wait_repeatable_read_fails(pgdb, pool):
    db, s1 = _db_with_row(pgdb)
    s2 = db.connect()
    s2.run("begin isolation level repeatable read")
    assert s2.rows("select bal from acct where id = 1") == [(1,)]
    s1.run("begin; update acct set bal = 5 where id = 1")
    fut = pool.submit(s2.run, "update acct set bal = 6 where id = 1")
    assert is_blocked(fut)
    s1.run("commit")
    with pytest.raises(psycopg.errors.SerializationFailure) as ei:
        fut.result(timeout=10)
    assert ei.value.sqlstate == "40001"
    assert s2.tag("rollback") == "ROLLBACK"
    assert s2.rows("select bal from acct where id = 1") == [(5,)]


def test_repeatable_read_snapshot_and_conflict_without_wait(pgdb):
    db, s1 = _db_with_row(pgdb)
    s2 = db.connect()
    s2.run("begin transaction isolation level repeatable read; select 1")
    s1.run("update acct set bal = 9 where id = 2")  # autocommit, after s2's snapshot
    assert s2.rows("select bal from acct where id = 2") == [(100,)]
    s2.fails("update acct set bal = 0 where id = 2", "40001")


def test_concurrent_duplicate_insert(pgdb, pool):
    db, s1 = _db_with_row(pgdb)
    s2 = db.connect()
    s1.run("begin; insert into acct values (7, 7)")
    fut = pool.submit(s2.run, "insert into acct values (7, 70)")
    assert is_blocked(fut)
    s1.run("commit")
    with pytest.raises(psycopg.errors.UniqueViolation) as ei:
        fut.result(timeout=10)
    assert ei.value.sqlstate == "23505" and ei.value.diag.message_detail == "Key (id)=(7) already exists."
    assert s2.rows("select bal from acct where id = 7") == [(7,)]


def test_concurrent_duplicate_insert_after_rollback_succeeds(pgdb, pool):
    db, s1 = _db_with_row(pgdb)
    s2 = db.connect()
    s1.run("begin; insert into acct values (8, 8)")
    fut = pool.submit(s2.tag, "insert into acct values (8, 80)")
    assert is_blocked(fut)
    s1.run("rollback")
    assert fut.result(timeout=10) == "INSERT 0 1"
    assert s1.rows("select bal from acct where id = 8") == [(80,)]


def test_unique_constraint(pgdb):
    s = pgdb(WORDS).connect()
    s.run("create table un (id serial primary key, email text unique)")
    s.run("insert into un (email) values ('a'), (null), (null)")
    e = s.fails("insert into un (email) values ('a')", "23505")
    assert message(e) == s.names('duplicate key value violates unique constraint "un_email_key"')


def test_empty_write_set_does_not_commit(pgdb, cluster):
    """Transactions that write nothing add nothing to the volume: its durable LSN (VDL, as
    ``borealis status`` reports it) stays put, while a real write moves it."""
    _, s = _db_with_row(pgdb)

    def vdl() -> int:
        return cluster.status()["volume"]["vdl"]

    before = vdl()
    s.run("select * from acct; begin; select 1; commit")
    s.run("update acct set bal = 0 where id = 999")
    s.run("begin; update acct set bal = 0 where id = 999; commit")
    assert vdl() == before
    s.run("update acct set bal = 0 where id = 1")
    assert vdl() > before


def test_catalog_survives_restart(pgdb, cluster):
    """Another instance loads the catalog from the volume: the reader sees the table and
    its rows; a database that does not exist is refused (3D000)."""
    db, _ = _db_with_row(pgdb)
    r = db.connect(reader=True)

    def seen():
        try:
            return r.rows("select bal from acct where id = 2") == [(100,)]
        except psycopg.errors.UndefinedTable:
            return False

    wait_for(seen, 30, "the reader to load the new table")

    async def nodb() -> None:
        with pytest.raises(asyncpg.InvalidCatalogNameError) as ei:
            await asyncpg.connect(cluster.writer_dsn.rsplit("/", 1)[0] + "/nodb")
        assert ei.value.sqlstate == "3D000"

    asyncio.run(asyncio.wait_for(nodb(), 10))
