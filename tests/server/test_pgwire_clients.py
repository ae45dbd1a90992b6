"""Real clients (psql, psycopg 3, asyncpg) against an instance's pg-wire front end, through
the writer endpoint of the shared cluster (fixture ``pg``, tests/server/conftest.py)."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import asyncpg
import psycopg
import pytest

from cluster import env_without_pg

# One row of many types, as literals; TYPES_ROW is what a client must decode from it.
TYPES_SQL = ("SELECT true, 42::int4, 1099511627776::int8, 1.5::float8, 1e16::float8, 12.340::numeric, "
             "'héllo'::text, '\\x00ff'::bytea, '2024-01-02'::date, '2024-01-02 03:04:05.5'::timestamp, "
             "'2024-01-02 03:04:05+00'::timestamptz, '1 day 02:03:04'::interval, "
             "'12345678-1234-5678-1234-567812345678'::uuid, '{\"a\": [1, 2]}'::jsonb, ARRAY[1, 2, NULL]::int4[], "
             "ARRAY['a b', 'q\"x']::text[], NULL::text")
TYPES_ROW = (
    True, 42, 2**40, 1.5, 1e16, Decimal("12.340"), "héllo", b"\x00\xff",
    date(2024, 1, 2), datetime(2024, 1, 2, 3, 4, 5, 500000),
    datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), timedelta(days=1, hours=2, minutes=3, seconds=4),
    uuid.UUID("12345678-1234-5678-1234-567812345678"), {"a": [1, 2]}, [1, 2, None], ["a b", 'q"x'], None,
)


def psql(port: int, sql: str, *extra: str, env: dict | None = None, user: str = "alice",
         db: str = "db") -> subprocess.CompletedProcess:
    return subprocess.run(
        ["psql", "-X", "-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", db, "-v", "ON_ERROR_STOP=1",
         *extra, "-c", sql],
        capture_output=True, text=True, timeout=30,
        env={**env_without_pg(), "PGCONNECT_TIMEOUT": "5", **(env or {})},
    )


def app_name() -> str:
    """A unique application_name: finds a test's own sessions in pg_stat_activity."""
    return f"wire-{uuid.uuid4().hex[:12]}"


# ---------------------------------------------------------------- psql (simple query)


def test_psql_select_and_types_text_output(pg):
    r = psql(pg.port, "SELECT 1", "-At")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "1\n"
    r = psql(pg.port, TYPES_SQL, "-At", "-F", "|")
    assert r.returncode == 0, r.stderr
    # PostgreSQL 15's text output of the same literals
    assert r.stdout.strip() == (
        't|42|1099511627776|1.5|1e+16|12.340|héllo|\\x00ff|2024-01-02|2024-01-02 03:04:05.5|'
        '2024-01-02 03:04:05+00|1 day 02:03:04|12345678-1234-5678-1234-567812345678|{"a": [1, 2]}|'
        '{1,2,NULL}|{"a b","q\\"x"}|'
    )


def test_psql_error_fields_and_session_closed(pg):
    app = app_name()
    r = psql(pg.port, "bad stuff", "-v", "VERBOSITY=verbose", env={"PGAPPNAME": app})
    assert r.returncode != 0
    assert 'ERROR:  42601: syntax error at or near "bad"' in r.stderr
    assert "LINE 1: bad stuff\n        ^" in r.stderr  # the position, under the token
    assert pg.wait_sessions(app, 0) == 0  # psql's exit ended the session on the instance


def test_psql_multi_statement_and_unknown_database(pg):
    r = psql(pg.port, "SELECT 1; SELECT * FROM wire_gen ORDER BY i", "-At")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:3] == ["1", "0|row0", "1|row1"]
    r = psql(pg.port, "SELECT 1", db="nodb")
    assert r.returncode != 0
    assert 'database "nodb" does not exist' in r.stderr


# ---------------------------------------------------------------- psycopg 3


