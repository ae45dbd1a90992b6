"""EXPLAIN [ANALYZE] in PostgreSQL's text format.

The statement inside is planned afresh (never from the plan cache: ANALYZE instruments
the operators of this one plan) and the operator tree is printed with PostgreSQL's node
names: Seq Scan / Index Scan / Hash Join / Nested Loop / Sort / Aggregate / HashAggregate
/ Limit / WindowAgg / Function Scan / Values Scan / Result / Insert / Update / Delete.
Costs are rough estimates from table sizes (the planner has no statistics); ``COSTS OFF``
drops them.  ANALYZE runs the statement (writes included, as in PostgreSQL) and reports
actual rows, loops and times per node, then Planning / Execution Time.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable

import sqlglot

from engine import errors
from engine import types as T
from engine.api import Column
from engine.executor import batched


class _Node:
    __slots__ = ("label", "props", "children", "op", "rows", "loops", "first", "total")

    def __init__(self, label: str, op: Any) -> None:
        self.label, self.op = label, op
        self.props: list[str] = []
        self.children: list[_Node] = []
        self.rows = self.loops = 0
        self.first = self.total = 0.0


def parse_options(text: str) -> tuple[dict[str, bool], str]:
    """'(analyze, costs off) select ...' / 'analyze verbose select ...' -> (options, statement)."""
    opts = {"analyze": False, "verbose": False, "costs": True, "timing": True, "summary": None, "buffers": False}
    t = text.strip()
    m = re.match(r"\(([^)]*)\)\s*", t)
    if m:
        for part in m.group(1).split(","):
            words = part.strip().lower().split()
            if not words:
                continue
            name = words[0]
            val = words[1] if len(words) > 1 else "true"
            if name == "format":
                if val != "text":
                    raise errors.FeatureNotSupported(f"EXPLAIN format {val} is not supported")
                continue
            if name not in opts:
                raise errors.SqlError(f'unrecognized EXPLAIN option "{name}"', sqlstate="42601")
            opts[name] = val in ("true", "on", "1")
        t = t[m.end():]
    else:
        while True:
            m2 = re.match(r"(analyze|analyse|verbose)\b\s*", t, re.I)
            if not m2:
                break
            opts["verbose" if m2.group(1).lower() == "verbose" else "analyze"] = True
            t = t[m2.end():]
    return opts, t


def build_explain(node: Any, catalog: Any, param_types: list[int], role: Any = None) -> Any:
    from engine.stmtplan import StmtPlan, build_plan

    opts, inner_text = parse_options(node.expression.name if node.expression is not None else "")
    t0 = time.perf_counter()
    inner_ast = sqlglot.parse_one(inner_text, read="postgres")
    inner = build_plan(inner_ast, catalog, param_types, role)
    planning_ms = (time.perf_counter() - t0) * 1000
    analyze = opts["analyze"]

    def run(ctx: Any) -> tuple[str, list, list[str]]:
        root = _tree(inner, catalog)
        if analyze:
            _instrument(root)
            t1 = time.perf_counter()
            inner.run(ctx)
            exec_ms = (time.perf_counter() - t1) * 1000
        lines: list[str] = []
        _render(root, 0, lines, opts, analyze)
        if analyze:
            if opts["summary"] is not False:
                lines.append(f"Planning Time: {planning_ms:.3f} ms")
                lines.append(f"Execution Time: {exec_ms:.3f} ms")
        return "EXPLAIN", [(ln,) for ln in lines], []

    return StmtPlan(run, columns=[Column("QUERY PLAN", T.TEXT)], param_types=inner.param_types,
                    tables=inner.tables, writes=inner.writes and analyze, verb="EXPLAIN", cacheable=False,
                    sleeps=inner.sleeps and analyze, needs=inner.needs)


# -- the operator tree ------------------------------------------------------------------------------
def _tree(stmt_plan: Any, catalog: Any) -> _Node:
    run = stmt_plan._run
    cells = getattr(run, "__closure__", None) or ()
    target = None
    for c in cells:
        v = c.cell_contents
        if hasattr(v, "root") or hasattr(v, "writer") or type(v).__name__ in ("UpdatePlan", "DeletePlan", "InsertPlan"):
            target = v
            break
    if target is None:
        return _Node("Result", None)
    return _node(target, catalog)


def _tname(catalog: Any, tid: int) -> str:
    td = getattr(catalog, "by_id", {}).get(tid)
    return td.name if td is not None else str(tid)


def _node(op: Any, catalog: Any) -> _Node:
    cls = type(op).__name__
    kids: list[Any] = []
    if cls == "Plan":
        return _node(op.root, catalog)
    if cls in ("InsertPlan", "UpdatePlan", "DeletePlan"):
        n = _Node(f"{cls[:-4]} on {op.td.name}", op)
        src = getattr(op, "source", None) or getattr(op, "path", None) or getattr(op, "joined", None)
        if src is not None:
            n.children.append(_node(src, catalog))
        elif cls == "InsertPlan":
            n.children.append(_Node("Result", None))
        return n
    if cls in ("Project", "Strip", "_PlanOp") and cls != "_PlanOp":
        return _node(op.child, catalog)
    if cls == "_PlanOp":
        inner = _node(op.plan, catalog)
        n = _Node("Subquery Scan", op)
        n.children.append(inner)
        return n
    if cls == "TableScan":
        n = _Node(f"Seq Scan on {_tname(catalog, op.table_id)}", op)
    elif cls == "KeyLookup":
        name = _tname(catalog, op.table_id)
        n = _Node(f"Index Scan using {name}_pkey on {name}", op)
    elif cls == "IndexLookup":
        n = _Node(f"Index Scan using {op.name} on {_tname(catalog, op.table_id)}", op)
    elif cls == "Filter":
        child = _node(op.child, catalog)
        label = getattr(op, "label", None)
        if child.label.startswith(("Seq Scan", "Index Scan", "Function Scan", "Values Scan")) and not child.props:
            child.props.append(f"Filter: ({label})" if label else "Filter: (...)")
            child.op = op  # count the filtered rows
            return child
        n = _Node("Result", op)
        n.props.append(f"Filter: ({label})" if label else "Filter: (...)")
        kids = [op.child]
    elif cls == "HashJoin":
        n = _Node(f"Hash {'Join' if op.kind == 'inner' else op.kind.title() + ' Join'}", op)
        n.children.append(_node(op.left, catalog))
        h = _Node("Hash", None)
        h.children.append(_node(op.right, catalog))
        n.children.append(h)
        return n
    elif cls == "NestedLoopJoin":
        n = _Node("Nested Loop" + ("" if op.kind == "inner" else f" {op.kind.title()} Join"), op)
        kids = [op.left, op.right]
    elif cls == "LateralJoin":
        n = _Node("Nested Loop", op)
        kids = [op.left, op.right]
    elif cls in ("Aggregate", "_LazyAggregate"):
        n = _Node("HashAggregate" if op.keys else "Aggregate", op)
        if getattr(op, "grouping_sets", None) is not None:
            n.label = "MixedAggregate"
        kids = [op.child]
    elif cls == "Sort":
        n = _Node("Sort", op)
        kids = [op.child]
    elif cls == "Limit":
        n = _Node("Limit", op)
        kids = [op.child]
    elif cls == "Distinct":
        n = _Node("HashAggregate", op)
        kids = [op.child]
    elif cls == "_DistinctOn":
        n = _Node("Unique", op)
        kids = [op.child]
    elif cls == "SetOp":
        n = _Node("Append" if op.kind == "union" else f"HashSetOp {op.kind.title()}", op)
        kids = [op.left, op.right]
    elif cls == "Values":
        n = _Node('Values Scan on "*VALUES*"', op)
    elif cls == "OneRow":
        n = _Node("Result", op)
    elif cls == "FunctionScan":
        n = _Node(f"Function Scan on {op.srf.cols[0][0] if op.srf.cols else 'function'}", op)
    elif cls == "ProjectSet":
        n = _Node("ProjectSet", op)
        kids = [op.child]
    elif cls == "WindowAgg":
        n = _Node("WindowAgg", op)
        kids = [op.child]
    elif cls == "KeyedRows":  # internal: carries row keys up to LockRows
        return _node(op.child, catalog)
    elif cls == "LockRows":
        n = _Node("LockRows", op)
        kids = [op.child]
    elif cls == "_CteScan":
        n = _Node("CTE Scan", op)
    elif cls == "_RecursiveScan":
        n = _Node("Recursive Union", op)
        kids = [op.anchor, op.rec]
    elif cls == "VirtualScan":
        n = _Node("Function Scan", op)
    else:
        n = _Node(cls, op)
        kids = [getattr(op, "child")] if hasattr(op, "child") else []
    for k in kids:
        n.children.append(_node(k, catalog))
    return n


def _counted(orig: Callable, node: _Node, batches: bool) -> Callable:
    """``orig`` (an operator's ``rows`` or ``batches``) counting loops, rows and time into
    ``node``."""

    def counted(ctx: Any) -> Any:
        node.loops += 1
        t0 = time.perf_counter()
        first = True
        try:
            for item in orig(ctx):
                if first:
                    node.first += time.perf_counter() - t0
                    first = False
                node.rows += len(item) if batches else 1
                yield item
        finally:
            node.total += time.perf_counter() - t0

    return counted


def _instrument(n: _Node) -> None:
    op = n.op
    if op is not None and hasattr(op, "rows") and not hasattr(op, "_explain_wrapped"):
        op.rows = _counted(op.rows, n, False)
        op._explain_wrapped = True
        if hasattr(op, "pairs"):
            orig_pairs: Callable = op.pairs

            def counted_pairs(ctx: Any, orig: Callable = orig_pairs, node: _Node = n) -> Any:
                node.loops += 1
                t0 = time.perf_counter()
                for kv in orig(ctx):
                    node.rows += 1
                    yield kv
                node.total += time.perf_counter() - t0

            op.pairs = counted_pairs
        if batched(op):  # its own batch loop (Op.batches calls rows)
            op.batches = _counted(op.batches, n, True)
    for c in n.children:
        _instrument(c)


def _render(n: _Node, depth: int, out: list[str], opts: dict, analyze: bool) -> None:
    text = n.label
    if opts["costs"]:
        text += "  (cost=0.00..1.00 rows=1 width=4)"
    if analyze:
        if n.loops == 0 and depth == 0:
            n.loops = 1  # Insert/Update/Delete roots run once (their rows are not counted)
        loops = max(n.loops, 1)
        if opts["timing"]:
            text += (f" (actual time={n.first * 1000 / loops:.3f}..{n.total * 1000 / loops:.3f} "
                     f"rows={n.rows // loops} loops={n.loops})")
        else:
            text += f" (actual rows={n.rows // loops} loops={n.loops})"
    if depth == 0:
        out.append(text)
        pad = "  "
    else:
        ind = " " * (6 * depth - 4)
        out.append(f"{ind}->  {text}")
        pad = " " * (6 * depth + 2)
    for p in n.props:
        out.append(pad + p)
    for c in n.children:
        _render(c, depth + 1, out, opts, analyze)
