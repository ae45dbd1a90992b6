"""Interrupting statements in the engine (engine/interrupts.py) and the hashed semi-joins
that keep correlated EXISTS / IN from rescanning the inner table per outer row
(engine/semijoin.py).  The statements run on the shared cluster through psycopg; the
bookkeeping of ``Interrupts`` and the duration parser are pure and tested directly."""

from __future__ import annotations

import os
import socket
import threading

import psycopg
import pytest
from sqlconn import is_blocked, message

from cluster import wait_for
from engine import errors
from engine.interrupts import Interrupts, timeout_seconds

LONG = "select count(*) from generate_series(1, 200000000)"


def test_timeout_seconds_parses_duration_gucs() -> None:
    assert timeout_seconds("0") == 0
    assert timeout_seconds("250") == pytest.approx(0.25)  # bare number: milliseconds
    assert timeout_seconds("1.5s") == pytest.approx(1.5)
    assert timeout_seconds("2 min") == pytest.approx(120)
    assert timeout_seconds("100ms") == pytest.approx(0.1)
    assert timeout_seconds("garbage") == 0


def test_cancel_only_hits_the_statement_running_when_it_arrives() -> None:
    intr = Interrupts()
    assert intr.request_cancel() is None  # between statements: nothing to cancel
    intr.begin("0")
    intr.check()  # the earlier request does not carry over
    marked = intr.request_cancel()
    assert marked == intr.stmt
    with pytest.raises(errors.QueryCanceled, match="due to user request"):
        intr.check()
    intr.end()
    intr.begin("0")
    intr.request_cancel()
    intr.end()  # the statement ended before it saw the cancel ...
    intr.begin("0")
    intr.check()  # ... so the next one runs


@pytest.mark.parametrize("sql", [
    LONG,
    # a nested loop: a condition over both sides is no hash key
    "select count(*) from generate_series(1, 5000) a, generate_series(1, 5000) b where a + b < 0",
    "with recursive t(n) as (select 1 union all select n + 1 from t) select count(*) from t",
    "select count(*) from (select generate_series(1, 100000000)) s",
])
def test_statement_timeout_stops_cpu_bound_statements(pgdb, sql: str) -> None:
    s = pgdb().connect()
    s.run("set statement_timeout = '300ms'")
    e = s.fails(sql, "57014")
    assert isinstance(e, psycopg.errors.QueryCanceled)
    assert message(e) == "canceling statement due to statement timeout"
    assert s.rows("select 1") == [(1,)]


def test_cancel_from_another_thread_stops_a_running_scan(pgdb) -> None:
    """libpq's cancel request (sent from another thread, as psql's Ctrl-C does) stops a
    CPU-bound join; the session goes on."""
    s = pgdb("big").connect()
    s.run("set statement_timeout = '60s'")  # a lost cancel fails the test instead of hanging it
    s.run("create table big (a int)")
    s.run("insert into big select g from generate_series(1, 3000) g")
    timer = threading.Timer(0.3, s.raw.cancel)
    timer.start()
    e = s.fails("select count(*) from big a, big b where a.a + b.a < 0", "57014")
    timer.join()
    assert message(e) == "canceling statement due to user request"
    assert s.rows("select count(*) from big") == [(3000,)]


def _writer(cluster) -> dict:
    return next(i for i in cluster.status()["instances"] if i["role"] == "writer")


def test_gone_client_ends_the_statement(pgdb, pool, cluster) -> None:
    """A client that vanishes while its CPU-bound statement runs does not keep the writer
    busy: the instance notices the dead socket, ends the statement and the session, and
    serves others again (the statement alone would run for minutes)."""
    db = pgdb()
    before = _writer(cluster)["connections"]
    gone = db.connect()
    gone.run("set statement_timeout = '60s'")  # bounds the damage of a broken implementation
    fut = pool.submit(gone.run, LONG)
    assert is_blocked(fut)  # the statement is running
    # the client vanishes: its socket is shut down under it
    sock = socket.socket(fileno=os.dup(gone.raw.pgconn.socket))
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    with pytest.raises(psycopg.OperationalError):
        fut.result(timeout=10)

    def served() -> bool:
        try:
            with psycopg.connect(db.writer_dsn, connect_timeout=2, autocommit=True) as c:
                c.execute("set statement_timeout = '2s'")
                return c.execute("select 1").fetchone() == (1,)
        except psycopg.OperationalError:
            return False

    wait_for(served, 15, "the writer to serve a new session")
    wait_for(lambda: _writer(cluster)["connections"] == before, 15, "the vanished session to be closed")


