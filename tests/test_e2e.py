"""Issue 2's acceptance, end to end through real clients and real processes.

Every test talks to the cluster through its endpoints with psql, psycopg or asyncpg.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time

import asyncpg
import psycopg
import pytest

from cluster import env_without_pg


def psql(dsn: str, sql: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", dsn, "-c", sql],
        capture_output=True, text=True, timeout=60, env=env_without_pg(), check=check,
    )


def wait_for(predicate, timeout: float, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            return value
        time.sleep(interval)


def test_psql_write_then_read_on_reader_within_a_second(cluster):
    psql(cluster.writer_dsn, "CREATE TABLE e2e_items (id integer PRIMARY KEY, name text NOT NULL, qty bigint DEFAULT 0)")
    out = psql(cluster.writer_dsn, "INSERT INTO e2e_items (id, name, qty) VALUES (1, 'apple', 3), (2, 'pear', 5), (3, 'fig', 7) RETURNING id")
    assert out.stdout.split() == ["1", "2", "3"]
    t0 = time.monotonic()

    def rows_on_reader():
        r = psql(cluster.reader_dsn, "SELECT id, name, qty FROM e2e_items ORDER BY id", check=False)
        return r.stdout.split() if r.returncode == 0 else None

    got = wait_for(lambda: rows_on_reader() == ["1|apple|3", "2|pear|5", "3|fig|7"], timeout=1.0)
    assert got, f"reader did not show the rows within 1 s: {rows_on_reader()}"
    assert time.monotonic() - t0 < 1.5


def test_reader_endpoint_refuses_writes_with_25006(cluster):
    psql(cluster.writer_dsn, "CREATE TABLE IF NOT EXISTS e2e_ro (id integer PRIMARY KEY)")
    with psycopg.connect(cluster.reader_dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as info:
            conn.execute("INSERT INTO e2e_ro VALUES (1)")
        assert info.value.sqlstate == "25006"
        # the session keeps working after the error
        assert conn.execute("SELECT 1 + 1").fetchone()[0] == 2


def test_errors_carry_sqlstate_and_session_survives(cluster):
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as info:
            conn.execute("SELECT * FROM no_such_table_here")
        assert info.value.sqlstate == "42P01"
        with pytest.raises(psycopg.Error) as info:
            conn.execute("SELEC 1")
        assert info.value.sqlstate == "42601"
        conn.execute("CREATE TABLE e2e_pk (id integer PRIMARY KEY)")
        conn.execute("INSERT INTO e2e_pk VALUES (1)")
        with pytest.raises(psycopg.Error) as info:
            conn.execute("INSERT INTO e2e_pk VALUES (1)")
        assert info.value.sqlstate == "23505"
        assert conn.execute("SELECT count(*) FROM e2e_pk").fetchone()[0] == 1


def test_transaction_rollback_is_invisible_and_commit_visible(cluster):
    with psycopg.connect(cluster.writer_dsn) as a, psycopg.connect(cluster.writer_dsn, autocommit=True) as b:
        a.execute("CREATE TABLE e2e_tx (id integer PRIMARY KEY, v text)")
        a.commit()
        a.execute("INSERT INTO e2e_tx VALUES (1, 'one')")
        assert b.execute("SELECT count(*) FROM e2e_tx").fetchone()[0] == 0, "uncommitted row visible"
        a.rollback()
        assert b.execute("SELECT count(*) FROM e2e_tx").fetchone()[0] == 0
        a.execute("INSERT INTO e2e_tx VALUES (2, 'two')")
        a.commit()
        assert b.execute("SELECT v FROM e2e_tx").fetchall() == [("two",)]


def test_asyncpg_extended_protocol_round_trip(cluster):
    async def main():
        conn = await asyncpg.connect(cluster.writer_dsn)
        try:
            await conn.execute("CREATE TABLE e2e_apg (id bigint PRIMARY KEY, note text, ok boolean)")
            await conn.executemany("INSERT INTO e2e_apg VALUES ($1, $2, $3)", [(i, f"n{i}", i % 2 == 0) for i in range(50)])
            rows = await conn.fetch("SELECT id, note, ok FROM e2e_apg WHERE id < $1 ORDER BY id", 3)
            assert [tuple(r) for r in rows] == [(0, "n0", True), (1, "n1", False), (2, "n2", True)]
            assert await conn.fetchval("SELECT count(*) FROM e2e_apg WHERE ok") == 25
        finally:
            await conn.close()

    asyncio.run(main())


def _scl_converged(handle) -> bool:
    st = handle.status()
    vcl = st["volume"]["vcl"]
    vdl = st["volume"]["vdl"]
    nodes = st["storage_nodes"]
    if any(n["state"] != "up" for n in nodes):
        return False
    # each segment's SCL of PG 0 (every commit lives there) reaches the VDL
    return all(int(n["scl"].get("0", n["scl"].get(0, 0))) >= vdl for n in nodes) and vcl >= vdl


def test_two_nodes_in_different_azs_down_commits_continue_then_catch_up(make_cluster):
    c = make_cluster()
    dsn = c.writer_dsn
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE f2 (id integer PRIMARY KEY, v text)")
        conn.execute("INSERT INTO f2 VALUES (0, 'before')")
        c.kill("s1")  # az1
        c.kill("s3")  # az2
        t0 = time.monotonic()
        for i in range(1, 51):
            conn.execute("INSERT INTO f2 VALUES (%s, 'during')", (i,))
        assert time.monotonic() - t0 < 30
        assert conn.execute("SELECT count(*) FROM f2").fetchone()[0] == 51
    c.start(["s1", "s3"])
    assert wait_for(lambda: _scl_converged(c), timeout=20, interval=0.3), c.status()["storage_nodes"]


def test_three_nodes_down_commit_never_reports_success(make_cluster, monkeypatch):
    monkeypatch.setenv("BOREALIS_COMMIT_TIMEOUT", "4")
    c = make_cluster()
    with psycopg.connect(c.writer_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE f3 (id integer PRIMARY KEY)")
        for name in ("s1", "s2", "s3"):  # one AZ plus one more node
            c.kill(name)
        t0 = time.monotonic()
        with pytest.raises(psycopg.Error) as info:
            conn.execute("INSERT INTO f3 VALUES (1)")
        assert time.monotonic() - t0 >= 3.5, "the commit did not wait for a quorum"
        # records reached some storage: the commit's fate is unknown, and the error says so
        # (58030 would invite a blind retry that applies the transaction twice)
        assert info.value.sqlstate == "08007", info.value.sqlstate
        assert "quorum" in str(info.value) and "unknown" in str(info.value)
        assert info.value.diag.message_hint and "retrying" in info.value.diag.message_hint
        # the same for an explicit COMMIT; the session stays usable afterwards
        conn.execute("BEGIN")
        conn.execute("INSERT INTO f3 VALUES (3)")
        with pytest.raises(psycopg.Error) as info:
            conn.execute("COMMIT")
        assert info.value.sqlstate == "08007", info.value.sqlstate
        assert conn.execute("SELECT 1").fetchone() == (1,)
    c.start(["s1"])
    # a write quorum exists again: new commits succeed, and the earlier one may have landed
    with psycopg.connect(c.writer_dsn, autocommit=True) as conn:
        deadline = time.monotonic() + 20
        while True:
            try:
                conn.execute("INSERT INTO f3 VALUES (2)")
                break
            except psycopg.Error:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        ids = [r[0] for r in conn.execute("SELECT id FROM f3 ORDER BY id").fetchall()]
        assert 2 in ids and set(ids) <= {1, 2, 3}


async def _transfer_load(dsn: str, acked: list[int], stop: asyncio.Event, worker: int) -> None:
    """Each transaction writes the same id into two tables in different PGs."""
    n = 0
    while not stop.is_set():
        try:
            conn = await asyncpg.connect(dsn, timeout=2)
        except Exception:
            await asyncio.sleep(0.1)
            continue
        try:
            while not stop.is_set():
                ident = worker * 1_000_000 + n
                n += 1
                async with conn.transaction():
                    await conn.execute("INSERT INTO wa VALUES ($1, 'a')", ident)
                    await conn.execute("INSERT INTO wb VALUES ($1, 'b')", ident)
                acked.append(ident)
        except Exception:
            await asyncio.sleep(0.05)
        finally:
            conn.terminate()


def test_writer_killed_under_load_loses_no_acknowledged_commit(make_cluster):
    c = make_cluster()
    psql(c.writer_dsn, "CREATE TABLE wa (id bigint PRIMARY KEY, v text)")
    psql(c.writer_dsn, "CREATE TABLE wb (id bigint PRIMARY KEY, v text)")

    async def run_load() -> list[int]:
        acked: list[int] = []
        stop = asyncio.Event()
        tasks = [asyncio.create_task(_transfer_load(c.writer_dsn, acked, stop, w)) for w in range(4)]
        await asyncio.sleep(2.0)
        await asyncio.get_running_loop().run_in_executor(None, c.kill, "i1")
        await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*tasks)
        return acked

    acked = asyncio.run(run_load())
    assert len(acked) > 20, "the load did not get going"
    c.start()  # `borealis up` on the same directory: restarts the writer, which recovers
    with psycopg.connect(c.writer_dsn, autocommit=True) as conn:
        a = {r[0] for r in conn.execute("SELECT id FROM wa").fetchall()}
        b = {r[0] for r in conn.execute("SELECT id FROM wb").fetchall()}
    missing = set(acked) - a
    assert not missing, f"{len(missing)} acknowledged commits lost"
    assert a == b, f"half-applied transactions visible: {sorted(a ^ b)[:10]}"
    # and the cluster takes writes again
    psql(c.writer_dsn, "INSERT INTO wa VALUES (-1, 'after')")


def test_down_then_up_keeps_committed_data(make_cluster):
    c = make_cluster()
    psql(c.writer_dsn, "CREATE TABLE keep (id integer PRIMARY KEY, v text)")
    psql(c.writer_dsn, "INSERT INTO keep SELECT 1, 'x' UNION ALL SELECT 2, 'y'")
    psql(c.writer_dsn, "UPDATE keep SET v = 'z' WHERE id = 2")
    c.launcher.stop_all()
    c.start()
    out = psql(c.writer_dsn, "SELECT id, v FROM keep ORDER BY id")
    assert out.stdout.split() == ["1|x", "2|z"]
    out = wait_for(lambda: psql(c.reader_dsn, "SELECT count(*) FROM keep", check=False).stdout.strip() == "2", 5)
    assert out
