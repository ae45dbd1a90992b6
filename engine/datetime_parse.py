"""Text input of date, time, timestamp, timestamptz and interval values, accepting the
forms PostgreSQL accepts: ISO ``1999-01-08 04:05:06``, ``January 8, 1999``,
``1999-Jan-08``, ``08-Jan-1999``, ``1/8/1999`` (MDY or DMY per DateStyle), ``19990108``,
``J2451187``, ``epoch``, ``infinity``, ``allballs``, ``now``/``today``, BC years, time zone
offsets, abbreviations (``PST``) and names (``America/New_York``).

The text is first cut into fields (number, word, date, time, signed offset), then the
fields are decoded left to right; a number's meaning depends on what was seen before
it and on the DateStyle field order.  Intervals are decoded right to left, so a bare
number takes the unit written after it.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from typing import Any

from engine import datetime_values as dv
from engine import errors
from engine.datetime_style import ABBREVIATIONS, Style, current, zone as lookup_zone
from engine.intervals import INT32, INT64, USECS_PER_DAY, USECS_PER_HOUR, USECS_PER_MINUTE, Interval

# field kinds
NUMBER, STRING, DATE, TIME, TZ, SPECIAL = "number", "string", "date", "time", "tz", "special"

YEAR, MONTH, DAY, HOUR, MINUTE, SECOND, DOY, TZF, DOW, AMPM, ADBC = (
    "year", "month", "day", "hour", "minute", "second", "doy", "tz", "dow", "ampm", "adbc")
DATE_M = frozenset((YEAR, MONTH, DAY))
TIME_M = frozenset((HOUR, MINUTE, SECOND))

MONTH_NAMES = {m: i + 1 for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))}
MONTH_NAMES.update({n: i + 1 for i, n in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"))})
MONTH_NAMES.update({"sept": 9})
DOW_NAMES = {"sun", "mon", "tue", "tues", "wed", "wednes", "thu", "thur", "thurs", "fri", "sat", "sunday", "monday",
             "tuesday", "wednesday", "thursday", "friday", "saturday"}
# words ParseDateTime knows (a word followed by digits that is not one of these may be a zone)
KEYWORDS = set(MONTH_NAMES) | DOW_NAMES | {
    "am", "pm", "ad", "bc", "epoch", "infinity", "now", "today", "tomorrow", "yesterday", "allballs", "t", "j",
    "julian", "z", "zulu", "at", "on", "ago", "-infinity", "+infinity", "dst"}


class _Bad(Exception):
    """Decoding failed; ``kind`` picks the error message."""

    def __init__(self, kind: str = "format") -> None:
        self.kind = kind


def tokenize(s: str) -> list[tuple[str, str]]:
    """Cut date/time text into (kind, text) fields (text lower-cased)."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c.isspace():
            i += 1
            continue
        if c.isdigit():
            j = i
            while j < n and s[j].isdigit():
                j += 1
            if j < n and s[j] == ":":
                while j < n and (s[j].isdigit() or s[j] in ":."):
                    j += 1
                out.append((TIME, s[i:j].lower()))
            elif j < n and s[j] in "-/.":
                delim = s[j]
                j += 1
                if j < n and s[j].isdigit():
                    kind = NUMBER if delim == "." else DATE
                    while j < n and s[j].isdigit():
                        j += 1
                    if j < n and s[j] == delim:
                        kind = DATE
                        j += 1
                        while j < n and (s[j].isdigit() or s[j] == delim):
                            j += 1
                    out.append((kind, s[i:j].lower()))
                else:
                    while j < n and (s[j].isalnum() or s[j] == delim):
                        j += 1
                    out.append((DATE, s[i:j].lower()))
            else:
                out.append((NUMBER, s[i:j]))
            i = j
            continue
        if c == ".":
            j = i + 1
            while j < n and s[j].isdigit():
                j += 1
            out.append((NUMBER, s[i:j]))
            i = j
            continue
        if c.isalpha():
            j = i
            while j < n and s[j].isalpha():
                j += 1
            word = s[i:j].lower()
            is_date = False
            if j < n and s[j] in "-/.":
                is_date = True
            elif j < n and (s[j] == "+" or s[j].isdigit()):
                is_date = word not in KEYWORDS
            if is_date:
                while j < n and (s[j] in "+-/_.:" or s[j].isalnum()):
                    j += 1
                out.append((DATE, s[i:j].lower()))
            else:
                out.append((STRING, word))
            i = j
            continue
        if c in "+-":
            j = i + 1
            while j < n and s[j].isspace():
                j += 1
            if j < n and s[j].isdigit():
                k = j
                while k < n and (s[k].isdigit() or s[k] in ":.-"):
                    k += 1
                out.append((TZ, c + s[j:k]))
                i = k
            elif j < n and s[j].isalpha():
                k = j
                while k < n and s[k].isalpha():
                    k += 1
                out.append((SPECIAL, c + s[j:k].lower()))
                i = k
            else:
                raise _Bad()
            continue
        if c in ",@'()!&;[]{}\"<>~`|\\?#%^*=":
            i += 1
            continue
        raise _Bad()
    return out


