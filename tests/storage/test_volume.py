"""WriterVolume / ReaderVolume against six real storage node processes (no engine).

Rows here are plain tuples encoded with msgspec; the engine's codec is tested elsewhere.
"""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from server.launcher import Cluster
from server.volume import WriterVolume

STORAGE = [f"s{i}" for i in range(1, 7)]


class TupleCodec:
    _enc = msgspec.msgpack.Encoder()
    _dec = msgspec.msgpack.Decoder()

    def encode_row(self, row):
        return self._enc.encode(list(row))

    def decode_row(self, data):
        return tuple(self._dec.decode(data))


@pytest.fixture
def nodes(tmp_path):
    c = Cluster(tmp_path / "vol")
    c.create(port=None, readers=0, pgs=2)
    c.start(STORAGE, timeout=30)
    yield c
    c.stop_all()


async def _writer(c: Cluster) -> WriterVolume:
    v = WriterVolume(c.conf, TupleCodec(), commit_timeout=5, data_dir=str(c.data_dir))
    await v.start()
    return v


def test_commit_is_readable_after_writer_restart(nodes):
    async def phase1():
        v = await _writer(nodes)
        t = v.new_txid()
        lsn = await v.commit(t, {(1, b"a"): (1, "one"), (2, b"b"): (2, "two"), (1, b"c"): (3, "three")})
        assert v.snapshot() >= lsn
        t = v.new_txid()
        await v.commit(t, {(1, b"c"): None})
        return v.epoch

    async def phase2(old_epoch):
        v = await _writer(nodes)  # a new writer: fences, recovers
        assert v.epoch == old_epoch + 1
        await v.ensure_loaded([1, 2])
        s = v.snapshot()
        assert dict(v.scan(1, s)) == {b"a": (1, "one")}
        assert dict(v.scan(2, s)) == {b"b": (2, "two")}
        # and it can write again, chained after the recovered tails
        await v.commit(v.new_txid(), {(2, b"d"): (4, "four")})

    async def phase3():
        v = await _writer(nodes)
        await v.ensure_loaded([2])
        assert dict(v.scan(2, v.snapshot())) == {b"b": (2, "two"), b"d": (4, "four")}

    epoch = asyncio.run(phase1())
    asyncio.run(phase2(epoch))
    asyncio.run(phase3())


def test_commits_survive_two_nodes_down_and_wait_with_three(nodes):
    async def main():
        v = await _writer(nodes)
        nodes.kill("s1")
        nodes.kill("s3")
        await asyncio.wait_for(v.commit(v.new_txid(), {(1, b"k"): (1,)}), 5)
        nodes.kill("s5")
        from engine.errors import StorageUnavailable

        with pytest.raises(StorageUnavailable):
            await v.commit(v.new_txid(), {(1, b"k2"): (2,)})

    asyncio.run(main())


def test_large_commit_travels_as_puts_records_and_survives_restart(nodes):
    """A commit above the large-commit threshold (PUTS records, windowed Appends): every row
    reaches storage under one commit LSN, deletes included, while a small commit of another
    session interleaves and one storage node is down; a new writer reads all of it back."""
    from server import volume as vol
    from storage.records import PUTS

    n = vol._LARGE_COMMIT + 5_000

    async def phase1():
        v = await _writer(nodes)
        await v.commit(v.new_txid(), {(1, b"gone%06d" % i): (i,) for i in range(300)})
        nodes.kill("s2")
        sent: list = []
        publish_to = type("P", (), {"publish": lambda self, recs: sent.extend(recs),
                                    "vdl_advanced": lambda self, vdl: None})()
        v.publisher = publish_to
        writes = {(1, b"k%07d" % i): (i, "x" * 20) for i in range(n)}
        writes.update({(1, b"gone%06d" % i): None for i in range(300)})
        writes.update({(2, b"other%03d" % i): (i,) for i in range(50)})
        big = asyncio.ensure_future(v.commit(v.new_txid(), writes))
        small = await v.commit(v.new_txid(), {(2, b"small"): (1,)})
        lsn = await big
        assert v.snapshot() >= max(lsn, small)
        kinds = [r.kind for r in sent if r.txid != 0]
        assert kinds.count(PUTS) >= n // vol._PUTS_ROWS  # rows batched, not one record each
        assert len(sent) < n // 100
        s = v.snapshot()
        assert sum(1 for _ in v.scan(1, s)) == n
        return lsn

    async def phase2(lsn):
        v = await _writer(nodes)
        await v.ensure_loaded([1, 2])
        s = v.snapshot()
        assert s >= lsn
        rows = dict(v.scan(1, s))
        assert len(rows) == n and rows[b"k%07d" % (n - 1)] == (n - 1, "x" * 20)
        assert not any(k.startswith(b"gone") for k in rows)
        other = dict(v.scan(2, s))
        assert len(other) == 51 and other[b"small"] == (1,)

    lsn = asyncio.run(phase1())
    nodes.start(["s2"], timeout=30)
    asyncio.run(phase2(lsn))