def test_psycopg_text_and_binary_results(pg):
    with psycopg.connect(pg.dsn, application_name="app1") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.info.parameter_status("application_name") == "app1"
        assert conn.info.backend_pid > 0
        assert conn.execute("SELECT application_name, usename, datname FROM pg_stat_activity "
                            "WHERE pid = pg_backend_pid()").fetchone() == ("app1", "alice", "db")
        for binary in (False, True):
            row = conn.execute(TYPES_SQL, binary=binary).fetchone()
            assert row == TYPES_ROW, binary
        row = conn.execute("SELECT %s::int4, %s::text, %s::numeric, %s::bytea", [7, "x", Decimal("1.50"), b"\x01"],
                           binary=True).fetchone()
        assert row == (7, "x", Decimal("1.50"), b"\x01")


def test_psycopg_transaction_status_and_errors(pg):
    with psycopg.connect(pg.dsn) as conn:
        conn.execute("INSERT INTO wire_t VALUES (1)")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        with pytest.raises(psycopg.errors.SyntaxError) as e:
            conn.execute("bad query")
        assert e.value.diag.sqlstate == "42601"
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.rollback()
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM wire_t WHERE x = 1").fetchone() == (0,)  # rolled back


def test_psycopg_parameter_status_change_after_set(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute("SET application_name = 'renamed'", prepare=False)
        assert conn.info.parameter_status("application_name") == "renamed"
        conn.execute("SET TimeZone = 'Europe/Berlin'")
        assert conn.info.parameter_status("TimeZone") == "Europe/Berlin"


def test_psycopg_notice_and_errors_keep_the_session(pg):
    notices = []
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append((d.severity, d.sqlstate, d.message_primary)))
        conn.execute("DROP TABLE IF EXISTS wire_nosuch")
        assert notices == [("NOTICE", "00000", 'table "wire_nosuch" does not exist, skipping')]
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute("SELECT * FROM wire_nosuch")
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1 / 0")
        assert conn.execute("SELECT 1").fetchone() == (1,)  # session keeps going


