"""Set-returning functions (generate_series, unnest, json(b)_array_elements, json(b)_each,
json(b)_object_keys, regexp_matches) in FROM and in the select list.

``compile_srf(cp, node)`` -> ``Srf``: a closure ``rows(r, ctx) -> iterator of tuples`` and
the output columns.  In FROM a ``FunctionScan`` evaluates it once (its arguments may
reference earlier FROM items: the planner then runs it per left row through
``LateralJoin``, with that row on ``ctx.outer``).  In the select list ``ProjectSet``
evaluates the ordinary expressions once per input row and the SRFs in lock step, padding
the shorter ones with NULL (PostgreSQL 10+ semantics).
"""

from __future__ import annotations

import datetime as _dt
import re
from decimal import Decimal
from typing import Any, Callable, Iterator

from sqlglot import exp

from engine import errors
from engine import types as T
from engine.executor import Op
from engine.expr import CExpr, Compiler
from engine.interrupts import checked

_NAMES = {"generate_series", "unnest", "jsonb_array_elements", "json_array_elements", "jsonb_array_elements_text",
          "json_array_elements_text", "jsonb_each", "json_each", "jsonb_each_text", "json_each_text",
          "jsonb_object_keys", "json_object_keys", "regexp_matches", "generate_subscripts", "regexp_split_to_table",
          "_pg_expandarray", "__expandarray_record", "__expandarray_field"}


class Record(tuple):
    """A value of an anonymous record type (``(1,2)`` in text); fields by name with ``field``."""

    fields: tuple[str, ...] = ()

    def __new__(cls, values: tuple, fields: tuple[str, ...]) -> "Record":
        r = super().__new__(cls, values)
        r.fields = fields
        return r

    def field(self, name: str) -> Any:
        try:
            return self[self.fields.index(name)]
        except ValueError:
            raise errors.SqlError(f'could not identify column "{name}" in record data type',
                                  sqlstate="42703") from None

    def __str__(self) -> str:
        return "(" + ",".join("" if v is None else T.to_text(v) for v in self) + ")"


class Srf:
    __slots__ = ("rows", "cols")

    def __init__(self, rows: Callable[[Any, Any], Iterator[tuple]], cols: list[tuple[str, int]]) -> None:
        self.rows = rows
        self.cols = cols


def srf_name(node: exp.Expression) -> str | None:
    if isinstance(node, (exp.ExplodingGenerateSeries, exp.GenerateSeries)):
        return "generate_series"
    if isinstance(node, (exp.Explode, exp.Unnest)):
        return "unnest"
    if isinstance(node, exp.Anonymous) and str(node.this).lower() in _NAMES:
        return str(node.this).lower()
    if isinstance(node, exp.RegexpSplit):
        return None
    return None


def _args(node: exp.Expression) -> list[exp.Expression]:
    if isinstance(node, exp.Anonymous):
        return list(node.expressions)
    if isinstance(node, (exp.ExplodingGenerateSeries, exp.GenerateSeries)):
        return [a for a in (node.args.get("start"), node.args.get("end"), node.args.get("step")) if a is not None]
    if isinstance(node, exp.Unnest):
        return list(node.expressions)
    return [node.this, *node.expressions] if node.this is not None else list(node.expressions)


