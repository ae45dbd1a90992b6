"""Connection cost and point-select latency, both driven by pgbench (a C client).

``storm``: ``pgbench -C`` -- a new connection for every transaction -- running a one-line
script (``SELECT 1``), so the figure is the cost of connect + startup + authentication +
session + one round trip + disconnect, independent of any table.  Besides connects/s it
reports CPU per connection: of the server processes (sum of user + system time of every
pid the system names, children included, so PostgreSQL's short-lived backends count once
the postmaster reaps them) and of the client (pgbench itself), because on a small shared
machine the rate alone mostly says how busy the machine was.

``point_latency``: ``pgbench -S -M prepared -c 1`` with a per-transaction log (``-l``);
p50/p99 of the point select's round trip as seen by the client.
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import tempfile
from pathlib import Path

from bench.pgbench import conn_args
from bench.workloads import pct

_TPS = re.compile(r"^tps = ([\d.]+)", re.M)
_DONE = re.compile(r"^number of transactions actually processed: (\d+)", re.M)
_CONN = re.compile(r"^average connection time = ([\d.]+) ms", re.M)
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: dict[str, int]) -> float:
    """utime + stime + cutime + cstime over ``pids`` (processes that are gone count 0)."""
    total = 0
    for pid in pids.values():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])
    return total / _TICK


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _run(args: list[str], seconds: float, cwd: str | None = None) -> str:
    p = subprocess.run(args, capture_output=True, text=True, timeout=seconds * 3 + 60, cwd=cwd)
    if p.returncode != 0 or not _TPS.search(p.stdout):
        lines = [ln for ln in (p.stderr or p.stdout).strip().splitlines() if ln.strip()]
        raise RuntimeError(" | ".join(lines[-3:]) or f"pgbench exited {p.returncode}")
    return p.stdout


def storm(dsn: str, clients: int, seconds: float, pids: dict[str, int]) -> dict:
    """Connects/s with ``clients`` pgbench clients reconnecting for every transaction."""
    with tempfile.TemporaryDirectory(prefix="bench-connect-") as tmp:
        script = Path(tmp) / "select1.sql"
        script.write_text("SELECT 1;\n")
        # -j = clients: pgbench connects synchronously within a thread, so fewer threads
        # than clients would cap the rate at threads / connect latency.
        args = ["pgbench", "-n", "-C", "-f", str(script), "-c", str(clients), "-j", str(clients),
                "-T", str(max(1, round(seconds))), *conn_args(dsn)]
        s0, c0 = cpu_seconds(pids), _children_cpu()
        out = _run(args, seconds)
        s1, c1 = cpu_seconds(pids), _children_cpu()
    done = int(_DONE.search(out).group(1)) if _DONE.search(out) else 0
    conn_ms = _CONN.search(out)
    per = max(done, 1)
    return {
        "connects_per_s": round(float(_TPS.search(out).group(1)), 1),
        "connections": done,
        "connect_ms": float(conn_ms.group(1)) if conn_ms else None,
        "server_cpu_ms_per_conn": round((s1 - s0) * 1000 / per, 3),
        "client_cpu_ms_per_conn": round((c1 - c0) * 1000 / per, 3),
    }


def point_latency(dsn: str, seconds: float, mode: str = "prepared") -> dict:
    """p50/p99 (ms) of pgbench's select-only transaction (one point select), 1 client."""
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        args = ["pgbench", "-n", "-S", "-M", mode, "-c", "1", "-j", "1", "-l", "--log-prefix", "lat",
                "-T", str(max(1, round(seconds))), *conn_args(dsn)]
        out = _run(args, seconds, cwd=tmp)
        lat: list[float] = []
        for log in Path(tmp).glob("lat*"):
            for line in log.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3:
                    lat.append(int(parts[2]) / 1000.0)  # microseconds -> ms
    if not lat:
        raise RuntimeError("pgbench wrote no transaction log")
    lat.sort()
    return {"p50_ms": round(pct(lat, 0.5), 3), "p99_ms": round(pct(lat, 0.99), 3), "transactions": len(lat),
            "tps": round(float(_TPS.search(out).group(1)), 1)}
