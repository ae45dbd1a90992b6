"""Date and timestamp values over PostgreSQL's whole range, and their arithmetic.

Values in the engine are Python ``date`` / ``datetime`` (naive = timestamp, UTC-aware =
timestamptz) whenever the year is 1..9999.  Values Python cannot hold -- BC years, years
past 9999, and +/-infinity -- are ``BigDate`` (days since 2000-01-01) and ``BigTimestamp``
(microseconds since 2000-01-01, UTC for timestamptz).  Both kinds compare with each other.

Years are astronomical inside this module (1 BC is year 0); the calendar is the
proleptic Gregorian one over the whole range (Julian day numbers).
"""

from __future__ import annotations

import datetime as _dt
from functools import total_ordering
from typing import Any

from engine import errors
from engine.intervals import USECS_PER_DAY, Interval, as_interval

UTC = _dt.timezone.utc
EPOCH_J = 2451545  # Julian day of 2000-01-01
UNIX_EPOCH_J = 2440588
_EPOCH = _dt.datetime(2000, 1, 1)
_EPOCH_TZ = _dt.datetime(2000, 1, 1, tzinfo=UTC)
_EPOCH_ORD = _dt.date(2000, 1, 1).toordinal()

DATE_NOBEGIN, DATE_NOEND = -(2**31), 2**31 - 1
DT_NOBEGIN, DT_NOEND = -(2**63), 2**63 - 1
# valid ranges: 4714-11-24 BC .. 5874897-12-31 (date), 294276-12-31 23:59:59.999999 (timestamp)
MIN_DAYS = 0 - EPOCH_J  # Julian day 0
MAX_DATE_DAYS = 2147483494 - EPOCH_J  # 5874898-01-01 is the first day out
MIN_US = MIN_DAYS * USECS_PER_DAY
END_US = 9223371331200000000  # 294277-01-01 00:00:00
_PY_MIN_DAYS = _dt.date(1, 1, 1).toordinal() - _EPOCH_ORD
_PY_MAX_DAYS = _dt.date(9999, 12, 31).toordinal() - _EPOCH_ORD


def date2j(y: int, m: int, d: int) -> int:
    """Julian day number of a proleptic Gregorian date (astronomical year)."""
    if m > 2:
        m += 1
        y += 4800
    else:
        m += 13
        y += 4799
    century = y // 100
    j = y * 365 - 32167 + y // 4 - century + century // 4 + 7834 * m // 256 + d
    return j


def j2date(jd: int) -> tuple[int, int, int]:
    julian = jd + 32044
    quad = julian // 146097
    extra = (julian - quad * 146097) * 4 + 3
    julian += 60 + quad * 3 + extra // 146097
    quad = julian // 1461
    julian -= quad * 1461
    y = julian * 4 // 1461
    julian = ((julian + 305) % 365 if y != 0 else (julian + 306) % 366) + 123
    y += quad * 4
    year = y - 4800
    quad = julian * 2141 // 65536
    day = julian - 7834 * quad // 256
    month = (quad + 10) % 12 + 1
    return year, month, day


def days_in_month(y: int, m: int) -> int:
    if m == 2:
        return 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28
    return 30 if m in (4, 6, 9, 11) else 31


@total_ordering
class BigDate:
    """A date Python's ``date`` cannot hold: BC, after 9999, or +/-infinity."""

    __slots__ = ("days",)

    def __init__(self, days: int) -> None:
        self.days = days

    def _key(self, other: Any) -> int | None:
        if isinstance(other, BigDate):
            return other.days
        if isinstance(other, _dt.date) and not isinstance(other, _dt.datetime):
            return other.toordinal() - _EPOCH_ORD
        return None

    def __eq__(self, other: Any) -> bool:
        k = self._key(other)
        return NotImplemented if k is None else self.days == k

    def __lt__(self, other: Any) -> bool:
        k = self._key(other)
        return NotImplemented if k is None else self.days < k

    def __hash__(self) -> int:
        return hash(("date", self.days))

    def __repr__(self) -> str:
        return f"BigDate({self.days})"

    def __str__(self) -> str:
        from engine.datetime_format import date_text

        return date_text(self)


