"""pgbench: loading its tables and running its built-in scripts.

Init tries, in order, until one succeeds:

    pgbench -i -s N                 the standard client-side COPY load (what PostgreSQL gets)
    pgbench -i -I dtGvp -s N        server-side INSERT ... SELECT FROM generate_series

the method used and each failed attempt's error are reported with the figures; if both
fail, init fails (the runs that need the tables are reported as not measured).  There is
no home-made loader: Borealis loads with pgbench's own steps.
Runs always pass ``-n`` (no VACUUM / TRUNCATE before the run) to treat both systems alike.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass
from urllib.parse import urlparse


SCRIPTS = {"select": ["-S"], "update": ["-N"], "tpcb": []}  # figure name -> pgbench flags


def conn_args(dsn: str) -> list[str]:
    """pgbench connection arguments; the DSN's query (e.g. sslmode=disable) goes into the
    trailing conninfo-style dbname, which pgbench passes to libpq as is."""
    u = urlparse(dsn)
    db = (u.path or "/postgres").lstrip("/")
    return ["-h", u.hostname or "127.0.0.1", "-p", str(u.port or 5432), "-U", u.username or "postgres",
            f"dbname={db} {u.query.replace('&', ' ')}".strip() if u.query else db]


def _tail(text: str, n: int = 3) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-n:])


@dataclass
class InitResult:
    method: str
    seconds: float
    failed_attempts: list[str]


async def init(dsn: str, scale: int, timeout: float = 900.0) -> dict:
    failed: list[str] = []
    for method, steps in (("pgbench -i", []), ("pgbench -i -I dtGvp", ["-I", "dtGvp"])):
        t0 = time.perf_counter()
        p = subprocess.run(["pgbench", "-i", "-q", *steps, "-s", str(scale), *conn_args(dsn)],
                           capture_output=True, text=True, timeout=timeout)
        if p.returncode == 0:
            return vars(InitResult(method, round(time.perf_counter() - t0, 3), failed))
        failed.append(f"{method}: {_tail(p.stderr)}")
    raise RuntimeError("; ".join(failed))


_TPS = re.compile(r"^tps = ([\d.]+) \(without initial connection time\)", re.M)
_LAT = re.compile(r"^latency average = ([\d.]+) ms", re.M)
_FAILED = re.compile(r"^number of failed transactions: (\d+)", re.M)
_DONE = re.compile(r"^number of transactions actually processed: (\d+)", re.M)


def run(dsn: str, script: str, clients: int, mode: str, seconds: float) -> dict:
    """One pgbench run; returns {"tps", "latency_ms", "transactions", "failed"} or raises
    RuntimeError with pgbench's last error lines."""
    args = ["pgbench", "-n", *SCRIPTS[script], "-M", mode, "-c", str(clients), "-j", str(min(clients, 2)),
            "-T", str(max(1, round(seconds))), *conn_args(dsn)]
    p = subprocess.run(args, capture_output=True, text=True, timeout=seconds * 3 + 60)
    tps = _TPS.search(p.stdout)
    if p.returncode != 0 or not tps:
        raise RuntimeError(_tail(p.stderr) or _tail(p.stdout) or f"pgbench exited {p.returncode}")
    lat = _LAT.search(p.stdout)
    return {
        "tps": round(float(tps.group(1)), 1),
        "latency_ms": float(lat.group(1)) if lat else None,
        "transactions": int(_DONE.search(p.stdout).group(1)) if _DONE.search(p.stdout) else None,
        "failed": int(_FAILED.search(p.stdout).group(1)) if _FAILED.search(p.stdout) else 0,
    }


def start_background(dsn: str, script: str, clients: int, seconds: float) -> subprocess.Popen:
    """A pgbench run in the background (the load under which replica lag is measured)."""
    args = ["pgbench", "-n", *SCRIPTS[script], "-M", "prepared", "-c", str(clients), "-j", str(min(clients, 2)),
            "-T", str(max(1, round(seconds))), *conn_args(dsn)]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
