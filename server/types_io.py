"""Python values <-> PostgreSQL text and binary wire formats, keyed by type OID.

Output (server -> client)
-------------------------
``column_encoder(type_oid, fmt)`` returns a function ``value -> bytes`` (never called
with None; the caller writes NULL as length -1).

* text (fmt 0) dispatches on the Python type of the value, with OID hints only where
  the text differs: timestamptz gets a ``+00`` offset, json/jsonb dumps dict/list,
  float4 prints the shortest float32 digits.  Formats follow PostgreSQL 15 defaults
  (DateStyle ISO, IntervalStyle postgres, extra_float_digits=1)::

      bool t/f   bytea \\x0a0b   float Infinity/-Infinity/NaN, 1e+15, 1.5, 100
      timestamp 2024-01-02 03:04:05.5   timestamptz 2024-01-02 03:04:05+00
      interval 1 day 02:03:04 / -1 days -01:00:00   array {1,2,NULL} / {"a b","x\\"y"}

* binary (fmt 1) for bool, int2/4/8, oid, float4/8, text/varchar/bpchar/name/char,
  bytea, date, time, timestamp, timestamptz, interval, uuid, numeric, json, jsonb and
  arrays of those::

      date         int32 days since 2000-01-01
      timestamp[tz] int64 microseconds since 2000-01-01 00:00 (UTC for tz)
      interval     int64 us, int32 days, int32 months
      numeric      int16 ndigits, int16 weight, uint16 sign, int16 dscale, int16 digit[] (base 10000)
      jsonb        byte 1 (version) + json text
      array        int32 ndim, int32 has_null, uint32 elem_oid, (int32 dim, int32 lbound=1)*,
                   (int32 len | -1, bytes)*

Input (client -> server)
------------------------
``decode_param(type_oid, fmt, data)`` turns a Bind parameter into a Python value; OID 0
(unspecified) and unknown OIDs give ``str``.  Bad input raises SqlError 22P02 (text) or
22P03 (binary).
"""

from __future__ import annotations

import json
import math
import re
import struct
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal, InvalidOperation
from typing import Any, Callable

from engine import datetime_format as _dtf
from engine import datetime_parse as _dtp
from engine import datetime_values as _dtv
from engine.errors import SqlError
from engine.intervals import Interval

# ---- type OIDs -------------------------------------------------------------------
BOOL, BYTEA, CHAR, NAME, INT8, INT2, INT4, TEXT, OID = 16, 17, 18, 19, 20, 21, 23, 25, 26
JSON, FLOAT4, FLOAT8, UNKNOWN, BPCHAR, VARCHAR = 114, 700, 701, 705, 1042, 1043
DATE, TIME, TIMESTAMP, TIMESTAMPTZ, INTERVAL, TIMETZ = 1082, 1083, 1114, 1184, 1186, 1266
NUMERIC, UUID, JSONB = 1700, 2950, 3802

ARRAY_OF: dict[int, int] = {  # array OID -> element OID
    1000: BOOL, 1001: BYTEA, 1002: CHAR, 1003: NAME, 1016: INT8, 1005: INT2, 1007: INT4,
    1009: TEXT, 1028: OID, 199: JSON, 1021: FLOAT4, 1022: FLOAT8, 1014: BPCHAR,
    1015: VARCHAR, 1182: DATE, 1183: TIME, 1115: TIMESTAMP, 1185: TIMESTAMPTZ,
    1187: INTERVAL, 1231: NUMERIC, 2951: UUID, 3807: JSONB,
}
ARRAY_FOR: dict[int, int] = {e: a for a, e in ARRAY_OF.items()}

_DT_VALUE_TYPES = (datetime, date, time, timedelta, Interval, _dtv.BigDate, _dtv.BigTimestamp)
_PG_EPOCH = datetime(2000, 1, 1)
_PG_EPOCH_TZ = datetime(2000, 1, 1, tzinfo=timezone.utc)
_PG_EPOCH_DATE_ORD = date(2000, 1, 1).toordinal()

_b = struct.Struct("?")
_h = struct.Struct(">h")
_i = struct.Struct(">i")
_I = struct.Struct(">I")
_q = struct.Struct(">q")
_f = struct.Struct(">f")
_d = struct.Struct(">d")
_qii = struct.Struct(">qii")
_iiI = struct.Struct(">iiI")
_ii = struct.Struct(">ii")
_hhHh = struct.Struct(">hhHh")


