"""Cluster cache management (server.ccm) on a real cluster: make_cluster(readers=2).

With ``borealis up --ccm`` the first reader (i2) becomes tier 0 and loads every table the
writer caches, without any query on i2; the tier-1 reader (i3) stays cold.  The warmed
tables are current (redo keeps them so) and, after a failover to i2, the new writer loads
the previous writer's hot set by itself.
"""

from __future__ import annotations

from tests.cluster import borealis_cli as borealis, wait_for as _wait
import asyncio
import subprocess
import sys
import time

import asyncpg

TABLES = ("hot_a", "hot_b", "hot_c")






def cached(c) -> dict[str, set[int]]:
    return {i["name"]: set(i["cached_tables"] or ()) for i in c.status()["instances"]}


async def _fill(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    for t in TABLES:
        await conn.execute(f"CREATE TABLE {t} (id integer PRIMARY KEY, v text)")
        await conn.executemany(f"INSERT INTO {t} VALUES ($1, $2)", [(k, f"{t}-{k}") for k in range(300)])
    await conn.close()


async def _count(dsn: str, sql: str):
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def _serves(dsn: str) -> bool:
    try:
        return asyncio.run(_count(dsn, "SELECT 1")) == 1
    except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False


def test_tier0_reader_holds_the_writers_hot_set(make_cluster) -> None:
    c = make_cluster(readers=2)
    d = c.data_dir
    cold = cached(c)
    asyncio.run(_fill(c.writer_dsn))
    writer_hot = cached(c)["i1"] - cold["i1"]
    assert len(writer_hot) >= len(TABLES)  # the new tables are cached on the writer
    time.sleep(2.5)  # CCM off: two hot-set periods go by, nobody warms
    assert not writer_hot & cached(c)["i2"]

    out = borealis(d, "up", "--ccm", "--detach")
    assert "i2 is now tier 0" in out and "cluster cache management on" in out
    assert c.launcher.conf.ccm is True
    warm = _wait(lambda: (lambda s: s if cached(c)["i1"] <= s["i2"] else None)(cached(c)), 20,
                 "i2 (tier 0) to cache the writer's hot set")
    assert writer_hot <= warm["i2"]
    assert not writer_hot & warm["i3"], "the tier-1 reader was warmed too"
    assert c.status()["ccm"] is True

    # the warmed tables are current: a commit on the writer shows on i2 through redo
    i2 = c.launcher.dsn("i2")
    assert asyncio.run(_count(i2, "SELECT count(*) FROM hot_b")) == 300
    asyncio.run(_count(c.writer_dsn, "UPDATE hot_b SET v = 'new' WHERE id < 10"))
    _wait(lambda: asyncio.run(_count(i2, "SELECT count(*) FROM hot_b WHERE v = 'new'")) == 10, 10,
          "the update on i2")

    # failover to the tier-0 reader: the new writer loads the old writer's hot set by itself
    c.kill("i1", 9)
    _wait(lambda: c.launcher.conf.writer().name == "i2" and _serves(c.writer_dsn), 60, "i2 promoted")
    _wait(lambda: writer_hot <= cached(c)["i2"], 20, "the new writer to load the hot set")
    assert asyncio.run(_count(c.writer_dsn, "SELECT count(*) FROM hot_b WHERE v = 'new'")) == 10
