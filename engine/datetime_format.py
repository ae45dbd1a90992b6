"""Text output of date, time, timestamp, timestamptz and interval values under the
session's DateStyle, TimeZone and IntervalStyle (``engine.datetime_style``).

DateStyle output forms (MDY order; DMY swaps day and month)::

    ISO       1997-02-10 17:32:01.5-08      date 1997-02-10
    SQL       02/10/1997 17:32:01.5 PST     date 02/10/1997
    Postgres  Mon Feb 10 17:32:01.5 1997 PST  date 02-10-1997
    German    10.02.1997 17:32:01.5 PST     date 10.02.1997

Years before 1 AD print with a " BC" suffix.  IntervalStyle forms: postgres
``1 year 2 mons 3 days 04:05:06``, postgres_verbose ``@ 1 year 2 mons 3 days 4 hours 5 mins
6 secs``, sql_standard ``1-2 3 4:05:06``, iso_8601 ``P1Y2M3DT4H5M6S``.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

from engine import datetime_values as dv
from engine.datetime_style import Style, current
from engine.intervals import Interval, as_interval

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
DAYS = ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")


def _year(y: int) -> tuple[int, str]:
    return (y, "") if y > 0 else (1 - y, " BC")


def _frac(us: int) -> str:
    return f".{us:06d}".rstrip("0") if us else ""


def date_text(v: Any, style: Style | None = None) -> str:
    st = style or current()
    if dv.is_infinite(v):
        return "infinity" if dv.infinity_sign(v) > 0 else "-infinity"
    if type(v) is _dt.date:
        y, m, d = v.year, v.month, v.day
    else:
        y, m, d = dv.j2date(dv.date_days(v) + dv.EPOCH_J)
    return _date_part(y, m, d, st)


def _date_part(y: int, m: int, d: int, st: Style) -> str:
    yy, bc = _year(y)
    if st.output == "ISO":
        return f"{yy:04d}-{m:02d}-{d:02d}{bc}"
    if st.output == "SQL":
        a, b = (d, m) if st.order == "DMY" else (m, d)
        return f"{a:02d}/{b:02d}/{yy:04d}{bc}"
    if st.output == "German":
        return f"{d:02d}.{m:02d}.{yy:04d}{bc}"
    a, b = (d, m) if st.order == "DMY" else (m, d)
    return f"{a:02d}-{b:02d}-{yy:04d}{bc}"


def time_text(v: Any) -> str:
    s = f"{v.hour:02d}:{v.minute:02d}:{v.second:02d}{_frac(v.microsecond)}"
    if isinstance(v, _dt.time) and v.tzinfo is not None:
        off = v.utcoffset()
        s += offset_text(int(off.total_seconds()) if off is not None else 0)
    return s


def offset_text(secs: int) -> str:
    sign = "-" if secs < 0 else "+"
    secs = abs(secs)
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    out = f"{sign}{h:02d}"
    if m or s:
        out += f":{m:02d}"
    if s:
        out += f":{s:02d}"
    return out


def timestamp_text(v: Any, style: Style | None = None) -> str:
    """timestamp without time zone."""
    st = style or current()
    if dv.is_infinite(v):
        return "infinity" if dv.infinity_sign(v) > 0 else "-infinity"
    if type(v) is _dt.datetime and v.tzinfo is None:
        f = (v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond)
    else:
        f = dv.split_us(dv.ts_us(v))
    return _stamp(f, None, None, st)


def timestamptz_text(v: Any, style: Style | None = None) -> str:
    """timestamp with time zone, shown in the session time zone."""
    st = style or current()
    if dv.is_infinite(v):
        return "infinity" if dv.infinity_sign(v) > 0 else "-infinity"
    us = dv.ts_us(v)
    off = dv.offset_at_utc(us, st.zone)
    f = dv.split_us(us + off * 1_000_000)
    abbrev = dv.zone_abbrev(us, st.zone) if st.output != "ISO" else None
    return _stamp(f, off, abbrev, st)


def _stamp(f: tuple, off: int | None, abbrev: str | None, st: Style) -> str:
    y, m, d, hh, mi, ss, us = f
    yy, bc = _year(y)
    clock = f"{hh:02d}:{mi:02d}:{ss:02d}{_frac(us)}"
    if st.output == "ISO":
        return f"{yy:04d}-{m:02d}-{d:02d} {clock}{offset_text(off) if off is not None else ''}{bc}"
    zone = ""
    if off is not None:
        zone = " " + abbrev if abbrev else " " + offset_text(off)
    if st.output == "SQL":
        a, b = (d, m) if st.order == "DMY" else (m, d)
        return f"{a:02d}/{b:02d}/{yy:04d} {clock}{zone}{bc}"
    if st.output == "German":
        return f"{d:02d}.{m:02d}.{yy:04d} {clock}{zone}{bc}"
    dow = DAYS[(dv.date2j(y, m, d) + 1) % 7]
    if st.order == "DMY":
        return f"{dow} {d:02d} {MONTHS[m - 1]} {clock} {yy:04d}{zone}{bc}"
    return f"{dow} {MONTHS[m - 1]} {d:02d} {clock} {yy:04d}{zone}{bc}"


# -- interval ----------------------------------------------------------------------------------
def _tdiv(a: int, b: int) -> tuple[int, int]:
    q = abs(a) // b
    q = q if a >= 0 else -q
    return q, a - q * b


def interval_fields(iv: Interval) -> tuple[int, int, int, int, int, int, int]:
    """(years, months, days, hours, minutes, seconds, microseconds), each carrying its own
    sign (hours may exceed 24)."""
    years, months = _tdiv(iv.months, 12)
    hours, rest = _tdiv(iv.micros, 3_600_000_000)
    mins, rest = _tdiv(rest, 60_000_000)
    secs, us = _tdiv(rest, 1_000_000)
    return years, months, iv.days, hours, mins, secs, us


def _secs(sec: int, us: int, pad: bool) -> str:
    s = f"{abs(sec):02d}" if pad else str(abs(sec))
    return s + _frac(abs(us))


def interval_text(v: Any, style: str | None = None) -> str:
    iv = as_interval(v)
    kind = style or current().interval
    y, mo, d, h, mi, s, us = interval_fields(iv)
    if kind == "iso_8601":
        return _iso8601(y, mo, d, h, mi, s, us)
    if kind == "sql_standard":
        return _sql_standard(y, mo, d, h, mi, s, us)
    if kind == "postgres_verbose":
        return _verbose(y, mo, d, h, mi, s, us)
    return _postgres(y, mo, d, h, mi, s, us)


def _postgres(y: int, mo: int, d: int, h: int, mi: int, s: int, us: int) -> str:
    parts: list[str] = []
    before = False
    for val, unit in ((y, "year"), (mo, "mon"), (d, "day")):
        if val == 0:
            continue
        plus = "+" if before and val > 0 else ""
        parts.append(f"{plus}{val} {unit}{'' if val == 1 else 's'}")
        before = val < 0
    if h or mi or s or us or not parts:
        minus = h < 0 or mi < 0 or s < 0 or us < 0
        sign = "-" if minus else ("+" if before else "")
        parts.append(f"{sign}{abs(h):02d}:{abs(mi):02d}:{_secs(s, us, True)}")
    return " ".join(parts)


def _verbose(y: int, mo: int, d: int, h: int, mi: int, s: int, us: int) -> str:
    out = "@"
    zero, before = True, False
    for val, unit in ((y, "year"), (mo, "mon"), (d, "day"), (h, "hour"), (mi, "min")):
        if val == 0:
            continue
        if zero:
            before = val < 0
            val = abs(val)
        elif before:
            val = -val
        out += f" {val} {unit}{'' if val == 1 else 's'}"
        zero = False
    if s or us:
        out += " "
        if s < 0 or (s == 0 and us < 0):
            if zero:
                before = True
            elif not before:
                out += "-"
        elif before:
            out += "-"
        out += _secs(s, us, False) + (" sec" if abs(s) == 1 and us == 0 else " secs")
        zero = False
    if zero:
        out += " 0"
    if before:
        out += " ago"
    return out


def _sql_standard(y: int, mo: int, d: int, h: int, mi: int, s: int, us: int) -> str:
    vals = (y, mo, d, h, mi, s, us)
    neg = any(x < 0 for x in vals)
    pos = any(x > 0 for x in vals)
    has_ym = bool(y or mo)
    has_dt = bool(d or h or mi or s or us)
    standard = not (neg and pos) and not (has_ym and has_dt)
    prefix = ""
    if neg and standard:
        prefix = "-"
        y, mo, d, h, mi, s, us = (-x for x in vals)
    if not neg and not pos:
        return "0"
    if not standard:
        ys = "-" if y < 0 or mo < 0 else "+"
        ds = "-" if d < 0 else "+"
        ts = "-" if h < 0 or mi < 0 or s < 0 or us < 0 else "+"
        return f"{ys}{abs(y)}-{abs(mo)} {ds}{abs(d)} {ts}{abs(h)}:{abs(mi):02d}:{_secs(s, us, True)}"
    if has_ym:
        return f"{prefix}{y}-{mo}"
    if d:
        return f"{prefix}{d} {h}:{mi:02d}:{_secs(s, us, True)}"
    return f"{prefix}{h}:{mi:02d}:{_secs(s, us, True)}"


def _iso8601(y: int, mo: int, d: int, h: int, mi: int, s: int, us: int) -> str:
    if not (y or mo or d or h or mi or s or us):
        return "PT0S"
    out = "P"
    for val, c in ((y, "Y"), (mo, "M"), (d, "D")):
        if val:
            out += f"{val}{c}"
    if h or mi or s or us:
        out += "T"
    for val, c in ((h, "H"), (mi, "M")):
        if val:
            out += f"{val}{c}"
    if s or us:
        out += ("-" if s < 0 or us < 0 else "") + _secs(s, us, False) + "S"
    return out


def value_text(v: Any, tz_hint: bool | None = None) -> str | None:
    """Text of any date/time value, or None if ``v`` is not one."""
    t = type(v)
    if t is _dt.datetime or t is dv.BigTimestamp:
        aware = dv.is_aware(v) if tz_hint is None else tz_hint
        return timestamptz_text(v) if aware else timestamp_text(v)
    if t is _dt.date or t is dv.BigDate:
        return date_text(v)
    if t is Interval or t is _dt.timedelta:
        return interval_text(v)
    if t is _dt.time:
        return time_text(v)
    return None
