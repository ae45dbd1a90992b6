"""Concurrent READ COMMITTED transfers on the writer lose no update.

Eight asyncpg clients run ``UPDATE ... SET balance = balance -/+ $1`` transfers; row lock
waits re-run the statement on its kept snapshot (the re-check of a changed row), which
must still find its rows after the wait: the total balance stays unchanged."""

import asyncio

import asyncpg

from tests.test_failover import ACCOUNTS, START_BALANCE, Load, _setup_accounts


def test_concurrent_transfers_keep_the_total(cluster):
    dsn = cluster.writer_dsn

    async def main() -> None:
        await _setup_accounts(dsn)
        load = Load(dsn)
        workers = [asyncio.create_task(load.worker(i)) for i in range(8)]
        await asyncio.sleep(4)
        load.stop.set()
        await asyncio.gather(*workers)
        conn = await asyncpg.connect(dsn)
        try:
            total = await conn.fetchval("SELECT sum(balance) FROM accounts")
            ledger = await conn.fetchval("SELECT count(*) FROM ledger")
        finally:
            await conn.close()
        assert len(load.acked) > 50, load.errors
        assert ledger == len(load.acked)
        assert total == ACCOUNTS * START_BALANCE, "a concurrent update was lost"

    asyncio.run(main())
