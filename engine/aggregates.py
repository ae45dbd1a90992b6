"""Aggregate functions: recognition, planning (``agg_spec``) and evaluation (``AggState``).

An aggregate call compiles to an ``AggSpec``: its kind, argument closures, DISTINCT, an
optional FILTER predicate and an optional ORDER BY inside the call.  Evaluation keeps one
state list per group: ``[acc, distinct-set | None, n, extra]``.  Aggregates with ORDER BY
buffer (sort keys, args) and replay them in order at the end, so every kind supports it.

The same specs run as window aggregates (``engine.window``) over frames.
"""

from __future__ import annotations

import json
import math
from decimal import Decimal
from functools import reduce
from operator import add, itemgetter
from typing import Any

from sqlglot import exp

from engine import errors
from engine import types as T
from engine.expr import _num_div, ref_index

# sqlglot nodes that are aggregates, and aggregate names sqlglot leaves as Anonymous
AGG_NODES = (exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.GroupConcat, exp.LogicalAnd, exp.LogicalOr,
             exp.ArrayAgg, exp.Stddev, exp.StddevPop, exp.StddevSamp, exp.Variance, exp.VariancePop,
             exp.BitwiseAndAgg, exp.BitwiseOrAgg, exp.JSONArrayAgg, exp.JSONObjectAgg)
AGG_NAMES = {"every", "bool_and", "bool_or", "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg",
             "string_agg", "array_agg", "var_samp", "var_pop", "stddev_samp", "stddev_pop", "bit_and", "bit_or",
             "bit_xor", "count", "sum", "avg", "min", "max", "variance", "stddev"}

_KEEP_NULLS = {"array_agg", "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg"}
_STATS = {"stddev_samp", "stddev_pop", "var_samp", "var_pop"}


def is_agg_node(node: exp.Expression) -> bool:
    if isinstance(node, AGG_NODES):
        return True
    if isinstance(node, exp.Filter):
        return is_agg_node(node.this)
    return isinstance(node, exp.Anonymous) and str(node.this).lower() in AGG_NAMES


class AggSpec:
    __slots__ = ("kind", "arg", "distinct", "type", "sep", "filter", "order", "arg2")

    def __init__(self, kind: str, arg: Any, distinct: bool, type_: int, sep: Any = None,
                 filter_: Any = None, order: list | None = None, arg2: Any = None) -> None:
        self.kind, self.arg, self.distinct, self.type, self.sep = kind, arg, distinct, type_, sep
        self.filter, self.order, self.arg2 = filter_, order, arg2


def agg_init(spec: AggSpec) -> list:
    return [0 if spec.kind in ("count", "count_star") else None, set() if spec.distinct else None, 0,
            [] if spec.order else None]


def agg_step(spec: AggSpec, st: list, row: tuple, ctx: Any) -> None:
    if spec.filter is not None and spec.filter(row, ctx) is not True:
        return
    if spec.order:
        keys = tuple(f(row, ctx) for f, _, _ in spec.order)
        st[3].append((keys, _args_of(spec, row, ctx)))
        return
    _feed(spec, st, _args_of(spec, row, ctx))


def agg_stepper(spec: AggSpec) -> Any:
    """``agg_step`` for one spec as a closure ``step(st, row, ctx)``: the plain forms of
    count / sum / avg / min / max (no DISTINCT, FILTER or ORDER BY) without the general
    path's per-row dispatch; every other aggregate goes through ``agg_step``."""
    kind, arg = spec.kind, spec.arg
    plain = spec.filter is None and not spec.order and not spec.distinct and spec.sep is None and spec.arg2 is None
    if not plain or kind not in ("count_star", "count", "sum", "avg", "min", "max"):
        return lambda st, row, ctx: agg_step(spec, st, row, ctx)
    # The same state updates as ``_feed`` for these kinds, without its dispatch.
    if kind == "count_star":
        def step(st: list, row: tuple, ctx: Any) -> None:
            st[0] += 1
    elif kind == "count":
        def step(st: list, row: tuple, ctx: Any) -> None:
            if arg(row, ctx) is not None:
                st[0] += 1
    elif kind in ("sum", "avg"):
        def step(st: list, row: tuple, ctx: Any) -> None:
            v = arg(row, ctx)
            if v is not None:
                acc = st[0]
                st[0] = v if acc is None else acc + v
                st[2] += 1
    elif kind == "min":
        def step(st: list, row: tuple, ctx: Any) -> None:
            v = arg(row, ctx)
            if v is not None:
                acc = st[0]
                if acc is None or v < acc:
                    st[0] = v
    else:  # max
        def step(st: list, row: tuple, ctx: Any) -> None:
            v = arg(row, ctx)
            if v is not None:
                acc = st[0]
                if acc is None or v > acc:
                    st[0] = v
    return step


