"""asyncpg against the writer and reader endpoints: binary codecs for the common types,
fetch/executemany, prepared statements, copy_records_to_table (binary COPY FROM STDIN),
transactions, a pool (whose connection reset runs ``pg_advisory_unlock_all()``, ``CLOSE ALL``,
``RESET ALL``), and read-only errors on the reader.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from decimal import ROUND_HALF_UP, Decimal

import asyncpg
import pytest

ROW = (1, "o'k \u00e9", Decimal("12.50"), dt.datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=dt.timezone.utc),
       dt.datetime(2024, 1, 2, 3, 4, 5), dt.date(2024, 2, 29), True, json.dumps({"a": [1, None]}),
       json.dumps([1, "x"]), uuid.UUID(int=7), b"\x00\xff", 2**40, 1.5, -3)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_codecs_fetch_executemany_prepared(cluster):
    async def main():
        c = await asyncpg.connect(cluster.writer_dsn)
        try:
            await c.execute("CREATE TABLE drv_apg_types (id int PRIMARY KEY, name text, amount numeric(8,2), "
                            "tz timestamptz, ts timestamp, d date, flag boolean, doc jsonb, j json, u uuid, "
                            "raw bytea, big bigint, f float8, small smallint)")
            await c.execute("INSERT INTO drv_apg_types VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)", *ROW)
            rec = await c.fetchrow("SELECT * FROM drv_apg_types WHERE id = $1", 1)
            assert tuple(rec) == ROW[:7] + ('{"a": [1, null]}', ROW[8]) + ROW[9:]
            await c.executemany("INSERT INTO drv_apg_types (id, name, amount) VALUES ($1, $2, $3)",
                                [(i, f"n{i}", Decimal(i) / 4) for i in range(2, 7)])
            st = await c.prepare("SELECT name, amount FROM drv_apg_types WHERE id = $1")
            assert [tuple(await st.fetchrow(i)) for i in (3, 6)] == [("n3", Decimal("0.75")), ("n6", Decimal("1.50"))]
            assert [a.name for a in st.get_attributes()] == ["name", "amount"]
            assert await c.fetchval("SELECT count(*) FROM drv_apg_types WHERE amount > $1", Decimal("1")) == 3
            assert await c.fetchval("SELECT $1::timestamptz", ROW[3]) == ROW[3]
        finally:
            await c.close()

    run(main())


def test_copy_records_to_table_and_out(cluster):
    async def main():
        c = await asyncpg.connect(cluster.writer_dsn)
        try:
            await c.execute("CREATE TABLE drv_apg_copy (id int PRIMARY KEY, s text, n numeric(6,2), "
                            "ts timestamptz, d date, u uuid, b boolean)")
            recs = [(i, f"s{i}" if i % 3 else None, Decimal(i) / 8, dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
                     + dt.timedelta(seconds=i), dt.date(2020, 1, 1) + dt.timedelta(days=i), uuid.UUID(int=i), i % 2 == 0)
                    for i in range(500)]
            res = await c.copy_records_to_table("drv_apg_copy", records=recs)
            assert res == "COPY 500"
            res = await c.copy_records_to_table("drv_apg_copy", records=[(1000, "x")], columns=["id", "s"])
            assert res == "COPY 1"
            got = await c.fetch("SELECT * FROM drv_apg_copy WHERE id < 500 ORDER BY id")
            want = [r[:2] + (r[2].quantize(Decimal("0.01"), ROUND_HALF_UP),) + r[3:] for r in recs]  # as PG rounds
            assert [tuple(r) for r in got] == want
            assert await c.fetchrow("SELECT s, n FROM drv_apg_copy WHERE id = 1000") == ("x", None)
            # a duplicate key anywhere fails the whole COPY
            with pytest.raises(asyncpg.UniqueViolationError):
                await c.copy_records_to_table("drv_apg_copy", records=[(2000, "a"), (5, "dup")], columns=["id", "s"])
            assert await c.fetchval("SELECT count(*) FROM drv_apg_copy") == 501
            import io
            buf = io.BytesIO()
            await c.copy_from_query("SELECT id, s FROM drv_apg_copy WHERE id IN (1, 3)", output=buf, format="csv")
            assert buf.getvalue() == b"1,s1\n3,\n"
        finally:
            await c.close()

    run(main())


def test_transactions_and_pool(cluster):
    async def main():
        c = await asyncpg.connect(cluster.writer_dsn)
        try:
            await c.execute("CREATE TABLE drv_apg_tx (id int PRIMARY KEY)")
            async with c.transaction():
                await c.execute("INSERT INTO drv_apg_tx VALUES (1)")
                with pytest.raises(RuntimeError):
                    async with c.transaction():  # savepoint
                        await c.execute("INSERT INTO drv_apg_tx VALUES (2)")
                        raise RuntimeError
            with pytest.raises(asyncpg.UniqueViolationError):
                async with c.transaction():
                    await c.execute("INSERT INTO drv_apg_tx VALUES (3)")
                    await c.execute("INSERT INTO drv_apg_tx VALUES (1)")
            assert [r["id"] for r in await c.fetch("SELECT id FROM drv_apg_tx ORDER BY id")] == [1]
        finally:
            await c.close()
        async with asyncpg.create_pool(cluster.writer_dsn, min_size=1, max_size=3) as pool:
            vals = await asyncio.gather(*[pool.fetchval("SELECT $1::int * 2", i) for i in range(12)])
            assert vals == [i * 2 for i in range(12)]
            async with pool.acquire() as conn:
                await conn.execute("SET application_name = 'drv'")
            async with pool.acquire() as conn:  # the pool's reset ran RESET ALL
                assert await conn.fetchval("SHOW application_name") != "drv"

    run(main())


def test_reader_endpoint_is_read_only(cluster):
    async def main():
        w = await asyncpg.connect(cluster.writer_dsn)
        await w.execute("CREATE TABLE drv_apg_ro (id int PRIMARY KEY, v text)")
        await w.execute("INSERT INTO drv_apg_ro VALUES (1, 'x')")
        await w.close()
        r = await asyncpg.connect(cluster.reader_dsn)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    if await r.fetchval("SELECT v FROM drv_apg_ro WHERE id = $1", 1) == "x":
                        break
                except asyncpg.UndefinedTableError:
                    pass
                assert time.monotonic() < deadline, "reader never saw the writer's row"
                await asyncio.sleep(0.2)
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await r.execute("INSERT INTO drv_apg_ro VALUES (2, 'y')")
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
                await r.copy_records_to_table("drv_apg_ro", records=[(3, "z")])
        finally:
            await r.close()

    run(main())


def test_array_parameters(cluster):
    async def main():
        c = await asyncpg.connect(cluster.writer_dsn)
        try:
            assert await c.fetchval("SELECT $1::int[]", [1, 2]) == [1, 2]
        finally:
            await c.close()

    run(main())
