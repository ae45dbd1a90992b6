"""pgbench against a fresh cluster: ``-i`` (COPY ... FREEZE, VACUUM, ALTER TABLE ADD
PRIMARY KEY), then short select-only, simple-update and TPC-B-like runs in the simple,
extended and prepared protocols, with zero failed transactions and consistent balances.

A fresh cluster (not the shared one): the bulk load and key rewrite are the heaviest
things the suite does to a writer.
"""

from __future__ import annotations

import re
import subprocess
import time

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


def _check_loaded(dsn: str, scale: int) -> None:
    n = 100_000 * scale
    assert psql_value(dsn, "SELECT count(*), count(DISTINCT aid), min(aid), max(aid), sum(abalance) "
                           "FROM pgbench_accounts") == f"{n}|{n}|1|{n}|0"
    assert psql_value(dsn, "SELECT bid, count(*) FROM pgbench_accounts GROUP BY bid ORDER BY bid") == "\n".join(
        f"{b}|100000" for b in range(1, scale + 1))
    assert psql_value(dsn, "SELECT count(*), sum(bbalance) FROM pgbench_branches") == f"{scale}|0"
    assert psql_value(dsn, "SELECT count(*), sum(tbalance) FROM pgbench_tellers") == f"{10 * scale}|0"
    # the primary keys are in place: point lookups by key, duplicates refused with 23505
    assert psql_value(dsn, f"SELECT aid, bid FROM pgbench_accounts WHERE aid = {n}") == f"{n}|{scale}"
    for table, row in (("pgbench_accounts", f"({n}, 1, 0, '')"), ("pgbench_branches", "(1, 0, '')"),
                       ("pgbench_tellers", "(1, 1, 0, '')")):
        dup = subprocess.run(["psql", "-X", "-v", "VERBOSITY=verbose", dsn, "-c", f"INSERT INTO {table} VALUES {row}"],
                             capture_output=True, text=True, timeout=30, env=env_without_pg())
        assert "23505" in dup.stderr and f"{table}_pkey" in dup.stderr, dup.stderr


@pytest.mark.timeout(400)
def test_pgbench_init_default_steps_and_server_side_generate(make_cluster):
    """``pgbench -i`` at scale 2 with its default steps (dtgvp: COPY ... FREEZE of 200,000
    accounts, VACUUM ANALYZE, ALTER TABLE ADD PRIMARY KEY -- a rewrite of every row) through
    the writer endpoint, then again with ``-I dtGvp`` (INSERT ... SELECT generate_series),
    which first drops the loaded tables: counts, balances and the keys are right on the
    writer, and a reader serves the same rows (the bulk commits reached it as redo)."""
    c = make_cluster(readers=1)
    for steps in ((), ("-I", "dtGvp")):
        out = pgbench(c.writer_dsn, "-i", *steps, "-s", "2", "-q", timeout=300)
        assert "done in" in out
        _check_loaded(c.writer_dsn, 2)
        want = f"200000|{200000 * 200001 // 2}"
        end = time.monotonic() + 60
        while (got := psql_value(c.reader_dsn, "SELECT count(*), sum(aid) FROM pgbench_accounts")) != want:
            assert time.monotonic() < end, f"the reader shows {got}, not {want}"
            time.sleep(0.5)
