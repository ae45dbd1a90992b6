"""The bench's growth section (bench/growth.py) on the shared cluster, at a tiny size: every
statement runs at each of the four sizes and gets its ratios, the row count the section
checks holds, and the report lists each statement per system.  Timing is not asserted
(that is what the bench reports)."""

from __future__ import annotations

import asyncio

import asyncpg

from bench import growth


def test_growth_section_runs_every_statement(cluster) -> None:
    g = asyncio.run(growth.run(cluster.writer_dsn, 100, 60))
    assert g["sizes"] == [100, 200, 400, 800]
    for name, _, _ in growth.STATEMENTS:
        res = g[name]
        assert len(res["seconds"]) == 4 and all(t > 0 for t in res["seconds"]), (name, res)
        assert len(res["ratios"]) == 3
        assert res["mean_ratio"] is not None and res["worst_ratio"] >= min(res["ratios"])

    async def leftovers() -> int:
        conn = await asyncpg.connect(cluster.writer_dsn)
        try:
            return await conn.fetchval("select count(*) from pg_class where relname in ('g0', 'g2')")
        finally:
            await conn.close()

    assert asyncio.run(leftovers()) == 0  # the section drops its tables
    lines = growth.markdown({"borealis": {"growth": {"detail": g}}})
    assert sum(line.startswith("| ") and "| borealis |" in line for line in lines) == len(growth.STATEMENTS)
