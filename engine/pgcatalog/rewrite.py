"""AST rewrites that make catalog queries (psql, drivers) fit the engine's compiler.

Pure functions over sqlglot trees, applied in order by ``normalize``:

* ``OPERATOR(pg_catalog.~)`` and friends become the plain operators;
* ``expr COLLATE x`` becomes ``expr`` (one collation: C);
* ``::pg_catalog.type`` becomes ``::type``; casts to regclass / regtype / regnamespace /
  regproc become calls of ``__regclass(...)`` etc. (engine.catalog_functions);
* a SELECT (or every branch of a UNION) that inner-joins a catalog table that is always
  empty here (pg_trigger, pg_policy, pg_inherits ...) and has no aggregates becomes
  ``SELECT NULL AS col, ... LIMIT 0``: its result is empty whatever the rest says, and
  the rest often uses features (arrays, table functions) the engine lacks.
"""

from __future__ import annotations

from sqlglot import exp

from engine.expr import is_aggregate, output_name
from engine.pgcatalog.tables import ALWAYS_EMPTY

_REG_CASTS = {"regclass": "__regclass", "regtype": "__regtype", "regnamespace": "__regnamespace",
              "regproc": "__regproc", "regprocedure": "__regproc"}
_OPS = {"~": lambda a, b: exp.RegexpLike(this=a, expression=b),
        "!~": lambda a, b: exp.Not(this=exp.RegexpLike(this=a, expression=b)),
        "~*": lambda a, b: exp.RegexpILike(this=a, expression=b),
        "!~*": lambda a, b: exp.Not(this=exp.RegexpILike(this=a, expression=b)),
        "=": lambda a, b: exp.EQ(this=a, expression=b), "<>": lambda a, b: exp.NEQ(this=a, expression=b),
        "~~": lambda a, b: exp.Like(this=a, expression=b),
        "!~~": lambda a, b: exp.Not(this=exp.Like(this=a, expression=b))}


def _type_name(dt: exp.DataType) -> str | None:
    if dt.this != exp.DataType.Type.USERDEFINED:
        return None
    kind = dt.args.get("kind")
    if isinstance(kind, exp.Dot):
        return kind.expression.name.lower()
    return str(kind).lower() if kind is not None else None


def _node(n: exp.Expression) -> exp.Expression:
    if isinstance(n, exp.Operator):
        op = str(n.args.get("operator") or "").split(".")[-1].strip()
        make = _OPS.get(op)
        if make is not None:
            return make(n.this, n.expression)
        return n
    if isinstance(n, exp.Array) and len(n.expressions) == 1 and isinstance(n.expressions[0], exp.Select):
        frm = n.expressions[0].args.get("from_")
        if frm is not None and isinstance(frm.this, exp.Table) and isinstance(frm.this.this, exp.Func):
            # ARRAY(SELECT .. FROM unnest(reloptions)): option arrays are always NULL here
            return exp.Array(expressions=[])
    if isinstance(n, exp.Collate):
        return n.this
    if isinstance(n, exp.ByteString):  # E'...' escape string
        v = str(n.this)
        for a, b in (("\\n", "\n"), ("\\t", "\t"), ("\\r", "\r"), ("\\'", "'"), ("\\\\", "\\")):
            v = v.replace(a, b)
        return exp.Literal.string(v)
    if isinstance(n, exp.Cast):
        to = n.args.get("to")
        if isinstance(to, exp.ObjectIdentifier) and str(to.this).lower() in _REG_CASTS:
            return exp.Anonymous(this=_REG_CASTS[str(to.this).lower()], expressions=[n.this])
        if isinstance(to, exp.DataType):
            name = _type_name(to)
            if name in _REG_CASTS:
                return exp.Anonymous(this=_REG_CASTS[name], expressions=[n.this])
            if name is not None and isinstance(to.args.get("kind"), exp.Dot):
                try:
                    n.set("to", exp.DataType.build(name, dialect="postgres"))
                except Exception:  # noqa: BLE001 - unknown names stay as they were
                    pass
        return n
    if isinstance(n, exp.Dot) and isinstance(n.this, (exp.Identifier, exp.Var)) \
            and n.this.name.lower() == "pg_catalog" and isinstance(n.expression, exp.Func):
        return n.expression
    if isinstance(n, exp.Dot) and isinstance(n.expression, (exp.Identifier, exp.Var)):
        return _field_select(n)
    if _is_expandarray(n):  # in an expression: a record per element (in FROM it is a Table)
        return exp.Anonymous(this="__expandarray_record", expressions=list(n.expression.expressions))
    return n