@dataclass
class _Tm:
    year: int = 0
    month: int = 0
    day: int = 0
    hour: int = 0
    minute: int = 0
    second: int = 0
    us: int = 0
    yday: int = 0
    tz: int | None = None          # seconds east of UTC, when the text gave one
    zone: _dt.tzinfo | None = None  # a named zone (offset depends on the date)
    special: str | None = None      # epoch / infinity / -infinity
    fmask: set = field(default_factory=set)
    is2digits: bool = False
    bc: bool = False
    mer: str | None = None
    text_month: bool = False
    julian: bool = False


def _frac_us(text: str) -> int:
    """'.5' -> 500000 (rounded to microseconds)."""
    try:
        return int(round(float("0" + text) * 1_000_000))
    except ValueError:
        raise _Bad() from None


def _decode_time(f: str, tm: _Tm) -> None:
    parts = f.split(":")
    if len(parts) < 2 or len(parts) > 3 or not parts[0].isdigit():
        raise _Bad()
    hour = int(parts[0])
    if len(parts) == 2:
        mm = parts[1]
        if "." in mm:  # mm:ss.fff
            a, b = mm.split(".", 1)
            if not a.isdigit() or (b and not b.isdigit()):
                raise _Bad()
            tm.hour, tm.minute, tm.second, tm.us = 0, hour, int(a), _frac_us("." + b)
        else:
            if not mm.isdigit():
                raise _Bad()
            tm.hour, tm.minute, tm.second, tm.us = hour, int(mm), 0, 0
    else:
        if not parts[1].isdigit():
            raise _Bad()
        sec = parts[2]
        us = 0
        if "." in sec:
            a, b = sec.split(".", 1)
            if not a.isdigit() or (b and not b.isdigit()):
                raise _Bad()
            sec, us = a, _frac_us("." + b)
        elif not sec.isdigit():
            raise _Bad()
        tm.hour, tm.minute, tm.second, tm.us = hour, int(parts[1]), int(sec), us
    if (tm.hour > 24 or tm.minute > 59 or tm.second > 60
            or (tm.hour == 24 and (tm.minute or tm.second or tm.us))):
        raise _Bad("range")


def _decode_tz(f: str) -> int:
    """'+08', '-0800', '+08:00', '-08:00:30' -> seconds east of UTC."""
    sign = -1 if f[0] == "-" else 1
    body = f[1:]
    if ":" in body:
        ps = body.split(":")
        if not all(p.isdigit() for p in ps) or len(ps) > 3:
            raise _Bad()
        h, m, s = (int(ps[0]), int(ps[1]), int(ps[2]) if len(ps) > 2 else 0)
    elif body.isdigit():
        if len(body) <= 2:
            h, m, s = int(body), 0, 0
        elif len(body) <= 4:
            h, m, s = int(body[:-2]), int(body[-2:]), 0
        elif len(body) <= 6:
            h, m, s = int(body[:-4]), int(body[-4:-2]), int(body[-2:])
        else:
            raise _Bad()
    else:
        raise _Bad()
    if h > 15 or m > 59 or s > 59:
        raise _Bad("tzdisp")
    return sign * (h * 3600 + m * 60 + s)


def _number_field(f: str, tm: _Tm) -> set:
    """A run of digits that is a whole date (yyyymmdd, yymmdd) or time (hhmmss, hhmm)."""
    if "." in f:
        f, frac = f.split(".", 1)
        tm.us = _frac_us("." + frac)
    elif not DATE_M <= tm.fmask:
        if len(f) >= 6:
            tm.day, tm.month, tm.year = int(f[-2:]), int(f[-4:-2]), int(f[:-4])
            if len(f) - 4 == 2:
                tm.is2digits = True
            return set(DATE_M)
    if not TIME_M <= tm.fmask:
        if len(f) == 6:
            tm.hour, tm.minute, tm.second = int(f[:2]), int(f[2:4]), int(f[4:])
            return set(TIME_M)
        if len(f) == 4:
            tm.hour, tm.minute, tm.second = int(f[:2]), int(f[2:]), 0
            return set(TIME_M)
    raise _Bad()


