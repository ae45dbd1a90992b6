"""Date/time functions: date_trunc, date_part / extract, age, justify_*, isfinite,
to_char / to_date / to_timestamp (common template patterns), make_date /
make_timestamp(tz) / make_interval, AT TIME ZONE.

Values are those of ``engine.datetime_values`` (``datetime`` / ``date`` or their Big*
forms for BC, far-future and infinite values) and ``engine.intervals.Interval``.
Field arithmetic works on microseconds since 2000-01-01 so BC years behave; timestamptz
fields are taken in the session time zone.
"""

from __future__ import annotations

import datetime as _dt
import re
from decimal import Decimal
from typing import Any, Callable

from sqlglot import exp

from engine import datetime_values as dv
from engine import errors
from engine import types as T
from engine.datetime_style import current, zone as _style_zone
from engine.datetime_tochar import Fields, to_char
from engine.expr import CExpr, Compiler, call_args as _args, strict_call as _strict
from engine.intervals import USECS_PER_DAY, USECS_PER_HOUR, USECS_PER_MINUTE, Interval, as_interval
from engine.intervals import justify_days, justify_hours, justify_interval

_UTC = _dt.timezone.utc


def _zone(name: Any) -> _dt.tzinfo:
    """A zone argument (AT TIME ZONE, timezone(), date_trunc's third): a name, or an
    interval giving the offset east of UTC."""
    if isinstance(name, (Interval, _dt.timedelta)):
        secs = as_interval(name).micros // 1_000_000
        return _dt.timezone(_dt.timedelta(seconds=secs))
    return _style_zone(str(name))


def _session_tz(c: Any = None) -> _dt.tzinfo:
    return current().zone


def _ts_arg(cp: Compiler, e: exp.Expression) -> CExpr:
    c = cp.compile(e)
    if c.type == T.UNKNOWN or c.type in T.STRINGS:
        c = cp.coerce(c, T.TIMESTAMPTZ)
    if c.type == T.DATE:
        c = cp.coerce(c, T.TIMESTAMPTZ)
    return c


def _tname(oid: int) -> str:
    return T.TYPE_NAMES.get(oid, "timestamp")


# -- date_trunc --------------------------------------------------------------------------------
_UNIT_ALIASES = {
    "microsecond": "microseconds", "microseconds": "microseconds", "us": "microseconds", "usec": "microseconds",
    "usecs": "microseconds", "useconds": "microseconds",
    "millisecond": "milliseconds", "milliseconds": "milliseconds", "ms": "milliseconds", "msec": "milliseconds",
    "msecs": "milliseconds", "mseconds": "milliseconds",
    "second": "second", "seconds": "second", "sec": "second", "secs": "second", "s": "second",
    "minute": "minute", "minutes": "minute", "min": "minute", "mins": "minute", "m": "minute",
    "hour": "hour", "hours": "hour", "hr": "hour", "hrs": "hour", "h": "hour",
    "day": "day", "days": "day", "d": "day", "week": "week", "weeks": "week", "w": "week",
    "month": "month", "months": "month", "mon": "month", "mons": "month",
    "quarter": "quarter", "qtr": "quarter", "year": "year", "years": "year", "y": "year", "yr": "year",
    "yrs": "year", "decade": "decade", "decades": "decade", "dec": "decade", "decs": "decade",
    "century": "century", "centuries": "century", "c": "century", "cent": "century",
    "millennium": "millennium", "millennia": "millennium", "mil": "millennium", "mils": "millennium",
    "epoch": "epoch", "julian": "julian", "j": "julian", "dow": "dow", "isodow": "isodow", "doy": "doy",
    "isoyear": "isoyear", "timezone": "timezone", "timezone_hour": "timezone_hour",
    "timezone_minute": "timezone_minute", "timezone_h": "timezone_hour", "timezone_m": "timezone_minute",
    "tz": "timezone", "tz_hour": "timezone_hour", "tz_minute": "timezone_minute",
}


