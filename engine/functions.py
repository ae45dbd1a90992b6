"""Scalar SQL functions: compile a function-call node into a ``CExpr``.

Dispatch is by sqlglot node class (``exp.Lower`` ...) or, for functions sqlglot does not
know (``exp.Anonymous``), by lower-case name.  Session-dependent functions (version(),
current_setting(), nextval() ...) read ``ctx.session`` at run time.
"""

from __future__ import annotations

import datetime as _dt
import math
import random
from decimal import Decimal, ROUND_HALF_UP
from typing import Any, Callable

from sqlglot import exp

from engine import errors
from engine import types as T
from engine.expr import CExpr, Compiler, call_args as _args, strict_call as _strict, const, is_aggregate






def _round(v: Any, n: int = 0) -> Any:
    if not (v == v and abs(v) != math.inf):  # NaN and +-Infinity (float8 or numeric) round to themselves
        return v
    if isinstance(v, float):
        if n == 0:  # round(float8) is C's rint: halves go to the even neighbour, the sign stays
            return math.copysign(float(round(v)), v)
        return round(v, n)
    return Decimal(v).quantize(Decimal(1).scaleb(-n), rounding=ROUND_HALF_UP)


def _text_args(cp: Compiler, nodes: list[exp.Expression]) -> list[CExpr]:
    out = []
    for n in nodes:
        c = cp.compile(n)
        if c.type == T.UNKNOWN:
            c = cp.coerce(c, T.TEXT)
        out.append(c)
    return out


def _int_args(cp: Compiler, nodes: list[exp.Expression]) -> list[CExpr]:
    return [cp.coerce(cp.compile(n), T.INT4) if cp.compile(n).type in (T.UNKNOWN,) else cp.compile(n) for n in nodes]


def compile_function(cp: Compiler, node: exp.Expression) -> CExpr:
    if is_aggregate(node):
        raise errors.SqlError("aggregate functions are not allowed here", sqlstate="42803")
    cls = type(node).__name__
    name = str(node.this).lower() if isinstance(node, exp.Anonymous) else cls
    h = _HANDLERS.get(name)
    if h is None:
        fname = name if isinstance(node, exp.Anonymous) else node.sql_name().lower()
        args = node.expressions if isinstance(node, exp.Anonymous) else [
            v for k in node.arg_types for v in (node.args.get(k) if isinstance(node.args.get(k), list)
                                                 else [node.args.get(k)]) if isinstance(v, exp.Expression)]
        sig = ", ".join(T.TYPE_NAMES.get(t, str(t)) for t in (cp.compile(a).type for a in args))
        raise errors.UndefinedFunction(f"function {fname}({sig}) does not exist", node=node,
                                       hint="No function matches the given name and argument types. "
                                            "You might need to add explicit type casts.")
    return h(cp, node)


def _unary_text(body: Callable[[str], Any], oid: int) -> Callable[[Compiler, exp.Expression], CExpr]:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        a = _text_args(cp, [node.this if not isinstance(node, exp.Anonymous) else node.expressions[0]])[0]
        f = a.fn
        if a.type == T.BPCHAR:
            return CExpr(lambda r, c: None if (v := f(r, c)) is None else body(v.rstrip(" ")), oid)
        return _strict([f], body, oid)

    return h


def _abs(cp: Compiler, node: exp.Expression) -> CExpr:
    a = cp.compile(node.this)
    if a.type == T.UNKNOWN:
        a = cp.coerce(a, T.FLOAT8)
    t = a.type
    return _strict([a.fn], (lambda v: T.check_int(abs(v), t)) if t in T.INTS else abs, t)


