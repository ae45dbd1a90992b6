"""Readers expose commits in the writer's commit order: no long fork, no half transaction.

Two clients commit independently on the writer, each appending ids 0,1,2,... to its own table.
Observers on every reader take single-statement snapshots (count and max of both tables).  If
readers apply commits in the writer's order, all observations are totally ordered by
inclusion; a "long fork" (one reader sees a's newer commit but not b's, another the reverse)
is two observations that are not.  A third client moves money between accounts: every
observed total must stay constant.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import asyncpg

DURATION = 4.0


async def _appender(dsn: str, table: str, stop: float) -> int:
    conn = await asyncpg.connect(dsn)
    n = 0
    try:
        while time.monotonic() < stop:
            await conn.execute(f"INSERT INTO {table} VALUES ($1)", n)
            n += 1
    finally:
        await conn.close()
    return n


async def _transfers(dsn: str, stop: float) -> int:
    conn = await asyncpg.connect(dsn)
    n = 0
    try:
        while time.monotonic() < stop:
            a, b = n % 10, (n * 7 + 3) % 10
            if a != b:
                async with conn.transaction():
                    await conn.execute("UPDATE acct SET bal = bal - 5 WHERE id = $1", a)
                    await conn.execute("UPDATE acct SET bal = bal + 5 WHERE id = $1", b)
            n += 1
    finally:
        await conn.close()
    return n


async def _observer(dsn: str, stop: float, out: list) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        while time.monotonic() < stop:
            row = await conn.fetchrow(
                "SELECT (SELECT count(*) FROM ra) AS ca, (SELECT max(id) FROM ra) AS ma, "
                "(SELECT count(*) FROM rb) AS cb, (SELECT max(id) FROM rb) AS mb, "
                "(SELECT sum(bal) FROM acct) AS total"
            )
            out.append(tuple(row))
    finally:
        await conn.close()


def test_readers_never_fork_and_never_show_half_a_transaction(make_cluster):
    c = make_cluster(readers=2)
    readers = [i["name"] for i in c.status()["instances"] if i["role"] == "reader"]
    assert len(readers) == 2

    async def main():
        setup = await asyncpg.connect(c.writer_dsn)
        await setup.execute("CREATE TABLE ra (id bigint PRIMARY KEY)")
        await setup.execute("CREATE TABLE rb (id bigint PRIMARY KEY)")
        await setup.execute("CREATE TABLE acct (id int PRIMARY KEY, bal bigint NOT NULL)")
        await setup.execute("INSERT INTO acct SELECT 0, 100 UNION ALL SELECT 1, 100 UNION ALL SELECT 2, 100 "
                            "UNION ALL SELECT 3, 100 UNION ALL SELECT 4, 100 UNION ALL SELECT 5, 100 "
                            "UNION ALL SELECT 6, 100 UNION ALL SELECT 7, 100 UNION ALL SELECT 8, 100 "
                            "UNION ALL SELECT 9, 100")
        await setup.close()
        await asyncio.sleep(0.5)  # readers see the tables
        stop = time.monotonic() + DURATION
        obs: dict[str, list] = {r: [] for r in readers}
        tasks = [
            _appender(c.writer_dsn, "ra", stop),
            _appender(c.writer_dsn, "rb", stop),
            _transfers(c.writer_dsn, stop),
        ]
        for r in readers:
            for _ in range(2):
                tasks.append(_observer(c.instance_dsn(r), stop, obs[r]))
        results = await asyncio.gather(*tasks)
        return results, obs

    results, obs = asyncio.run(main())
    assert results[0] > 20 and results[1] > 20 and results[2] > 10, results
    everything = [o for r in readers for o in obs[r]]
    assert len(everything) > 50
    for ca, ma, cb, mb, total in everything:
        assert total == 1000, f"half-applied transfer visible: total {total}"
        assert ca == (0 if ma is None else ma + 1), "a commit of ra visible before an earlier one"
        assert cb == (0 if mb is None else mb + 1), "a commit of rb visible before an earlier one"
    states = sorted({(o[0], o[2]) for o in everything})
    for (a1, b1), (a2, b2) in itertools.combinations(states, 2):
        assert (a1 <= a2 and b1 <= b2) or (a1 >= a2 and b1 >= b2), (
            f"long fork: one snapshot saw ra={a1}, rb={b1}, another ra={a2}, rb={b2}"
        )
