"""Median of several bench runs: ``python -m bench.combine bench/results/A.json B.json C.json``.

Prints one markdown table: per figure the median PostgreSQL and Borealis values over the
runs that have both, and the median of the per-run ratios (each ratio is taken within one
run, where both systems shared the machine's state at the time), with the runs counted.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from bench.report import fmt_value


def combine(reports: list[dict]) -> str:
    order: list[str] = []
    for r in reports:
        for key in r["figures"]:
            if key not in order:
                order.append(key)
    commits = ", ".join(r["machine"].get("commit", "?") for r in reports)
    lines = [f"Median of {len(reports)} runs (commits {commits}).", "",
             "| figure | PostgreSQL | Borealis | ratio (B/P) | runs |", "|---|---:|---:|---:|---:|"]
    for key in order:
        figs = [r["figures"][key] for r in reports if key in r["figures"]]
        label, unit, better = figs[0]["label"], figs[0]["unit"], figs[0]["better"]
        pg = [f["postgresql"] for f in figs if isinstance(f.get("postgresql"), (int, float))]
        bo = [f["borealis"] for f in figs if isinstance(f.get("borealis"), (int, float))]
        ratios = [f["ratio"] for f in figs if isinstance(f.get("ratio"), (int, float))]
        arrow = "↓" if better == "lower" else "↑"
        cells = [fmt_value(statistics.median(v), None) if v else "n/a" for v in (pg, bo, ratios)]
        lines.append(f"| {label} ({unit} {arrow}) | {cells[0]} | {cells[1]} | {cells[2]} | {len(bo)} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.combine", description=__doc__.splitlines()[0])
    ap.add_argument("reports", nargs="+", type=Path, help="JSON files written by python -m bench")
    args = ap.parse_args(argv)
    print(combine([json.loads(p.read_text()) for p in args.reports]), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
