"""Query planner: sqlglot SELECT / set-operation ASTs -> ``executor.Plan``.

Steps for one SELECT: FROM (scans, joins; hash join for equi-joins) -> WHERE (a primary
key equality on a single table becomes a ``KeyLookup``) -> GROUP BY / aggregates ->
projection (+ hidden ORDER BY columns) -> DISTINCT -> ORDER BY -> LIMIT/OFFSET -> strip
hidden columns.  Expressions are compiled once here (``engine.expr``).
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from engine import clauses, errors, sysviews
from engine import types as T
from engine.api import Column
from engine.catalog import TableDef
from engine.executor import (
    Aggregate, AggSpec, Distinct, Filter, HashJoin, KeyLookup, Limit, KeyedRows, LockRows, NestedLoopJoin, OneRow, Op, Plan,
    Project, SetOp, Sort, Strip, TableScan, Values, VirtualScan, all_rows,
)
from engine.expr import CExpr, Compiler, Env, Scope, col_ref, is_aggregate, output_name
from engine.interrupts import checked, checker
from engine.privileges import Need


def conjuncts(node: exp.Expression | None) -> list[exp.Expression]:
    if node is None:
        return []
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return conjuncts(node.this) + conjuncts(node.expression)
    return [node]


def and_all(parts: list[exp.Expression]) -> exp.Expression | None:
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = exp.And(this=out, expression=p)
    return out


def has_columns(node: exp.Expression) -> bool:
    return any(True for _ in node.find_all(exp.Column, exp.Subquery, exp.Select))


def table_name(t: exp.Table) -> str:
    db = t.text("db")
    if db and db not in ("public", "pg_catalog", "information_schema"):
        raise errors.UndefinedTable(f'relation "{db}.{t.name}" does not exist')
    return t.name


def result_type(oid: int) -> int:
    return T.TEXT if oid == T.UNKNOWN else oid


def make_column(name: str, c: CExpr, table_oid: int = 0, colno: int = 0) -> Column:
    oid = result_type(c.type)
    return Column(name, oid, T.TYPE_SIZES.get(oid, -1), c.typmod, table_oid, colno)


def _star_col(i: int, q: str | None, n: str) -> exp.Column:
    """A column of a ``*`` expansion; it remembers its position, so two columns of the same
    name in one FROM item (``unnest(a, b)``, ``(SELECT 1 AS x, 2 AS x)``) stay distinct."""
    c = exp.column(n, q) if q else exp.column(n)
    c.meta["star_pos"] = i
    return c


class Planner:
    def __init__(self, catalog: Any, param_types: list[int], role: Any = None) -> None:
        self.catalog = catalog
        self.role = role  # the role the plan is for (row-level security); None: not known
        self.dml_source: Any = None  # an UPDATE / DELETE before its row-security filter was added
        self.rls_seen = False  # read a table with row-level security enabled: the plan is the role's
        self._rls_done: set[int] = set()  # the table nodes the policies' filter was put on
        self._rls_active: list[int] = []  # tables whose policies are being planned (recursion guard)
        self.env = Env(catalog, param_types, self)
        self.tables: set[int] = set()  # stored tables the statement reads
        self.ctes: list[dict[str, tuple[Any, list]]] = []  # WITH scopes, innermost last
        self.views: list[str] = []  # views being expanded (recursion guard)
        self.needs: list[Need] = []  # relation privileges the statement needs (engine.privileges)
        self.as_role: int | None = None  # inside a view: its owner, whose privileges count

    def need(self, td: TableDef, privs: str, cols: tuple[str, ...] | None = None) -> None:
        """Record a privilege the statement needs on ``td``; ``cols`` None: the columns the
        statement names (filled in by ``engine.stmtplan``), every column inside a view."""
        if self.as_role is not None:
            cols = tuple(c.name for c in td.columns)
        self.needs.append(Need(td.table_id, privs, self.as_role, cols))

    def rls_role(self) -> Any:
        """The role row security is applied for: a view's owner inside it, else the plan's."""
        if self.as_role is not None:
            from engine.catalog import RoleDef

            return self.catalog.role_by_oid.get(self.as_role) or RoleDef(self.as_role, str(self.as_role))
        if self.role is None:
            raise errors.FeatureNotSupported("row-level security is not supported in this statement")
        return self.role

    def _rls_item(self, item: exp.Table, td: TableDef) -> exp.Expression | None:
        """``(SELECT * FROM t WHERE <policies>) AS t`` in place of ``t``, or None if row
        security does not apply to the role."""
        from engine import rls

        self.rls_seen = True
        if id(item) in self._rls_done:
            return None
        qual = rls.using_qual(self.catalog, self.rls_role(), td, "r")
        if qual is None:
            return None
        inner = exp.Table(this=exp.to_identifier(td.name))
        self._rls_done.add(id(inner))
        ta = item.args.get("alias")
        alias = ta.copy() if ta is not None else exp.TableAlias(this=exp.to_identifier(item.alias_or_name))
        # (built directly: sqlglot's builder methods would copy ``inner``, whose id is the mark)
        sel = exp.Select(expressions=[exp.Star()], from_=exp.From(this=inner), where=exp.Where(this=qual))
        return exp.Subquery(this=sel, alias=alias)

    # -- WITH -------------------------------------------------------------------------------
    def push_with(self, node: exp.Expression, parent: Scope | None = None) -> bool:
        w = node.args.get("with_")
        if w is None:
            return False
        frame: dict[str, tuple[Any, list]] = {}
        self.ctes.append(frame)
        recursive = bool(w.args.get("recursive"))
        for cte in w.expressions:
            name = cte.alias_or_name
            ta = cte.args.get("alias")
            alias_cols = [c.name for c in ta.columns] if ta is not None and ta.columns else []
            body = cte.this
            if recursive and isinstance(body, exp.Union) and _refers_to(body.expression, name):
                frame[name] = self._plan_recursive(name, body, alias_cols, parent)
                continue
            if not isinstance(body, (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Values, exp.Subquery)):
                raise errors.FeatureNotSupported("data-modifying statements in WITH are not supported")
            plan = self.plan_query(body, parent)
            names = [c.name for c in plan.columns]
            names[: len(alias_cols)] = alias_cols
            cols = [(n, c.type_oid, c.type_mod) for n, c in zip(names, plan.columns)]
            frame[name] = (_CteScan(plan), cols)
        return True

    def _plan_recursive(self, name: str, body: exp.Union, alias_cols: list[str], parent: Scope | None) -> tuple:
        anchor = self.plan_query(body.this, parent)
        names = [c.name for c in anchor.columns]
        names[: len(alias_cols)] = alias_cols
        cols = [(n, c.type_oid, c.type_mod) for n, c in zip(names, anchor.columns)]
        work = _WorkTable()
        self.ctes[-1][name] = (work, cols)
        rec = self.plan_query(body.expression, parent)
        if len(rec.columns) != len(cols):
            raise errors.SyntaxErr("each UNION query must have the same number of columns")
        convs = [None if rc.type_oid == c[1] or rc.type_oid == T.UNKNOWN and c[1] == T.TEXT
                 else T.caster(rc.type_oid, c[1]) for rc, c in zip(rec.columns, cols)]
        return _RecursiveScan(anchor, rec, work, bool(body.args.get("distinct")), convs), cols

    def find_cte(self, name: str) -> tuple[Any, list] | None:
        for frame in reversed(self.ctes):
            hit = frame.get(name)
            if hit is not None:
                return hit
        return None

    # -- entry points ---------------------------------------------------------------------
    def plan_query(self, node: exp.Expression, parent: Scope | None = None) -> Plan:
        if node.args.get("with_") is not None and not isinstance(node, exp.Subquery):
            self.push_with(node, parent)
            try:
                return self._plan_query(node, parent)
            finally:
                self.ctes.pop()
        return self._plan_query(node, parent)

    def _plan_query(self, node: exp.Expression, parent: Scope | None = None) -> Plan:
        if isinstance(node, exp.Subquery):
            return self.plan_query(node.this, parent)
        if isinstance(node, exp.Select):
            return self.plan_select(node, parent)
        if isinstance(node, (exp.Union, exp.Intersect, exp.Except)):
            return self.plan_setop(node, parent)
        if isinstance(node, exp.Values):
            return self.plan_values(node, parent)
        raise errors.FeatureNotSupported(f"unsupported query: {node.sql('postgres')[:60]}")

    def plan_subquery(self, node: exp.Expression, scope: Scope) -> Plan:
        return self.plan_query(node, scope)

    # -- FROM -----------------------------------------------------------------------------
    def lookup_table(self, t: exp.Table) -> TableDef:
        name = table_name(t)
        td = self.catalog.get(name)
        if td is None or td.kind != "r":
            raise errors.UndefinedTable(f'relation "{name}" does not exist')
        return td

    def plan_from_item(self, item: exp.Expression, parent: Scope | None) -> tuple[Op, list, TableDef | None]:
        from engine.srf import FunctionScan, compile_srf, srf_name

        if isinstance(item, exp.Lateral):
            inner = item.this
            if isinstance(inner, exp.Subquery) and item.args.get("alias") is not None and inner.args.get("alias") is None:
                inner = inner.copy()
                inner.set("alias", item.args["alias"].copy())
            return self.plan_from_item(inner, parent)
        fn_node = item.this if isinstance(item, exp.Table) and isinstance(item.this, exp.Func) else (
            item if isinstance(item, exp.Unnest) else None)
        if fn_node is not None:
            if isinstance(item, exp.Table):
                clauses.check_table(item)
            name = srf_name(fn_node)
            cp = Compiler(self.env, Scope([], parent))
            if name is None:  # a scalar function in FROM: one row, one column
                c = cp.compile(fn_node)
                from engine.srf import Srf

                fnc = c.fn
                srf = Srf(lambda r, ctx: iter([(fnc(r, ctx),)]), [(output_name(fn_node), c.type)])
                name = output_name(fn_node)
            else:
                srf = compile_srf(cp, fn_node, name)
            ta = item.args.get("alias")
            alias = ta.name if ta is not None and ta.name else name
            names = [n for n, _ in srf.cols]
            if len(names) == 1 and ta is not None and ta.name and not ta.columns:
                names = [ta.name]
            rename = [c.name for c in ta.columns] if ta is not None and ta.columns else []
            ordinality = bool(item.args.get("ordinality"))
            off = item.args.get("offset") if isinstance(item, exp.Unnest) else None
            if isinstance(off, exp.Identifier):
                ordinality = True
                rename = rename + [off.name]
            elif off is True:
                ordinality = True
            types = [t for _, t in srf.cols]
            if ordinality:
                names.append("ordinality")
                types.append(T.INT8)
            names[: len(rename)] = rename
            return FunctionScan(srf, ordinality), [(alias, n, t, -1) for n, t in zip(names, types)], None
        if isinstance(item, exp.Table):
            clauses.check_table(item)
            alias = item.alias_or_name
            name = table_name(item)
            ta = item.args.get("alias")
            rename = [c.name for c in ta.columns] if ta is not None and ta.columns else []
            cte = self.find_cte(name) if not item.text("db") else None
            if cte is not None:
                op, ccols = cte
                names = [c[0] for c in ccols]
                names[: len(rename)] = rename
                return op, [(alias, n, t, m) for n, (_, t, m) in zip(names, ccols)], None
            td = self.catalog.get(name)
            if td is not None and td.kind == "v":
                if name in self.views:
                    raise errors.SqlError(f'infinite recursion detected in rules for relation "{name}"',
                                          sqlstate="42P17")
                self.views.append(name)
                self.need(td, "r")
                outer_role = self.as_role
                if not td.invoker:  # the view reads with its owner's rights (security_invoker: the caller's)
                    self.as_role = td.owner
                try:
                    import sqlglot

                    plan = self.plan_query(sqlglot.parse_one(td.view_sql, read="postgres"), None)
                finally:
                    self.views.pop()
                    self.as_role = outer_role
                names = [c.name for c in td.columns] or [c.name for c in plan.columns]
                names[: len(rename)] = rename
                return _PlanOp(plan), [(alias, n, c.type_oid, c.type_mod) for n, c in zip(names, plan.columns)], None
            if td is None or td.kind != "r":
                vt = sysviews.lookup(name)
                if vt is not None:
                    return VirtualScan(vt.rows), [(alias, n, t, -1) for n, t in vt.columns], None
                if isinstance(item.this, exp.Anonymous) or item.args.get("this") is None:
                    raise errors.FeatureNotSupported("table functions are not supported")
                raise errors.UndefinedTable(f'relation "{name}" does not exist')
            if td.rls:
                sub = self._rls_item(item, td)
                if sub is not None:
                    if td.table_id in self._rls_active:  # a policy reading its own table
                        raise errors.SqlError(f'infinite recursion detected in policy for relation "{td.name}"',
                                              sqlstate="42P17")
                    self._rls_active.append(td.table_id)
                    try:
                        return self.plan_from_item(sub, parent)
                    finally:
                        self._rls_active.pop()
            self.tables.add(td.table_id)
            self.need(td, "r")
            cols = [(alias, c.name, c.type_oid, c.typmod) for c in td.columns]
            return TableScan(td.table_id, td.pad_fn()), cols, td
        if isinstance(item, exp.Subquery):
            plan = self.plan_query(item.this, parent)
            alias = item.alias_or_name or None
            names = [c.name for c in plan.columns]
            ta = item.args.get("alias")
            if ta is not None and ta.columns:
                names[: len(ta.columns)] = [c.name for c in ta.columns]
            cols = [(alias, n, c.type_oid, c.type_mod) for n, c in zip(names, plan.columns)]
            return _PlanOp(plan), cols, None
        if isinstance(item, exp.Values):
            plan = self.plan_values(item, parent)
            alias = item.alias_or_name or "*VALUES*"
            names = [c.name for c in plan.columns]
            ta = item.args.get("alias")
            if ta is not None and ta.columns:
                names[: len(ta.columns)] = [c.name for c in ta.columns]
            return _PlanOp(plan), [(alias, n, c.type_oid, c.type_mod) for n, c in zip(names, plan.columns)], None
        raise errors.FeatureNotSupported(f"unsupported FROM item: {item.sql('postgres')[:60]}")

    def plan_from(self, sel: exp.Select, parent: Scope | None) -> tuple[Op, Scope, TableDef | None]:
        frm = sel.args.get("from_")
        if frm is None:
            return OneRow(), Scope([], parent), None
        op, cols, td = self.plan_from_item(frm.this, parent)
        joins = sel.args.get("joins") or []
        pushed = _pushable_where(sel) if joins else []
        if pushed and not _nullable_later(joins, 0):
            op = self._push_down(op, cols, td, pushed, parent)
        for n, j in enumerate(joins):
            lat = Scope(cols, parent)
            rop, rcols, rtd = self.plan_from_item(j.this, lat)
            td = None
            if pushed and not _is_correlated_to(lat, rop) and not _nullable_later(joins, n + 1) \
                    and (j.side or "").lower() not in ("left", "full"):
                rop = self._push_down(rop, rcols, rtd, pushed, parent)
            if _is_correlated_to(lat, rop):
                from engine.srf import LateralJoin

                side = (j.side or "").lower()
                on = j.args.get("on")
                scope = Scope(cols + rcols, parent)
                pred = Compiler(self.env, scope).compile_bool(on).fn if on is not None else None
                op = LateralJoin(op, rop, pred, "left" if side == "left" else "inner", len(rcols))
                cols = cols + rcols
                continue
            side = (j.side or "").lower()
            kind = side if side in ("left", "right", "full") else "inner"
            scope = Scope(cols + rcols, parent)
            on = j.args.get("on")
            using = j.args.get("using")
            if using:
                lscope, rscope = Scope(cols), Scope(rcols)
                parts = []
                for ident in using:
                    n = ident.name
                    li, ri = lscope.find(n, None), rscope.find(n, None)
                    if li is None or ri is None:
                        raise errors.UndefinedColumn(f'column "{n}" specified in USING clause does not exist')
                    parts.append(exp.EQ(this=exp.column(n, cols[li][0]), expression=exp.column(n, rcols[ri][0])))
                on = and_all(parts)
            lw = len(cols)
            if on is None and kind == "inner":
                on = _where_for_join(sel, cols, rcols)
            if on is None:
                op = NestedLoopJoin(op, rop, None, "inner" if kind == "inner" else kind, lw, len(rcols))
            else:
                op = self._join(op, rop, on, kind, cols, rcols, scope)
            cols = cols + rcols
        return op, Scope(cols, parent), td

    def _push_down(self, op: Op, cols: list, td: TableDef | None, conds: list[exp.Expression],
                   parent: Scope | None) -> Op:
        """The WHERE conjuncts that read only this FROM item's columns, applied to the item
        before it is joined (its key or index when they name one): a join then sees only the
        rows that can pass.  WHERE still applies them to the joined rows too."""
        scope = Scope(cols, None)
        mine = []
        for p in conds:
            idx = [_col_index(scope, c) for c in p.find_all(exp.Column)]
            if idx and None not in idx:
                mine.append(p.copy())
        if not mine:
            return op
        return self.access_path(op, Scope(cols, parent), td, and_all(mine))

    def _join(self, lop: Op, rop: Op, on: exp.Expression, kind: str, lcols: list, rcols: list, scope: Scope) -> Op:
        lw = len(lcols)
        lkeys, rkeys, rest = [], [], []
        for p in conjuncts(on):
            if isinstance(p, exp.EQ) and isinstance(p.this, exp.Column) and isinstance(p.expression, exp.Column):
                a, b = Compiler(self.env, scope).compile(p.this), Compiler(self.env, scope).compile(p.expression)
                ia, ib = _col_index(scope, p.this), _col_index(scope, p.expression)
                if ia is not None and ib is not None and (ia < lw) != (ib < lw) and _hashable_pair(a.type, b.type):
                    li, ri = (ia, ib - lw) if ia < lw else (ib, ia - lw)
                    lkeys.append(col_ref(li))
                    rkeys.append(col_ref(ri))
                    continue
            elif isinstance(p, exp.EQ):
                # An equality of an expression of each side (``t.tid % 10 = a.aid % 10``) is
                # a hash key too: evaluated once per row of its side instead of once per pair.
                sides = _side_of(scope, p.this, lw), _side_of(scope, p.expression, lw)
                if set(sides) == {"l", "r"}:
                    le, re_ = (p.this, p.expression) if sides[0] == "l" else (p.expression, p.this)
                    a = Compiler(self.env, scope).compile(le)  # left columns sit first: reads l alone
                    b = Compiler(self.env, Scope(rcols, scope.parent)).compile(re_)
                    if _hashable_pair(a.type, b.type):
                        lkeys.append(a.fn)
                        rkeys.append(b.fn)
                        continue
            rest.append(p)
        residual = and_all(rest)
        res_fn = Compiler(self.env, scope).compile_bool(residual).fn if residual is not None else None
        if lkeys:
            return HashJoin(lop, rop, lkeys, rkeys, res_fn, kind, lw, len(rcols))
        return NestedLoopJoin(lop, rop, res_fn, kind, lw, len(rcols))

    # -- WHERE / access path ----------------------------------------------------------------
    def access_path(self, op: Op, scope: Scope, td: TableDef | None, where: exp.Expression | None) -> Op:
        if where is None:
            return op
        parts = conjuncts(where)
        if td is not None and isinstance(op, TableScan) and not td.pk and (td.indexes or td.uniques):
            op = self._index_path(op, scope, td, parts)
        if td is not None and td.pk and isinstance(op, TableScan):
            key_fns: dict[int, Any] = {}
            rest = []
            for p in parts:
                if isinstance(p, exp.EQ):
                    col, val = p.this, p.expression
                    if not isinstance(col, exp.Column):
                        col, val = val, col
                    if isinstance(col, exp.Column) and not has_columns(val):
                        i = scope.find(col.name, col.table or None)
                        if i is not None and i in td.pk and i not in key_fns:
                            cp = Compiler(self.env, scope)
                            v = cp.compile(val)
                            ctype = td.columns[i].type_oid
                            if v.type == ctype or v.type in (T.UNKNOWN,) or (v.type in T.INTS and ctype in T.INTS) or (
                                    v.param is not None and self.env.param_types[v.param] in (0, T.UNKNOWN)) or (
                                    v.type in T.STRINGS and ctype in T.STRINGS and ctype != T.BPCHAR):
                                key_fns[i] = _key_value(cp.coerce(v, ctype, td.columns[i].typmod), ctype).fn
                                continue
                rest.append(p)
            if len(key_fns) == len(td.pk):
                op = KeyLookup(td.table_id, [key_fns[i] for i in td.pk], td.pad_fn())
                parts = rest
            elif td.indexes or td.uniques:
                op = self._index_path(op, scope, td, parts)
        if parts:
            cond = and_all(parts)
            pred = Compiler(self.env, scope).compile_bool(cond).fn
            op = Filter(op, pred)
            op.label = cond.sql("postgres")  # type: ignore[attr-defined]  # EXPLAIN's "Filter:" line
        return op

    def _index_path(self, op: Op, scope: Scope, td: TableDef, parts: list[exp.Expression]) -> Op:
        """Equality conjuncts covering a secondary index / UNIQUE constraint -> IndexLookup
        (the caller keeps every conjunct as a filter: index hits are candidates)."""
        from engine.indexes import IndexLookup

        eq: dict[int, Any] = {}
        for p in parts:
            if not isinstance(p, exp.EQ):
                continue
            col, val = p.this, p.expression
            if not isinstance(col, exp.Column):
                col, val = val, col
            if not isinstance(col, exp.Column) or has_columns(val):
                continue
            i = scope.find(col.name, col.table or None)
            if i is None or i in eq:
                continue
            cp = Compiler(self.env, scope)
            v = cp.compile(val)
            ctype = td.columns[i].type_oid
            if v.type == ctype or v.type == T.UNKNOWN or (v.type in T.INTS and ctype in T.INTS) or (
                    v.param is not None and self.env.param_types[v.param] in (0, T.UNKNOWN)) or (
                    v.type in T.STRINGS and ctype in T.STRINGS and ctype != T.BPCHAR):
                eq[i] = _key_value(cp.coerce(v, ctype, td.columns[i].typmod), ctype).fn
        if not eq:
            return op
        cands = [(n, list(c)) for n, c in td.uniques] + [(ix[0], list(ix[1])) for ix in td.indexes]
        best = None
        for name, cols in cands:
            if cols and all(c in eq for c in cols) and (best is None or len(cols) > len(best[1])):
                best = (name, cols)
        if best is None:
            return op
        name, cols = best
        return IndexLookup(td.table_id, tuple(cols), [eq[c] for c in cols], td.pad_fn(), name)

    # -- SELECT -----------------------------------------------------------------------------
    def plan_select(self, sel: exp.Select, parent: Scope | None) -> Plan:
        clauses.check_select(sel)
        op, scope, td = self.plan_from(sel, parent)
        op = self.access_path(op, scope, td, (sel.args.get("where") or exp.Where()).this)
        locks = sel.args.get("locks")
        lock_spec = None  # FOR UPDATE / SHARE on one table: LockRows goes above the sort
        if locks and td is not None and hasattr(op, "pairs"):
            w = locks[0].args.get("wait")
            lock_spec = ("nowait" if w is True else "skip" if w is False else "wait", not locks[0].args.get("update"))
            op = KeyedRows(op)
        select_items = self._expand_stars(sel.expressions, scope)
        group = sel.args.get("group")
        having = sel.args.get("having")
        order = sel.args.get("order")
        grouped = bool(group) or having is not None or any(
            any(_group_agg(n, e) for n in e.walk()) for e in select_items
        ) or (order is not None and any(any(_group_agg(n, o) for n in o.walk()) for o in order.expressions))
        if lock_spec is not None and (grouped or sel.args.get("distinct") is not None):
            what = "DISTINCT clause" if sel.args.get("distinct") is not None else (
                "GROUP BY clause" if group else "aggregate functions")
            raise errors.FeatureNotSupported(f"FOR {'SHARE' if lock_spec[1] else 'UPDATE'} is not allowed with {what}")
        if grouped:
            op, compiler = self._plan_group(op, scope, sel, select_items, group)
            if having is not None:
                op = Filter(op, compiler.compile_bool(having.this).fn)
        else:
            compiler = Compiler(self.env, scope)
        from engine.window import WindowAgg, plan_windows, window_nodes

        wnodes = window_nodes(list(select_items) + ([o.this for o in order.expressions] if order is not None else []))
        if wnodes and lock_spec is not None:
            raise errors.FeatureNotSupported(
                f"FOR {'SHARE' if lock_spec[1] else 'UPDATE'} is not allowed with window functions")
        if wnodes:
            specs, whook = plan_windows(compiler, sel, wnodes)
            op = WindowAgg(op, specs)
            inner_hook = compiler.hook

            def both(node: exp.Expression, wh: Any = whook, ih: Any = inner_hook) -> CExpr | None:
                r = wh(node)
                if r is None and ih is not None:
                    r = ih(node)
                return r

            compiler = Compiler(self.env, compiler.scope, both)
        from engine.srf import compile_srf, srf_name

        outs = []
        srfs: dict[int, Any] = {}
        for i, e in enumerate(select_items):
            inner = e.this if isinstance(e, exp.Alias) else e
            if isinstance(inner, exp.Func) and srf_name(inner) is not None:
                srf = compile_srf(compiler, inner)
                srfs[i] = srf
                outs.append(CExpr(lambda r, c: None, srf.cols[0][1] if len(srf.cols) == 1 else T.RECORD))
            else:
                outs.append(compiler.compile(inner))
        names = [output_name(e) for e in select_items]
        cols = [self._column(n, c, e, scope, td) for n, c, e in zip(names, outs, select_items)]
        fns = [srfs[i] if i in srfs else c.fn for i, c in enumerate(outs)]
        width = len(fns)
        if lock_spec is not None:
            fns.append(lambda r, c: r[-1])  # the row key KeyedRows appended (stripped below)
        lock_key = len(fns) - 1
        sort_keys = []
        dnode = sel.args.get("distinct")
        distinct = dnode is not None
        on_idx: list[int] = []
        if dnode is not None and dnode.args.get("on") is not None:
            on = dnode.args["on"]
            for e in (on.expressions if isinstance(on, exp.Tuple) else [on]):
                idx = self._order_target(e, select_items, names)
                if idx is None:
                    fns.append(compiler.compile(e).fn)
                    idx = len(fns) - 1
                on_idx.append(idx)
            distinct = False
        if order is not None:
            for o in order.expressions:
                idx = self._order_target(o.this, select_items, names)
                if idx is None:
                    if distinct:
                        raise errors.SqlError("for SELECT DISTINCT, ORDER BY expressions must appear in select list",
                                              sqlstate="42P10")
                    fns.append(compiler.compile(o.this).fn)
                    idx = len(fns) - 1
                sort_keys.append((idx, bool(o.args.get("desc")), bool(o.args.get("nulls_first"))))
        if srfs:
            from engine.srf import ProjectSet

            op = ProjectSet(op, fns, set(srfs))
        else:
            op = Project(op, fns)
        if distinct:
            op = Distinct(op, width)
        if sort_keys:
            op = Sort(op, sort_keys)
        if on_idx:
            op = _DistinctOn(op, on_idx)
        if lock_spec is not None:
            op = LockRows(op, lock_key, td.table_id, lock_spec[0], td.name, shared=lock_spec[1])
        op = self._limit(op, sel)
        if len(fns) > width:
            op = Strip(op, width)
        return Plan(op, cols, correlated=_correlated(scope))

    def _column(self, name: str, c: CExpr, e: exp.Expression, scope: Scope, td: TableDef | None) -> Column:
        inner = e.this if isinstance(e, exp.Alias) else e
        if td is not None and isinstance(inner, exp.Column):
            i = td.column_index(inner.name)
            if i is not None:
                return make_column(name, c, td.table_id, i + 1)
        return make_column(name, c)

    def _limit(self, op: Op, node: exp.Expression) -> Op:
        lim, off = node.args.get("limit"), node.args.get("offset")
        if lim is None and off is None:
            return op
        cp = Compiler(self.env, None)
        const_one = (lambda r, c: 1)

        def num(n: exp.Expression | None) -> Any:
            if n is None:
                return None
            if isinstance(n, exp.Fetch):
                e = n.args.get("count")
                if e is None:
                    return const_one
            else:
                e = n.expression if n.expression is not None else n.this
            if isinstance(e, exp.Null):
                return None
            return cp.coerce(cp.compile(e), T.INT8).fn

        return Limit(op, num(lim), num(off))

    def _expand_stars(self, items: list[exp.Expression], scope: Scope) -> list[exp.Expression]:
        out: list[exp.Expression] = []
        for e in items:
            if isinstance(e, exp.Star):
                if not scope.cols:
                    raise errors.SyntaxErr("SELECT * with no tables specified is not valid")
                out.extend(_star_col(i, q, n) for i, (q, n, _, _) in enumerate(scope.cols))
            elif isinstance(e, exp.Column) and isinstance(e.this, exp.Star):
                t = e.table
                if not scope.has_table(t):
                    raise errors.UndefinedTable(f'missing FROM-clause entry for table "{t}"')
                out.extend(_star_col(i, q, n) for i, (q, n, _, _) in enumerate(scope.cols) if q == t)
            else:
                out.append(e)
        return out

    def _order_target(self, node: exp.Expression, items: list[exp.Expression], names: list[str]) -> int | None:
        if isinstance(node, exp.Literal) and not node.is_string:
            k = int(node.this)
            if not 1 <= k <= len(items):
                raise errors.SqlError(f"ORDER BY position {k} is not in select list", sqlstate="42P10", node=node)
            return k - 1
        if isinstance(node, exp.Column) and not node.table:
            for i, (e, n) in enumerate(zip(items, names)):
                if isinstance(e, exp.Alias) and n == node.name:
                    return i
            for i, e in enumerate(items):  # a column of a * expansion (qualified there)
                if isinstance(e, exp.Column) and e.name == node.name and not isinstance(e.this, exp.Star):
                    return i
        for i, e in enumerate(items):
            if (e.this if isinstance(e, exp.Alias) else e) == node:
                return i
        return None

    def _plan_group(self, op: Op, scope: Scope, sel: exp.Select, items: list[exp.Expression],
                    group: exp.Group | None) -> tuple[Op, Compiler]:
        gexprs: list[exp.Expression] = []
        raw = list(group.expressions) if group else []
        sets_nodes = None
        if any(isinstance(g, (exp.GroupingSets, exp.Rollup, exp.Cube)) for g in raw):
            raw, sets_nodes = _expand_grouping_sets(raw)
        for g in raw:
            if isinstance(g, exp.Literal) and not g.is_string:
                if not 1 <= int(g.this) <= len(items):
                    raise errors.SqlError(f"GROUP BY position {g.this} is not in select list", sqlstate="42P10",
                                          node=g)
                g = items[int(g.this) - 1]
                g = g.this if isinstance(g, exp.Alias) else g
            elif isinstance(g, exp.Column) and not g.table and scope.find(g.name, None) is None:
                for e in items:
                    if isinstance(e, exp.Alias) and e.alias == g.name:
                        g = e.this
            gexprs.append(g)
        inc = Compiler(self.env, scope)
        keyc = [inc.compile(g) for g in gexprs]
        nk = len(keyc)
        aggs: list[tuple[exp.Expression, AggSpec]] = []

        masks: list[int] | None = None
        key_sets: list[list[int]] | None = None
        if sets_nodes is not None:
            key_sets = [[_find_expr(gexprs, e) for e in st] for st in sets_nodes]
            masks = [sum(1 << (nk - 1 - i) for i in range(nk) if i not in ks) for ks in key_sets]

        def hook(node: exp.Expression) -> CExpr | None:
            if isinstance(node, exp.Grouping):
                idx = [_find_expr(gexprs, a) for a in node.expressions]
                if any(i is None for i in idx):
                    raise errors.SqlError("arguments to GROUPING must be grouping expressions of the associated query level",
                                          sqlstate="42803")
                bits = [(nk - 1 - i) for i in idx]
                n = len(bits)

                def run_g(r: Any, c: Any) -> Any:
                    m = r[-1] if masks is not None else 0
                    return sum(((m >> b) & 1) << (n - 1 - j) for j, b in enumerate(bits))

                return CExpr(run_g, T.INT4)
            if is_aggregate(node):
                for i, (a, spec) in enumerate(aggs):
                    if a == node:
                        return CExpr(col_ref(nk + i), spec.type)
                spec = self._agg_spec(node, inc)
                aggs.append((node, spec))
                return CExpr(col_ref(nk + len(aggs) - 1), spec.type)
            for i, g in enumerate(gexprs):
                if node == g:
                    k = keyc[i]
                    return CExpr(col_ref(i), k.type, k.typmod)
            if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
                ci = scope.find(node.name, node.table or None)
                if ci is not None:
                    rel = scope.cols[ci][0] or node.table  # named by its relation, like PostgreSQL
                    q = f"{rel}.{node.name}" if rel else node.name
                    raise errors.SqlError(
                        f'column "{q}" must appear in the GROUP BY clause or be used in an aggregate function',
                        sqlstate="42803", node=node)
            return None

        agg_op = _LazyAggregate(op, [k.fn for k in keyc], aggs)
        if key_sets is not None:
            agg_op.grouping_sets = (key_sets, masks)
        return agg_op, Compiler(self.env, scope, hook)

    def _agg_spec(self, node: exp.Expression, cp: Compiler) -> AggSpec:
        from engine.aggregates import agg_spec

        return agg_spec(node, cp)

    # -- set operations / VALUES ----------------------------------------------------------------
    def plan_setop(self, node: exp.Expression, parent: Scope | None) -> Plan:
        left = self.plan_query(node.this, parent)
        right = self.plan_query(node.expression, parent)
        if len(left.columns) != len(right.columns):
            raise errors.SyntaxErr("each UNION query must have the same number of columns")
        kind = {exp.Union: "union", exp.Intersect: "intersect", exp.Except: "except"}[type(node)]
        convs = []
        cols = []
        for lc, rc in zip(left.columns, right.columns):
            if lc.type_oid == rc.type_oid or rc.type_oid in (T.TEXT,) and lc.type_oid in T.STRINGS:
                convs.append(None)
                cols.append(lc)
            elif lc.type_oid in T.NUMERICS and rc.type_oid in T.NUMERICS:
                t = T.common_numeric(lc.type_oid, rc.type_oid)
                convs.append(T.caster(rc.type_oid, t))
                cols.append(Column(lc.name, t, T.TYPE_SIZES.get(t, -1)))
            else:
                convs.append(T.caster(rc.type_oid, lc.type_oid))
                cols.append(lc)
        op: Op = SetOp(left.root, right.root, kind, bool(node.args.get("distinct")), convs)
        order = node.args.get("order")
        if order is not None:
            keys = []
            names = [c.name for c in cols]
            for o in order.expressions:
                e = o.this
                if isinstance(e, exp.Literal) and not e.is_string:
                    idx = int(e.this) - 1
                elif isinstance(e, exp.Column) and e.name in names:
                    idx = names.index(e.name)
                else:
                    raise errors.FeatureNotSupported("ORDER BY on a UNION result must name an output column")
                keys.append((idx, bool(o.args.get("desc")), bool(o.args.get("nulls_first"))))
            op = Sort(op, keys)
        op = self._limit(op, node)
        return Plan(op, cols, left.correlated or right.correlated)

    def plan_values(self, node: exp.Values, parent: Scope | None) -> Plan:
        cp = Compiler(self.env, Scope([], parent))
        rows = [[cp.compile(e) for e in (t.expressions if isinstance(t, exp.Tuple) else [t])] for t in node.expressions]
        width = len(rows[0])
        if any(len(r) != width for r in rows):
            raise errors.SyntaxErr("VALUES lists must all be the same length")
        from engine.expr import _common_type

        types = [_common_type([r[i] for r in rows]) for i in range(width)]
        fns = [[cp.coerce(r[i], types[i]).fn for i in range(width)] for r in rows]
        cols = [Column(f"column{i + 1}", t, T.TYPE_SIZES.get(t, -1)) for i, t in enumerate(types)]
        return Plan(Values(fns), cols)


class _PlanOp(Op):
    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def rows(self, ctx: Any) -> Any:
        return self.plan.rows(ctx)

    def batches(self, ctx: Any) -> Any:
        return self.plan.root.batches(ctx)


class _DistinctOn(Op):
    """SELECT DISTINCT ON (...): the first row (in ORDER BY order) of each key."""

    def __init__(self, child: Op, idx: list[int]) -> None:
        self.child, self.idx = child, idx

    def rows(self, ctx: Any) -> Any:
        seen: set = set()
        idx = self.idx
        for row in self.child.rows(ctx):
            k = tuple(row[i] for i in idx)
            if k not in seen:
                seen.add(k)
                yield row


class _CteScan(Op):
    """A WITH query: evaluated once per statement execution, then replayed."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan

    def rows(self, ctx: Any) -> Any:
        key = id(self)
        rows = ctx.subq.get(key)
        if rows is None:
            rows = ctx.subq[key] = list(self.plan.rows(ctx))
        return iter(rows)