def _round_h(cp: Compiler, node: exp.Expression) -> CExpr:
    a = cp.compile(node.this)
    d = node.args.get("decimals")
    if a.type in T.INTS or a.type == T.UNKNOWN:
        # PostgreSQL has round(float8) and round(numeric[, int]): an integer or an untyped
        # literal takes float8, the preferred numeric type, when there is a choice
        a = cp.coerce(a, T.NUMERIC if d is not None else T.FLOAT8)
    if d is None:
        return _strict([a.fn], _round, a.type)
    n = cp.coerce(cp.compile(d), T.INT4)
    return _strict([a.fn, n.fn], _round, a.type)


def _substring(cp: Compiler, node: exp.Expression) -> CExpr:
    s = _text_args(cp, [node.this])[0]
    start = node.args.get("start")
    if start is not None and node.args.get("length") is None and cp.compile(start).type in T.STRINGS:
        from engine.functions_text import _substring_regex  # substring(x FROM pattern)

        return _substring_regex(cp, node)
    length = node.args.get("length")
    fs = s.fn
    fst = cp.coerce(cp.compile(start), T.INT4).fn if start is not None else (lambda r, c: 1)
    fl = cp.coerce(cp.compile(length), T.INT4).fn if length is not None else None

    def run(r: Any, c: Any) -> Any:
        v = fs(r, c)
        st = fst(r, c)
        if v is None or st is None:
            return None
        if fl is None:
            return v[max(st - 1, 0):]
        n = fl(r, c)
        if n is None:
            return None
        if n < 0:
            raise errors.SqlError("negative substring length not allowed", sqlstate="22011")
        end = st - 1 + n
        return v[max(st - 1, 0):max(end, 0)]

    return CExpr(run, T.TEXT)


def _trim(cp: Compiler, node: exp.Expression) -> CExpr:
    s = _text_args(cp, [node.this])[0]
    chars = node.expression
    pos = (node.args.get("position") or "BOTH").upper()
    fc = _text_args(cp, [chars])[0].fn if chars is not None else (lambda r, c: " ")
    fs = s.fn

    def run(r: Any, c: Any) -> Any:
        v, ch = fs(r, c), fc(r, c)
        if v is None or ch is None:
            return None
        return v.lstrip(ch) if pos == "LEADING" else v.rstrip(ch) if pos == "TRAILING" else v.strip(ch)

    return CExpr(run, T.TEXT)


def _concat(cp: Compiler, node: exp.Expression) -> CExpr:
    fs = [a.fn for a in _text_args(cp, _args(node))]

    def run(r: Any, c: Any) -> Any:
        return "".join(T.to_text(v) for f in fs if (v := f(r, c)) is not None)

    return CExpr(run, T.TEXT)


def _replace(cp: Compiler, node: exp.Expression) -> CExpr:
    fs = [a.fn for a in _text_args(cp, _args(node))]
    return _strict(fs, lambda s, a, b: s.replace(a, b), T.TEXT)


def _strpos(cp: Compiler, node: exp.Expression) -> CExpr:
    s = _text_args(cp, [node.this, node.args["substr"]])
    return _strict([s[0].fn, s[1].fn], lambda h, n: h.find(n) + 1, T.INT4)


def _left_right(left: bool) -> Callable[[Compiler, exp.Expression], CExpr]:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        s = _text_args(cp, [node.this])[0]
        n = cp.coerce(cp.compile(node.expression), T.INT4)
        if left:
            return _strict([s.fn, n.fn], lambda v, k: v[:k] if k >= 0 else v[:k], T.TEXT)
        return _strict([s.fn, n.fn], lambda v, k: (v[-k:] if k > 0 else "") if k >= 0 else v[-k:], T.TEXT)

    return h


def _session_const(getter: Callable[[Any], Any], oid: int) -> Callable[[Compiler, exp.Expression], CExpr]:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        return CExpr(lambda r, c: getter(c), oid)

    return h


def _now(cp: Compiler, node: exp.Expression) -> CExpr:
    return CExpr(lambda r, c: c.now, T.TIMESTAMPTZ)