def test_psycopg_cancel_pg_sleep(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        def cancel_soon():
            time.sleep(0.3)
            conn.cancel_safe()

        th = threading.Thread(target=cancel_soon)
        th.start()
        t0 = time.time()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(30)")
        th.join()
        assert time.time() - t0 < 10
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_pg_sleep_does_not_stall_other_sessions(pg):
    """pg_sleep waits on the event loop: another session is answered meanwhile, and a
    statement_timeout ends the sleep with 57014."""
    async def main():
        a = await asyncpg.connect(host="127.0.0.1", port=pg.port, user="alice", database="db")
        b = await asyncpg.connect(host="127.0.0.1", port=pg.port, user="bob", database="db")
        try:
            sleeper = asyncio.ensure_future(a.fetchval("SELECT pg_sleep(1.5)"))
            await asyncio.sleep(0.2)
            t0 = time.monotonic()
            assert [r["i"] for r in await b.fetch("SELECT i FROM wire_gen ORDER BY i LIMIT 3")] == [0, 1, 2]
            answered = time.monotonic() - t0
            assert not sleeper.done() and answered < 1.0  # b did not wait for a's sleep
            assert await sleeper is None
            assert [r[1] for r in await a.fetch("SELECT i, pg_sleep(0.01) FROM wire_gen WHERE i < 3")] == [None] * 3
            await a.execute("SET statement_timeout = 200")
            with pytest.raises(asyncpg.QueryCanceledError, match="statement timeout"):
                await a.fetchval("SELECT pg_sleep(10)")
        finally:
            await a.close()
            await b.close()

    asyncio.run(main())


# ---------------------------------------------------------------- asyncpg (extended + binary)


def test_asyncpg_binary_params_and_results(pg):
    app = app_name()

    async def main():
        c = await asyncpg.connect(host="127.0.0.1", port=pg.port, user="alice", database="db",
                                  server_settings={"application_name": app})
        try:
            assert await c.fetchval("SELECT 1") == 1
            ts = datetime(2024, 1, 1, 12, tzinfo=timezone.utc)
            u = uuid.uuid4()
            row = await c.fetchrow("SELECT $1::int4, $2::text, $3::numeric, $4::timestamptz, $5::uuid, $6::float8, $7::bool",
                                   5, "x", Decimal("-1234.5600"), ts, u, 2.5, False)
            assert tuple(row) == (5, "x", Decimal("-1234.5600"), ts, u, 2.5, False)
            rows = await c.fetch("SELECT * FROM wire_gen ORDER BY i")
            assert [tuple(r) for r in rows] == [(i, f"row{i}") for i in range(10)]
            # the same named prepared statement reused
            stmt = await c.prepare("SELECT $1::int8")
            assert [await stmt.fetchval(i) for i in (1, 2**40)] == [1, 2**40]
            with pytest.raises(asyncpg.PostgresSyntaxError):
                await c.fetch("bad one")
            assert await c.fetchval("SELECT 1") == 1
        finally:
            await c.close()

    asyncio.run(main())
    assert pg.wait_sessions(app, 0) == 0


def test_asyncpg_cursor_uses_row_limited_execute(pg):
    async def main():
        c = await asyncpg.connect(host="127.0.0.1", port=pg.port, user="alice", database="db")
        try:
            async with c.transaction():
                cur = await c.cursor("SELECT * FROM wire_gen ORDER BY i")
                assert [r["i"] for r in await cur.fetch(3)] == [0, 1, 2]
                assert [r["i"] for r in await cur.fetch(4)] == [3, 4, 5, 6]
                assert [r["i"] for r in await cur.fetch(10)] == [7, 8, 9]
        finally:
            await c.close()

    asyncio.run(main())


def test_many_concurrent_asyncpg_clients(pg):
    async def one(k: int):
        c = await asyncpg.connect(host="127.0.0.1", port=pg.port, user=f"u{k}", database="db")
        try:
            assert await c.fetchval("SELECT current_user") == f"u{k}"
            for i in range(20):
                assert await c.fetchval("SELECT $1::int4 + i FROM wire_gen WHERE i = 1", i) == i + 1
        finally:
            await c.close()

    async def main():
        await asyncio.gather(*(one(k) for k in range(8)))

    asyncio.run(main())


def test_pg_stat_activity_lists_the_instance_sessions_and_pg_cancel_backend(pg):
    """Every session of the instance, with its state and latest statement; a superuser (or the
    same role) cancels another session's statement with pg_cancel_backend."""
    app = app_name()

    async def main():
        a = await asyncpg.connect(host="127.0.0.1", port=pg.port, user="alice", database="db",
                                  server_settings={"application_name": app})
        b = await asyncpg.connect(host="127.0.0.1", port=pg.port, user="bob", database="db")
        admin = await asyncpg.connect(host="127.0.0.1", port=pg.port, user="postgres", database="postgres")
        try:
            tr = a.transaction()
            await tr.start()
            await a.execute("SELECT count(*) FROM wire_gen")
            q = ("SELECT pid, usename, datname, state, query, backend_start IS NOT NULL AS started, "
                 "xact_start IS NOT NULL AS in_xact FROM pg_stat_activity WHERE application_name = $1")
            rows = await admin.fetch(q, app)
            assert [(r["usename"], r["datname"], r["state"], r["query"], r["started"], r["in_xact"]) for r in rows] \
                == [("alice", "db", "idle in transaction", "SELECT count(*) FROM wire_gen", True, True)]
            pid = rows[0]["pid"]
            # one process id everywhere: BackendKeyData (what a driver cancels with),
            # pg_backend_pid() and pg_stat_activity
            assert pid == a.get_server_pid() == await a.fetchval("SELECT pg_backend_pid()")
            # another role sees the session, not its statement
            seen = await b.fetchrow("SELECT query, state FROM pg_stat_activity WHERE pid = $1", pid)
            assert tuple(seen) == ("<insufficient privilege>", None)
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await b.fetchval("SELECT pg_cancel_backend($1)", pid)
            await tr.rollback()
            sleeper = asyncio.ensure_future(a.fetchval("SELECT pg_sleep(30)"))
            for _ in range(100):
                if (await admin.fetchval("SELECT state FROM pg_stat_activity WHERE pid = $1", pid)) == "active":
                    break
                await asyncio.sleep(0.05)
            assert await admin.fetchval("SELECT pg_cancel_backend($1)", pid) is True
            with pytest.raises(asyncpg.QueryCanceledError):
                await asyncio.wait_for(sleeper, 10)
            assert await admin.fetchval("SELECT pg_cancel_backend(999999)") is False
            assert await a.fetchval("SELECT 1") == 1
        finally:
            for c in (a, b, admin):
                await c.close()

    asyncio.run(main())
    assert pg.wait_sessions(app, 0) == 0


def test_pg_terminate_backend_ends_a_session_with_57P01(pg):
    """pg_terminate_backend ends another session -- idle or in the middle of a statement --
    with FATAL 57P01; a non-superuser may not end a superuser's session; a session may end
    itself; an unknown pid gives false."""
    app = app_name()

    async def main():
        admin = await asyncpg.connect(host="127.0.0.1", port=pg.port, user="postgres", database="postgres")
        idle = await asyncpg.connect(host="127.0.0.1", port=pg.port, user="alice", database="db",
                                     server_settings={"application_name": app})
        busy = await asyncpg.connect(host="127.0.0.1", port=pg.port, user="alice", database="db",
                                     server_settings={"application_name": app})
        bob = await asyncpg.connect(host="127.0.0.1", port=pg.port, user="bob", database="db")
        try:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="superuser"):
                await bob.fetchval("SELECT pg_terminate_backend($1)", admin.get_server_pid())
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="being terminated"):
                await bob.fetchval("SELECT pg_terminate_backend($1)", idle.get_server_pid())
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", idle.get_server_pid()) is True
            sleeper = asyncio.ensure_future(busy.fetchval("SELECT pg_sleep(30)"))
            await asyncio.sleep(0.3)
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", busy.get_server_pid()) is True
            gone = (asyncpg.AdminShutdownError, asyncpg.ConnectionDoesNotExistError)  # as the FATAL and EOF race
            with pytest.raises(gone, match="administrator command"):
                await asyncio.wait_for(sleeper, 10)
            with pytest.raises((*gone, asyncpg.InterfaceError)):  # asyncpg may have seen the close already
                await idle.fetchval("SELECT 1")
            assert idle.is_closed()
            assert await admin.fetchval("SELECT pg_terminate_backend(999999)") is False
            with pytest.raises(gone, match="administrator command"):
                await bob.fetchval("SELECT pg_terminate_backend(pg_backend_pid())")
            assert await admin.fetchval("SELECT 1") == 1
        finally:
            for c in (admin, idle, busy, bob):
                await c.close()

    asyncio.run(main())
    assert pg.wait_sessions(app, 0) == 0


def test_client_gone_before_the_reply_is_no_server_error(pg):
    """A client that sends a query and closes its socket before the answer: the writer finds
    the transport closed when it replies.  That is nobody's error -- the instance must not
    log an internal error for it, and keeps serving."""
    import socket
    import struct

    def msg(t: bytes, body: bytes) -> bytes:
        return t + struct.pack(">I", len(body) + 4) + body

    log = pg.cluster.launcher.log_dir / "i1.log"
    before = log.read_text(errors="replace").count("internal error handling message")
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", pg.port), timeout=5)
        params = b"user\0postgres\0database\0postgres\0\0"
        s.sendall(struct.pack(">II", len(params) + 8, 196608) + params)
        buf = b""
        while b"Z\0\0\0\x05" not in buf:  # ReadyForQuery: logged in
            buf += s.recv(65536)
        s.sendall(msg(b"Q", b"SELECT pg_sleep(0.3)\0"))  # the reply comes after the client is gone
        s.close()
    time.sleep(1.5)
    with pg.admin() as c:
        assert c.execute("SELECT 1").fetchone() == (1,)
    after = log.read_text(errors="replace").count("internal error handling message")
    assert after == before, "a client that went away was logged as an internal server error"
