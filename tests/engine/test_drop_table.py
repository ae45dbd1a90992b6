"""DROP TABLE is O(1) in rows: one range tombstone per protection group instead of a
delete per row (``storage.records`` DELETE_PREFIX), on the shared cluster.

What is proved: the log the drop writes does not grow with the table; the name is free
again and a new table under it is empty while other tables keep their rows; the writer and
the reader both see the table gone and forget its cached rows (not while a snapshot from
before the drop is open); a transaction that began before the drop gets 42P01, never a
wrong answer; a drop waits for the transactions writing the table, and a writer that
waited for a drop fails with 42P01; a drop rolled back (or to a savepoint) drops nothing.
"""

from __future__ import annotations

import time
from typing import Any

import psycopg
from sqlconn import is_blocked

ROWS = 200_000


def _log_bytes(cluster: Any) -> int:
    """Bytes of log the volume holds over every PG (each PG: its largest segment)."""
    return sum(p["bytes"] for p in cluster.status()["volume"]["protection_groups"])


def _cached(cluster: Any, role: str) -> list[int]:
    return next(i["cached_tables"] for i in cluster.status()["instances"] if i["role"] == role)


def _eventually(pred: Any, what: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        assert time.monotonic() < deadline, f"timed out waiting for {what} (last: {got})"
        time.sleep(0.2)


def _count_or_state(c: Any, sql: str) -> Any:
    try:
        return c.rows(sql)[0][0]
    except psycopg.Error as e:
        return e.sqlstate


def test_drop_of_a_big_table_logs_a_few_records_and_frees_the_name(pgdb, cluster) -> None:  # noqa: ANN001
    db = pgdb("big other")
    w = db.connect()
    r = db.connect(reader=True)
    w.run("create table big (id integer primary key, v text)")
    w.run(f"insert into big select g, 'row ' || g from generate_series(1, {ROWS}) g")
    w.run("create table other (id integer primary key, v text)")
    w.run("insert into other values (1, 'a'), (2, 'b'), (3, 'c')")
    oid = w.rows("select oid from pg_class where relname = %s", [db["big"]])[0][0]
    assert w.rows("select count(*) from big") == [(ROWS,)]
    _eventually(lambda: _count_or_state(r, "select count(*) from big") == ROWS, "the reader to load big")
    assert oid in _cached(cluster, "writer") and oid in _cached(cluster, "reader")

    before = _log_bytes(cluster)
    assert w.tag("drop table big") == "DROP TABLE"
    grown = _log_bytes(cluster) - before
    # One delete per row would be several MB (PUTS records: ~40 bytes a row); a drop is
    # the catalog rows plus a range tombstone per PG.
    assert grown < 20_000, f"DROP TABLE of {ROWS} rows appended {grown} bytes of log"

    assert w.fails("select count(*) from big", "42P01")
    w.run("create table big (id integer primary key, v text)")
    assert w.rows("select count(*) from big") == [(0,)]
    assert w.rows("select oid from pg_class where relname = %s", [db["big"]])[0][0] != oid
    w.run("insert into big values (1, 'new')")
    assert w.rows("select * from big") == [(1, "new")]
    assert w.rows("select * from other order by id") == [(1, "a"), (2, "b"), (3, "c")]

    # The reader follows: the new table, not the old rows.
    _eventually(lambda: _count_or_state(r, "select count(*) from big") == 1, "the reader to see the new big")
    assert r.rows("select * from big") == [(1, "new")]
    assert r.rows("select count(*) from other") == [(3,)]

    # Both instances forget the dropped table's rows once no snapshot can read them
    # (checked at the next commit they apply).
    def forgotten() -> bool:
        w.run("insert into other values (4, 'd') on conflict (id) do update set v = excluded.v")
        return oid not in _cached(cluster, "writer") and oid not in _cached(cluster, "reader")

    _eventually(forgotten, "the dropped table to leave the instances' caches")


def test_a_transaction_that_began_before_the_drop_fails_with_42p01(pgdb, cluster) -> None:  # noqa: ANN001
    """As in PostgreSQL, a statement looks names up in the current catalog (not at its
    REPEATABLE READ snapshot): after the drop it gets 42P01, never an empty or partial
    table.  The dropped rows stay cached while its snapshot is open, and go after."""
    db = pgdb("t u")
    w = db.connect()
    w.run("create table t (id integer primary key, v text)")
    w.run("insert into t select g, 'v' || g from generate_series(1, 500) g")
    w.run("create table u (id integer primary key)")
    oid = w.rows("select oid from pg_class where relname = %s", [db["t"]])[0][0]
    rr = db.connect()
    rr.run("begin isolation level repeatable read")
    assert rr.rows("select count(*), sum(id) from t") == [(500, 125250)]
    rd = db.connect(reader=True)
    _eventually(lambda: _count_or_state(rd, "select count(*) from t") == 500, "the reader to see t")
    rd.run("begin isolation level repeatable read")
    assert rd.rows("select count(*) from t") == [(500,)]

    assert w.tag("drop table t") == "DROP TABLE"  # plain readers do not hold it up
    w.run("insert into u values (1)")  # later commits: caches are collected as they apply
    w.run("insert into u values (2)")
    assert oid in _cached(cluster, "writer")  # the open snapshot still pins it
    assert rr.fails("select count(*) from t", "42P01")
    _eventually(lambda: _count_or_state(rd, "select count(*) from t") == "42P01", "the reader to see the drop")
    rr.run("rollback")
    rd.run("rollback")

    def forgotten() -> bool:
        w.run("insert into u values ((select coalesce(max(id), 0) + 1 from u))")
        return oid not in _cached(cluster, "writer") and oid not in _cached(cluster, "reader")

    _eventually(forgotten, "the dropped table to leave the instances' caches")


def test_drop_waits_for_writers_and_a_writer_that_waited_fails(pgdb, pool) -> None:  # noqa: ANN001
    db = pgdb("t")
    a, b = db.connect(), db.connect()
    a.run("create table t (id integer primary key, v text)")
    a.run("insert into t values (1, 'one')")

    # A transaction holding a row lock of the table holds the drop up until it ends.
    a.run("begin")
    a.run("insert into t values (2, 'two')")
    fut = pool.submit(b.tag, "drop table t")
    assert is_blocked(fut)
    a.run("commit")
    assert fut.result(timeout=10) == "DROP TABLE"
    assert a.fails("select * from t", "42P01")

    # A writer planned before the drop commits waits for it, then fails like PostgreSQL.
    a.run("create table t (id integer primary key, v text)")
    a.run("insert into t values (1, 'one')")
    b.run("begin")
    b.run("drop table t")
    fut = pool.submit(a.fails, "update t set v = 'changed' where id = 1", "42P01")
    assert is_blocked(fut)
    b.run("commit")
    fut.result(timeout=10)
    a.run("create table t (id integer primary key, v text)")
    assert a.rows("select count(*) from t") == [(0,)]


def test_drop_in_a_transaction_with_its_own_writes_and_rollback(pgdb) -> None:  # noqa: ANN001
    db = pgdb("t")
    c = db.connect()
    c.run("create table t (id integer primary key, v text)")
    c.run("insert into t values (1, 'kept')")
    c.run("begin")
    c.run("insert into t values (2, 'x')")
    c.run("drop table t")
    c.run("rollback")
    assert c.rows("select * from t order by id") == [(1, "kept")]
    c.run("begin; savepoint s; drop table t; rollback to savepoint s; commit")
    assert c.rows("select * from t order by id") == [(1, "kept")]
    c.run("begin")
    c.run("insert into t values (3, 'gone')")
    c.run("drop table t")
    c.run("create table t (id integer primary key, v text)")
    c.run("insert into t values (4, 'new')")
    c.run("commit")
    assert c.rows("select * from t order by id") == [(4, "new")]
