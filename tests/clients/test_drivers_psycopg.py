"""psycopg 3 against the writer and reader endpoints: sync and async connections,
server-side binding (binary parameters and results, prepared statements), COPY in text and
binary format, pipeline mode, transactions, and read-only behaviour on the reader.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from decimal import Decimal

import psycopg
import pytest
from psycopg.types.json import Jsonb

ROW = (1, "o'k \u00e9", Decimal("12.50"), dt.datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=dt.timezone.utc),
       dt.date(2024, 2, 29), True, {"a": [1, None]}, uuid.UUID(int=7), b"\x00\xff", 2**40, 1.5)
DDL = ("CREATE TABLE {t} (id int PRIMARY KEY, name text, amount numeric(8,2), ts timestamptz, d date, "
       "flag boolean, doc jsonb, u uuid, raw bytea, big bigint, f float8)")


def wait_rows(dsn: str, sql: str, want: list, timeout: float = 10.0) -> list:
    """Poll the reader until it has caught up with what the writer committed."""
    deadline, rows = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        with psycopg.connect(dsn, autocommit=True) as conn:
            try:
                rows = conn.execute(sql).fetchall()
            except psycopg.errors.UndefinedTable:
                rows = None
        if rows == want:
            return rows
        time.sleep(0.2)
    return rows or []


def test_types_text_and_binary_binding(cluster):
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as conn:
        conn.execute(DDL.format(t="drv_pg3_types"))
        row = ROW[:6] + (Jsonb(ROW[6]),) + ROW[7:]
        conn.execute("INSERT INTO drv_pg3_types VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)", row)
        with conn.cursor(binary=True) as cur:  # binary parameters and binary results
            cur.execute("INSERT INTO drv_pg3_types VALUES (%b,%b,%b,%b,%b,%b,%b,%b,%b,%b,%b)", (2,) + row[1:])
            cur.execute("SELECT * FROM drv_pg3_types ORDER BY id")
            binary_rows = cur.fetchall()
        text_rows = conn.execute("SELECT * FROM drv_pg3_types ORDER BY id").fetchall()
    assert text_rows == binary_rows == [ROW, (2,) + ROW[1:]]


def test_prepared_statements_and_pipeline(cluster):
    with psycopg.connect(cluster.writer_dsn, autocommit=True, prepare_threshold=0) as conn:
        conn.execute("CREATE TABLE drv_pg3_prep (id int PRIMARY KEY, v text)")
        for i in range(5):
            conn.execute("INSERT INTO drv_pg3_prep VALUES (%s, %s)", (i, f"v{i}"), prepare=True)
        got = [conn.execute("SELECT v FROM drv_pg3_prep WHERE id = %s", (i,), prepare=True).fetchone()[0]
               for i in (4, 0, 2)]
        assert got == ["v4", "v0", "v2"]
        with conn.pipeline():
            c1 = conn.execute("INSERT INTO drv_pg3_prep VALUES (%s, %s) RETURNING id", (10, "p"))
            c2 = conn.execute("SELECT count(*) FROM drv_pg3_prep")
            c3 = conn.execute("SELECT %s::int + 1", (41,))
        assert (c1.fetchone(), c2.fetchone(), c3.fetchone()) == ((10,), (6,), (42,))
        # an error inside a pipeline surfaces and the connection stays usable
        with pytest.raises(psycopg.errors.UniqueViolation):
            with conn.pipeline():
                conn.execute("INSERT INTO drv_pg3_prep VALUES (%s, %s)", (10, "dup"))
        assert conn.execute("SELECT v FROM drv_pg3_prep WHERE id = 10").fetchone() == ("p",)


def test_copy_text_and_binary(cluster):
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE drv_pg3_copy (id int PRIMARY KEY, s varchar(5), n numeric(6,1), ts timestamp)")
        with cur.copy("COPY drv_pg3_copy FROM STDIN") as cp:
            cp.write_row((1, "a\tb", Decimal("1.25"), dt.datetime(2024, 1, 1, 12)))
            cp.write_row((2, None, None, None))
        with cur.copy("COPY drv_pg3_copy (id, s, n, ts) FROM STDIN (FORMAT binary)") as cp:
            cp.set_types(["int4", "varchar", "numeric", "timestamp"])
            cp.write_row((3, "bin", Decimal("-7.05"), dt.datetime(1999, 12, 31, 23, 59, 59)))
            cp.write_row((4, None, Decimal("0"), None))
        assert cur.rowcount == 2
        with cur.copy("COPY drv_pg3_copy TO STDOUT (FORMAT binary)") as cp:
            cp.set_types(["int4", "varchar", "numeric", "timestamp"])
            rows = list(cp.rows())
        assert rows == [(1, "a\tb", Decimal("1.3"), dt.datetime(2024, 1, 1, 12)), (2, None, None, None),
                        (3, "bin", Decimal("-7.1"), dt.datetime(1999, 12, 31, 23, 59, 59)),
                        (4, None, Decimal("0.0"), None)]
        # a value too long for varchar(5) fails the whole binary COPY with PostgreSQL's error
        with pytest.raises(psycopg.errors.StringDataRightTruncation):
            with cur.copy("COPY drv_pg3_copy FROM STDIN (FORMAT binary)") as cp:
                cp.set_types(["int4", "varchar", "numeric", "timestamp"])
                cp.write_row((5, "toolong", None, None))
        assert cur.execute("SELECT count(*) FROM drv_pg3_copy").fetchone() == (4,)


def test_transactions(cluster):
    with psycopg.connect(cluster.writer_dsn) as conn:
        conn.execute("CREATE TABLE drv_pg3_tx (id int PRIMARY KEY)")
        conn.commit()
        with conn.transaction():
            conn.execute("INSERT INTO drv_pg3_tx VALUES (1)")
            with pytest.raises(RuntimeError), conn.transaction():  # a savepoint, rolled back
                conn.execute("INSERT INTO drv_pg3_tx VALUES (2)")
                raise RuntimeError
        conn.execute("INSERT INTO drv_pg3_tx VALUES (3)")
        conn.rollback()
        assert conn.execute("SELECT id FROM drv_pg3_tx ORDER BY id").fetchall() == [(1,)]


def test_async_connection(cluster):
    async def main() -> list:
        async with await psycopg.AsyncConnection.connect(cluster.writer_dsn, autocommit=True) as conn:
            await conn.execute("CREATE TABLE drv_pg3_async (id int PRIMARY KEY, v text)")
            async with conn.cursor() as cur:
                await cur.executemany("INSERT INTO drv_pg3_async VALUES (%s, %s)", [(i, str(i)) for i in range(4)])
            async with conn.transaction():
                await conn.execute("UPDATE drv_pg3_async SET v = v || '!' WHERE id >= %s", (2,))
            async with conn.cursor(binary=True) as cur:
                await cur.execute("SELECT id, v FROM drv_pg3_async ORDER BY id")
                return await cur.fetchall()

    assert asyncio.run(main()) == [(0, "0"), (1, "1"), (2, "2!"), (3, "3!")]


def test_reader_endpoint_is_read_only(cluster):
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE drv_pg3_ro (id int PRIMARY KEY, v text)")
        conn.execute("INSERT INTO drv_pg3_ro VALUES (1, 'x'), (2, 'y')")
    assert wait_rows(cluster.reader_dsn, "SELECT id, v FROM drv_pg3_ro ORDER BY id", [(1, "x"), (2, "y")]) \
        == [(1, "x"), (2, "y")]
    with psycopg.connect(cluster.reader_dsn, autocommit=True) as conn:
        with conn.cursor(binary=True) as cur:
            assert cur.execute("SELECT v FROM drv_pg3_ro WHERE id = %s", (2,)).fetchone() == ("y",)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("INSERT INTO drv_pg3_ro VALUES (3, 'z')")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), conn.cursor() as cur:
            with cur.copy("COPY drv_pg3_ro FROM STDIN") as cp:
                cp.write_row((4, "w"))