def agg_folder(spec: AggSpec) -> Any:
    """For the plain count / sum / avg / min / max (those ``agg_stepper`` runs without
    dispatch): a closure ``fold(st, rows, ctx)`` feeding a list of rows into the state at
    once -- the argument of every row in one comprehension (one ``map(itemgetter)`` for a
    column), then ``sum`` / ``reduce(add)`` / ``max`` / ``min`` over the non-NULL values.
    The result is the one ``agg_step`` row by row gives: additions happen in row order from
    the first value (``sum``, or ``reduce`` for floats: see ``_sum_fold``), and
    ``max``/``min`` keep the first of equal extremes as the strict comparison does.  None
    for every other aggregate."""
    kind, arg = spec.kind, spec.arg
    plain = spec.filter is None and not spec.order and not spec.distinct and spec.sep is None and spec.arg2 is None
    if not plain or kind not in ("count_star", "count", "sum", "avg", "min", "max"):
        return None
    if kind == "count_star":
        def fold(st: list, rows: list, ctx: Any) -> None:
            st[0] += len(rows)
        return fold
    i = ref_index(arg)
    get = itemgetter(i) if i is not None else None

    def values(rows: list, ctx: Any) -> list:
        vals = map(get, rows) if get is not None else [arg(r, ctx) for r in rows]
        return [v for v in vals if v is not None]

    if kind == "count":
        def fold(st: list, rows: list, ctx: Any) -> None:
            st[0] += len(values(rows, ctx))
    elif kind in ("sum", "avg"):
        fold = _sum_fold(values, spec.type in (T.FLOAT4, T.FLOAT8))
    else:
        pick = max if kind == "max" else min
        better = (lambda v, acc: v > acc) if kind == "max" else (lambda v, acc: v < acc)

        def fold(st: list, rows: list, ctx: Any) -> None:
            vals = values(rows, ctx)
            if vals:
                v = pick(vals)
                acc = st[0]
                if acc is None or better(v, acc):
                    st[0] = v
    return fold


def _sum_fold(values: Any, floats: bool) -> Any:
    # sum() adds in order -- except floats from Python 3.12 on (compensated summation), so
    # float sums go through reduce(add) to give exactly what adding row by row gives
    def fold(st: list, rows: list, ctx: Any) -> None:
        vals = values(rows, ctx)
        if not vals:
            return
        st[2] += len(vals)
        acc = st[0]
        if acc is None:
            acc = vals[0]
            vals = vals[1:]
        st[0] = reduce(add, vals, acc) if floats or type(acc) is float else sum(vals, acc)
    return fold


def _args_of(spec: AggSpec, row: tuple, ctx: Any) -> tuple:
    if spec.kind == "count_star":
        return ()
    v = spec.arg(row, ctx)
    if spec.sep is not None:
        return (v, spec.sep(row, ctx))
    if spec.arg2 is not None:
        return (v, spec.arg2(row, ctx))
    return (v,)


def _feed(spec: AggSpec, st: list, args: tuple) -> None:
    kind = spec.kind
    if kind == "count_star":
        st[0] += 1
        return
    v = args[0]
    if v is None and kind not in _KEEP_NULLS:
        return
    if st[1] is not None:
        key = v if not isinstance(v, (list, dict)) else json.dumps(v, sort_keys=True, default=str)
        if key in st[1]:
            return
        st[1].add(key)
    acc = st[0]
    if kind == "count":
        st[0] = acc + 1
    elif kind in ("sum", "avg"):
        st[0] = v if acc is None else acc + v
        st[2] += 1
    elif kind == "min":
        if acc is None or v < acc:
            st[0] = v
    elif kind == "max":
        if acc is None or v > acc:
            st[0] = v
    elif kind == "string_agg":
        sep = args[1] if len(args) > 1 else ","
        st[0] = v if acc is None else acc + (sep or "") + v
    elif kind == "bool_and":
        st[0] = v if acc is None else (acc and v)
    elif kind == "bool_or":
        st[0] = v if acc is None else (acc or v)
    elif kind in ("array_agg", "json_agg", "jsonb_agg"):
        if acc is None:
            st[0] = [v]
        else:
            acc.append(v)
    elif kind in ("json_object_agg", "jsonb_object_agg"):
        if v is None:
            raise errors.SqlError("field name must not be null", sqlstate="22023")
        if acc is None:
            st[0] = acc = {}
        acc[T.to_text(v) if not isinstance(v, str) else v] = args[1] if len(args) > 1 else None
    elif kind in _STATS:
        if acc is None:
            st[0] = acc = []
        acc.append(v)
    elif kind == "bit_and":
        st[0] = v if acc is None else acc & v
    elif kind == "bit_or":
        st[0] = v if acc is None else acc | v
    elif kind == "bit_xor":
        st[0] = v if acc is None else acc ^ v
    else:
        raise errors.FeatureNotSupported(f"aggregate {kind} is not supported")


