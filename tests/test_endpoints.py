"""The endpoint proxy relaying bytes (its mode across hosts) in front of real instances.

One cluster for the module, started with ``BOREALIS_HANDOFF=0`` so the proxy stays in the
data path of every connection instead of handing the socket to the instance: per-connection
round robin over the readers, fallback to the writer when no reader answers, a FATAL 57P03
when no backend answers, and a large COPY relayed byte for byte both ways.  Role changes
(cluster.json reloads) are covered with real failovers in tests/test_failover.py, and the
hand-off path by every other test.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Iterator

import psycopg
import pytest

from cluster import ClusterHandle, start_cluster


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    old = os.environ.get("BOREALIS_HANDOFF")
    os.environ["BOREALIS_HANDOFF"] = "0"  # every part inherits it
    try:
        handle = start_cluster(tmp_path_factory.mktemp("relay"), readers=2)
    finally:
        if old is None:
            os.environ.pop("BOREALIS_HANDOFF", None)
        else:
            os.environ["BOREALIS_HANDOFF"] = old
    handle.launcher.stop(["manager"])  # no failover while these tests stop instances
    yield handle
    handle.teardown()


def _port(c: ClusterHandle, kind: str) -> int:
    return next(e.port for e in c.launcher.conf.endpoints if e.kind == kind)


def _backend_of(c: ClusterHandle, kind: str) -> str:
    with psycopg.connect(host="127.0.0.1", port=_port(c, kind), user="postgres", dbname="postgres",
                         sslmode="disable", connect_timeout=10) as conn:
        return conn.execute("SHOW borealis.instance").fetchone()[0]


def _wait_down(c: ClusterHandle, name: str) -> None:
    inst = c.launcher.conf.instance(name)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", inst.port), timeout=0.2).close()
        except OSError:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} still accepts connections")


def test_large_copy_relayed_exactly(relay: ClusterHandle) -> None:
    rows = [f"{i}\t{os.urandom(2000).hex()}\n" for i in range(2000)]  # ~8 MB of COPY data
    payload = "".join(rows).encode()
    dsn = f"host=127.0.0.1 port={_port(relay, 'writer')} user=postgres dbname=postgres sslmode=disable"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE relay_blob (id int4 PRIMARY KEY, b text)")
        with conn.cursor().copy("COPY relay_blob FROM STDIN") as cp:
            for k in range(0, len(payload), 1 << 16):
                cp.write(payload[k:k + (1 << 16)])
        # The proxy counts this connection as relayed to the writer (not handed off).
        ep = next(e for e in relay.status()["endpoints"] if e["name"] == "writer")
        assert ep["connections"].get("i1", 0) >= 1
        got = bytearray()
        with conn.cursor().copy("COPY (SELECT id, b FROM relay_blob ORDER BY id) TO STDOUT") as cp:
            for chunk in cp:
                got.extend(chunk)
    assert bytes(got) == payload


def test_round_robin_over_readers_then_fallback_to_the_writer(relay: ClusterHandle) -> None:
    assert _backend_of(relay, "writer") == "i1"
    seen = [_backend_of(relay, "reader") for _ in range(4)]
    assert sorted(seen) == ["i2", "i2", "i3", "i3"] and seen[0] != seen[1]
    relay.launcher.stop(["i2"])
    _wait_down(relay, "i2")
    assert {_backend_of(relay, "reader") for _ in range(3)} == {"i3"}
    relay.launcher.stop(["i3"])
    _wait_down(relay, "i3")
    assert _backend_of(relay, "reader") == "i1"  # no reader: the writer takes it
    relay.start(["i2", "i3"])
    deadline = time.monotonic() + 20
    while {_backend_of(relay, "reader") for _ in range(4)} != {"i2", "i3"}:
        assert time.monotonic() < deadline, "the readers did not rejoin the reader endpoint"
        time.sleep(0.2)


def test_no_backend_gets_fatal_57p03(relay: ClusterHandle) -> None:
    relay.launcher.stop(["i1"])
    _wait_down(relay, "i1")
    try:
        with socket.create_connection(("127.0.0.1", _port(relay, "writer")), timeout=10) as s:
            s.sendall(struct.pack(">ii", 8, 80877103))  # SSLRequest
            assert s.recv(1) == b"N"
            s.sendall(struct.pack(">ii", 9, 196608) + b"\0")  # StartupMessage
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        assert data[:1] == b"E"
        fields = dict((f[:1], f[1:]) for f in data[5:].split(b"\0") if f)
        assert fields[b"S"] == b"FATAL" and fields[b"C"] == b"57P03"
        assert b"writer" in fields[b"M"]
    finally:
        relay.start(["i1"])
    assert _backend_of(relay, "writer") == "i1"