def _decode_number(f: str, tm: _Tm, fmask: set, order: str) -> set:
    m = re.match(r"\d+", f)
    if not m:
        raise _Bad()
    flen = len(f)
    val = int(m.group(0))
    rest = f[m.end():]
    if rest.startswith("."):
        if m.end() > 2:
            saved = tm.fmask
            tm.fmask = fmask | DATE_M
            try:
                return _number_field(f, tm)
            finally:
                tm.fmask = saved
        if rest[1:] and not rest[1:].isdigit():
            raise _Bad()
        tm.us = _frac_us(rest)
    elif rest:
        raise _Bad()
    have = fmask & DATE_M
    if flen == 3 and have == {YEAR} and 1 <= val <= 366:
        tm.yday = val
        return {DOY, MONTH, DAY}
    if not have:
        if flen >= 3 or order == "YMD":
            tm.year, got = val, YEAR
        elif order == "DMY":
            tm.day, got = val, DAY
        else:
            tm.month, got = val, MONTH
    elif have == {YEAR}:
        tm.month, got = val, MONTH
    elif have == {MONTH}:
        if tm.text_month:
            if flen >= 3 or order == "YMD":
                tm.year, got = val, YEAR
            else:
                tm.day, got = val, DAY
        else:
            tm.day, got = val, DAY
    elif have == {YEAR, MONTH}:
        if tm.text_month and flen >= 3 and tm.is2digits:
            tm.day, tm.year = tm.year, val
            tm.is2digits = False
            return {DAY}
        tm.day, got = val, DAY
    elif have == {DAY}:
        tm.month, got = val, MONTH
    elif have == {MONTH, DAY}:
        tm.year, got = val, YEAR
    elif have == set(DATE_M):
        return _number_field(f, tm)
    else:
        raise _Bad()
    if got == YEAR:
        tm.is2digits = flen <= 2
    return {got}


def _decode_date(f: str, tm: _Tm, order: str) -> set:
    """'1999-01-08', '1/8/1999', '1999-jan-08', 'jan-08-1999', '08.01.1999'."""
    subs = [p for p in re.split(r"[^a-z0-9]+", f) if p != ""] if f else []
    if not subs or len(subs) > 3:
        raise _Bad()
    mask: set = set()
    nums = []
    for p in subs:
        if p[0].isalpha():
            if p in MONTH_NAMES:
                if MONTH in mask:
                    raise _Bad()
                tm.month = MONTH_NAMES[p]
                tm.text_month = True
                mask.add(MONTH)
            elif p in ("bc", "ad"):
                tm.bc = p == "bc"
                mask.add(ADBC)
            else:
                raise _Bad()
        else:
            nums.append(p)
    fm = set(tm.fmask) | mask
    for p in nums:
        got = _decode_number(p, tm, fm, order)
        if got & fm:
            raise _Bad()
        fm |= got
        mask |= got
    if (fm - {DOY, TZF, ADBC, DOW}) & DATE_M != DATE_M:
        raise _Bad()
    return mask


def _now_local(st: Style) -> int:
    now = _dt.datetime.now(dv.UTC)
    return dv.utc_to_local(dv.ts_us(now), st.zone)


