"""Real clients (psql, psycopg 3, asyncpg) against the front end with FakeSessions."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from datetime import datetime, timezone
from decimal import Decimal

import asyncpg
import psycopg
import pytest

from pgwire_fake import TYPES_ROW


def psql(port: int, sql: str, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["psql", "-X", "-h", "127.0.0.1", "-p", str(port), "-U", "alice", "-d", "db", "-v", "ON_ERROR_STOP=1",
         *extra, "-c", sql],
        capture_output=True, text=True, timeout=30, env={**os.environ, "PGCONNECT_TIMEOUT": "5", **(env or {})},
    )


def wait_closed(world, n: int) -> None:
    deadline = time.time() + 5
    while time.time() < deadline and not all(s.closed for s in world.sessions[:n]):
        time.sleep(0.01)


# ---------------------------------------------------------------- psql (simple query)


def test_psql_select_and_types_text_output(pg):
    r = psql(pg.port, "SELECT 1", "-At")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "1\n"
    r = psql(pg.port, "SELECT types", "-At", "-F", "|")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == (
        't|42|1099511627776|1.5|1e+16|12.340|héllo|\\x00ff|2024-01-02|2024-01-02 03:04:05.5|'
        '2024-01-02 03:04:05+00|1 day 02:03:04|12345678-1234-5678-1234-567812345678|{"a": [1, 2]}|'
        '{1,2,NULL}|{"a b","q\\"x"}|'
    )


def test_psql_error_fields_and_session_closed(pg):
    r = psql(pg.port, "bad stuff", "-v", "VERBOSITY=verbose")
    assert r.returncode != 0
    assert "ERROR:  42601: syntax error at or near \"bad\"" in r.stderr
    assert "HINT:  try again" in r.stderr
    wait_closed(pg.world, 1)
    assert pg.world.sessions[0].closed


def test_psql_multi_statement_and_unknown_database(pg):
    r = psql(pg.port, "SELECT 1; SELECT * FROM gen", "-At")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:3] == ["1", "0|row0", "1|row1"]
    r = subprocess.run(["psql", "-X", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "alice", "-d", "nodb", "-c",
                        "SELECT 1"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert 'database "nodb" does not exist' in r.stderr


# ---------------------------------------------------------------- psycopg 3


def test_psycopg_text_and_binary_results(pg):
    with psycopg.connect(pg.dsn, application_name="app1") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.info.parameter_status("application_name") == "app1"
        assert conn.info.backend_pid > 0
        for binary in (False, True):
            row = conn.execute("SELECT types", binary=binary).fetchone()
            assert row == TYPES_ROW, binary
        row = conn.execute("SELECT %s::int4, %s::text, %s::numeric, %s::bytea", [7, "x", Decimal("1.50"), b"\x01"],
                           binary=True).fetchone()
        assert row == (7, "x", Decimal("1.50"), b"\x01")
    assert pg.world.sessions[0].params["application_name"] == "app1"


def test_psycopg_transaction_status_and_errors(pg):
    with psycopg.connect(pg.dsn) as conn:
        conn.execute("INSERT INTO t VALUES (1)")
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
        with pytest.raises(psycopg.errors.SyntaxError) as e:
            conn.execute("bad query")
        assert e.value.diag.sqlstate == "42601"
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INERROR
        conn.rollback()
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_psycopg_parameter_status_change_after_set(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute("SET application_name = 'renamed'", prepare=False)
        assert conn.info.parameter_status("application_name") == "renamed"


def test_psycopg_notice_and_internal_error(pg):
    notices = []
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary))
        conn.execute("NOTICE me")
        assert notices == ["hello from notice"]
        with pytest.raises(psycopg.errors.InternalError_) as e:
            conn.execute("SELECT boom")
        assert e.value.diag.sqlstate == "XX000" and "unexpected bug" not in str(e.value)
        assert conn.execute("SELECT 1").fetchone() == (1,)  # session keeps going


def test_psycopg_cancel(pg):
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        def cancel_soon():
            time.sleep(0.3)
            conn.cancel_safe()

        import threading

        th = threading.Thread(target=cancel_soon)
        th.start()
        t0 = time.time()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep")
        th.join()
        assert time.time() - t0 < 5
        assert conn.execute("SELECT 1").fetchone() == (1,)


# ---------------------------------------------------------------- asyncpg (extended + binary)


def test_asyncpg_binary_params_and_results(pg):
    async def main():
        c = await asyncpg.connect(host="127.0.0.1", port=pg.port, user="alice", database="db")
        try:
            assert await c.fetchval("SELECT 1") == 1
            ts = datetime(2024, 1, 1, 12, tzinfo=timezone.utc)
            u = uuid.uuid4()
            row = await c.fetchrow("SELECT $1::int4, $2::text, $3::numeric, $4::timestamptz, $5::uuid, $6::float8, $7::bool",
                                   5, "x", Decimal("-1234.5600"), ts, u, 2.5, False)
            assert tuple(row) == (5, "x", Decimal("-1234.5600"), ts, u, 2.5, False)
            rows = await c.fetch("SELECT * FROM gen")
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
    wait_closed(pg.world, 1)
    assert pg.world.sessions[0].closed


def test_asyncpg_cursor_uses_row_limited_execute(pg):
    async def main():
        c = await asyncpg.connect(host="127.0.0.1", port=pg.port, user="alice", database="db")
        try:
            async with c.transaction():
                cur = await c.cursor("SELECT * FROM gen")
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
            for i in range(20):
                assert await c.fetchval("SELECT $1::int4", i) == i
        finally:
            await c.close()

    async def main():
        await asyncio.gather(*(one(k) for k in range(8)))

    asyncio.run(main())