# ---- text output -----------------------------------------------------------------


def _pg_float_digits(digits: str, exp10: int, neg: bool, sci_at: int) -> str:
    """Format shortest ``digits`` (no dot) with value 0.d1d2.. * 10**(exp10+1) PG's way."""
    sign = "-" if neg else ""
    if -4 <= exp10 < sci_at:
        if exp10 >= 0:
            if len(digits) <= exp10 + 1:
                return sign + digits + "0" * (exp10 + 1 - len(digits))
            return sign + digits[: exp10 + 1] + "." + digits[exp10 + 1 :]
        return sign + "0." + "0" * (-exp10 - 1) + digits
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mant}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"


def _split_repr(s: str) -> tuple[str, int, bool]:
    """'-1.25e-07' -> ('125', -7, True): shortest digits and decimal exponent."""
    neg = s.startswith("-")
    if neg:
        s = s[1:]
    exp = 0
    if "e" in s:
        s, e = s.split("e")
        exp = int(e)
    if "." in s:
        ip, fp = s.split(".")
    else:
        ip, fp = s, ""
    digits = (ip + fp).lstrip("0")
    lead = len(ip + fp) - len(digits)
    digits = digits.rstrip("0") or "0"
    if digits == "0":
        return "0", 0, neg
    exp10 = exp + len(ip) - 1 - lead
    return digits, exp10, neg


def float8_text(v: float) -> str:
    if v != v:
        return "NaN"
    if v in (math.inf, -math.inf):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0:
        return "-0" if math.copysign(1, v) < 0 else "0"
    digits, exp10, neg = _split_repr(repr(v))
    return _pg_float_digits(digits, exp10, neg, 15)


def float4_text(v: float) -> str:
    if v != v or v in (math.inf, -math.inf) or v == 0:
        return float8_text(v)
    target = _f.pack(v)
    for p in range(1, 10):
        s = f"{v:.{p - 1}e}"
        if _f.pack(float(s)) == target:
            break
    digits, exp10, neg = _split_repr(s)
    return _pg_float_digits(digits, exp10, neg, 6)


def numeric_text(v: Decimal) -> str:
    if v.is_nan():
        return "NaN"
    if v.is_infinite():
        return "Infinity" if v > 0 else "-Infinity"
    return format(v, "f")


def _time_text(t: time) -> str:
    return _dtf.time_text(t)


def timestamp_text(v: Any) -> str:
    """timestamp (DateStyle of the session, ISO by default)."""
    return _dtf.timestamp_text(v)


def timestamptz_text(v: Any) -> str:
    """timestamptz in the session's TimeZone and DateStyle."""
    return _dtf.timestamptz_text(v)


def interval_text(v: Any) -> str:
    return _dtf.interval_text(v)


_ARRAY_PLAIN = re.compile(r'^[^{}",\\\s]+$')


def _array_elem_text(v: Any, elem_oid: int) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, (list, tuple)) and elem_oid not in (JSON, JSONB):
        return array_text(v, elem_oid)
    s = value_text(v, elem_oid)
    if s and _ARRAY_PLAIN.match(s) and s.upper() != "NULL":
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def array_text(v: list | tuple, elem_oid: int = 0) -> str:
    return "{" + ",".join(_array_elem_text(x, elem_oid) for x in v) + "}"


def value_text(v: Any, type_oid: int = 0) -> str:
    """Text form of one non-NULL value."""
    t = type(v)
    if t is str:
        return v
    if t is bool:
        return "t" if v else "f"
    if t is int:
        return str(v)
    if t is float:
        return float4_text(v) if type_oid == FLOAT4 else float8_text(v)
    if t is Decimal:
        return numeric_text(v)
    if t in _DT_VALUE_TYPES:
        if type_oid == TIMESTAMPTZ:
            return timestamptz_text(v)
        if type_oid == TIMESTAMP:
            return timestamp_text(v)
        return _dtf.value_text(v) or str(v)
    if t is uuid.UUID:
        return str(v)
    if t in (bytes, bytearray, memoryview):
        return "\\x" + bytes(v).hex()
    if t in (dict, list, tuple):
        if type_oid in (JSON, JSONB) or t is dict:
            return json.dumps(v, separators=(", ", ": "))
        return array_text(v, ARRAY_OF.get(type_oid, 0))
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, int):
        return str(int(v))
    return str(v)


# ---- binary output -----------------------------------------------------------------