class _WorkTable(Op):
    """The rows of the previous iteration of a recursive WITH query."""

    def rows(self, ctx: Any) -> Any:
        return checked(ctx.subq.get(id(self), ()), ctx)


class _RecursiveScan(Op):
    """WITH RECURSIVE: anchor rows, then iterate the recursive term over the last batch."""

    def __init__(self, anchor: Plan, rec: Plan, work: _WorkTable, distinct: bool, convs: list) -> None:
        self.anchor, self.rec, self.work, self.distinct, self.convs = anchor, rec, work, distinct, convs

    def rows(self, ctx: Any) -> Any:
        seen: set | None = set() if self.distinct else None
        convs = self.convs if any(self.convs) else None
        batch = []
        for row in self.anchor.rows(ctx):
            if seen is not None:
                if row in seen:
                    continue
                seen.add(row)
            batch.append(row)
            yield row
        key = id(self.work)
        check = checker(ctx)
        before = set(ctx.subq)
        while batch:
            check()  # an endless recursion can be canceled
            # what the recursive term cached (a WITH inside it reading the working table,
            # hashed subqueries) belongs to one iteration: drop it before the next
            for k in [k for k in ctx.subq if k not in before]:
                del ctx.subq[k]
            ctx.subq[key] = batch
            nxt = []
            for row in self.rec.rows(ctx):
                if convs is not None:
                    row = tuple(v if c is None or v is None else c(v) for v, c in zip(row, convs))
                if seen is not None:
                    if row in seen:
                        continue
                    seen.add(row)
                nxt.append(row)
                yield row
            batch = nxt


