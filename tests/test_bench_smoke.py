"""`python -m bench` end to end, kept cheap: INSERT latency and RSS only, 1 s per workload,
against both a scratch PostgreSQL and a scratch cluster.  Asserts the JSON report's shape and
that the figures it promises are there (a number, or a reported failure -- never missing)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin/postgres")


@pytest.mark.skipif(not PG_BIN.exists() or shutil.which("pgbench") is None, reason="PostgreSQL 15 not installed")
@pytest.mark.timeout(120)
def test_bench_quick_writes_report(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    p = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--only", "insert,rss", "--duration", "1", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=110,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert "| figure | PostgreSQL | Borealis |" in p.stdout
    report = json.loads(out.read_text())
    assert {"machine", "config", "figures", "details", "markdown"} <= report.keys()
    assert report["machine"]["cores"] >= 1 and report["machine"]["python"]
    assert report["config"]["workloads"] == "insert+rss"
    figs = report["figures"]
    expected = {f"insert_c{c}_{k}" for c in (1, 8) for k in ("p50", "p99", "rate")} | {"rss_total"}
    assert set(figs) == expected  # only the selected workloads, no pgbench figures
    for key in expected:
        row = figs[key]
        assert {"label", "unit", "better", "postgresql", "borealis", "ratio", "errors"} <= row.keys()
        for system in ("postgresql", "borealis"):
            assert row[system] is not None or system in row["errors"], (key, system, row)
    # PostgreSQL is the reference and must always measure
    pg = figs["insert_c1_p50"]["postgresql"]
    assert 0 < pg < figs["insert_c1_p99"]["postgresql"] * 1.0001
    assert figs["insert_c8_rate"]["postgresql"] > 0
    assert figs["rss_total"]["postgresql"] > 0