def compile_srf(cp: Compiler, node: exp.Expression, name: str | None = None) -> Srf:
    name = name or srf_name(node)
    args = _args(node)
    if name == "generate_series":
        return _generate_series(cp, args)
    if name == "unnest":
        from engine.arrays import _arr_arg, _flatten, elem_type

        arrs = [_arr_arg(cp, a) for a in args]
        fs = [a.fn for a in arrs]
        if len(fs) == 1:
            f0 = fs[0]

            def rows1(r: Any, c: Any) -> Iterator[tuple]:
                a = f0(r, c)
                return iter(()) if a is None else ((v,) for v in _flatten(a))

            return Srf(rows1, [("unnest", elem_type(arrs[0].type))])

        def rows(r: Any, c: Any) -> Iterator[tuple]:
            vals = [_flatten(a) if (a := f(r, c)) is not None else [] for f in fs]
            n = max((len(v) for v in vals), default=0)
            for i in range(n):
                yield tuple(v[i] if i < len(v) else None for v in vals)

        return Srf(rows, [("unnest", elem_type(a.type)) for a in arrs])
    if name in ("jsonb_array_elements", "json_array_elements", "jsonb_array_elements_text", "json_array_elements_text"):
        j = _json_arg(cp, args[0], name.startswith("jsonb"))
        text = name.endswith("_text")
        f = j.fn

        def rows_ae(r: Any, c: Any) -> Iterator[tuple]:
            v = f(r, c)
            if v is None:
                return
            if not isinstance(v, list):
                raise errors.SqlError("cannot extract elements from an object" if isinstance(v, dict)
                                      else "cannot extract elements from a scalar", sqlstate="22023")
            for x in v:
                yield (_json_text(x) if text else x,)

        return Srf(rows_ae, [("value", T.TEXT if text else j.type)])
    if name in ("jsonb_each", "json_each", "jsonb_each_text", "json_each_text"):
        j = _json_arg(cp, args[0], name.startswith("jsonb"))
        text = name.endswith("_text")
        f = j.fn

        def rows_each(r: Any, c: Any) -> Iterator[tuple]:
            v = f(r, c)
            if v is None:
                return
            if not isinstance(v, dict):
                raise errors.SqlError("cannot call %s on a non-object" % name, sqlstate="22023")
            items = sorted(v.items(), key=lambda kv: (len(kv[0]), kv[0])) if name.startswith("jsonb") else v.items()
            for k, x in items:
                yield (k, _json_text(x) if text else x)

        return Srf(rows_each, [("key", T.TEXT), ("value", T.TEXT if text else j.type)])
    if name in ("jsonb_object_keys", "json_object_keys"):
        j = _json_arg(cp, args[0], name.startswith("jsonb"))
        f = j.fn

        def rows_keys(r: Any, c: Any) -> Iterator[tuple]:
            v = f(r, c)
            if isinstance(v, dict):
                ks = sorted(v, key=lambda k: (len(k), k)) if name.startswith("jsonb") else list(v)
                for k in ks:
                    yield (k,)

        return Srf(rows_keys, [(name, T.TEXT)])
    if name in ("regexp_matches", "regexp_split_to_table"):
        fs = [cp.coerce(cp.compile(a), T.TEXT).fn for a in args]

        def rows_re(r: Any, c: Any) -> Iterator[tuple]:
            vals = [f(r, c) for f in fs]
            if any(v is None for v in vals):
                return
            s, pat = vals[0], vals[1]
            flags = vals[2] if len(vals) > 2 else ""
            from engine.functions_text import pg_regex

            rx = pg_regex(pat, flags)
            if name == "regexp_split_to_table":
                for part in rx.split(s):
                    yield (part,)
                return
            for m in (rx.finditer(s) if "g" in flags else [m for m in [rx.search(s)] if m]):
                yield (list(m.groups()) if rx.groups else [m.group(0)],)

        return Srf(rows_re, [(name, 1009 if name == "regexp_matches" else T.TEXT)])
    if name in ("_pg_expandarray", "__expandarray_record", "__expandarray_field"):
        return _expandarray(cp, name, args)
    if name == "generate_subscripts":
        from engine.arrays import _arr_arg

        a = _arr_arg(cp, args[0])
        fd = cp.coerce(cp.compile(args[1]), T.INT4).fn
        frev = cp.coerce(cp.compile(args[2]), T.BOOL).fn if len(args) > 2 else None
        fa = a.fn
        low = 0 if a.type in T.VECTORS else 1  # int2vector / oidvector count from 0

        def rows_gs(r: Any, c: Any) -> Iterator[tuple]:
            v, d = fa(r, c), fd(r, c)
            if v is None or d is None or d < 1:
                return
            for _ in range(d - 1):  # length of dimension d: descend into the first element
                if not v or not isinstance(v[0], list):
                    return
                v = v[0]
            subs = range(low, low + len(v))
            yield from ((i,) for i in (reversed(subs) if frev is not None and frev(r, c) else subs))

        return Srf(rows_gs, [("generate_subscripts", T.INT4)])
    raise errors.UndefinedFunction(f"function {name}() does not exist")