def decode(text: str, st: Style, time_only: bool = False) -> _Tm:
    """Decode date/time text into fields (raises _Bad)."""
    fields = tokenize(text)
    if not fields:
        raise _Bad()
    tm = _Tm()
    order = st.order
    ptype: str | None = None
    i = 0
    n = len(fields)
    while i < n:
        kind, f = fields[i]
        got: set = set()
        if kind == DATE:
            if ptype == "j":
                raise _Bad()
            if ptype == "t" or (f[0].isdigit() and {MONTH, DAY} <= tm.fmask and "-" in f[1:]):
                # run-together time with a trailing zone: hhmmss-zz
                k = max(f.rfind("-"), f.rfind("+"))
                if k <= 0:
                    raise _Bad()
                tm.tz = _decode_tz(f[k:])
                got = _number_field(f[:k], tm) | {TZF}
                ptype = None
            elif f[0].isalpha() and not any(p in MONTH_NAMES for p in re.split(r"[^a-z]+", f)):
                got = _zone_field(f, tm)
            else:
                try:
                    got = _decode_date(f, tm, order)
                except _Bad:
                    if f[0].isalpha():
                        got = _zone_field(f, tm)
                    else:
                        raise
        elif kind == TIME:
            if ptype is not None:
                if ptype != "t":
                    raise _Bad()
                ptype = None
            _decode_time(f, tm)
            got = set(TIME_M)
        elif kind == TZ:
            if TZF in tm.fmask and tm.zone is None and tm.tz is not None:
                raise _Bad()
            tm.tz = _decode_tz(f)
            got = {TZF}
        elif kind == NUMBER:
            if ptype == "j":
                if not f.replace(".", "", 1).isdigit():
                    raise _Bad()
                whole, _, frac = f.partition(".")
                tm.year, tm.month, tm.day = dv.j2date(int(whole))
                tm.julian = True
                if frac:
                    us = int(round(float("0." + frac) * USECS_PER_DAY))
                    tm.hour, r = divmod(us, USECS_PER_HOUR)
                    tm.minute, r = divmod(r, USECS_PER_MINUTE)
                    tm.second, tm.us = divmod(r, 1_000_000)
                    got = set(DATE_M) | set(TIME_M)
                else:
                    got = set(DATE_M)
                ptype = None
            elif ptype == "t":
                saved = tm.fmask
                tm.fmask = tm.fmask | DATE_M
                try:
                    got = _number_field(f, tm)
                finally:
                    tm.fmask = saved
                if got != set(TIME_M):
                    raise _Bad()
                ptype = None
            else:
                flen = len(f)
                dot = f.find(".")
                if dot >= 0 and not (tm.fmask & DATE_M):
                    got = _decode_date(f, tm, order)
                elif dot > 2:
                    got = _number_field(f, tm)
                elif flen >= 6 and (not (tm.fmask & DATE_M) or not (tm.fmask & TIME_M)):
                    got = _number_field(f, tm)
                else:
                    got = _decode_number(f, tm, tm.fmask, order)
        elif kind in (STRING, SPECIAL):
            got = _decode_word(f, tm, st, fields, i)
            if f in ("j", "julian"):
                ptype = "j"
            elif f == "t":
                ptype = "t"
        if got & tm.fmask:
            raise _Bad()
        tm.fmask |= got
        i += 1
    if ptype is not None:
        raise _Bad()
    if tm.special:
        return tm
    # years: BC, two digits
    if YEAR in tm.fmask:
        if tm.julian:
            pass
        elif tm.bc:
            if tm.year <= 0:
                raise _Bad("range")
            tm.year = -(tm.year - 1)
        elif tm.is2digits:
            if tm.year < 70:
                tm.year += 2000
            elif tm.year < 100:
                tm.year += 1900
        elif tm.year <= 0:
            raise _Bad("range")
    elif tm.bc:
        raise _Bad()
    if DOY in tm.fmask:
        tm.year, tm.month, tm.day = dv.j2date(dv.date2j(tm.year, 1, 1) + tm.yday - 1)
    if MONTH in tm.fmask and not 1 <= tm.month <= 12:
        raise _Bad("md")
    if DAY in tm.fmask and not 1 <= tm.day <= 31:
        raise _Bad("md")
    if DATE_M <= tm.fmask and tm.day > dv.days_in_month(tm.year, tm.month):
        raise _Bad("range")
    if tm.mer is not None:
        if tm.hour > 12:
            raise _Bad("range")
        if tm.mer == "am" and tm.hour == 12:
            tm.hour = 0
        elif tm.mer == "pm" and tm.hour != 12:
            tm.hour += 12
    if not time_only and not DATE_M <= tm.fmask:
        raise _Bad()
    return tm


def _zone_field(f: str, tm: _Tm) -> set:
    try:
        tm.zone = lookup_zone(f.replace("_", "_"), setting=True) if "/" in f or f[0].isalpha() else None
    except errors.SqlError:
        raise _Bad("zone:" + f) from None
    if tm.zone is None:
        raise _Bad()
    tm.tz = None
    return {TZF}


def _decode_word(f: str, tm: _Tm, st: Style, fields: list, i: int) -> set:
    w = f
    if w in MONTH_NAMES:
        if MONTH in tm.fmask and not tm.text_month and DAY not in tm.fmask and 1 <= tm.month <= 31:
            tm.day = tm.month  # numeric "month" seen first was the day
            tm.month = MONTH_NAMES[w]
            tm.text_month = True
            return {DAY}
        tm.month = MONTH_NAMES[w]
        tm.text_month = True
        return {MONTH}
    if w in DOW_NAMES:
        return {DOW}
    if w in ("am", "pm"):
        tm.mer = w
        return {AMPM}
    if w in ("ad", "bc"):
        tm.bc = w == "bc"
        return {ADBC}
    if w in ("at", "on"):
        return set()
    if w in ("j", "julian", "t"):
        if w == "t" and (i >= len(fields) - 1 or fields[i + 1][0] not in (NUMBER, TIME, DATE)):
            raise _Bad()
        return set()
    if w == "epoch":
        tm.special = "epoch"
        return set(DATE_M) | set(TIME_M) | {TZF}
    if w in ("infinity", "+infinity"):
        tm.special = "infinity"
        return set(DATE_M) | set(TIME_M) | {TZF}
    if w == "-infinity":
        tm.special = "-infinity"
        return set(DATE_M) | set(TIME_M) | {TZF}
    if w == "now":
        us = dv.ts_us(_dt.datetime.now(dv.UTC))
        local = dv.utc_to_local(us, st.zone)
        tm.year, tm.month, tm.day, tm.hour, tm.minute, tm.second, tm.us = dv.split_us(local)
        tm.tz = dv.offset_at_utc(us, st.zone)
        return set(DATE_M) | set(TIME_M) | {TZF}
    if w in ("today", "tomorrow", "yesterday"):
        local = _now_local(st)
        days = local // USECS_PER_DAY + {"today": 0, "tomorrow": 1, "yesterday": -1}[w]
        tm.year, tm.month, tm.day = dv.j2date(days + dv.EPOCH_J)
        tm.hour = tm.minute = tm.second = tm.us = 0
        return set(DATE_M)
    if w == "allballs":
        tm.hour = tm.minute = tm.second = tm.us = 0
        tm.tz = 0
        return set(TIME_M) | {TZF}
    if w in ("z", "zulu"):
        tm.tz = 0
        return {TZF}
    if w in ABBREVIATIONS:
        off, _dst = ABBREVIATIONS[w]
        if TZF in tm.fmask and tm.tz is not None and w not in ("utc", "gmt", "z"):
            raise _Bad()
        tm.tz = off
        tm.zone = None
        return {TZF}
    if w == "dst":
        if tm.tz is None:
            raise _Bad()
        tm.tz += 3600
        return set()
    try:
        return _zone_field(w, tm)
    except _Bad:
        raise _Bad() from None


