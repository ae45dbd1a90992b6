"""Array expressions and functions.

Array values are Python lists (nested lists for several dimensions, lower bound always 1);
their SQL type is the array OID of the element type (``types.ARRAY_OF``).  Compiled here:
``ARRAY[...]``, subscripts and slices, ``x op ANY/ALL (array | subquery)``, ``||`` on
arrays and the array functions (array_length, cardinality, array_upper/lower,
array_append/prepend/cat, array_position(s), array_remove, array_replace, array_to_string,
string_to_array, array_dims, array_ndims).

sqlglot normalises a literal subscript ``a[1]`` to 0-based (``Literal(0)``) but leaves
other subscripts and slice bounds as written; ``_index`` undoes the former.
"""

from __future__ import annotations

from typing import Any, Callable

from sqlglot import exp

from engine import errors
from engine import types as T
from engine.expr import CExpr, Compiler, _common_type, _subquery_rows, const

_CMP = {"EQ": lambda a, b: a == b, "NEQ": lambda a, b: a != b, "LT": lambda a, b: a < b,
        "LTE": lambda a, b: a <= b, "GT": lambda a, b: a > b, "GTE": lambda a, b: a >= b}


def elem_type(oid: int) -> int:
    return T.ELEM_OF.get(oid, T.TEXT if oid == T.UNKNOWN else oid)


def as_array(cp: Compiler, c: CExpr, elem: int | None = None) -> CExpr:
    """Coerce an operand to an array type (an unknown literal '{1,2}' adopts ``elem``)."""
    if c.type in T.ELEM_OF:
        return c
    if c.type == T.UNKNOWN or c.param is not None:
        return cp.coerce(c, T.array_of(elem if elem is not None else T.TEXT))
    raise errors.DatatypeMismatch(f"op ANY/ALL (array) requires array on right side")


def compile_array(cp: Compiler, node: exp.Array) -> CExpr:
    if len(node.expressions) == 1 and isinstance(node.expressions[0], (exp.Select, exp.Subquery, exp.Union)):
        q = node.expressions[0]  # ARRAY(subquery): the subquery's single column as an array
        plan = cp.env.planner.plan_subquery(q.this if isinstance(q, exp.Subquery) else q, cp.scope)
        if len(plan.columns) != 1:
            raise errors.SyntaxErr("subquery must return only one column")
        getrows = _subquery_rows(plan)
        return CExpr(lambda r, c: [row[0] for row in getrows(r, c)], T.array_of(plan.columns[0].type_oid))
    items = [cp.compile(e) for e in node.expressions]
    if not items:
        return const([], 1009)
    nested = all(i.type in T.ELEM_OF for i in items)
    if nested:
        t = items[0].type
        fs = [cp.coerce(i, t).fn for i in items]
        return CExpr(lambda r, c: [f(r, c) or [] for f in fs], t)
    et = _common_type(items)
    fs = [cp.coerce(i, et).fn for i in items]
    if all(i.is_const for i in items):
        return const([f(None, None) for f in fs], T.array_of(et))
    return CExpr(lambda r, c: [f(r, c) for f in fs], T.array_of(et))


def _index(cp: Compiler, e: exp.Expression, literal_shift: bool) -> Callable:
    if literal_shift and isinstance(e, exp.Literal) and not e.is_string:
        v = int(e.this) + 1
        return lambda r, c: v
    if literal_shift and isinstance(e, exp.Neg) and isinstance(e.this, exp.Literal) and not e.this.is_string:
        v = 1 - int(e.this.this)  # sqlglot reads a[0] as a[-1] (0-based): undo the shift
        return lambda r, c: v
    return cp.coerce(cp.compile(e), T.INT4).fn