def numeric_binary(v: Decimal) -> bytes:
    if v.is_nan():
        return _hhHh.pack(0, 0, 0xC000, 0)
    if v.is_infinite():
        return _hhHh.pack(0, 0, 0xD000 if v > 0 else 0xF000, 0)
    sign, digits, exp = v.as_tuple()
    dscale = max(0, -exp)
    # Align the decimal digits to base-10000 groups around the decimal point.
    ds = "".join(map(str, digits))
    if exp > 0:
        ds += "0" * exp
        exp = 0
    int_len = len(ds) + exp  # digits before the point
    frac = ds[int_len:] if int_len >= 0 else "0" * (-int_len) + ds
    ip = ds[: max(int_len, 0)]
    ip = ip.zfill((len(ip) + 3) // 4 * 4)
    frac = frac.ljust((len(frac) + 3) // 4 * 4, "0")
    groups = [int(ip[i : i + 4]) for i in range(0, len(ip), 4)] + [
        int(frac[i : i + 4]) for i in range(0, len(frac), 4)
    ]
    weight = len(ip) // 4 - 1
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    return _hhHh.pack(len(groups), weight, 0x4000 if sign else 0, dscale) + b"".join(
        _h.pack(g) for g in groups
    )


def _ts_us(v: Any, tz: bool) -> int:
    return _dtv.ts_us(v)


def _time_us(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


def _interval_bin(v: Any) -> bytes:
    if type(v) is timedelta:
        return _qii.pack(v.seconds * 1_000_000 + v.microseconds, v.days, 0)
    return _qii.pack(v.micros, v.days, v.months)


def _text_bin(v: Any) -> bytes:
    return v.encode() if type(v) is str else value_text(v).encode()


def _json_bin(v: Any) -> bytes:
    return (v if type(v) is str else json.dumps(v, separators=(", ", ": "))).encode()


def _bytes_bin(v: Any) -> bytes:
    return bytes(v) if not isinstance(v, str) else v.encode()


_BINARY_OUT: dict[int, Callable[[Any], bytes]] = {
    BOOL: lambda v: b"\x01" if v else b"\x00",
    2278: lambda v: b"",  # void (pg_sleep): no bytes, as void_send
    INT2: lambda v: _h.pack(int(v)),
    INT4: lambda v: _i.pack(int(v)),
    INT8: lambda v: _q.pack(int(v)),
    OID: lambda v: _I.pack(int(v)),
    FLOAT4: lambda v: _f.pack(float(v)),
    FLOAT8: lambda v: _d.pack(float(v)),
    TEXT: _text_bin, VARCHAR: _text_bin, BPCHAR: _text_bin, NAME: _text_bin, CHAR: _text_bin,
    UNKNOWN: _text_bin,
    BYTEA: _bytes_bin,
    DATE: lambda v: _i.pack(_dtv.date_days(v)),
    TIME: lambda v: _q.pack(_time_us(v)),
    TIMESTAMP: lambda v: _q.pack(_ts_us(v, False)),
    TIMESTAMPTZ: lambda v: _q.pack(_ts_us(v, True)),
    INTERVAL: _interval_bin,
    UUID: lambda v: v.bytes if isinstance(v, uuid.UUID) else uuid.UUID(str(v)).bytes,
    NUMERIC: lambda v: numeric_binary(v if isinstance(v, Decimal) else Decimal(str(v))),
    JSON: _json_bin,
    JSONB: lambda v: b"\x01" + _json_bin(v),
}


def _array_dims(v: list) -> list[int]:
    dims = []
    cur: Any = v
    while isinstance(cur, (list, tuple)):
        dims.append(len(cur))
        if not cur:
            break
        cur = cur[0]
    return dims


def _array_bin_encoder(elem_oid: int) -> Callable[[Any], bytes]:
    enc = _BINARY_OUT[elem_oid]

    def encode(v: Any) -> bytes:
        dims = _array_dims(v) if elem_oid not in (JSON, JSONB) else [len(v)]
        if dims == [0]:
            return _iiI.pack(0, 0, elem_oid)
        flat: list[Any] = list(v)
        for _ in range(len(dims) - 1):
            flat = [x for sub in flat for x in sub]
        has_null = any(x is None for x in flat)
        parts = [_iiI.pack(len(dims), 1 if has_null else 0, elem_oid)]
        parts += [_ii.pack(d, 1) for d in dims]
        for x in flat:
            if x is None:
                parts.append(b"\xff\xff\xff\xff")
            else:
                b = enc(x)
                parts.append(_i.pack(len(b)))
                parts.append(b)
        return b"".join(parts)

    return encode


for _arr, _elem in ARRAY_OF.items():
    _BINARY_OUT[_arr] = _array_bin_encoder(_elem)


def _vector_bin_encoder(elem_oid: int) -> Callable[[Any], bytes]:
    """int2vector / oidvector: the array format with lower bound 0."""
    enc = _array_bin_encoder(elem_oid)

    def encode(v: Any) -> bytes:
        b = enc(v)
        return b if len(b) <= 12 else b[:16] + _i.pack(0) + b[20:]

    return encode


def _record_field(x: Any) -> tuple[int, bytes]:
    """(type oid, binary form) of one field of an anonymous record, by its Python type."""
    t = type(x)
    if t is bool:
        return BOOL, _BINARY_OUT[BOOL](x)
    if t is int or isinstance(x, int):
        return (INT4, _i.pack(int(x))) if -2**31 <= x < 2**31 else (INT8, _q.pack(int(x)))
    if t is float:
        return FLOAT8, _d.pack(x)
    if t is Decimal:
        return NUMERIC, _BINARY_OUT[NUMERIC](x)
    return TEXT, value_text(x).encode()


def _record_binary(v: Any) -> bytes:
    """record (2249) binary: field count, then per field its type oid, length (-1: NULL) and bytes."""
    parts = [_i.pack(len(v))]
    for x in v:
        if x is None:
            parts.append(_I.pack(TEXT) + _i.pack(-1))
            continue
        oid, b = _record_field(x)
        parts.append(_I.pack(oid) + _i.pack(len(b)) + b)
    return b"".join(parts)


_BINARY_OUT[2249] = _record_binary
for _reg in (24, 2202, 2205, 2206, 4089):  # reg* types: the oid, like oid's binary form
    _BINARY_OUT[_reg] = _BINARY_OUT[OID]
_BINARY_OUT[22] = _vector_bin_encoder(INT2)
_BINARY_OUT[30] = _vector_bin_encoder(OID)


def has_binary(type_oid: int) -> bool:
    return type_oid in _BINARY_OUT


def _encode_text_generic(v: Any) -> bytes:
    t = type(v)
    if t is str:
        return v.encode()
    if t is int:
        return str(v).encode()
    return value_text(v).encode()


def column_encoder(type_oid: int, fmt: int = 0) -> Callable[[Any], bytes]:
    """Encoder for one result column; raises SqlError 0A000 for an unsupported binary OID."""
    if fmt == 1:
        enc = _BINARY_OUT.get(type_oid)
        if enc is None:
            raise SqlError(f"no binary output function available for type {type_oid}", sqlstate="42883")
        return enc
    if fmt != 0:
        raise SqlError(f"unsupported format code: {fmt}", sqlstate="08P01")
    if type_oid in (FLOAT4, TIMESTAMPTZ, TIMESTAMP, JSON, JSONB) or type_oid in ARRAY_OF:
        return lambda v: value_text(v, type_oid).encode()
    return _encode_text_generic


# ---- parameter input ------------------------------------------------------------------

_TRUE = {"t", "true", "y", "yes", "on", "1"}
_FALSE = {"f", "false", "n", "no", "off", "0"}


def _parse_bool(s: str) -> bool:
    x = s.strip().lower()
    if x in _TRUE:
        return True
    if x in _FALSE:
        return False
    raise ValueError(s)


def _parse_float(s: str) -> float:
    x = s.strip().lower()
    if x in ("infinity", "+infinity", "inf", "+inf"):
        return math.inf
    if x in ("-infinity", "-inf"):
        return -math.inf
    if x == "nan":
        return math.nan
    return float(x)


def _parse_numeric(s: str) -> Decimal:
    x = s.strip()
    low = x.lower()
    if low in ("infinity", "+infinity"):
        return Decimal("Infinity")
    if low == "-infinity":
        return Decimal("-Infinity")
    if low == "nan":
        return Decimal("NaN")
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", x):
        raise ValueError(s)
    return Decimal(x)


def _parse_bytea(s: str) -> bytes:
    if s.startswith("\\x"):
        return bytes.fromhex(s[2:])
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            if s[i + 1 : i + 2] == "\\":
                out.append(92)
                i += 2
            else:
                out.append(int(s[i + 1 : i + 4], 8))
                i += 4
        else:
            out += c.encode()
            i += 1
    return bytes(out)


def _parse_timestamp(s: str, tz: bool) -> Any:
    return _dtp.parse_timestamp(s, tz)


def _parse_time(s: str) -> time:
    return _dtp.parse_time(s)


def _parse_interval(s: str) -> Interval:
    return _dtp.parse_interval(s)


def parse_array(s: str, elem: Callable[[str], Any]) -> list:
    """Parse a PostgreSQL array literal like ``{1,2,NULL}`` or ``{{"a b",c},{d,e}}``."""
    pos = 0
    n = len(s)

    def skip_ws() -> None:
        nonlocal pos
        while pos < n and s[pos].isspace():
            pos += 1

    def parse_level() -> list:
        nonlocal pos
        skip_ws()
        if pos >= n or s[pos] != "{":
            raise ValueError("array literal must start with {")
        pos += 1
        out: list = []
        skip_ws()
        if pos < n and s[pos] == "}":
            pos += 1
            return out
        while True:
            skip_ws()
            if pos < n and s[pos] == "{":
                out.append(parse_level())
            elif pos < n and s[pos] == '"':
                pos += 1
                buf = []
                while pos < n and s[pos] != '"':
                    if s[pos] == "\\":
                        pos += 1
                    buf.append(s[pos])
                    pos += 1
                pos += 1
                out.append(elem("".join(buf)))
            else:
                start = pos
                while pos < n and s[pos] not in ",}":
                    pos += 1
                tok = s[start:pos].strip()
                out.append(None if tok.upper() == "NULL" else elem(tok))
            skip_ws()
            if pos >= n:
                raise ValueError("unterminated array literal")
            if s[pos] == ",":
                pos += 1
                continue
            if s[pos] == "}":
                pos += 1
                return out
            raise ValueError("malformed array literal")

    result = parse_level()
    skip_ws()
    if pos != n:
        raise ValueError("junk after array literal")
    return result


_TEXT_IN: dict[int, Callable[[str], Any]] = {
    BOOL: _parse_bool,
    INT2: int, INT4: int, INT8: int, OID: int,
    FLOAT4: _parse_float, FLOAT8: _parse_float,
    NUMERIC: _parse_numeric,
    BYTEA: _parse_bytea,
    DATE: lambda s: _dtp.parse_date(s),
    TIME: _parse_time,
    TIMESTAMP: lambda s: _parse_timestamp(s, False),
    TIMESTAMPTZ: lambda s: _parse_timestamp(s, True),
    INTERVAL: _parse_interval,
    UUID: lambda s: uuid.UUID(s.strip()),
    JSON: json.loads, JSONB: json.loads,
}


def _array_text_in(elem_oid: int) -> Callable[[str], Any]:
    f = _TEXT_IN.get(elem_oid, str)
    return lambda s: parse_array(s, f)


for _arr, _elem in ARRAY_OF.items():
    _TEXT_IN[_arr] = _array_text_in(_elem)


def _numeric_from_binary(b: bytes) -> Decimal:
    ndigits, weight, sign, dscale = _hhHh.unpack_from(b, 0)
    if sign == 0xC000:
        return Decimal("NaN")
    if sign == 0xD000:
        return Decimal("Infinity")
    if sign == 0xF000:
        return Decimal("-Infinity")
    if len(b) != 8 + 2 * ndigits:
        raise ValueError("bad numeric length")
    groups = struct.unpack_from(f">{ndigits}h", b, 8)
    v = 0
    for g in groups:
        v = v * 10000 + g
    exp = (weight - ndigits + 1) * 4
    d = Decimal(v).scaleb(exp)
    if sign == 0x4000:
        d = -d
    return d.quantize(Decimal(1).scaleb(-dscale)) if dscale or exp < 0 else d


def _exact(st: struct.Struct) -> Callable[[bytes], Any]:
    def f(b: bytes) -> Any:
        if len(b) != st.size:
            raise ValueError("wrong length")
        return st.unpack(b)[0]

    return f


_u_i2, _u_i4, _u_i8, _u_oid = _exact(_h), _exact(_i), _exact(_q), _exact(_I)
_u_f4, _u_f8 = _exact(_f), _exact(_d)

_BINARY_IN: dict[int, Callable[[bytes], Any]] = {
    BOOL: lambda b: _exact(_b)(b),
    INT2: _u_i2, INT4: _u_i4, INT8: _u_i8, OID: _u_oid,
    FLOAT4: _u_f4, FLOAT8: _u_f8,
    TEXT: lambda b: b.decode(), VARCHAR: lambda b: b.decode(), BPCHAR: lambda b: b.decode(),
    NAME: lambda b: b.decode(), CHAR: lambda b: b.decode(), UNKNOWN: lambda b: b.decode(),
    BYTEA: bytes,
    DATE: lambda b: _dtv.make_date(_u_i4(b)),
    TIME: lambda b: (datetime.min + timedelta(microseconds=_u_i8(b))).time(),
    TIMESTAMP: lambda b: _dtv.make_ts(_u_i8(b), False, check=False),
    TIMESTAMPTZ: lambda b: _dtv.make_ts(_u_i8(b), True, check=False),
    INTERVAL: lambda b: (lambda us, d, mo: Interval(mo, d, us))(*_qii.unpack(b)),
    UUID: lambda b: uuid.UUID(bytes=b),
    NUMERIC: _numeric_from_binary,
    JSON: lambda b: json.loads(b.decode()),
    JSONB: lambda b: json.loads(b[1:].decode()) if b[:1] == b"\x01" else _bad_jsonb(),
}


def _bad_jsonb() -> Any:
    raise ValueError("unsupported jsonb version number")


def _array_from_binary(b: bytes) -> list:
    ndim, _has_null, elem_oid = _iiI.unpack_from(b, 0)
    if ndim == 0:
        return []
    pos = 12
    dims = []
    for _ in range(ndim):
        d, _lb = _ii.unpack_from(b, pos)
        dims.append(d)
        pos += 8
    dec = _BINARY_IN.get(elem_oid, lambda x: x.decode())
    flat: list[Any] = []
    for _ in range(math.prod(dims)):
        (ln,) = _i.unpack_from(b, pos)
        pos += 4
        if ln == -1:
            flat.append(None)
        else:
            flat.append(dec(b[pos : pos + ln]))
            pos += ln
    if pos != len(b):
        raise ValueError("trailing bytes in array")
    for d in reversed(dims[1:]):
        flat = [flat[i : i + d] for i in range(0, len(flat), d)]
    return flat


for _arr in ARRAY_OF:
    _BINARY_IN[_arr] = _array_from_binary


def decode_param(type_oid: int, fmt: int, data: bytes | None) -> Any:
    """One Bind parameter -> Python value (None for NULL)."""
    if data is None:
        return None
    if fmt == 0:
        try:
            s = data.decode()
        except UnicodeDecodeError:
            raise SqlError("invalid byte sequence for encoding \"UTF8\"", sqlstate="22021") from None
        f = _TEXT_IN.get(type_oid)
        if f is None:
            return s
        try:
            return f(s)
        except (ValueError, InvalidOperation, IndexError, TypeError, OverflowError):
            raise SqlError(
                f"invalid input syntax for type {type_name(type_oid)}: \"{s}\"", sqlstate="22P02"
            ) from None
    if fmt == 1:
        f2 = _BINARY_IN.get(type_oid)
        if f2 is None:
            if type_oid == 0:
                try:
                    return data.decode()
                except UnicodeDecodeError:
                    pass
            raise SqlError(f"no binary input function available for type {type_oid}", sqlstate="42883")
        try:
            return f2(data)
        except (ValueError, struct.error, UnicodeDecodeError, IndexError, OverflowError, InvalidOperation):
            raise SqlError(
                f"incorrect binary data format in bind parameter of type {type_name(type_oid)}",
                sqlstate="22P03",
            ) from None
    raise SqlError(f"unsupported format code: {fmt}", sqlstate="08P01")


_NAMES = {
    BOOL: "boolean", BYTEA: "bytea", INT2: "smallint", INT4: "integer", INT8: "bigint",
    OID: "oid", FLOAT4: "real", FLOAT8: "double precision", NUMERIC: "numeric", TEXT: "text",
    DATE: "date", TIME: "time without time zone", TIMESTAMP: "timestamp without time zone",
    TIMESTAMPTZ: "timestamp with time zone", INTERVAL: "interval", UUID: "uuid", JSON: "json",
    JSONB: "jsonb",
}


def type_name(type_oid: int) -> str:
    if type_oid in ARRAY_OF:
        return type_name(ARRAY_OF[type_oid]) + "[]"
    return _NAMES.get(type_oid, str(type_oid))