def _raise(e: _Bad, text: str, tname: str) -> None:
    if e.kind == "range":
        raise errors.SqlError(f'date/time field value out of range: "{text}"', sqlstate="22008")
    if e.kind == "md":
        raise errors.SqlError(f'date/time field value out of range: "{text}"', sqlstate="22008",
                              hint='Perhaps you need a different "datestyle" setting.')
    if e.kind == "tzdisp":
        raise errors.SqlError(f'time zone displacement out of range: "{text}"', sqlstate="22009")
    if e.kind.startswith("zone:"):
        raise errors.SqlError(f'time zone "{e.kind[5:]}" not recognized', sqlstate="22023")
    raise errors.SqlError(f'invalid input syntax for type {tname}: "{text}"', sqlstate="22007")


def parse_timestamp(text: str, tz: bool, style: Style | None = None) -> Any:
    st = style or current()
    tname = "timestamp with time zone" if tz else "timestamp without time zone"
    try:
        tm = decode(text, st)
    except _Bad as e:
        _raise(e, text, "timestamp with time zone" if tz else "timestamp")
    except RecursionError:
        raise
    if tm.special == "epoch":
        return dv.make_ts(-946684800 * 1_000_000, tz)
    if tm.special:
        return dv.infinite_ts(1 if tm.special == "infinity" else -1, tz)
    us = dv.join_us(tm.year, tm.month, tm.day, tm.hour, tm.minute, tm.second, tm.us)
    if tz:
        if tm.tz is not None:
            us -= tm.tz * 1_000_000
        else:
            us = dv.local_to_utc(us, tm.zone or st.zone)
    if not (dv.MIN_US <= us < dv.END_US):
        raise errors.SqlError(f'timestamp out of range: "{text}"', sqlstate="22008")
    del tname
    return dv.make_ts(us, tz)


def parse_date(text: str, style: Style | None = None) -> Any:
    st = style or current()
    try:
        tm = decode(text, st)
    except _Bad as e:
        _raise(e, text, "date")
    if tm.special == "epoch":
        return _dt.date(1970, 1, 1)
    if tm.special:
        return dv.infinite_date(1 if tm.special == "infinity" else -1)
    days = dv.date2j(tm.year, tm.month, tm.day) - dv.EPOCH_J
    if not (dv.MIN_DAYS <= days < dv.MAX_DATE_DAYS):
        raise errors.SqlError(f'date out of range: "{text}"', sqlstate="22008")
    return dv.make_date(days)


def parse_time(text: str, with_tz: bool = False, style: Style | None = None) -> _dt.time:
    st = style or current()
    try:
        tm = decode(text, st, time_only=True)
    except _Bad as e:
        _raise(e, text, "time with time zone" if with_tz else "time without time zone")
    if tm.special:
        raise errors.SqlError(f'invalid input syntax for type time: "{text}"', sqlstate="22007")
    us = ((tm.hour * 60 + tm.minute) * 60 + tm.second) * 1_000_000 + tm.us
    if us > USECS_PER_DAY:
        raise errors.SqlError(f'date/time field value out of range: "{text}"', sqlstate="22008")
    if us == USECS_PER_DAY:
        us -= 1  # 24:00:00 cannot be held by datetime.time; nearest value
    h, r = divmod(us, USECS_PER_HOUR)
    m, r = divmod(r, USECS_PER_MINUTE)
    s, micro = divmod(r, 1_000_000)
    tzinfo = None
    if with_tz:
        off = tm.tz if tm.tz is not None else dv.offset_at_utc(dv.ts_us(_dt.datetime.now(dv.UTC)), tm.zone or st.zone)
        tzinfo = _dt.timezone(_dt.timedelta(seconds=off))
    return _dt.time(h, m, s, micro, tzinfo=tzinfo)


