"""CPU the commit path costs: ``python -m bench.commit_cpu [--tx 800] [--clients 4]``.

A scratch cluster (no reader), ``pgbench -i -s 1``, then ``pgbench -N`` for a fixed number
of transactions; prints the writer's and the six storage nodes' CPU (utime + stime from
``/proc``) per transaction, the wall time and pgbench's tps, as one JSON line.  CPU per
transaction is steadier than throughput on a shared machine; to compare two trees (say,
before and after a change to the wire), run this in both at the same time so that other
load hits both alike (docs/security.md, "Internal traffic").
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

from server.launcher import Cluster


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(tx: int, clients: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    with tempfile.TemporaryDirectory() as d:
        c = Cluster(Path(d) / "cluster")
        c.create(port=None, readers=0, pgs=2)
        c.start(None, 90)
        try:
            dsn = c.dsn("writer")
            subprocess.run(["pgbench", "-i", "-s", "1", "-q", dsn], check=True, capture_output=True, env=env)
            time.sleep(2)  # let the load's background work (materialisation) settle
            writer = c.conf.writer()
            assert writer is not None
            nodes = [s.name for s in c.conf.storage_nodes]
            pids = {n: c.pid(n) for n in [writer.name, *nodes]}
            before = {n: _cpu_seconds(p) for n, p in pids.items() if p}
            t0 = time.monotonic()
            r = subprocess.run(["pgbench", "-N", "-n", "-c", str(clients), "-j", str(min(clients, 2)),
                                "-t", str(tx), dsn], check=True, capture_output=True, text=True, env=env)
            wall = time.monotonic() - t0
            after = {n: _cpu_seconds(p) for n, p in pids.items() if p}
        finally:
            c.stop_all()
    total = tx * clients
    tps = next((ln.split("=")[1].split()[0] for ln in r.stdout.splitlines() if ln.startswith("tps")), None)
    return {
        "transactions": total,
        "wall_s": round(wall, 2),
        "tps": float(tps) if tps else None,
        "writer_cpu_ms_per_tx": round(1000 * (after[writer.name] - before[writer.name]) / total, 3),
        "storage_cpu_ms_per_tx": round(1000 * sum(after[n] - before[n] for n in nodes) / total, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(prog="bench.commit_cpu", description=__doc__.splitlines()[0])
    ap.add_argument("--tx", type=int, default=800, help="transactions per client")
    ap.add_argument("--clients", type=int, default=4)
    a = ap.parse_args()
    print(json.dumps(measure(a.tx, a.clients)))


if __name__ == "__main__":
    main()
