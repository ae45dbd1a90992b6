"""The interval value: months, days and microseconds kept apart, as PostgreSQL does.

A month is not a fixed number of days and a day is not always 24 hours (time zone
changes), so ``'1 month'`` stays one month until it is added to a date.  Comparisons and
hashing use the span with a month counted as 30 days and a day as 24 hours, so
``'1 mon' = '30 days'`` is true (and both hash alike).

Arithmetic with timestamps and dates lives in ``engine.datetime_values``; Python's
``datetime + Interval`` reaches ``Interval.__radd__`` which delegates there.
"""

from __future__ import annotations

import datetime as _dt
import math
from typing import Any

from engine import errors

USECS_PER_SEC = 1_000_000
USECS_PER_MINUTE = 60 * USECS_PER_SEC
USECS_PER_HOUR = 60 * USECS_PER_MINUTE
USECS_PER_DAY = 24 * USECS_PER_HOUR
DAYS_PER_MONTH = 30
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)


def _trunc_div(a: int, b: int) -> int:
    """Integer division rounding toward zero (C semantics)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _tsround(x: float) -> float:
    """Round to microsecond precision (what PostgreSQL does to cascaded fractions)."""
    return round(x * 1e6) / 1e6


def out_of_range() -> errors.SqlError:
    return errors.SqlError("interval out of range", sqlstate="22008")


class Interval:
    """An immutable interval: ``months`` (int32), ``days`` (int32), ``micros`` (int64)."""

    __slots__ = ("months", "days", "micros")

    def __init__(self, months: int = 0, days: int = 0, micros: int = 0, check: bool = True) -> None:
        if check and not (INT32[0] <= months <= INT32[1] and INT32[0] <= days <= INT32[1]
                          and INT64[0] <= micros <= INT64[1]):
            raise out_of_range()
        object.__setattr__(self, "months", months)
        object.__setattr__(self, "days", days)
        object.__setattr__(self, "micros", micros)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Interval is immutable")

    @classmethod
    def from_timedelta(cls, td: _dt.timedelta) -> "Interval":
        total = (td.days * 86400 + td.seconds) * USECS_PER_SEC + td.microseconds
        days = _trunc_div(total, USECS_PER_DAY)
        return cls(0, days, total - days * USECS_PER_DAY)

    def span(self) -> int:
        """Microseconds with a month as 30 days and a day as 24 hours (ordering key)."""
        return (self.months * DAYS_PER_MONTH + self.days) * USECS_PER_DAY + self.micros

    def to_timedelta(self) -> _dt.timedelta:
        return _dt.timedelta(microseconds=self.span())

    def total_seconds(self) -> float:
        return self.span() / USECS_PER_SEC

    # -- comparison ------------------------------------------------------------------------
    def __eq__(self, other: Any) -> bool:
        if isinstance(other, Interval):
            return self.span() == other.span()
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("interval", self.span()))

    def __lt__(self, other: Any) -> bool:
        if isinstance(other, Interval):
            return self.span() < other.span()
        return NotImplemented

    def __le__(self, other: Any) -> bool:
        if isinstance(other, Interval):
            return self.span() <= other.span()
        return NotImplemented

    def __gt__(self, other: Any) -> bool:
        if isinstance(other, Interval):
            return self.span() > other.span()
        return NotImplemented

    def __ge__(self, other: Any) -> bool:
        if isinstance(other, Interval):
            return self.span() >= other.span()
        return NotImplemented

    def __bool__(self) -> bool:
        return bool(self.months or self.days or self.micros)

    def __repr__(self) -> str:
        return f"Interval(months={self.months}, days={self.days}, micros={self.micros})"

    def __str__(self) -> str:
        from engine.datetime_format import interval_text

        return interval_text(self, "postgres")

    # -- arithmetic --------------------------------------------------------------------------
    def __neg__(self) -> "Interval":
        return Interval(-self.months, -self.days, -self.micros)

    def __pos__(self) -> "Interval":
        return self

    def __abs__(self) -> "Interval":
        return -self if self.span() < 0 else self

    def __add__(self, other: Any) -> Any:
        if isinstance(other, Interval):
            return Interval(self.months + other.months, self.days + other.days, self.micros + other.micros)
        if isinstance(other, _dt.timedelta):
            return self + Interval.from_timedelta(other)
        if isinstance(other, int) and other == 0:  # sum() starts from 0
            return self
        from engine import datetime_values as dv

        if dv.is_datetime_value(other):
            return dv.add_interval(other, self)
        return NotImplemented

    def __radd__(self, other: Any) -> Any:
        return self.__add__(other)

    def __sub__(self, other: Any) -> Any:
        if isinstance(other, Interval):
            return Interval(self.months - other.months, self.days - other.days, self.micros - other.micros)
        if isinstance(other, _dt.timedelta):
            return self - Interval.from_timedelta(other)
        return NotImplemented

    def __rsub__(self, other: Any) -> Any:
        from engine import datetime_values as dv

        if dv.is_datetime_value(other):
            return dv.add_interval(other, -self)
        if isinstance(other, _dt.timedelta):
            return Interval.from_timedelta(other) - self
        return NotImplemented

    def __mul__(self, factor: Any) -> "Interval":
        if isinstance(factor, Interval):
            return NotImplemented
        if isinstance(factor, int):
            return Interval(self.months * factor, self.days * factor, self.micros * factor)
        return _scale(self, float(factor), divide=False)

    __rmul__ = __mul__

    def __truediv__(self, factor: Any) -> "Interval":
        f = float(factor)
        if f == 0:
            raise errors.DivisionByZero("division by zero")
        return _scale(self, f, divide=True)


def _c_int(x: float) -> int:
    if math.isnan(x) or math.isinf(x):
        raise out_of_range()
    return int(x)  # truncates toward zero like a C cast


def _scale(iv: Interval, f: float, divide: bool) -> Interval:
    """interval * factor / interval / factor, cascading fractional months into days and
    fractional days into time (a month = 30 days, a day = 24 hours)."""
    op = (lambda v: v / f) if divide else (lambda v: v * f)
    mon_d = op(float(iv.months))
    day_d = op(float(iv.days))
    if math.isnan(mon_d) or abs(mon_d) > INT32[1] + 1 or abs(day_d) > INT32[1] + 1:
        raise out_of_range()
    months = _c_int(mon_d)
    days = _c_int(day_d)
    month_rem_days = _tsround((mon_d - months) * DAYS_PER_MONTH)
    sec_rem = _tsround((day_d - days + month_rem_days - int(month_rem_days)) * 86400)
    if abs(sec_rem) >= 86400:
        extra = int(sec_rem / 86400)
        days += extra
        sec_rem -= extra * 86400
    days += int(month_rem_days)
    t = op(float(iv.micros)) + sec_rem * USECS_PER_SEC
    if math.isnan(t) or not (INT64[0] <= t < 2.0**63):
        raise out_of_range()
    return Interval(months, days, int(round(t)))


# -- justify ------------------------------------------------------------------------------------
def justify_hours(iv: Interval) -> Interval:
    whole = _trunc_div(iv.micros, USECS_PER_DAY)
    time = iv.micros - whole * USECS_PER_DAY
    days = iv.days + whole
    if days > 0 and time < 0:
        time += USECS_PER_DAY
        days -= 1
    elif days < 0 and time > 0:
        time -= USECS_PER_DAY
        days += 1
    return Interval(iv.months, days, time)


def justify_days(iv: Interval) -> Interval:
    whole = _trunc_div(iv.days, DAYS_PER_MONTH)
    days = iv.days - whole * DAYS_PER_MONTH
    months = iv.months + whole
    if months > 0 and days < 0:
        days += DAYS_PER_MONTH
        months -= 1
    elif months < 0 and days > 0:
        days -= DAYS_PER_MONTH
        months += 1
    return Interval(months, days, iv.micros)


def justify_interval(iv: Interval) -> Interval:
    months, days, time = iv.months, iv.days, iv.micros
    if (days > 0 and time > 0) or (days < 0 and time < 0):
        whole = _trunc_div(days, DAYS_PER_MONTH)
        days -= whole * DAYS_PER_MONTH
        months += whole
    whole = _trunc_div(time, USECS_PER_DAY)
    time -= whole * USECS_PER_DAY
    days += whole
    whole = _trunc_div(days, DAYS_PER_MONTH)
    days -= whole * DAYS_PER_MONTH
    months += whole
    if months > 0 and (days < 0 or (days == 0 and time < 0)):
        days += DAYS_PER_MONTH
        months -= 1
    elif months < 0 and (days > 0 or (days == 0 and time > 0)):
        days -= DAYS_PER_MONTH
        months += 1
    if days > 0 and time < 0:
        time += USECS_PER_DAY
        days -= 1
    elif days < 0 and time > 0:
        time -= USECS_PER_DAY
        days += 1
    return Interval(months, days, time)


def as_interval(v: Any) -> Interval:
    """An Interval from an Interval or a ``timedelta`` (values decoded from old rows)."""
    if isinstance(v, Interval):
        return v
    if isinstance(v, _dt.timedelta):
        return Interval.from_timedelta(v)
    raise TypeError(f"not an interval: {v!r}")


# -- helpers used by generate_series ------------------------------------------------------------
def add_interval(ts: Any, step: Any, times: int = 1) -> Any:
    """``ts + step * times`` (exact: multiplies the step rather than accumulating)."""
    return ts + as_interval(step) * times


def interval_is_zero(iv: Any) -> bool:
    return as_interval(iv).span() == 0


def interval_sign(iv: Any) -> int:
    s = as_interval(iv).span()
    return (s > 0) - (s < 0)


def parse_interval(text: str, typmod: int = -1) -> Interval:
    from engine.datetime_parse import parse_interval as _p

    return _p(text, typmod)
