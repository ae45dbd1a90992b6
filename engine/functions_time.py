"""Date/time functions: date_trunc, date_part, age, justify_*, to_char / to_date /
to_timestamp (common template patterns), make_date / make_timestamp(tz) / make_interval,
AT TIME ZONE.

Timestamps are ``datetime`` (naive = timestamp, UTC-aware = timestamptz), intervals are
``timedelta`` (no separate months field: a month counts as 30 days, as
``justify_days`` does).  Time zones come from ``zoneinfo``.
"""

from __future__ import annotations

import datetime as _dt
import re
from decimal import Decimal
from typing import Any, Callable

from sqlglot import exp

from engine import errors
from engine import types as T
from engine.expr import CExpr, Compiler, call_args as _args, strict_call as _strict

_UTC = _dt.timezone.utc


def _zone(name: str) -> _dt.tzinfo:
    n = name.strip()
    if n.upper() in ("UTC", "GMT", "Z", "ETC/UTC", "UCT"):
        return _UTC
    m = re.fullmatch(r"([+-]?)(\d{1,2})(?::?(\d\d))?", n)
    if m:  # POSIX-style offsets: '+05' means 5 hours WEST of Greenwich in PostgreSQL
        sign = -1 if m.group(1) != "-" else 1
        return _dt.timezone(sign * _dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0)))
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(n)
    except Exception:  # noqa: BLE001
        raise errors.SqlError(f'time zone "{name}" not recognized', sqlstate="22023") from None






def _ts_arg(cp: Compiler, e: exp.Expression) -> CExpr:
    c = cp.compile(e)
    if c.type == T.UNKNOWN or (c.param is not None and c.type == T.UNKNOWN):
        c = cp.coerce(c, T.TIMESTAMPTZ)
    if c.type == T.DATE:
        c = cp.coerce(c, T.TIMESTAMPTZ)
    return c


