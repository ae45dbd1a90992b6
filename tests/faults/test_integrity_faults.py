"""Damaged storage files on a real cluster (issue 15): "never serve a corrupt byte".

Each scenario damages the real RocksDB files of stopped storage nodes (bytes flipped in
SSTs, a truncated WAL, a deleted SST) or fills a node's disk (the ``FAULT_ENOSPC`` hook), then
checks that every answer is exactly what was committed -- a damaged segment refuses, it
never answers short -- that no committed row is overwritten (an INSERT of an existing key
still fails with 23505 after a switchover), and that the damaged segment is reported and
rebuilt until ``borealis status --json`` shows it whole again.
Nodes: s1,s2 in az1; s3,s4 in az2; s5,s6 in az3.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from cluster import wait_for

from server.config import ClusterConf
from storage.client import NodeClient, NodeError, NodeUnavailable
from storage.mtls import InternalTls

ROWS = 3000


def _cli(data_dir: Path, *args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "server.cli", *args, "--data-dir", str(data_dir)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def _fill(dsn: str, table: str, rows: int = ROWS) -> dict[int, str]:
    """A table of ``rows`` committed rows; returns them (id -> v)."""
    want = {i: f"row-{i}-" + "x" * (i % 37) for i in range(1, rows + 1)}
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, v text)")
        items = list(want.items())
        for start in range(0, len(items), 500):
            chunk = items[start:start + 500]
            conn.execute(f"INSERT INTO {table} VALUES " + ", ".join(f"({i}, '{v}')" for i, v in chunk))
    return want


def _rows(dsn: str, table: str) -> dict[int, str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return dict(conn.execute(f"SELECT id, v FROM {table}").fetchall())


def _flip_ssts(db: Path, seed: int) -> int:
    """64 random bytes flipped at a fifth and at three fifths of every SST (inside data
    blocks, away from the footer, so RocksDB still opens the files)."""
    rng = random.Random(seed)
    ssts = sorted(db.glob("*.sst"))
    for sst in ssts:
        raw = bytearray(sst.read_bytes())
        for at in (len(raw) // 5, len(raw) * 3 // 5):
            for i in range(at, min(at + 64, len(raw))):
                raw[i] ^= rng.randrange(1, 256)
        sst.write_bytes(bytes(raw))
    return len(ssts)


async def _scan_pg(client: NodeClient, pg: int, at: int) -> list:
    out: list = []
    after = None
    while True:
        res = await client.scan(pg, b"", at, after=after)
        out.extend(res.items)
        if res.done or not res.items:
            return out
        after = res.items[-1][0]


def _direct_scans_never_short(data_dir: Path, damaged: list[str], healthy: str, at: int) -> int:
    """Every PG scanned straight from each damaged node must equal a healthy node's answer
    at the same LSN, or be refused -- never shorter.  Returns how many were refused."""
    conf = ClusterConf.load(data_dir)
    nodes = {s.name: s for s in conf.storage_nodes}

    async def go() -> int:
        ref = NodeClient(healthy, conf.host, nodes[healthy].port, tls=InternalTls.load(data_dir))
        refused = 0
        try:
            await ref.connect()
            ref_scl = (await ref.state()).scl
            for name in damaged:
                c = NodeClient(name, conf.host, nodes[name].port, tls=InternalTls.load(data_dir))
                try:
                    await c.connect()
                    for pg in range(conf.protection_groups):
                        at_pg = min(at, ref_scl.get(pg, 0))  # a PG's last record may be below the VDL
                        want = await _scan_pg(ref, pg, at_pg)
                        try:
                            got = await _scan_pg(c, pg, at_pg)
                        except NodeError as e:
                            assert e.code in ("corrupt", "not_complete"), e
                            refused += 1
                            continue
                        assert len(got) == len(want) and got == want, (name, pg, len(got), len(want))
                finally:
                    c.close()
        finally:
            ref.close()
        return refused

    return asyncio.run(go())


def _node(st: dict, name: str) -> dict:
    return next(n for n in st["storage_nodes"] if n["name"] == name)


def _whole(c, names: list[str]):  # noqa: ANN001, ANN202
    """Status once every named node is up, reports no damaged segment and holds every PG
    as far as the most complete node does."""
    st = json.loads(_cli(c.data_dir, "status", "--json"))
    nodes = {n["name"]: n for n in st["storage_nodes"]}
    pgs = {pg for n in nodes.values() for pg in n["scl"]}
    best = {pg: max(int(n["scl"].get(pg, 0)) for n in nodes.values()) for pg in pgs}
    for name in names:
        n = nodes[name]
        if n["state"] != "up" or n["damaged"] or any(int(n["scl"].get(pg, 0)) < best[pg] for pg in pgs):
            return None
    return st


def _scrub(data_dir: Path, name: str) -> None:
    """Ask a node for a scrub pass now (what its hourly pass would do)."""
    conf = ClusterConf.load(data_dir)
    s = next(s for s in conf.storage_nodes if s.name == name)

    async def go() -> None:
        c = NodeClient(name, conf.host, s.port, tls=InternalTls.load(data_dir))
        try:
            await c.connect()
            await c.scrub(timeout=60)
        except (NodeError, NodeUnavailable):
            pass  # it may be rebuilding already
        finally:
            c.close()

    asyncio.run(go())


def _restart_reader(c) -> None:  # noqa: ANN001
    """A fresh reader process: it caches nothing and reads every table from storage."""
    c.kill("i2", signal.SIGTERM)
    c.start(["i2"])


@pytest.mark.parametrize("victims", [["s3"], ["s1", "s4"]], ids=["one-node", "two-nodes-two-azs"])
def test_flipped_sst_bytes_are_never_served_and_the_segments_are_rebuilt(make_cluster, victims):
    c = make_cluster(readers=1)
    want = _fill(c.writer_dsn, "t")
    for v in victims:
        c.kill(v, signal.SIGTERM)  # a clean stop flushes the memtable: the rows are in SSTs
    for i, v in enumerate(victims):
        assert _flip_ssts(c.data_dir / "storage" / v / "db", seed=i) >= 1
    c.start(victims)
    vdl = c.status()["volume"]["vdl"]
    healthy = next(s for s in ("s2", "s5", "s6") if s not in victims)
    # Straight from the damaged nodes: the full answer or a refusal, never a short one.
    _direct_scans_never_short(c.data_dir, victims, healthy, vdl)
    # A reader started now loads the table from some complete segment: the full row set.
    _restart_reader(c)
    assert _rows(c.reader_dsn, "t") == want
    with psycopg.connect(c.reader_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*), sum(id) FROM t").fetchone() == (ROWS, ROWS * (ROWS + 1) // 2)
    # Switch over to that reader: a committed key is still there, its row not overwritten.
    _cli(c.data_dir, "failover", "--target", "i2")
    wait_for(lambda: next(i for i in c.status()["instances"] if i["name"] == "i2")["role"] == "writer", 30, "i2 writer")
    with psycopg.connect(c.writer_dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO t VALUES (2, 'overwritten')")
        conn.execute("INSERT INTO t VALUES (%s, 'new')", (ROWS + 1,))
    want[ROWS + 1] = "new"
    assert _rows(c.writer_dsn, "t") == want
    # The damage is found (by a read, or by a scrub pass), reported and repaired from peers.
    for v in victims:
        _scrub(c.data_dir, v)
    st = wait_for(lambda: _whole(c, victims), 60, f"{victims} whole again")
    for v in victims:
        log = c.launcher.log_path(v).read_text()
        assert "segment_damaged" in log or "store_unopenable_moved_aside" in log, log[-3000:]
        assert _node(st, v)["state"] == "up"
    # Whole again: the repaired segments serve exactly what the healthy ones do.
    vdl = c.status()["volume"]["vdl"]
    assert _direct_scans_never_short(c.data_dir, victims, healthy, vdl) == 0
    _restart_reader(c)  # i1 is the reader now; restart it too
    assert _rows(c.reader_dsn, "t") == want


def test_truncated_wal_and_deleted_sst_are_rebuilt_from_peers(make_cluster):
    c = make_cluster(readers=1)
    want = _fill(c.writer_dsn, "t")
    # s3 (az2): killed with its recent writes only in the WAL, then the WAL cut in half.
    c.kill("s3", signal.SIGKILL)
    wals = sorted((c.data_dir / "storage" / "s3" / "db").glob("*.log"), key=lambda p: p.stat().st_size)
    assert wals and wals[-1].stat().st_size > 0
    with open(wals[-1], "r+b") as f:
        f.truncate(wals[-1].stat().st_size // 2)
    # s5 (az3): stopped cleanly (its rows in SSTs), then one SST deleted.
    c.kill("s5", signal.SIGTERM)
    ssts = sorted((c.data_dir / "storage" / "s5" / "db").glob("*.sst"), key=lambda p: p.stat().st_size)
    assert ssts
    ssts[-1].unlink()
    c.start(["s3", "s5"])
    vdl = c.status()["volume"]["vdl"]
    _direct_scans_never_short(c.data_dir, ["s3", "s5"], "s1", vdl)
    _restart_reader(c)
    assert _rows(c.reader_dsn, "t") == want
    with psycopg.connect(c.writer_dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO t VALUES (7, 'overwritten')")
        conn.execute("INSERT INTO t VALUES (%s, 'new')", (ROWS + 1,))
    want[ROWS + 1] = "new"
    wait_for(lambda: _whole(c, ["s3", "s5"]), 60, "s3 and s5 whole again")
    assert list((c.data_dir / "storage" / "s5").glob("db.corrupt-*")), "the unopenable store is kept aside"
    assert "store_unopenable_moved_aside" in c.launcher.log_path("s5").read_text()
    vdl = c.status()["volume"]["vdl"]
    assert _direct_scans_never_short(c.data_dir, ["s3", "s5"], "s1", vdl) == 0
    assert _rows(c.writer_dsn, "t") == want


def test_a_full_disk_refuses_appends_then_catches_up(cluster):
    c = cluster
    flag = c.data_dir / "storage" / "s4" / "FAULT_ENOSPC"
    pid = c.launcher.pid("s4")
    with psycopg.connect(c.writer_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE enospc (id integer PRIMARY KEY, v text)")
        conn.execute("INSERT INTO enospc VALUES (0, 'before')")
    log = c.launcher.log_path("s4")
    flag.write_text("")
    try:
        wait_for(lambda: "event=fault_hook_enospc active " in log.read_text(), 10, "s4 to see its disk full")
        before = {pg: int(v) for pg, v in _node(c.status(), "s4")["scl"].items()}
        with psycopg.connect(c.writer_dsn, autocommit=True) as conn:
            for i in range(1, 51):  # commits go on with the five other segments
                conn.execute("INSERT INTO enospc VALUES (%s, 'during')", (i,))
        st = c.status()
        # No false ack: the full node holds nothing new, and says so.
        assert {pg: int(v) for pg, v in _node(st, "s4")["scl"].items()} == before
        assert st["volume"]["vdl"] > max(before.values())
        # the node logs its refusal after the writer has moved on with the other five
        wait_for(lambda: "write_refused_disk_full" in log.read_text(), 10, "s4 to log its refused write")
    finally:
        flag.unlink(missing_ok=True)
    wait_for(lambda: _whole(c, ["s4"]), 60, "s4 to catch up once space is back")
    assert c.launcher.pid("s4") == pid, "the node survived its full disk (no restart)"
    # What it now claims to hold, it holds: the writes refused while full were not
    # counted in memory as if stored (they came back by resend or gossip).
    vdl = c.status()["volume"]["vdl"]
    assert _direct_scans_never_short(c.data_dir, ["s4"], "s1", vdl) == 0
    with psycopg.connect(c.writer_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM enospc").fetchone()[0] == 51
        conn.execute("DROP TABLE enospc")
