"""Command line of the conformance runner.

    python -m conformance pg-regress DIR [--dsn DSN] [--json FILE] [--timeout S]
    python -m conformance sqllogictest PATH... [--dsn DSN] [--json FILE] [--timeout S]
    python -m conformance all ROOT [--dsn DSN] [--json-dir DIR]    # both suites + scoreboard
    python -m conformance record DIR     # expected/*.out from a scratch real PostgreSQL 15

Without ``--dsn`` a temporary Borealis cluster is started for the run and stopped after it.
Every run ends with the line ``N passed, M failed`` (cases: sqllogictest records, pg_regress
statement blocks); the exit code is 0 whenever the run itself completed.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from conformance import record, regress, slt
from conformance.results import SuiteResult
from conformance.servers import Target, borealis_cluster


@contextlib.contextmanager
def target_for(dsn: str | None) -> Iterator[Target]:
    if dsn:
        yield Target(dsn)
    else:
        with borealis_cluster() as target:
            yield target


def finish(suites: list[SuiteResult], json_files: list[str | None]) -> None:
    for suite, path in zip(suites, json_files):
        print(suite.summary())
        if path:
            suite.write_json(path)
    passed = sum(s.passed for s in suites)
    failed = sum(s.failed for s in suites)
    print(f"{passed} passed, {failed} failed")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m conformance", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("pg-regress", "sqllogictest", "all"):
        p = sub.add_parser(name)
        if name == "sqllogictest":
            p.add_argument("paths", nargs="+")
        else:
            p.add_argument("dir")
        p.add_argument("--dsn")
        p.add_argument("--timeout", type=float, default=10.0, help="seconds per statement")
        if name == "all":
            p.add_argument("--json-dir", help="writes pg_regress.json and sqllogictest.json here")
        else:
            p.add_argument("--json")
        p.add_argument("--quiet", action="store_true", help="no per-file progress lines")
    p = sub.add_parser("record")
    p.add_argument("dir")
    args = ap.parse_args(argv)

    if args.cmd == "record":
        record.record(Path(args.dir))
        return 0
    with target_for(args.dsn) as target:
        progress = not args.quiet
        if args.cmd == "pg-regress":
            finish([regress.run_suite(Path(args.dir), target, args.timeout, progress)], [args.json])
        elif args.cmd == "sqllogictest":
            finish([slt.run_suite(args.paths, target, args.timeout, progress)], [args.json])
        else:
            root = Path(args.dir)
            started = time.strftime("%Y-%m-%d %H:%M")
            suites = [regress.run_suite(root / "pg_regress", target, args.timeout, progress),
                      slt.run_suite([str(root / "sqllogictest")], target, args.timeout, progress)]
            out = Path(args.json_dir) if args.json_dir else None
            if out:
                out.mkdir(parents=True, exist_ok=True)
            print(f"\nScoreboard ({started}):")
            for s in suites:
                print(f"  {s.suite:13s} {s.rate():5.1f}% of cases ({s.passed}/{s.passed + s.failed}), "
                      f"{s.files_exact}/{len(s.files)} files exact, {s.seconds:.0f} s")
            finish(suites, [str(out / f"{s.suite}.json") if out else None for s in suites])
    return 0


if __name__ == "__main__":
    sys.exit(main())