# -- date_trunc --------------------------------------------------------------------------------
def _trunc_dt(unit: str, v: _dt.datetime) -> _dt.datetime:
    u = unit.lower().rstrip("s") if unit.lower() not in ("millennium", "millennia") else "millennium"
    if u == "microsecond":
        return v
    if u == "millisecond":
        return v.replace(microsecond=v.microsecond // 1000 * 1000)
    if u == "second":
        return v.replace(microsecond=0)
    if u == "minute":
        return v.replace(second=0, microsecond=0)
    if u == "hour":
        return v.replace(minute=0, second=0, microsecond=0)
    if u == "day":
        return v.replace(hour=0, minute=0, second=0, microsecond=0)
    if u == "week":
        d = v - _dt.timedelta(days=v.weekday())
        return d.replace(hour=0, minute=0, second=0, microsecond=0)
    base = v.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if u == "month":
        return base
    if u == "quarter":
        return base.replace(month=(v.month - 1) // 3 * 3 + 1)
    if u == "year":
        return base.replace(month=1)
    if u == "decade":
        return base.replace(year=v.year // 10 * 10, month=1)
    if u == "century":
        return base.replace(year=(v.year - 1) // 100 * 100 + 1, month=1)
    if u == "millennium":
        return base.replace(year=(v.year - 1) // 1000 * 1000 + 1, month=1)
    raise errors.SqlError(f'unit "{unit}" not recognized for type timestamp', sqlstate="22023")


def _date_trunc(cp: Compiler, node: exp.Expression) -> CExpr:
    if isinstance(node, exp.TimestampTrunc):
        unit_node, ts_node = node.args.get("unit"), node.this
        unit_c: Any = (lambda r, c, u=unit_node.name: u) if unit_node is not None else None
    else:
        a = _args(node)
        unit_c = cp.coerce(cp.compile(a[0]), T.TEXT).fn
        ts_node = a[1]
    ts = _ts_arg(cp, ts_node)
    f = ts.fn
    if ts.type == T.INTERVAL:
        def iv(r: Any, c: Any) -> Any:
            v, u = f(r, c), unit_c(r, c)
            if v is None or u is None:
                return None
            secs = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}.get(u.lower().rstrip("s"))
            if secs is None:
                return v
            return _dt.timedelta(seconds=(v.total_seconds() // secs) * secs)

        return CExpr(iv, T.INTERVAL)
    tz_of = _session_tz

    def run(r: Any, c: Any) -> Any:
        v, u = f(r, c), unit_c(r, c)
        if v is None or u is None:
            return None
        if v.tzinfo is not None:
            z = tz_of(c)
            local = v.astimezone(z)
            t = _trunc_dt(u, local.replace(tzinfo=None))
            return _localize(t, z).astimezone(_UTC)
        return _trunc_dt(u, v)

    return CExpr(run, ts.type)


def _localize(naive: _dt.datetime, z: _dt.tzinfo) -> _dt.datetime:
    return naive.replace(tzinfo=z)


def _session_tz(c: Any) -> _dt.tzinfo:
    name = "UTC"
    if c is not None and getattr(c, "session", None) is not None:
        name = c.session.gucs.get("timezone", "UTC") or "UTC"
    return _zone(name)


# -- date_part / extract ----------------------------------------------------------------------
def _part(unit: str, v: Any, c: Any) -> Any:
    u = unit.lower()
    if isinstance(v, _dt.timedelta):
        total = Decimal(v.days * 86400 + v.seconds) + Decimal(v.microseconds) / Decimal(10**6)
        if u == "epoch":
            return total
        days = v.days
        secs = v.seconds
        return Decimal({"day": days, "days": days, "hour": secs // 3600, "minute": secs % 3600 // 60,
                        "second": secs % 60, "month": 0, "year": 0}.get(u, 0)) + (
            Decimal(v.microseconds) / Decimal(10**6) if u == "second" else 0)
    if isinstance(v, _dt.datetime) and v.tzinfo is not None and u != "epoch":
        v = v.astimezone(_session_tz(c))
    if u == "epoch":
        if isinstance(v, _dt.datetime):
            base = v if v.tzinfo else v.replace(tzinfo=_UTC)
            return Decimal(int(base.timestamp())) + Decimal(base.microsecond) / Decimal(10**6)
        return Decimal(int(_dt.datetime(v.year, v.month, v.day, tzinfo=_UTC).timestamp()))
    if u in ("dow",):
        return Decimal((v.weekday() + 1) % 7)
    if u == "isodow":
        return Decimal(v.isoweekday())
    if u == "doy":
        return Decimal(v.timetuple().tm_yday)
    if u == "week":
        return Decimal(v.isocalendar()[1])
    if u == "quarter":
        return Decimal((v.month - 1) // 3 + 1)
    if u == "decade":
        return Decimal(v.year // 10)
    if u == "century":
        return Decimal((v.year - 1) // 100 + 1)
    if u == "millennium":
        return Decimal((v.year - 1) // 1000 + 1)
    if u == "isoyear":
        return Decimal(v.isocalendar()[0])
    if u in ("second", "seconds"):
        return Decimal(getattr(v, "second", 0)) + Decimal(getattr(v, "microsecond", 0)) / Decimal(10**6)
    if u == "milliseconds":
        return Decimal(getattr(v, "second", 0) * 1000) + Decimal(getattr(v, "microsecond", 0)) / Decimal(1000)
    if u == "microseconds":
        return Decimal(getattr(v, "second", 0) * 10**6 + getattr(v, "microsecond", 0))
    if u == "timezone":
        return Decimal(int(v.utcoffset().total_seconds())) if isinstance(v, _dt.datetime) and v.tzinfo else Decimal(0)
    attr = {"years": "year", "months": "month", "days": "day", "hours": "hour", "minutes": "minute"}.get(u, u)
    if not hasattr(v, attr):
        raise errors.SqlError(f'unit "{unit}" not supported for type {type(v).__name__}', sqlstate="0A000")
    return Decimal(getattr(v, attr))


def _date_part(cp: Compiler, node: exp.Expression) -> CExpr:
    a = _args(node)
    u = cp.coerce(cp.compile(a[0]), T.TEXT).fn
    v = cp.compile(a[1])
    if v.type == T.UNKNOWN:
        v = cp.coerce(v, T.TIMESTAMPTZ)
    fv = v.fn

    def run(r: Any, c: Any) -> Any:
        x, unit = fv(r, c), u(r, c)
        if x is None or unit is None:
            return None
        return float(_part(unit, x, c))

    return CExpr(run, T.FLOAT8)


def _extract(cp: Compiler, node: exp.Expression) -> CExpr:
    unit = node.this.name
    v = cp.compile(node.expression)
    if v.type == T.UNKNOWN:
        v = cp.coerce(v, T.TIMESTAMPTZ)
    fv = v.fn
    return CExpr(lambda r, c: None if (x := fv(r, c)) is None else _part(unit, x, c), T.NUMERIC)


# -- age / justify -----------------------------------------------------------------------------
def _age(cp: Compiler, node: exp.Expression) -> CExpr:
    a = _args(node)
    x = _ts_arg(cp, a[0])
    if len(a) > 1:
        y = cp.coerce(_ts_arg(cp, a[1]), x.type)
        fy = y.fn
    else:
        fy = None
    fx = x.fn

    def run(r: Any, c: Any) -> Any:
        v = fx(r, c)
        if v is None:
            return None
        w = fy(r, c) if fy else (c.now.replace(hour=0, minute=0, second=0, microsecond=0) if v.tzinfo
                                 else c.now.replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0))
        if w is None:
            return None
        return _months_diff(v, w)

    return CExpr(run, T.INTERVAL)


def _months_diff(a: _dt.datetime, b: _dt.datetime) -> _dt.timedelta:
    """age(a, b) with a month counted as 30 days (intervals hold no months field)."""
    sign = 1
    if a < b:
        a, b, sign = b, a, -1
    months = (a.year - b.year) * 12 + (a.month - b.month)
    anchor_month = b.month - 1 + months
    try:
        anchor = b.replace(year=b.year + anchor_month // 12, month=anchor_month % 12 + 1)
    except ValueError:
        anchor = b.replace(year=b.year + anchor_month // 12, month=anchor_month % 12 + 1, day=28)
    if anchor > a:
        months -= 1
        anchor_month -= 1
        try:
            anchor = b.replace(year=b.year + anchor_month // 12, month=anchor_month % 12 + 1)
        except ValueError:
            anchor = b.replace(year=b.year + anchor_month // 12, month=anchor_month % 12 + 1, day=28)
    rest = a - anchor
    return sign * (_dt.timedelta(days=30 * months) + rest)


def _justify(kind: str) -> Callable:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        a = cp.coerce(cp.compile(_args(node)[0]), T.INTERVAL)
        return _strict([a.fn], lambda v: v, T.INTERVAL)  # days/hours already normalised in timedelta

    return h


# -- to_char / to_date / to_timestamp ----------------------------------------------------------------
_PATTERNS = [
    ("YYYY", lambda d: f"{d.year:04d}"), ("YYY", lambda d: f"{d.year % 1000:03d}"), ("YY", lambda d: f"{d.year % 100:02d}"),
    ("MONTH", lambda d: d.strftime("%B").upper().ljust(9)), ("Month", lambda d: d.strftime("%B").ljust(9)),
    ("month", lambda d: d.strftime("%B").lower().ljust(9)), ("MON", lambda d: d.strftime("%b").upper()),
    ("Mon", lambda d: d.strftime("%b")), ("mon", lambda d: d.strftime("%b").lower()), ("MM", lambda d: f"{d.month:02d}"),
    ("DAY", lambda d: d.strftime("%A").upper().ljust(9)), ("Day", lambda d: d.strftime("%A").ljust(9)),
    ("day", lambda d: d.strftime("%A").lower().ljust(9)), ("DY", lambda d: d.strftime("%a").upper()),
    ("Dy", lambda d: d.strftime("%a")), ("dy", lambda d: d.strftime("%a").lower()),
    ("DDD", lambda d: f"{d.timetuple().tm_yday:03d}"), ("DD", lambda d: f"{d.day:02d}"),
    ("D", lambda d: str((d.weekday() + 1) % 7 + 1)),
    ("HH24", lambda d: f"{getattr(d, 'hour', 0):02d}"),
    ("HH12", lambda d: f"{(getattr(d, 'hour', 0) % 12) or 12:02d}"), ("HH", lambda d: f"{(getattr(d, 'hour', 0) % 12) or 12:02d}"),
    ("MI", lambda d: f"{getattr(d, 'minute', 0):02d}"), ("SS", lambda d: f"{getattr(d, 'second', 0):02d}"),
    ("MS", lambda d: f"{getattr(d, 'microsecond', 0) // 1000:03d}"), ("US", lambda d: f"{getattr(d, 'microsecond', 0):06d}"),
    ("AM", lambda d: "AM" if getattr(d, "hour", 0) < 12 else "PM"), ("PM", lambda d: "AM" if getattr(d, "hour", 0) < 12 else "PM"),
    ("am", lambda d: "am" if getattr(d, "hour", 0) < 12 else "pm"), ("pm", lambda d: "am" if getattr(d, "hour", 0) < 12 else "pm"),
    ("Q", lambda d: str((d.month - 1) // 3 + 1)), ("WW", lambda d: f"{(d.timetuple().tm_yday - 1) // 7 + 1:02d}"),
    ("IW", lambda d: f"{d.isocalendar()[1]:02d}"), ("TZ", lambda d: "UTC" if getattr(d, "tzinfo", None) else ""),
]
_PAT_RX = re.compile("|".join(re.escape(p) for p, _ in _PATTERNS) + r'|"[^"]*"|FM')
_PAT_FN = dict(_PATTERNS)


def format_datetime(v: Any, fmt: str) -> str:
    out = []
    pos = 0
    fill = False
    for m in _PAT_RX.finditer(fmt):
        out.append(fmt[pos:m.start()])
        tok = m.group(0)
        pos = m.end()
        if tok == "FM":
            fill = True
            continue
        if tok.startswith('"'):
            out.append(tok[1:-1])
            continue
        s = _PAT_FN[tok](v)
        if fill:
            s = s.strip().lstrip("0") or "0"
            fill = False
        out.append(s)
    out.append(fmt[pos:])
    return "".join(out)


def _format_number(v: Any, fmt: str) -> str:
    f = fmt.replace("FM", "")
    digits = f.count("9") + f.count("0")
    dec = f.split(".")[1].count("9") + f.split(".")[1].count("0") if "." in f else 0
    d = Decimal(v).quantize(Decimal(1).scaleb(-dec)) if dec else Decimal(v).quantize(Decimal(1))
    s = f"{abs(d):,.{dec}f}" if "," in f else f"{abs(d):.{dec}f}"
    if "0" in f.split(".")[0]:
        s = s.zfill(digits + (1 if dec else 0))
    sign = "-" if d < 0 else ("" if fmt.startswith("FM") else " ")
    out = sign + s
    if not fmt.startswith("FM"):
        out = out.rjust(len(f) + 1 - ("." in f and 0))
    return out


def _to_char(cp: Compiler, node: exp.Expression) -> CExpr:
    a = _args(node)
    v = cp.compile(a[0])
    if len(a) < 2:
        return _strict([v.fn], T.to_text, T.TEXT)
    fmt = _fmt_arg(cp, a[1])
    fv = v.fn
    numeric = v.type in T.NUMERICS

    def run(r: Any, c: Any) -> Any:
        x, f = fv(r, c), fmt(r, c)
        if x is None or f is None:
            return None
        if numeric:
            return _format_number(x, f)
        if isinstance(x, _dt.datetime) and x.tzinfo is not None:
            x = x.astimezone(_session_tz(c))
        if isinstance(x, _dt.timedelta):
            x = _dt.datetime(1, 1, 1) + x
        return format_datetime(x, f)

    return CExpr(run, T.TEXT)


_PARSE = {"YYYY": r"(?P<Y>\d{4})", "YY": r"(?P<y>\d{2})", "MM": r"(?P<m>\d{1,2})", "DD": r"(?P<d>\d{1,2})",
          "HH24": r"(?P<H>\d{1,2})", "HH12": r"(?P<I>\d{1,2})", "HH": r"(?P<I>\d{1,2})", "MI": r"(?P<M>\d{1,2})",
          "SS": r"(?P<S>\d{1,2})", "MS": r"(?P<ms>\d{1,3})", "US": r"(?P<us>\d{1,6})",
          "MON": r"(?P<b>[A-Za-z]{3})", "Mon": r"(?P<b>[A-Za-z]{3})", "mon": r"(?P<b>[A-Za-z]{3})",
          "MONTH": r"(?P<B>[A-Za-z]+)", "Month": r"(?P<B>[A-Za-z]+)", "month": r"(?P<B>[A-Za-z]+)",
          "AM": r"(?P<p>[AaPp][Mm])", "PM": r"(?P<p>[AaPp][Mm])", "DDD": r"(?P<j>\d{1,3})"}
_PARSE_RX = re.compile("|".join(re.escape(k) for k in sorted(_PARSE, key=len, reverse=True)) + "|FM")


def _lit_rx(seg: str) -> str:
    """Template text between fields: separators match loosely, like PostgreSQL."""
    return "".join(r"[-/.,:\s]*" if ch in "-/., :" else re.escape(ch) for ch in seg)


def parse_datetime(s: str, fmt: str) -> _dt.datetime:
    rx = []
    pos = 0
    for m in _PARSE_RX.finditer(fmt):
        rx.append(_lit_rx(fmt[pos:m.start()]))
        pos = m.end()
        if m.group(0) != "FM":
            rx.append(_PARSE[m.group(0)])
    rx.append(_lit_rx(fmt[pos:]))
    mm = re.match(r"\s*" + "".join(rx), s.strip())
    if mm is None:
        raise errors.SqlError(f'invalid value "{s}" for "{fmt}"', sqlstate="22007")
    g = {k: v for k, v in mm.groupdict().items() if v is not None}
    year = int(g["Y"]) if "Y" in g else (2000 + int(g["y"]) if int(g["y"]) < 70 else 1900 + int(g["y"])) if "y" in g else 1
    month = int(g.get("m", 1))
    if "b" in g or "B" in g:
        name = (g.get("b") or g.get("B"))[:3].title()
        month = _dt.datetime.strptime(name, "%b").month
    day = int(g.get("d", 1))
    hour = int(g.get("H", g.get("I", 0)))
    if "p" in g:
        hour = hour % 12 + (12 if g["p"].lower() == "pm" else 0)
    us = int(g["us"].ljust(6, "0")) if "us" in g else int(g["ms"].ljust(3, "0")) * 1000 if "ms" in g else 0
    try:
        d = _dt.datetime(year, month, day, hour, int(g.get("M", 0)), int(g.get("S", 0)), us)
    except ValueError as e:
        raise errors.SqlError(f"date/time field value out of range: \"{s}\"", sqlstate="22008") from e
    if "j" in g:
        d = d.replace(month=1, day=1) + _dt.timedelta(days=int(g["j"]) - 1)
    return d


_STRF = {"%Y": "YYYY", "%y": "YY", "%m": "MM", "%d": "DD", "%H": "HH24", "%I": "HH12", "%M": "MI", "%S": "SS",
         "%f": "US", "%b": "Mon", "%B": "Month", "%p": "AM", "%j": "DDD", "%a": "Dy", "%A": "Day", "%-d": "FMDD",
         "%-m": "FMMM", "%-H": "FMHH24", "%%": "%", "%W": "WW", "%U": "WW"}


def _fmt_arg(cp: Compiler, e: exp.Expression) -> Callable:
    """A template argument; sqlglot rewrites literal templates to strftime: undo that."""
    f = cp.coerce(cp.compile(e), T.TEXT).fn

    def run(r: Any, c: Any) -> Any:
        v = f(r, c)
        if v is not None and "%" in v:
            v = re.sub(r"%-?[A-Za-z%]", lambda m: _STRF.get(m.group(0), m.group(0)), v)
        return v

    return run


def _to_date(cp: Compiler, node: exp.Expression) -> CExpr:
    a = _args(node)
    s, f = cp.coerce(cp.compile(a[0]), T.TEXT).fn, _fmt_arg(cp, a[1])
    return _strict([s, f], lambda v, fmt: parse_datetime(v, fmt).date(), T.DATE)


def _to_timestamp(cp: Compiler, node: exp.Expression) -> CExpr:
    a = _args(node)
    if len(a) == 1:
        x = cp.coerce(cp.compile(a[0]), T.FLOAT8)

        def from_epoch(v: float) -> Any:
            return _dt.datetime(1970, 1, 1, tzinfo=_UTC) + _dt.timedelta(seconds=v)

        return _strict([x.fn], from_epoch, T.TIMESTAMPTZ)
    s, f = cp.coerce(cp.compile(a[0]), T.TEXT).fn, _fmt_arg(cp, a[1])

    def run(r: Any, c: Any) -> Any:
        v, fmt = s(r, c), f(r, c)
        if v is None or fmt is None:
            return None
        return parse_datetime(v, fmt).replace(tzinfo=_session_tz(c)).astimezone(_UTC)

    return CExpr(run, T.TIMESTAMPTZ)


def _make_date(cp: Compiler, node: exp.Expression) -> CExpr:
    fs = [cp.coerce(cp.compile(x), T.INT4).fn for x in _args(node)[:3]]

    def body(y: int, m: int, d: int) -> _dt.date:
        try:
            return _dt.date(y, m, d)
        except ValueError:
            raise errors.SqlError(f"date field value out of range: {y}-{m:02d}-{d:02d}", sqlstate="22008") from None

    return _strict(fs, body, T.DATE)


def _make_timestamp(tz: bool) -> Callable:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        a = _args(node)
        fs = [cp.coerce(cp.compile(x), T.INT4).fn for x in a[:5]] + [cp.coerce(cp.compile(a[5]), T.FLOAT8).fn]

        def body(y: int, mo: int, d: int, h: int, mi: int, sec: float) -> Any:
            v = _dt.datetime(y, mo, d, h, mi, int(sec), int(round((sec - int(sec)) * 1e6)))
            return v.replace(tzinfo=_UTC) if tz else v

        return _strict(fs, body, T.TIMESTAMPTZ if tz else T.TIMESTAMP)

    return h


def _make_interval(cp: Compiler, node: exp.Expression) -> CExpr:
    names = ["years", "months", "weeks", "days", "hours", "mins", "secs"]
    vals: dict[str, Any] = {}
    if isinstance(node, exp.MakeInterval):
        for k in ("year", "month", "week", "day", "hour", "minute", "second"):
            v = node.args.get(k)
            if isinstance(v, exp.Kwarg):
                v = v.expression
            if v is not None:
                vals[{"year": "years", "month": "months", "week": "weeks", "day": "days", "hour": "hours",
                      "minute": "mins", "second": "secs"}[k]] = v
    else:
        for i, x in enumerate(_args(node)):
            if isinstance(x, (exp.Kwarg, exp.PropertyEQ, exp.EQ)):
                vals[x.this.name.lower()] = x.expression
            elif i < len(names):
                vals[names[i]] = x
    fs = {k: cp.coerce(cp.compile(v), T.FLOAT8 if k == "secs" else T.INT4).fn for k, v in vals.items()}

    def run(r: Any, c: Any) -> Any:
        got = {k: f(r, c) for k, f in fs.items()}
        if any(v is None for v in got.values()):
            return None
        days = got.get("years", 0) * 360 + got.get("months", 0) * 30 + got.get("weeks", 0) * 7 + got.get("days", 0)
        return _dt.timedelta(days=days, hours=got.get("hours", 0), minutes=got.get("mins", 0),
                             seconds=got.get("secs", 0))

    return CExpr(run, T.INTERVAL)


def _at_time_zone(cp: Compiler, node: exp.Expression) -> CExpr:
    v = cp.compile(node.this)
    if v.type == T.UNKNOWN:
        v = cp.coerce(v, T.TIMESTAMPTZ)
    z = cp.coerce(cp.compile(node.args["zone"]), T.TEXT).fn
    fv = v.fn
    if v.type == T.TIMESTAMPTZ:
        return _strict([fv, z], lambda x, name: x.astimezone(_zone(name)).replace(tzinfo=None), T.TIMESTAMP)
    if v.type in (T.TIMESTAMP, T.DATE):
        conv = T.caster(v.type, T.TIMESTAMP) or (lambda x: x)
        return _strict([fv, z], lambda x, name: conv(x).replace(tzinfo=_zone(name)).astimezone(_UTC), T.TIMESTAMPTZ)
    raise errors.UndefinedFunction(f"function timezone(unknown, {T.TYPE_NAMES.get(v.type)}) does not exist")


def _timezone_fn(cp: Compiler, node: exp.Expression) -> CExpr:
    a = _args(node)
    return _at_time_zone(cp, exp.AtTimeZone(this=a[1], zone=a[0]))


HANDLERS: dict[str, Callable[[Compiler, exp.Expression], CExpr]] = {
    "TimestampTrunc": _date_trunc, "DateTrunc": _date_trunc, "date_trunc": _date_trunc,
    "date_part": _date_part, "datepart": _date_part, "Extract": _extract,
    "age": _age, "JustifyDays": _justify("days"), "JustifyHours": _justify("hours"),
    "JustifyInterval": _justify("interval"), "justify_days": _justify("days"),
    "justify_hours": _justify("hours"), "justify_interval": _justify("interval"),
    "TimeToStr": _to_char, "to_char": _to_char, "StrToDate": _to_date, "to_date": _to_date,
    "StrToTime": _to_timestamp, "UnixToTime": _to_timestamp, "to_timestamp": _to_timestamp,
    "make_date": _make_date, "make_timestamp": _make_timestamp(False), "make_timestamptz": _make_timestamp(True),
    "MakeInterval": _make_interval, "make_interval": _make_interval, "AtTimeZone": _at_time_zone,
    "timezone": _timezone_fn,
}