def _expandarray(cp: Compiler, name: str, args: list[exp.Expression]) -> Srf:
    """information_schema._pg_expandarray(arr): one row (x, n) per element, n from 1.
    ``__expandarray_record`` yields the rows as records (the call in a select list),
    ``__expandarray_field(arr, 'x' | 'n')`` one field ((_pg_expandarray(arr)).x)."""
    from engine.arrays import _arr_arg, elem_type

    a = _arr_arg(cp, args[0])
    et = elem_type(a.type)
    fa = a.fn

    def pairs(r: Any, c: Any) -> Iterator[tuple]:
        v = fa(r, c)
        return iter(()) if v is None else ((x, n) for n, x in enumerate(v, 1))

    if name == "_pg_expandarray":
        return Srf(pairs, [("x", et), ("n", T.INT4)])
    if name == "__expandarray_record":
        return Srf(lambda r, c: ((Record(p, ("x", "n")),) for p in pairs(r, c)), [("_pg_expandarray", T.RECORD)])
    field = args[1].name if isinstance(args[1], exp.Literal) else ""
    if field not in ("x", "n"):
        raise errors.SqlError(f'column "{field}" not found in data type record', sqlstate="42703")
    k = 0 if field == "x" else 1
    return Srf(lambda r, c: ((p[k],) for p in pairs(r, c)), [(field, et if k == 0 else T.INT4)])


def compile_field(cp: Compiler, node: exp.Expression, field: str) -> CExpr:
    """``(record).field`` on a record value (declared bigint: the fields records carry
    here are integers: _pg_expandarray's element and position)."""
    f = cp.compile(node).fn
    return CExpr(lambda r, c: None if (v := f(r, c)) is None else Record.field(v, field), T.INT8)


def _json_arg(cp: Compiler, e: exp.Expression, jsonb: bool) -> CExpr:
    c = cp.compile(e)
    if c.type not in (T.JSON, T.JSONB):
        c = cp.coerce(c, T.JSONB if jsonb else T.JSON)
    return c


def _json_text(v: Any) -> Any:
    if v is None or isinstance(v, str):
        return v
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    return json.dumps(v, separators=(", ", ": ")) if isinstance(v, (dict, list)) else T.to_text(v)


def _generate_series(cp: Compiler, args: list[exp.Expression]) -> Srf:
    if len(args) not in (2, 3):
        raise errors.UndefinedFunction("function generate_series() does not exist")
    cs = [cp.compile(a) for a in args]
    a, b = cs[0], cs[1]
    times = (T.TIMESTAMP, T.TIMESTAMPTZ, T.DATE)
    if a.type in times or b.type in times:
        t = T.TIMESTAMPTZ if T.TIMESTAMPTZ in (a.type, b.type) or (a.type == T.UNKNOWN and b.type == T.UNKNOWN) else (
            T.TIMESTAMP if T.TIMESTAMP in (a.type, b.type) or T.DATE in (a.type, b.type) else T.TIMESTAMPTZ)
        if T.DATE in (a.type, b.type) and T.TIMESTAMPTZ not in (a.type, b.type):
            t = T.TIMESTAMPTZ  # PostgreSQL resolves date arguments to the timestamptz variant
        if len(cs) != 3:
            raise errors.UndefinedFunction("function generate_series(timestamp, timestamp) does not exist")
        fa, fb = cp.coerce(a, t).fn, cp.coerce(b, t).fn
        fs = cp.coerce(cs[2], T.INTERVAL).fn

        def rows_t(r: Any, c: Any) -> Iterator[tuple]:
            x, end, step = fa(r, c), fb(r, c), fs(r, c)
            if x is None or end is None or step is None:
                return
            from engine.intervals import add_interval, interval_is_zero, interval_sign

            if interval_is_zero(step):
                raise errors.SqlError("step size cannot equal zero", sqlstate="22023")
            up = interval_sign(step) > 0
            i = 0
            cur = x
            while (cur <= end) if up else (cur >= end):
                yield (cur,)
                i += 1
                cur = add_interval(x, step, i)

        return Srf(rows_t, [("generate_series", t)])
    for i, c in enumerate(cs):
        if c.type == T.UNKNOWN or (c.param is not None and cp.env.param_types[c.param] in (0, T.UNKNOWN)):
            cs[i] = cp.coerce(c, T.INT4)
    types = [c.type for c in cs]
    if any(t not in T.NUMERICS for t in types):
        names = ", ".join(T.TYPE_NAMES.get(t, str(t)) for t in types)
        raise errors.UndefinedFunction(f"function generate_series({names}) does not exist",
                                       hint="No function matches the given name and argument types. "
                                            "You might need to add explicit type casts.")
    if all(t in T.INTS for t in types):
        t = T.INT8 if T.INT8 in types else T.INT4
    else:
        t = T.NUMERIC
    fs = [cp.coerce(c, t).fn for c in cs]
    num = t == T.NUMERIC

    def rows_n(r: Any, c: Any) -> Iterator[tuple]:
        vals = [f(r, c) for f in fs]
        if any(v is None for v in vals):
            return
        start, stop = vals[0], vals[1]
        step = vals[2] if len(vals) > 2 else (Decimal(1) if num else 1)
        if step == 0:
            raise errors.SqlError("step size cannot equal zero", sqlstate="22023")
        if not num:
            yield from ((v,) for v in range(start, stop + (1 if step > 0 else -1), step))
            return
        cur = Decimal(start)
        while (cur <= stop) if step > 0 else (cur >= stop):
            yield (cur,)
            cur += step

    return Srf(rows_n, [("generate_series", t)])