def _current_setting(cp: Compiler, node: exp.Expression) -> CExpr:
    a = _text_args(cp, node.expressions[:1])[0].fn
    missing_ok = cp.coerce(cp.compile(node.expressions[1]), T.BOOL).fn if len(node.expressions) > 1 else None

    def run(r: Any, c: Any) -> Any:
        name = a(r, c)
        if name is None:
            return None
        v = c.session.get_parameter(name)
        if v is None:
            if missing_ok is not None and missing_ok(r, c):
                return None
            raise errors.SqlError(f'unrecognized configuration parameter "{name}"', sqlstate="42704")
        return v

    return CExpr(run, T.TEXT)


def _set_config(cp: Compiler, node: exp.Expression) -> CExpr:
    fs = [a.fn for a in _text_args(cp, node.expressions[:2])]

    def run(r: Any, c: Any) -> Any:
        name, val = fs[0](r, c), fs[1](r, c)
        c.session.set_parameter(name, val or "")
        return val

    return CExpr(run, T.TEXT)


def _seq_fn(which: str) -> Callable[[Compiler, exp.Expression], CExpr]:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        args = node.expressions
        name = _text_args(cp, args[:1])[0].fn
        extra = [cp.coerce(cp.compile(a), T.INT8 if i == 0 else T.BOOL).fn for i, a in enumerate(args[1:])]

        def run(r: Any, c: Any) -> Any:
            n = name(r, c)
            if n is None:
                return None
            if which == "nextval":
                return c.session.nextval(n)
            if which == "currval":
                return c.session.currval(n)
            v = extra[0](r, c)
            called = extra[1](r, c) if len(extra) > 1 else True
            return c.session.setval(n, v, called)

        return CExpr(run, T.INT8)

    return h


def _extract(cp: Compiler, node: exp.Expression) -> CExpr:
    part = node.this.name.lower()
    a = cp.compile(node.expression)
    if a.type == T.UNKNOWN:
        a = cp.coerce(a, T.TIMESTAMP)

    def body(v: Any) -> Any:
        if part == "epoch":
            if isinstance(v, _dt.datetime):
                base = v if v.tzinfo else v.replace(tzinfo=_dt.timezone.utc)
                return Decimal(str(base.timestamp()))
            if isinstance(v, _dt.timedelta):
                return Decimal(str(v.total_seconds()))
        if part in ("dow",):
            return Decimal((v.weekday() + 1) % 7)
        if part == "doy":
            return Decimal(v.timetuple().tm_yday)
        if part == "second" and isinstance(v, _dt.datetime):
            return Decimal(v.second) + Decimal(v.microsecond) / Decimal(10**6)
        return Decimal(getattr(v, part))

    return _strict([a.fn], body, T.NUMERIC)


def _math1(fn: Callable[[float], float]) -> Callable[[Compiler, exp.Expression], CExpr]:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        a = cp.coerce(cp.compile(node.this), T.FLOAT8)

        def body(v: float) -> float:
            try:
                return fn(v)
            except ValueError:
                raise errors.SqlError("cannot take square root of a negative number", sqlstate="2201F") from None

        return _strict([a.fn], body, T.FLOAT8)

    return h


def _mod_fn(cp: Compiler, node: exp.Expression) -> CExpr:
    return cp.compile(exp.Mod(this=node.expressions[0], expression=node.expressions[1]))


def _typeof(cp: Compiler, node: exp.Expression) -> CExpr:
    a = cp.compile(node.expressions[0])
    return const(T.TYPE_NAMES.get(a.type, "unknown"), T.TEXT)


def _random(cp: Compiler, node: exp.Expression) -> CExpr:
    return CExpr(lambda r, c: random.random(), T.FLOAT8)


def _to_char(cp: Compiler, node: exp.Expression) -> CExpr:
    a = cp.compile(node.this)
    return _strict([a.fn], T.to_text, T.TEXT)


