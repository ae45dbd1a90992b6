"""Runtime context handed to every compiled expression and plan operator.

Compiled expressions are closures ``f(row, ctx)``; operators are generators
``op.rows(ctx)``.  ``ExecCtx`` carries what varies per execution (parameters, snapshot,
transaction, the stack of outer rows for correlated subqueries), so plans are reusable.
"""

from __future__ import annotations

from typing import Any

from greenlet import getcurrent

from engine import errors


class ExecCtx:
    __slots__ = ("params", "outer", "session", "txn", "snapshot", "db", "subq", "catalog", "store",
                 "pcache", "suspend")

    def __init__(self, session: Any, txn: Any, snapshot: int, params: list[Any] | tuple = ()) -> None:
        self.session = session
        self.txn = txn
        self.snapshot = snapshot
        self.params = params
        self.outer: list[tuple] = []
        self.db = session.db if session is not None else None
        self.subq: dict[int, Any] = {}
        self.catalog = None
        self.store = self.db.store if self.db is not None else None
        self.pcache: dict[int, tuple[int, Any]] = {}  # parameter index -> (type oid, coerced value)
        # The greenlet the statement runs in when its plan calls pg_sleep (``StmtPlan.sleeps``;
        # see ``EngineSession._run_suspendable``); None: run directly, it cannot sleep.
        self.suspend: Any = None

    @property
    def now(self) -> Any:
        """The transaction's start (now(), CURRENT_DATE, ...); None outside a transaction."""
        txn = self.txn
        return txn.start_time if txn is not None else None

    def sleep(self, seconds: float | None) -> None:
        """pg_sleep: suspend the statement where it is.  Its greenlet switches to the session
        with the seconds to sleep; the session sleeps on the event loop and switches back,
        so execution carries on here with the same snapshot -- or throws a cancel, timeout
        or termination in, which unwinds the executor from this point."""
        if seconds is None or not seconds > 0:
            return
        g = self.suspend
        if g is None or getcurrent() is not g:
            raise errors.FeatureNotSupported("pg_sleep is not supported in this context")
        g.parent.switch(float(seconds))
