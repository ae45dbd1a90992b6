"""Canceling long writing statements (statement_timeout, pg_cancel_backend,
pg_terminate_backend): the statement ends with 57014 (57P01 when terminated), none of its
rows stay, and the instance serves on -- the same session's next statement and other
sessions' statements work.  One source table of a few tens of thousands of rows serves all
cases; a statement that would take seconds is cut at 200 ms."""

from __future__ import annotations

import os
import socket
import threading

import psycopg
import pytest
from sqlconn import is_blocked, message

from cluster import wait_for

ROWS = 40000


@pytest.fixture
def src(pgdb):
    db = pgdb("cw_src cw_dst cw_ab cw_ix")
    s = db.connect()
    s.run("create table cw_src (id int primary key, f float8, a int, b text)")
    s.run(f"insert into cw_src select g, g * 1.5, g % 1000, 'row-' || g from generate_series(1, {ROWS}) g")
    s.run("create table cw_dst (id int primary key, f float8 unique, a int, b text)")
    s.run("create index cw_ab on cw_dst (a, b)")
    return db


def _serves_on(db, s) -> None:
    """The canceled session and a fresh one both answer, and the instance still writes."""
    assert s.rows("select count(*) from cw_dst") == [(0,)]
    other = db.connect()
    assert other.rows("select count(*) from cw_src") == [(ROWS,)]
    other.run("insert into cw_dst values (1, 1.5, 1, 'x')")
    assert s.rows("select id from cw_dst") == [(1,)]
    other.run("delete from cw_dst")


@pytest.mark.parametrize("sql", [
    "insert into cw_dst select * from cw_src",
    "insert into cw_dst select id, f, a, b from cw_src order by f desc",
    "insert into cw_dst select s.id, s.f, s.a, s.b from cw_src s join cw_src t on t.id = s.id",
])
def test_statement_timeout_ends_insert_select_into_indexed_table(src, sql) -> None:
    s = src.connect()
    s.run("set statement_timeout = '200ms'")
    e = s.fails(sql, "57014")
    assert message(e) == "canceling statement due to statement timeout"
    s.run("set statement_timeout = 0")
    _serves_on(src, s)


def test_statement_timeout_ends_copy_into_indexed_table(src) -> None:
    s = src.connect()
    s.run("set statement_timeout = '200ms'")
    data = "".join(f"{i}\t{i * 1.5}\t{i % 1000}\trow-{i}\n" for i in range(1, ROWS + 1))
    with pytest.raises(psycopg.errors.QueryCanceled):
        with s.raw.cursor().copy(src.names("copy cw_dst from stdin")) as cp:
            cp.write(data)
    s.run("set statement_timeout = 0")
    _serves_on(src, s)


def test_statement_timeout_ends_ddl_rewrites(src) -> None:
    s = src.connect()
    s.run("insert into cw_dst select * from cw_src")
    s.run("set statement_timeout = '1ms'")  # these are quick here; any check point must fire
    for sql in ("alter table cw_dst alter column a type bigint",
                "alter table cw_dst add column c float8 default random()",  # volatile: a rewrite
                "create unique index cw_ix on cw_dst (b)"):
        s.fails(sql, "57014")
    s.run("set statement_timeout = 0")
    assert s.rows("select count(*), min(a), max(a) from cw_dst") == [(ROWS, 0, 999)]
    assert s.rows("select pg_typeof(a)::text from cw_dst limit 1") == [("integer",)]
    s.fails("select c from cw_dst", "42703")
    s.run("insert into cw_dst values (0, 0, 0, 'row-1')")  # no unique index on b came to be
    s.run("delete from cw_dst where id = 0")
    s.run("alter table cw_dst alter column a type bigint")
    s.run("create unique index cw_ix on cw_dst (b)")
    s.run("delete from cw_dst")
    _serves_on(src, s)


