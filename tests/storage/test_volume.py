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
    v = WriterVolume(c.conf, TupleCodec(), commit_timeout=5)
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