# -- intervals ---------------------------------------------------------------------------------
_UNITS = {
    **{k: "microsecond" for k in ("microsecond", "microseconds", "microsecon", "us", "usec", "usecs", "useconds")},
    **{k: "millisecond" for k in ("millisecond", "milliseconds", "millisecon", "ms", "msec", "msecs", "mseconds")},
    **{k: "second" for k in ("second", "seconds", "s", "sec", "secs")},
    **{k: "minute" for k in ("minute", "minutes", "m", "min", "mins")},
    **{k: "hour" for k in ("hour", "hours", "h", "hr", "hrs")},
    **{k: "day" for k in ("day", "days", "d")},
    **{k: "week" for k in ("week", "weeks", "w")},
    **{k: "month" for k in ("month", "months", "mon", "mons")},
    **{k: "year" for k in ("year", "years", "y", "yr", "yrs")},
    **{k: "decade" for k in ("decade", "decades", "dec", "decs")},
    **{k: "century" for k in ("century", "centuries", "c", "cent")},
    **{k: "millennium" for k in ("millennium", "millennia", "millenniums", "mil", "mils")},
}
_RANGE_DEFAULT = {"year": "year", "month": "month", "year to month": "month", "day": "day", "hour": "hour",
                  "day to hour": "hour", "minute": "minute", "hour to minute": "minute",
                  "day to minute": "minute", "second": "second", "minute to second": "second",
                  "hour to second": "second", "day to second": "second"}


class _Acc:
    """Interval fields being accumulated (Python ints: overflow is checked at the end)."""

    def __init__(self) -> None:
        self.years = 0
        self.months = 0
        self.days = 0
        self.us = 0

    def check(self, text: str) -> None:
        """Each field must fit its own width (int32 years/months/days, int64 time)."""
        if not (INT32[0] <= self.years <= INT32[1] and INT32[0] <= self.months <= INT32[1]
                and INT32[0] <= self.days <= INT32[1] and INT64[0] <= self.us <= INT64[1]):
            raise _interval_bad(text, "range")

    def finish(self, text: str, negate: bool = False) -> Interval:
        self.check(text)
        months = self.years * 12 + self.months
        if not INT32[0] <= months <= INT32[1]:
            raise errors.SqlError("interval out of range", sqlstate="22008")
        if negate:
            if months == INT32[0] or self.days == INT32[0] or self.us == INT64[0]:
                raise _interval_bad(text, "range")
            return Interval(-months, -self.days, -self.us)
        return Interval(months, self.days, self.us)

    def frac_us(self, frac: float, scale: int) -> None:
        self.us += int(round(frac * scale))

    def frac_days(self, frac: float, scale: int) -> None:
        extra = frac * scale
        whole = int(extra)
        self.days += whole
        self.frac_us(extra - whole, USECS_PER_DAY)


def _interval_bad(text: str, kind: str = "format") -> errors.SqlError:
    if kind == "range":
        return errors.SqlError(f'interval field value out of range: "{text}"', sqlstate="22015")
    return errors.SqlError(f'invalid input syntax for type interval: "{text}"', sqlstate="22007")


def parse_interval(text: str, typmod: int = -1, range_: str | None = None, style: Style | None = None) -> Interval:
    st = style or current()
    s = text.strip()
    if s[:1] in ("P", "p") or s[:2] in ("-P", "-p"):
        iv = _parse_iso8601(s, text)
    else:
        iv = _parse_interval_fields(s, text, range_, st)
    return restrict_interval(iv, range_, typmod)


