"""json / jsonb operators and functions.

Values are Python json values (dict, list, str, int/float/Decimal, bool, None for JSON
null).  jsonb output normalisation (key order, spacing) is done by the wire encoder; here
jsonb objects are built with keys sorted the jsonb way (shorter first, then bytewise) so
the order seen by jsonb_each / jsonb_object_keys / text casts matches PostgreSQL.

Operators: ``-> ->> #> #>>`` (sqlglot: JSONExtract[Scalar], JSONBExtract[Scalar]),
``@> <@`` (ArrayContainsAll / ArrayContainedBy, shared with arrays), ``? ?| ?&``.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Callable

from sqlglot import exp

from engine import errors
from engine import types as T
from engine.expr import CExpr, Compiler

_MISSING = object()


def _jsonb_sorted(d: dict) -> dict:
    return {k: d[k] for k in sorted(d, key=lambda k: (len(k.encode()), k.encode()))}


def to_json_value(v: Any, oid: int) -> Any:
    """An SQL value as a JSON value (to_json semantics)."""
    if v is None:
        return None
    if oid in (T.JSON, T.JSONB):
        return v
    if isinstance(v, (bool, int, float, Decimal, str)):
        return v
    if isinstance(v, list):
        eo = T.ELEM_OF.get(oid, T.TEXT)
        return [to_json_value(x, eo) for x in v]
    if isinstance(v, dict):
        return v
    s = T.to_text(v)
    if oid in (T.TIMESTAMP, T.TIMESTAMPTZ):
        s = s.replace(" ", "T")
        if s.endswith("+00"):
            s += ":00"
    return s


def json_text(v: Any) -> str:
    """Text of a JSON value as ->> returns it (strings unquoted)."""
    if isinstance(v, str):
        return v
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (dict, list)):
        return json.dumps(v, separators=(", ", ": "), default=str, ensure_ascii=False)
    if isinstance(v, float):
        return T.format_float(v)
    return str(v)


def _json(cp: Compiler, e: exp.Expression, jsonb: bool = True) -> CExpr:
    c = cp.compile(e)
    if c.type not in (T.JSON, T.JSONB):
        c = cp.coerce(c, T.JSONB if jsonb else T.JSON)
    return c


def _step(v: Any, k: Any) -> Any:
    if isinstance(v, dict):
        if isinstance(k, int):
            k = str(k)
        return v.get(k, _MISSING)
    if isinstance(v, list):
        try:
            i = int(k)
        except (TypeError, ValueError):
            return _MISSING
        if -len(v) <= i < len(v):
            return v[i]
        return _MISSING
    return _MISSING


def _path_keys(cp: Compiler, node: exp.Expression) -> Callable:
    """The key (or keys) of ``->`` / ``->>``: a literal path, or any key expression."""
    p = node.expression
    if isinstance(p, exp.JSONPath):
        keys: list = []
        for part in p.expressions:
            if isinstance(part, exp.JSONPathRoot):
                continue
            if isinstance(part, exp.JSONPathSubscript):
                keys.append(int(part.this))
            elif isinstance(part, exp.JSONPathKey):
                keys.append(str(part.this))
            else:
                raise errors.FeatureNotSupported(f"json path {p.sql()} is not supported")
        return lambda r, c: keys
    k = cp.compile(p)
    if k.type == T.UNKNOWN:
        k = cp.coerce(k, T.TEXT)
    f = k.fn
    return lambda r, c: None if (v := f(r, c)) is None else [v]


def _arrow(scalar: bool) -> Callable:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        j = _json(cp, node.this)
        fj, fk = j.fn, _path_keys(cp, node)

        def run(r: Any, c: Any) -> Any:
            v = fj(r, c)
            keys = fk(r, c)
            if v is None or keys is None:
                return None
            for k in keys:
                v = _step(v, k)
                if v is _MISSING:
                    return None
            if scalar:
                return None if v is None else json_text(v)
            return v

        return CExpr(run, T.TEXT if scalar else j.type)

    return h


def _hash_arrow(scalar: bool) -> Callable:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        j = _json(cp, node.this)
        p = cp.coerce(cp.compile(node.expression), 1009)
        fj, fp = j.fn, p.fn

        def run(r: Any, c: Any) -> Any:
            v, path = fj(r, c), fp(r, c)
            if v is None or path is None:
                return None
            for k in path:
                if k is None:
                    return None
                v = _step(v, k)
                if v is _MISSING:
                    return None
            if scalar:
                return None if v is None else json_text(v)
            return v

        return CExpr(run, T.TEXT if scalar else j.type)

    return h


def _contains(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return all(k in a and _contains(a[k], v) for k, v in b.items())
    if isinstance(a, list):
        if isinstance(b, list):
            return all(any(_contains(x, y) for x in a) for y in b)
        return any(x == b for x in a if not isinstance(x, (dict, list)))
    return a == b and type(a) is not dict


def _containment(left_contains: bool) -> Callable:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        a, b = cp.compile(node.this), cp.compile(node.expression)
        if a.type in T.ELEM_OF or b.type in T.ELEM_OF:  # array @> array
            t = a.type if a.type in T.ELEM_OF else b.type
            a, b = cp.coerce(a, t), cp.coerce(b, t)
            fa, fb = a.fn, b.fn

            def arr(r: Any, c: Any) -> Any:
                x, y = fa(r, c), fb(r, c)
                if x is None or y is None:
                    return None
                big, small = (x, y) if left_contains else (y, x)
                return all(v in big for v in small if v is not None) and None not in small
            return CExpr(arr, T.BOOL)
        a, b = _json(cp, node.this), _json(cp, node.expression)
        fa, fb = a.fn, b.fn

        def run(r: Any, c: Any) -> Any:
            x, y = fa(r, c), fb(r, c)
            if x is None or y is None:
                return None
            return _contains(x, y) if left_contains else _contains(y, x)

        return CExpr(run, T.BOOL)

    return h


def _exists(mode: str) -> Callable:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        j = _json(cp, node.this)
        k = cp.compile(node.expression)
        k = cp.coerce(k, T.TEXT if mode == "one" else 1009)
        fj, fk = j.fn, k.fn

        def has(v: Any, key: str) -> bool:
            if isinstance(v, dict):
                return key in v
            if isinstance(v, list):
                return key in [x for x in v if isinstance(x, str)]
            return isinstance(v, str) and v == key

        def run(r: Any, c: Any) -> Any:
            v, key = fj(r, c), fk(r, c)
            if v is None or key is None:
                return None
            if mode == "one":
                return has(v, key)
            keys = [x for x in key if x is not None]
            return any(has(v, x) for x in keys) if mode == "any" else all(has(v, x) for x in keys)

        return CExpr(run, T.BOOL)

    return h


def _build_object(jsonb: bool) -> Callable:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        args = list(node.expressions)
        if len(args) % 2:
            raise errors.SqlError("argument list must have even number of elements", sqlstate="22023",
                                  hint="The arguments of json_build_object() must consist of alternating keys and values.")
        cs = [cp.compile(a) for a in args]
        cs = [cp.coerce(c, T.TEXT) if c.type == T.UNKNOWN else c for c in cs]
        pairs = [(cs[i].fn, cs[i].type, cs[i + 1].fn, cs[i + 1].type) for i in range(0, len(cs), 2)]

        def run(r: Any, c: Any) -> Any:
            out = {}
            for fk, tk, fv, tv in pairs:
                k = fk(r, c)
                if k is None:
                    raise errors.SqlError("null value not allowed for object key", sqlstate="22004")
                out[k if isinstance(k, str) else T.to_text(k)] = to_json_value(fv(r, c), tv)
            return _jsonb_sorted(out) if jsonb else out

        return CExpr(run, T.JSONB if jsonb else T.JSON)

    return h


def _build_array(jsonb: bool) -> Callable:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        cs = [cp.compile(a) for a in node.expressions]
        cs = [cp.coerce(c, T.TEXT) if c.type == T.UNKNOWN else c for c in cs]
        fs = [(c.fn, c.type) for c in cs]
        return CExpr(lambda r, c: [to_json_value(f(r, c), t) for f, t in fs], T.JSONB if jsonb else T.JSON)

    return h


def _to_json(jsonb: bool) -> Callable:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        a = cp.compile(node.expressions[0])
        if a.type == T.UNKNOWN:
            a = cp.coerce(a, T.TEXT)
        f, t = a.fn, a.type

        def run(r: Any, c: Any) -> Any:
            v = to_json_value(f(r, c), t)
            return _jsonb_sorted(v) if jsonb and isinstance(v, dict) else v

        return CExpr(run, T.JSONB if jsonb else T.JSON)

    return h


def _typeof(cp: Compiler, node: exp.Expression) -> CExpr:
    j = _json(cp, node.expressions[0])
    f = j.fn

    def kind(v: Any) -> str:
        if isinstance(v, dict):
            return "object"
        if isinstance(v, list):
            return "array"
        if isinstance(v, str):
            return "string"
        if isinstance(v, bool):
            return "boolean"
        if v is None:
            return "null"
        return "number"

    return CExpr(lambda r, c: None if (v := f(r, c)) is None else kind(v), T.TEXT)


def _array_length(cp: Compiler, node: exp.Expression) -> CExpr:
    j = _json(cp, node.expressions[0])
    f = j.fn

    def run(r: Any, c: Any) -> Any:
        v = f(r, c)
        if v is None:
            return None
        if not isinstance(v, list):
            raise errors.SqlError("cannot get array length of a " + ("non-array" if not isinstance(v, dict) else "non-array"),
                                  sqlstate="22023")
        return len(v)

    return CExpr(run, T.INT4)


def _jsonb_set(cp: Compiler, node: exp.Expression) -> CExpr:
    args = node.expressions
    j = _json(cp, args[0])
    p = cp.coerce(cp.compile(args[1]), 1009)
    nv = _json(cp, args[2])
    create = cp.coerce(cp.compile(args[3]), T.BOOL).fn if len(args) > 3 else (lambda r, c: True)
    fj, fp, fn = j.fn, p.fn, nv.fn

    def setp(v: Any, path: list, new: Any, mk: bool) -> Any:
        if not path:
            return new
        k, rest = path[0], path[1:]
        if isinstance(v, dict):
            out = dict(v)
            if k in out:
                out[k] = setp(out[k], rest, new, mk)
            elif mk and not rest:
                out[k] = new
            return _jsonb_sorted(out)
        if isinstance(v, list):
            out2 = list(v)
            try:
                i = int(k)
            except ValueError:
                raise errors.SqlError(f'path element at position 1 is not an integer: "{k}"', sqlstate="22P02") from None
            if -len(out2) <= i < len(out2):
                out2[i] = setp(out2[i], rest, new, mk)
            elif mk and not rest:
                if i < 0:
                    out2.insert(0, new)
                else:
                    out2.append(new)
            return out2
        return v

    def run(r: Any, c: Any) -> Any:
        v, path, new = fj(r, c), fp(r, c), fn(r, c)
        if v is None or path is None:
            return None
        return setp(v, list(path), new, bool(create(r, c)))

    return CExpr(run, T.JSONB)


def _extract_path(scalar: bool) -> Callable:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        args = node.expressions
        j = _json(cp, args[0])
        ks = [cp.coerce(cp.compile(a), T.TEXT).fn for a in args[1:]]
        fj = j.fn

        def run(r: Any, c: Any) -> Any:
            v = fj(r, c)
            for f in ks:
                k = f(r, c)
                if v is None or k is None:
                    return None
                v = _step(v, k)
                if v is _MISSING:
                    return None
            if scalar:
                return None if v is None else json_text(v)
            return v

        return CExpr(run, T.TEXT if scalar else j.type)

    return h


def _strip_nulls(cp: Compiler, node: exp.Expression) -> CExpr:
    j = _json(cp, node.expressions[0])
    f = j.fn

    def strip(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if x is not None}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return v

    return CExpr(lambda r, c: None if (v := f(r, c)) is None else strip(v), j.type)


def _pretty(cp: Compiler, node: exp.Expression) -> CExpr:
    j = _json(cp, node.expressions[0])
    f = j.fn
    return CExpr(lambda r, c: None if (v := f(r, c)) is None else json.dumps(v, indent=4, default=str), T.TEXT)


HANDLERS: dict[str, Callable[[Compiler, exp.Expression], CExpr]] = {
    "JSONExtract": _arrow(False), "JSONExtractScalar": _arrow(True),
    "JSONBExtract": _hash_arrow(False), "JSONBExtractScalar": _hash_arrow(True),
    "ArrayContainsAll": _containment(True), "ArrayContainedBy": _containment(False),
    "JSONBContains": _containment(True),
    "JSONBContainsTopKey": _exists("one"), "JSONBContainsAnyTopKeys": _exists("any"),
    "JSONBContainsAllTopKeys": _exists("all"),
    "json_build_object": _build_object(False), "jsonb_build_object": _build_object(True),
    "json_build_array": _build_array(False), "jsonb_build_array": _build_array(True),
    "to_json": _to_json(False), "to_jsonb": _to_json(True),
    "jsonb_typeof": _typeof, "json_typeof": _typeof,
    "jsonb_array_length": _array_length, "json_array_length": _array_length,
    "jsonb_set": _jsonb_set, "jsonb_extract_path": _extract_path(False), "json_extract_path": _extract_path(False),
    "jsonb_extract_path_text": _extract_path(True), "json_extract_path_text": _extract_path(True),
    "jsonb_strip_nulls": _strip_nulls, "json_strip_nulls": _strip_nulls, "jsonb_pretty": _pretty,
}