def _octet_length(cp: Compiler, node: exp.Expression) -> CExpr:
    a = _text_args(cp, node.expressions[:1])[0]
    return _strict([a.fn], lambda v: len(v.encode()) if isinstance(v, str) else len(v), T.INT4)


def _pg_sleep(cp: Compiler, node: exp.Expression) -> CExpr:
    """pg_sleep(seconds), pg_sleep_for(interval): sleeps on the event loop, never blocking
    it (``ExecCtx.sleep`` suspends the statement's greenlet while the session sleeps).
    Marks the statement (``Env.sleeps``) so that the session runs it in a greenlet."""
    cp.env.sleeps = True
    name = str(node.this).lower()
    arg = cp.compile(node.expressions[0])
    if name == "pg_sleep_for":
        fn = cp.coerce(arg, T.INTERVAL).fn

        def seconds(r: Any, c: Any) -> float | None:
            iv = fn(r, c)
            return None if iv is None else ((iv.months * 30 + iv.days) * 86400) + iv.micros / 1e6
    else:
        seconds = cp.coerce(arg, T.FLOAT8).fn
    # void is a value, not NULL (PostgreSQL: pg_sleep(0) IS NULL is false; text form is empty)
    return CExpr(lambda r, c: c.sleep(seconds(r, c)) or "", T.VOID)


def _signal_backend(what: str) -> Any:
    """pg_cancel_backend(pid) / pg_terminate_backend(pid [, timeout]): cancel the running
    statement of a session of this instance, or end the session (FATAL 57P01).  A superuser
    signals any session, others only their own role's and never a superuser's; false (with
    a warning in PostgreSQL) when no session of this instance has that pid."""
    doing = "canceled" if what == "cancel" else "terminated"
    noun = "query" if what == "cancel" else "process"

    def compile_(cp: Compiler, node: exp.Expression) -> CExpr:
        pid = cp.coerce(cp.compile(node.expressions[0]), T.INT4).fn

        def run(r: Any, c: Any) -> bool | None:
            p = pid(r, c)
            if p is None:
                return None
            target = c.db.sessions.get(p)
            if target is None:
                return False
            me = c.session
            if me.gucs.get("is_superuser") != "on":
                if target.gucs.get("is_superuser") == "on":
                    raise errors.SqlError(f"must be a superuser to {what} "
                                          f"superuser {noun}", sqlstate="42501")
                if target.session_user != me.session_user:
                    raise errors.SqlError(f"must be a member of the role whose {noun} is being {doing} "
                                          "or member of pg_signal_backend", sqlstate="42501")
            if what == "cancel":
                target.cancel()
            elif target.terminate is not None:
                target.terminate()
            else:
                return False
            return True

        return CExpr(run, T.BOOL)

    return compile_


_pg_cancel_backend = _signal_backend("cancel")
_pg_terminate_backend = _signal_backend("terminate")


def _pg_backend_pid(cp: Compiler, node: exp.Expression) -> CExpr:
    return CExpr(lambda r, c: c.session.backend_pid, T.INT4)


def _date_const(cp: Compiler, node: exp.Expression) -> CExpr:
    from engine import datetime_values as dv
    from engine.datetime_style import current

    return CExpr(lambda r, c: dv.to_date(c.now, current().zone), T.DATE)  # today in the session zone


def _localts(cp: Compiler, node: exp.Expression) -> CExpr:
    from engine import datetime_values as dv
    from engine.datetime_style import current

    return CExpr(lambda r, c: dv.to_timestamp(c.now, False, current().zone), T.TIMESTAMP)