def _parse_interval_fields(s: str, text: str, range_: str | None, st: Style) -> Interval:
    try:
        fields = tokenize(s)
    except _Bad:
        raise _interval_bad(text) from None
    if not fields:
        raise _interval_bad(text)
    acc = _Acc()
    force_negative = False
    if st.interval == "sql_standard" and fields[0][1].startswith("-"):
        force_negative = not any(f[1][:1] in "+-" for f in fields[1:])
    unit: str | None = None
    pending_unit = False
    ago = False
    seen: set = set()
    for idx in range(len(fields) - 1, -1, -1):
        kind, f = fields[idx]
        mark: str | None = None
        if kind in (TIME, TZ) and ":" in f:
            neg = f.startswith("-")
            body = f.lstrip("+-")
            us = _interval_time(body, range_, text)
            if neg:
                us = -us
            if force_negative and us > 0:
                us = -us
            acc.us += us
            acc.check(text)
            mark = "time"
            unit = "day"
            pending_unit = False
        elif kind in (TIME,):
            raise _interval_bad(text)
        elif kind in (NUMBER, DATE, TZ):
            if unit is None:
                unit = _RANGE_DEFAULT.get(range_ or "", "second")
            m = re.fullmatch(r"([+-]?)(\d*)(?:\.(\d*))?", f)
            ym = re.fullmatch(r"([+-]?)(\d+)-(\d+)", f)
            if ym:
                y, mo = int(ym.group(2)), int(ym.group(3))
                if mo >= 12:
                    raise _interval_bad(text, "range")
                total = y * 12 + mo
                if ym.group(1) == "-":
                    total = -total
                if force_negative and total > 0:
                    total = -total
                acc.months += total
                acc.check(text)
                mark = "month"
            elif m and (m.group(2) or m.group(3)):
                sign = -1 if m.group(1) == "-" else 1
                val = int(m.group(2) or 0) * sign
                fval = float("0." + m.group(3)) * sign if m.group(3) else 0.0
                if force_negative:
                    val, fval = -abs(val), -abs(fval)
                _add_unit(acc, unit, val, fval, text)
                mark = unit
                if unit == "hour":
                    unit = "day"  # '1 2' DAY TO HOUR: the number before the hours is days
            else:
                raise _interval_bad(text)
            pending_unit = False
        elif kind in (STRING, SPECIAL):
            if pending_unit:
                raise _interval_bad(text)
            if f == "ago":
                if idx != len(fields) - 1:
                    raise _interval_bad(text)
                ago = True
                continue
            u = _UNITS.get(f)
            if u is None:
                raise _interval_bad(text)
            unit = u
            pending_unit = True
            continue
        else:
            raise _interval_bad(text)
        if mark is not None:
            marks = _MARKS.get(mark, {mark})
            if mark == "second" and kind != TIME and "." in f:
                marks = _MARKS["second."]
            if marks & seen:
                raise _interval_bad(text)
            seen |= marks
    if not seen or pending_unit:
        raise _interval_bad(text)
    return acc.finish(text, negate=ago)


_MARKS = {"time": {"hour", "minute", "second", "millisecond", "microsecond"},
          "second.": {"second", "millisecond", "microsecond"}}


def _interval_time(body: str, range_: str | None, text: str) -> int:
    parts = body.split(":")
    try:
        if len(parts) == 2:
            a, b = parts
            if "." in b or range_ == "minute to second":
                mins, secs = int(a), float(b)
                if secs >= 60:
                    raise _interval_bad(text, "range")
                return mins * USECS_PER_MINUTE + int(round(secs * 1_000_000))
            h, mi = int(a), int(b)
            if mi > 59:
                raise _interval_bad(text, "range")
            return h * USECS_PER_HOUR + mi * USECS_PER_MINUTE
        if len(parts) == 3:
            h, mi = int(parts[0]), int(parts[1])
            secs = float(parts[2])
            if mi > 59 or secs >= 60:
                raise _interval_bad(text, "range")
            return h * USECS_PER_HOUR + mi * USECS_PER_MINUTE + int(round(secs * 1_000_000))
    except ValueError:
        pass
    raise _interval_bad(text)


_MULT = {"decade": 10, "century": 100, "millennium": 1000}


def _add_unit(acc: _Acc, unit: str, val: int, fval: float, text: str) -> None:
    if unit in ("year", "month", "day", "week", "decade", "century", "millennium") and not INT32[0] <= val <= INT32[1]:
        raise _interval_bad(text, "range")
    if unit == "microsecond":
        acc.us += val + int(round(fval))
    elif unit == "millisecond":
        acc.us += val * 1000 + int(round(fval * 1000))
    elif unit == "second":
        acc.us += val * 1_000_000 + int(round(fval * 1_000_000))
    elif unit == "minute":
        acc.us += val * USECS_PER_MINUTE
        acc.frac_us(fval, USECS_PER_MINUTE)
    elif unit == "hour":
        acc.us += val * USECS_PER_HOUR
        acc.frac_us(fval, USECS_PER_HOUR)
    elif unit == "day":
        acc.days += val
        acc.frac_us(fval, USECS_PER_DAY)
    elif unit == "week":
        acc.days += val * 7
        acc.frac_days(fval, 7)
    elif unit == "month":
        acc.months += val
        acc.frac_days(fval, 30)
    elif unit == "year":
        acc.years += val
        acc.months += int(round(fval * 12))
    elif unit in _MULT:
        k = _MULT[unit]
        acc.years += val * k
        acc.months += int(round(fval * 12 * k))
    else:
        raise _interval_bad(text)
    acc.check(text)


_ISO_PART = re.compile(r"([+-]?\d*(?:\.\d*)?)([YMWDHS])", re.I)


