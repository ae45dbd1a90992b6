"""Stored expressions (column defaults, CHECK predicates) printed the way pg_get_expr /
pg_get_constraintdef print them.

The engine keeps a default or a check as SQL text.  PostgreSQL stores the analysed tree
and prints it back with the implicit casts the analyser added and a fixed parenthesis
style: each operator, boolean and NULL test is wrapped in parentheses (``((a > 0) AND
(b IS NULL))``); the *pretty* style drops the parentheses that precedence makes
redundant (``a > 0 AND b IS NULL``).  ``render`` reproduces both for the expressions
tables use in practice: columns, literals, operators, AND/OR/NOT, IS [NOT] NULL,
BETWEEN, IN lists, casts and function calls; anything else keeps sqlglot's text.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Callable

import sqlglot
from sqlglot import exp

from engine import types as T
from engine.pgcatalog.render import format_type

Cols = tuple[tuple[str, int, int], ...]  # (name, type oid, typmod) of the table's columns


@dataclass(frozen=True)
class Out:
    text: str
    type: int  # T.UNKNOWN for a quoted literal whose type comes from context
    cls: str  # const | col | op | bool | not | null | func | cast | other
    op: str = ""
    lit: str | None = None  # the raw value of a literal (before quoting and labels)


_CMP = {exp.EQ: "=", exp.NEQ: "<>", exp.LT: "<", exp.LTE: "<=", exp.GT: ">", exp.GTE: ">=",
        exp.Like: "~~", exp.ILike: "~~*"}
_ARITH = {exp.Add: "+", exp.Sub: "-", exp.Mul: "*", exp.Div: "/", exp.Mod: "%", exp.DPipe: "||"}
_RANK = {T.INT2: 1, T.INT4: 2, T.INT8: 3, T.NUMERIC: 4, T.FLOAT4: 5, T.FLOAT8: 6}
_FUNC_TYPES = {"length": T.INT4, "char_length": T.INT4, "lower": T.TEXT, "upper": T.TEXT, "btrim": T.TEXT,
               "trim": T.TEXT, "now": T.TIMESTAMPTZ, "nextval": T.INT8, "abs": 0, "max": 0, "min": 0, "round": T.NUMERIC,
               "gen_random_uuid": T.UUID, "count": T.INT8, "sum": T.NUMERIC, "avg": T.NUMERIC}
_FUNC_NAMES = {exp.CurrentTimestamp: "CURRENT_TIMESTAMP", exp.CurrentDate: "CURRENT_DATE",
               exp.CurrentTime: "CURRENT_TIME", exp.Localtimestamp: "LOCALTIMESTAMP",
               exp.CurrentUser: "CURRENT_USER"}
_SQL_VALUE_TYPES = {exp.CurrentTimestamp: T.TIMESTAMPTZ, exp.CurrentDate: T.DATE, exp.CurrentTime: 1266,
                    exp.Localtimestamp: T.TIMESTAMP, exp.CurrentUser: T.NAME}


def _ident(name: str) -> str:
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _tname(oid: int, typmod: int = -1) -> str:
    return format_type(oid, typmod) or str(oid)


class _Deparser:
    def __init__(self, cols: Cols, pretty: bool, resolve: Callable[[exp.Column], Out | None] | None = None) -> None:
        self.cols = {n: (t, m) for n, t, m in cols}
        self.pretty = pretty
        self.resolve = resolve  # qualified column references (view queries)

    # -- wrapping --------------------------------------------------------------------------
    def own(self, text: str) -> str:
        """Operators, booleans and NULL tests parenthesise themselves in the plain style."""
        return text if self.pretty else f"({text})"

    def child(self, c: Out, parent: str, pop: str = "", right: bool = False) -> str:
        """A child's text under a parent of kind ``parent`` (pretty style adds parentheses
        only where precedence needs them)."""
        if not self.pretty or c.cls not in ("op", "bool", "not", "null"):
            return c.text
        simple = False
        if parent == "bool":
            if c.cls in ("op", "null", "not"):
                simple = True
            elif c.cls == "bool":
                simple = c.op == "AND" or pop == "OR"
        elif parent == "not":
            simple = c.cls in ("op", "null")
        elif parent == "op" and c.cls == "op":
            lo, hi = "+-", "*/%"
            if c.op in lo + hi and len(c.op) == 1 and pop in lo + hi and len(pop) == 1:
                if c.op in hi:
                    simple = not right or pop in lo
                else:
                    simple = pop in lo and not right
        return c.text if simple else f"({c.text})"

    def cast(self, c: Out, to: int, typmod: int = -1) -> Out:
        """``c`` coerced to ``to``: a literal becomes a constant of that type, anything
        else shows the cast."""
        if c.type == to and typmod < 0:
            return c
        if c.cls == "const" and c.type == T.UNKNOWN and c.lit is not None:
            return self.const(c.lit, to, typmod)
        simple = self.pretty and c.cls in ("const", "col", "func", "cast")
        inner = c.text if simple else f"({c.text})"
        return Out(f"{inner}::{_tname(to, typmod)}", to, "cast")

    # -- leaves ----------------------------------------------------------------------------
    def const(self, raw: str, oid: int, typmod: int = -1) -> Out:
        if oid == T.INT4 and re.fullmatch(r"\d+", raw):
            return Out(raw, oid, "const", lit=raw)
        if oid == T.NUMERIC and re.fullmatch(r"\d+\.\d*|\d*\.\d+", raw):
            return Out(raw, oid, "const", lit=raw)
        if oid == T.BOOL and raw.lower() in ("true", "false", "t", "f"):
            return Out("true" if raw.lower() in ("true", "t") else "false", oid, "const", lit=raw)
        if oid not in (T.TEXT, T.VARCHAR, T.BPCHAR, T.NAME, T.UNKNOWN, T.JSON, T.JSONB, 2205):
            try:  # the constant as the type's output function prints it
                raw = T.to_text(T.parse_text(raw, oid, typmod))
            except Exception:  # noqa: BLE001 - keep the text as written
                pass
        return Out(f"{_quote(raw)}::{_tname(oid, -1)}", oid, "const", lit=raw)

    def number(self, text: str, neg: bool) -> Out:
        raw = ("-" if neg else "") + text
        if re.fullmatch(r"\d+", text):
            v = int(raw)
            oid = T.INT4 if -2**31 <= v < 2**31 else (T.INT8 if -2**63 <= v < 2**63 else T.NUMERIC)
        else:
            oid = T.NUMERIC
        return self.const(raw, oid)

    # -- nodes -----------------------------------------------------------------------------
    def d(self, n: exp.Expression) -> Out:
        while isinstance(n, exp.Paren):
            n = n.this
        if isinstance(n, exp.Column) and self.resolve is not None:
            r = self.resolve(n)
            if r is not None:
                return r
        if isinstance(n, exp.Column) and not n.table:
            t, _ = self.cols.get(n.name, (T.UNKNOWN, -1))
            return Out(_ident(n.name), t, "col")
        if isinstance(n, exp.Star):
            return Out("*", T.UNKNOWN, "const")
        if isinstance(n, exp.Literal):
            if n.is_string:
                return Out(_quote(n.this), T.UNKNOWN, "const", lit=n.this)
            return self.number(n.this, False)
        if isinstance(n, exp.Neg) and isinstance(n.this, exp.Literal) and not n.this.is_string:
            return self.number(n.this.this, True)
        if isinstance(n, exp.Boolean):
            return Out("true" if n.this else "false", T.BOOL, "const")
        if isinstance(n, exp.Null):
            return Out("NULL", T.UNKNOWN, "const")
        if type(n) in _CMP:
            return self.binary(n.this, n.expression, _CMP[type(n)], compare=True)
        if type(n) in _ARITH:
            return self.binary(n.this, n.expression, _ARITH[type(n)], compare=False)
        if isinstance(n, (exp.And, exp.Or)):
            op = "AND" if isinstance(n, exp.And) else "OR"
            parts = [self.d(n.this), self.d(n.expression)]
            parts = [self.cast(p, T.BOOL) if p.type == T.UNKNOWN else p for p in parts]
            text = f" {op} ".join(self.child(p, "bool", op) for p in parts)
            return Out(self.own(text), T.BOOL, "bool", op)
        if isinstance(n, exp.Not):
            c = self.d(n.this)
            return Out(self.own(f"NOT {self.child(c, 'not')}"), T.BOOL, "not")
        if isinstance(n, exp.Is) and isinstance(n.expression, exp.Null):
            c = self.d(n.this)
            neg = " NOT" if n.args.get("negate") else ""
            return Out(self.own(f"{self.child(c, 'bool')} IS{neg} NULL"), T.BOOL, "null")
        if isinstance(n, exp.Between):
            ge = exp.GTE(this=n.this.copy(), expression=n.args["low"].copy())
            le = exp.LTE(this=n.this.copy(), expression=n.args["high"].copy())
            return self.d(exp.And(this=ge, expression=le))
        if isinstance(n, exp.In) and n.expressions and not n.args.get("query"):
            x = self.d(n.this)
            items = [self.d(e) for e in n.expressions]
            t = x.type if x.type != T.UNKNOWN else next((i.type for i in items if i.type != T.UNKNOWN), T.TEXT)
            x, t = self.operand(x, t)
            arr = ", ".join(self.cast(i, t).text for i in items)
            return Out(self.own(f"{self.child(x, 'op')} = ANY (ARRAY[{arr}])"), T.BOOL, "op", "=")
        if isinstance(n, exp.Cast):
            c = self.d(n.this)
            try:
                to, tm = T.from_sqlglot(n.args["to"])
            except Exception:  # noqa: BLE001 - a type the engine does not know: keep the text
                return Out(n.sql("postgres"), T.UNKNOWN, "other")
            return self.cast(c, to, tm)
        if type(n) in _FUNC_NAMES:
            return Out(_FUNC_NAMES[type(n)], _SQL_VALUE_TYPES[type(n)], "func")
        if isinstance(n, exp.Coalesce):
            args = [self.d(a) for a in [n.this, *n.expressions]]
            t = next((a.type for a in args if a.type != T.UNKNOWN), T.TEXT)
            return Out(f"COALESCE({', '.join(self.cast(a, t).text for a in args)})", t, "func")
        if isinstance(n, exp.Func):
            return self.func(n)
        return Out(n.sql("postgres"), T.UNKNOWN, "other")

    def func(self, n: exp.Func) -> Out:
        if isinstance(n, exp.Anonymous):
            name, args = str(n.this).lower(), list(n.expressions)
        else:
            name = n.sql_name().lower() if hasattr(n, "sql_name") else n.key
            args = [a for a in n.args.values() if isinstance(a, exp.Expression)]
        if name == "now" and not args:
            return Out("now()", T.TIMESTAMPTZ, "func")
        outs = [self.d(a) for a in args]
        if name == "nextval" and outs:
            outs[0] = self.const(outs[0].lit or "", 2205) if outs[0].lit is not None else outs[0]
        outs = [self.cast(o, T.TEXT) if o.type == T.UNKNOWN and o.lit is not None else o for o in outs]
        rt = _FUNC_TYPES.get(name, T.UNKNOWN) or (outs[0].type if outs else T.UNKNOWN)
        return Out(f"{name}({', '.join(o.text for o in outs)})", rt, "func")

    def operand(self, x: Out, t: int) -> tuple[Out, int]:
        """A string-typed operand as the text operator sees it (varchar -> text)."""
        if t in (T.VARCHAR, T.NAME) and x.type in (T.VARCHAR, T.NAME):
            return self.cast(x, T.TEXT), T.TEXT
        if t == T.VARCHAR:
            return x, T.TEXT
        return x, t

    def binary(self, a: exp.Expression, b: exp.Expression, op: str, compare: bool) -> Out:
        l, r = self.d(a), self.d(b)
        if op in ("~~", "~~*", "||"):
            l = self.cast(l, T.TEXT) if l.type != T.BPCHAR or op == "||" else l
            r = self.cast(r, T.TEXT if l.type != T.BPCHAR else T.TEXT)
            t = T.TEXT
        elif l.type == T.UNKNOWN and r.type == T.UNKNOWN:
            l, r, t = self.cast(l, T.TEXT), self.cast(r, T.TEXT), T.TEXT
        elif l.type == T.UNKNOWN or r.type == T.UNKNOWN:
            known = r.type if l.type == T.UNKNOWN else l.type
            if known == T.VARCHAR:
                l, r, t = self.cast(l, T.TEXT), self.cast(r, T.TEXT), T.TEXT
            else:
                l, r, t = self.cast(l, known), self.cast(r, known), known
        elif l.type in _RANK and r.type in _RANK:
            if l.type in T.INTS and r.type in T.INTS:
                t = max(l.type, r.type, key=_RANK.__getitem__)
            else:
                t = max(l.type, r.type, key=_RANK.__getitem__)
                l, r = self.cast(l, t), self.cast(r, t)
        elif l.type in (T.VARCHAR, T.TEXT, T.NAME) and r.type in (T.VARCHAR, T.TEXT, T.NAME) \
                and (l.type != r.type or l.type == T.VARCHAR):
            # varchar is relabelled to text; text and name compare as they are (name = text)
            l = self.cast(l, T.TEXT) if l.type == T.VARCHAR else l
            r = self.cast(r, T.TEXT) if r.type == T.VARCHAR else r
            t = T.TEXT
        else:
            t = l.type
        text = f"{self.child(l, 'op', op)} {op} {self.child(r, 'op', op, right=True)}"
        return Out(self.own(text), T.BOOL if compare or op in ("~~", "~~*") else t, "op", op)


@functools.lru_cache(maxsize=512)
def render(sql: str, cols: Cols, pretty: bool, target: tuple[int, int] | None = None) -> str:
    """``sql`` (a stored default or check) as PostgreSQL prints it; ``target`` is the
    column type of a default (a quoted literal takes that type)."""
    try:
        node = sqlglot.parse_one(sql, read="postgres")
    except sqlglot.errors.ParseError:
        return sql
    dp = _Deparser(cols, pretty)
    out = dp.d(node)
    if target is not None and out.cls == "const" and out.type == T.UNKNOWN and out.lit is not None:
        out = dp.const(out.lit, target[0])
    return out.text


def columns_of(td: object) -> Cols:
    return tuple((c.name, c.type_oid, c.typmod) for c in getattr(td, "columns", []))


class ExprText(str):
    """A pg_attrdef.adbin / pg_constraint.conbin value: prints as the plain-style text;
    ``pretty`` holds the pretty-style text for pg_get_expr(..., true)."""

    pretty: str

    def __new__(cls, plain: str, pretty: str) -> "ExprText":
        s = super().__new__(cls, plain)
        s.pretty = pretty
        return s


def default_text(td: object, col: object) -> ExprText:
    cols = columns_of(td)
    sql = getattr(col, "default")
    target = (getattr(col, "type_oid"), getattr(col, "typmod"))
    return ExprText(render(sql, cols, False, target), render(sql, cols, True, target))


def check_text(td: object, sql: str) -> ExprText:
    cols = columns_of(td)
    return ExprText(render(sql, cols, False), render(sql, cols, True))