def _refers_to(node: exp.Expression, name: str) -> bool:
    return any(t.name == name and not t.text("db") for t in node.find_all(exp.Table))


class _LazyAggregate(Aggregate):
    """An Aggregate whose spec list is filled while the select list compiles.

    With GROUPING SETS / ROLLUP / CUBE (``grouping_sets`` = (key index lists, masks)) the
    input is aggregated once per set; keys outside the set are NULL and each output row
    ends with the set's mask (bit set = key not grouped), read by ``grouping()``."""

    grouping_sets: Any = None

    def __init__(self, child: Op, keys: list, aggs: list) -> None:
        super().__init__(child, keys, [])
        self._pairs = aggs

    def rows(self, ctx: Any) -> Any:
        self.aggs = [s for _, s in self._pairs]
        if self.grouping_sets is None:
            return super().rows(ctx)
        return self._sets_rows(ctx)

    def _sets_rows(self, ctx: Any) -> Any:
        from engine.aggregates import agg_final, agg_init, agg_step

        key_sets, masks = self.grouping_sets
        keys, aggs = self.keys, self.aggs
        nk = len(keys)
        rows = all_rows(self.child, ctx)
        for ks, mask in zip(key_sets, masks):
            groups: dict[tuple, list] = {}
            for row in rows:
                full = [None] * nk
                for i in ks:
                    full[i] = keys[i](row, ctx)
                k = tuple(full)
                sts = groups.get(k)
                if sts is None:
                    sts = groups[k] = [agg_init(a) for a in aggs]
                for a, st in zip(aggs, sts):
                    agg_step(a, st, row, ctx)
            if not groups and not ks:
                groups[(None,) * nk] = [agg_init(a) for a in aggs]
            for k, sts in groups.items():
                yield k + tuple(agg_final(a, st) for a, st in zip(aggs, sts)) + (mask,)


