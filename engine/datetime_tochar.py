"""to_char(timestamp | timestamptz | date | interval, template): PostgreSQL's template
patterns (HH24, MI, SS, MS, US, FF1-6, YYYY, Y,YYY, IYYY, CC, Q, MM, WW, IW, DDD, IDDD,
DD, D, ID, J, W, MONTH/Month/month, MON, RM, DAY, DY, AM/PM, AD/BC, TZ, OF...), the FM
(fill mode) prefix, TH/th ordinal suffix, "quoted text" and backslash escapes.

Works on broken-down fields, so BC years and intervals (hours beyond 24, months and
years as given) format like PostgreSQL's.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.datetime_format import offset_text

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
RM = ("XII", "XI", "X", "IX", "VIII", "VII", "VI", "V", "IV", "III", "II", "I")


@dataclass
class Fields:
    year: int  # astronomical for timestamps (0 = 1 BC); as given for intervals
    month: int
    day: int
    hour: int
    minute: int
    second: int
    us: int
    interval: bool = False
    julian: int = 0        # Julian day number (timestamps)
    tz_abbrev: str = ""
    tz_offset: int | None = None


def _ordinal(n: int, upper: bool) -> str:
    k = abs(n) % 100
    suf = "th" if 10 < k < 14 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return suf.upper() if upper else suf


_KEYS = sorted([
    "A.D.", "a.d.", "AD", "ad", "B.C.", "b.c.", "BC", "bc", "A.M.", "a.m.", "AM", "am", "P.M.", "p.m.", "PM", "pm",
    "Y,YYY", "YYYY", "YYY", "YY", "Y", "IYYY", "IYY", "IY", "I", "CC", "Q", "MM", "WW", "IW", "IDDD", "DDD", "DD",
    "D", "ID", "J", "W", "MONTH", "Month", "month", "MON", "Mon", "mon", "RM", "rm", "DAY", "Day", "day", "DY", "Dy",
    "dy", "HH24", "HH12", "HH", "MI", "SSSS", "SS", "MS", "US", "FF1", "FF2", "FF3", "FF4", "FF5", "FF6", "ff1", "ff2",
    "ff3", "ff4", "ff5", "ff6", "TZ", "tz", "OF", "SSSSS", "TZH", "TZM",
    "y,yyy", "yyyy", "yyy", "yy", "y", "iyyy", "iyy", "iy", "i", "cc", "q", "mm", "ww", "iw", "iddd", "ddd", "dd",
    "d", "id", "j", "w", "hh24", "hh12", "hh", "mi", "ssss", "ss", "ms", "us", "of", "sssss",
], key=len, reverse=True)


def _iso(f: Fields) -> tuple[int, int, int]:
    """(ISO year, ISO week, ISO day of year) of a timestamp's date."""
    from engine import datetime_values as dv

    j = f.julian
    dow = j % 7  # 0 = Monday
    thursday = j - dow + 3
    iy = dv.j2date(thursday)[0]
    jan4 = dv.date2j(iy, 1, 4)
    week1 = jan4 - jan4 % 7
    return iy, (j - week1) // 7 + 1, j - week1 + 1


def _num(v: int, width: int, fm: bool) -> str:
    if fm:
        return str(v)
    if v < 0:
        return "-" + str(-v).zfill(width)
    return str(v).zfill(width)


def to_char(f: Fields, fmt: str) -> str:
    out: list[str] = []
    i, n = 0, len(fmt)
    while i < n:
        c = fmt[i]
        if c == '"':
            i += 1
            while i < n and fmt[i] != '"':
                if fmt[i] == "\\" and i + 1 < n:
                    i += 1
                out.append(fmt[i])
                i += 1
            i += 1
            continue
        if c == "\\" and i + 1 < n:
            out.append(fmt[i + 1])
            i += 2
            continue
        fm = False
        j = i
        while True:
            if fmt.startswith(("FM", "fm"), j):
                fm = True
                j += 2
            elif fmt.startswith(("TM", "tm"), j):
                j += 2
            else:
                break
        key = next((k for k in _KEYS if fmt.startswith(k, j)), None)
        if key is None:
            out.append(c)
            i += 1
            continue
        j += len(key)
        th = None
        if fmt.startswith("TH", j):
            th, j = "TH", j + 2
        elif fmt.startswith("th", j):
            th, j = "th", j + 2
        text, num = _field(key, f, fm)
        if th and num is not None:
            text += _ordinal(num, th == "TH")
        out.append(text)
        i = j
    return "".join(out)


