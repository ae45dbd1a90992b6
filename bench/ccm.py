"""Throughput right after a failover, with and without cluster cache management:
``python -m bench.ccm [--tables 4] [--rows 20000] [--clients 4] [--after 10] [--runs 1] [--json F]``.

For each mode (``off``, ``on``) and run: a fresh cluster (writer i1, reader i2 -- tier 0
with CCM on), ``--tables`` tables of ``--rows`` rows, then ``--clients`` asyncpg clients
through the writer endpoint, each transaction reading one random row of every table and
updating one.  After 4 s of that (every table is in the writer's cache, and with CCM in
i2's too) the writer is killed with SIGKILL; the manager promotes i2.  Reported: the rate
before the kill, the time from the kill to the first commit, and the commits per second
in each of the first ``--after`` seconds after the kill, and their mean as a share of the
rate before.

Caching is by whole table (server.volume): without CCM the promoted writer loads each
table when the first statement touches it, one table after another; with CCM it loads
the previous writer's hot set, all tables at once, as soon as recovery is done
(server.ccm).  The promoted process is restarted (server.manager), so neither starts with
the tier-0 reader's cache itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg

from server.launcher import Cluster

WARM_SECONDS = 4.0


async def _load(dsn: str, tables: int, rows: int) -> None:
    conn = await asyncpg.connect(dsn, timeout=30)
    for t in range(tables):
        await conn.execute(f"CREATE TABLE ccm_t{t} (id integer PRIMARY KEY, n bigint, pad text)")
        await conn.execute(f"INSERT INTO ccm_t{t} SELECT g, 0, repeat('x', 80) FROM generate_series(1, {rows}) g")
    await conn.close()


async def _client(dsn: str, tables: int, rows: int, commits: list[float], stop: asyncio.Event, seed: int) -> None:
    rnd = random.Random(seed)
    conn = None
    while not stop.is_set():
        try:
            if conn is None or conn.is_closed():
                conn = await asyncpg.connect(dsn, timeout=3)
            async with conn.transaction():
                for t in range(tables):
                    await conn.fetchval(f"SELECT n FROM ccm_t{t} WHERE id = $1", rnd.randint(1, rows))
                await conn.execute(f"UPDATE ccm_t{rnd.randrange(tables)} SET n = n + 1 WHERE id = $1",
                                   rnd.randint(1, rows))
            commits.append(time.monotonic())
        except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            if conn is not None and not conn.is_closed():
                conn.terminate()
            conn = None
            await asyncio.sleep(0.05)
    if conn is not None:
        conn.terminate()


def _wait_warm(c: Cluster, timeout: float = 60.0) -> bool:
    """With CCM: until the tier-0 reader caches everything the writer caches."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        inst = {i["name"]: set(i["cached_tables"] or ()) for i in c.status()["instances"]}
        if inst.get("i1") and inst["i1"] <= inst.get("i2", set()):
            return True
        time.sleep(0.2)
    return False


async def _run(c: Cluster, ccm: bool, tables: int, rows: int, clients: int, after: float) -> dict:
    dsn = c.dsn("writer")
    commits: list[float] = []
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_client(dsn, tables, rows, commits, stop, k)) for k in range(clients)]
    loop = asyncio.get_running_loop()
    await asyncio.sleep(WARM_SECONDS)
    warm = await loop.run_in_executor(None, _wait_warm, c) if ccm else None
    t_before = time.monotonic()
    await asyncio.sleep(2.0)
    before = sum(1 for t in commits if t >= t_before) / (time.monotonic() - t_before)
    t_kill = time.monotonic()
    await loop.run_in_executor(None, c.kill, "i1")  # returns once the process is gone
    t_gone = time.monotonic()  # commits acked before this may come from the old writer
    end = t_kill + 60
    while not any(t > t_gone for t in commits) and time.monotonic() < end:
        await asyncio.sleep(0.02)
    first = min((t for t in commits if t > t_gone), default=None)
    await asyncio.sleep(max(0.0, t_gone + after - time.monotonic()))
    stop.set()
    await asyncio.gather(*tasks)
    per_s = [sum(1 for t in commits if t_gone + k <= t < t_gone + k + 1) for k in range(int(after))]
    return {"ccm": ccm, "tier0_warm": warm, "before_tps": round(before, 1),
            "kill_to_first_commit_s": None if first is None else round(first - t_kill, 3),
            "tps_after": per_s,
            "window_pct": None if not before else round(100 * sum(per_s) / len(per_s) / before, 1)}


def measure(ccm: bool, tables: int, rows: int, clients: int, after: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="borealis-ccm-") as tmp:
        c = Cluster(Path(tmp) / "data")
        c.create(port=None, readers=1)
        with c.editing() as conf:
            conf.ccm = ccm
            conf.instance("i2").tier = 0
        try:
            c.start(None, timeout=120)
            asyncio.run(_load(c.dsn("writer"), tables, rows))
            return asyncio.run(_run(c, ccm, tables, rows, clients, after))
        finally:
            c.stop_all()


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.ccm")
    ap.add_argument("--tables", type=int, default=4)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--after", type=float, default=10.0, help="seconds measured after the kill")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args()
    results = [measure(ccm, args.tables, args.rows, args.clients, args.after)
               for _ in range(args.runs) for ccm in (False, True)]
    print(f"{args.tables} tables x {args.rows:,} rows, {args.clients} clients; commits in each second after "
          "kill -9 of the writer")
    print(f"| CCM | before (tps) | kill -> first commit (s) | commits in seconds 1..{int(args.after)} | "
          "window vs before |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {'on' if r['ccm'] else 'off'} | {r['before_tps']} | {r['kill_to_first_commit_s']} | "
              f"{' '.join(map(str, r['tps_after']))} | {r['window_pct']}% |")
    for ccm in (False, True):
        pct = [r["window_pct"] for r in results if r["ccm"] == ccm and r["window_pct"] is not None]
        if pct:
            print(f"median throughput over the {int(args.after)} s after the kill, CCM {'on' if ccm else 'off'}: "
                  f"{statistics.median(pct)}% of before")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
