"""CancelRequest on a real cluster: a statement waiting for a row lock is canceled (57014),
through the writer endpoint with TLS and through the reader endpoint (the proxy sends the
request to every instance, so it reaches the writer holding the session)."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
import uuid

import asyncpg
import psycopg

import pgwire_client as w


def _ports(cluster) -> dict[str, int]:
    return {e.name: e.port for e in cluster.launcher.conf.endpoints}


def _locked_table(cluster) -> tuple[str, psycopg.Connection]:
    name = "canc_" + uuid.uuid4().hex[:8]
    holder = psycopg.connect(cluster.writer_dsn, autocommit=True)
    holder.execute(f"create table {name} (id int primary key, v int)")
    holder.execute(f"insert into {name} values (1, 1)")
    holder.execute("begin")
    holder.execute(f"update {name} set v = 2 where id = 1")
    return name, holder


def test_cancel_lock_wait_through_writer_endpoint_with_tls(cluster):
    name, holder = _locked_table(cluster)
    try:
        ca = cluster.data_dir / "tls" / "ca.crt"
        waiter = psycopg.connect(cluster.writer_dsn + f"?sslmode=verify-ca&sslrootcert={ca}", autocommit=True)
        assert waiter.pgconn.ssl_in_use
        timer = threading.Timer(0.4, waiter.cancel)
        timer.start()
        t0 = time.monotonic()
        try:
            waiter.execute(f"update {name} set v = 3 where id = 1")
            raise AssertionError("the lock wait was not canceled")
        except psycopg.errors.QueryCanceled as e:
            assert e.sqlstate == "57014"
            assert str(e).strip() == "canceling statement due to user request"
        assert time.monotonic() - t0 < 5
        assert waiter.execute("select 1").fetchone() == (1,)  # the session goes on
        # A cancel with no statement running is ignored.
        waiter.cancel()
        time.sleep(0.2)
        assert waiter.execute("select 2").fetchone() == (2,)
        waiter.close()
        holder.execute("rollback")
        assert holder.execute(f"select v from {name}").fetchone() == (1,)
        holder.execute("begin")
    finally:
        holder.execute("rollback")
        holder.execute(f"drop table {name}")
        holder.close()


def test_cancel_request_sent_to_reader_endpoint_reaches_writer_session(cluster):
    name, holder = _locked_table(cluster)
    ports = _ports(cluster)
    try:
        c = w.Conn(ports["writer"], do_startup=False)
        c.send(w.startup("postgres", "postgres"))
        msgs = c.until_ready()
        pid, key = next(struct.unpack(">ii", b) for t, b in msgs if t == b"K")
        c.send(w.query(f"update {name} set v = 3 where id = 1"))
        time.sleep(0.3)
        # A wrong key cancels nothing.
        for k in (key ^ 1, key):
            s = w.Conn(ports["reader"], do_startup=False)
            s.send(struct.pack(">iiii", 16, 80877102, pid, k))
            assert s.read_all() == []  # the proxy closes without a reply
            s.close()
            if k != key:  # the statement must still be waiting: nothing to read
                c.sock.settimeout(0.8)
                try:
                    early = c.sock.recv(1, socket.MSG_PEEK)
                except TimeoutError:
                    early = None
                c.sock.settimeout(5)
                assert early is None, "a CancelRequest with a wrong key canceled the statement"
        got = c.until_ready()
        err = next(w.fields(b) for t, b in got if t == b"E")
        assert err["C"] == "57014" and err["M"] == "canceling statement due to user request"
        c.send(w.query("select 1"))
        assert b"D" in w.types_of(c.until_ready())
        c.close()
    finally:
        holder.execute("rollback")
        holder.execute(f"drop table {name}")
        holder.close()


# -- CPU-bound statements: the instance's event loop is busy, so the cancel has to get in
# through the instance's cancel thread and be seen by the executor's interrupt checks.

LONG = "select count(*) from generate_series(1, 200000000)"  # minutes if not interrupted
CROSS = "select count(*) from generate_series(1, 20000) a, generate_series(1, 20000) b where a + b = 0"


def _served_quickly(dsn: str, limit: float = 3.0) -> None:
    """A new connection is accepted and answered right away (the instance is free again)."""
    t0 = time.monotonic()
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as other:
        assert other.execute("select 41 + 1").fetchone() == (42,)
    assert time.monotonic() - t0 < limit, "the instance was still busy after the statement stopped"


def _cancel_after(conn: psycopg.Connection, delay: float) -> threading.Timer:
    timer = threading.Timer(delay, conn.cancel)
    timer.start()
    return timer


def test_cancel_interrupts_cpu_bound_statement_psycopg(cluster):
    conn = psycopg.connect(cluster.writer_dsn, autocommit=True)
    try:
        for sql in (LONG, CROSS):
            timer = _cancel_after(conn, 0.5)
            t0 = time.monotonic()
            try:
                conn.execute(sql)
                raise AssertionError(f"not canceled: {sql}")
            except psycopg.errors.QueryCanceled as e:
                assert e.sqlstate == "57014"
                assert str(e).strip() == "canceling statement due to user request"
            finally:
                timer.join()
            assert time.monotonic() - t0 < 2.5, f"cancel took {time.monotonic() - t0:.1f} s"
            _served_quickly(cluster.writer_dsn)
            assert conn.execute("select 7").fetchone() == (7,)  # the session goes on
        # Inside a transaction block: the canceled statement fails the transaction (25P02).
        conn.execute("begin")
        timer = _cancel_after(conn, 0.3)
        try:
            conn.execute(LONG)
            raise AssertionError("not canceled")
        except psycopg.errors.QueryCanceled:
            pass
        finally:
            timer.join()
        try:
            conn.execute("select 1")
            raise AssertionError("the transaction should be aborted")
        except psycopg.errors.InFailedSqlTransaction:
            pass
        conn.execute("rollback")
        # A cancel that arrives while nothing runs does not cancel the next statement.
        conn.cancel()
        time.sleep(0.3)
        assert conn.execute("select count(*) from generate_series(1, 300000)").fetchone() == (300000,)
    finally:
        conn.close()


def test_cancel_cpu_bound_wrong_key_then_right_key_raw(cluster):
    ports = _ports(cluster)
    c = w.Conn(ports["writer"], do_startup=False)
    c.send(w.startup("postgres", "postgres"))
    pid, key = next(struct.unpack(">ii", b) for t, b in c.until_ready() if t == b"K")
    c.send(w.query(LONG))
    time.sleep(0.5)
    s = w.Conn(ports["writer"], do_startup=False)
    s.send(struct.pack(">iiii", 16, 80877102, pid, key ^ 0x55))
    assert s.read_all() == []
    s.close()
    c.sock.settimeout(1.5)
    try:
        early = c.sock.recv(1, socket.MSG_PEEK)
    except TimeoutError:
        early = None
    assert early is None, "a CancelRequest with a wrong key stopped the statement"
    c.sock.settimeout(5)
    t0 = time.monotonic()
    s = w.Conn(ports["reader"], do_startup=False)  # any endpoint: the proxy tells every instance
    s.send(struct.pack(">iiii", 16, 80877102, pid, key))
    s.read_all()
    s.close()
    got = c.until_ready()
    assert time.monotonic() - t0 < 2.5
    err = next(w.fields(b) for t, b in got if t == b"E")
    assert err["C"] == "57014" and err["M"] == "canceling statement due to user request"
    c.send(w.query("select 1"))
    assert b"D" in w.types_of(c.until_ready())
    c.close()


def test_cancel_cpu_bound_statement_asyncpg(cluster):
    # ssl=False: asyncpg's default (sslmode=prefer) sends its CancelRequest inside TLS,
    # which only the instance's event loop can read -- see server/cancel.py.  libpq (psql,
    # psycopg) always sends cancel requests in plain text.
    async def main() -> None:
        conn = await asyncpg.connect(cluster.writer_dsn, ssl=False)
        try:
            t0 = time.monotonic()
            try:
                # the timeout makes asyncpg send a CancelRequest and wait for the statement to end
                await conn.fetchval(CROSS, timeout=0.5)
                raise AssertionError("not canceled")
            except asyncio.TimeoutError:
                pass
            assert time.monotonic() - t0 < 2.5, f"cancel took {time.monotonic() - t0:.1f} s"
            assert await conn.fetchval("select 5", timeout=3) == 5
            # Cancelling the task makes asyncpg send a CancelRequest; a second connection
            # is served right after.
            task = asyncio.ensure_future(conn.fetchval(LONG))
            await asyncio.sleep(0.4)
            task.cancel()
            t0 = time.monotonic()
            other = await asyncpg.connect(cluster.writer_dsn, timeout=5)  # TLS: not needed to cancel
            try:
                assert await other.fetchval("select 8", timeout=3) == 8
            finally:
                await other.close()
            assert time.monotonic() - t0 < 3
            try:
                await task
            except asyncio.CancelledError:
                pass
            assert await conn.fetchval("select 6", timeout=3) == 6
        finally:
            await conn.close()

    asyncio.run(main())


def test_statement_timeout_stops_cpu_bound_statement(cluster):
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as conn:
        conn.execute("set statement_timeout = '400ms'")
        for sql in (LONG, CROSS):
            t0 = time.monotonic()
            try:
                conn.execute(sql)
                raise AssertionError("statement_timeout did not stop the statement")
            except psycopg.errors.QueryCanceled as e:
                assert e.sqlstate == "57014"
                assert str(e).strip() == "canceling statement due to statement timeout"
            took = time.monotonic() - t0
            assert 0.35 < took < 2.0, f"took {took:.2f} s"
            _served_quickly(cluster.writer_dsn)
        # per statement: a short statement after the timeout runs normally
        assert conn.execute("select count(*) from generate_series(1, 1000)").fetchone() == (1000,)
        conn.execute("set statement_timeout = 0")
        assert conn.execute("select count(*) from generate_series(1, 300000)").fetchone() == (300000,)


def test_statement_ends_when_its_client_is_gone(cluster):
    ports = _ports(cluster)
    c = w.Conn(ports["writer"], do_startup=False)
    c.send(w.startup("postgres", "postgres"))
    c.until_ready()
    c.send(w.query(LONG))
    time.sleep(0.4)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST, like a killed psql
    c.close()
    time.sleep(0.1)
    _served_quickly(cluster.writer_dsn, limit=2.5)
