"""Correlated EXISTS as a hashed semi-join.

``EXISTS (SELECT ... FROM t [AS b] WHERE b.k = <outer expr> AND <conditions on b only>)``
would otherwise re-run the subquery for every outer row (a scan of ``t`` each time).  When
the subquery has exactly that shape -- one stored table, no grouping / aggregates / LIMIT /
DISTINCT, and the only references to the enclosing query are equalities with one of its
columns -- it is rewritten to an uncorrelated ``SELECT b.k FROM t b WHERE <conditions>``
evaluated once per statement into a hash set; EXISTS becomes a set membership test of the
outer value (NULL never matches).  Anything else returns None and the caller keeps the
per-row evaluation.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from engine import types as T
from engine.expr import CExpr, Compiler, _subquery_rows


def _conjuncts(node: exp.Expression | None) -> list[exp.Expression]:
    if node is None:
        return []
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return _conjuncts(node.this) + _conjuncts(node.expression)
    return [node]


def try_exists_semijoin(cp: Compiler, q: exp.Expression) -> CExpr | None:
    sel = q.this if isinstance(q, exp.Subquery) else q
    if not isinstance(sel, exp.Select):
        return None
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
    from engine.expr import is_aggregate

    if any(isinstance(n, (exp.Subquery, exp.Select, exp.Window)) for n in sel.walk() if n is not sel) or any(
            is_aggregate(n) for n in sel.walk()):
        return None

    def is_inner(c: exp.Column) -> bool:
        return c.table == alias if c.table else c.name in inner_names

    where = sel.args.get("where")
    parts = _conjuncts(where.this if where is not None else None)
    key_inner: exp.Column | None = None
    key_outer: exp.Column | None = None
    rest = []
    for p in parts:
        cols = list(p.find_all(exp.Column))
        if all(is_inner(c) for c in cols):
            rest.append(p)
            continue
        if key_inner is None and isinstance(p, exp.EQ) and isinstance(p.this, exp.Column) and isinstance(
                p.expression, exp.Column):
            a, b = p.this, p.expression
            if is_inner(a) and not is_inner(b):
                key_inner, key_outer = a, b
                continue
            if is_inner(b) and not is_inner(a):
                key_inner, key_outer = b, a
                continue
        return None
    if key_inner is None:
        return None
    # the outer side must resolve outside the subquery
    outer = cp.compile(key_outer)
    inner_sel = exp.Select(expressions=[key_inner.copy()]).from_(frm.this.copy())
    if rest:
        cond = rest[0].copy()
        for r in rest[1:]:
            cond = exp.And(this=cond, expression=r.copy())
        inner_sel = inner_sel.where(cond)
    plan = planner.plan_subquery(inner_sel, cp.scope)
    if plan.correlated:
        return None
    itype = plan.columns[0].type_oid
    if not (itype == outer.type or (itype in T.NUMERICS and outer.type in T.NUMERICS)
            or (itype in T.STRINGS and outer.type in T.STRINGS and T.BPCHAR not in (itype, outer.type))):
        return None
    getrows = _subquery_rows(plan)
    key = ("semi", id(plan))
    fo = outer.fn

    def run(r: Any, c: Any) -> Any:
        s = c.subq.get(key)
        if s is None:
            s = c.subq[key] = {row[0] for row in getrows(r, c) if row[0] is not None}
        v = fo(r, c)
        return v is not None and v in s

    return CExpr(run, T.BOOL)