@total_ordering
class BigTimestamp:
    """A timestamp Python's ``datetime`` cannot hold: BC, after 9999, or +/-infinity."""

    __slots__ = ("us", "tz")

    def __init__(self, us: int, tz: bool) -> None:
        self.us, self.tz = us, tz

    def _key(self, other: Any) -> int | None:
        if isinstance(other, BigTimestamp):
            return other.us
        if isinstance(other, _dt.datetime):
            return ts_us(other)
        return None

    def __eq__(self, other: Any) -> bool:
        k = self._key(other)
        return NotImplemented if k is None else self.us == k

    def __lt__(self, other: Any) -> bool:
        k = self._key(other)
        return NotImplemented if k is None else self.us < k

    def __hash__(self) -> int:
        return hash(("ts", self.us))

    def __repr__(self) -> str:
        return f"BigTimestamp({self.us}, tz={self.tz})"

    def __add__(self, other: Any) -> Any:
        if isinstance(other, (Interval, _dt.timedelta)):
            return add_interval(self, as_interval(other))
        return NotImplemented

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        if isinstance(other, (Interval, _dt.timedelta)):
            return add_interval(self, -as_interval(other))
        if is_timestamp(other):
            return ts_diff(self, other)
        return NotImplemented

    def __rsub__(self, other: Any) -> Any:
        if is_timestamp(other):
            return ts_diff(other, self)
        return NotImplemented


def is_date(v: Any) -> bool:
    return type(v) is _dt.date or type(v) is BigDate


def is_timestamp(v: Any) -> bool:
    return type(v) is _dt.datetime or type(v) is BigTimestamp


def is_datetime_value(v: Any) -> bool:
    return is_date(v) or is_timestamp(v)


def is_infinite(v: Any) -> bool:
    t = type(v)
    if t is BigDate:
        return v.days in (DATE_NOBEGIN, DATE_NOEND)
    if t is BigTimestamp:
        return v.us in (DT_NOBEGIN, DT_NOEND)
    return False


def infinity_sign(v: Any) -> int:
    """+1 for infinity, -1 for -infinity, 0 for a finite value."""
    if not is_infinite(v):
        return 0
    x = v.days if type(v) is BigDate else v.us
    return 1 if x > 0 else -1


def is_aware(v: Any) -> bool:
    if type(v) is BigTimestamp:
        return v.tz
    return isinstance(v, _dt.datetime) and v.tzinfo is not None


# -- conversions ---------------------------------------------------------------------------------
def date_days(v: Any) -> int:
    if type(v) is BigDate:
        return v.days
    return v.toordinal() - _EPOCH_ORD


def make_date(days: int) -> Any:
    if _PY_MIN_DAYS <= days <= _PY_MAX_DAYS:
        return _dt.date.fromordinal(days + _EPOCH_ORD)
    if days not in (DATE_NOBEGIN, DATE_NOEND) and not (MIN_DAYS <= days < MAX_DATE_DAYS):
        raise errors.SqlError("date out of range", sqlstate="22008")
    return BigDate(days)


def date_from_ymd(y: int, m: int, d: int) -> Any:
    return make_date(date2j(y, m, d) - EPOCH_J)