_HANDLERS: dict[str, Callable[[Compiler, exp.Expression], CExpr]] = {
    "Lower": _unary_text(str.lower, T.TEXT), "lower": _unary_text(str.lower, T.TEXT),
    "Upper": _unary_text(str.upper, T.TEXT), "upper": _unary_text(str.upper, T.TEXT),
    "Length": _unary_text(len, T.INT4), "char_length": _unary_text(len, T.INT4),
    "character_length": _unary_text(len, T.INT4), "octet_length": _octet_length,
    "Initcap": _unary_text(str.title, T.TEXT), "Reverse": _unary_text(lambda s: s[::-1], T.TEXT),
    "md5": _unary_text(lambda s: __import__("hashlib").md5(s.encode()).hexdigest(), T.TEXT),
    "MD5": _unary_text(lambda s: __import__("hashlib").md5(s.encode()).hexdigest(), T.TEXT),
    "Abs": _abs, "Round": _round_h,  # Floor / Ceil: engine.functions_text
    "Sqrt": _math1(math.sqrt), "Ln": _math1(math.log), "Exp": _math1(math.exp),
    "Substring": _substring, "Trim": _trim, "Concat": _concat, "Replace": _replace,
    "StrPosition": _strpos, "Left": _left_right(True), "Right": _left_right(False),
    "CurrentTimestamp": _now, "now": _now, "transaction_timestamp": _now, "statement_timestamp": _now,
    "clock_timestamp": lambda cp, n: CExpr(lambda r, c: _dt.datetime.now(_dt.timezone.utc), T.TIMESTAMPTZ),
    "CurrentDate": _date_const, "Localtimestamp": _localts,
    "CurrentVersion": _session_const(lambda c: c.session.version_string(), T.TEXT),
    "version": _session_const(lambda c: c.session.version_string(), T.TEXT),
    "CurrentDatabase": _session_const(lambda c: c.session.database, T.NAME),
    "current_catalog": _session_const(lambda c: c.session.database, T.NAME),
    "CurrentSchema": _session_const(lambda c: "public", T.NAME),
    "CurrentUser": _session_const(lambda c: c.session.user, T.NAME),
    "SessionUser": _session_const(lambda c: getattr(c.session, "session_user", c.session.user), T.NAME),
    "current_user": _session_const(lambda c: c.session.user, T.NAME),
    "session_user": _session_const(lambda c: getattr(c.session, "session_user", c.session.user), T.NAME),
    "user": _session_const(lambda c: c.session.user, T.NAME),
    "current_setting": _current_setting, "set_config": _set_config,
    "nextval": _seq_fn("nextval"), "currval": _seq_fn("currval"), "setval": _seq_fn("setval"),
    "Extract": _extract, "Mod": _mod_fn, "mod": _mod_fn, "pg_typeof": _typeof, "Rand": _random,
    "random": _random, "TimeToStr": _to_char, "pg_backend_pid": _pg_backend_pid,
    "pg_sleep": _pg_sleep, "pg_sleep_for": _pg_sleep, "pg_cancel_backend": _pg_cancel_backend,
    "pg_terminate_backend": _pg_terminate_backend,
    "inet_server_port": _session_const(lambda c: None, T.INT4),
    "borealis_instance": _session_const(lambda c: c.db.instance_name, T.TEXT),
    "borealis_role": _session_const(lambda c: c.db.role, T.TEXT),
}


def _register_catalog_functions() -> None:
    from engine.catalog_functions import HANDLERS

    _HANDLERS.update(HANDLERS)
    from engine.bitwise import HANDLERS as BITWISE_HANDLERS

    _HANDLERS.update(BITWISE_HANDLERS)
    from engine.arrays import HANDLERS as ARRAY_HANDLERS
    from engine.functions_text import HANDLERS as TEXT_HANDLERS

    _HANDLERS.update(ARRAY_HANDLERS)
    _HANDLERS.update(TEXT_HANDLERS)
    from engine.functions_json import HANDLERS as JSON_HANDLERS

    _HANDLERS.update(JSON_HANDLERS)
    from engine.functions_time import HANDLERS as TIME_HANDLERS

    _HANDLERS.update(TIME_HANDLERS)


_register_catalog_functions()