def _is_expandarray(n: exp.Expression) -> bool:
    """``information_schema._pg_expandarray(...)``."""
    return isinstance(n, exp.Dot) and isinstance(n.this, (exp.Identifier, exp.Var)) \
        and n.this.name.lower() == "information_schema" and isinstance(n.expression, exp.Anonymous) \
        and str(n.expression.this).lower() == "_pg_expandarray"


def _field_select(n: exp.Dot) -> exp.Expression:
    """``(expr).field``: a field of _pg_expandarray's result or of a record value."""
    inner = n.this
    while isinstance(inner, exp.Paren):
        inner = inner.this
    if inner is n.this:
        return n  # qualified names (schema.fn, table.col) are not field selections
    field = exp.Literal.string(n.expression.name.lower())
    if isinstance(inner, exp.Alias):
        inner = inner.this
    if isinstance(inner, exp.Anonymous) and str(inner.this) == "__expandarray_record":
        return exp.Anonymous(this="__expandarray_field", expressions=[*inner.expressions, field])
    return exp.Anonymous(this="__field", expressions=[inner, field])


def _inner_tables(sel: exp.Select) -> list[str]:
    names = []
    frm = sel.args.get("from_") or sel.args.get("from")
    if frm is not None and isinstance(frm.this, exp.Table):
        names.append(frm.this.name)
    for j in sel.args.get("joins") or []:
        side = (j.args.get("side") or "").upper()
        if side in ("LEFT", "RIGHT", "FULL"):
            continue
        if isinstance(j.this, exp.Table):
            names.append(j.this.name)
    return names


def _always_empty(q: exp.Expression) -> bool:
    if isinstance(q, exp.Union):
        return _always_empty(q.this) and _always_empty(q.expression)
    if not isinstance(q, exp.Select):
        return False
    aggs = (n for e in q.expressions for n in e.walk() if is_aggregate(n) and n.find_ancestor(exp.Select) is q)
    if q.args.get("group") is not None or any(aggs):
        return False
    return any(t in ALWAYS_EMPTY for t in _inner_tables(q))


def _first_select(q: exp.Expression) -> exp.Select:
    while isinstance(q, exp.Union):
        q = q.this
    return q  # type: ignore[return-value]


def _pg_name(e: exp.Expression) -> str:
    """The result column name of a select item that the rewrite may replace."""
    if isinstance(e, exp.Cast):
        to = e.args.get("to")
        reg = str(to.this).lower() if isinstance(to, exp.ObjectIdentifier) else (
            _type_name(to) if isinstance(to, exp.DataType) else None)
        if reg in _REG_CASTS:
            inner = _pg_name(e.this) if isinstance(e.this, (exp.Column, exp.Cast, exp.Dot)) else "?column?"
            return reg if inner == "?column?" else inner
    if isinstance(e, exp.Dot) and isinstance(e.this, exp.Paren) and isinstance(e.expression, exp.Identifier):
        return e.expression.name.lower()
    return output_name(e)


def _bottom_up(ast: exp.Expression) -> exp.Expression:
    """Apply ``_node`` children first, so nested rewrites (a cast inside a
    ``pg_catalog.f(...)`` inside a cast) all happen in one pass."""
    for n in reversed(list(ast.dfs())):
        new = _node(n)
        if new is not n:
            if n is ast:
                ast = new
            else:
                n.replace(new)
    return ast


def normalize(ast: exp.Expression) -> exp.Expression:
    if not isinstance(ast, (exp.Select, exp.Union, exp.Insert, exp.Update, exp.Delete)):
        return ast
    selects = [(sel, [None if isinstance(e, exp.Alias) else _pg_name(e) for e in sel.expressions])
               for sel in ast.find_all(exp.Select)]
    ast = _bottom_up(ast)
    for sel, names in selects:  # rewritten select items keep the column names PostgreSQL gives them
        for e, name in zip(list(sel.expressions), names):
            if name is not None and not isinstance(e, exp.Star) and output_name(e) != name:
                e.replace(exp.alias_(e.copy(), name, quoted=True))
    if isinstance(ast, (exp.Select, exp.Union)) and _always_empty(ast):
        cols = [exp.alias_(exp.Null(), output_name(e) or "?column?", quoted=True)
                for e in _first_select(ast).expressions]
        return exp.Select(expressions=cols).limit(0)
    return ast


def wants_rewrite(text: str) -> bool:
    """Cheap test on the SQL text: only catalog-looking statements are rewritten."""
    low = text.lower()
    return any(w in low for w in ("pg_", "operator(", "collate", "reg", "~", "information_schema", "e'"))