def _field(key: str, f: Fields, fm: bool) -> tuple[str, int | None]:
    up = key.upper()
    interval = f.interval
    year = f.year if interval else (f.year if f.year > 0 else 1 - f.year)
    hour12 = f.hour % 12 or 12 if not interval else f.hour % 12
    if up in ("A.D.", "B.C.", "AD", "BC"):
        bc = f.year <= 0 and not interval
        word = ("B.C." if bc else "A.D.") if "." in key else ("BC" if bc else "AD")
        return (word if key[0].isupper() else word.lower()), None
    if up in ("A.M.", "P.M.", "AM", "PM"):
        pm = f.hour % 24 >= 12
        word = ("P.M." if pm else "A.M.") if "." in key else ("PM" if pm else "AM")
        return (word if key[0].isupper() else word.lower()), None
    if up == "HH24":
        return _num(f.hour, 2, fm), f.hour
    if up in ("HH12", "HH"):
        return _num(hour12, 2, fm), hour12
    if up == "MI":
        return _num(f.minute, 2, fm), f.minute
    if up in ("SSSS", "SSSSS"):
        v = (f.hour * 60 + f.minute) * 60 + f.second
        return str(v), v
    if up == "SS":
        return _num(f.second, 2, fm), f.second
    if up == "MS":
        return _num(f.us // 1000, 3, fm), f.us // 1000
    if up == "US":
        return _num(f.us, 6, fm), f.us
    if up.startswith("FF"):
        d = int(up[2])
        v = f.us // 10 ** (6 - d)
        return _num(v, d, fm), v
    if up == "Y,YYY":
        return f"{year // 1000},{year % 1000:03d}", year
    if up == "YYYY":
        return _num(year, 4, fm), year
    if up == "YYY":
        return _num(year % 1000, 3, fm), year % 1000
    if up == "YY":
        return _num(year % 100, 2, fm), year % 100
    if up == "Y":
        return str(year % 10), year % 10
    if up in ("IYYY", "IYY", "IY", "I"):
        iy = _iso(f)[0] if not interval else f.year
        iy = iy if iy > 0 or interval else 1 - iy
        width = len(up)
        v = iy % (10 ** width) if width < 4 else iy
        return _num(v, width, fm), v
    if up == "CC":
        if interval:
            cc = int(f.year / 100)
        elif f.year > 0:
            cc = (f.year - 1) // 100 + 1
        else:
            cc = int(f.year / 100) - 1
        return (_num(cc, 2, fm) if -99 <= cc <= 99 else str(cc)), cc
    if up == "Q":
        if interval and not f.month:
            return "", None
        q = (f.month - 1) // 3 + 1 if f.month else 0
        return str(q), q
    if up == "MM":
        return _num(f.month, 2, fm), f.month
    if up == "DD":
        return _num(f.day, 2, fm), f.day
    if up == "W":
        w = (f.day - 1) // 7 + 1
        return str(w), w
    if interval:
        if up in ("MONTH", "MON"):
            if not f.month:
                return "", None
        elif up == "RM":
            return _roman(f, key, fm), None
        elif up in ("DDD", "IDDD", "WW", "IW", "D", "ID", "J", "DAY", "DY", "TZ", "OF", "TZH", "TZM"):
            return "", None
    if up == "DDD":
        from engine import datetime_values as dv

        v = f.julian - dv.date2j(f.year, 1, 1) + 1
        return _num(v, 3, fm), v
    if up == "IDDD":
        v = _iso(f)[2]
        return _num(v, 3, fm), v
    if up == "WW":
        from engine import datetime_values as dv

        v = (f.julian - dv.date2j(f.year, 1, 1)) // 7 + 1
        return _num(v, 2, fm), v
    if up == "IW":
        v = _iso(f)[1]
        return _num(v, 2, fm), v
    if up == "D":
        v = (f.julian + 1) % 7 + 1
        return str(v), v
    if up == "ID":
        v = f.julian % 7 + 1
        return str(v), v
    if up == "J":
        return str(f.julian), f.julian
    if up in ("MONTH", "MON", "DAY", "DY"):
        if up in ("MONTH", "MON"):
            name = MONTHS[f.month - 1]
        else:
            name = DAYS[(f.julian + 1) % 7]
        if up in ("MON", "DY"):
            name = name[:3]
        if key == up:
            name = name.upper()
        elif key == key.lower():
            name = name.lower()
        if up in ("MONTH", "DAY") and not fm:
            name = name.ljust(9)
        return name, None
    if up == "RM":
        return _roman(f, key, fm), None
    if up == "TZ":
        t = f.tz_abbrev if f.tz_offset is not None else ""
        return (t if key == "TZ" else t.lower()), None
    if up == "OF":
        return (offset_text(f.tz_offset) if f.tz_offset is not None else ""), None
    if up == "TZH":
        if f.tz_offset is None:
            return "", None
        h = abs(f.tz_offset) // 3600
        return ("-" if f.tz_offset < 0 else "+") + f"{h:02d}", None
    if up == "TZM":
        if f.tz_offset is None:
            return "", None
        return f"{abs(f.tz_offset) // 60 % 60:02d}", None
    return key, None


def _roman(f: Fields, key: str, fm: bool) -> str:
    mon = f.month
    if f.interval:
        if not mon and not f.year:
            return ""
        if mon == 0:
            pos = 0 if f.year >= 0 else 11
        elif mon < 0:
            pos = -(mon + 1)
        else:
            pos = 12 - mon
    else:
        pos = 12 - mon
    s = RM[pos]
    if key == "rm":
        s = s.lower()
    return s if fm else s.ljust(4)
