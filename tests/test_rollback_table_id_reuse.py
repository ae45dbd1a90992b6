"""A table created and searched through a unique index in a rolled-back transaction
leaves an index built for its table id; a later table reusing the id (another column
count) must commit normally (once an IndexError in the index hook wedged every commit)."""

import asyncio

import asyncpg


class _RollBack(Exception):
    """Leaves the ``conn.transaction()`` block with a ROLLBACK."""


def test_table_id_reused_after_rollback(cluster):
    async def main() -> None:
        conn = await asyncpg.connect(cluster.writer_dsn)
        try:
            async with conn.transaction():
                await conn.execute("CREATE TABLE rb_a (a int, b int, c int UNIQUE, PRIMARY KEY (a, b))")
                await conn.execute("INSERT INTO rb_a SELECT x / 10, x % 10, x FROM generate_series(1, 100) x")
                raise _RollBack
        except _RollBack:
            pass
        try:
            await conn.execute("CREATE TABLE rb_b (id int PRIMARY KEY)")
            await asyncio.wait_for(conn.execute("INSERT INTO rb_b VALUES (1), (2), (3)"), 20)
            assert [r["id"] for r in await conn.fetch("SELECT id FROM rb_b ORDER BY id")] == [1, 2, 3]
            await asyncio.wait_for(conn.execute("INSERT INTO rb_b VALUES (4)"), 20)  # commits still flow
            assert await conn.fetchval("SELECT count(*) FROM rb_b WHERE id = 4") == 1
        finally:
            await conn.execute("DROP TABLE IF EXISTS rb_b")
            await conn.close()

    asyncio.run(main())
