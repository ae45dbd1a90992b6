"""Failover and endpoints on a real cluster (make_cluster(readers=2): i1 writer, i2, i3).

* kill -9 the writer under a transfer load from several asyncpg clients through the writer
  endpoint: the manager promotes a reader in place (same process); no acknowledged transfer is lost, every account
  balance matches the ledger, the total is unchanged, and the time from the kill to the
  first successful commit through the writer endpoint is printed and bounded; the old
  writer rejoins as a reader after ``start()``; a planned ``borealis failover --target``
  under the same load loses nothing either.
* endpoints follow the cluster: a reader added at runtime gets reader-endpoint
  connections, 60 connections spread evenly over 3 readers, a custom endpoint of 2 of 3
  readers never routes elsewhere, endpoint changes keep established connections.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

import asyncpg

from server.launcher import accepts, free_ports

ACCOUNTS = 20
START_BALANCE = 1000
WORKERS = 4
MAX_FAILOVER_SECONDS = 10.0


def borealis(data_dir, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server.cli", *args, "--data-dir", str(data_dir)],
                          capture_output=True, text=True, timeout=120)


@dataclass
class Load:
    dsn: str
    acked: list[int] = field(default_factory=list)
    commits_at: list[float] = field(default_factory=list)  # monotonic time of every acked commit
    errors: Counter = field(default_factory=Counter)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    next_id: int = 0

    async def worker(self, seed: int) -> None:
        rnd = random.Random(seed)
        conn = None
        while not self.stop.is_set():
            try:
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(self.dsn, timeout=3)
                a, b = sorted(rnd.sample(range(ACCOUNTS), 2))
                amount = rnd.randint(1, 50)
                if rnd.random() < 0.5:
                    amount = -amount
                self.next_id += 1
                tid = self.next_id
                async with conn.transaction():
                    await conn.execute("UPDATE accounts SET balance = balance - $1 WHERE id = $2", amount, a)
                    await conn.execute("UPDATE accounts SET balance = balance + $1 WHERE id = $2", amount, b)
                    await conn.execute("INSERT INTO ledger VALUES ($1, $2, $3, $4)", tid, a, b, amount)
                self.acked.append(tid)
                self.commits_at.append(time.monotonic())
            except (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
                self.errors[type(e).__name__] += 1
                if conn is not None and not conn.is_closed():
                    if not isinstance(e, asyncpg.PostgresError):
                        conn.terminate()
                        conn = None
                await asyncio.sleep(0.05)
        if conn is not None:
            conn.terminate()


async def _setup_accounts(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE accounts (id integer PRIMARY KEY, balance bigint)")
    await conn.execute("CREATE TABLE ledger (id bigint PRIMARY KEY, a integer, b integer, amount bigint)")
    for k in range(ACCOUNTS):
        await conn.execute("INSERT INTO accounts VALUES ($1, $2)", k, START_BALANCE)
    await conn.close()


async def _check_consistent(dsn: str, acked: list[int]) -> None:
    conn = await asyncpg.connect(dsn)
    balances = {r["id"]: r["balance"] for r in await conn.fetch("SELECT id, balance FROM accounts")}
    ledger = await conn.fetch("SELECT id, a, b, amount FROM ledger")
    await conn.close()
    assert sum(balances.values()) == ACCOUNTS * START_BALANCE, "money was created or destroyed"
    missing = set(acked) - {r["id"] for r in ledger}
    assert not missing, f"{len(missing)} acknowledged transfers lost, e.g. {sorted(missing)[:5]}"
    expected = {k: START_BALANCE for k in range(ACCOUNTS)}
    for r in ledger:
        expected[r["a"]] -= r["amount"]
        expected[r["b"]] += r["amount"]
    assert balances == expected, "balances do not match the ledger: a transfer was half applied"


async def _show_instance(dsn: str) -> str:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        return await conn.fetchval("SHOW borealis.instance")
    finally:
        await conn.close()


async def _run_load_around(dsn: str, action, settle: float = 1.5) -> tuple[Load, float, float]:
    """Run the load, call ``action`` (blocking, in a thread) after 1.5 s, and keep the load
    going until one commit after the action plus ``settle`` s.  Returns the load, the
    moment the action started and the first commit after it (monotonic)."""
    load = Load(dsn)
    tasks = [asyncio.create_task(load.worker(w)) for w in range(WORKERS)]
    await asyncio.sleep(1.5)
    t_action = time.monotonic()
    await asyncio.get_running_loop().run_in_executor(None, action)
    t_done = time.monotonic()  # commits acked before this may have raced the action
    deadline = t_action + 30
    while not any(t > t_done for t in load.commits_at) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    after = [t for t in load.commits_at if t > t_done]
    await asyncio.sleep(settle)
    load.stop.set()
    await asyncio.gather(*tasks)
    return load, t_action, (after[0] if after else float("inf"))


def _wait(pred, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_writer_killed_failover_then_rejoin_then_planned_switchover(make_cluster):
    c = make_cluster(readers=2)
    asyncio.run(_setup_accounts(c.writer_dsn))

    # --- unplanned: kill -9 the writer under load -------------------------------------
    pids = {n: c.launcher.pid(n) for n in ("i2", "i3")}
    load, t_kill, t_first = asyncio.run(_run_load_around(c.writer_dsn, lambda: c.kill("i1", 9)))
    failover_s = t_first - t_kill
    print(f"\nfailover (kill -9 -> first commit through the writer endpoint): {failover_s:.2f} s; "
          f"{len(load.acked)} transfers acked; client errors {dict(load.errors)}")
    assert len(load.acked) > 30, f"the load did not get going: {dict(load.errors)}"
    assert failover_s <= MAX_FAILOVER_SECONDS
    asyncio.run(_check_consistent(c.writer_dsn, load.acked))
    new_writer = asyncio.run(_show_instance(c.writer_dsn))
    assert new_writer in ("i2", "i3")
    st = c.status()
    ev = st["manager"]["events"][-1]
    assert (ev["kind"], ev["from"], ev["to"], ev["ok"]) == ("failover", "i1", new_writer, True)
    print(f"manager: decision -> new writer serving in {ev['seconds']} s")
    # promoted in place (server.promote): the same process, not a restart
    assert ev["in_place"] is True, ev
    assert c.launcher.pid(new_writer) == pids[new_writer]
    roles = {i["name"]: i["role"] for i in st["instances"]}
    assert roles == {"i1": "reader", new_writer: "writer", ({"i2", "i3"} - {new_writer}).pop(): "reader"}
    assert [e["members"] for e in st["endpoints"] if e["name"] == "writer"] == [[new_writer]]

    # --- the old writer comes back as a reader and serves the data --------------------
    assert "i1" in c.start()
    st = c.status()
    i1 = next(i for i in st["instances"] if i["name"] == "i1")
    assert (i1["role"], i1["state"]) == ("reader", "available")
    async def i1_sees_all() -> bool:
        conn = await asyncpg.connect(c.launcher.dsn("i1"))
        try:
            return set(load.acked) <= {r["id"] for r in await conn.fetch("SELECT id FROM ledger")}
        finally:
            await conn.close()

    _wait(lambda: asyncio.run(i1_sees_all()), 10, "i1 (reader) to see every acked transfer")

    # --- planned switchover back to i1 under load -------------------------------------
    def switchover() -> None:
        r = borealis(c.data_dir, "failover", "--target", "i1")
        assert r.returncode == 0, r.stdout + r.stderr

    i1_pid = c.launcher.pid("i1")
    load2, t_sw, t_first2 = asyncio.run(_run_load_around(c.writer_dsn, switchover))
    print(f"planned switchover (command start -> first commit after it): {t_first2 - t_sw:.2f} s; "
          f"{len(load2.acked)} transfers acked")
    assert asyncio.run(_show_instance(c.writer_dsn)) == "i1"
    asyncio.run(_check_consistent(c.writer_dsn, load.acked + load2.acked))
    ev = c.status()["manager"]["events"][-1]
    assert (ev["kind"], ev["from"], ev["to"], ev["ok"], ev["in_place"]) == ("switchover", new_writer, "i1", True, True)
    assert c.launcher.pid("i1") == i1_pid
    # the old writer of the switchover is back, as a reader
    assert _wait(lambda: c.launcher.pid(new_writer), 10, f"{new_writer} restarted")
    st = c.status()
    assert {i["name"]: i["role"] for i in st["instances"]}[new_writer] == "reader"


def test_endpoints_follow_the_cluster(make_cluster, monkeypatch):
    # Relay mode: per-backend open-connection counts and least_connections need the proxy in
    # the data path (with socket hand-off the proxy never sees a connection close).
    monkeypatch.setenv("BOREALIS_HANDOFF", "0")
    c = make_cluster(readers=2)
    d = c.data_dir
    host = c.launcher.conf.host

    async def held(dsn: str, n: int) -> tuple[list[asyncpg.Connection], Counter]:
        conns = [await asyncpg.connect(dsn) for _ in range(n)]
        names = Counter([await k.fetchval("SHOW borealis.instance") for k in conns])
        return conns, names

    async def scenario() -> None:
        loop = asyncio.get_running_loop()

        def cli(*args: str) -> str:
            r = borealis(d, *args)
            assert r.returncode == 0, r.stdout + r.stderr
            return r.stdout

        # an established reader-endpoint connection survives every change below
        survivor = await asyncpg.connect(c.reader_dsn)
        first = await survivor.fetchval("SHOW borealis.instance")

        # a reader added at runtime (no restart of anything else)
        proxy_pid = c.launcher.pid("endpoints")
        await loop.run_in_executor(None, cli, "instance", "add", "i4", "--tier", "0")
        assert c.launcher.pid("endpoints") == proxy_pid
        assert await _show_instance(c.launcher.dsn("i4")) == "i4"  # its own instance endpoint

        conns, names = await held(c.reader_dsn, 60)
        print(f"\n60 reader-endpoint connections: {dict(names)}")
        assert set(names) == {"i2", "i3", "i4"}
        assert all(18 <= v <= 22 for v in names.values()), names
        await asyncio.sleep(0.6)  # the proxy's state file
        st = await loop.run_in_executor(None, c.status)
        rd = next(e for e in st["endpoints"] if e["name"] == "reader")
        assert rd["members"] == ["i2", "i3", "i4"]
        counted = Counter(rd["connections"])
        counted[first] -= 1  # the survivor
        assert +counted == +names, (rd["connections"], names)
        for k in conns:
            await k.close()

        # a custom endpoint of 2 of the 3 readers never routes elsewhere
        p_pair, p_rest = free_ports(2)
        cli("endpoint", "create", "pair", "--port", str(p_pair), "--members", "i2,i3", "--type", "reader")
        cli("endpoint", "create", "rest", "--port", str(p_rest), "--exclude", "i2", "--type", "reader")
        for p in (p_pair, p_rest):
            await loop.run_in_executor(None, _wait, lambda p=p: accepts(host, p), 5, f"endpoint port {p}")
        pair_dsn = f"postgresql://postgres@{host}:{p_pair}/postgres"
        rest_dsn = f"postgresql://postgres@{host}:{p_rest}/postgres"
        conns, names = await held(pair_dsn, 30)
        assert set(names) == {"i2", "i3"}, names
        pair_conn = conns.pop()
        for k in conns:
            await k.close()
        conns, names = await held(rest_dsn, 12)
        assert set(names) == {"i3", "i4"}, names  # i1 is the writer, i2 excluded
        for k in conns:
            await k.close()

        # least connections: hold 6 on i2 through its instance endpoint; new ones avoid it
        cli("endpoint", "modify", "reader", "--policy", "least_connections")
        pinned = [await asyncpg.connect(c.launcher.dsn("i2")) for _ in range(6)]
        await asyncio.sleep(0.3)  # the proxy reload
        conns, names = await held(c.reader_dsn, 6)
        assert names["i2"] == 0 and names["i3"] + names["i4"] == 6, names
        for k in conns + pinned:
            await k.close()

        # deleting / moving endpoints keeps their established connections
        cli("endpoint", "delete", "pair")
        await loop.run_in_executor(None, _wait, lambda: not accepts(host, p_pair), 5, "pair's port closed")
        assert await pair_conn.fetchval("SELECT 1") == 1
        await pair_conn.close()
        listing = json.loads(cli("endpoint", "list", "--json"))
        assert {e["name"] for e in listing} == {"writer", "reader", "i1", "i2", "i3", "i4", "rest"}

        # removing the added reader: it leaves the reader endpoint
        cli("instance", "remove", "i4")
        conns, names = await held(c.reader_dsn, 6)
        assert set(names) == {"i2", "i3"}, names
        for k in conns:
            await k.close()
        assert await survivor.fetchval("SELECT 2") == 2
        await survivor.close()

    asyncio.run(scenario())
