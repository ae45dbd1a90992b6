"""In-place promotion (server/promote.py) on a real cluster: make_cluster(readers=2).

* kill -9 of the writer under the transfer load of tests/test_failover.py: the manager
  promotes the tier-0 reader i2 in place -- same pid, no table dropped from the cache it
  had warmed --, no acknowledged transfer is lost, the total is unchanged, and what the
  promoted writer serves from its kept cache equals what a reader loads from storage;
  a session that was mid-transaction on i2 gets FATAL 57P01 and a new session on i2 is a
  writer session (pg_is_in_recovery() false, writes allowed, same instance name).
* with BOREALIS_PROMOTE_IN_PLACE=0 the manager takes the restart path: new pid, same
  guarantees.
"""

from __future__ import annotations

import asyncio
import struct
import threading

import asyncpg
import psycopg
import pytest

from tests.cluster import wait_for
from tests.test_failover import _check_consistent, _run_load_around, _setup_accounts


def _states(c) -> dict[str, dict]:
    return {i["name"]: i for i in c.status()["instances"]}


async def _fetch(dsn: str, sql: str) -> list[tuple]:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


def _warm(dsn: str) -> None:
    """Load the transfer tables into a reader's cache by reading them there (once the
    reader has applied their CREATE TABLE)."""
    def loaded() -> bool:
        try:
            return asyncio.run(_fetch(dsn, "SELECT count(*) FROM accounts")) == [(20,)] and \
                asyncio.run(_fetch(dsn, "SELECT count(*) FROM ledger")) == [(0,)]
        except asyncpg.UndefinedTableError:
            return False

    wait_for(loaded, 10, "the reader to see the new tables")


def test_kill_writer_promotes_tier0_reader_in_place(make_cluster) -> None:
    c = make_cluster(readers=2)
    with c.launcher.editing() as conf:
        conf.instance("i2").tier = 0  # the failover target
    asyncio.run(_setup_accounts(c.writer_dsn))
    i2_dsn = c.instance_dsn("i2")
    _warm(i2_dsn)
    warm = set(_states(c)["i2"]["cached_tables"])
    assert warm, "reading on i2 cached nothing"
    pid = c.launcher.pid("i2")

    # a session on i2 in the middle of a (read-only) transaction when the promotion comes
    held = psycopg.connect(i2_dsn, autocommit=False)
    assert held.execute("SELECT count(*) FROM accounts").fetchone() == (20,)
    assert held.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS

    # and one asleep in pg_sleep: promotion must wake it, not leave it (and its snapshot
    # pin) in place for ten minutes
    sleeper_err: list[BaseException] = []

    def sleep_on_i2() -> None:
        with psycopg.connect(i2_dsn, autocommit=True) as s:
            try:
                s.execute("SELECT pg_sleep(600)")
            except psycopg.Error as e:
                sleeper_err.append(e)

    sleeper = threading.Thread(target=sleep_on_i2, daemon=True)
    sleeper.start()

    load, t_kill, t_first = asyncio.run(_run_load_around(c.writer_dsn, lambda: c.kill("i1", 9)))
    print(f"\nin-place failover: kill -9 -> first commit {t_first - t_kill:.2f} s; "
          f"{len(load.acked)} transfers acked; client errors {dict(load.errors)}")
    assert len(load.acked) > 30, f"the load did not get going: {dict(load.errors)}"
    ev = c.status()["manager"]["events"][-1]
    print(f"manager event: {ev}")
    assert (ev["kind"], ev["from"], ev["to"], ev["ok"], ev["in_place"]) == ("failover", "i1", "i2", True, True)
    assert ev["promotion"]["dropped_tables"] == []
    assert c.launcher.pid("i2") == pid, "i2 was restarted instead of promoted in place"
    st = _states(c)["i2"]
    assert (st["role"], st["state"], st["pid"]) == ("writer", "available", pid)
    assert warm <= set(st["cached_tables"])
    asyncio.run(_check_consistent(c.writer_dsn, load.acked))

    sleeper.join(10)
    assert not sleeper.is_alive(), "a reader session in pg_sleep outlived the promotion"
    assert sleeper_err and "terminating connection" in str(sleeper_err[0]), sleeper_err

    # the held reader session was ended with 57P01, not left wedged
    with pytest.raises(psycopg.OperationalError) as err:
        held.execute("SELECT count(*) FROM accounts").fetchone()
    assert "terminating connection" in str(err.value) or err.value.sqlstate == "57P01", err.value
    held.close()

    # a new session on i2 is a writer session
    with psycopg.connect(i2_dsn, autocommit=True) as s:
        assert s.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
        assert s.execute("SHOW borealis.instance").fetchone() == ("i2",)
        s.execute("UPDATE accounts SET balance = balance WHERE id = 0")

    # the kept cache equals the volume: i3 reloads from storage after re-subscribing to i2
    def i3_caught_up() -> bool:
        s = _states(c)
        return s["i3"]["state"] == "available" and s["i3"]["applied_lsn"] == s["i2"]["applied_lsn"]

    wait_for(i3_caught_up, 20, "i3 to follow the new writer")
    for sql in ("SELECT id, balance FROM accounts ORDER BY id", "SELECT id, a, b, amount FROM ledger ORDER BY id"):
        on_writer = asyncio.run(_fetch(c.writer_dsn, sql))
        on_i3 = asyncio.run(_fetch(c.instance_dsn("i3"), sql))
        assert on_writer == on_i3, f"the promoted cache differs from storage for {sql!r}"

    # the old writer rejoins as a reader and sees every acknowledged transfer
    assert "i1" in c.start()
    assert _states(c)["i1"]["role"] == "reader"

    def i1_has_all() -> bool:
        ids = {r[0] for r in asyncio.run(_fetch(c.instance_dsn("i1"), "SELECT id FROM ledger"))}
        return set(load.acked) <= ids

    wait_for(i1_has_all, 20, "i1 (reader) to see every acked transfer")


