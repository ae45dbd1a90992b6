"""Runtime context handed to every compiled expression and plan operator.

Compiled expressions are closures ``f(row, ctx)``; operators are generators
``op.rows(ctx)``.  ``ExecCtx`` carries what varies per execution (parameters, snapshot,
transaction, the stack of outer rows for correlated subqueries), so plans are reusable.
"""

from __future__ import annotations

from typing import Any

from engine.api import SleepNeeded


class ExecCtx:
    __slots__ = ("params", "outer", "session", "txn", "snapshot", "db", "subq", "now", "catalog", "store",
                 "sleeps_done", "sleeps_seen", "pcache")

    def __init__(self, session: Any, txn: Any, snapshot: int, params: list[Any] | tuple = ()) -> None:
        self.session = session
        self.txn = txn
        self.snapshot = snapshot
        self.params = params
        self.outer: list[tuple] = []
        self.db = session.db if session is not None else None
        self.subq: dict[int, Any] = {}
        self.now = txn.start_time if txn is not None else None
        self.catalog = None
        self.store = self.db.store if self.db is not None else None
        self.sleeps_done = 0  # pg_sleep calls of this statement already slept (see api.SleepNeeded)
        self.sleeps_seen = 0
        self.pcache: dict[int, tuple[int, Any]] = {}  # parameter index -> (type oid, coerced value)

    def sleep(self, seconds: float | None) -> None:
        """pg_sleep: the n-th call of a run either was slept already or asks for the sleep."""
        n = self.sleeps_seen
        self.sleeps_seen = n + 1
        if n >= self.sleeps_done and seconds is not None and seconds > 0:
            raise SleepNeeded(float(seconds))