def compile_bracket(cp: Compiler, node: exp.Bracket) -> CExpr:
    base = cp.compile(node.this)
    if base.type in (T.JSON, T.JSONB):
        raise errors.FeatureNotSupported("jsonb subscripting is not supported")
    if base.type == T.UNKNOWN:
        base = cp.coerce(base, 1009)
    if base.type not in T.ELEM_OF:
        raise errors.DatatypeMismatch(
            f"cannot subscript type {T.TYPE_NAMES.get(base.type, base.type)} because it does not support subscripting")
    fb = base.fn
    sub = node.expressions[0]
    if isinstance(sub, exp.Slice):
        lo = _index(cp, sub.this, False) if sub.this is not None else None
        hi = _index(cp, sub.expression, False) if sub.expression is not None else None

        def run_slice(r: Any, c: Any) -> Any:
            a = fb(r, c)
            if a is None:
                return None
            i = lo(r, c) if lo else 1
            j = hi(r, c) if hi else len(a)
            if i is None or j is None:
                return None
            return a[max(i, 1) - 1:max(j, 0)]

        return CExpr(run_slice, base.type)
    # sqlglot moved a constant subscript to 0-based only where it took the base for an array
    # (or could not tell): not after a cast to a type it does not know (::int2vector)
    st = getattr(node.this, "type", None)
    fi = _index(cp, sub, st is None or st.this in (exp.DataType.Type.UNKNOWN, exp.DataType.Type.ARRAY))
    if base.type in T.VECTORS:  # int2vector / oidvector subscripts start at 0
        fi0 = fi
        fi = lambda r, c: None if (i := fi0(r, c)) is None else i + 1  # noqa: E731

    def run(r: Any, c: Any) -> Any:
        a = fb(r, c)
        if a is None:
            return None
        i = fi(r, c)
        if i is None or i < 1 or i > len(a):
            return None
        return a[i - 1]

    return CExpr(run, elem_type(base.type))


def compile_quantified(cp: Compiler, node: exp.Binary, q: exp.Expression) -> CExpr:
    """``x op ANY (...)`` / ``x op ALL (...)``: an array or a one-column subquery."""
    is_all = isinstance(q, exp.All)
    x = cp.compile(node.this)
    op = _CMP.get(type(node).__name__)
    if op is None:
        raise errors.FeatureNotSupported(f"{type(node).__name__} with ANY/ALL is not supported")
    inner = q.this
    while isinstance(inner, exp.Paren):
        inner = inner.this
    if isinstance(inner, (exp.Subquery, exp.Select, exp.Union)):
        plan = cp.env.planner.plan_subquery(inner.this if isinstance(inner, exp.Subquery) else inner, cp.scope)
        if len(plan.columns) != 1:
            raise errors.SyntaxErr("subquery has too many columns")
        x, _ = cp.unify(x, CExpr(lambda r, c: None, plan.columns[0].type_oid))
        getrows = _subquery_rows(plan)
        fvals = lambda r, c: [w for (w,) in getrows(r, c)]  # noqa: E731
    else:
        arr = as_array(cp, cp.compile(inner), x.type)
        et = elem_type(arr.type)
        probe = CExpr(lambda r, c: None, et)
        x, _ = cp.unify(x, probe)
        fa = arr.fn
        conv = T.caster(et, x.type) if x.type != et and x.type not in T.STRINGS else None

        def fvals(r: Any, c: Any) -> Any:
            a = fa(r, c)
            if a is None:
                return None
            flat = _flatten(a)
            return flat if conv is None else [None if v is None else conv(v) for v in flat]
    fx = x.fn

    def run(r: Any, c: Any) -> Any:
        v = fx(r, c)
        vals = fvals(r, c)
        if vals is None:
            return None
        if not vals:
            return is_all
        if v is None:
            return None
        saw_null = False
        for w in vals:
            if w is None:
                saw_null = True
                continue
            hit = op(v, w)
            if is_all and not hit:
                return False
            if not is_all and hit:
                return True
        if saw_null:
            return None
        return is_all

    return CExpr(run, T.BOOL)


def _flatten(a: list) -> list:
    if not any(isinstance(x, list) for x in a):
        return a
    out: list = []
    for x in a:
        if isinstance(x, list):
            out.extend(_flatten(x))
        else:
            out.append(x)
    return out


def _dims(a: list) -> list[int]:
    out = []
    while isinstance(a, list):
        out.append(len(a))
        if not a:
            break
        a = a[0]
    return out