def test_restart_fallback_when_in_place_promotion_is_off(make_cluster, monkeypatch) -> None:
    monkeypatch.setenv("BOREALIS_PROMOTE_IN_PLACE", "0")  # inherited by the manager
    c = make_cluster(readers=1)
    asyncio.run(_setup_accounts(c.writer_dsn))
    pid = c.launcher.pid("i2")
    load, t_kill, t_first = asyncio.run(_run_load_around(c.writer_dsn, lambda: c.kill("i1", 9)))
    print(f"\nrestart failover: kill -9 -> first commit {t_first - t_kill:.2f} s")
    ev = c.status()["manager"]["events"][-1]
    assert (ev["kind"], ev["to"], ev["ok"], ev["in_place"]) == ("failover", "i2", True, False)
    assert c.launcher.pid("i2") != pid
    asyncio.run(_check_consistent(c.writer_dsn, load.acked))


@pytest.mark.parametrize("untrusted", [False, True], ids=["missed", "buffered-other-txid"])
def test_promotion_reads_back_commits_the_reader_missed(make_cluster, untrusted: bool) -> None:
    """The read-back path of ``commits_to_apply``, in this process: a ReaderVolume follows
    the redo stream, caches a table, stops following; three more commits change that table
    (update, delete, insert); the writer is killed; recovery, read-back and ``settle_at``
    must leave the cached table equal to a fresh load from storage at the recovered VDL.
    ``untrusted``: the reader also holds, at the LSN of the first of those commits, a
    buffered commit of another transaction (what a writer truncated by recovery had sent)
    that deletes rows of a second cached table: neither version may be trusted, so both
    tables leave the cache, and reloaded they equal storage."""
    from engine import codec
    from engine.catalog import CATALOG_TABLE, Catalog
    from server.admin import RedoSubscriber
    from server.config import ClusterConf
    from server.promote import _chain, commits_to_apply
    from server.volume import ReaderVolume, recover_volume
    from storage.records import COMMIT, CONTROL_PG, DELETE, LogRecord

    c = make_cluster(readers=1)
    c.kill("manager", 15)  # no automatic failover: this test promotes by hand
    wait_for(lambda: c.launcher.pid("manager") is None, 10, "the manager to stop")

    async def sql(*stmts: str) -> None:
        conn = await asyncpg.connect(c.writer_dsn)
        try:
            for s in stmts:
                await conn.execute(s)
        finally:
            await conn.close()

    asyncio.run(sql("CREATE TABLE promo_t (id integer PRIMARY KEY, v text)",
                    "INSERT INTO promo_t SELECT g, 'v' || g FROM generate_series(1, 200) g",
                    "CREATE TABLE promo_u (id integer PRIMARY KEY)",
                    "INSERT INTO promo_u SELECT g FROM generate_series(1, 20) g"))

    async def scenario() -> None:
        conf = ClusterConf.load(c.data_dir)
        rv = ReaderVolume(conf, codec, data_dir=str(c.data_dir))
        await rv.start()
        sub = RedoSubscriber("probe", str(c.data_dir), rv)
        sub.start()
        tid = None
        for _ in range(100):
            if sub.connected:
                rv.tables.pop(CATALOG_TABLE, None)  # re-read the catalog at the applied point
                await rv.ensure_loaded([CATALOG_TABLE])
                cat = Catalog.from_rows(rv.scan(CATALOG_TABLE, rv.snapshot()))
                tid = next((td.table_id for name, td in cat.tables.items() if name.endswith("promo_t")), None)
                uid = next((td.table_id for name, td in cat.tables.items() if name.endswith("promo_u")), None)
                if tid is not None and uid is not None:
                    break
            await asyncio.sleep(0.1)
        assert tid is not None and uid is not None, "the probe reader never saw promo_t and promo_u"
        await rv.ensure_loaded([tid, uid])
        assert len(list(rv.scan(tid, rv.snapshot()))) == 200
        assert len(list(rv.scan(uid, rv.snapshot()))) == 20
        sub.stop()
        applied = rv.snapshot()
        await sql("UPDATE promo_t SET v = 'updated' WHERE id <= 50",
                  "DELETE FROM promo_t WHERE id > 150",
                  "INSERT INTO promo_t SELECT g, 'new' FROM generate_series(301, 310) g")
        await asyncio.get_running_loop().run_in_executor(None, c.kill, "i1", 9)
        rv.stop()
        rec, _sets = await recover_volume(rv.nodes, conf, rv.pgs)
        assert rec.vdl > applied
        if untrusted:
            on_storage = [r for r in await _chain(rv.nodes, rec, CONTROL_PG, applied) if r.kind == COMMIT]
            first = min(r.lsn for r in on_storage)
            ukeys = [k for k, _ in rv.scan(uid, rv.snapshot())][:5]
            fake = [LogRecord.make(first - 1 - i, 1, 0, 10 ** 9, DELETE, struct.pack(">I", uid) + k, b"", 1)
                    for i, k in enumerate(ukeys)]
            rv._ready.append((first, fake))  # as the redo stream would have buffered it
        extra, drop, from_buffer, from_storage = await commits_to_apply(rv, rec)
        want_drop = {tid, uid} if untrusted else set()
        assert (from_buffer, from_storage, drop) == (0, 3, want_drop), (from_buffer, from_storage, drop)
        dropped = rv.settle_at(rec.vdl, extra, drop)
        assert set(dropped) == want_drop
        if untrusted:  # reloaded from storage at the recovered VDL
            await rv.ensure_loaded([tid, uid])
            assert len(dict(rv.scan(uid, rec.vdl))) == 20, "the untrusted buffered deletes were applied"
        got = dict(rv.scan(tid, rec.vdl))

        fresh = ReaderVolume(conf, codec, data_dir=str(c.data_dir))
        await fresh.start()
        fresh.stop()
        fresh._vdl = rec.vdl
        fresh.durable_tails = dict(rec.tails)
        await fresh.ensure_loaded([tid])
        want = dict(fresh.scan(tid, rec.vdl))
        for n in rv.nodes + fresh.nodes:
            n.close()
        assert len(want) == 160 and sum(1 for r in want.values() if r[1] == "updated") == 50
        assert got == want, "the cache after read-back differs from storage"

    asyncio.run(scenario())