def _expand_grouping_sets(raw: list[exp.Expression]) -> tuple[list[exp.Expression], list[list[exp.Expression]]]:
    """GROUP BY items -> (distinct key expressions, grouping sets as lists of expressions);
    several items combine as a cross product (PostgreSQL semantics)."""
    import itertools

    def flat(e: exp.Expression) -> list[exp.Expression]:
        if isinstance(e, exp.Tuple):
            return list(e.expressions)
        if isinstance(e, exp.Paren):
            return flat(e.this)
        return [e]

    per_item: list[list[list[exp.Expression]]] = []
    for g in raw:
        if isinstance(g, exp.Rollup):
            parts = [flat(x) for x in g.expressions]
            per_item.append([sum(parts[:i], []) for i in range(len(parts), -1, -1)])
        elif isinstance(g, exp.Cube):
            parts = [flat(x) for x in g.expressions]
            sets = []
            for n in range(len(parts), -1, -1):
                for combo in itertools.combinations(range(len(parts)), n):
                    sets.append(sum((parts[i] for i in combo), []))
            per_item.append(sets)
        elif isinstance(g, exp.GroupingSets):
            sets2: list[list[exp.Expression]] = []
            for x in g.expressions:
                if isinstance(x, (exp.Rollup, exp.Cube)):
                    _, sub = _expand_grouping_sets([x])
                    sets2.extend(sub)
                else:
                    sets2.append(flat(x))
            per_item.append(sets2)
        else:
            per_item.append([[g]])
    sets_out = [sum(combo, []) for combo in itertools.product(*per_item)]
    keys: list[exp.Expression] = []
    for st in sets_out:
        for e in st:
            if not any(e == k for k in keys):
                keys.append(e)
    return keys, sets_out


