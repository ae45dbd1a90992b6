"""Version pruning in the instance cache (engine.memstore) respects pinned snapshots."""

import asyncio

from engine.memstore import MemoryStore


def test_old_versions_pruned_unless_pinned():
    async def main():
        s = MemoryStore()
        await s.commit(1, {(5, b"k"): ("v1",)})
        snap = s.snapshot()
        s.pin(99, snap)
        for i in range(2, 10):
            await s.commit(i, {(5, b"k"): (f"v{i}",)})
        assert s.get(5, b"k", snap) == ("v1",), "a pinned snapshot lost its version"
        s.release(99)
        for i in range(10, 13):
            await s.commit(i, {(5, b"k"): (f"v{i}",)})
        versions = s.table(5).rows[b"k"]
        assert len(versions) <= 3, versions
        assert s.get(5, b"k", s.snapshot()) == ("v12",)

    asyncio.run(main())