def _unit(u: str) -> str | None:
    return _UNIT_ALIASES.get(u.strip().lower())


def _cdiv(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _trunc_fields(unit: str, f: tuple, tname: str, raw: str) -> tuple:
    y, mo, d, hh, mi, ss, us = f
    if unit == "microseconds":
        return f
    if unit == "milliseconds":
        return (y, mo, d, hh, mi, ss, us // 1000 * 1000)
    if unit == "second":
        return (y, mo, d, hh, mi, ss, 0)
    if unit == "minute":
        return (y, mo, d, hh, mi, 0, 0)
    if unit == "hour":
        return (y, mo, d, hh, 0, 0, 0)
    if unit == "day":
        return (y, mo, d, 0, 0, 0, 0)
    if unit == "week":
        j = dv.date2j(y, mo, d)
        j -= (j % 7)  # back to Monday (Julian day 0 is a Monday)
        return (*dv.j2date(j), 0, 0, 0, 0)
    if unit == "month":
        return (y, mo, 1, 0, 0, 0, 0)
    if unit == "quarter":
        return (y, (mo - 1) // 3 * 3 + 1, 1, 0, 0, 0, 0)
    if unit == "year":
        return (y, 1, 1, 0, 0, 0, 0)
    if unit == "decade":
        y2 = y // 10 * 10 if y > 0 else -_cdiv(8 - (y - 1), 10) * 10
        return (y2, 1, 1, 0, 0, 0, 0)
    if unit == "century":
        y2 = _cdiv(y + 99, 100) * 100 - 99 if y > 0 else -_cdiv(99 - (y - 1), 100) * 100 + 1
        return (y2, 1, 1, 0, 0, 0, 0)
    if unit == "millennium":
        y2 = _cdiv(y + 999, 1000) * 1000 - 999 if y > 0 else -_cdiv(999 - (y - 1), 1000) * 1000 + 1
        return (y2, 1, 1, 0, 0, 0, 0)
    raise errors.SqlError(f'unit "{raw.lower()}" not supported for type {tname}', sqlstate="0A000")


def trunc_timestamp(raw: str, v: Any, zone: _dt.tzinfo | None = None) -> Any:
    tz = dv.is_aware(v)
    tname = "timestamp with time zone" if tz else "timestamp without time zone"
    unit = _unit(raw)
    if unit is None:
        raise errors.SqlError(f'unit "{raw.lower()}" not recognized for type {tname}', sqlstate="22023")
    if dv.is_infinite(v):
        return v
    us = dv.ts_us(v)
    if tz:
        z = zone or _session_tz()
        f = _trunc_fields(unit, dv.split_us(dv.utc_to_local(us, z)), tname, raw)
        local = dv.join_us(*f)
        if unit in ("microseconds", "milliseconds", "second", "minute"):
            return dv.make_ts(us - (dv.utc_to_local(us, z) - local), True)
        return dv.make_ts(dv.local_to_utc(local, z), True)
    return dv.make_ts(dv.join_us(*_trunc_fields(unit, dv.split_us(us), tname, raw)), False)


def trunc_interval(raw: str, v: Any) -> Interval:
    iv = as_interval(v)
    unit = _unit(raw)
    if unit is None:
        raise errors.SqlError(f'unit "{raw.lower()}" not recognized for type interval', sqlstate="22023")
    years, months = _cdiv(iv.months, 12), iv.months - _cdiv(iv.months, 12) * 12
    t = iv.micros
    if unit == "week":
        raise errors.SqlError(f'unit "{raw.lower()}" not supported for type interval', sqlstate="0A000",
                              detail="Months usually have fractional weeks.")
    steps = {"microseconds": 1, "milliseconds": 1000, "second": 1_000_000, "minute": USECS_PER_MINUTE,
             "hour": USECS_PER_HOUR}
    if unit in steps:
        return Interval(iv.months, iv.days, _cdiv(t, steps[unit]) * steps[unit])
    if unit == "day":
        return Interval(iv.months, iv.days, 0)
    if unit == "month":
        return Interval(iv.months, 0, 0)
    if unit == "quarter":
        return Interval(years * 12 + _cdiv(months, 3) * 3, 0, 0)
    mult = {"year": 1, "decade": 10, "century": 100, "millennium": 1000}.get(unit)
    if mult is None:
        raise errors.SqlError(f'unit "{raw.lower()}" not supported for type interval', sqlstate="0A000")
    return Interval(_cdiv(years, mult) * mult * 12, 0, 0)


def _date_trunc(cp: Compiler, node: exp.Expression) -> CExpr:
    zone_f = None
    if isinstance(node, exp.TimestampTrunc):
        unit_node, ts_node = node.args.get("unit"), node.this
        unit_c: Any = (lambda r, c, u=unit_node.name: u) if unit_node is not None else None
        if node.args.get("zone") is not None:
            zone_f = cp.coerce(cp.compile(node.args["zone"]), T.TEXT).fn
    else:
        a = _args(node)
        unit_c = cp.coerce(cp.compile(a[0]), T.TEXT).fn
        ts_node = a[1]
        if len(a) > 2:
            zone_f = cp.coerce(cp.compile(a[2]), T.TEXT).fn
    ts = _ts_arg(cp, ts_node)
    f = ts.fn
    if ts.type == T.INTERVAL:
        return CExpr(lambda r, c: None if (v := f(r, c)) is None or (u := unit_c(r, c)) is None
                     else trunc_interval(u, v), T.INTERVAL)

    def run(r: Any, c: Any) -> Any:
        v, u = f(r, c), unit_c(r, c)
        if v is None or u is None:
            return None
        z = None
        if zone_f is not None:
            zn = zone_f(r, c)
            if zn is None:
                return None
            z = _zone(zn)
        return trunc_timestamp(u, v, z)

    return CExpr(run, ts.type)


# -- date_part / extract ----------------------------------------------------------------------
_INF = Decimal("Infinity")
_INFINITE_UNITS = ("epoch", "year", "decade", "century", "millennium", "julian", "isoyear")


def _iso_year_week(y: int, mo: int, d: int) -> tuple[int, int]:
    j = dv.date2j(y, mo, d)
    dow = j % 7  # 0 = Monday
    thursday = j - dow + 3
    ty = dv.j2date(thursday)[0]
    week = (thursday - dv.date2j(ty, 1, 1)) // 7 + 1
    return ty, week


def _year_field(unit: str, y: int) -> int:
    if unit == "year":
        return y if y > 0 else y - 1
    if unit == "decade":
        return y // 10 if y >= 0 else -_cdiv(8 - (y - 1), 10)
    if unit == "century":
        return _cdiv(y + 99, 100) if y > 0 else -_cdiv(99 - (y - 1), 100)
    return _cdiv(y + 999, 1000) if y > 0 else -_cdiv(999 - (y - 1), 1000)


def _scaled(n: int, scale: int) -> Decimal:
    return Decimal(n).scaleb(-scale)


def extract_timestamp(raw: str, v: Any) -> Decimal | None:
    tz = dv.is_aware(v)
    tname = "timestamp with time zone" if tz else "timestamp without time zone"
    unit = _unit(raw)
    if unit is None:
        raise errors.SqlError(f'unit "{raw.lower()}" not recognized for type {tname}', sqlstate="22023")
    if dv.is_infinite(v):
        if unit in _INFINITE_UNITS:
            return _INF if dv.infinity_sign(v) > 0 else -_INF
        if unit in ("timezone", "timezone_hour", "timezone_minute") and not tz:
            raise errors.SqlError(f'unit "{raw.lower()}" not supported for type {tname}', sqlstate="0A000")
        return None
    us = dv.ts_us(v)
    if unit == "epoch":
        return _scaled(us + 946684800 * 1_000_000, 6)
    off = dv.offset_at_utc(us, _session_tz()) if tz else 0
    if unit in ("timezone", "timezone_hour", "timezone_minute"):
        if not tz:
            raise errors.SqlError(f'unit "{raw.lower()}" not supported for type {tname}', sqlstate="0A000")
        return Decimal(off if unit == "timezone" else _cdiv(off, 3600) if unit == "timezone_hour"
                       else _cdiv(off, 60) - _cdiv(off, 3600) * 60)
    local = us + off * 1_000_000
    y, mo, d, hh, mi, ss, micro = dv.split_us(local)
    return _fields(unit, raw, tname, y, mo, d, hh, mi, ss, micro, local)


def _fields(unit: str, raw: str, tname: str, y: int, mo: int, d: int, hh: int, mi: int, ss: int, micro: int,
            local: int | None) -> Decimal:
    if unit == "microseconds":
        return Decimal(ss * 1_000_000 + micro)
    if unit == "milliseconds":
        return _scaled(ss * 1_000_000 + micro, 3)
    if unit == "second":
        return _scaled(ss * 1_000_000 + micro, 6)
    if unit == "minute":
        return Decimal(mi)
    if unit == "hour":
        return Decimal(hh)
    if unit == "day":
        return Decimal(d)
    if unit == "month":
        return Decimal(mo)
    if unit == "quarter":
        return Decimal((mo - 1) // 3 + 1)
    if unit == "week":
        return Decimal(_iso_year_week(y, mo, d)[1])
    if unit in ("year", "decade", "century", "millennium"):
        return Decimal(_year_field(unit, y))
    if unit == "isoyear":
        iy = _iso_year_week(y, mo, d)[0]
        return Decimal(iy if iy > 0 else iy - 1)
    if unit == "dow":
        return Decimal((dv.date2j(y, mo, d) + 1) % 7)
    if unit == "isodow":
        return Decimal(dv.date2j(y, mo, d) % 7 + 1)
    if unit == "doy":
        return Decimal(dv.date2j(y, mo, d) - dv.date2j(y, 1, 1) + 1)
    if unit == "julian":
        day_us = ((hh * 60 + mi) * 60 + ss) * 1_000_000 + micro
        if local is None or day_us == 0:
            return Decimal(dv.date2j(y, mo, d))
        return Decimal(dv.date2j(y, mo, d)) + Decimal(day_us) / Decimal(USECS_PER_DAY)
    raise errors.SqlError(f'unit "{raw.lower()}" not supported for type {tname}', sqlstate="0A000")


def extract_date(raw: str, v: Any) -> Decimal | None:
    unit = _unit(raw)
    if unit is None:
        raise errors.SqlError(f'unit "{raw.lower()}" not recognized for type date', sqlstate="22023")
    if unit in ("microseconds", "milliseconds", "second", "minute", "hour", "timezone", "timezone_hour",
                "timezone_minute"):
        raise errors.SqlError(f'unit "{raw.lower()}" not supported for type date', sqlstate="0A000")
    if dv.is_infinite(v):
        if unit in _INFINITE_UNITS:
            return _INF if dv.infinity_sign(v) > 0 else -_INF
        return None
    days = dv.date_days(v)
    if unit == "epoch":
        return Decimal((days + 10957) * 86400)
    y, mo, d = dv.j2date(days + dv.EPOCH_J)
    return _fields(unit, raw, "date", y, mo, d, 0, 0, 0, 0, None)


def extract_interval(raw: str, v: Any) -> Decimal:
    iv = as_interval(v)
    unit = _unit(raw)
    if unit is None:
        raise errors.SqlError(f'unit "{raw.lower()}" not recognized for type interval', sqlstate="22023")
    if unit == "epoch":
        years = _cdiv(iv.months, 12)
        rest = iv.months - years * 12
        total = (Decimal(iv.micros) + Decimal(years) * Decimal("31557600000000") + Decimal(rest) * Decimal(
            30 * USECS_PER_DAY) + Decimal(iv.days) * Decimal(USECS_PER_DAY))
        return total.scaleb(-6)
    years = _cdiv(iv.months, 12)
    mons = iv.months - years * 12
    hours = _cdiv(iv.micros, USECS_PER_HOUR)
    rest = iv.micros - hours * USECS_PER_HOUR
    mins = _cdiv(rest, USECS_PER_MINUTE)
    sec_us = rest - mins * USECS_PER_MINUTE
    if unit == "microseconds":
        return Decimal(sec_us)
    if unit == "milliseconds":
        return _scaled(sec_us, 3)
    if unit == "second":
        return _scaled(sec_us, 6)
    if unit == "minute":
        return Decimal(mins)
    if unit == "hour":
        return Decimal(hours)
    if unit == "day":
        return Decimal(iv.days)
    if unit == "month":
        return Decimal(mons)
    if unit == "quarter":
        return Decimal(_cdiv(mons, 3) + 1)
    if unit == "year":
        return Decimal(years)
    if unit == "decade":
        return Decimal(_cdiv(years, 10))
    if unit == "century":
        return Decimal(_cdiv(years, 100))
    if unit == "millennium":
        return Decimal(_cdiv(years, 1000))
    raise errors.SqlError(f'unit "{raw.lower()}" not supported for type interval', sqlstate="0A000")


def extract_time(raw: str, v: _dt.time) -> Decimal:
    unit = _unit(raw)
    if unit is None:
        raise errors.SqlError(f'unit "{raw.lower()}" not recognized for type time without time zone', sqlstate="22023")
    us = ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond
    if unit == "epoch":
        return _scaled(us, 6)
    if unit in ("microseconds", "milliseconds", "second", "minute", "hour"):
        return _fields(unit, raw, "time without time zone", 2000, 1, 1, v.hour, v.minute, v.second,
                       v.microsecond, None)
    raise errors.SqlError(f'unit "{raw.lower()}" not supported for type time without time zone', sqlstate="0A000")


def extract_any(unit: str, v: Any, oid: int) -> Decimal | None:
    if oid == T.INTERVAL or isinstance(v, (Interval, _dt.timedelta)):
        return extract_interval(unit, v)
    if oid == T.DATE or dv.is_date(v):
        return extract_date(unit, v)
    if isinstance(v, _dt.time):
        return extract_time(unit, v)
    return extract_timestamp(unit, v)


def _date_part(cp: Compiler, node: exp.Expression) -> CExpr:
    a = _args(node)
    u = cp.coerce(cp.compile(a[0]), T.TEXT).fn
    v = cp.compile(a[1])
    if v.type in (T.UNKNOWN, T.DATE) or v.type in T.STRINGS:
        v = cp.coerce(v, T.TIMESTAMPTZ if v.type != T.DATE else T.TIMESTAMP)
    fv, oid = v.fn, v.type

    def run(r: Any, c: Any) -> Any:
        x, unit = fv(r, c), u(r, c)
        if x is None or unit is None:
            return None
        d = extract_any(unit, x, oid)
        return None if d is None else float(d)

    return CExpr(run, T.FLOAT8)


def _extract(cp: Compiler, node: exp.Expression) -> CExpr:
    unit = node.this.name
    v = cp.compile(node.expression)
    if v.type == T.UNKNOWN or v.type in T.STRINGS:
        v = cp.coerce(v, T.TIMESTAMPTZ)
    fv, oid = v.fn, v.type
    return CExpr(lambda r, c: None if (x := fv(r, c)) is None else extract_any(unit, x, oid), T.NUMERIC)


# -- age / justify / isfinite --------------------------------------------------------------------
def _age(cp: Compiler, node: exp.Expression) -> CExpr:
    a = _args(node)
    x = _ts_arg(cp, a[0])
    fy = cp.coerce(_ts_arg(cp, a[1]), x.type).fn if len(a) > 1 else None
    fx = x.fn

    def run(r: Any, c: Any) -> Any:
        v = fx(r, c)
        if v is None:
            return None
        if fy is not None:
            w = fy(r, c)
        else:  # midnight today, local time
            z = _session_tz()
            local = dv.utc_to_local(dv.ts_us(c.now), z) // USECS_PER_DAY * USECS_PER_DAY
            w = dv.make_ts(dv.local_to_utc(local, z), True) if dv.is_aware(v) else dv.make_ts(local, False)
        if w is None:
            return None
        return dv.age(v, w, _session_tz())

    return CExpr(run, T.INTERVAL)


def _justify(kind: str) -> Callable:
    fn = {"days": justify_days, "hours": justify_hours, "interval": justify_interval}[kind]

    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        a = cp.coerce(cp.compile(_args(node)[0]), T.INTERVAL)
        return _strict([a.fn], lambda v: fn(as_interval(v)), T.INTERVAL)

    return h


def _isfinite(cp: Compiler, node: exp.Expression) -> CExpr:
    a = cp.compile(_args(node)[0])
    if a.type in (T.UNKNOWN,) or a.type in T.STRINGS:
        a = cp.coerce(a, T.TIMESTAMPTZ)
    return _strict([a.fn], lambda v: not dv.is_infinite(v), T.BOOL)


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


def char_fields(x: Any) -> Any:
    """to_char's broken-down fields of a date, timestamp(tz) or interval."""
    if isinstance(x, (Interval, _dt.timedelta)):
        iv = as_interval(x)
        years = _cdiv(iv.months, 12)
        hours = _cdiv(iv.micros, USECS_PER_HOUR)
        rest = iv.micros - hours * USECS_PER_HOUR
        mins = _cdiv(rest, USECS_PER_MINUTE)
        rest -= mins * USECS_PER_MINUTE
        secs = _cdiv(rest, 1_000_000)
        return Fields(years, iv.months - years * 12, iv.days, hours, mins, secs, rest - secs * 1_000_000,
                      interval=True)
    if isinstance(x, _dt.time):
        return Fields(0, 0, 0, x.hour, x.minute, x.second, x.microsecond, interval=True)
    if dv.is_date(x):
        x = dv.to_timestamp(x, False)
    us = dv.ts_us(x)
    off, abbrev = None, ""
    if dv.is_aware(x):
        z = _session_tz()
        off = dv.offset_at_utc(us, z)
        abbrev = dv.zone_abbrev(us, z) or ""
        us += off * 1_000_000
    y, mo, d, hh, mi, ss, micro = dv.split_us(us)
    return Fields(y, mo, d, hh, mi, ss, micro, julian=dv.date2j(y, mo, d), tz_abbrev=abbrev, tz_offset=off)


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
        if dv.is_infinite(x):
            return None
        return to_char(char_fields(x), f)

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
            if v != v:
                raise errors.SqlError("timestamp cannot be NaN", sqlstate="22008")
            if v in (float("inf"), float("-inf")):
                return dv.infinite_ts(1 if v > 0 else -1, True)
            us = round((v - 946684800) * 1_000_000)
            if not (dv.MIN_US <= us < dv.END_US):
                raise errors.SqlError(f'timestamp out of range: "{v:g}"', sqlstate="22008")
            return dv.make_ts(us, True)

        return _strict([x.fn], from_epoch, T.TIMESTAMPTZ)
    s, f = cp.coerce(cp.compile(a[0]), T.TEXT).fn, _fmt_arg(cp, a[1])

    def run(r: Any, c: Any) -> Any:
        v, fmt = s(r, c), f(r, c)
        if v is None or fmt is None:
            return None
        return dv.to_timestamp(parse_datetime(v, fmt), True, _session_tz(c))

    return CExpr(run, T.TIMESTAMPTZ)


def _make_date(cp: Compiler, node: exp.Expression) -> CExpr:
    fs = [cp.coerce(cp.compile(x), T.INT4).fn for x in _args(node)[:3]]

    def body(y: int, m: int, d: int) -> Any:
        return dv.make_date((dv.date2j(*_checked_ymd(y, m, d, "date")) - dv.EPOCH_J))

    return _strict(fs, body, T.DATE)


def _checked_ymd(y: int, m: int, d: int, what: str) -> tuple[int, int, int]:
    """Year (negative = BC), month, day -> astronomical (y, m, d); 22008 if invalid."""
    if y == 0 or not 1 <= m <= 12 or not 1 <= d <= dv.days_in_month(y if y > 0 else y + 1, m):
        raise errors.SqlError(f"{what} field value out of range: {y}-{m:02d}-{d:02d}", sqlstate="22008")
    return (y if y > 0 else y + 1), m, d


def date_bin(stride: Any, ts: Any, origin: Any) -> Any:
    iv = as_interval(stride)
    if iv.months:
        raise errors.SqlError("timestamps cannot be binned into intervals containing months or years",
                              sqlstate="0A000")
    step = iv.days * USECS_PER_DAY + iv.micros
    if step <= 0:
        raise errors.SqlError("stride must be greater than zero", sqlstate="22008")
    if dv.is_infinite(ts):
        return ts
    if dv.is_infinite(origin):
        raise errors.SqlError("origin out of range", sqlstate="22008")
    t, o = dv.ts_us(ts), dv.ts_us(origin)
    diff = t - o
    delta = diff - (diff - _cdiv(diff, step) * step)  # remainder with the dividend's sign
    if o > t and step > 1:
        delta -= step
    return dv.make_ts(o + delta, dv.is_aware(ts))


def _date_bin(cp: Compiler, node: exp.Expression) -> CExpr:
    if isinstance(node, exp.DateBin):
        origin = node.args.get("origin") or node.args.get("unit")  # sqlglot files the third argument as unit
        a = [node.this, node.expression] + ([origin] if origin is not None else [])
    else:
        a = _args(node)
    stride = cp.coerce(cp.compile(a[0]), T.INTERVAL)
    ts = cp.compile(a[1])
    if ts.type in (T.UNKNOWN, T.DATE) or ts.type in T.STRINGS:
        ts = cp.coerce(ts, T.TIMESTAMPTZ if ts.type != T.DATE else T.TIMESTAMP)
    fs = [stride.fn, ts.fn]
    if len(a) > 2:
        fs.append(cp.coerce(cp.compile(a[2]), ts.type).fn)
    else:
        epoch = dv.make_ts(0, ts.type == T.TIMESTAMPTZ)
        fs.append(lambda r, c: epoch)
    return _strict(fs, date_bin, ts.type)


def _interval_hash(cp: Compiler, node: exp.Expression) -> CExpr:
    """interval_hash(interval): equal intervals ('1 mon' = '30 days') hash alike."""
    a = cp.coerce(cp.compile(_args(node)[0]), T.INTERVAL)

    def h(v: Any) -> int:
        x = hash(as_interval(v).span()) & 0xFFFFFFFF
        return x - (1 << 32) if x >= 1 << 31 else x

    return _strict([a.fn], h, T.INT4)


def _make_time(cp: Compiler, node: exp.Expression) -> CExpr:
    a = _args(node) if not isinstance(node, exp.TimeFromParts) else [
        node.args.get("hour"), node.args.get("min"), node.args.get("sec")]
    fs = [cp.coerce(cp.compile(a[0]), T.INT4).fn, cp.coerce(cp.compile(a[1]), T.INT4).fn,
          cp.coerce(cp.compile(a[2]), T.FLOAT8).fn]

    def body(h: int, mi: int, sec: float) -> _dt.time:
        if not (0 <= h <= 24 and 0 <= mi <= 59 and 0 <= sec <= 60) or (h == 24 and (mi or sec)):
            raise errors.SqlError(f"time field value out of range: {h:02d}:{mi:02d}:{sec:02g}", sqlstate="22008")
        us = ((h * 60 + mi) * 60) * 1_000_000 + int(round(sec * 1_000_000))
        us = min(us, USECS_PER_DAY - 1)
        return _dt.time(us // USECS_PER_HOUR, us // USECS_PER_MINUTE % 60, us // 1_000_000 % 60, us % 1_000_000)

    return _strict(fs, body, T.TIME)


def _make_timestamp(tz: bool) -> Callable:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        a = _args(node)
        fs = [cp.coerce(cp.compile(x), T.INT4).fn for x in a[:5]] + [cp.coerce(cp.compile(a[5]), T.FLOAT8).fn]
        if tz and len(a) > 6:
            fs.append(cp.coerce(cp.compile(a[6]), T.TEXT).fn)

        def body(y: int, mo: int, d: int, h: int, mi: int, sec: float, zone: Any = None) -> Any:
            yy, mo, d = _checked_ymd(y, mo, d, "date")
            if not (0 <= h <= 24 and 0 <= mi <= 59 and 0 <= sec <= 60) or (h == 24 and (mi or sec)):
                raise errors.SqlError(f"time field value out of range: {h}:{mi:02d}:{sec:02g}", sqlstate="22008")
            us = dv.join_us(yy, mo, d, h, mi, 0, 0) + int(round(sec * 1_000_000))
            if tz:
                us = dv.local_to_utc(us, _zone(zone) if zone is not None else _session_tz())
            if not (dv.MIN_US <= us < dv.END_US):
                raise errors.SqlError("timestamp out of range", sqlstate="22008")
            return dv.make_ts(us, tz)

        return _strict(fs, body, T.TIMESTAMPTZ if tz else T.TIMESTAMP)

    return h


def _make_interval(cp: Compiler, node: exp.Expression) -> CExpr:
    names = ["years", "months", "weeks", "days", "hours", "mins", "secs"]
    vals: dict[str, Any] = {}
    if isinstance(node, exp.MakeInterval):
        for k in ("year", "month", "week", "day", "hour", "minute", "second"):
            v = node.args.get(k)
            if isinstance(v, (exp.Kwarg, exp.PropertyEQ)):  # named: years := 1
                vals[v.this.name.lower()] = v.expression
            elif v is not None:
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
        secs = got.get("secs", 0.0)
        if secs != secs or secs in (float("inf"), float("-inf")):
            raise errors.SqlError("interval out of range", sqlstate="22008")
        months = got.get("years", 0) * 12 + got.get("months", 0)
        days = got.get("weeks", 0) * 7 + got.get("days", 0)
        us = got.get("hours", 0) * USECS_PER_HOUR + got.get("mins", 0) * USECS_PER_MINUTE + round(secs * 1_000_000)
        return Interval(months, days, us)

    return CExpr(run, T.INTERVAL)


def _at_time_zone(cp: Compiler, node: exp.Expression) -> CExpr:
    v = cp.compile(node.this)
    if v.type == T.UNKNOWN or v.type in T.STRINGS:
        v = cp.coerce(v, T.TIMESTAMPTZ)
    zc = cp.compile(node.args["zone"])
    z = (zc if zc.type == T.INTERVAL else cp.coerce(zc, T.TEXT)).fn
    fv = v.fn
    if v.type == T.TIMESTAMPTZ:
        def to_local(x: Any, name: Any) -> Any:
            if dv.is_infinite(x):
                return dv.infinite_ts(dv.infinity_sign(x), False)
            return dv.make_ts(dv.utc_to_local(dv.ts_us(x), _zone(name)), False)

        return _strict([fv, z], to_local, T.TIMESTAMP)
    if v.type in (T.TIMESTAMP, T.DATE):
        def to_utc(x: Any, name: Any) -> Any:
            if dv.is_date(x):
                x = dv.to_timestamp(x, False)
            if dv.is_infinite(x):
                return dv.infinite_ts(dv.infinity_sign(x), True)
            return dv.make_ts(dv.local_to_utc(dv.ts_us(x), _zone(name)), True)

        return _strict([fv, z], to_utc, T.TIMESTAMPTZ)
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
    "timezone": _timezone_fn, "isfinite": _isfinite, "make_time": _make_time, "TimeFromParts": _make_time,
    "DateBin": _date_bin, "date_bin": _date_bin, "interval_hash": _interval_hash,
}