def _find_expr(keys: list[exp.Expression], e: exp.Expression) -> int | None:
    for i, k in enumerate(keys):
        if k == e:
            return i
    return None


def _group_agg(n: exp.Expression, root: exp.Expression) -> bool:
    """An aggregate call that makes the query grouped (not a window call, not in a subquery)."""
    if not is_aggregate(n) or _inside_subquery(n, root):
        return False
    p = n.parent
    if isinstance(p, exp.Window) and p.this is n:
        return False
    if isinstance(p, exp.Filter) and isinstance(p.parent, exp.Window):
        return False
    if isinstance(n, exp.Filter) and isinstance(p, exp.Window):
        return False
    return True


def _is_correlated_to(lat: Scope, op: Op) -> bool:
    """Did planning the right side of a join read columns of the left side (LATERAL)?"""
    return lat.referenced


def _col_index(scope: Scope, col: exp.Column) -> int | None:
    try:
        return scope.find(col.name, col.table or None)
    except errors.SqlError:
        return None


# What a WHERE conjunct pushed below a join may be made of: columns, constants, operators
# -- no function call (volatile ones would run a different number of times), no subquery,
# aggregate or window.
_PUSH_NODES = (exp.Column, exp.Identifier, exp.Literal, exp.Paren, exp.Add, exp.Sub, exp.Mul, exp.Mod,
               exp.Div, exp.Neg, exp.Cast, exp.DataType, exp.Parameter, exp.Placeholder, exp.Boolean,
               exp.Null, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.And, exp.Or, exp.Not,
               exp.Is, exp.In, exp.Between, exp.Like, exp.ILike, exp.Tuple, exp.DPipe)


