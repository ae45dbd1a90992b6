"""Interrupting statements in the engine (engine/interrupts.py) and the hashed semi-joins
that keep correlated EXISTS / IN from rescanning the inner table per outer row
(engine/semijoin.py)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from conftest import new_db, one, run

from engine import errors
from engine.interrupts import Interrupts, timeout_seconds

LONG = "select count(*) from generate_series(1, 200000000)"


def test_timeout_seconds_parses_duration_gucs() -> None:
    assert timeout_seconds("0") == 0
    assert timeout_seconds("250") == pytest.approx(0.25)  # bare number: milliseconds
    assert timeout_seconds("1.5s") == pytest.approx(1.5)
    assert timeout_seconds("2 min") == pytest.approx(120)
    assert timeout_seconds("100ms") == pytest.approx(0.1)
    assert timeout_seconds("garbage") == 0


def test_cancel_only_hits_the_statement_running_when_it_arrives() -> None:
    intr = Interrupts()
    assert intr.request_cancel() is None  # between statements: nothing to cancel
    intr.begin("0")
    intr.check()  # the earlier request does not carry over
    marked = intr.request_cancel()
    assert marked == intr.stmt
    with pytest.raises(errors.QueryCanceled, match="due to user request"):
        intr.check()
    intr.end()
    intr.begin("0")
    intr.request_cancel()
    intr.end()  # the statement ended before it saw the cancel ...
    intr.begin("0")
    intr.check()  # ... so the next one runs


@pytest.mark.parametrize("sql", [
    LONG,
    "select count(*) from generate_series(1, 5000) a, generate_series(1, 5000) b where a = -b",
    "with recursive t(n) as (select 1 union all select n + 1 from t) select count(*) from t",
    "select count(*) from (select generate_series(1, 100000000)) s",
])
def test_statement_timeout_stops_cpu_bound_statements(arun, sql: str) -> None:
    async def main() -> None:
        s = (await new_db()).session("postgres", "postgres", {})
        await run(s, "set statement_timeout = '300ms'")
        t0 = time.monotonic()
        with pytest.raises(errors.QueryCanceled) as ei:
            await run(s, sql)
        assert ei.value.sqlstate == "57014"
        assert ei.value.message == "canceling statement due to statement timeout"
        assert 0.29 < time.monotonic() - t0 < 1.5
        assert (await one(s, "select 1")).rows == [(1,)]

    arun(main())


def test_cancel_from_another_thread_stops_a_running_scan(arun) -> None:
    async def main() -> None:
        db = await new_db()
        s = db.session("postgres", "postgres", {})
        await run(s, "create table big (a int)")
        await run(s, "insert into big select g from generate_series(1, 3000) g")
        # the thread plays the instance's cancel thread: it only flips the flag
        timer = threading.Timer(0.3, s.interrupts.request_cancel)
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(errors.QueryCanceled, match="due to user request"):
            await run(s, "select count(*) from big a, big b where a.a + b.a < 0")
        assert time.monotonic() - t0 < 1.5
        timer.join()
        assert (await one(s, "select count(*) from big")).rows == [(3000,)]

    arun(main())


def test_gone_client_ends_the_statement(arun) -> None:
    async def main() -> None:
        s = (await new_db()).session("postgres", "postgres", {})
        s.interrupts.probe = lambda: True  # the pg-wire layer sets a socket probe here
        t0 = time.monotonic()
        with pytest.raises(errors.SqlError) as ei:
            await run(s, LONG)
        assert ei.value.sqlstate == "08006" and ei.value.severity == "FATAL"
        assert time.monotonic() - t0 < 2

    arun(main())


SETUP = [
    "create table tk (unique1 int, unique2 int, ten int, hundred int, thousand int, s text)",
    "insert into tk select g, (g * 7919) % 600, g % 10, g % 100, g % 1000, "
    "case when g % 13 = 0 then null else 'v' || (g % 17) end from generate_series(0, 599) g",
    "insert into tk values (null, null, null, null, null, null), (5000, null, 3, null, 7, 'v3')",
    "create table sm (a int, b int, c text)",
    "insert into sm values (1, 1, 'v1'), (2, null, 'v2'), (null, 3, null), (4, 4, 'v4'), (7, 70, 'v7'), (7, 71, null)",
]
# Each query with a subquery the semi-join takes; "offset 0" in the subquery keeps the
# per-row evaluation, which gives the reference answer.
SEMI = [
    "select count(*) from tk t where exists(select 1 from tk k where k.unique1 = t.unique2 {o})",
    "select count(*) from tk t where (exists(select 1 from tk k where k.unique1 = t.unique2 {o}) or ten < 0)",
    "select count(*) from tk t where not exists(select 1 from tk k where k.unique1 = t.unique2 and k.ten = 3 {o})",
    "select count(*) from tk t where exists(select 1 from tk k where k.hundred = t.ten and k.thousand = t.hundred {o})",
    "select count(*) from tk a where exists (select 1 from tk c where a.hundred = c.hundred and a.ten > 5 {o})",
    "select count(*) from tk t where exists(select 1 from tk k where k.unique1 = t.unique2 and k.s = t.s {o})",
    "select a, b, a in (select b from sm s2 where s2.a = s1.a {o}) from sm s1 order by 1, 2",
    "select a, b, b not in (select b from sm s2 where s2.a = s1.a {o}) from sm s1 order by 1, 2",
    "select a, b, b in (select s2.b from sm s2 where s2.a = s1.a and s1.b > 2 {o}) from sm s1 order by 1, 2",
    "select a, c, c in (select c from sm s2 where s2.a = s1.a {o}) from sm s1 order by 1, 2",
    "select a, b in (select b from sm {o}), b not in (select b from sm {o}), a in (select a from sm where a > 100 {o}),"
    " null::int in (select a from sm where a > 100 {o}) from sm order by 1, 2",
    "select count(*) from tk t where t.unique2 in (select k.unique1 from tk k where k.ten = t.ten {o})",
    "select count(*) from tk t where t.unique2 not in (select k.unique1 from tk k where k.ten = t.ten {o})",
    "select count(*) from tk t where t.thousand in (select k.unique1 + 1 from tk k where k.hundred = t.hundred "
    "and k.ten < 5 {o})",
]


def test_semijoins_give_the_per_row_answers(arun) -> None:
    async def main() -> None:
        s = (await new_db()).session("postgres", "postgres", {})
        for sql in SETUP:
            await run(s, sql)
        for q in SEMI:
            t0 = time.monotonic()
            fast = (await one(s, q.format(o=""))).rows
            took = time.monotonic() - t0
            slow = (await one(s, q.format(o="offset 0"))).rows
            assert fast == slow, q
            assert took < 1.0, f"{took:.2f} s: {q}"
        # checked on PostgreSQL 15
        assert (await one(s, SEMI[0].format(o=""))).rows == [(600,)]
        assert (await one(s, SEMI[7].format(o=""))).rows == [
            (1, 1, False), (2, None, None), (4, 4, False), (7, 70, False), (7, 71, False), (None, 3, True)]

    arun(main())


def test_nested_exists_over_a_join_is_fast(arun) -> None:
    """pg_regress subselect.sql's nested EXISTS: 10k outer rows x 10k inner rows per level
    would take hours evaluated per row."""
    async def main() -> None:
        s = (await new_db()).session("postgres", "postgres", {})
        await run(s, "create table t10 (thousand int, hundred int)")
        await run(s, "insert into t10 select g % 1000, g % 100 from generate_series(0, 9999) g")
        t0 = time.monotonic()
        res = await one(s, "select a.thousand from t10 a, t10 b where a.thousand = b.thousand "
                           "and exists (select 1 from t10 c where b.hundred = c.hundred "
                           "and not exists (select 1 from t10 d where a.thousand = d.thousand))")
        assert res.rows == []
        assert time.monotonic() - t0 < 5

    arun(main())


def test_long_statements_on_one_loop_leave_it_free_after_cancel(arun) -> None:
    """A canceled statement gives the event loop back: a task waiting on it runs next."""
    async def main() -> None:
        db = await new_db()
        s = db.session("postgres", "postgres", {})
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        task = asyncio.ensure_future(ticker())
        await asyncio.sleep(0.05)
        threading.Timer(0.3, s.interrupts.request_cancel).start()
        with pytest.raises(errors.QueryCanceled):
            await run(s, LONG)
        stopped = time.monotonic()
        await asyncio.sleep(0.05)
        task.cancel()
        assert any(t >= stopped for t in ticks)

    arun(main())