def agg_final(spec: AggSpec, st: list) -> Any:
    if spec.order:
        buf = st[3]
        for i in range(len(spec.order) - 1, -1, -1):
            _, desc, nulls_first = spec.order[i]
            nf = nulls_first if nulls_first is not None else desc
            buf.sort(key=lambda kv, i=i, nf=nf: _null_key(kv[0][i], nf, desc), reverse=desc)
        fresh = agg_init(AggSpec(spec.kind, spec.arg, spec.distinct, spec.type))
        for _, args in buf:
            _feed(spec, fresh, args)
        st = fresh
    v = st[0]
    kind = spec.kind
    if kind == "avg":
        if v is None:
            return None
        if spec.type == T.FLOAT8:
            return float(v) / st[2]
        if spec.type == T.INTERVAL:
            return v / st[2]
        return _num_div(Decimal(v), Decimal(st[2]))
    if kind == "sum" and v is not None:
        if spec.type == T.INT8:
            T.check_int(v, T.INT8)
        elif spec.type == T.NUMERIC and type(v) is not Decimal:
            return Decimal(v)
    if kind in _STATS:
        return _stat(kind, v or [], spec.type)
    return v


def _null_key(v: Any, nulls_first: bool, desc: bool) -> tuple:
    # with reverse=desc the tuple order flips, so rank NULLs to land where asked
    if v is None:
        return (0 if nulls_first != desc else 2, 0)
    return (1, v)


def _stat(kind: str, vals: list, t: int) -> Any:
    n = len(vals)
    samp = kind.endswith("samp")
    if n == 0 or (samp and n == 1):
        return None
    if t == T.FLOAT8:
        xs = [float(x) for x in vals]
        mean = math.fsum(xs) / n
        ss = math.fsum((x - mean) ** 2 for x in xs)
        var = ss / (n - 1 if samp else n)
        return math.sqrt(var) if kind.startswith("stddev") else var
    xs2 = [Decimal(x) for x in vals]
    s1 = sum(xs2)
    s2 = sum(x * x for x in xs2)
    num = n * s2 - s1 * s1
    var = _num_div(num, Decimal(n * (n - 1 if samp else n)))
    if kind.startswith("stddev"):
        from decimal import localcontext

        with localcontext() as lc:
            lc.prec = 40
            r = var.sqrt()
        e = var.as_tuple().exponent
        scale = max(-e if isinstance(e, int) and e < 0 else 0, 16)
        return r.quantize(Decimal(1).scaleb(-scale))
    return var


# -- planning -------------------------------------------------------------------------------------
_KIND_BY_NODE = {"Stddev": "stddev_samp", "StddevSamp": "stddev_samp", "StddevPop": "stddev_pop",
                 "Variance": "var_samp", "VariancePop": "var_pop", "BitwiseAndAgg": "bit_and",
                 "BitwiseOrAgg": "bit_or", "JSONArrayAgg": "json_agg", "JSONObjectAgg": "json_object_agg"}
_KIND_BY_NAME = {"every": "bool_and", "variance": "var_samp", "stddev": "stddev_samp"}


def agg_spec(node: exp.Expression, cp: Any) -> AggSpec:
    """Compile one aggregate call (arguments with ``cp``, the pre-aggregation compiler)."""
    filt = None
    if isinstance(node, exp.Filter):
        w = node.expression
        filt = cp.compile_bool(w.this if isinstance(w, exp.Where) else w).fn
        node = node.this
    if isinstance(node, exp.Anonymous):
        name = str(node.this).lower()
        args = list(node.expressions)
        kind = _KIND_BY_NAME.get(name, name)
    else:
        name = type(node).__name__
        kind = _KIND_BY_NODE.get(name, "")
        args = [node.this] if node.this is not None else []
        if isinstance(node, exp.JSONObjectAgg):
            args = list(node.expressions)
    order = None
    if args and isinstance(args[0], exp.Order):
        o = args[0]
        order = [(cp.compile(x.this).fn, bool(x.args.get("desc")), x.args.get("nulls_first"))
                 for x in o.expressions]
        args[0] = o.this
    elif args and isinstance(args[-1], exp.Order):  # string_agg(a, ',' ORDER BY a)
        o = args[-1]
        order = [(cp.compile(x.this).fn, bool(x.args.get("desc")), x.args.get("nulls_first"))
                 for x in o.expressions]
        args[-1] = o.this
    distinct = bool(args) and isinstance(args[0], exp.Distinct)
    if distinct:
        args = list(args[0].expressions) + args[1:]
    if kind == "":
        spec = _builtin(node, args, cp, distinct)
    else:
        spec = _named(kind, args, cp, distinct)
    spec.filter, spec.order = filt, order
    return spec


