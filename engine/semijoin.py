"""Correlated EXISTS / IN subqueries as hashed semi-joins.

``EXISTS (SELECT ... FROM t [AS b] WHERE b.k = <outer col> AND <conditions>)`` and
``x IN (SELECT b.f FROM t b WHERE b.k = <outer col> AND <conditions>)`` would otherwise
re-run the subquery for every outer row (a scan of ``t`` each time).  When the subquery
has that shape -- one stored table, no grouping / aggregates / LIMIT / DISTINCT, and every
WHERE conjunct either

* reads only the inner table (kept in the subquery),
* is an equality ``inner column = outer column`` (a correlation key; there may be several),
* or reads no inner column at all (an *outer* condition: it can only be true or not for
  the whole subquery, e.g. a nested ``NOT EXISTS`` on an enclosing table) --

it is rewritten to an uncorrelated ``SELECT keys[, f] FROM t b WHERE <inner conditions>``
evaluated once per statement into a hash table.  Per outer row the result is then:

* EXISTS: the outer key is in the table (NULL keys never match) and the outer
  conditions are true;
* IN: among the inner rows of that key, ``x`` equals some ``f`` -> true; else NULL if ``x``
  is NULL or some ``f`` is NULL; else false (false too when the key has no rows or an outer
  condition is not true -- the subquery is empty then).

Uncorrelated ``x IN (SELECT ...)`` gets a hashed probe as well (``in_probe``).  Anything
else returns None and the caller keeps the per-row evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from engine import errors
from engine import types as T
from engine.expr import CExpr, Compiler, _subquery_rows, is_aggregate


def _conjuncts(node: exp.Expression | None) -> list[exp.Expression]:
    if node is None:
        return []
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


def _and(parts: list[exp.Expression]) -> exp.Expression | None:
    if not parts:
        return None
    cond = parts[0].copy()
    for p in parts[1:]:
        cond = exp.And(this=cond, expression=p.copy())
    return cond


def _has_subquery(node: exp.Expression) -> bool:
    return any(isinstance(n, (exp.Subquery, exp.Select, exp.Exists)) for n in node.walk() if n is not node) or \
        isinstance(node, (exp.Subquery, exp.Select, exp.Exists))


@dataclass
class _Shape:
    table: exp.Table
    keys: list[tuple[exp.Column, CExpr]]  # (inner column, compiled outer column)
    inner: list[exp.Expression]  # conjuncts on the inner table only
    outer: list[CExpr]  # compiled conjuncts that read no inner column


def _shape(cp: Compiler, sel: exp.Select) -> _Shape | None:
    if any(sel.args.get(k) for k in ("group", "having", "limit", "offset", "distinct", "joins", "with_", "order",
                                      "laterals", "windows")):
        return None
    frm = sel.args.get("from_")
    if frm is None or not isinstance(frm.this, exp.Table) or not isinstance(frm.this.this, exp.Identifier):
        return None
    planner = cp.env.planner
    td = planner.catalog.get(frm.this.name)
    if td is None or td.kind != "r" or frm.this.text("db"):
        return None
    alias = frm.this.alias_or_name
    inner_names = {c.name for c in td.columns}
    if any(isinstance(n, exp.Window) or is_aggregate(n) for e in sel.expressions for n in e.walk()):
        return None

    def is_inner(c: exp.Column) -> bool:
        return c.table == alias if c.table else c.name in inner_names

    where = sel.args.get("where")
    keys: list[tuple[exp.Column, exp.Column]] = []
    inner: list[exp.Expression] = []
    outer_nodes: list[exp.Expression] = []
    for p in _conjuncts(where.this if where is not None else None):
        cols = list(p.find_all(exp.Column))
        nested = _has_subquery(p)
        if not nested and all(is_inner(c) for c in cols):
            inner.append(p)
            continue
        if not nested and isinstance(p, exp.EQ) and isinstance(p.this, exp.Column) and isinstance(
                p.expression, exp.Column):
            a, b = p.this, p.expression
            if is_inner(a) and not is_inner(b):
                keys.append((a, b))
                continue
            if is_inner(b) and not is_inner(a):
                keys.append((b, a))
                continue
        # no column anywhere in it (nested subqueries included) may be the inner table's;
        # an unqualified name the inner table has counts as the inner table's
        if cols and not any(is_inner(c) for c in cols):
            outer_nodes.append(p)
            continue
        return None
    if not keys:
        return None
    try:
        compiled = [(ki, cp.compile(ko)) for ki, ko in keys]
        outer = [cp.compile(p) for p in outer_nodes]
    except errors.SqlError:
        return None
    return _Shape(frm.this, compiled, inner, outer)


def _comparable(a: int, b: int) -> bool:
    return a == b or (a in T.NUMERICS and b in T.NUMERICS) or (
        a in T.STRINGS and b in T.STRINGS and T.BPCHAR not in (a, b))


def _inner_plan(cp: Compiler, shape: _Shape, extra: exp.Expression | None) -> Any:
    """The uncorrelated inner query: key columns (then ``extra``), or None if not usable."""
    cols = [ki.copy() for ki, _ in shape.keys] + ([extra.copy()] if extra is not None else [])
    inner_sel = exp.Select(expressions=cols).from_(shape.table.copy())
    cond = _and(shape.inner)
    if cond is not None:
        inner_sel = inner_sel.where(cond)
    try:
        plan = cp.env.planner.plan_subquery(inner_sel, cp.scope)
    except errors.SqlError:
        return None
    if plan.correlated:
        return None
    for (_, outer), col in zip(shape.keys, plan.columns):
        if not _comparable(col.type_oid, outer.type):
            return None
    return plan


def _key_fn(shape: _Shape) -> Any:
    fos = [o.fn for _, o in shape.keys]
    if len(fos) == 1:
        return fos[0]
    return lambda r, c: tuple(f(r, c) for f in fos)


def _outer_ok(shape: _Shape) -> Any:
    fns = [o.fn for o in shape.outer]
    if not fns:
        return None
    return lambda r, c: all(f(r, c) is True for f in fns)


def try_exists_semijoin(cp: Compiler, q: exp.Expression) -> CExpr | None:
    sel = q.this if isinstance(q, exp.Subquery) else q
    if not isinstance(sel, exp.Select):
        return None
    shape = _shape(cp, sel)
    if shape is None:
        return None
    plan = _inner_plan(cp, shape, None)
    if plan is None:
        return None
    getrows = _subquery_rows(plan)
    key = ("semi", id(plan))
    nk = len(shape.keys)
    fo, ok = _key_fn(shape), _outer_ok(shape)

    def build(r: Any, c: Any) -> Any:
        if nk == 1:
            return {row[0] for row in getrows(r, c) if row[0] is not None}
        return {row for row in getrows(r, c) if None not in row}

    def run(r: Any, c: Any) -> Any:
        s = c.subq.get(key)
        if s is None:
            s = c.subq[key] = build(r, c)
        v = fo(r, c)
        if v is None or (nk > 1 and None in v) or v not in s:
            return False
        return ok is None or ok(r, c)

    return CExpr(run, T.BOOL)


def try_in_semijoin(cp: Compiler, x: CExpr, q: exp.Expression) -> CExpr | None:
    """``x IN (correlated subquery)`` as a hashed semi-join (``x`` compiled by the caller)."""
    sel = q.this if isinstance(q, exp.Subquery) else q
    if not isinstance(sel, exp.Select) or len(sel.expressions) != 1:
        return None
    item = sel.expressions[0]
    if isinstance(item, exp.Alias):
        item = item.this
    if isinstance(item, exp.Star) or _has_subquery(item):
        return None
    shape = _shape(cp, sel)
    if shape is None:
        return None
    alias = shape.table.alias_or_name
    td = cp.env.planner.catalog.get(shape.table.name)
    names = {c.name for c in td.columns}
    if any(not (c.table == alias if c.table else c.name in names) for c in item.find_all(exp.Column)):
        return None  # the selected value reads the outer query
    plan = _inner_plan(cp, shape, item)
    if plan is None:
        return None
    ftype = plan.columns[-1].type_oid
    try:
        x, _ = cp.unify(x, CExpr(lambda r, c: None, ftype))
    except errors.SqlError:
        return None  # the per-row path reports it
    if x.type != ftype and not _comparable(x.type, ftype):
        return None
    getrows = _subquery_rows(plan)
    key = ("semi-in", id(plan))
    nk = len(shape.keys)
    fo, ok, fx = _key_fn(shape), _outer_ok(shape), x.fn

    def build(r: Any, c: Any) -> dict:
        table: dict = {}
        for row in getrows(r, c):
            k = row[0] if nk == 1 else row[:nk]
            if k is None or (nk > 1 and None in k):
                continue
            ent = table.get(k)
            if ent is None:
                ent = table[k] = [set(), False, []]
            v = row[nk]
            if v is None:
                ent[1] = True
            else:
                try:
                    ent[0].add(v)
                except TypeError:  # unhashable (arrays, json): compared one by one
                    ent[2].append(v)
        return table

    def run(r: Any, c: Any) -> Any:
        table = c.subq.get(key)
        if table is None:
            table = c.subq[key] = build(r, c)
        k = fo(r, c)
        ent = None if k is None or (nk > 1 and None in k) else table.get(k)
        if ent is None or (ok is not None and not ok(r, c)):
            return False  # the subquery has no rows for this outer row
        v = fx(r, c)
        if v is None:
            return None
        try:
            if v in ent[0]:
                return True
        except TypeError:
            pass
        if any(w == v for w in ent[2]):
            return True
        return None if ent[1] else False

    return CExpr(run, T.BOOL)


def in_probe(vals: list[tuple]) -> Any:
    """For an uncorrelated ``x IN (subquery)``: (hashable values, any NULL, unhashable
    values) of the subquery's rows, built once per statement by the caller."""
    s: set = set()
    rest: list = []
    saw_null = False
    for (w,) in vals:
        if w is None:
            saw_null = True
            continue
        try:
            s.add(w)
        except TypeError:
            rest.append(w)
    return s, saw_null, rest
