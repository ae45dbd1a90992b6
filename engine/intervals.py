"""Interval arithmetic helpers (intervals are ``datetime.timedelta`` values)."""

from __future__ import annotations

import datetime as _dt
from typing import Any


def add_interval(ts: Any, step: _dt.timedelta, times: int = 1) -> Any:
    """``ts + step * times`` (exact: multiplies the step rather than accumulating)."""
    return ts + step * times


def interval_is_zero(iv: _dt.timedelta) -> bool:
    return iv == _dt.timedelta(0)


def interval_sign(iv: _dt.timedelta) -> int:
    return (iv > _dt.timedelta(0)) - (iv < _dt.timedelta(0))


# -- input ------------------------------------------------------------------------------------------
_UNIT_SECONDS = {
    "microsecond": 1e-6, "microseconds": 1e-6, "us": 1e-6, "usec": 1e-6, "usecs": 1e-6,
    "millisecond": 1e-3, "milliseconds": 1e-3, "ms": 1e-3, "msec": 1e-3, "msecs": 1e-3,
    "second": 1, "seconds": 1, "sec": 1, "secs": 1, "s": 1,
    "minute": 60, "minutes": 60, "min": 60, "mins": 60, "m": 60,
    "hour": 3600, "hours": 3600, "hr": 3600, "hrs": 3600, "h": 3600,
    "day": 86400, "days": 86400, "d": 86400,
    "week": 7 * 86400, "weeks": 7 * 86400, "w": 7 * 86400,
    "month": 30 * 86400, "months": 30 * 86400, "mon": 30 * 86400, "mons": 30 * 86400,
    "year": 365.25 * 86400, "years": 365.25 * 86400, "y": 365.25 * 86400, "yr": 365.25 * 86400, "yrs": 365.25 * 86400,
    "decade": 3652.5 * 86400, "decades": 3652.5 * 86400, "century": 36525 * 86400, "centuries": 36525 * 86400,
    "millennium": 365250 * 86400, "millennia": 365250 * 86400,
}
_ISO = __import__("re").compile(
    r"P(?:(?P<y>[-\d.]+)Y)?(?:(?P<mo>[-\d.]+)M)?(?:(?P<w>[-\d.]+)W)?(?:(?P<d>[-\d.]+)D)?"
    r"(?:T(?:(?P<h>[-\d.]+)H)?(?:(?P<mi>[-\d.]+)M)?(?:(?P<s>[-\d.]+)S)?)?$", 2)


def parse_interval(text: str) -> _dt.timedelta:
    """PostgreSQL interval input: '1 day 02:03:04', '2 hours 30 mins', '@ 1 hour ago',
    '-1 days +02:00', 'P1Y2M3DT4H5M6S', '1-2' (year-month).  Months count 30 days."""
    from engine import errors

    s = text.strip()
    bad = errors.InvalidTextRepresentation(f'invalid input syntax for type interval: "{text}"')
    m = _ISO.match(s)
    if m and s.upper().startswith("P"):
        f = {k: float(v) for k, v in m.groupdict().items() if v}
        secs = (f.get("y", 0) * 365.25 + f.get("mo", 0) * 30 + f.get("w", 0) * 7 + f.get("d", 0)) * 86400 + \
            f.get("h", 0) * 3600 + f.get("mi", 0) * 60 + f.get("s", 0)
        return _dt.timedelta(seconds=secs)
    low = s.lower().replace(",", " ")
    ago = False
    if low.startswith("@"):
        low = low[1:]
    toks = low.split()
    if toks and toks[-1] == "ago":
        ago = True
        toks = toks[:-1]
    if not toks:
        raise bad
    total = 0.0
    i = 0
    while i < len(toks):
        tok = toks[i]
        if ":" in tok:
            sign = -1 if tok.startswith("-") else 1
            parts = tok.lstrip("+-").split(":")
            try:
                nums = [float(p) for p in parts]
            except ValueError:
                raise bad from None
            while len(nums) < 3:
                nums.append(0.0)
            total += sign * (nums[0] * 3600 + nums[1] * 60 + nums[2])
            i += 1
            continue
        ym = __import__("re").fullmatch(r"([+-]?\d+)-(\d+)", tok)
        if ym:  # year-month '1-2'
            y = int(ym.group(1))
            total += (y * 365.25 + (-1 if y < 0 or tok.startswith("-") else 1) * int(ym.group(2)) * 30) * 86400
            i += 1
            continue
        num_unit = __import__("re").fullmatch(r"([+-]?\d*\.?\d+(?:e[+-]?\d+)?)([a-z]+)?", tok)
        if num_unit is None:
            raise bad
        n = float(num_unit.group(1))
        unit = num_unit.group(2)
        if unit is None:
            if i + 1 < len(toks) and toks[i + 1] in _UNIT_SECONDS:
                unit = toks[i + 1]
                i += 1
            else:
                unit = "second"
        if unit not in _UNIT_SECONDS:
            raise bad
        total += n * _UNIT_SECONDS[unit]
        i += 1
    if ago:
        total = -total
    return _dt.timedelta(seconds=total)
