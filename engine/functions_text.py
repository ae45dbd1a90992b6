"""String, regular-expression and math functions (registered into ``engine.functions``).

POSIX regular expressions (``~ ~* !~ !~*``, regexp_replace, regexp_match(es),
substring(x from pattern), regexp_split_to_*) run on Python's ``re`` after
``pg_regex`` rewrites the constructs that differ: bracket classes ``[[:alpha:]]``,
word boundaries ``\\m \\M \\y``, and flags (i, g, n, s, x).
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from decimal import Decimal, ROUND_DOWN, ROUND_FLOOR, ROUND_CEILING
from typing import Any, Callable

from sqlglot import exp

from engine import errors
from engine import types as T
from engine.expr import CExpr, Compiler, call_args as _args, strict_call as _strict, const

_CLASSES = {"alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
            "space": r"\s", "punct": r"!-/:-@\[-`{-~", "xdigit": "0-9a-fA-F", "word": r"\w", "blank": r" \t",
            "cntrl": r"\x00-\x1f\x7f", "print": r"\x20-\x7e", "graph": r"\x21-\x7e"}


@functools.lru_cache(maxsize=512)
def pg_regex(pattern: str, flags: str = "") -> re.Pattern[str]:
    p = re.sub(r"\[:(\w+):\]", lambda m: _CLASSES.get(m.group(1), m.group(0)), pattern)
    p = p.replace(r"\m", r"\b(?=\w)").replace(r"\M", r"\b(?<=\w)").replace(r"\y", r"\b").replace(r"\Y", r"\B")
    f = 0
    for ch in flags or "":
        if ch == "i":
            f |= re.I
        elif ch == "x":
            f |= re.X
        elif ch in "ns":
            f |= re.S if ch == "s" else re.M
        elif ch in "gc":
            pass
        else:
            raise errors.SqlError(f'invalid regular expression option: "{ch}"', sqlstate="22023")
    try:
        return re.compile(p, f)
    except re.error as e:
        raise errors.SqlError(f"invalid regular expression: {e}", sqlstate="2201B") from None


def _targs(cp: Compiler, nodes: list) -> list[CExpr]:
    out = []
    for n in nodes:
        c = cp.compile(n)
        if c.type != T.TEXT:
            c = cp.coerce(c, T.TEXT) if c.type in T.STRINGS or c.type == T.UNKNOWN or c.param is not None else \
                CExpr((lambda f: lambda r, ctx: None if (v := f(r, ctx)) is None else T.to_text(v))(c.fn), T.TEXT)
        if c.type == T.BPCHAR:
            c = cp.coerce(c, T.TEXT)
        out.append(c)
    return out






def _text_fn(n_args: int | None, body: Callable, oid: int = T.TEXT, int_args: tuple = ()) -> Callable:
    """A strict function over text arguments (positions in ``int_args`` are int4)."""
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        args = _args(node)
        if n_args is not None:
            if len(args) < n_args:
                raise errors.UndefinedFunction(f"function {output_fn(node)}() does not exist")
            args = args[:n_args]
        cs = [cp.coerce(cp.compile(a), T.INT4) if i in int_args else _targs(cp, [a])[0] for i, a in enumerate(args)]
        return _strict([c.fn for c in cs], body, oid)

    return h


def output_fn(node: exp.Expression) -> str:
    return str(node.this).lower() if isinstance(node, exp.Anonymous) else node.sql_name().lower()


# -- regex --------------------------------------------------------------------------------------
def _regex_op(ci: bool) -> Callable:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        s, p = _targs(cp, [node.this, node.expression])
        flags = "i" if ci else ""
        fs = s.fn
        if p.is_const and p.const is not None:
            rx = pg_regex(p.const, flags)
            return CExpr(lambda r, c: None if (v := fs(r, c)) is None else rx.search(v) is not None, T.BOOL)
        return _strict([fs, p.fn], lambda v, pat: pg_regex(pat, flags).search(v) is not None, T.BOOL)

    return h


def _regexp_replace(cp: Compiler, node: exp.Expression) -> CExpr:
    args = _args(node)
    if not isinstance(node, exp.Anonymous):
        args = [node.this, node.expression, node.args.get("replacement")]
        mods = node.args.get("modifiers")
        if mods is not None:
            args.append(mods)
    cs = _targs(cp, [a for a in args if a is not None])

    def body(s: str, pat: str, rep: str, flags: str = "") -> str:
        rx = pg_regex(pat, flags)
        prep = re.sub(r"\\(\d)|\\&|&", lambda m: ("\\g<" + m.group(1) + ">") if m.group(1) else (
            "\\g<0>" if m.group(0) != "\\&" else "&"), rep.replace("\\\\", "\x00")).replace("\x00", "\\\\")
        return rx.sub(prep, s, count=0 if "g" in flags else 1)

    return _strict([c.fn for c in cs], body, T.TEXT)


def _regexp_match(cp: Compiler, node: exp.Expression) -> CExpr:
    cs = _targs(cp, _args(node))

    def body(s: str, pat: str, flags: str = "") -> Any:
        rx = pg_regex(pat, flags)
        m = rx.search(s)
        if m is None:
            return None
        return list(m.groups()) if rx.groups else [m.group(0)]

    return _strict([c.fn for c in cs], body, 1009)


def _substring_regex(cp: Compiler, node: exp.Expression) -> CExpr | None:
    """substring(s from pattern): the first parenthesised group or the whole match."""
    s, p = _targs(cp, [node.this, node.args["start"]])

    def body(v: str, pat: str) -> Any:
        m = pg_regex(pat).search(v)
        if m is None:
            return None
        return m.group(1) if m.re.groups else m.group(0)

    return _strict([s.fn, p.fn], body, T.TEXT)


def _regexp_count(cp: Compiler, node: exp.Expression) -> CExpr:
    cs = _targs(cp, _args(node)[:2])
    return _strict([c.fn for c in cs], lambda s, p: len(pg_regex(p).findall(s)), T.INT4)


def _regexp_split_to_array(cp: Compiler, node: exp.Expression) -> CExpr:
    cs = _targs(cp, _args(node))
    return _strict([c.fn for c in cs], lambda s, p, f="": pg_regex(p, f).split(s), 1009)


# -- strings -------------------------------------------------------------------------------------
def _split_part(s: str, d: str, n: int) -> str:
    if n == 0:
        raise errors.SqlError("field position must not be zero", sqlstate="22023")
    parts = s.split(d) if d else [s]
    if n < 0:
        n = len(parts) + n + 1
        if n <= 0:
            return ""
    return parts[n - 1] if n <= len(parts) else ""


def _pad(cp: Compiler, node: exp.Expression) -> CExpr:
    left = bool(node.args.get("is_left")) if not isinstance(node, exp.Anonymous) else str(node.this).lower() == "lpad"
    if isinstance(node, exp.Anonymous):
        a = node.expressions
        s, n, fill = a[0], a[1], a[2] if len(a) > 2 else None
    else:
        s, n, fill = node.this, node.expression, node.args.get("fill_pattern")
    cs, cn = _targs(cp, [s])[0], cp.coerce(cp.compile(n), T.INT4)
    cf = _targs(cp, [fill])[0] if fill is not None else const(" ", T.TEXT)

    def body(v: str, k: int, f: str) -> str:
        if k <= len(v) or not f:
            return v[:max(k, 0)]
        need = k - len(v)
        padding = (f * (need // len(f) + 1))[:need]
        return padding + v if left else v + padding

    return _strict([cs.fn, cn.fn, cf.fn], body, T.TEXT)


def _concat_ws(cp: Compiler, node: exp.Expression) -> CExpr:
    args = _args(node)
    sep = _targs(cp, args[:1])[0].fn
    fs = [c.fn for c in _targs(cp, args[1:])]

    def run(r: Any, c: Any) -> Any:
        s = sep(r, c)
        if s is None:
            return None
        return s.join(v for f in fs if (v := f(r, c)) is not None)

    return CExpr(run, T.TEXT)


def _format(cp: Compiler, node: exp.Expression) -> CExpr:
    args = _args(node)
    fmt = _targs(cp, args[:1])[0].fn
    vals = [cp.compile(a) for a in args[1:]]
    fs = [(v.fn, v.type) for v in vals]

    def run(r: Any, c: Any) -> Any:
        f = fmt(r, c)
        if f is None:
            return None
        xs = [fn(r, c) for fn, _ in fs]
        out = []
        i = 0
        nxt = 0
        while i < len(f):
            ch = f[i]
            if ch != "%":
                out.append(ch)
                i += 1
                continue
            m = re.match(r"%(?:(\d+)\$)?(-)?(\d+)?([sIL%])", f[i:])
            if m is None:
                raise errors.SqlError("unterminated format() type specifier", sqlstate="22023")
            i += m.end()
            if m.group(4) == "%":
                out.append("%")
                continue
            if m.group(1):
                nxt = int(m.group(1)) - 1
            if nxt >= len(xs):
                raise errors.SqlError("too few arguments for format()", sqlstate="22023")
            v = xs[nxt]
            nxt += 1
            kind = m.group(4)
            if kind == "s":
                txt = "" if v is None else T.to_text(v)
            elif kind == "I":
                if v is None:
                    raise errors.SqlError("null values cannot be formatted as an SQL identifier", sqlstate="22004")
                t = T.to_text(v)
                txt = t if re.fullmatch(r"[a-z_][a-z0-9_$]*", t) else '"' + t.replace('"', '""') + '"'
            else:
                txt = "NULL" if v is None else "'" + T.to_text(v).replace("'", "''") + "'"
            width = int(m.group(3)) if m.group(3) else 0
            txt = txt.ljust(width) if m.group(2) else txt.rjust(width)
            out.append(txt)
        return "".join(out)

    return CExpr(run, T.TEXT)


def _initcap(s: str) -> str:
    return re.sub(r"[A-Za-z0-9]+", lambda m: m.group(0)[0].upper() + m.group(0)[1:].lower(), s)


def _translate(s: str, frm: str, to: str) -> str:
    table: dict[int, Any] = {}
    for i, ch in enumerate(frm):
        if ord(ch) not in table:
            table[ord(ch)] = to[i] if i < len(to) else None
    return s.translate(table)


def _chr(n: int) -> str:
    if n <= 0 or n > 0x10FFFF:
        raise errors.SqlError("requested character too large for encoding" if n > 0 else
                              "null character not permitted", sqlstate="54000")
    return chr(n)


def _to_hex(cp: Compiler, node: exp.Expression) -> CExpr:
    a = cp.compile(_args(node)[0])
    if a.type == T.UNKNOWN:
        a = cp.coerce(a, T.INT8)
    bits = 32 if a.type in (T.INT4, T.INT2) else 64
    return _strict([a.fn], lambda v: format(v & ((1 << bits) - 1), "x"), T.TEXT)


def _trim_fn(pos: str) -> Callable:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        args = _args(node)
        cs = _targs(cp, args)
        if len(cs) == 1:
            cs.append(const(" ", T.TEXT))

        def body(v: str, ch: str) -> str:
            return v.lstrip(ch) if pos == "l" else v.rstrip(ch) if pos == "r" else v.strip(ch)

        return _strict([cs[0].fn, cs[1].fn], body, T.TEXT)

    return h


def _starts_with(cp: Compiler, node: exp.Expression) -> CExpr:
    a, b = _targs(cp, _args(node)[:2])
    return _strict([a.fn, b.fn], lambda s, p: s.startswith(p), T.BOOL)


def _position(cp: Compiler, node: exp.Expression) -> CExpr:
    a = _args(node)
    s, sub = _targs(cp, a[:2])
    return _strict([s.fn, sub.fn], lambda h, n: h.find(n) + 1, T.INT4)


# -- math ----------------------------------------------------------------------------------------
def _num_arg(cp: Compiler, e: exp.Expression, default: int = T.NUMERIC) -> CExpr:
    c = cp.compile(e)
    if c.type == T.UNKNOWN or (c.param is not None and c.type == T.UNKNOWN):
        c = cp.coerce(c, default)
    return c


def _trunc(cp: Compiler, node: exp.Expression) -> CExpr:
    args = _args(node)
    a = _num_arg(cp, args[0], T.FLOAT8 if len(args) == 1 else T.NUMERIC)
    if a.type in T.INTS:  # trunc(float8) and trunc(numeric[, int]): float8 preferred when it fits
        a = cp.coerce(a, T.FLOAT8 if len(args) == 1 else T.NUMERIC)
    if a.type in (T.FLOAT4, T.FLOAT8) and len(args) == 1:
        return _strict([a.fn], lambda v: float(math.trunc(v)) if math.isfinite(v) else v, T.FLOAT8)
    if a.type in (T.FLOAT4, T.FLOAT8):
        a = cp.coerce(a, T.NUMERIC)
    if len(args) > 1:
        n = cp.coerce(cp.compile(args[1]), T.INT4)
        return _strict([a.fn, n.fn], lambda v, k: Decimal(v).quantize(Decimal(1).scaleb(-k), rounding=ROUND_DOWN)
                       if k >= 0 else (Decimal(v).scaleb(k).to_integral_value(ROUND_DOWN)).scaleb(-k), T.NUMERIC)
    return _strict([a.fn], lambda v: Decimal(v).to_integral_value(ROUND_DOWN), T.NUMERIC)


def _float_fn(fn: Callable[[float], float], name: str) -> Callable:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        a = cp.coerce(cp.compile(_args(node)[0]), T.FLOAT8)

        def body(v: float) -> float:
            try:
                return float(fn(v))
            except (ValueError, OverflowError):
                raise errors.SqlError(f"input is out of range", sqlstate="22003") from None

        return _strict([a.fn], body, T.FLOAT8)

    return h


def _log(cp: Compiler, node: exp.Expression) -> CExpr:
    args = _args(node)
    if isinstance(node, exp.Log) and node.expression is not None:
        base, x = node.this, node.expression
    elif len(args) == 2:
        base, x = args
    else:
        base, x = None, args[0]
    # log(float8) and log(numeric[, numeric]): one integer or untyped argument takes float8
    cx = _num_arg(cp, x, T.FLOAT8 if base is None else T.NUMERIC)
    if base is None and cx.type in T.INTS:
        cx = cp.coerce(cx, T.FLOAT8)
    is_float = cx.type in (T.FLOAT4, T.FLOAT8)

    def lg(v: Any, b: Any = 10) -> Any:
        if v == 0:
            raise errors.SqlError("cannot take logarithm of zero", sqlstate="2201E")
        if v < 0:
            raise errors.SqlError("cannot take logarithm of a negative number", sqlstate="2201E")
        if is_float:
            return math.log10(v) if b == 10 else math.log(v) / math.log(b)
        d = Decimal(v).log10() if b == 10 else Decimal(v).ln() / Decimal(b).ln()
        return d.quantize(Decimal(1).scaleb(-16))

    t = T.FLOAT8 if is_float else T.NUMERIC
    if base is None:
        return _strict([cx.fn], lg, t)
    cb = _num_arg(cp, base)
    return _strict([cx.fn, cb.fn], lg, t)


def _power(cp: Compiler, node: exp.Expression) -> CExpr:
    args = _args(node)
    a, b = _num_arg(cp, args[0], T.FLOAT8), _num_arg(cp, args[1], T.FLOAT8)
    if a.type == T.NUMERIC or b.type == T.NUMERIC:
        a, b = cp.coerce(a, T.NUMERIC), cp.coerce(b, T.NUMERIC)

        def pw(x: Decimal, y: Decimal) -> Decimal:
            if x == 0 and y < 0:
                raise errors.SqlError("zero raised to a negative power is undefined", sqlstate="2201F")
            r = x ** y
            return r.quantize(Decimal(1).scaleb(-16)) if r == r.to_integral_value() else r

        return _strict([a.fn, b.fn], pw, T.NUMERIC)
    a, b = cp.coerce(a, T.FLOAT8), cp.coerce(b, T.FLOAT8)

    def fpw(x: float, y: float) -> float:
        if x == 0 and y < 0:
            raise errors.SqlError("zero raised to a negative power is undefined", sqlstate="2201F")
        try:
            return float(x ** y)
        except OverflowError:
            raise errors.NumericOutOfRange("value out of range: overflow") from None

    return _strict([a.fn, b.fn], fpw, T.FLOAT8)


def _sign(cp: Compiler, node: exp.Expression) -> CExpr:
    a = _num_arg(cp, _args(node)[0], T.FLOAT8)
    if a.type in T.INTS:
        a = cp.coerce(a, T.FLOAT8)  # sign(float8) and sign(numeric): float8 preferred
    conv = float if a.type in (T.FLOAT4, T.FLOAT8) else Decimal
    return _strict([a.fn], lambda v: conv((v > 0) - (v < 0)), a.type)


def _div(cp: Compiler, node: exp.Expression) -> CExpr:
    args = _args(node)
    a, b = cp.coerce(cp.compile(args[0]), T.NUMERIC), cp.coerce(cp.compile(args[1]), T.NUMERIC)

    def body(x: Decimal, y: Decimal) -> Decimal:
        if y == 0:
            raise errors.DivisionByZero("division by zero")
        return (Decimal(x) / Decimal(y)).to_integral_value(ROUND_DOWN)

    return _strict([a.fn, b.fn], body, T.NUMERIC)


def _gcd_lcm(lcm: bool) -> Callable:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        args = _args(node)
        a, b = _num_arg(cp, args[0], T.INT4), _num_arg(cp, args[1], T.INT4)
        t = T.INT8 if T.INT8 in (a.type, b.type) else T.INT4 if a.type in T.INTS and b.type in T.INTS else T.NUMERIC
        a, b = cp.coerce(a, t), cp.coerce(b, t)

        def body(x: Any, y: Any) -> Any:
            if t == T.NUMERIC:
                x, y = int(x), int(y)
            g = math.gcd(x, y)
            v = (abs(x * y) // g if g else 0) if lcm else g
            return Decimal(v) if t == T.NUMERIC else T.check_int(v, t)

        return _strict([a.fn, b.fn], body, t)

    return h


def _width_bucket(cp: Compiler, node: exp.Expression) -> CExpr:
    args = _args(node)
    x, lo, hi = [_num_arg(cp, a, T.FLOAT8) for a in args[:3]]
    t = T.NUMERIC if T.NUMERIC in (x.type, lo.type, hi.type) and not {x.type, lo.type, hi.type} & {T.FLOAT4, T.FLOAT8} else T.FLOAT8
    x, lo, hi = cp.coerce(x, t), cp.coerce(lo, t), cp.coerce(hi, t)
    n = cp.coerce(cp.compile(args[3]), T.INT4)

    def body(v: Any, a: Any, b: Any, k: int) -> int:
        if k <= 0:
            raise errors.SqlError("count must be greater than zero", sqlstate="2201G")
        if a == b:
            raise errors.SqlError("lower bound cannot equal upper bound", sqlstate="2201G")
        if a < b:
            if v < a:
                return 0
            if v >= b:
                return k + 1
            return int((v - a) * k / (b - a)) + 1
        if v > a:
            return 0
        if v <= b:
            return k + 1
        return int((a - v) * k / (a - b)) + 1

    return _strict([x.fn, lo.fn, hi.fn, n.fn], body, T.INT4)


def _floor_ceil(mode: str) -> Callable:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        a = _num_arg(cp, _args(node)[0], T.FLOAT8)
        if a.type in T.INTS:
            a = cp.coerce(a, T.FLOAT8)  # float8 and numeric overloads: float8 preferred
        if a.type in (T.FLOAT4, T.FLOAT8):
            fn = math.floor if mode == "floor" else math.ceil
            return _strict([a.fn], lambda v: float(fn(v)) if math.isfinite(v) else v, T.FLOAT8)
        rnd = ROUND_FLOOR if mode == "floor" else ROUND_CEILING
        return _strict([a.fn], lambda v: Decimal(v).to_integral_value(rnd), T.NUMERIC)

    return h


HANDLERS: dict[str, Callable[[Compiler, exp.Expression], CExpr]] = {
    "RegexpLike": _regex_op(False), "RegexpILike": _regex_op(True), "RegexpReplace": _regexp_replace,
    "regexp_replace": _regexp_replace, "regexp_match": _regexp_match, "RegexpExtract": _regexp_match,
    "regexp_count": _regexp_count, "regexp_split_to_array": _regexp_split_to_array,
    "RegexpSplit": _regexp_split_to_array, "textregexeq": _regex_op(False),
    "SplitPart": _text_fn(3, _split_part, T.TEXT, (2,)), "split_part": _text_fn(3, _split_part, T.TEXT, (2,)),
    "ConcatWs": _concat_ws, "concat_ws": _concat_ws, "Format": _format, "format": _format,
    "Pad": _pad, "lpad": _pad, "rpad": _pad,
    "Repeat": _text_fn(2, lambda s, n: s * max(n, 0), T.TEXT, (1,)),
    "repeat": _text_fn(2, lambda s, n: s * max(n, 0), T.TEXT, (1,)),
    "Initcap": _text_fn(1, _initcap), "initcap": _text_fn(1, _initcap),
    "Translate": _text_fn(3, _translate), "translate": _text_fn(3, _translate),
    "Ascii": _text_fn(1, lambda s: ord(s[0]) if s else 0, T.INT4),
    "ascii": _text_fn(1, lambda s: ord(s[0]) if s else 0, T.INT4),
    "Chr": _text_fn(1, _chr, T.TEXT, (0,)), "chr": _text_fn(1, _chr, T.TEXT, (0,)),
    "btrim": _trim_fn("b"), "ltrim": _trim_fn("l"), "rtrim": _trim_fn("r"),
    "StartsWith": _starts_with, "starts_with": _starts_with,
    "Hex": _to_hex, "to_hex": _to_hex, "position": _position, "strpos": _position,
    "md5": _text_fn(1, lambda s: hashlib.md5(s.encode()).hexdigest()),
    "MD5": _text_fn(1, lambda s: hashlib.md5(s.encode()).hexdigest()),
    "sha256": _text_fn(1, lambda s: hashlib.sha256(s.encode()).hexdigest()),
    "quote_ident": _text_fn(1, lambda t: t if re.fullmatch(r"[a-z_][a-z0-9_$]*", t) else '"' + t.replace('"', '""') + '"'),
    "quote_literal": _text_fn(1, lambda t: "'" + t.replace("'", "''") + "'"),
    "Trunc": _trunc, "trunc": _trunc, "Pow": _power, "power": _power, "pow": _power,
    "Cbrt": _float_fn(lambda v: math.copysign(abs(v) ** (1 / 3), v), "cbrt"),
    "cbrt": _float_fn(lambda v: math.copysign(abs(v) ** (1 / 3), v), "cbrt"),
    "Log": _log, "log": _log, "log10": _log, "Sign": _sign, "sign": _sign,
    "Pi": lambda cp, n: const(math.pi, T.FLOAT8), "pi": lambda cp, n: const(math.pi, T.FLOAT8),
    "Degrees": _float_fn(math.degrees, "degrees"), "degrees": _float_fn(math.degrees, "degrees"),
    "Radians": _float_fn(math.radians, "radians"), "radians": _float_fn(math.radians, "radians"),
    "div": _div, "gcd": _gcd_lcm(False), "lcm": _gcd_lcm(True),
    "WidthBucket": _width_bucket, "width_bucket": _width_bucket,
    "sin": _float_fn(math.sin, "sin"), "cos": _float_fn(math.cos, "cos"), "tan": _float_fn(math.tan, "tan"),
    "asin": _float_fn(math.asin, "asin"), "acos": _float_fn(math.acos, "acos"),
    "atan": _float_fn(math.atan, "atan"), "Floor": _floor_ceil("floor"), "floor": _floor_ceil("floor"),
    "Ceil": _floor_ceil("ceil"), "ceil": _floor_ceil("ceil"), "ceiling": _floor_ceil("ceil"),
}