def _builtin(node: exp.Expression, args: list, cp: Any, distinct: bool) -> AggSpec:
    arg = args[0] if args else None
    if isinstance(node, exp.Count):
        if arg is None or isinstance(arg, exp.Star):
            return AggSpec("count_star", None, False, T.INT8)
        return AggSpec("count", cp.compile(arg).fn, distinct, T.INT8)
    if isinstance(node, exp.GroupConcat):
        sep = node.args.get("separator")
        a = cp.coerce(cp.compile(arg), T.TEXT)
        if isinstance(sep, exp.Order):
            sep = sep.this
        return AggSpec("string_agg", a.fn, distinct, T.TEXT, cp.coerce(cp.compile(sep), T.TEXT).fn if sep is not None else None)
    kind = {exp.Sum: "sum", exp.Avg: "avg", exp.Min: "min", exp.Max: "max", exp.LogicalAnd: "bool_and",
            exp.LogicalOr: "bool_or", exp.ArrayAgg: "array_agg"}.get(type(node))
    if kind is None:
        raise errors.FeatureNotSupported(f"aggregate {node.sql_name()} is not supported")
    return _named(kind, args, cp, distinct)


def _named(kind: str, args: list, cp: Any, distinct: bool) -> AggSpec:
    if kind == "count":
        if not args or isinstance(args[0], exp.Star):
            return AggSpec("count_star", None, False, T.INT8)
        return AggSpec("count", cp.compile(args[0]).fn, distinct, T.INT8)
    if not args:
        raise errors.UndefinedFunction(f"function {kind}() does not exist")
    a = cp.compile(args[0])
    if kind in ("sum", "avg") or kind in _STATS:
        if a.type == T.UNKNOWN:
            a = cp.coerce(a, T.NUMERIC)
        if a.type not in T.NUMERICS and not (a.type == T.INTERVAL and kind in ("sum", "avg")):
            raise errors.UndefinedFunction(f"function {kind}({T.TYPE_NAMES.get(a.type)}) does not exist",
                                           hint="No function matches the given name and argument types. "
                                                "You might need to add explicit type casts.")
        if kind == "sum":
            t = {T.INT2: T.INT8, T.INT4: T.INT8, T.INT8: T.NUMERIC}.get(a.type, a.type)
        elif a.type == T.INTERVAL:
            t = T.INTERVAL
        else:
            t = T.FLOAT8 if a.type in (T.FLOAT4, T.FLOAT8) else T.NUMERIC
        return AggSpec(kind, a.fn, distinct, t)
    if kind in ("min", "max"):
        return AggSpec(kind, a.fn, distinct, T.TEXT if a.type == T.UNKNOWN else a.type, )
    if kind == "string_agg":
        sep = cp.coerce(cp.compile(args[1]), T.TEXT).fn if len(args) > 1 else None
        return AggSpec(kind, cp.coerce(a, T.TEXT).fn, distinct, T.TEXT, sep)
    if kind in ("bool_and", "bool_or"):
        return AggSpec(kind, cp.coerce(a, T.BOOL).fn, distinct, T.BOOL)
    if kind == "array_agg":
        return AggSpec(kind, a.fn, distinct, T.array_of(T.TEXT if a.type == T.UNKNOWN else a.type))
    if kind in ("json_agg", "jsonb_agg"):
        t = T.JSONB if kind == "jsonb_agg" else T.JSON
        return AggSpec(kind, _jsonable(a), distinct, t)
    if kind in ("json_object_agg", "jsonb_object_agg"):
        t = T.JSONB if kind.startswith("jsonb") else T.JSON
        return AggSpec(kind, a.fn, distinct, t, arg2=_jsonable(cp.compile(args[1])))
    if kind in ("bit_and", "bit_or", "bit_xor"):
        return AggSpec(kind, a.fn, distinct, a.type)
    raise errors.FeatureNotSupported(f"aggregate {kind} is not supported")


def _jsonable(c: Any) -> Any:
    """Closure giving the JSON value of an SQL value (numbers stay numbers, others as text)."""
    f, t = c.fn, c.type
    if t in (T.JSON, T.JSONB, T.BOOL) or t in T.NUMERICS or t in T.ELEM_OF:
        return f
    if t in T.STRINGS:
        return f
    return lambda r, ctx: None if (v := f(r, ctx)) is None else T.to_text(v)