def test_cancel_request_ends_insert_select(src) -> None:
    """libpq's CancelRequest (psql's Ctrl-C, a driver's timeout) stops the row loop."""
    s = src.connect()
    s.run("set statement_timeout = '60s'")  # a lost cancel fails the test instead of hanging it
    timer = threading.Timer(0.3, s.raw.cancel)
    timer.start()
    e = s.fails("insert into cw_dst select * from cw_src", "57014")
    timer.join()
    assert message(e) == "canceling statement due to user request"
    _serves_on(src, s)


def _copy(s, data: str) -> None:
    with s.raw.cursor().copy(s.names("copy cw_dst from stdin")) as cp:
        cp.write(data)


def test_cancel_and_terminate_backend_end_copy(src, pool) -> None:
    """pg_cancel_backend / pg_terminate_backend from another session.  They run on the
    instance's one event loop, so they reach a statement that yields it now and then --
    COPY's write phase does (a CPU-bound SELECT or INSERT ... SELECT holds the loop until
    it ends or a CancelRequest / statement_timeout stops it)."""
    s, admin = src.connect(), src.connect()
    s.run("set statement_timeout = '60s'")
    pid = s.rows("select pg_backend_pid()")[0][0]
    data = "".join(f"{i}\t{i * 1.5}\t{i % 1000}\trow-{i}\n" for i in range(1, 2 * ROWS + 1))
    long = pool.submit(_copy, s, data)
    assert is_blocked(long)
    assert admin.rows(f"select pg_cancel_backend({pid})") == [(True,)]
    with pytest.raises(psycopg.errors.QueryCanceled) as e:
        long.result(timeout=60)
    assert message(e.value) == "canceling statement due to user request"
    _serves_on(src, s)

    long = pool.submit(_copy, s, data)
    assert is_blocked(long)
    assert admin.rows(f"select pg_terminate_backend({pid})") == [(True,)]
    with pytest.raises(psycopg.errors.AdminShutdown):
        long.result(timeout=60)
    wait_for(lambda: admin.rows(f"select count(*) from pg_stat_activity where pid = {pid}") == [(0,)],
             timeout=30, what="the terminated session to go")
    assert admin.rows("select count(*) from cw_dst") == [(0,)]
    _serves_on(src, src.connect())


def test_gone_client_ends_insert_select(src, pool) -> None:
    """Issue 16's case: a test runner's timeout drops the connection of a long INSERT ...
    SELECT into an indexed table.  The writer notices, ends the statement (nothing of it
    stays) and answers every later statement."""
    gone = src.connect()
    gone.run("set statement_timeout = '60s'")
    long = pool.submit(gone.run, "insert into cw_dst select * from cw_src")
    assert is_blocked(long)
    sock = socket.socket(fileno=os.dup(gone.raw.pgconn.socket))
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    with pytest.raises(psycopg.OperationalError):
        long.result(timeout=30)
    s = src.connect()
    s.run("set statement_timeout = '30s'")
    _serves_on(src, s)


def test_timeout_inside_a_transaction_rolls_back_to_the_savepoint(src) -> None:
    """In a transaction block the canceled statement's rows go with ROLLBACK TO SAVEPOINT;
    what the transaction wrote before stays and commits, and the unique index still holds."""
    s = src.connect()
    s.run("begin")
    s.run("insert into cw_dst values (1, 1.5, 1, 'row-1')")
    s.run("savepoint sp")
    s.run("set local statement_timeout = '200ms'")
    s.fails("insert into cw_dst select * from cw_src where id > 1", "57014")
    s.fails("select 1", "25P02")
    s.run("rollback to savepoint sp")
    s.fails("insert into cw_dst values (2, 1.5, 2, 'x')", "23505")
    s.run("rollback to savepoint sp")
    s.run("commit")
    assert s.rows("select id from cw_dst") == [(1,)]
    s.run("delete from cw_dst")
    _serves_on(src, s)
