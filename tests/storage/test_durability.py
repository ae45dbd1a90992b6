"""Storage durability features: read-path checksums, the scrubber's repairs, retention
window + GC, SCL checkpoints and node replacement (bootstrap by version copy)."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import pytest
from test_node import Nodes, rec, run, wait_for  # tests/storage is on sys.path (rootdir prepend)

from server.config import ClusterConf
from storage import protocol as P
from storage.client import NodeError
from storage.records import DELETE
from storage.store import Store, log_key, version_key


@pytest.fixture
def nodes(tmp_path: Path):  # noqa: ANN201
    made: list[Nodes] = []

    def make(n: int) -> Nodes:
        ns = Nodes(tmp_path, n)
        made.append(ns)
        for s in ns.conf.storage_nodes:
            ns.start(s.name)
        return ns

    yield make
    for ns in made:
        ns.conf = ClusterConf.load(ns.data_dir)
        ns.stop_all()
        for s in ns.conf.storage_nodes:
            assert "Traceback" not in ns.log(s.name), ns.log(s.name)


async def _load(ns: Nodes, names: list[str], n: int = 20) -> None:
    """Keys k0..k{n-1} in PG 1 at LSNs 1..n, VDL n, on every named node; materialised."""
    recs = [rec(i + 1, 1, i, b"k%d" % i, b"value-%d" % i) for i in range(n)]
    for name in names:
        c = ns.client(name)
        await c.append(1, n, recs)
        await wait_for(lambda c=c: _mat(c, n))
        c.close()


async def _mat(c, lsn: int) -> bool:  # noqa: ANN001
    return (await c.state()).materialized >= lsn


async def _reads(c, key: bytes, lsn: int, want: bytes) -> bool:  # noqa: ANN001
    try:
        r = await c.read(1, key, lsn)
    except NodeError as e:
        assert e.code in ("corrupt", "not_complete"), e
        return False
    assert r.value == want, r  # never wrong bytes
    return True


# --- in process: retention, GC, checkpoints ----------------------------------------------


def test_gc_keeps_the_retention_window_and_restart_uses_the_checkpoint(tmp_path: Path) -> None:
    from storage.gc import collect, sample
    from storage.node import StorageNode

    now = [1000.0]

    async def go() -> None:
        store = Store(tmp_path / "db")
        node = StorageNode("t", "az1", 1, store, retention_seconds=100, clock=lambda: now[0])

        async def append(records: list, vdl: int) -> None:
            await node.append(P.Append(req=0, epoch=1, vdl=vdl, records=records))
            node.materialize(0, vdl)
            sample(node)

        await append([rec(1, 0, 0, b"a", b"a1"), rec(2, 0, 1, b"b", b"b2"), rec(3, 0, 2, b"a", b"a3")], 3)
        now[0] = 1050
        await append([rec(4, 0, 3, b"a", b"a4"), rec(5, 0, 4, b"b", kind=DELETE)], 5)
        now[0] = 1120  # the window starts at 1020: the VDL then was 3
        await append([rec(6, 0, 5, b"a", b"a6")], 6)
        res = await collect(node)
        assert res.window_lsn == 3 and res.gc_floor == {0: 3}
        assert (res.versions_removed, res.records_removed) == (1, 2)  # a@1; records 1, 2
        assert node.read(P.Read(req=0, pg=0, key=b"a", at_lsn=3)).value == b"a3"
        assert node.read(P.Read(req=0, pg=0, key=b"b", at_lsn=4)).value == b"b2"
        assert not node.read(P.Read(req=0, pg=0, key=b"b", at_lsn=5)).found
        with pytest.raises(Exception) as e:
            node.read(P.Read(req=0, pg=0, key=b"a", at_lsn=2))
        assert getattr(e.value, "code", None) == "too_old"
        with pytest.raises(Exception) as e:
            node.fetch_log(P.FetchLog(req=0, pg=0, after_lsn=0))
        assert getattr(e.value, "code", None) == "too_old"
        assert [r.lsn for r in node.fetch_log(P.FetchLog(req=0, pg=0, after_lsn=2)).records] == [3, 4, 5, 6]
        now[0] = 1200  # window starts at 1100: VDL 5; b's newest <= 5 is a delete
        res = await collect(node)
        assert res.gc_floor == {0: 5} and res.versions_removed == 3  # a@3, b@2, b@5
        assert node.scan(P.Scan(req=0, pg=0, prefix=b"", at_lsn=5)).items == [(b"a", 4, b"a4")]
        assert node.scan(P.Scan(req=0, pg=0, prefix=b"", at_lsn=6)).items == [(b"a", 6, b"a6")]
        store.close()
        # Restart: the GC floor survives, the SCL comes from its checkpoint (no replay).
        store = Store(tmp_path / "db")
        node = StorageNode("t", "az1", 1, store, retention_seconds=100, clock=lambda: now[0])
        assert node.replayed == 0 and node.seg.pgs[0].scl == 6 and node.gc_floor == [5]
        assert node.read(P.Read(req=0, pg=0, key=b"a", at_lsn=6)).value == b"a6"
        await node.append(P.Append(req=0, epoch=1, vdl=6, records=[rec(7, 0, 6, b"c", b"c7")]))
        assert node.seg.pgs[0].scl == 7
        store.close()

    run(go())


# --- real nodes: damage and repair ---------------------------------------------------------


def _damage(db: Path, edits: dict[bytes, bytes]) -> None:
    store = Store(db)
    for k, v in edits.items():
        store.db.put(k, v)
    store.close()


def test_flipped_version_and_record_bytes_are_never_served_and_get_repaired(nodes) -> None:  # noqa: ANN001
    ns = nodes(3)
    run(_load(ns, ["s1", "s2", "s3"]))
    ns.kill("s1", signal.SIGTERM)
    db = ns.data_dir / "storage" / "s1" / "db"
    store = Store(db)
    vk, lk = version_key(1, b"k5", 6), log_key(1, 8)
    good_v, good_l = store.db.get(vk), store.db.get(lk)
    store.close()
    bad_v = good_v[:-1] + bytes([good_v[-1] ^ 0x01])  # "value-5" -> "value-4": crc must catch it
    bad_l = good_l.replace(b"value-7", b"value-X")
    _damage(db, {vk: bad_v, lk: bad_l})
    ns.start("s1")

    async def go() -> None:
        c = ns.client("s1")
        with pytest.raises(NodeError) as e:
            await c.read(1, b"k5", 20)
        assert e.value.code == "corrupt"
        # The damaged read woke the scrubber; it repairs from its peers.
        await wait_for(lambda: _reads(c, b"k5", 20, b"value-5"))
        res = await c.scrub()
        assert res.corrupt == 0 and res.records == 20 and res.versions == 20
        got = (await c.fetch_log(1, 7, limit=1)).records
        assert got[0].lsn == 8 and got[0].value == b"value-7" and got[0].valid()
        c.close()

    run(go())


def test_rocksdb_block_corruption_rebuilds_the_node_from_peers(nodes) -> None:  # noqa: ANN001
    ns = nodes(3)
    run(_load(ns, ["s1", "s2", "s3"], n=300))
    ns.kill("s1", signal.SIGTERM)
    db = ns.data_dir / "storage" / "s1" / "db"
    ssts = sorted(db.glob("*.sst"))
    assert ssts, "a clean stop flushes the memtable to an SST"
    for sst in ssts:
        raw = bytearray(sst.read_bytes())
        for i in range(len(raw) // 8, len(raw) // 2, 97):
            raw[i] ^= 0xFF
        sst.write_bytes(bytes(raw))
    ns.start("s1")

    async def go() -> None:
        c = ns.client("s1")
        # Where the flipped bytes fall in the SST's layout (encryption changes it) decides
        # when RocksDB refuses a block: at open (the store moved aside, refilled by gossip)
        # or later (the scrubber rebuilds or repairs).
        if not list(db.parent.glob("db.corrupt-*")):
            res = await c.scrub()
            assert res.rebuilt or res.corrupt > 0, res
        await wait_for(lambda: _reads(c, b"k250", 300, b"value-250"), timeout=20)
        st = await c.state()
        assert st.scl[1] == 300 and st.damaged == {}, st
        res = await c.scrub()
        assert res.corrupt == 0 and not res.rebuilt and res.versions == 300, res
        c.close()

    run(go())


def test_replace_node_bootstraps_from_peers_past_their_gc(nodes, monkeypatch) -> None:  # noqa: ANN001
    from storage.membership import replace

    monkeypatch.setenv("BOREALIS_RETENTION_SECONDS", "0.5")
    ns = nodes(3)

    async def go() -> None:
        await _load(ns, ["s1", "s2", "s3"])
        await asyncio.sleep(1.2)  # the VDL 20 sample is older than the window
        more = [rec(21 + i, 1, 20 + i, b"k%d" % i, b"new-%d" % i) for i in range(5)]
        for name in ("s1", "s2", "s3"):
            c = ns.client(name)
            await c.append(1, 20, more)
            res = await c.gc()  # the background GC (every 1 s here) may have run already
            assert res.gc_floor[1] == 20, res
            assert [r.lsn for r in (await c.fetch_log(1, 19)).records] == [20, 21, 22, 23, 24, 25]
            with pytest.raises(NodeError) as e:
                await c.fetch_log(1, 0)
            assert e.value.code == "too_old"
            c.close()

        def start(name: str) -> None:
            ns.conf = ClusterConf.load(ns.data_dir)
            ns.start(name)

        entry = await replace(ns.data_dir, "s3", "s4", start=start, stop=lambda n: ns.kill(n, signal.SIGTERM), timeout=30)
        assert entry["az"] == "az3"
        conf = json.loads((ns.data_dir / "cluster.json").read_text())
        assert [s["name"] for s in conf["storage_nodes"]] == ["s1", "s2", "s4"]
        assert "storage_transition" not in conf
        ns.conf = ClusterConf.load(ns.data_dir)
        c = ns.client("s4")
        st = await c.state()
        assert st.scl[1] == 25 and st.gc_floor[1] == 20
        assert (await c.read(1, b"k3", 25)).value == b"new-3"
        assert (await c.read(1, b"k10", 25)).value == b"value-10"  # copied, not replayed
        with pytest.raises(NodeError) as e:
            await c.read(1, b"k10", 19)
        assert e.value.code == "too_old"
        c.close()

    run(go())
