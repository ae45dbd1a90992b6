"""A query that scans a table runs with the cyclic GC paused (its per-row tuples would
otherwise set off collections that walk the whole cache); a point lookup and a query
that may suspend in pg_sleep do not pause it."""

from __future__ import annotations

import gc
from typing import Any

from engine.executor import KeyLookup, Op, Plan, Project, TableScan, scans_a_table
from engine.stmtplan import _query_runner


class _Probe(Op):
    """Answers one row and records whether the GC was enabled meanwhile."""

    def __init__(self, below: Op | None) -> None:
        self.below = below  # makes the tree contain ``below``
        self.seen: list[bool] = []

    def rows(self, ctx: Any):  # noqa: ANN201
        self.seen.append(gc.isenabled())
        yield (1,)


def _scan() -> TableScan:
    return TableScan(16384, None)


def test_scanning_queries_pause_the_gc_and_others_do_not() -> None:
    assert gc.isenabled()
    scan = _Probe(Project(_scan(), []))
    assert scans_a_table(scan) and scans_a_table(Plan(Project(scan, []), []))
    run = _query_runner(Plan(scan, []))
    assert run(None) == ("SELECT 1", [(1,)], [])
    assert scan.seen == [False] and gc.isenabled()

    point = _Probe(KeyLookup(16384, [], None))
    assert not scans_a_table(point)
    _query_runner(Plan(point, []))(None)
    assert point.seen == [True]

    sleepy = _Probe(_scan())
    _query_runner(Plan(sleepy, []), sleeps=True)(None)
    assert sleepy.seen == [True] and gc.isenabled()


def test_the_gc_comes_back_when_the_query_fails() -> None:
    class _Boom(_Probe):
        def rows(self, ctx: Any):  # noqa: ANN201
            raise ZeroDivisionError
            yield  # pragma: no cover

    try:
        _query_runner(Plan(_Boom(_scan()), []))(None)
    except ZeroDivisionError:
        pass
    assert gc.isenabled()