def _split_num(g: str) -> tuple[int, float]:
    """'-12.5' -> (-12, -0.5), the fraction read from its own digits (no float rounding
    of the whole number)."""
    neg = g.startswith("-")
    whole, _, frac = g.lstrip("+-").partition(".")
    val = int(whole or "0")
    fval = float("0." + frac) if frac else 0.0
    return (-val, -fval) if neg else (val, fval)


def _parse_iso8601(s: str, text: str) -> Interval:
    neg_all = s.startswith("-")
    body = s.lstrip("-")[1:]
    acc = _Acc()
    if not body:
        raise _interval_bad(text)
    date_part, _, time_part = body.upper().partition("T")
    num = r"[+-]?\d+(?:\.\d*)?"
    m = re.match(rf"({num})(?:-({num}))?(?:-({num}))?", date_part)
    if m and (m.end() == len(date_part) or date_part[m.end():m.end() + 1] not in "YMWD"):
        first = m.group(1)
        if m.group(2) is None and re.fullmatch(r"\d{8}", first):
            fields = [first[:4], first[4:6], first[6:]]
        else:
            fields = [g for g in m.groups() if g is not None]
        for g, u in zip(fields, ("year", "month", "day")):
            _add_unit(acc, u, *_split_num(g), text)
        date_part = date_part[m.end():]
        if date_part:
            raise _interval_bad(text)
    if time_part and not re.search(r"[HMS]", time_part):
        if ":" in time_part:
            fields = time_part.split(":")
        elif re.fullmatch(r"\d{6}", time_part):
            fields = [time_part[:2], time_part[2:4], time_part[4:]]
        else:
            fields = [time_part]
        try:
            for g, u in zip(fields, ("hour", "minute", "second")):
                _add_unit(acc, u, *_split_num(g), text)
        except ValueError:
            raise _interval_bad(text) from None
        time_part = ""
    for sect, is_time in ((date_part, False), (time_part, True)):
        pos = 0
        for m in _ISO_PART.finditer(sect):
            if m.start() != pos or m.group(1) in ("", "+", "-", "."):
                raise _interval_bad(text)
            pos = m.end()
            val, fval = _split_num(m.group(1))
            c = m.group(2)
            if not is_time:
                u = {"Y": "year", "M": "month", "W": "week", "D": "day"}.get(c)
            else:
                u = {"H": "hour", "M": "minute", "S": "second"}.get(c)
            if u is None:
                raise _interval_bad(text)
            _add_unit(acc, u, val, fval, text)
        if pos != len(sect):
            raise _interval_bad(text)
    return acc.finish(text, negate=neg_all)


def restrict_interval(iv: Interval, range_: str | None, typmod: int = -1) -> Interval:
    """Drop the fields below an interval's declared range (INTERVAL YEAR, DAY TO HOUR...)
    and round seconds to a declared precision."""
    months, days, us = iv.months, iv.days, iv.micros
    r = (range_ or "").lower()
    last = r.split(" to ")[-1] if r else ""
    if last == "year":
        months, days, us = int(months / 12) * 12, 0, 0
    elif last == "month":
        days, us = 0, 0
    elif last == "day":
        us = 0
    elif last == "hour":
        us = int(us / USECS_PER_HOUR) * USECS_PER_HOUR
    elif last == "minute":
        us = int(us / USECS_PER_MINUTE) * USECS_PER_MINUTE
    prec = typmod & 0xFFFF if typmod >= 0 else -1
    if 0 <= prec < 6:
        step = 10 ** (6 - prec)
        us = int((abs(us) + step // 2) // step * step) * (1 if us >= 0 else -1)
    if (months, days, us) == (iv.months, iv.days, iv.micros):
        return iv
    return Interval(months, days, us)


_UNIT_WORDS = {"year": "year", "years": "year", "month": "month", "months": "month", "mon": "month",
               "day": "day", "days": "day", "hour": "hour", "hours": "hour", "minute": "minute",
               "minutes": "minute", "min": "minute", "second": "second", "seconds": "second", "sec": "second"}


def interval_literal(text: str, unit: Any) -> Interval:
    """``INTERVAL 'text' [unit | unit TO unit]`` (``unit``: sqlglot's unit node or None)."""
    if unit is None:
        return parse_interval(text)
    parts = [unit.this, unit.expression] if type(unit).__name__ == "IntervalSpan" else [unit]
    names, prec = [], -1
    for p in parts:
        if type(p).__name__ == "Second":  # SECOND(p)
            names.append("second")
            prec = int(p.this.name) if p.this is not None else -1
        else:
            names.append(p.name)
    words = [_UNIT_WORDS.get(n.lower()) for n in names]
    if any(w is None for w in words):
        return parse_interval(f"{text} {' '.join(names)}")
    range_ = " to ".join(words)  # type: ignore[arg-type]
    return parse_interval(text, prec, range_=range_)