# -- operators ------------------------------------------------------------------------------------
class FunctionScan(Op):
    """A set-returning function in FROM (``ordinality`` appends a bigint row number)."""

    def __init__(self, srf: Srf, ordinality: bool = False) -> None:
        self.srf, self.ordinality = srf, ordinality

    def rows(self, ctx: Any) -> Iterator[tuple]:
        it = checked(self.srf.rows(None, ctx), ctx)
        if not self.ordinality:
            return it
        return (row + (i,) for i, row in enumerate(it, 1))


class LateralJoin(Op):
    """``left JOIN LATERAL right``: the right side re-evaluated per left row (on ``ctx.outer``)."""

    def __init__(self, left: Op, right: Op, pred: Any, kind: str, rw: int) -> None:
        self.left, self.right, self.pred, self.kind, self.rw = left, right, pred, kind, rw

    def rows(self, ctx: Any) -> Iterator[tuple]:
        pred, right = self.pred, self.right
        rnull = (None,) * self.rw
        outer = ctx.outer
        for l in self.left.rows(ctx):
            outer.append(l)
            try:
                rights = list(right.rows(ctx))
            finally:
                outer.pop()
            hit = False
            for r in rights:
                row = l + r
                if pred is None or pred(row, ctx) is True:
                    hit = True
                    yield row
            if not hit and self.kind == "left":
                yield l + rnull


class ProjectSet(Op):
    """Select list with SRFs: ``fns[i]`` is a scalar closure or, at ``srf_idx``, an Srf."""

    def __init__(self, child: Op, fns: list[Any], srf_idx: set[int]) -> None:
        self.child, self.fns, self.srf_idx = child, fns, srf_idx

    def rows(self, ctx: Any) -> Iterator[tuple]:
        fns, idx = self.fns, self.srf_idx
        for row in self.child.rows(ctx):
            scal = [None if i in idx else f(row, ctx) for i, f in enumerate(fns)]
            sets = {i: [t[0] for t in checked(fns[i].rows(row, ctx), ctx)] for i in idx}
            n = max(len(v) for v in sets.values())
            for k in range(n):
                out = list(scal)
                for i, v in sets.items():
                    out[i] = v[k] if k < len(v) else None
                yield tuple(out)


def contains_srf(node: exp.Expression) -> bool:
    return any(srf_name(n) is not None for n in node.walk() if isinstance(n, exp.Func))


_ = (re, _dt)