def test_a_commit_failing_before_it_is_sent_does_not_stall_later_commits(nodes):
    """A commit whose row cannot be encoded, and one whose cache apply fails part way (an
    index hook raising), must leave no LSN allocated: the next commit becomes durable (a
    tracked but never sent LSN would hold the VCL back forever) and the failed writes are
    nowhere, neither in the cache nor on storage."""

    async def main():
        v = await _writer(nodes)
        await v.commit(v.new_txid(), {(1, b"a"): (1,)})
        with pytest.raises(TypeError):
            await v.commit(v.new_txid(), {(1, b"b"): (2,), (1, b"c"): (object(),)})

        def hook(key, row):
            if key == b"y":
                raise RuntimeError("index hook failed")

        v.table(1).on_add = hook
        with pytest.raises(RuntimeError):
            await v.commit(v.new_txid(), {(1, b"x"): (3,), (1, b"y"): (4,)})
        v.table(1).on_add = None
        lsn = await asyncio.wait_for(v.commit(v.new_txid(), {(1, b"d"): (5,), (2, b"e"): (6,)}), 10)
        assert v.snapshot() >= lsn
        assert dict(v.scan(1, v.snapshot())) == {b"a": (1,), b"d": (5,)}
        await asyncio.wait_for(v.commit(v.new_txid(), {(1, b"a"): None}), 10)

    async def after_restart():
        v = await _writer(nodes)
        await v.ensure_loaded([1, 2])
        s = v.snapshot()
        assert dict(v.scan(1, s)) == {b"d": (5,)}
        assert dict(v.scan(2, s)) == {b"e": (6,)}

    asyncio.run(main())
    asyncio.run(after_restart())


def test_a_large_commit_failing_part_way_leaves_nothing_and_stalls_nothing(nodes):
    """The large-commit path: a row that cannot be encoded (before any LSN exists) and a
    cache apply failing part way (after the LSNs were allocated: they are filled with
    empty records) both leave no row anywhere, and later commits become durable."""
    from server import volume as vol

    n = vol._LARGE_COMMIT + 10

    async def main():
        v = await _writer(nodes)
        writes = {(1, b"k%06d" % i): (i,) for i in range(n)}
        writes[(1, b"k%06d" % (n - 5))] = (object(),)
        with pytest.raises(TypeError):
            await v.commit(v.new_txid(), writes)

        def hook(key, row):
            if key == b"k%06d" % (n - 7):
                raise RuntimeError("index hook failed")

        v.table(1).on_add = hook
        with pytest.raises(RuntimeError):
            await v.commit(v.new_txid(), {(1, b"k%06d" % i): (i,) for i in range(n)})
        v.table(1).on_add = None
        assert v.table(1).rows == {}
        lsn = await asyncio.wait_for(v.commit(v.new_txid(), {(1, b"ok"): (1,)}), 20)
        assert v.snapshot() >= lsn
        assert dict(v.scan(1, v.snapshot())) == {b"ok": (1,)}

    async def after_restart():
        v = await _writer(nodes)
        await v.ensure_loaded([1])
        assert dict(v.scan(1, v.snapshot())) == {b"ok": (1,)}

    asyncio.run(main())
    asyncio.run(after_restart())
