"""Storage reclaims a dropped table's rows -- on every segment, through a real cluster --
but only once the drop has left the retention window: until then a read at a point
before the drop (what PITR, clones and backtrack stand on) still finds every row.

The cluster runs with a retention window of a few seconds (BOREALIS_RETENTION_SECONDS,
as test_durability's replacement test); GC runs every second.
"""

from __future__ import annotations

import asyncio
import struct
import time

import psycopg

from storage import protocol as P
from storage.client import NodeClient
from storage.mtls import InternalTls

RETENTION = 6.0
ROWS = 5_000


async def _versions(c: NodeClient, pg: int, prefix: bytes, at: int | None) -> int | str:
    """How many keys with ``prefix`` have a version (deletes included) at ``at`` (None:
    the segment's SCL of the PG) on one segment, or the error code."""
    try:
        if at is None:
            at = (await c.state()).scl[pg]
        n, after = 0, None
        while True:
            res = await c.call(P.Scan, pg=pg, prefix=prefix, at_lsn=at, after=after, limit=10_000, deletes=True)
            n += len(res.items)
            if res.done or not res.items:
                return n
            after = res.items[-1][0]
    except Exception as e:  # noqa: BLE001 -- NodeError carries the code the test looks at
        return getattr(e, "code", repr(e))


def _on_all(clients: list[NodeClient], pg: int, prefix: bytes, at: int | None) -> list:
    async def go() -> list:
        try:
            return list(await asyncio.gather(*(_versions(c, pg, prefix, at) for c in clients)))
        finally:
            for c in clients:
                c.close()

    return asyncio.run(go())


def test_gc_reclaims_a_dropped_table_only_after_the_retention_window(make_cluster, monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setenv("BOREALIS_RETENTION_SECONDS", str(RETENTION))
    c = make_cluster(readers=0)
    conf = c.launcher.conf

    def clients() -> list[NodeClient]:
        tls = InternalTls.load(c.data_dir)
        return [NodeClient(s.name, conf.host, s.port, s.az, tls=tls) for s in conf.storage_nodes]

    with psycopg.connect(c.writer_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE big (id integer PRIMARY KEY, v text)")
        conn.execute(f"INSERT INTO big SELECT g, 'row ' || g FROM generate_series(1, {ROWS}) g")
        conn.execute("CREATE TABLE keep (id integer PRIMARY KEY, v text)")
        conn.execute("INSERT INTO keep SELECT g, 'keep ' || g FROM generate_series(1, 100) g")
        big = conn.execute("SELECT oid FROM pg_class WHERE relname = 'big'").fetchone()[0]
        keep = conn.execute("SELECT oid FROM pg_class WHERE relname = 'keep'").fetchone()[0]
        pgs = conf.protection_groups
        before = c.status()["volume"]["vdl"]
        conn.execute("DROP TABLE big")
        dropped_at = time.monotonic()

        # Inside the window: every segment still serves the rows at a point before the drop.
        got = _on_all(clients(), big % pgs, struct.pack(">I", big), before)
        assert time.monotonic() - dropped_at < RETENTION / 2, "too slow to check inside the window"
        assert got == [ROWS] * 6, got

        # Past the window: GC deletes every version of the table on every segment.
        deadline = time.monotonic() + RETENTION + 30
        while True:
            conn.execute("INSERT INTO keep VALUES (0, 'tick') ON CONFLICT (id) DO UPDATE SET v = excluded.v")
            got = _on_all(clients(), big % pgs, struct.pack(">I", big), None)
            if got == [0] * 6:
                break
            assert time.monotonic() < deadline, f"versions of the dropped table left: {got}"
            time.sleep(0.5)
        assert time.monotonic() - dropped_at >= RETENTION, "reclaimed inside the retention window"
        # A read before the drop is now refused as too old -- never answered without the rows.
        assert set(_on_all(clients(), big % pgs, struct.pack(">I", big), before)) == {"too_old"}
        # The other table is untouched, in storage and through SQL.
        assert _on_all(clients(), keep % pgs, struct.pack(">I", keep), None) == [101] * 6
        assert conn.execute("SELECT count(*), sum(id) FROM keep").fetchone() == (101, 5050)
    c.kill(conf.writer().name)  # a cold writer loads keep from storage
    c.start()
    with psycopg.connect(c.writer_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*), sum(id) FROM keep").fetchone() == (101, 5050)
        conn.execute("CREATE TABLE big (id integer PRIMARY KEY)")
        assert conn.execute("SELECT count(*) FROM big").fetchone() == (0,)