def concat(cp: Compiler, a: CExpr, b: CExpr) -> CExpr | None:
    """``||`` when either side is an array (array || array, array || elem, elem || array)."""
    if a.type not in T.ELEM_OF and b.type not in T.ELEM_OF:
        return None
    if a.type in T.ELEM_OF and b.type in T.ELEM_OF:
        fa, fb = a.fn, cp.coerce(b, a.type).fn
        return CExpr(lambda r, c: _cat(fa(r, c), fb(r, c)), a.type)
    if a.type in T.ELEM_OF:
        if b.type == T.UNKNOWN and b.is_const and str(b.const).startswith("{"):
            fa, fb = a.fn, cp.coerce(b, a.type).fn
            return CExpr(lambda r, c: _cat(fa(r, c), fb(r, c)), a.type)
        fa, fb = a.fn, cp.coerce(b, elem_type(a.type)).fn
        return CExpr(lambda r, c: (fa(r, c) or []) + [fb(r, c)], a.type)
    fa, fb = cp.coerce(a, elem_type(b.type)).fn, b.fn
    return CExpr(lambda r, c: [fa(r, c)] + (fb(r, c) or []), b.type)


def _cat(x: Any, y: Any) -> Any:
    if x is None:
        return y
    if y is None:
        return x
    return x + y


# -- functions ---------------------------------------------------------------------------------
def _args(node: exp.Expression) -> list[exp.Expression]:
    if isinstance(node, exp.Anonymous):
        return list(node.expressions)
    out = [node.this] if node.this is not None else []
    for k in ("expression", "expressions", "null"):
        v = node.args.get(k)
        if isinstance(v, list):
            out.extend(v)
        elif isinstance(v, exp.Expression):
            out.append(v)
    return out


def _arr_arg(cp: Compiler, e: exp.Expression) -> CExpr:
    c = cp.compile(e)
    if c.type == T.UNKNOWN or (c.param is not None and c.type not in T.ELEM_OF):
        c = cp.coerce(c, 1009)
    if c.type not in T.ELEM_OF:
        raise errors.UndefinedFunction(f"function does not exist for type {T.TYPE_NAMES.get(c.type, c.type)}",
                                       hint="No function matches the given name and argument types.")
    return c


def _strict(fs: list, body: Callable, oid: int) -> CExpr:
    def run(r: Any, c: Any) -> Any:
        vals = [f(r, c) for f in fs]
        if any(v is None for v in vals):
            return None
        return body(*vals)

    return CExpr(run, oid)


def _array_length(cp: Compiler, node: exp.Expression) -> CExpr:
    a, d = _args(node)[:2]
    ca = _arr_arg(cp, a)
    cd = cp.coerce(cp.compile(d), T.INT4)

    def body(v: list, dim: int) -> Any:
        ds = _dims(v)
        return ds[dim - 1] if 1 <= dim <= len(ds) and ds[dim - 1] > 0 else None

    return _strict([ca.fn, cd.fn], body, T.INT4)


def _array_lower(cp: Compiler, node: exp.Expression) -> CExpr:
    a, d = _args(node)[:2]
    ca, cd = _arr_arg(cp, a), cp.coerce(cp.compile(d), T.INT4)
    return _strict([ca.fn, cd.fn], lambda v, dim: 1 if 1 <= dim <= len(_dims(v)) and v else None, T.INT4)


def _cardinality(cp: Compiler, node: exp.Expression) -> CExpr:
    ca = _arr_arg(cp, _args(node)[0])
    return _strict([ca.fn], lambda v: len(_flatten(v)), T.INT4)


def _ndims(cp: Compiler, node: exp.Expression) -> CExpr:
    ca = _arr_arg(cp, _args(node)[0])
    return _strict([ca.fn], lambda v: len(_dims(v)) if v else None, T.INT4)


def _array_dims(cp: Compiler, node: exp.Expression) -> CExpr:
    ca = _arr_arg(cp, _args(node)[0])
    return _strict([ca.fn], lambda v: "".join(f"[1:{n}]" for n in _dims(v)) if v else None, T.TEXT)


def _append(cp: Compiler, node: exp.Expression) -> CExpr:
    a, b = _args(node)[:2]
    ca = _arr_arg(cp, a)
    fa, fb = ca.fn, cp.coerce(cp.compile(b), elem_type(ca.type)).fn
    return CExpr(lambda r, c: (fa(r, c) or []) + [fb(r, c)], ca.type)


def _prepend(cp: Compiler, node: exp.Expression) -> CExpr:
    b, a = _args(node)[:2]
    ca = _arr_arg(cp, a)
    fa, fb = ca.fn, cp.coerce(cp.compile(b), elem_type(ca.type)).fn
    return CExpr(lambda r, c: [fb(r, c)] + (fa(r, c) or []), ca.type)


