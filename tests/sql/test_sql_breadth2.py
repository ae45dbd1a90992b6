"""SQL breadth 2 through real clients: generate_series loads, arrays over the wire, windows,
json, foreign keys, EXPLAIN, and the simple-query statement cache (psql / psycopg / asyncpg)."""

from __future__ import annotations

import asyncio
import subprocess

import asyncpg
import psycopg
import pytest


def test_series_arrays_windows_json_fk_explain(cluster):
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute("CREATE TABLE sqlb2_acc (aid int PRIMARY KEY, bid int, bal int, tags text[], doc jsonb)")
        cur.execute("INSERT INTO sqlb2_acc (aid, bid, bal, tags, doc) SELECT g, (g - 1) / 10 + 1, g * 2, "
                    "ARRAY['t' || (g % 3)], jsonb_build_object('n', g) FROM generate_series(1, 50) AS g")
        cur.execute("SELECT tags, doc->'n', doc->>'n' FROM sqlb2_acc WHERE aid = 7")
        assert cur.fetchone() == (["t1"], 7, "7")
        cur.execute("SELECT bid, sum(bal), rank() OVER (ORDER BY sum(bal) DESC) FROM sqlb2_acc GROUP BY bid ORDER BY bid")
        rows = cur.fetchall()
        assert rows[0] == (1, 110, 5) and rows[-1] == (5, 910, 1)
        cur.execute("SELECT count(*) FROM sqlb2_acc WHERE 't0' = ANY(tags)")
        assert cur.fetchone() == (16,)
        cur.execute("CREATE TABLE sqlb2_ch (id int PRIMARY KEY, aid int REFERENCES sqlb2_acc(aid) ON DELETE CASCADE)")
        cur.execute("INSERT INTO sqlb2_ch VALUES (1, 1), (2, 2)")
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            cur.execute("INSERT INTO sqlb2_ch VALUES (3, 999)")
        cur.execute("DELETE FROM sqlb2_acc WHERE aid = 1")
        cur.execute("SELECT id FROM sqlb2_ch")
        assert cur.fetchall() == [(2,)]
        cur.execute("EXPLAIN (COSTS OFF) SELECT * FROM sqlb2_acc WHERE aid = 3")
        assert cur.fetchall() == [("Index Scan using sqlb2_acc_pkey on sqlb2_acc",)]


def test_simple_query_cache_over_psql_and_asyncpg_arrays(cluster):
    # many simple queries differing only in constants (pgbench -M simple style) through psql
    script = "".join(f"SELECT bal FROM sqlb2_acc WHERE aid = {i};\n" for i in range(2, 40))
    out = subprocess.run(["psql", cluster.writer_dsn, "-XAtq", "-c", "SELECT 1"], capture_output=True, text=True)
    assert out.returncode == 0
    out = subprocess.run(["psql", cluster.writer_dsn, "-XAtq"], input=script, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [str(i * 2) for i in range(2, 40)]

    async def run() -> None:
        conn = await asyncpg.connect(cluster.writer_dsn)
        try:
            v = await conn.fetchval("SELECT ARRAY[1, 2, 3]")
            assert v == [1, 2, 3]
            rows = await conn.fetch("SELECT * FROM unnest(ARRAY['a', 'b']) WITH ORDINALITY AS u(x, n)")
            assert [tuple(r) for r in rows] == [("a", 1), ("b", 2)]
        finally:
            await conn.close()

    asyncio.run(run())
