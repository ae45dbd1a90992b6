"""pg_sleep / pg_sleep_for suspend the statement and resume it where it stopped
(engine/session.py ``_run_suspendable``): nothing before the sleep is evaluated twice and
the statement keeps its snapshot, as in PostgreSQL.  The expected values are PostgreSQL
15's (checked there); the former implementation, which re-ran the statement after its
sleep, fails every one of them.  (``_firsts`` drops pg_sleep's void column: PostgreSQL
sends it as '', Borealis as NULL.)"""

from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest


def _firsts(rows: list[tuple]) -> list:
    return [r[0] for r in rows]


def test_nextval_before_a_sleep_advances_the_sequence_once(pgdb) -> None:
    db = pgdb("sq")  # (not "s": %s would be renamed)
    c = db.connect()
    s = db["sq"]
    c.run("create sequence sq")
    assert _firsts(c.rows(f"select nextval('{s}'), pg_sleep(0.05)")) == [1]
    assert c.rows(f"select currval('{s}'), nextval('{s}')") == [(1, 2)]
    # extended protocol (a parameter), and pg_sleep_for
    assert _firsts(c.rows(f"select nextval('{s}'), pg_sleep(%s)", [0.05])) == [3]
    assert _firsts(c.rows(f"select nextval('{s}'), pg_sleep_for('50 milliseconds')")) == [4]
    # several sleeps in one statement, one per row
    assert _firsts(c.rows(f"select nextval('{s}'), pg_sleep(0.01) from generate_series(1, 3)")) == [5, 6, 7]
    assert c.rows(f"select nextval('{s}')") == [(8,)]


def test_values_evaluated_before_a_sleep_are_kept(pgdb) -> None:
    db = pgdb("s t u")
    c = db.connect()
    s = db["s"]
    t0, _, t1 = c.rows("select clock_timestamp(), pg_sleep(0.2), clock_timestamp()")[0]
    assert (t1 - t0).total_seconds() >= 0.19  # the first one was read before the sleep
    c.run("create sequence s")
    c.run("create table t (x int8)")
    assert c.tag(f"insert into t select nextval('{s}') from generate_series(1, 3) g, "
                 "(select pg_sleep(0.05)) z") == "INSERT 0 3"
    assert c.rows("select x from t order by x") == [(1,), (2,), (3,)]
    assert c.rows(f"select nextval('{s}')") == [(4,)]
    # CREATE TABLE AS (planned when it runs) suspends too
    assert c.tag(f"create table u as select nextval('{s}') as a from (select pg_sleep(0.05)) z") == "SELECT 1"
    assert c.rows("select a from u") == [(5,)]


@pytest.mark.parametrize("query", [
    "select pg_sleep(0.8), (select count(*) from t)",
    "select count(*) from t, (select pg_sleep(0.8)) z",
    "select count(*) from (select pg_sleep(0.8)) z, t",
])
def test_read_committed_statement_keeps_its_snapshot_across_a_sleep(pgdb, pool, query: str) -> None:
    """Another session inserts and commits while the statement sleeps: the statement does
    not see the row (its snapshot was taken when it started); the next statement does."""
    db = pgdb("t")
    a, b = db.connect(), db.connect()
    a.run("create table t (x int)")
    a.run("insert into t values (1)")

    def insert_during_the_sleep() -> float:
        time.sleep(0.3)
        b.run("insert into t values (2)")
        return time.monotonic()

    ins = pool.submit(insert_during_the_sleep)
    row = a.rows(query)[0]
    ended = time.monotonic()
    assert ins.result(5) < ended  # committed while the statement slept
    assert row[-1] == 1
    assert a.rows("select count(*) from t") == [(2,)]
    # the same inside an explicit READ COMMITTED transaction
    ins = pool.submit(insert_during_the_sleep)
    a.run("begin")
    row = a.rows(query)[0]
    assert ins.result(5) < time.monotonic()
    assert row[-1] == 2
    assert a.rows("select count(*) from t") == [(3,)]
    a.run("commit")


def test_cancel_during_pg_sleep_unwinds_the_statement(pgdb) -> None:
    """A cancel ends the sleep at once with 57014: the statement's work is undone, the
    transaction is aborted as after any error, and the session goes on."""
    db = pgdb("s t")
    c = db.connect()
    c.run("create table t (x int, y bool)")
    c.run("create sequence s")
    c.run("begin")
    c.run("insert into t values (1)")
    threading.Timer(0.3, c.raw.cancel_safe).start()
    t0 = time.monotonic()
    c.fails(f"insert into t select nextval('{db['s']}'), pg_sleep(30) is null", "57014")
    assert time.monotonic() - t0 < 5
    assert c.status == "E"
    c.run("rollback")
    assert c.rows("select count(*) from t") == [(0,)]
    assert _firsts(c.rows(f"select nextval('{db['s']}'), pg_sleep(0.01)")) == [2]  # sequences are not rolled back
    # statement_timeout between two sleeps of one statement; then a sleep completes again
    c.run("set statement_timeout = 300")
    t0 = time.monotonic()
    c.fails("select i, pg_sleep(0.1) from generate_series(1, 20) i", "57014")
    assert time.monotonic() - t0 < 5
    c.run("set statement_timeout = 0")
    assert _firsts(c.rows("select 1, pg_sleep(0.01)")) == [1]


def test_sleeping_sessions_do_not_block_each_other(pgdb) -> None:
    """Several statements suspended at once, each resumed after its own sleep."""
    db = pgdb("s")
    conns = [db.connect() for _ in range(4)]
    conns[0].run("create sequence s")
    s = db["s"]
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        t0 = time.monotonic()
        futs = [ex.submit(c.rows, f"select nextval('{s}'), pg_sleep(0.5), nextval('{s}')") for c in conns]
        got = [f.result(10)[0] for f in futs]
        took = time.monotonic() - t0
    assert took < 1.8, took  # not one after the other
    firsts = sorted(r[0] for r in got)
    assert firsts == [1, 2, 3, 4]  # all took their first value before anyone woke up
    assert sorted(r[2] for r in got) == [5, 6, 7, 8]


def test_pg_sleep_returns_void_not_null(pgdb) -> None:
    """PostgreSQL 15: pg_sleep returns a void value, which is not NULL and reads as ''."""
    c = pgdb().connect()
    assert c.rows("select pg_sleep(0) is null, pg_sleep(0)::text, pg_sleep(0.01) is not null") == [(False, "", True)]
