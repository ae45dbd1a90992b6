"""The greenlet that runs a statement calling pg_sleep (engine/session.py
``EngineSession._run_suspendable``, engine/context.py ``ExecCtx.sleep``), driven directly
with a stand-in session and plan: it resumes where it slept, it is unwound (its finally
blocks run) when the wait fails, it never stays suspended, and the READ COMMITTED snapshot
is pinned only while the statement is suspended."""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from greenlet import getcurrent

from engine import errors
from engine.context import ExecCtx
from engine.session import EngineSession


class _Store:
    def __init__(self) -> None:
        self.pins: dict[int, int] = {}
        self.pin_log: list[tuple] = []
        self._txid = 100

    def new_txid(self) -> int:
        self._txid += 1
        return self._txid

    def pin(self, txid: int, snapshot: int) -> None:
        self.pins[txid] = snapshot
        self.pin_log.append(("pin", txid, snapshot))

    def unpin(self, txid: int) -> None:
        self.pins.pop(txid, None)
        self.pin_log.append(("unpin", txid))


def _session(fail_on: int | None = None, exc: BaseException | None = None) -> Any:
    """A stand-in for the session: records the sleeps asked for; the ``fail_on``-th wait
    raises ``exc`` (as a cancel or statement_timeout makes ``_interruptible`` do)."""
    slept: list[float] = []

    async def interruptible(aw: Any, timeout: float | None, which: str) -> None:
        slept.append(0)
        try:
            if len(slept) == fail_on:
                raise exc
            await aw
        finally:
            if not isinstance(aw, asyncio.Future):
                aw.close()  # the asyncio.sleep coroutine, awaited or not

    s = SimpleNamespace(store=_Store(), _interruptible=interruptible, _deadline=lambda started: None, slept=slept)
    s._run_suspendable = EngineSession._run_suspendable.__get__(s)
    return s


def _ctx(rc: bool = True) -> ExecCtx:
    txn = SimpleNamespace(start_time=dt.datetime.now(dt.timezone.utc), snapshot_per_txn=not rc, txid=None)
    return ExecCtx(None, txn, 7)


def _plan(events: list, sleeps: tuple = (0.01, 0.01)) -> Any:
    def rows(ctx: ExecCtx):
        try:
            for i, secs in enumerate(sleeps):
                events.append(("row", i))
                ctx.sleep(secs)
                yield i
        finally:
            events.append("generator closed")

    def run(ctx: ExecCtx) -> tuple[str, list, list[str]]:
        assert ctx.suspend is getcurrent()
        try:
            out = list(rows(ctx))
        finally:
            events.append("run unwound")
        return f"SELECT {len(out)}", out, []

    return SimpleNamespace(run=run)


def test_resumes_where_it_slept_with_the_snapshot_pinned_meanwhile() -> None:
    s, ctx, events = _session(), _ctx(), []
    res = asyncio.run(s._run_suspendable(_plan(events), ctx, 0.0))
    assert res == ("SELECT 2", [0, 1], [])
    assert events == [("row", 0), ("row", 1), "generator closed", "run unwound"]  # each row once
    assert len(s.slept) == 2
    txid = ctx.txn.txid
    assert s.store.pin_log == [("pin", txid, 7), ("unpin", txid)] and not s.store.pins
    assert ctx.suspend.dead


def test_no_sleep_no_pin_and_repeatable_read_keeps_its_own_pin() -> None:
    s, ctx, events = _session(), _ctx(), []
    assert asyncio.run(s._run_suspendable(_plan(events, (0, None)), ctx, 0.0))[0] == "SELECT 2"
    assert s.slept == [] and s.store.pin_log == [] and ctx.txn.txid is None
    s, ctx = _session(), _ctx(rc=False)
    assert asyncio.run(s._run_suspendable(_plan([]), ctx, 0.0))[0] == "SELECT 2"
    assert s.store.pin_log == []  # RR / SERIALIZABLE: the transaction's pin is the session's business


@pytest.mark.parametrize("exc", [
    errors.QueryCanceled("canceling statement due to user request"),
    asyncio.CancelledError(),  # the client went away / the task was cancelled
])
def test_a_failed_wait_is_thrown_into_the_statement_and_raised(exc: BaseException) -> None:
    s, ctx, events = _session(fail_on=2, exc=exc), _ctx(), []
    with pytest.raises(type(exc)) as got:
        asyncio.run(s._run_suspendable(_plan(events), ctx, 0.0))
    assert got.value is exc
    # the executor unwound from the second sleep: finally blocks ran, generators closed
    assert events == [("row", 0), ("row", 1), "generator closed", "run unwound"]
    assert ctx.suspend.dead
    assert not s.store.pins


def test_a_statement_that_swallows_the_cancel_is_still_ended() -> None:
    exc = errors.QueryCanceled("canceling statement due to statement timeout")
    s, ctx, events = _session(fail_on=1, exc=exc), _ctx(), []

    def run(c: ExecCtx) -> Any:
        try:
            c.sleep(1)
        except errors.SqlError:
            events.append("swallowed")
            c.sleep(1)  # and sleeps again: GreenletExit ends it here
        events.append("not reached")

    with pytest.raises(errors.QueryCanceled) as got:
        asyncio.run(s._run_suspendable(SimpleNamespace(run=run), ctx, 0.0))
    assert got.value is exc
    assert events == ["swallowed"] and ctx.suspend.dead


def test_errors_of_the_plan_come_out_as_from_a_direct_call() -> None:
    s, ctx = _session(), _ctx()

    def run(c: ExecCtx) -> Any:
        c.sleep(0.01)
        raise errors.DivisionByZero("division by zero")

    with pytest.raises(errors.DivisionByZero):
        asyncio.run(s._run_suspendable(SimpleNamespace(run=run), ctx, 0.0))
    assert ctx.suspend.dead and not s.store.pins


def test_sleep_outside_a_statement_greenlet() -> None:
    ctx = _ctx()
    ctx.sleep(None)  # NULL, zero, negative: no sleep at all
    ctx.sleep(0)
    ctx.sleep(-1.0)
    with pytest.raises(errors.FeatureNotSupported):
        ctx.sleep(0.5)  # a statement not marked as sleeping is never suspended


@pytest.mark.parametrize("sql, sleeps", [
    ("select 1", False),  # the direct call: no greenlet for statements without pg_sleep
    ("select * from generate_series(1, 3) g where g > 1", False),
    ("explain select pg_sleep(1)", False),  # not run
    ("select pg_sleep(1)", True),
    ("select pg_sleep_for('1 second')", True),
    ("select g from generate_series(1, 2) g where (select pg_sleep(0.1)) is null", True),
    ("select x from (select pg_sleep(1) as x) q", True),
    ("explain analyze select pg_sleep(1)", True),
])
def test_plans_are_marked_when_they_call_pg_sleep(sql: str, sleeps: bool) -> None:
    import sqlglot

    from engine.catalog import Catalog
    from engine.stmtplan import build_plan

    plan = build_plan(sqlglot.parse_one(sql, read="postgres", error_level=sqlglot.ErrorLevel.IGNORE),
                      Catalog({}, {"db"}), [])
    assert plan.sleeps is sleeps
