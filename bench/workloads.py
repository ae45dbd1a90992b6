"""The asyncpg-driven workloads.  Each returns a dict of figures or raises; the runner turns
exceptions into reported failures.

    insert_latency   one-row INSERT commits (autocommit, prepared) from ``clients``
                     connections for ``seconds``: p50/p99 latency of each commit and total rate
    copy_load        COPY ... FROM STDIN (text format) of ``rows`` rows into a new table
    analytic         a 3-table join with GROUP BY over the pgbench tables (median of runs)
    replica_lag      under a background ``pgbench -N`` (8 clients) on the writer: insert a
                     probe row on the writer, then poll the reader instance until it is there;
                     lag = first sighting - commit acknowledgement
    peak_rss         VmHWM of each server process from /proc/<pid>/status
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg

from bench import pgbench

ANALYTIC_SQL = """
select b.bid, t.tid, count(*) as accounts, sum(a.abalance) as balance, max(t.tbalance) as teller
from pgbench_accounts a
join pgbench_branches b on b.bid = a.bid
join pgbench_tellers t on t.bid = a.bid and t.tid % 10 = a.aid % 10
group by b.bid, t.tid
order by b.bid, t.tid
"""


def pct(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        raise ValueError("no samples")
    k = max(0, min(len(sorted_values) - 1, int(round(q * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


def _ms(x: float) -> float:
    return round(x * 1000, 3)


async def insert_latency(dsn: str, clients: int, seconds: float) -> dict:
    setup = await asyncpg.connect(dsn)
    table = f"bench_insert_{clients}"
    try:
        await setup.execute(f"drop table if exists {table}")
        await setup.execute(f"create table {table} (id bigint primary key, v text)")
    finally:
        await setup.close()
    conns = [await asyncpg.connect(dsn) for _ in range(clients)]
    lat: list[float] = []
    stop = time.perf_counter() + seconds

    async def client(k: int, conn: asyncpg.Connection) -> None:
        stmt = await conn.prepare(f"insert into {table} (id, v) values ($1, $2)")
        i = k * 1_000_000_000
        while time.perf_counter() < stop:
            i += 1
            t0 = time.perf_counter()
            await stmt.fetch(i, "payload")
            lat.append(time.perf_counter() - t0)

    t_start = time.perf_counter()
    try:
        await asyncio.gather(*(client(k, c) for k, c in enumerate(conns)))
    finally:
        for c in conns:
            await c.close()
    elapsed = time.perf_counter() - t_start
    lat.sort()
    return {"p50_ms": _ms(pct(lat, 0.5)), "p99_ms": _ms(pct(lat, 0.99)),
            "commits_per_s": round(len(lat) / elapsed, 1), "commits": len(lat)}


async def copy_load(dsn: str, rows: int, timeout: float) -> dict:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("drop table if exists bench_copy")
        await conn.execute("create table bench_copy (id int, k int, filler text)")
        chunk = 10_000

        async def source():
            for lo in range(0, rows, chunk):
                yield "".join(f"{i}\t{i % 1000}\tfiller-{i}\n" for i in range(lo, min(lo + chunk, rows))).encode()

        t0 = time.perf_counter()
        status = await conn.copy_to_table("bench_copy", source=source(), columns=["id", "k", "filler"],
                                          timeout=timeout)
        elapsed = time.perf_counter() - t0
        count = await conn.fetchval("select count(*) from bench_copy", timeout=timeout)
    finally:
        await conn.close()
    if count != rows:
        raise RuntimeError(f"COPY reported {status!r} but the table holds {count} of {rows} rows")
    return {"rows_per_s": round(rows / elapsed, 1), "seconds": round(elapsed, 3), "rows": rows}


async def analytic(dsn: str, scale: int, runs: int, timeout: float) -> dict:
    conn = await asyncpg.connect(dsn)
    times: list[float] = []
    try:
        for _ in range(runs):
            t0 = time.perf_counter()
            result = await conn.fetch(ANALYTIC_SQL, timeout=timeout)
            times.append(time.perf_counter() - t0)
    finally:
        await conn.close()
    # every teller gets the accounts of its branch whose aid matches its tid mod 10
    if len(result) != 10 * scale or sum(r["accounts"] for r in result) != 100_000 * scale:
        raise RuntimeError(f"wrong answer: {len(result)} groups, {sum(r['accounts'] for r in result)} accounts")
    times.sort()
    return {"median_ms": _ms(times[len(times) // 2]), "runs": runs, "groups": len(result)}


async def replica_lag(writer_dsn: str, reader_dsn: str, seconds: float, interval: float = 0.05,
                      give_up: float = 5.0) -> dict:
    w = await asyncpg.connect(writer_dsn)
    r = await asyncpg.connect(reader_dsn)
    load = None
    try:
        await w.execute("drop table if exists bench_lag")
        await w.execute("create table bench_lag (id int primary key, t float8)")
        end = time.monotonic() + 15
        while True:  # the reader must know the table before probing starts
            try:
                await r.fetchval("select count(*) from bench_lag")
                break
            except asyncpg.PostgresError:
                if time.monotonic() > end:
                    raise
                await asyncio.sleep(0.05)
        load = pgbench.start_background(writer_dsn, "update", 8, seconds + 1)
        await asyncio.sleep(0.5)  # let the load ramp up
        lags: list[float] = []
        missed = 0
        probe = 0
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            probe += 1
            await w.execute("insert into bench_lag (id, t) values ($1, $2)", probe, time.time())
            acked = time.perf_counter()
            while await r.fetchval("select 1 from bench_lag where id = $1", probe) is None:
                if time.perf_counter() - acked > give_up:
                    missed += 1
                    break
            else:
                lags.append(time.perf_counter() - acked)
            await asyncio.sleep(interval)
        out, err = await asyncio.to_thread(load.communicate, timeout=seconds + 60)
        if load.returncode != 0:
            raise RuntimeError("background pgbench -N failed: " + pgbench._tail(err))
        tps = pgbench._TPS.search(out)
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.wait()
        await w.close()
        await r.close()
    lags.sort()
    return {"p50_ms": _ms(pct(lags, 0.5)), "p99_ms": _ms(pct(lags, 0.99)), "max_ms": _ms(lags[-1]),
            "probes": len(lags), "missed": missed, "load_tps": float(tps.group(1)) if tps else None}


def peak_rss(pids: dict[str, int]) -> dict:
    """name -> peak resident set (MiB) for every live process; plus the total."""
    out: dict[str, float] = {}
    for name, pid in sorted(pids.items()):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    out[name] = round(int(line.split()[1]) / 1024, 1)
        except OSError:
            continue
    out["total"] = round(sum(out.values()), 1)
    return out
