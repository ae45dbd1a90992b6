"""A writer that starts while a storage node is being replaced (issue 5).

During ``borealis storage replace`` cluster.json lists seven nodes: the old six and the new
six share five.  The writer's recovery then needs every quorum in both sets, as commits
do: with s2, s3 and the new s7 down, four of the old six answer (a write quorum of the old
set, and four of the seven) but only three of the new six -- the writer must keep
recovering, not serve.  Once s7 is back it recovers, every acknowledged row is there,
and commits go on.
"""

from __future__ import annotations

import threading
import time

import psycopg

from server.launcher import accepts
from storage import membership


def _rows(dsn: str) -> set[int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return {r[0] for r in conn.execute("SELECT id FROM t").fetchall()}


def _insert(dsn: str, ids: range) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in ids:
            conn.execute("INSERT INTO t VALUES (%s, %s)", (i, f"v{i}"))


def test_writer_recovers_with_double_quorums_during_a_storage_replacement(make_cluster):
    c = make_cluster(readers=0)
    c.launcher.stop(["manager"])  # this test restarts the writer itself
    w = c.instance_dsn("i1")
    with psycopg.connect(w, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id integer PRIMARY KEY, v text)")
    _insert(w, range(0, 50))

    # Replacement of s1 by s7 begun, not finished: seven nodes, transition marker.
    membership.begin_replace(c.data_dir, "s1", "s7")
    c.start(["s7"])
    _insert(w, range(50, 100))  # double-quorum commits
    deadline = time.monotonic() + 30
    while True:  # s7 caught up (gossip), so both sets hold every acknowledged row
        st = {n["name"]: n for n in c.status()["storage_nodes"]}
        vdl = c.status()["volume"]["vdl"] or 0
        if st["s7"]["state"] == "up" and int(st["s7"]["scl"].get("0", 0)) >= vdl:
            break
        assert time.monotonic() < deadline, f"s7 did not catch up: {st['s7']}"
        time.sleep(0.3)

    c.kill("i1")
    for n in ("s2", "s3", "s7"):
        c.kill(n)
    conf = c.launcher.conf
    assert len(conf.storage_nodes) == 7 and conf.storage_transition == {"old": "s1", "new": "s7"}

    errors: list[BaseException] = []

    def start_writer() -> None:
        try:
            c.start(["i1"], timeout=90)
        except BaseException as e:  # noqa: BLE001 -- reported by the test thread
            errors.append(e)

    t = threading.Thread(target=start_writer)
    t.start()
    port = conf.instance("i1").port
    # Old set {s1,s4,s5,s6}: 4/6.  New set {s4,s5,s6}: 3/6 -> no write quorum there.
    time.sleep(5.0)
    assert not accepts(conf.host, port), "the writer recovered without a write quorum of the new set"
    log = c.launcher.log_path("i1").read_text()
    assert "recovery_waiting_for_quorum" in log

    c.start(["s7"])  # new set {s4,s5,s6,s7}: 4/6 -> recovery completes
    t.join(90)
    assert not t.is_alive() and not errors, errors
    assert _rows(w) == set(range(100))
    _insert(w, range(100, 120))  # commits go on under double quorums (old: s1,s4,s5,s6; new: s4..s7)
    c.start(["s2", "s3"])
    assert _rows(w) == set(range(120))