def ts_us(v: Any) -> int:
    t = type(v)
    if t is BigTimestamp:
        return v.us
    if t is _dt.datetime:
        if v.tzinfo is None:
            d = v - _EPOCH
        else:
            d = v - _EPOCH_TZ
        return (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds
    if t is _dt.date or t is BigDate:
        return date_to_ts_us(v)
    raise TypeError(f"not a timestamp: {v!r}")


def date_to_ts_us(v: Any) -> int:
    days = date_days(v)
    if days == DATE_NOBEGIN:
        return DT_NOBEGIN
    if days == DATE_NOEND:
        return DT_NOEND
    return days * USECS_PER_DAY


_PY_MIN_US = _PY_MIN_DAYS * USECS_PER_DAY
_PY_END_US = (_PY_MAX_DAYS + 1) * USECS_PER_DAY


def make_ts(us: int, tz: bool, check: bool = True) -> Any:
    """A timestamp value from microseconds since 2000-01-01 (UTC for tz)."""
    # keep a margin for time zone shifts so every Python value can be shown locally
    if _PY_MIN_US + USECS_PER_DAY <= us < _PY_END_US - USECS_PER_DAY:
        return (_EPOCH_TZ if tz else _EPOCH) + _dt.timedelta(microseconds=us)
    if us in (DT_NOBEGIN, DT_NOEND):
        return BigTimestamp(us, tz)
    if check and not (MIN_US <= us < END_US):
        raise errors.SqlError("timestamp out of range", sqlstate="22008")
    return BigTimestamp(us, tz)


def infinite_ts(sign: int, tz: bool) -> BigTimestamp:
    return BigTimestamp(DT_NOEND if sign > 0 else DT_NOBEGIN, tz)


def infinite_date(sign: int) -> BigDate:
    return BigDate(DATE_NOEND if sign > 0 else DATE_NOBEGIN)


def split_us(us: int) -> tuple[int, int, int, int, int, int, int]:
    """(year, month, day, hour, minute, second, microsecond) of microseconds since 2000."""
    days, rest = divmod(us, USECS_PER_DAY)
    y, m, d = j2date(days + EPOCH_J)
    secs, micro = divmod(rest, 1_000_000)
    return y, m, d, secs // 3600, secs // 60 % 60, secs % 60, micro


def join_us(y: int, m: int, d: int, hh: int = 0, mi: int = 0, ss: int = 0, us: int = 0) -> int:
    return (date2j(y, m, d) - EPOCH_J) * USECS_PER_DAY + ((hh * 60 + mi) * 60 + ss) * 1_000_000 + us


def to_timestamp(v: Any, tz: bool, zone: _dt.tzinfo | None = None) -> Any:
    """date -> timestamp(tz) (midnight local), timestamp <-> timestamptz in ``zone``."""
    if is_date(v):
        if is_infinite(v):
            return infinite_ts(infinity_sign(v), tz)
        us = date_to_ts_us(v)
        return make_ts(local_to_utc(us, zone) if tz else us, tz)
    if is_aware(v) == tz:
        return v
    if is_infinite(v):
        return infinite_ts(infinity_sign(v), tz)
    if tz:  # timestamp -> timestamptz: the value is local time in the session zone
        return make_ts(local_to_utc(ts_us(v), zone), True)
    return make_ts(utc_to_local(ts_us(v), zone), False)


def to_date(v: Any, zone: _dt.tzinfo | None = None) -> Any:
    if is_date(v):
        return v
    if is_infinite(v):
        return infinite_date(infinity_sign(v))
    us = ts_us(v)
    if is_aware(v):
        us = utc_to_local(us, zone)
    return make_date(us // USECS_PER_DAY)


# -- time zones -------------------------------------------------------------------------------------
_CLAMP_LO = _dt.datetime(1, 1, 2)
_CLAMP_HI = _dt.datetime(9999, 12, 30)


def offset_at_utc(us: int, zone: _dt.tzinfo | None) -> int:
    """Seconds east of UTC in ``zone`` at the instant ``us`` (UTC micros since 2000)."""
    if zone is None or zone is UTC:
        return 0
    days = us // USECS_PER_DAY
    if days < _PY_MIN_DAYS + 2:
        naive = _CLAMP_LO
    elif days > _PY_MAX_DAYS - 2:
        naive = _CLAMP_HI
    else:
        naive = _EPOCH + _dt.timedelta(microseconds=us)
    off = naive.replace(tzinfo=UTC).astimezone(zone).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


def utc_to_local(us: int, zone: _dt.tzinfo | None) -> int:
    return us + offset_at_utc(us, zone) * 1_000_000


def local_offset(local_us: int, zone: _dt.tzinfo | None) -> int:
    """Seconds east of UTC that apply to local time ``local_us`` in ``zone``: in a gap
    (clocks sprang forward) the offset from before it, when ambiguous (clocks fell back)
    the one after it."""
    if zone is None or zone is UTC:
        return 0
    days = local_us // USECS_PER_DAY
    if days < _PY_MIN_DAYS + 2:
        naive = _CLAMP_LO
    elif days > _PY_MAX_DAYS - 2:
        naive = _CLAMP_HI
    else:
        naive = _EPOCH + _dt.timedelta(microseconds=local_us)
    o0 = naive.replace(tzinfo=zone, fold=0).utcoffset()
    o1 = naive.replace(tzinfo=zone, fold=1).utcoffset()
    if o0 is None or o1 is None:
        return 0
    if o0 == o1:
        return int(o0.total_seconds())
    back = (naive - o0).replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
    if back == naive:  # ambiguous: both readings exist, take the later one
        return int(o1.total_seconds())
    return int(o0.total_seconds())


def local_to_utc(local_us: int, zone: _dt.tzinfo | None) -> int:
    return local_us - local_offset(local_us, zone) * 1_000_000


def zone_abbrev(us: int, zone: _dt.tzinfo | None) -> str | None:
    if zone is None or zone is UTC:
        return "UTC"
    days = us // USECS_PER_DAY
    if days < _PY_MIN_DAYS + 2 or days > _PY_MAX_DAYS - 2:
        naive = _CLAMP_LO if days < 0 else _CLAMP_HI
    else:
        naive = _EPOCH + _dt.timedelta(microseconds=us)
    return naive.replace(tzinfo=UTC).astimezone(zone).tzname()


# -- arithmetic -------------------------------------------------------------------------------------
def _range_error(tz: bool) -> errors.SqlError:
    return errors.SqlError("timestamp out of range", sqlstate="22008")


def add_months_us(us: int, months: int) -> int:
    y, m, d, hh, mi, ss, micro = split_us(us)
    total = y * 12 + (m - 1) + months
    y2, m2 = divmod(total, 12)
    m2 += 1
    d = min(d, days_in_month(y2, m2))
    return join_us(y2, m2, d, hh, mi, ss, micro)


def add_interval(v: Any, iv: Interval, zone: _dt.tzinfo | None = None) -> Any:
    """timestamp/timestamptz/date + interval.  Months, then days, then time; for
    timestamptz months and days move local time in ``zone`` (session zone if None)."""
    iv = as_interval(iv)
    if is_date(v):
        v = to_timestamp(v, False)
    tz = is_aware(v)
    if is_infinite(v):
        return v
    us = ts_us(v)
    if tz and (iv.months or iv.days):
        if zone is None:
            from engine.datetime_style import current

            zone = current().zone
        local = utc_to_local(us, zone)
        if iv.months:
            local = add_months_us(local, iv.months)
        local += iv.days * USECS_PER_DAY
        us = local_to_utc(local, zone)
    else:
        if iv.months:
            us = add_months_us(us, iv.months)
        us += iv.days * USECS_PER_DAY
    us += iv.micros
    if not (MIN_US <= us < END_US):
        raise _range_error(tz)
    return make_ts(us, tz)


def ts_diff(a: Any, b: Any) -> Interval:
    """timestamp - timestamp: days and time (24-hour days), no months."""
    if is_infinite(a) or is_infinite(b):
        raise errors.SqlError("cannot subtract infinite timestamps", sqlstate="22008")
    from engine.intervals import justify_hours

    return justify_hours(Interval(0, 0, ts_us(a) - ts_us(b)))


def date_add_days(v: Any, n: int) -> Any:
    if is_infinite(v):
        return v
    days = date_days(v) + n
    if not (MIN_DAYS <= days < MAX_DATE_DAYS):
        raise errors.SqlError("date out of range", sqlstate="22008")
    return make_date(days)


def date_diff(a: Any, b: Any) -> int:
    if is_infinite(a) or is_infinite(b):
        raise errors.SqlError("cannot subtract infinite dates", sqlstate="22008")
    return date_days(a) - date_days(b)


def age(a: Any, b: Any, zone: _dt.tzinfo | None = None) -> Interval:
    """age(a, b): years and months of calendar difference, then days and time."""
    if is_infinite(a) or is_infinite(b):
        raise errors.SqlError("cannot subtract infinite timestamps", sqlstate="22008")
    ua, ub = ts_us(a), ts_us(b)
    if is_aware(a):
        ua, ub = utc_to_local(ua, zone), utc_to_local(ub, zone)
    f1, f2 = split_us(ua), split_us(ub)
    y1, m1, d1, h1, mi1, s1, us1 = f1
    y2, m2, d2, h2, mi2, s2, us2 = f2
    fus = us1 - us2
    sec = s1 - s2
    mi = mi1 - mi2
    hh = h1 - h2
    dd = d1 - d2
    mm = m1 - m2
    yy = y1 - y2
    if ua < ub:  # flip signs so the borrowing below works on a positive difference
        fus, sec, mi, hh, dd, mm, yy = -fus, -sec, -mi, -hh, -dd, -mm, -yy
    while fus < 0:
        fus += 1_000_000
        sec -= 1
    while sec < 0:
        sec += 60
        mi -= 1
    while mi < 0:
        mi += 60
        hh -= 1
    while hh < 0:
        hh += 24
        dd -= 1
    while dd < 0:
        if ua < ub:
            dd += days_in_month(y1, m1)
        else:
            pm = m2
            dd += days_in_month(y2, pm)
        mm -= 1
    while mm < 0:
        mm += 12
        yy -= 1
    if ua < ub:
        fus, sec, mi, hh, dd, mm, yy = -fus, -sec, -mi, -hh, -dd, -mm, -yy
    return Interval(yy * 12 + mm, dd, ((hh * 60 + mi) * 60 + sec) * 1_000_000 + fus)
