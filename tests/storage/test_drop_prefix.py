"""DELETE_PREFIX records (range tombstones, DROP TABLE) on one storage node, in process:
materialised into a pending tombstone, applied by GC only once the record is at or below
the GC point (outside the retention window), never touching other prefixes; undone by a
truncation of the record."""

from __future__ import annotations

from pathlib import Path

from test_node import rec, run  # tests/storage is on sys.path (rootdir prepend)

from storage import protocol as P
from storage.records import DELETE_PREFIX
from storage.store import Store, prefix_version_range, version_key

T1, T2 = b"\x00\x00\x40\x00", b"\x00\x00\x40\x01"  # two table ids, one a byte above the other


def _scan(node, prefix: bytes, at: int) -> list:  # noqa: ANN001
    return node.scan(P.Scan(req=0, pg=0, prefix=prefix, at_lsn=at, deletes=True)).items


def test_prefix_version_range_covers_exactly_the_prefix() -> None:
    for prefix in (T1, b"\x00", b"\x00\x00\x01\x00", b"\xff\x00", b"ab"):
        lo, hi = prefix_version_range(3, prefix)
        inside = [prefix, prefix + b"\x00", prefix + b"\x00\x00\x05", prefix + b"\xff\xff"]
        outside = [prefix[:-1], prefix[:-1] + bytes([(prefix[-1] + 1) % 256]), prefix[:-1] + b"\x00\x00"]
        for k in inside:
            for lsn in (1, 2**40):
                assert lo <= version_key(3, k, lsn) < hi, (prefix, k)
        for k in outside:
            if not k.startswith(prefix):
                assert not lo <= version_key(3, k, 7) < hi, (prefix, k)
        assert not lo <= version_key(2, prefix, 1) < hi and not lo <= version_key(4, prefix, 1) < hi


def test_gc_applies_a_range_tombstone_only_outside_the_retention_window(tmp_path: Path) -> None:
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

        rows = [rec(i + 1, 0, i, T1 + b"%03d" % i, b"v%d" % i) for i in range(50)]
        rows += [rec(51, 0, 50, T2 + b"keep", b"kept"), rec(52, 0, 51, T1[:3], b"shorter key")]
        await append(rows, 52)
        now[0] = 1050
        await append([rec(53, 0, 52, T1, kind=DELETE_PREFIX)], 53)  # the drop
        assert store.range_tombstones(0, 53) == [(53, T1)]
        # Reads do not apply it: the rows stay readable at and after the drop (a point a
        # catalog before the drop could name -- PITR, a transaction that began before).
        assert len(_scan(node, T1, 52)) == 50 and len(_scan(node, T1, 53)) == 50

        now[0] = 1120  # window from 1020: VDL 52 -- the tombstone is above the GC point
        await append([rec(54, 0, 53, T2 + b"later", b"later")], 54)
        res = await collect(node)
        assert res.gc_floor == {0: 52} and res.prefixes_dropped == 0
        assert len(_scan(node, T1, 52)) == 50
        assert store.range_tombstones(0, 99) == [(53, T1)]

        now[0] = 1200  # window from 1100: VDL 53 -- now the drop is at the GC point
        res = await collect(node)
        assert res.gc_floor == {0: 53} and res.prefixes_dropped == 1
        assert _scan(node, T1, 54) == []
        lo, hi = prefix_version_range(0, T1)
        assert list(store.iter_raw(lo, hi)) == []  # every version, not just the newest
        assert store.range_tombstones(0, 99) == []
        # neighbours untouched: another table, a key that is a byte shorter than the prefix
        assert [k for k, _, _ in _scan(node, T2, 54)] == [T2 + b"keep", T2 + b"later"]
        assert node.read(P.Read(req=0, pg=0, key=T1[:3], at_lsn=54)).value == b"shorter key"
        res = await collect(node)  # nothing left to do
        assert res.prefixes_dropped == 0
        store.close()

    run(go())


def test_a_truncated_drop_is_forgotten(tmp_path: Path) -> None:
    from storage.node import StorageNode

    async def go() -> None:
        store = Store(tmp_path / "db")
        node = StorageNode("t", "az1", 1, store, retention_seconds=0.01)
        await node.append(P.Append(req=0, epoch=1, vdl=2, records=[
            rec(1, 0, 0, T1 + b"a", b"a"), rec(2, 0, 1, T1 + b"b", b"b"), rec(3, 0, 2, T1, kind=DELETE_PREFIX)]))
        node.materialize(0, 3)  # (a read at 3 would do this too)
        assert store.range_tombstones(0, 3) == [(3, T1)]
        await node.truncate(P.Truncate(req=0, epoch=2, after_lsn=2, upto_lsn=100))
        assert store.range_tombstones(0, 100) == []
        assert len(_scan(node, T1, 2)) == 2
        store.close()

    run(go())
