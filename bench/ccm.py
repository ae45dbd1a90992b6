"""Throughput right after a failover, with and without cluster cache management:
``python -m bench.ccm [--tables 4] [--rows 20000] [--clients 4] [--after 10] [--runs 1]
[--modes off,on] [--json F]``.

For each mode and run: a fresh cluster (writer i1, reader i2 -- tier 0 with CCM on),
``--tables`` tables of ``--rows`` rows, then ``--clients`` asyncpg clients through the
writer endpoint, each transaction reading one random row of every table and updating one.
After 4 s of that (every table is in the writer's cache, and with CCM in i2's too) the
writer is killed with SIGKILL; the manager promotes i2.  Reported: the rate before the
kill (over 4 s), the time from the kill to the first commit, the commits per second in each
of the first ``--after`` seconds after the kill, the first second that reaches half the rate
before, their mean as a share of the rate before, and the manager's failover event
(decision -> new writer serving, in place or not).

Modes: ``off`` / ``on`` -- CCM off / on, in-place promotion (server.promote: i2 becomes
the writer in the same process and keeps its cache); ``restart-off`` / ``restart-on`` --
the same with in-place promotion turned off (BOREALIS_PROMOTE_IN_PLACE=0): i2's process is
restarted as writer with an empty cache, and with CCM on loads the previous writer's hot
set right after recovery.

Caching is by whole table (server.volume): a table the new writer does not cache is
loaded from storage when the first statement touches it, and every transaction here
touches every table, so the first commit waits for all of them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg

from server.launcher import Cluster

WARM_SECONDS = 4.0
BEFORE_SECONDS = 4.0  # the rate before the kill is measured over this long


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
    await asyncio.sleep(BEFORE_SECONDS)
    before = sum(1 for t in commits if t >= t_before) / (time.monotonic() - t_before)
    t_kill = time.monotonic()
    kill_wall = time.time()
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
    half = next((k + 1 for k, n in enumerate(per_s) if before and n >= before / 2), None)
    return {"ccm": ccm, "tier0_warm": warm, "before_tps": round(before, 1),
            "kill_to_first_commit_s": None if first is None else round(first - t_kill, 3),
            "tps_after": per_s, "half_rate_by_s": half, "kill_wall": kill_wall,
            "window_pct": None if not before else round(100 * sum(per_s) / len(per_s) / before, 1)}


def _failover_event(c: Cluster, timeout: float = 30.0) -> dict:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ev = [e for e in c.status()["manager"]["events"] if e.get("kind") == "failover"]
        if ev:
            return ev[-1]
        time.sleep(0.2)
    return {}


def measure(mode: str, tables: int, rows: int, clients: int, after: float) -> dict:
    ccm = mode.endswith("on")
    in_place = not mode.startswith("restart")
    saved = os.environ.get("BOREALIS_PROMOTE_IN_PLACE")
    os.environ["BOREALIS_PROMOTE_IN_PLACE"] = "1" if in_place else "0"  # the manager inherits it
    try:
        with tempfile.TemporaryDirectory(prefix="borealis-ccm-") as tmp:
            c = Cluster(Path(tmp) / "data")
            c.create(port=None, readers=1)
            with c.editing() as conf:
                conf.ccm = ccm
                conf.instance("i2").tier = 0
            try:
                c.start(None, timeout=120)
                asyncio.run(_load(c.dsn("writer"), tables, rows))
                r = asyncio.run(_run(c, ccm, tables, rows, clients, after))
                ev = _failover_event(c)
                r.update(mode=mode, in_place=ev.get("in_place"), manager_s=ev.get("seconds"),
                         promotion=ev.get("promotion"),
                         detect_s=round(ev["at"] - r["kill_wall"], 3) if ev.get("at") else None)
                return r
            finally:
                c.stop_all()
    finally:
        if saved is None:
            os.environ.pop("BOREALIS_PROMOTE_IN_PLACE", None)
        else:
            os.environ["BOREALIS_PROMOTE_IN_PLACE"] = saved


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.ccm")
    ap.add_argument("--tables", type=int, default=4)
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--after", type=float, default=10.0, help="seconds measured after the kill")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--modes", default="off,on", help="comma-separated: off, on, restart-off, restart-on")
    ap.add_argument("--json")
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in ("off", "on", "restart-off", "restart-on")]
    if bad:
        ap.error(f"unknown mode(s): {bad}")
    results = [measure(mode, args.tables, args.rows, args.clients, args.after)
               for _ in range(args.runs) for mode in modes]
    print(f"{args.tables} tables x {args.rows:,} rows, {args.clients} clients; commits in each second after "
          "kill -9 of the writer")
    print(f"| mode | CCM | promotion | before (tps) | kill -> first commit (s) | kill -> decision (s) | "
          f"decision -> serving (s) | "
          f"commits in seconds 1..{int(args.after)} | half the rate by second | window vs before |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        how = "in place" if r["in_place"] else ("restart" if r["in_place"] is False else "?")
        print(f"| {r['mode']} | {'on' if r['ccm'] else 'off'} | {how} | {r['before_tps']} | "
              f"{r['kill_to_first_commit_s']} | {r['detect_s']} | {r['manager_s']} | "
              f"{' '.join(map(str, r['tps_after']))} | {r['half_rate_by_s']} | {r['window_pct']}% |")
    for mode in modes:
        pct = [r["window_pct"] for r in results if r["mode"] == mode and r["window_pct"] is not None]
        first = [r["kill_to_first_commit_s"] for r in results
                 if r["mode"] == mode and r["kill_to_first_commit_s"] is not None]
        if pct and first:
            print(f"{mode}: median kill -> first commit {statistics.median(first):.3f} s, median throughput over "
                  f"the {int(args.after)} s after the kill {statistics.median(pct):.1f}% of before ({len(pct)} runs)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