def _pushable_where(sel: exp.Select) -> list[exp.Expression]:
    where = sel.args.get("where")
    if where is None:
        return []
    return [p for p in conjuncts(where.this)
            if has_columns(p) and all(isinstance(n, _PUSH_NODES) for n in p.walk())]


def _nullable_later(joins: list, n: int) -> bool:
    """Whether a RIGHT or FULL join from ``joins[n]`` on null-extends what precedes it (a
    WHERE condition on those rows must then see the NULLs, not filter before the join)."""
    return any((j.side or "").lower() in ("right", "full") for j in joins[n:])


def _where_for_join(sel: exp.Select, cols: list, rcols: list) -> exp.Expression | None:
    """WHERE conjuncts an inner join without ON (``FROM a, b WHERE a.x = b.y``) can
    evaluate: they read only columns of the two sides, at least one of the right side.
    They become the join's condition (a hash join on equalities) instead of filtering a
    cross product; WHERE still applies them too."""
    where = sel.args.get("where")
    if where is None:
        return None
    both, lw = Scope(cols + rcols), len(cols)
    out = []
    for p in conjuncts(where.this):
        if any(isinstance(n, (exp.Select, exp.Subquery, exp.Window)) or is_aggregate(n) for n in p.walk()):
            continue
        idx = [_col_index(both, c) for c in p.find_all(exp.Column)]
        if idx and None not in idx and any(i >= lw for i in idx):  # type: ignore[operator]
            out.append(p.copy())
    return and_all(out)


