"""Storage nodes as real processes (``python -m storage.node``), driven with NodeClient.

Also unit tests of the pure segment state machine (``storage.segment``).
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.config import ClusterConf, StorageNodeConf
from server.launcher import new_encryption
from server.tls import ensure_certificates
from storage.client import NodeClient, NodeError
from storage.mtls import InternalTls
from storage.records import COMMIT, DELETE, PUT, LogRecord, encode_commit_value
from storage.segment import Segment, Verdict

ROOT = Path(__file__).resolve().parents[2]
N_PGS = 2


def rec(lsn: int, pg: int, prev: int, key: bytes = b"k", value: bytes = b"", kind: int = PUT, epoch: int = 1) -> LogRecord:
    return LogRecord(lsn=lsn, pg=pg, prev_lsn=prev, txid=1, kind=kind, key=key, value=value, epoch=epoch).sealed()


# --- the pure segment ----------------------------------------------------------------


def test_segment_scl_follows_chain_across_holes_and_duplicates() -> None:
    seg = Segment(2)
    r1, r2, r3, r4 = rec(1, 0, 0), rec(3, 0, 1), rec(4, 0, 3), rec(9, 0, 4)
    for r in (r1, r3, r4):
        assert seg.admit(r) is Verdict.NEW
        seg.add(r)
    assert seg.pgs[0].scl == 1 and seg.pgs[0].max_lsn == 9
    assert seg.admit(r3) is Verdict.DUPLICATE  # pending duplicate
    seg.add(r2)
    assert seg.pgs[0].scl == 9 and seg.pgs[0].pending == {}
    assert seg.admit(r1) is Verdict.DUPLICATE
    assert seg.pgs[1].scl == 0
    bad = LogRecord(10, 0, 9, 1, PUT, b"k", b"v", 1, crc=123)
    assert seg.admit(bad) is Verdict.BAD_CRC
    assert seg.admit(rec(5, 7, 0)) is Verdict.BAD_PG


def test_segment_truncation_refuses_old_epoch_records_in_range() -> None:
    seg = Segment(1, epoch=1)
    for r in (rec(1, 0, 0), rec(5, 0, 1), rec(8, 0, 5)):
        seg.add(r)
    assert seg.add_truncation((2, 4, 100))
    assert not seg.add_truncation((2, 4, 100))
    seg.rebuild_pg(0, 1, [])
    assert seg.pgs[0].scl == 1
    assert seg.admit(rec(5, 0, 1, epoch=1)) is Verdict.TRUNCATED
    assert seg.admit(rec(5, 0, 1, epoch=2)) is Verdict.NEW
    assert seg.admit(rec(101, 0, 1, epoch=1)) is Verdict.NEW


# --- real node processes ---------------------------------------------------------------


def free_ports(n: int) -> list[int]:
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Nodes:
    """Storage node processes sharing one cluster.json in a tmp dir."""

    def __init__(self, data_dir: Path, n: int) -> None:
        self.data_dir = data_dir
        ports = free_ports(n)
        kek_file = data_dir / "test.kek"  # a test's own key-encryption key (never the user's default)
        kek_file.write_text(os.urandom(32).hex())
        self.conf = ClusterConf(
            protection_groups=N_PGS,
            storage_nodes=[StorageNodeConf(f"s{i + 1}", f"az{i % 3 + 1}", ports[i]) for i in range(n)],
            encryption=new_encryption(kek_file),
        )
        self.conf.save(data_dir)
        ensure_certificates(data_dir)  # nodes accept only mutual TLS with the cluster CA
        self.tls = InternalTls.load(data_dir)
        (data_dir / "logs").mkdir(exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str) -> None:
        log = open(self.data_dir / "logs" / f"{name}.log", "ab")
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "storage.node", "--data-dir", str(self.data_dir), "--name", name],
            stdout=subprocess.PIPE, stderr=log, cwd=ROOT, env=env,
        )
        log.close()
        port = self.conf.storage_node(name).port
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.procs[name].poll() is None, self.log(name)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"{name} did not start:\n{self.log(name)}")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        p = self.procs.pop(name)
        p.send_signal(sig)
        p.wait(10)

    def log(self, name: str) -> str:
        return (self.data_dir / "logs" / f"{name}.log").read_text(errors="replace")

    def client(self, name: str) -> NodeClient:
        s = self.conf.storage_node(name)
        return NodeClient(s.name, "127.0.0.1", s.port, s.az, tls=self.tls)

    def stop_all(self) -> None:
        """SIGTERM every node; all must exit 0, log node_stopped and print nothing to
        stdout.  Any survivor is killed before the assertion is raised."""
        problems = []
        for name in list(self.procs):
            p = self.procs.pop(name)
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    if p.wait(5) != 0:
                        problems.append(f"{name} exited {p.returncode} on SIGTERM")
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
                    problems.append(f"{name} ignored SIGTERM")
                if "node_stopped" not in self.log(name):
                    problems.append(f"{name} did not log node_stopped")
            assert p.stdout is not None
            if p.stdout.read():
                problems.append(f"{name} wrote to stdout")
            p.stdout.close()
        assert not problems, problems


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[Nodes]:
    made: list[Nodes] = []

    def make(n: int) -> Nodes:
        ns = Nodes(tmp_path, n)
        made.append(ns)
        for s in ns.conf.storage_nodes:
            ns.start(s.name)
        return ns

    yield make  # type: ignore[misc]
    for ns in made:
        ns.stop_all()
        for s in ns.conf.storage_nodes:
            assert "Traceback" not in ns.log(s.name), ns.log(s.name)


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


async def wait_for(pred, timeout: float = 10.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while True:
        if await pred():
            return
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.1)


def test_append_ack_scl_holes_and_stale_epoch(nodes) -> None:  # noqa: ANN001
    ns = nodes(1)

    async def go() -> None:
        c = ns.client("s1")
        ack = await c.append(1, 0, [rec(1, 0, 0), rec(2, 1, 0), rec(3, 0, 1)])
        assert ack.scl == {0: 3, 1: 2}
        # Out of order: 7 (prev 5) arrives before 5 (prev 3): SCL stops at the hole.
        ack = await c.append(1, 0, [rec(7, 0, 5)])
        assert ack.scl[0] == 3
        st = await c.state()
        assert st.scl == {0: 3, 1: 2} and st.max_lsn == {0: 7, 1: 2} and st.epoch == 1
        ack = await c.append(1, 0, [rec(5, 0, 3), rec(5, 0, 3)])  # duplicate too
        assert ack.scl[0] == 7
        # Bad crc refuses the whole append.
        with pytest.raises(NodeError) as e:
            await c.append(1, 0, [LogRecord(8, 0, 7, 1, PUT, b"k", b"v", 1, crc=1)])
        assert e.value.code == "bad_record"
        # Higher epoch adopted; then older epochs are refused.
        await c.append(2, 0, [rec(8, 0, 7, epoch=2)])
        with pytest.raises(NodeError) as e:
            await c.append(1, 0, [rec(9, 0, 8, epoch=1)])
        assert e.value.code == "stale_epoch"
        with pytest.raises(NodeError) as e:
            await c.set_epoch(1)
        assert e.value.code == "stale_epoch"
        await c.set_epoch(3)
        assert (await c.state()).epoch == 3
        with pytest.raises(NodeError) as e:
            await c.append(3, 0, [rec(9, 0, 8, epoch=2)])
        assert e.value.code == "stale_epoch"
        fetched = await c.fetch_log(0, 3)
        assert [r.lsn for r in fetched.records] == [5, 7, 8]
        assert [r.lsn for r in (await c.fetch_log(0, 0, limit=2)).records] == [1, 3]
        c.close()

    run(go())


def test_read_scan_versions(nodes) -> None:  # noqa: ANN001
    ns = nodes(1)

    async def go() -> None:
        c = ns.client("s1")
        rs = [
            rec(1, 1, 0, b"a", b"a1"),
            rec(2, 1, 1, b"ab", b"ab2"),
            rec(3, 1, 2, b"b", b"b3"),
            rec(4, 0, 0, b"", encode_commit_value({1: 3}), kind=COMMIT),
            rec(5, 1, 3, b"a", b"a5"),
            rec(6, 1, 5, b"ab", kind=DELETE),
            rec(7, 1, 6, b"a\x00", b"az7"),
            rec(9, 1, 8, b"c", b"c9"),  # hole at 8
        ]
        await c.append(1, 0, rs)
        assert (await c.read(1, b"a", 4)).value == b"a1"
        r = await c.read(1, b"a", 5)
        assert (r.found, r.lsn, r.value) == (True, 5, b"a5")
        assert not (await c.read(1, b"ab", 6)).found
        assert (await c.read(1, b"ab", 5)).value == b"ab2"
        assert not (await c.read(1, b"zz", 7)).found
        s = await c.scan(1, b"a", 4)
        assert s.items == [(b"a", 1, b"a1"), (b"ab", 2, b"ab2")] and s.done
        s = await c.scan(1, b"a", 7)
        assert s.items == [(b"a", 5, b"a5"), (b"a\x00", 7, b"az7")]
        s = await c.scan(1, b"", 7, limit=2)
        assert s.items == [(b"a", 5, b"a5"), (b"a\x00", 7, b"az7")] and not s.done
        s = await c.scan(1, b"", 7, after=b"a\x00", limit=2)
        assert s.items == [(b"b", 3, b"b3")] and s.done
        for call in (c.read(1, b"c", 9), c.scan(1, b"", 8), c.read(0, b"x", 5)):
            with pytest.raises(NodeError) as e:
                await call
            assert e.value.code == "not_complete"
        # The background materialiser follows the VDL hint of Appends.
        await c.append(1, 7, [rec(8, 1, 7, b"c", b"c8")])
        await wait_for(lambda: _materialized_at_least(c, 7))
        assert (await c.read(1, b"c", 9)).value == b"c9"
        c.close()

    run(go())


async def _materialized_at_least(c: NodeClient, lsn: int) -> bool:
    return (await c.state()).materialized >= lsn


def test_bad_frame_closes_only_that_connection(nodes) -> None:  # noqa: ANN001
    ns = nodes(1)
    port = ns.conf.storage_node("s1").port
    ctx = ns.tls.client_for("127.0.0.1", port)
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="127.0.0.1") as s:
        s.sendall(b"\x00\x00\x00\x03\xc1\xc1\xc1")
        s.settimeout(5)
        assert s.recv(100) == b""  # closed by the node

    async def go() -> None:
        c = ns.client("s1")
        assert (await c.state()).name == "s1"
        c.close()

    run(go())


def test_durable_after_kill_9(nodes) -> None:  # noqa: ANN001
    ns = nodes(1)

    async def append() -> None:
        c = ns.client("s1")
        prev = 0
        for lsn in range(1, 201):
            await c.append(1, lsn - 1, [rec(lsn, 1, prev, b"k%d" % lsn, b"v%d" % lsn)])
            prev = lsn
        # No read was issued: the background materialiser follows the Appends' VDL.
        await wait_for(lambda: _materialized_at_least(c, 199))
        assert (await c.state()).materialized == 199
        c.close()

    run(append())
    ns.kill("s1")
    ns.start("s1")

    async def check() -> None:
        c = ns.client("s1")
        st = await c.state()
        assert st.scl[1] == 200 and st.vdl_hint >= 1
        assert (await c.read(1, b"k200", 200)).value == b"v200"
        c.close()

    run(check())


def test_truncate_and_gossip_catch_up(nodes) -> None:  # noqa: ANN001
    ns = nodes(3)

    async def go() -> None:
        c1, c2, c3 = (ns.client(n) for n in ("s1", "s2", "s3"))
        base = [rec(1, 0, 0), rec(2, 1, 0), rec(3, 0, 1)]
        for c in (c1, c2, c3):
            await c.append(1, 3, base)
        # s1 and s2 get records above the VDL (3) that s3 never sees.
        tail = [rec(4, 0, 3, b"x", b"old"), rec(5, 1, 2, b"y", b"old")]
        await c1.append(1, 3, tail)
        await c2.append(1, 3, tail)
        # Gossip fills s3 in from its peers.
        await wait_for(lambda: _scl_is(c3, {0: 4, 1: 5}))
        # Recovery (epoch 2) truncates (3, 100] on s1 only; the others learn it by gossip.
        await c1.truncate(2, 3, 100)
        st = await c1.state()
        assert st.scl == {0: 3, 1: 2} and st.truncations == [(2, 3, 100)] and st.epoch == 2
        assert [r.lsn for r in (await c1.fetch_log(0, 0)).records] == [1, 3]
        await wait_for(lambda: _scl_is(c2, {0: 3, 1: 2}))
        await wait_for(lambda: _scl_is(c3, {0: 3, 1: 2}))
        await asyncio.sleep(1.0)  # several gossip rounds: nothing comes back
        for c in (c1, c2, c3):
            st = await c.state()
            assert st.scl == {0: 3, 1: 2} and st.max_lsn == {0: 3, 1: 2} and st.epoch == 2, st
        with pytest.raises(NodeError) as e:
            await c1.read(0, b"x", 4)
        assert e.value.code == "not_complete"
        # The new writer's records above the range are accepted.
        for c in (c1, c2):
            ack = await c.append(2, 3, [rec(101, 0, 3, b"x", b"new", epoch=2)])
            assert ack.scl[0] == 101
        for c in (c1, c2, c3):
            c.close()

    run(go())
    # s3 down, more writes happen, s3 comes back and catches up.
    ns.kill("s3")

    async def write_more() -> None:
        c1, c2 = ns.client("s1"), ns.client("s2")
        prev = 101
        for lsn in range(102, 132):
            for c in (c1, c2):
                await c.append(2, lsn - 1, [rec(lsn, 0, prev, b"k", b"v%d" % lsn, epoch=2)])
            prev = lsn
        c1.close()
        c2.close()

    run(write_more())
    ns.start("s3")

    async def check() -> None:
        c3 = ns.client("s3")
        await wait_for(lambda: _scl_is(c3, {0: 131, 1: 2}))
        assert (await c3.read(0, b"k", 131)).value == b"v131"
        assert (await c3.read(0, b"x", 131)).value == b"new"
        c3.close()

    run(check())


async def _scl_is(c: NodeClient, scl: dict[int, int]) -> bool:
    return (await c.state()).scl == scl


def test_truncate_drops_pending_records_in_process(tmp_path: Path) -> None:
    """In-process StorageNode: records above a hole inside the range are removed, the new
    writer's record links to the last complete record and the SCL moves past the range."""
    from storage import protocol as P
    from storage.node import StorageNode
    from storage.store import Store

    async def go() -> None:
        store = Store(tmp_path / "db")
        node = StorageNode("t", "az1", 1, store)
        await node.append(P.Append(req=1, epoch=1, vdl=0, records=[rec(1, 0, 0), rec(2, 0, 1), rec(6, 0, 4)]))
        assert node.seg.pgs[0].scl == 2 and node.seg.pgs[0].max_lsn == 6
        await node.truncate(P.Truncate(req=2, epoch=2, after_lsn=2, upto_lsn=50))
        assert node.state().max_lsn == {0: 2} and node.state().epoch == 2
        ack = await node.append(P.Append(req=3, epoch=2, vdl=2, records=[rec(51, 0, 2, b"n", b"v", epoch=2)]))
        assert ack.scl == {0: 51}
        # The old record is refused even when a peer offers it again.
        assert await node.apply_fetched([rec(6, 0, 4)]) == 0
        store.close()
        # Restart: the same state comes back from the log and metadata.
        store = Store(tmp_path / "db")
        node = StorageNode("t", "az1", 1, store)
        st = node.state()
        assert st.scl == {0: 51} and st.epoch == 2 and st.truncations == [(2, 2, 50)]
        assert node.read(P.Read(req=4, pg=0, key=b"n", at_lsn=51)).value == b"v"
        store.close()

    run(go())


def test_node_without_internal_certificate_refuses_to_start(tmp_path: Path) -> None:
    """Fail closed: a node whose data dir lacks the internal certificate exits with a clear
    message instead of listening in plain TCP."""
    ns = Nodes(tmp_path, 1)
    (tmp_path / "tls" / "internal.key").unlink()
    port = ns.conf.storage_node("s1").port
    r = subprocess.run([sys.executable, "-m", "storage.node", "--data-dir", str(tmp_path), "--name", "s1"],
                       capture_output=True, text=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                       timeout=60)
    assert r.returncode != 0
    assert "internal.key" in r.stderr and "MissingCertificates" in r.stderr
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
