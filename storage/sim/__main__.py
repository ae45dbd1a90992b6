"""Replay or sweep simulation seeds:

    python -m storage.sim --seed 42          # one seed, with its event log
    python -m storage.sim --seeds 0-999      # a sweep; prints failing seeds
"""

from __future__ import annotations

import argparse
import logging
import sys

import structlog

from storage.sim.world import run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="storage.sim")
    ap.add_argument("--seed", type=int)
    ap.add_argument("--seeds", help="A-B (inclusive)")
    ap.add_argument("-v", "--verbose", action="store_true", help="show the writers' logs")
    args = ap.parse_args(argv)
    if not args.verbose:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    if args.seed is not None:
        r = run(args.seed)
        for e in r.events:
            print(e)
        print(f"seed {r.seed}: pgs={r.pgs} pg_limit={r.pg_limit or 'default'} writers={len(r.writers)} stats={r.stats}")
        for v in r.violations:
            print("VIOLATION", v)
        return 1 if r.violations else 0
    a, b = (int(x) for x in (args.seeds or "0-99").split("-"))
    bad = 0
    for s in range(a, b + 1):
        r = run(s)
        if r.violations:
            bad += 1
            print(f"seed {s}: {r.violations[0]}  (replay: python -m storage.sim --seed {s})")
    print(f"{b - a + 1 - bad}/{b - a + 1} seeds clean")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
