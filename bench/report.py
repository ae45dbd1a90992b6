"""Turning per-system workload results into figures, a markdown table and a JSON file.

Results come in as ``details[system][workload] = dict`` (or ``{"error": str}``).  A figure
picks one number out of one workload; a cell is that number, ``failed: <error>`` or ``n/a``
(the workload does not apply, e.g. replica lag on a single PostgreSQL).  The ratio column is
Borealis / PostgreSQL; the label's arrow says which direction is better.

JSON layout (bench/results/bench-<date>.json):

    {"machine": {...}, "config": {...},
     "figures": {key: {"label", "unit", "better", "postgresql", "borealis", "ratio", "errors"}},
     "details": {"postgresql": {workload: {...}}, "borealis": {workload: {...}}},
     "markdown": "..."}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SYSTEMS = ("postgresql", "borealis")
RESULTS_DIR = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    better: str  # "higher" | "lower"
    workload: str
    field: str


def _cell(res: dict | None, field: str) -> tuple[float | None, str | None]:
    """(value, error) for one workload result."""
    if res is None:
        return None, None
    if "error" in res:
        return None, res["error"]
    v = res.get(field)
    return (float(v) if isinstance(v, (int, float)) else None), None


def build_figures(figs: list[Figure], details: dict[str, dict[str, dict]]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for f in figs:
        row: dict = {"label": f.label, "unit": f.unit, "better": f.better, "errors": {}}
        for s in SYSTEMS:
            v, err = _cell(details.get(s, {}).get(f.workload), f.field)
            row[s] = v
            if err:
                row["errors"][s] = err
        p, b = row["postgresql"], row["borealis"]
        row["ratio"] = round(b / p, 3) if p and b is not None else None
        if any(details.get(s, {}).get(f.workload) is not None for s in SYSTEMS):
            out[f.key] = row
    return out


def fmt_value(v: float | None, err: str | None) -> str:
    if err:
        short = err.replace("|", "/").replace("\n", " ")
        return f"failed: {short[:90]}" + ("…" if len(short) > 90 else "")
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def markdown(machine: dict, config: dict, figures: dict[str, dict], details: dict) -> str:
    arrow = {"higher": "↑", "lower": "↓"}
    lines = [
        f"Bench run {machine['date']}, commit {machine['commit']}: {machine['cores']} cores ({machine['cpu']}), "
        f"{machine['mem_gib']} GiB, Python {machine['python']}, {machine['postgresql']}.",
        f"Config: {', '.join(f'{k}={v}' for k, v in config.items())}.",
        "",
        "| figure | PostgreSQL | Borealis | ratio (B/P) |",
        "|---|---:|---:|---:|",
    ]
    for row in figures.values():
        cells = [fmt_value(row[s], row["errors"].get(s)) for s in SYSTEMS]
        ratio = f"{row['ratio']:.3g}" if row["ratio"] is not None else ""
        lines.append(f"| {row['label']} ({row['unit']} {arrow[row['better']]}) | {cells[0]} | {cells[1]} | {ratio} |")
    rss = details.get("borealis", {}).get("rss")
    if rss and "error" not in rss:
        lines += ["", "Borealis peak RSS per process (MiB): "
                  + ", ".join(f"{k} {v}" for k, v in rss.items() if k != "total" and isinstance(v, float))]
        if rss.get("not_running"):
            lines.append(f"Not running at the end of the run: {', '.join(rss['not_running'])}")
    events = (details.get("borealis", {}).get("manager_events") or {}).get("events") or []
    for ev in events:
        lines += ["", f"Borealis manager event during the run: {ev.get('kind')} {ev.get('from')} -> {ev.get('to')} "
                  f"({ev.get('reason')}, {ev.get('seconds')} s)"]
    from bench import growth

    lines += growth.markdown(details)
    init = {s: details.get(s, {}).get("init") for s in SYSTEMS}
    for s, res in init.items():
        if res and "error" not in res and res.get("failed_attempts"):
            lines += ["", f"{s} init used {res['method']}; failed first: " + "; ".join(res["failed_attempts"])]
    return "\n".join(lines) + "\n"


def write_json(report: dict, out: Path | None = None) -> Path:
    if out is None:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out = RESULTS_DIR / f"bench-{report['machine']['date'][:19].replace(' ', 'T').replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return out
