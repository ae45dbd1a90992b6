"""What encryption at rest costs a storage node's CPU: ``python -m bench.atrest [--n N] [--size B]``.

Times, per entry, in one process and without RocksDB (only the encode / decode work that
encryption adds to): a version stored one by one (``encode_version``) and in a PUTS record's
bulk path (``Batch.put_versions``), a version read back (``decode_version``), and a log
record stored (``encode_record``) and verified on read (``check_record``) -- each unsealed
and sealed (AES-256-GCM, storage.atrest).  Prints a table of microseconds per entry and the
difference; ``--json`` prints the figures as JSON instead.

``--node`` also runs one storage node in process (a real RocksDB in a temporary directory):
Appends of two records each (a row and a commit), fsynced, then materialised and every row
read back, and reports the process's CPU time per Append -- what a node spends, with
RocksDB's own work, not only the sealing.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

from storage.atrest import EntryCipher
from storage.records import PUT, LogRecord
from storage.store import (
    Batch, check_record, decode_version, encode_record, encode_version, log_key, use_cipher, version_key,
)


def _per_entry(fn: Callable[[], object], entries: int, repeat: int = 5) -> float:
    """Best of ``repeat`` runs of ``fn`` (which handles ``entries`` entries), in µs per entry."""
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best / entries * 1e6


def measure(n: int, size: int) -> dict[str, dict[str, float]]:
    value = os.urandom(size)
    keys = [version_key(1, b"\x00\x00\x40\x00" + i.to_bytes(8, "big"), 1000 + i) for i in range(n)]
    pairs = [(b"\x00\x00\x40\x00" + i.to_bytes(8, "big"), value) for i in range(400)]
    recs = [LogRecord(lsn=i + 1, pg=1, prev_lsn=i, txid=7, kind=PUT, key=b"k%d" % i, value=value, epoch=1).sealed()
            for i in range(n)]
    out: dict[str, dict[str, float]] = {}
    for mode, cipher in (("plain", None), ("sealed", EntryCipher(os.urandom(32)))):
        use_cipher(cipher)
        stored = [encode_version(k, value) for k in keys]
        stored_recs = [(log_key(r.pg, r.lsn), encode_record(r)) for r in recs]

        def bulk() -> None:
            for _ in range(max(1, n // 400)):
                Batch().put_versions(1, 5000, pairs)

        out[mode] = {
            "version_write": _per_entry(lambda: [encode_version(k, value) for k in keys], n),
            "version_write_bulk": _per_entry(bulk, max(1, n // 400) * 400),
            "version_read": _per_entry(lambda: [decode_version(k, v) for k, v in zip(keys, stored)], n),
            "record_write": _per_entry(lambda: [encode_record(r) for r in recs], n),
            "record_read": _per_entry(lambda: [check_record(k, v) for k, v in stored_recs], n),
        }
    use_cipher(None)
    return out


def node_cpu(appends: int, size: int, cipher: EntryCipher | None) -> float:
    """CPU µs one in-process storage node spends per Append of a row + a commit record."""
    import asyncio
    import tempfile

    from storage import protocol as P
    from storage.node import StorageNode
    from storage.records import COMMIT
    from storage.store import Store

    value = os.urandom(size)

    async def go() -> float:
        with tempfile.TemporaryDirectory() as d:
            store = Store(d)
            if cipher is not None:
                store.seal_with(cipher)
            else:
                use_cipher(None)
            node = StorageNode("b", "az1", 1, store, retention_seconds=3600)
            t = time.process_time()
            lsn = 0
            for i in range(appends):
                recs = [LogRecord(lsn=lsn + 1, pg=0, prev_lsn=lsn, txid=i, kind=PUT, key=b"\x00\x00\x40\x00%08d" % i,
                                  value=value, epoch=1).sealed(),
                        LogRecord(lsn=lsn + 2, pg=0, prev_lsn=lsn + 1, txid=i, kind=COMMIT, key=b"",
                                  value=b"\x81\x00\xcd\x00\x01", epoch=1).sealed()]
                lsn += 2
                await node.append(P.Append(req=i, epoch=1, vdl=lsn - 2, records=recs))
                if i % 20 == 19:
                    node.materialize(0, lsn)
            node.materialize(0, lsn)
            for i in range(appends):
                store.read_version(0, b"\x00\x00\x40\x00%08d" % i, lsn)
            spent = time.process_time() - t
            store.close()
            return spent / appends * 1e6

    try:
        return asyncio.run(go())
    finally:
        use_cipher(None)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.atrest", description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20_000, help="entries per timed run")
    ap.add_argument("--size", type=int, default=100, help="bytes of each value (a row)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--node", type=int, default=0, metavar="APPENDS",
                    help="also time an in-process storage node over this many Appends")
    args = ap.parse_args(argv)
    figs = measure(args.n, args.size)
    if args.node:
        import logging

        import structlog

        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
        dek = os.urandom(32)
        runs = {"plain": [], "sealed": []}
        for _ in range(3):  # alternate, best of 3: the machine may be shared
            runs["plain"].append(node_cpu(args.node, args.size, None))
            runs["sealed"].append(node_cpu(args.node, args.size, EntryCipher(dek)))
        figs["plain"]["node_append_cpu"] = min(runs["plain"])
        figs["sealed"]["node_append_cpu"] = min(runs["sealed"])
    if args.json:
        print(json.dumps({"n": args.n, "size": args.size, "us_per_entry": figs}, indent=2))
        return 0
    print(f"µs per entry, {args.size}-byte values, best of 5 runs of {args.n}"
          + (f"; node_append_cpu: µs of CPU per Append (row + commit), best of 3 runs of {args.node}" if args.node else ""))
    print("| operation | unsealed | sealed | added |")
    print("|---|---|---|---|")
    for op in figs["plain"]:
        p, s = figs["plain"][op], figs["sealed"][op]
        print(f"| {op} | {p:.2f} | {s:.2f} | {s - p:+.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
