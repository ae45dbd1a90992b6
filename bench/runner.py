"""The bench run: start each system in turn, run the selected workloads, report.

Workloads (names for ``--only``), in run order per system:

    pgbench    select (-S), update (-N), tpcb (default script) x 1 and 8 clients x simple and
               prepared query mode; tps
    analytic   the 3-table join + GROUP BY over the pgbench tables
    insert     single-row INSERT commit latency, 1 client and 8 clients
    copy       COPY of --copy-rows rows (default 1 M)
    lag        replica lag under pgbench -N (systems with a reader only)
    connect    connection storm: pgbench -C (new connection per SELECT 1), 8 clients, through
               the writer and the reader endpoint (PostgreSQL: its one server for both);
               connects/s and server / client CPU per connection (bench.connect)
    latency    point-select latency p50/p99, pgbench -S -M prepared, 1 client (bench.connect)
    growth     n, 2n, 4n, 8n rows of INSERT ... SELECT, CREATE INDEX, UPDATE/DELETE ... WHERE,
               a join, ORDER BY ... LIMIT and a full scan: time ratio per doubling
               (bench.growth; ~2 is linear, ~4 quadratic)
    rss        peak RSS of every server process (last, so it covers the whole run)

``init`` (the pgbench table load) runs first whenever pgbench, analytic or lag is selected.
A failing workload is recorded as ``{"error": ...}`` and the run carries on; a system that
does not start fails all its workloads with that error.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import traceback

from bench import connect, growth, machine, pgbench, report, workloads
from bench.report import Figure
from bench.systems import ScratchBorealis, ScratchPostgres

WORKLOADS = ("pgbench", "analytic", "insert", "copy", "lag", "connect", "latency", "growth", "rss")
NEEDS_INIT = {"pgbench", "analytic", "lag", "latency"}
STORM_CLIENTS = 8
CLIENTS = (1, 8)
MODES = ("simple", "prepared")
SCRIPT_LABEL = {"select": "select-only -S", "update": "simple-update -N", "tpcb": "TPC-B-like"}


def figures(scale: int, copy_rows: int, growth_rows: int = 0) -> list[Figure]:
    out = [Figure("init", f"pgbench init, scale {scale}", "s", "lower", "init", "seconds")]
    for script in pgbench.SCRIPTS:
        for c in CLIENTS:
            for m in MODES:
                key = f"pgbench_{script}_c{c}_{m}"
                out.append(Figure(key, f"pgbench {SCRIPT_LABEL[script]}, {c} client{'s' * (c > 1)}, {m}",
                                  "tps", "higher", key, "tps"))
    out.append(Figure("analytic", "3-table join + GROUP BY (median)", "ms", "lower", "analytic", "median_ms"))
    for c in CLIENTS:
        w = f"insert_c{c}"
        out += [Figure(f"{w}_p50", f"INSERT commit latency p50, {c} client{'s' * (c > 1)}", "ms", "lower", w, "p50_ms"),
                Figure(f"{w}_p99", f"INSERT commit latency p99, {c} client{'s' * (c > 1)}", "ms", "lower", w, "p99_ms"),
                Figure(f"{w}_rate", f"INSERT commits, {c} client{'s' * (c > 1)}", "commits/s", "higher", w,
                       "commits_per_s")]
    out.append(Figure("copy", f"COPY {copy_rows:,} rows", "rows/s", "higher", "copy", "rows_per_s"))
    out += [Figure("lag_p50", "replica lag p50 under -N load", "ms", "lower", "replica_lag", "p50_ms"),
            Figure("lag_p99", "replica lag p99 under -N load", "ms", "lower", "replica_lag", "p99_ms"),
            *connect_figures(),
            *growth_figures(growth_rows),
            Figure("rss_total", "peak RSS, all server processes", "MiB", "lower", "rss", "total")]
    return out


def connect_figures() -> list[Figure]:
    out = []
    for ep in ("writer", "reader"):
        w = f"connect_{ep}"
        out += [Figure(f"{w}_rate", f"connects/s via {ep} endpoint, pgbench -C, {STORM_CLIENTS} clients",
                       "conn/s", "higher", w, "connects_per_s"),
                Figure(f"{w}_server_cpu", f"server CPU per connection, {ep} endpoint", "ms", "lower", w,
                       "server_cpu_ms_per_conn")]
    out += [Figure("point_p50", "point select latency p50, -S prepared, 1 client", "ms", "lower", "point_latency",
                   "p50_ms"),
            Figure("point_p99", "point select latency p99, -S prepared, 1 client", "ms", "lower", "point_latency",
                   "p99_ms")]
    return out


def growth_figures(base: int) -> list[Figure]:
    top = base << growth.DOUBLINGS
    out = []
    for name, label, _ in growth.STATEMENTS:
        out += [Figure(f"growth_{name}_ratio", f"{label}: time ratio per doubling, {base:,}..{top:,} rows",
                       "x", "lower", "growth", f"{name}_mean_ratio"),
                Figure(f"growth_{name}_top", f"{label}: time at {top:,} rows", "ms", "lower", "growth",
                       f"{name}_top_ms")]
    return out


def result_keys(selected: list[str]) -> list[str]:
    """The keys of ``details[system]`` that the selected workloads fill in."""
    keys = ["init"] if set(selected) & NEEDS_INIT else []
    for w in selected:
        if w == "pgbench":
            keys += [f"pgbench_{s}_c{c}_{m}" for s in pgbench.SCRIPTS for c in CLIENTS for m in MODES]
        elif w == "insert":
            keys += [f"insert_c{c}" for c in CLIENTS]
        elif w == "lag":
            keys.append("replica_lag")
        elif w == "connect":
            keys += ["connect_writer", "connect_reader"]
        elif w == "latency":
            keys.append("point_latency")
        else:
            keys.append(w)
    return keys


def _err(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0] if msg else ''}"[:400]


async def settle(pids_fn, idle_share: float = 0.10, timeout: float = 90.0) -> float:
    """Wait until the system's processes together use under ``idle_share`` of one core for
    a whole second (background work after the load: storage materialising the log,
    PostgreSQL's checkpointer and autovacuum), at most ``timeout`` s; returns the wait.
    Both systems get the same wait, so the first workload is not measured against it."""
    t0 = time.perf_counter()
    prev = connect.cpu_seconds(pids_fn())
    while time.perf_counter() - t0 < timeout:
        await asyncio.sleep(1.0)
        now = connect.cpu_seconds(pids_fn())
        if now - prev < idle_share:
            break
        prev = now
    return round(time.perf_counter() - t0, 1)


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.a = args
        self.log = lambda *m: print(*m, file=sys.stderr, flush=True)
        self.sysobj = None

    async def _step(self, res: dict, key: str, coro_or_fn, timeout: float) -> None:
        self.log(f"  {key} ...")
        if self.sysobj is not None and hasattr(self.sysobj, "ensure_serving"):
            await asyncio.to_thread(self.sysobj.ensure_serving)
        t0 = time.perf_counter()
        try:
            if asyncio.iscoroutine(coro_or_fn):
                res[key] = await asyncio.wait_for(coro_or_fn, timeout)
            else:
                res[key] = await asyncio.wait_for(asyncio.to_thread(coro_or_fn), timeout)
        except asyncio.TimeoutError:
            res[key] = {"error": f"timed out after {timeout:.0f} s"}
        except Exception as e:  # a failing workload is a figure, not a crash
            if self.a.verbose:
                traceback.print_exc()
            res[key] = {"error": _err(e)}
        self.log(f"  {key}: {res[key]} ({time.perf_counter() - t0:.1f} s)")

    async def system(self, sysobj, res: dict[str, dict]) -> None:
        """Fill ``res`` (workload -> result) in place, so a crash keeps what was measured."""
        a, d = self.a, self.a.duration
        self.sysobj = sysobj
        sel = set(a.only)
        if sel & NEEDS_INIT:
            await self._step(res, "init", pgbench.init(sysobj.dsn, a.scale), 1800)
            if "error" in res["init"]:
                for k in result_keys(sorted(sel & NEEDS_INIT)):
                    res.setdefault(k, {"error": "init failed: " + res["init"]["error"]})
                sel -= NEEDS_INIT
            else:
                res["init"]["settle_s"] = await settle(sysobj.pids)
                self.log(f"  settled after init in {res['init']['settle_s']} s")
        if "pgbench" in sel:
            for script in pgbench.SCRIPTS:
                for c in CLIENTS:
                    for m in MODES:
                        key = f"pgbench_{script}_c{c}_{m}"
                        await self._step(res, key, lambda s=script, c=c, m=m: pgbench.run(sysobj.dsn, s, c, m, d),
                                         d * 3 + 90)
        if "analytic" in sel:
            await self._step(res, "analytic", workloads.analytic(sysobj.dsn, a.scale, a.analytic_runs, a.query_timeout),
                             a.query_timeout * a.analytic_runs + 30)
        if "insert" in sel:
            for c in CLIENTS:
                await self._step(res, f"insert_c{c}", workloads.insert_latency(sysobj.dsn, c, d), d + 60)
        if "copy" in sel:
            await self._step(res, "copy", workloads.copy_load(sysobj.dsn, a.copy_rows, a.copy_timeout),
                             a.copy_timeout + 30)
        if "lag" in sel:
            if sysobj.reader_dsn is None:
                res["replica_lag"] = {"note": "no replica"}
            else:
                await self._step(res, "replica_lag", workloads.replica_lag(sysobj.dsn, sysobj.reader_dsn, d), d + 120)
        if "connect" in sel:
            for ep, dsn in (("writer", sysobj.dsn), ("reader", sysobj.reader_dsn or sysobj.dsn)):
                await self._step(res, f"connect_{ep}",
                                 lambda dsn=dsn: connect.storm(dsn, STORM_CLIENTS, d, sysobj.pids()), d * 3 + 90)
        if "latency" in sel:
            await self._step(res, "point_latency", lambda: connect.point_latency(sysobj.dsn, d), d * 3 + 90)
        if "growth" in sel:
            await self._step(res, "growth", self._growth(sysobj.dsn), a.query_timeout * 4 + 60)
        if "rss" in sel:
            pids = sysobj.pids()
            res["rss"] = workloads.peak_rss(pids)
            missing = [n for n in getattr(sysobj, "expected_parts", list)() if n not in pids]
            if missing:
                res["rss"]["not_running"] = missing
        if hasattr(sysobj, "manager_events"):
            res["manager_events"] = {"events": sysobj.manager_events()}

    async def _growth(self, dsn: str) -> dict:
        """bench.growth's result, flattened into the figures' fields (and kept whole)."""
        g = await growth.run(dsn, self.a.growth_rows, self.a.query_timeout)
        flat: dict = {"detail": g}
        for name, _, _ in growth.STATEMENTS:
            flat[f"{name}_mean_ratio"] = g[name]["mean_ratio"]
            flat[f"{name}_top_ms"] = round(g[name]["seconds"][-1] * 1000, 1)
        return flat

    async def main(self) -> dict:
        a = self.a
        mach = machine.describe()
        config = {"duration_s": a.duration, "scale": a.scale, "copy_rows": a.copy_rows, "growth_rows": a.growth_rows,
                  "workloads": "+".join(a.only), "quick": a.quick,
                  "borealis_manager": not a.no_manager}
        self.log(f"bench: {mach['cores']} cores, Python {mach['python']}, {mach['postgresql']}, commit {mach['commit']}")
        details: dict[str, dict] = {}
        for name, factory in (("postgresql", ScratchPostgres), ("borealis", ScratchBorealis)):
            if name not in a.systems:
                continue
            self.log(f"{name}: starting")
            try:
                kw = {"keep": a.keep, "manager": not a.no_manager} if name == "borealis" else {}
                with factory(**kw) as sysobj:
                    self.log(f"{name}: up at {sysobj.dsn}")
                    await self.system(sysobj, details.setdefault(name, {}))
            except Exception as e:
                err = f"{name} failed: {_err(e)}"
                self.log(f"{name} failed:\n{e}")
                for k in result_keys(a.only):
                    details.setdefault(name, {}).setdefault(k, {"error": err})
        figs = report.build_figures(figures(a.scale, a.copy_rows, a.growth_rows), details)
        md = report.markdown(mach, config, figs, details)
        out = {"machine": mach, "config": config, "figures": figs, "details": details, "markdown": md}
        path = report.write_json(out, a.out)
        print(md)
        print(f"JSON: {path}")
        return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description="Borealis vs PostgreSQL 15 benchmarks")
    p.add_argument("--quick", action="store_true", help="a few seconds per workload, scale 1, 50k COPY rows")
    p.add_argument("--duration", type=float, help="seconds per timed workload (default 20, --quick 3)")
    p.add_argument("--scale", type=int, help="pgbench scale (default 10, --quick 1)")
    p.add_argument("--copy-rows", type=int, help="rows to COPY (default 1000000, --quick 50000)")
    p.add_argument("--growth-rows", type=int, help="smallest size of the growth section (default 2000, --quick 500)")
    p.add_argument("--only", help=f"comma-separated subset of: {','.join(WORKLOADS)}")
    p.add_argument("--systems", default="postgresql,borealis", help="comma-separated: postgresql,borealis")
    p.add_argument("--analytic-runs", type=int, default=None, help="runs of the analytic query (default 3)")
    p.add_argument("--query-timeout", type=float, default=300.0, help="seconds before one analytic query fails")
    p.add_argument("--copy-timeout", type=float, default=600.0, help="seconds before the COPY fails")
    p.add_argument("--out", type=lambda s: __import__("pathlib").Path(s), help="JSON path (default bench/results/)")
    p.add_argument("--no-manager", action="store_true",
                   help="stop the Borealis cluster manager after start (no automatic failover)")
    p.add_argument("--keep", action="store_true", help="keep the Borealis data dir and logs")
    p.add_argument("-v", "--verbose", action="store_true", help="print tracebacks of failing workloads")
    a = p.parse_args(argv)
    a.duration = a.duration or (3.0 if a.quick else 20.0)
    a.scale = a.scale or (1 if a.quick else 10)
    a.copy_rows = a.copy_rows or (50_000 if a.quick else 1_000_000)
    a.growth_rows = a.growth_rows or (500 if a.quick else 2000)
    a.analytic_runs = a.analytic_runs or (1 if a.quick else 3)
    a.only = [w.strip() for w in (a.only or ",".join(WORKLOADS)).split(",") if w.strip()]
    unknown = set(a.only) - set(WORKLOADS)
    if unknown:
        p.error(f"unknown workload(s) {', '.join(sorted(unknown))}; choose from {', '.join(WORKLOADS)}")
    a.systems = [s.strip() for s in a.systems.split(",") if s.strip()]
    return a


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(Run(args).main())
    return 0
