"""Version pruning in the instance cache (engine.memstore.VersionedTables, the base of
server.volume.WriterVolume) respects pinned snapshots; and what a client sees of that: a
REPEATABLE READ transaction keeps reading its snapshot's versions on the real cluster."""

from __future__ import annotations

import uuid

import psycopg

from engine.memstore import VersionedTables


def _commit(vt: VersionedTables, lsn: int, writes: dict) -> None:
    """What WriterVolume does once a commit is durable: apply it, then advance the VDL."""
    vt.apply(lsn, writes)
    vt._vdl = lsn


def test_old_versions_pruned_unless_pinned():
    vt = VersionedTables()
    _commit(vt, 1, {(5, b"k"): ("v1",)})
    snap = vt.snapshot()
    vt.pin(99, snap)
    for i in range(2, 10):
        _commit(vt, i, {(5, b"k"): (f"v{i}",)})
    assert vt.get(5, b"k", snap) == ("v1",), "a pinned snapshot lost its version"
    assert len(vt.table(5).versions(b"k")) == 9  # all kept while the snapshot is pinned
    vt.release(99)
    for i in range(10, 13):
        _commit(vt, i, {(5, b"k"): (f"v{i}",)})
    versions = vt.table(5).versions(b"k")
    assert len(versions) <= 3, versions
    assert vt.get(5, b"k", vt.snapshot()) == ("v12",)


def test_deleted_keys_are_forgotten_once_no_snapshot_sees_them():
    vt = VersionedTables()
    _commit(vt, 1, {(5, b"k%d" % i): (i,) for i in range(100)})
    assert all(type(v) is tuple for v in vt.table(5).rows.values())  # one version: no list per row
    snap = vt.snapshot()
    vt.pin(99, snap)
    _commit(vt, 2, {(5, b"k%d" % i): None for i in range(100)})  # e.g. TRUNCATE
    _commit(vt, 3, {(6, b"x"): (1,)})
    assert len(vt.table(5).rows) == 100, "a pinned snapshot still needs the deleted rows"
    assert sorted(r for _, r in vt.scan(5, snap)) == [(i,) for i in range(100)]
    assert list(vt.scan(5, vt.snapshot())) == []
    vt.release(99)
    _commit(vt, 4, {(6, b"y"): (2,)})
    assert vt.table(5).rows == {} and not vt.table(5).dead
    _commit(vt, 5, {(5, b"k1"): ("again",)})
    assert vt.get(5, b"k1", vt.snapshot()) == ("again",) and vt.latest_lsn(5, b"k1") == 5


def test_snapshot_keeps_its_versions_while_others_update(cluster):
    t = "ver_" + uuid.uuid4().hex[:8]
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as a, \
            psycopg.connect(cluster.writer_dsn, autocommit=True) as b:
        a.execute(f"create table {t} (k int primary key, v text)")
        try:
            a.execute(f"insert into {t} values (1, 'v1')")
            b.execute("begin isolation level repeatable read")
            assert b.execute(f"select v from {t}").fetchall() == [("v1",)]
            for i in range(2, 10):
                a.execute(f"update {t} set v = 'v{i}' where k = 1")
            assert b.execute(f"select v from {t}").fetchall() == [("v1",)], "a pinned snapshot lost its version"
            b.execute("commit")
            for i in range(10, 13):
                a.execute(f"update {t} set v = 'v{i}' where k = 1")
            assert b.execute(f"select v from {t}").fetchall() == [("v12",)]
        finally:
            a.execute(f"drop table {t}")
