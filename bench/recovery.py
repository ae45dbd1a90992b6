"""Crash-recovery time against the amount of log: ``python -m bench.recovery [--sizes 10000,1000000]``.

For each size: a fresh volume of six storage node processes, a writer that commits that many
records (in transactions of 1,000 rows), then a new writer runs recovery (fence, read quorum
of every PG, VDL, truncation) -- timed, in total and per step (``server.recovery``).
Recovery reads only the log above the SCLs of each PG's most complete read quorum and the
COMMIT records above the last VDL storage was told, so its time should not grow with the log.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import msgspec

from server.launcher import Cluster
from server.volume import WriterVolume


class _Codec:
    _enc = msgspec.msgpack.Encoder()
    _dec = msgspec.msgpack.Decoder()

    def encode_row(self, row):
        return self._enc.encode(list(row))

    def decode_row(self, data):
        return tuple(self._dec.decode(data))


WINDOW = 8  # transactions in flight together


async def _fill(cluster: Cluster, records: int, txn_rows: int) -> float:
    """Commit ``records`` rows, WINDOW transactions at a time; the writer then stops as if
    killed.  The last window is always a full one, so every size ends with the same log in
    flight (what recovery has to look at above the last VDL storage was told)."""
    v = WriterVolume(cluster.conf, _Codec(), commit_timeout=120, data_dir=str(cluster.data_dir))
    await v.start()
    t0 = time.perf_counter()
    n = 0
    txns = -(-records // txn_rows)
    window = txns % WINDOW or WINDOW  # a short window first, a full one last
    inflight = []
    while n < records:
        rows = min(txn_rows, records - n)
        writes = {(16384 + (i % 2), b"%012d" % (n + i)): (n + i, "payload-%d" % (n + i)) for i in range(rows)}
        inflight.append(asyncio.ensure_future(v.commit(v.new_txid(), writes)))
        n += rows
        if len(inflight) >= window:
            await asyncio.gather(*inflight)
            inflight = []
            window = WINDOW
    await asyncio.gather(*inflight)
    return time.perf_counter() - t0


async def _settle(cluster: Cluster, timeout: float = 180.0) -> float:
    """Wait until every node has materialised what it holds (background work done), so
    the timing compares recovery, not leftover load."""
    from storage.client import NodeClient
    from storage.mtls import InternalTls

    t0 = time.perf_counter()
    conf = cluster.conf
    tls = InternalTls.load(cluster.data_dir)
    nodes = [NodeClient(s.name, conf.host, s.port, tls=tls) for s in conf.storage_nodes]
    while time.perf_counter() - t0 < timeout:
        states = [await n.state(timeout=5) for n in nodes]
        if all(st.materialized >= st.vdl_hint for st in states):
            break
        await asyncio.sleep(0.5)
    for n in nodes:
        n.close()
    await asyncio.sleep(1.0)
    return time.perf_counter() - t0


async def _recover(cluster: Cluster) -> tuple[float, int, dict[str, float]]:
    v = WriterVolume(cluster.conf, _Codec(), data_dir=str(cluster.data_dir))
    t0 = time.perf_counter()
    await v.start()
    return time.perf_counter() - t0, v.snapshot(), v.recovery_timings


def measure(records: int, txn_rows: int = 1000) -> dict:
    with tempfile.TemporaryDirectory(prefix="borealis-recovery-") as tmp:
        c = Cluster(Path(tmp) / "data")
        c.create(port=None, readers=0)
        c.start([s.name for s in c.conf.storage_nodes], timeout=60)
        try:
            fill_s = asyncio.run(_fill(c, records, txn_rows))
            asyncio.run(_settle(c))
            rec_s, vdl, steps = asyncio.run(_recover(c))
            rec2_s, _, _ = asyncio.run(_recover(c))
        finally:
            c.stop_all()
    return {"records": records, "fill_s": round(fill_s, 2), "recovery_s": round(rec_s, 3),
            "second_recovery_s": round(rec2_s, 3), "vdl": vdl,
            "steps_ms": {k: round(v * 1000, 1) for k, v in steps.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.recovery")
    ap.add_argument("--sizes", default="10000,1000000")
    ap.add_argument("--json")
    args = ap.parse_args()
    results = [measure(int(s)) for s in args.sizes.split(",")]
    print("| committed records | load (s) | recovery (s) | again (s) | recovery steps (ms) |")
    print("|---|---|---|---|---|")
    for r in results:
        steps = " ".join(f"{k}={v}" for k, v in r["steps_ms"].items())
        print(f"| {r['records']:,} | {r['fill_s']} | {r['recovery_s']} | {r['second_recovery_s']} | {steps} |")
    if len(results) >= 2:
        print(f"ratio largest/smallest recovery: {results[-1]['recovery_s'] / max(results[0]['recovery_s'], 1e-6):.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
