"""The session's date/time settings (DateStyle, TimeZone, IntervalStyle) as one value.

The session activates its settings at the start of each statement
(``activate(gucs)``); value input and output functions that have no session at hand
(type casts, the pg-wire encoders) read them with ``current()``.  The holder is a
``ContextVar``: each client connection is its own asyncio task, so sessions never see
each other's settings.
"""

from __future__ import annotations

import datetime as _dt
import re
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache

from engine import errors

UTC = _dt.timezone.utc


@dataclass(frozen=True, slots=True)
class Style:
    output: str = "ISO"          # ISO | Postgres | SQL | German
    order: str = "MDY"           # MDY | DMY | YMD (input field order, and SQL/Postgres output)
    zone_name: str = "UTC"
    zone: _dt.tzinfo = UTC
    interval: str = "postgres"   # postgres | postgres_verbose | sql_standard | iso_8601


DEFAULT = Style()
_CURRENT: ContextVar[Style] = ContextVar("borealis_datetime_style", default=DEFAULT)


def current() -> Style:
    return _CURRENT.get()


def activate(gucs: dict) -> Style:
    st = style_of(gucs.get("datestyle") or "ISO, MDY", gucs.get("timezone") or "UTC",
                  gucs.get("intervalstyle") or "postgres")
    _CURRENT.set(st)
    return st


@lru_cache(maxsize=256)
def style_of(datestyle: str, timezone: str, intervalstyle: str) -> Style:
    output, order = parse_datestyle(datestyle, strict=False)
    try:
        z = zone(timezone, setting=True)
    except errors.SqlError:
        z = UTC
    iv = intervalstyle.strip().lower()
    if iv not in ("postgres", "postgres_verbose", "sql_standard", "iso_8601"):
        iv = "postgres"
    return Style(output, order, timezone, z, iv)


def parse_datestyle(value: str, strict: bool = True, base: tuple[str, str] = ("ISO", "MDY")) -> tuple[str, str]:
    """'Postgres, MDY' -> ('Postgres', 'MDY'); a part left out keeps ``base``'s."""
    output, order = base
    seen_out = seen_order = False
    for part in re.split(r"[,\s]+", value.strip()):
        p = part.strip().strip("'\"").lower()
        if not p:
            continue
        if p == "iso":
            new_out, new_order = "ISO", None
        elif p == "sql":
            new_out, new_order = "SQL", None
        elif p == "postgres":
            new_out, new_order = "Postgres", None
        elif p == "german":
            new_out, new_order = "German", ("DMY" if not seen_order else None)
        elif p in ("ymd",):
            new_out, new_order = None, "YMD"
        elif p in ("dmy", "euro", "european"):
            new_out, new_order = None, "DMY"
        elif p in ("mdy", "us", "noneuropean", "noneuro"):
            new_out, new_order = None, "MDY"
        elif p == "default":
            new_out, new_order = "ISO", "MDY"
        else:
            if strict:
                raise errors.SqlError(f'invalid value for parameter "DateStyle": "{value}"', sqlstate="22023",
                                      detail=f'Unrecognized key word: "{part}".')
            continue
        if new_out is not None:
            if seen_out and new_out != output and strict:
                raise errors.SqlError(f'invalid value for parameter "DateStyle": "{value}"', sqlstate="22023",
                                      detail="Conflicting \"datestyle\" specifications.")
            output, seen_out = new_out, True
        if new_order is not None:
            order = new_order
            if p != "german":
                seen_order = True
    return output, order


def format_datestyle(output: str, order: str) -> str:
    return f"{output}, {order}"


def check_setting(name: str, value: str, old: str) -> str:
    """Validate SET datestyle / timezone / intervalstyle; returns the value to store
    (DateStyle merged with the old setting and spelled out, as SHOW prints it)."""
    if name == "datestyle":
        base = parse_datestyle(old or "ISO, MDY", strict=False)
        return format_datestyle(*parse_datestyle(value, strict=True, base=base))
    if name == "intervalstyle":
        v = value.strip().lower()
        if v not in ("postgres", "postgres_verbose", "sql_standard", "iso_8601"):
            raise errors.SqlError(f'invalid value for parameter "IntervalStyle": "{value}"', sqlstate="22023",
                                  hint="Available values: postgres, postgres_verbose, sql_standard, iso_8601.")
        return v
    v = value.strip()
    m = re.fullmatch(r"(?i)interval\s+'([^']*)'.*", v)
    if m:  # SET TIME ZONE INTERVAL '-08:00' HOUR TO MINUTE
        from engine.datetime_parse import parse_interval

        iv = parse_interval(m.group(1))
        secs = iv.micros // 1_000_000
        sign = "-" if secs < 0 else "+"
        h, rest = divmod(abs(secs), 3600)
        return f"{sign}{h:02d}:{rest // 60:02d}"
    try:
        zone(v, setting=True)
    except errors.SqlError:
        raise errors.SqlError(f'invalid value for parameter "TimeZone": "{value}"', sqlstate="22023") from None
    return v


