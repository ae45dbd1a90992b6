"""pgbench against a fresh cluster: ``-i`` (COPY ... FREEZE, VACUUM, ALTER TABLE ADD
PRIMARY KEY), then short select-only, simple-update and TPC-B-like runs in the simple,
extended and prepared protocols, with zero failed transactions and consistent balances.

A fresh cluster (not the shared one): the bulk load and key rewrite are the heaviest
things the suite does to a writer.
"""

from __future__ import annotations

import re
import subprocess

import pytest

from cluster import env_without_pg

MODES = ("simple", "extended", "prepared")


def pgbench(dsn: str, *args: str, timeout: float = 60) -> str:
    proc = subprocess.run(["pgbench", *args, dsn], capture_output=True, text=True, timeout=timeout,
                          env=env_without_pg())
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    return out


def psql_value(dsn: str, sql: str) -> str:
    proc = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", dsn, "-c", sql],
                          capture_output=True, text=True, timeout=30, env=env_without_pg(), check=True)
    return proc.stdout.strip()


def run_stats(out: str) -> tuple[int, int, float]:
    done = int(re.search(r"number of transactions actually processed: (\d+)", out).group(1))
    m = re.search(r"number of failed transactions: (\d+)", out)
    failed = int(m.group(1)) if m else 0
    tps = float(re.search(r"tps = ([\d.]+)", out).group(1))
    return done, failed, tps


@pytest.mark.timeout(150)
def test_pgbench_init_and_runs(make_cluster):
    c = make_cluster(readers=1)
    dsn = c.writer_dsn
    out = pgbench(dsn, "-i", "-s", "1", "-q")
    assert "done in" in out
    assert psql_value(dsn, "SELECT count(*) FROM pgbench_accounts") == "100000"
    assert psql_value(dsn, "SELECT count(*), sum(bbalance) FROM pgbench_branches") == "1|0"
    assert psql_value(dsn, "SELECT count(*) FROM pgbench_tellers") == "10"
    # the key is now the primary key: a duplicate is refused
    dup = subprocess.run(["psql", "-X", dsn, "-c", "INSERT INTO pgbench_accounts VALUES (1, 1, 0, '')"],
                         capture_output=True, text=True, timeout=30, env=env_without_pg())
    assert "pgbench_accounts_pkey" in dup.stderr

    # select-only, first run without -n (VACUUM + TRUNCATE pgbench_history before it)
    for i, mode in enumerate(MODES):
        extra = () if i == 0 else ("-n",)
        done, failed, _ = run_stats(pgbench(dsn, "-S", "-M", mode, "-c", "4", "-j", "2", "-T", "2", *extra))
        assert done > 0 and failed == 0, mode

    for mode in MODES:
        done, failed, _ = run_stats(pgbench(dsn, "-N", "-n", "-M", mode, "-c", "4", "-j", "2", "-T", "2"))
        assert done > 0 and failed == 0, mode
    # -N moves accounts and logs history, but leaves branches and tellers alone
    simple_updates = int(psql_value(dsn, "SELECT coalesce(sum(delta), 0) FROM pgbench_history"))
    assert int(psql_value(dsn, "SELECT sum(abalance) FROM pgbench_accounts")) == simple_updates

    total = 0
    for mode in MODES:
        done, failed, _ = run_stats(pgbench(dsn, "-n", "-M", mode, "-c", "4", "-j", "2", "-T", "3"))
        assert done > 0 and failed == 0, mode
        total += done
    hist = psql_value(dsn, "SELECT count(*), sum(delta) FROM pgbench_history").split("|")
    accounts = int(psql_value(dsn, "SELECT sum(abalance) FROM pgbench_accounts"))
    branches = int(psql_value(dsn, "SELECT sum(bbalance) FROM pgbench_branches"))
    tellers = int(psql_value(dsn, "SELECT sum(tbalance) FROM pgbench_tellers"))
    assert int(hist[1]) == accounts
    assert branches == tellers == accounts - simple_updates
    assert int(hist[0]) >= total
