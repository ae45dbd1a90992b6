"""The volume grows by protection groups (issue 5, ``server.placement``).

With a tiny ``pg_size_limit`` in cluster.json a cluster that starts with 2 PGs adds PGs
under inserts; new rows of a table go to its newest PG, while updates and deletes of rows
that live in older PGs must still win over them.  Every row stays readable through the
writer and the reader -- warm caches, a reader loading the table cold after the growth,
instances restarted cold -- across a writer kill -9 + recovery and a storage node
restart (the node learns the PGs added while it was down).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from cluster import ClusterHandle
from server.launcher import Cluster

LIMIT = 12_000  # bytes of log per PG
PAD = "x" * 120


@pytest.fixture
def grown(tmp_path: Path) -> Iterator[ClusterHandle]:
    launcher = Cluster(tmp_path / "data")
    launcher.create(port=None, readers=1, pgs=2)
    conf = launcher.conf
    conf.pg_size_limit = LIMIT
    conf.save(launcher.data_dir)
    handle = ClusterHandle(data_dir=launcher.data_dir, launcher=launcher)
    try:
        handle.start(None, 60)
        yield handle
    finally:
        handle.teardown()


def _insert(dsn: str, ids: range, expected: dict[int, str]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for start in range(ids.start, ids.stop, 10):
            batch = [i for i in range(start, min(start + 10, ids.stop))]
            conn.execute("INSERT INTO g (id, v) VALUES " + ", ".join(f"({i}, 'row{i}{PAD}')" for i in batch))
            expected.update({i: f"row{i}{PAD}" for i in batch})


def _rows(dsn: str) -> dict[int, str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return dict(conn.execute("SELECT id, v FROM g").fetchall())


def _eventually_rows(dsn: str, expected: dict[int, str], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = _rows(dsn)
        except psycopg.OperationalError:
            got = None
        if got == expected:
            return
        if time.monotonic() > deadline:
            missing = sorted(set(expected) - set(got or {}))[:10]
            extra = sorted(set(got or {}) - set(expected))[:10]
            wrong = sorted(k for k in expected if got and k in got and got[k] != expected[k])[:10]
            raise AssertionError(f"{dsn}: missing {missing} extra {extra} wrong {wrong}")
        time.sleep(0.3)


def _pgs(c: ClusterHandle) -> list[dict]:
    return c.status()["volume"]["protection_groups"]


def _converged(c: ClusterHandle, timeout: float = 30.0) -> list[dict]:
    """Every PG complete on all six segments up to the same point (gossip done)."""
    deadline = time.monotonic() + timeout
    while True:
        pgs = _pgs(c)
        if all(len(set(p["scl"].values())) == 1 and None not in p["scl"].values() for p in pgs):
            return pgs
        assert time.monotonic() < deadline, f"segments did not converge: {pgs}"
        time.sleep(0.3)


def test_volume_grows_by_pgs_and_every_row_stays_readable(grown: ClusterHandle) -> None:
    c = grown
    w, r = c.writer_dsn, c.reader_dsn  # endpoints: the manager may fail the writer over
    expected: dict[int, str] = {}
    with psycopg.connect(w, autocommit=True) as conn:
        conn.execute("CREATE TABLE g (id integer PRIMARY KEY, v text)")
    _insert(w, range(0, 60), expected)
    _insert(w, range(60, 400), expected)

    # Rows written before the growth live in the first PGs; change some of them now that
    # the table's new rows go to an added PG: the newer PG must win when reading.
    with psycopg.connect(w, autocommit=True) as conn:
        conn.execute("UPDATE g SET v = 'updated' WHERE id IN (1, 2, 3)")
        conn.execute("DELETE FROM g WHERE id IN (4, 5, 6)")
        conn.execute("UPDATE g SET v = 'gone' WHERE id = 7")
        conn.execute("DELETE FROM g WHERE id = 7")
    for i in (1, 2, 3):
        expected[i] = "updated"
    for i in (4, 5, 6, 7):
        expected.pop(i)

    pgs = _converged(c)
    assert len(pgs) > 3, f"the volume did not grow under {LIMIT}-byte PGs: {pgs}"
    assert all(p["pgcl"] is not None and p["pgcl"] > 0 for p in pgs[2:]), pgs
    assert any(p["bytes"] > LIMIT for p in pgs[:2]), pgs
    # every PG but the newest ones stays near the limit (new data moved on)
    assert sum(p["bytes"] for p in pgs) > 3 * LIMIT, pgs

    _eventually_rows(w, expected)  # writer, warm cache
    _eventually_rows(r, expected)  # reader: loads g for the first time, after the growth (map from redo)

    # Writer kill -9: the new writer recovers over every PG and loads g cold from storage.
    c.kill(c.launcher.conf.writer().name)
    c.start()
    _eventually_rows(w, expected, timeout=40)
    before = len(pgs)
    _insert(w, range(400, 600), expected)  # the recovered writer knows the map: new rows go on
    _eventually_rows(w, expected)
    assert len(_pgs(c)) > before, "the recovered writer did not keep growing the volume"

    # A storage node restarts while the volume grows: it learns the new PGs and catches up.
    c.kill("s3")
    _insert(w, range(600, 800), expected)
    c.start(["s3"])
    pgs = _converged(c, timeout=40)
    assert all(p["scl"]["s3"] is not None for p in pgs)

    # A reader restarted cold reads the map from storage; the writer too, once more.
    c.kill(c.launcher.conf.readers()[0].name)
    c.start()
    _eventually_rows(r, expected, timeout=40)
    c.kill(c.launcher.conf.writer().name)
    c.start()
    _eventually_rows(w, expected, timeout=40)
    with psycopg.connect(w, autocommit=True) as conn:
        assert conn.execute("SELECT count(*), sum(id) FROM g").fetchone() == (len(expected), sum(expected))