SETUP = [
    "create table tk (unique1 int, unique2 int, ten int, hundred int, thousand int, s text)",
    "insert into tk select g, (g * 7919) % 600, g % 10, g % 100, g % 1000, "
    "case when g % 13 = 0 then null else 'v' || (g % 17) end from generate_series(0, 599) g",
    "insert into tk values (null, null, null, null, null, null), (5000, null, 3, null, 7, 'v3')",
    "create table sm (a int, b int, c text)",
    "insert into sm values (1, 1, 'v1'), (2, null, 'v2'), (null, 3, null), (4, 4, 'v4'), (7, 70, 'v7'), (7, 71, null)",
]
# Each query with a subquery the semi-join takes; "offset 0" in the subquery keeps the
# per-row evaluation, which gives the reference answer.
SEMI = [
    "select count(*) from tk t where exists(select 1 from tk k where k.unique1 = t.unique2 {o})",
    "select count(*) from tk t where (exists(select 1 from tk k where k.unique1 = t.unique2 {o}) or ten < 0)",
    "select count(*) from tk t where not exists(select 1 from tk k where k.unique1 = t.unique2 and k.ten = 3 {o})",
    "select count(*) from tk t where exists(select 1 from tk k where k.hundred = t.ten and k.thousand = t.hundred {o})",
    "select count(*) from tk a where exists (select 1 from tk c where a.hundred = c.hundred and a.ten > 5 {o})",
    "select count(*) from tk t where exists(select 1 from tk k where k.unique1 = t.unique2 and k.s = t.s {o})",
    "select a, b, a in (select b from sm s2 where s2.a = s1.a {o}) from sm s1 order by 1, 2",
    "select a, b, b not in (select b from sm s2 where s2.a = s1.a {o}) from sm s1 order by 1, 2",
    "select a, b, b in (select s2.b from sm s2 where s2.a = s1.a and s1.b > 2 {o}) from sm s1 order by 1, 2",
    "select a, c, c in (select c from sm s2 where s2.a = s1.a {o}) from sm s1 order by 1, 2",
    "select a, b in (select b from sm {o}), b not in (select b from sm {o}), a in (select a from sm where a > 100 {o}),"
    " null::int in (select a from sm where a > 100 {o}) from sm order by 1, 2",
    "select count(*) from tk t where t.unique2 in (select k.unique1 from tk k where k.ten = t.ten {o})",
    "select count(*) from tk t where t.unique2 not in (select k.unique1 from tk k where k.ten = t.ten {o})",
    "select count(*) from tk t where t.thousand in (select k.unique1 + 1 from tk k where k.hundred = t.hundred "
    "and k.ten < 5 {o})",
]


def test_semijoins_give_the_per_row_answers(pgdb) -> None:
    s = pgdb("tk sm").connect()
    s.run("set statement_timeout = '60s'")  # per-row evaluation of these takes far longer
    for sql in SETUP:
        s.run(sql)
    for q in SEMI:
        fast = s.rows(q.format(o=""))
        slow = s.rows(q.format(o="offset 0"))
        assert fast == slow, q
    # checked on PostgreSQL 15
    assert s.rows(SEMI[0].format(o="")) == [(600,)]
    assert s.rows(SEMI[7].format(o="")) == [
        (1, 1, False), (2, None, None), (4, 4, False), (7, 70, False), (7, 71, False), (None, 3, True)]


def test_nested_exists_over_a_join_is_fast(pgdb) -> None:
    """pg_regress subselect.sql's nested EXISTS: 10k outer rows x 10k inner rows per level
    would take hours evaluated per row; the statement_timeout turns that into a failure."""
    s = pgdb("t10").connect()
    s.run("create table t10 (thousand int, hundred int)")
    s.run("insert into t10 select g % 1000, g % 100 from generate_series(0, 9999) g")
    s.run("set statement_timeout = '60s'")
    assert s.rows("select a.thousand from t10 a, t10 b where a.thousand = b.thousand "
                  "and exists (select 1 from t10 c where b.hundred = c.hundred "
                  "and not exists (select 1 from t10 d where a.thousand = d.thousand))") == []


def test_long_statements_on_one_loop_leave_it_free_after_cancel(pgdb, pool) -> None:
    """All sessions of an instance share one event loop: another session's statement,
    sent while a CPU-bound one runs, is answered once that one is canceled."""
    db = pgdb()
    a, b = db.connect(), db.connect()
    a.run("set statement_timeout = '60s'")
    long = pool.submit(a.run, LONG)
    assert is_blocked(long)
    other = pool.submit(b.rows, "select 1")  # waits for the loop the long statement holds
    a.raw.cancel()
    with pytest.raises(psycopg.errors.QueryCanceled):
        long.result(timeout=10)
    assert other.result(timeout=10) == [(1,)]
    assert a.rows("select 2") == [(2,)]
