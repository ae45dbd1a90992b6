"""Runtime context handed to every compiled expression and plan operator.

Compiled expressions are closures ``f(row, ctx)``; operators are generators
``op.rows(ctx)``.  ``ExecCtx`` carries what varies per execution (parameters, snapshot,
transaction, the stack of outer rows for correlated subqueries), so plans are reusable.
"""

from __future__ import annotations

from typing import Any


class ExecCtx:
    __slots__ = ("params", "outer", "session", "txn", "snapshot", "db", "subq", "now", "catalog", "store")

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