_POSIX = re.compile(r"([A-Za-z]{3,})([+-]?)(\d{1,2})(?::(\d\d))?")
_FIXED = re.compile(r"([+-]?)(\d{1,2})(?::?(\d\d))?(?::(\d\d))?")


@lru_cache(maxsize=256)
def zone(name: str, setting: bool = False) -> _dt.tzinfo:
    """A time zone by name: 'UTC', 'America/New_York', 'PST8PDT', an abbreviation
    ('EST'), or a numeric offset.  A bare number is hours EAST of UTC when it is a
    setting (SET TIME ZONE -8) and POSIX-style (hours WEST) as a zone name."""
    n = name.strip()
    if n.upper() in ("UTC", "GMT", "Z", "ETC/UTC", "UCT", "ZULU", "UT", "ETC/GMT"):
        return UTC
    m = _FIXED.fullmatch(n)
    if m:
        sign = 1 if m.group(1) != "-" else -1
        if not setting:
            sign = -sign
        secs = int(m.group(2)) * 3600 + int(m.group(3) or 0) * 60 + int(m.group(4) or 0)
        if secs > 15 * 3600 + 59 * 60:
            raise errors.SqlError(f'time zone "{name}" not recognized', sqlstate="22023")
        return _dt.timezone(_dt.timedelta(seconds=sign * secs)) if secs else UTC
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo(n)
    except Exception:  # noqa: BLE001 -- any lookup failure means "not a zone"
        pass
    try:
        from zoneinfo import ZoneInfo

        low = n.lower()
        for cand in _zone_names():
            if cand.lower() == low:
                return ZoneInfo(cand)
    except Exception:  # noqa: BLE001
        pass
    m = _POSIX.fullmatch(n)
    if m:  # POSIX 'GMT+8', 'PST+8', 'MST+7:00': the number is hours WEST of Greenwich
        secs = int(m.group(3)) * 3600 + int(m.group(4) or 0) * 60
        sign = 1 if m.group(2) == "-" else -1
        return _dt.timezone(_dt.timedelta(seconds=sign * secs))
    off = ABBREVIATIONS.get(n.lower())
    if off is not None:
        return _dt.timezone(_dt.timedelta(seconds=off[0]), n.upper())
    raise errors.SqlError(f'time zone "{name}" not recognized', sqlstate="22023")


@lru_cache(maxsize=1)
def _zone_names() -> tuple[str, ...]:
    from zoneinfo import available_timezones

    return tuple(sorted(available_timezones()))


# abbreviation -> (seconds east of UTC, is daylight time); the common North American,
# European and a few other zones of PostgreSQL's default abbreviation set
ABBREVIATIONS: dict[str, tuple[int, bool]] = {
    "utc": (0, False), "gmt": (0, False), "ut": (0, False), "z": (0, False), "zulu": (0, False),
    "pst": (-8 * 3600, False), "pdt": (-7 * 3600, True), "mst": (-7 * 3600, False), "mdt": (-6 * 3600, True),
    "cst": (-6 * 3600, False), "cdt": (-5 * 3600, True), "est": (-5 * 3600, False), "edt": (-4 * 3600, True),
    "ast": (-4 * 3600, False), "adt": (-3 * 3600, True), "nst": (-(3 * 3600 + 1800), False),
    "ndt": (-(2 * 3600 + 1800), True), "akst": (-9 * 3600, False), "akdt": (-8 * 3600, True),
    "hst": (-10 * 3600, False), "bst": (3600, True), "wet": (0, False), "west": (3600, True),
    "cet": (3600, False), "cest": (7200, True), "met": (3600, False), "mest": (7200, True),
    "eet": (7200, False), "eest": (10800, True), "msk": (10800, False), "ist": (7200, False),
    "jst": (9 * 3600, False), "kst": (9 * 3600, False), "hkt": (8 * 3600, False), "awst": (8 * 3600, False),
    "acst": (9 * 3600 + 1800, False), "aest": (10 * 3600, False), "aedt": (11 * 3600, True),
    "nzst": (12 * 3600, False), "nzdt": (13 * 3600, True), "sast": (7200, False), "wat": (3600, False),
    "cat": (7200, False), "eat": (10800, False), "brt": (-3 * 3600, False), "art": (-3 * 3600, False),
    "yst": (-9 * 3600, False), "ydt": (-8 * 3600, True), "sgt": (8 * 3600, False),
}