def _cat_fn(cp: Compiler, node: exp.Expression) -> CExpr:
    a, b = _args(node)[:2]
    ca = _arr_arg(cp, a)
    fa, fb = ca.fn, cp.coerce(cp.compile(b), ca.type).fn
    return CExpr(lambda r, c: _cat(fa(r, c), fb(r, c)), ca.type)


def _position(cp: Compiler, node: exp.Expression) -> CExpr:
    args = _args(node)
    ca = _arr_arg(cp, args[0])
    fa, fb = ca.fn, cp.coerce(cp.compile(args[1]), elem_type(ca.type)).fn

    def run(r: Any, c: Any) -> Any:
        a = fa(r, c)
        if a is None:
            return None
        v = fb(r, c)
        for i, x in enumerate(a):
            if x == v:
                return i + 1
        return None

    return CExpr(run, T.INT4)


def _positions(cp: Compiler, node: exp.Expression) -> CExpr:
    args = _args(node)
    ca = _arr_arg(cp, args[0])
    fa, fb = ca.fn, cp.coerce(cp.compile(args[1]), elem_type(ca.type)).fn
    return CExpr(lambda r, c: None if (a := fa(r, c)) is None else
                 [i + 1 for i, x in enumerate(a) if x == fb(r, c)], 1007)


def _remove(cp: Compiler, node: exp.Expression) -> CExpr:
    args = _args(node)
    ca = _arr_arg(cp, args[0])
    fa, fb = ca.fn, cp.coerce(cp.compile(args[1]), elem_type(ca.type)).fn
    return CExpr(lambda r, c: None if (a := fa(r, c)) is None else
                 [x for x in a if x != (v := fb(r, c)) or (x is None) != (v is None)], ca.type)


def _replace(cp: Compiler, node: exp.Expression) -> CExpr:
    args = _args(node)
    ca = _arr_arg(cp, args[0])
    et = elem_type(ca.type)
    fa, fb, fc = ca.fn, cp.coerce(cp.compile(args[1]), et).fn, cp.coerce(cp.compile(args[2]), et).fn
    return CExpr(lambda r, c: None if (a := fa(r, c)) is None else
                 [fc(r, c) if x == fb(r, c) else x for x in a], ca.type)


def _to_string(cp: Compiler, node: exp.Expression) -> CExpr:
    args = _args(node)
    ca = _arr_arg(cp, args[0])
    sep = cp.coerce(cp.compile(args[1]), T.TEXT).fn
    nul = cp.coerce(cp.compile(args[2]), T.TEXT).fn if len(args) > 2 else None

    def run(r: Any, c: Any) -> Any:
        a, s = ca.fn(r, c), sep(r, c)
        if a is None or s is None:
            return None
        n = nul(r, c) if nul else None
        return s.join(T.to_text(x) if x is not None else n for x in _flatten(a) if x is not None or n is not None)

    return CExpr(run, T.TEXT)


def _string_to_array(cp: Compiler, node: exp.Expression) -> CExpr:
    args = _args(node)
    fs = [cp.coerce(cp.compile(e), T.TEXT).fn for e in args[:3]]

    def run(r: Any, c: Any) -> Any:
        s = fs[0](r, c)
        if s is None:
            return None
        sep = fs[1](r, c)
        nul = fs[2](r, c) if len(fs) > 2 else None
        if s == "":
            return []
        parts = list(s) if sep is None else [s] if sep == "" else s.split(sep)
        return [None if nul is not None and p == nul else p for p in parts]

    return CExpr(run, 1009)


HANDLERS: dict[str, Callable[[Compiler, exp.Expression], CExpr]] = {
    "ArraySize": _array_length, "array_length": _array_length, "array_upper": _array_length,
    "array_lower": _array_lower, "cardinality": _cardinality, "array_ndims": _ndims, "array_dims": _array_dims,
    "ArrayAppend": _append, "array_append": _append, "array_prepend": _prepend, "ArrayPrepend": _prepend,
    "ArrayConcat": _cat_fn, "array_cat": _cat_fn, "ArrayPosition": _position, "array_position": _position,
    "array_positions": _positions, "ArrayRemove": _remove, "array_remove": _remove, "array_replace": _replace,
    "ArrayToString": _to_string, "array_to_string": _to_string, "StringToArray": _string_to_array,
    "string_to_array": _string_to_array, "Split": _string_to_array,
}
