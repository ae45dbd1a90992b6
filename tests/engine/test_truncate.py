"""TRUNCATE and table rewrites lock the table whole (PostgreSQL's ACCESS EXCLUSIVE): they
wait for transactions holding a row of it, writers that come later wait for them, plain
reads go on with their snapshot, and a rollback leaves every row."""

from __future__ import annotations

from sqlconn import is_blocked


def test_truncate_waits_for_writers_and_writers_wait_for_it(pgdb, pool) -> None:  # noqa: ANN001
    db = pgdb("t")
    a, b, c = db.connect(), db.connect(), db.connect()
    a.run("create table t (id integer primary key, v text)")
    a.run("insert into t select g, 'v' || g from generate_series(1, 1000) g")

    a.run("begin")
    a.run("update t set v = 'held' where id = 7")
    fut = pool.submit(b.tag, "truncate t")
    assert is_blocked(fut)
    a.run("commit")
    assert fut.result(timeout=10) == "TRUNCATE TABLE"
    assert a.rows("select count(*) from t") == [(0,)]

    a.run("insert into t select g, 'w' || g from generate_series(1, 100) g")
    b.run("begin")
    b.run("truncate t")
    fut = pool.submit(a.tag, "insert into t values (5000, 'late')")
    assert is_blocked(fut)
    assert c.rows("select count(*) from t") == [(100,)]  # reads are not blocked
    b.run("rollback")
    assert fut.result(timeout=10) == "INSERT 0 1"
    assert a.rows("select count(*), max(id) from t") == [(101, 5000)]


def test_rewrite_waits_for_writers_and_writers_wait_for_it(pgdb, pool) -> None:  # noqa: ANN001
    db = pgdb("r")
    a, b = db.connect(), db.connect()
    a.run("create table r (id integer not null, v integer)")
    a.run("insert into r select g, g from generate_series(1, 500) g")
    a.run("begin")
    a.run("update r set v = -1 where id = 3")
    fut = pool.submit(b.tag, "alter table r add primary key (id)")
    assert is_blocked(fut)
    a.run("commit")
    assert fut.result(timeout=10) == "ALTER TABLE"
    b.run("begin")
    b.run("alter table r alter column v type bigint")
    fut = pool.submit(a.tag, "update r set v = v + 1 where id = 3")
    assert is_blocked(fut)
    b.run("commit")
    assert fut.result(timeout=10) == "UPDATE 1"
    assert a.rows("select v from r where id = 3") == [(0,)]
    a.fails("insert into r values (3, 3)", "23505")