# What a hash-join key expression may be made of: columns, constants and arithmetic that
# cannot fail on a row the join would not have compared (no division, no functions).
_KEY_NODES = (exp.Column, exp.Identifier, exp.Literal, exp.Paren, exp.Add, exp.Sub, exp.Mul, exp.Mod, exp.Neg,
              exp.Cast, exp.DataType, exp.Parameter, exp.Placeholder)


def _side_of(scope: Scope, e: exp.Expression, lw: int) -> str | None:
    """"l" / "r" when ``e`` reads columns of only the left / right side of a join (and is
    made of ``_KEY_NODES``); None otherwise (both sides, no column, outer columns)."""
    side = None
    for node in e.walk():
        if not isinstance(node, _KEY_NODES):
            return None
        if isinstance(node, exp.Column):
            i = _col_index(scope, node)
            if i is None:
                return None
            s = "l" if i < lw else "r"
            if side is None:
                side = s
            elif side != s:
                return None
    return side


def _hashable_pair(a: int, b: int) -> bool:
    if a == b:
        return a != T.BPCHAR
    return (a in T.INTS and b in T.INTS) or ({a, b} <= {T.TEXT, T.VARCHAR, T.NAME})


def _key_value(c: CExpr, ctype: int) -> CExpr:
    if ctype in T.INTS:
        f = c.fn

        def run(r: Any, ctx: Any) -> Any:
            v = f(r, ctx)
            return v if v is None or type(v) is int else int(v)

        return CExpr(run, ctype)
    return c


def _inside_subquery(node: exp.Expression, root: exp.Expression) -> bool:
    if node is root:
        return False
    p = node.parent
    while p is not None and p is not root:
        if isinstance(p, (exp.Select, exp.Subquery)):
            return True
        p = p.parent
    return False


def _correlated(scope: Scope) -> bool:
    return scope.correlated