def test_choose_target_prefers_a_reader_already_promoted() -> None:
    """A reader of cluster.json that reports role writer finished an in-place promotion the
    manager did not record (it stopped meanwhile): it is taken again, not a second reader,
    whose promotion would fence it."""
    from server.config import InstanceConf
    from server.manager import choose_target
    from server.replication import InstanceState

    def inst(name: str, tier: int) -> InstanceConf:
        return InstanceConf(name=name, role="reader", port=1, admin_port=2, tier=tier)

    def st(name: str, role: str, lsn: int, state: str = "available") -> InstanceState:
        return InstanceState(req=0, name=name, role=role, state=state, applied_lsn=lsn, lag_ms=0.0, vcl=lsn,
                             vdl=lsn, epoch=1, connections=0, pid=1)

    a, b, c = inst("a", 0), inst("b", 1), inst("c", 1)
    assert choose_target([(a, st("a", "reader", 5)), (b, st("b", "reader", 9))]) is a  # tier first
    assert choose_target([(b, st("b", "reader", 5)), (c, st("c", "reader", 9))]) is c  # then applied LSN
    assert choose_target([(a, st("a", "reader", 9)), (b, st("b", "writer", 1))]) is b  # already promoted
    assert choose_target([(a, None), (b, st("b", "reader", 1, "starting"))]) is None
