"""SQL types: PostgreSQL type OIDs, text input, casts and text output.

Values inside the engine are plain Python objects:

=====================  ============================  ======
SQL type               Python value                  OID
=====================  ============================  ======
smallint/int/bigint    int                           21/23/20
numeric(p,s)           decimal.Decimal               1700
real/double            float                         700/701
text/varchar/char      str (char(n) blank-padded)    25/1043/1042
boolean                bool                          16
timestamp/timestamptz  datetime (naive / UTC-aware)  1114/1184
date                   datetime.date                 1082
=====================  ============================  ======

``UNKNOWN`` (705) is the type of a quoted literal or an untyped parameter until context
fixes it (``coerce``); in a result column it is reported as text.
"""

from __future__ import annotations

import datetime as _dt
import math
import uuid
from decimal import Decimal, InvalidOperation, ROUND_HALF_UP
from typing import Any, Callable

from engine import errors

BOOL, BYTEA, NAME, INT8, INT2, INT4, TEXT, OID, JSON = 16, 17, 19, 20, 21, 23, 25, 26, 114
FLOAT4, FLOAT8, UNKNOWN, BPCHAR, VARCHAR, DATE, TIME = 700, 701, 705, 1042, 1043, 1082, 1083
TIMESTAMP, TIMESTAMPTZ, INTERVAL, NUMERIC, UUID, JSONB, VOID, RECORD = 1114, 1184, 1186, 1700, 2950, 3802, 2278, 2249

INTS = (INT2, INT4, INT8)
NUMERICS = (INT2, INT4, INT8, NUMERIC, FLOAT4, FLOAT8)
STRINGS = (TEXT, VARCHAR, BPCHAR, NAME, UNKNOWN)
_RANK = {INT2: 1, INT4: 2, INT8: 3, OID: 3, NUMERIC: 4, FLOAT4: 5, FLOAT8: 6}

TYPE_NAMES = {
    BOOL: "boolean", BYTEA: "bytea", NAME: "name", INT8: "bigint", INT2: "smallint", INT4: "integer",
    TEXT: "text", OID: "oid", JSON: "json", FLOAT4: "real", FLOAT8: "double precision",
    UNKNOWN: "unknown", BPCHAR: "character", VARCHAR: "character varying", DATE: "date",
    TIME: "time without time zone", TIMESTAMP: "timestamp without time zone",
    TIMESTAMPTZ: "timestamp with time zone", INTERVAL: "interval", NUMERIC: "numeric",
    UUID: "uuid", JSONB: "jsonb", VOID: "void", RECORD: "record",
}
# short names used for result column names of casts (PG: SELECT 1::int8 -> "int8")
SHORT_NAMES = {
    BOOL: "bool", INT8: "int8", INT2: "int2", INT4: "int4", TEXT: "text", FLOAT4: "float4",
    FLOAT8: "float8", BPCHAR: "bpchar", VARCHAR: "varchar", DATE: "date", TIMESTAMP: "timestamp",
    TIMESTAMPTZ: "timestamptz", NUMERIC: "numeric", INTERVAL: "interval", UUID: "uuid",
    JSON: "json", JSONB: "jsonb", BYTEA: "bytea", TIME: "time", OID: "oid", NAME: "name",
}
TYPE_SIZES = {BOOL: 1, INT2: 2, INT4: 4, INT8: 8, FLOAT4: 4, FLOAT8: 8, DATE: 4, TIMESTAMP: 8,
              TIMESTAMPTZ: 8, OID: 4, NAME: 64, UUID: 16, TIME: 8, INTERVAL: 16}

# sqlglot DataType.Type name -> oid
_SQLGLOT = {
    "SMALLINT": INT2, "INT": INT4, "BIGINT": INT8, "SERIAL": INT4, "BIGSERIAL": INT8,
    "SMALLSERIAL": INT2, "TEXT": TEXT, "VARCHAR": VARCHAR, "CHAR": BPCHAR, "NCHAR": BPCHAR,
    "NVARCHAR": VARCHAR, "BOOLEAN": BOOL, "DECIMAL": NUMERIC, "BIGDECIMAL": NUMERIC, "FLOAT": FLOAT4,
    "DOUBLE": FLOAT8, "TIMESTAMP": TIMESTAMP, "TIMESTAMPTZ": TIMESTAMPTZ, "TIMESTAMPLTZ": TIMESTAMPTZ,
    "DATE": DATE, "TIME": TIME, "INTERVAL": INTERVAL, "UUID": UUID, "JSON": JSON, "JSONB": JSONB,
    "VARBINARY": BYTEA, "BINARY": BYTEA, "BLOB": BYTEA, "NAME": NAME, "OID": OID, "TINYINT": INT2,
    "UNKNOWN": UNKNOWN,
}
_BY_NAME = {
    "int": INT4, "int4": INT4, "integer": INT4, "int8": INT8, "bigint": INT8, "int2": INT2,
    "smallint": INT2, "text": TEXT, "varchar": VARCHAR, "bpchar": BPCHAR, "bool": BOOL,
    "boolean": BOOL, "numeric": NUMERIC, "decimal": NUMERIC, "float4": FLOAT4, "real": FLOAT4,
    "float8": FLOAT8, "float": FLOAT8, "timestamp": TIMESTAMP, "timestamptz": TIMESTAMPTZ,
    "date": DATE, "regclass": OID, "oid": OID, "name": NAME, "uuid": UUID, "json": JSON,
    "jsonb": JSONB, "bytea": BYTEA, "interval": INTERVAL, "time": TIME,
}
SERIAL_TYPES = ("SERIAL", "BIGSERIAL", "SMALLSERIAL")

# arrays: element oid -> array oid (values are Python lists, one dimension or nested lists)
ARRAY_OF = {BOOL: 1000, BYTEA: 1001, NAME: 1003, INT2: 1005, INT4: 1007, TEXT: 1009, BPCHAR: 1014,
            VARCHAR: 1015, INT8: 1016, FLOAT4: 1021, FLOAT8: 1022, OID: 1028, TIMESTAMP: 1115, DATE: 1182,
            TIME: 1183, TIMESTAMPTZ: 1185, INTERVAL: 1187, NUMERIC: 1231, UUID: 2951, JSON: 199, JSONB: 3807}
ELEM_OF = {a: e for e, a in ARRAY_OF.items()}
for _e, _a in ARRAY_OF.items():
    TYPE_NAMES[_a] = TYPE_NAMES[_e] + "[]"
    _BY_NAME["_" + SHORT_NAMES.get(_e, TYPE_NAMES[_e])] = _a
    SHORT_NAMES[_a] = SHORT_NAMES.get(_e, TYPE_NAMES[_e])

# reg* types: values are catalog_functions.RegOid (text output is the object's name, comparisons
# and int() use its oid); they compare with oid and integers like oid does
REGPROC, REGPROCEDURE, REGCLASS, REGTYPE, REGNAMESPACE = 24, 2202, 2205, 2206, 4089
REGS = (REGPROC, REGPROCEDURE, REGCLASS, REGTYPE, REGNAMESPACE)
OIDLIKE = (OID, *REGS)
for _r, _name in zip(REGS, ("regproc", "regprocedure", "regclass", "regtype", "regnamespace")):
    TYPE_NAMES[_r] = SHORT_NAMES[_r] = _name
    TYPE_SIZES[_r] = 4

# int2vector / oidvector (pg_index.indkey, pg_proc.proargtypes ...): one-dimensional arrays
# whose subscripts start at 0 and whose text form is space-separated ("1 2").
INT2VECTOR, OIDVECTOR = 22, 30
VECTORS = {INT2VECTOR: INT2, OIDVECTOR: OID}
ELEM_OF.update(VECTORS)
for _v, _name in ((INT2VECTOR, "int2vector"), (OIDVECTOR, "oidvector")):
    TYPE_NAMES[_v] = SHORT_NAMES[_v] = _name
    _BY_NAME[_name] = _v


class Vector(list):
    """A value of int2vector / oidvector: a list whose text form is "1 2 3"."""

    def __str__(self) -> str:
        return " ".join(str(x) for x in self)


def parse_vector(s: str, oid: int) -> Vector:
    try:
        return Vector(check_int(int(x), VECTORS[oid]) for x in s.split())
    except ValueError:
        raise errors.InvalidTextRepresentation(
            f'invalid input syntax for type {"smallint" if oid == INT2VECTOR else "oid"}: "{s}"') from None


def array_of(elem: int) -> int:
    """Array type of an element type (text[] for unknown / unsupported elements)."""
    if elem in ELEM_OF:
        return elem
    return ARRAY_OF.get(TEXT if elem == UNKNOWN else elem, 1009)


def parse_array(s: str, elem: int, typmod: int = -1) -> list:
    """Array input: ``{1,2,NULL}``, ``{"a b","c"}``, nested ``{{1,2},{3,4}}``."""
    t = s.strip()
    if t.startswith("[") and "=" in t:  # explicit bounds: ignore them
        t = t[t.index("=") + 1:].strip()
    if not t.startswith("{"):
        raise errors.InvalidTextRepresentation(f'malformed array literal: "{s}"',
                                               detail='Array value must start with "{" or dimension information.')
    pos = 0

    def parse() -> list:
        nonlocal pos
        assert t[pos] == "{"
        pos += 1
        out: list = []
        while pos < len(t):
            c = t[pos]
            if c in " \t\n":
                pos += 1
            elif c == "}":
                pos += 1
                return out
            elif c == ",":
                pos += 1
            elif c == "{":
                out.append(parse())
            elif c == '"':
                pos += 1
                buf = []
                while pos < len(t) and t[pos] != '"':
                    if t[pos] == "\\":
                        pos += 1
                    buf.append(t[pos])
                    pos += 1
                pos += 1
                out.append(parse_text("".join(buf), elem, typmod))
            else:
                j = pos
                while j < len(t) and t[j] not in ",}":
                    j += 1
                raw = t[pos:j].strip()
                pos = j
                out.append(None if raw.upper() == "NULL" else parse_text(raw, elem, typmod))
        raise errors.InvalidTextRepresentation(f'malformed array literal: "{s}"')

    return parse()


def array_text(v: list, elem: int = 0) -> str:
    """Array output: ``{1,2,NULL}``; elements quoted when they need it."""
    parts = []
    for x in v:
        if x is None:
            parts.append("NULL")
        elif isinstance(x, list) and elem not in (JSON, JSONB):
            parts.append(array_text(x, elem))
        else:
            e = to_text(x)
            if e == "" or e.upper() == "NULL" or any(ch in e for ch in ' ,{}"\\\t\n'):
                e = '"' + e.replace("\\", "\\\\").replace('"', '\\"') + '"'
            parts.append(e)
    return "{" + ",".join(parts) + "}"


def from_sqlglot(dt: Any) -> tuple[int, int]:
    """(oid, typmod) for a sqlglot DataType node; raises UndefinedObject for unknown types."""
    name = dt.this.name if hasattr(dt.this, "name") else str(dt.this)
    if name == "ARRAY" and dt.expressions:
        elem, etm = from_sqlglot(dt.expressions[0])
        return array_of(elem), etm
    oid = _SQLGLOT.get(name)
    if oid is None and name == "USERDEFINED":
        oid = _BY_NAME.get(str(dt.args.get("kind", "")).lower())
    if oid is None:
        raise errors.SqlError(f'type "{dt.sql("postgres").lower()}" does not exist', sqlstate="42704")
    typmod = -1
    ps = [p.this for p in dt.expressions] if dt.expressions else []
    try:
        if oid in (VARCHAR, BPCHAR) and ps:
            typmod = int(ps[0].name) + 4
        elif oid == BPCHAR:
            typmod = 1 + 4
        elif oid == NUMERIC and ps:
            p = int(ps[0].name)
            s = int(ps[1].name) if len(ps) > 1 else 0
            typmod = ((p << 16) | s) + 4
        elif oid in (TIMESTAMP, TIMESTAMPTZ, TIME, INTERVAL) and ps:
            typmod = min(int(ps[0].name), 6)  # fractional-second digits
    except (ValueError, AttributeError):
        pass
    return oid, typmod


def display_name(oid: int, typmod: int = -1) -> str:
    n = TYPE_NAMES.get(oid, str(oid))
    if typmod >= 4 and oid in (VARCHAR, BPCHAR):
        return f"{n}({typmod - 4})"
    if typmod >= 4 and oid == NUMERIC:
        return f"numeric({(typmod - 4) >> 16},{(typmod - 4) & 0xFFFF})"
    if typmod >= 0 and oid in (TIMESTAMP, TIMESTAMPTZ, TIME):
        base, _, rest = n.partition(" ")
        return f"{base}({typmod}) {rest}".strip()
    if typmod >= 0 and oid == INTERVAL:
        return f"interval({typmod})"
    return n


def common_numeric(a: int, b: int) -> int:
    """Result type of arithmetic on two numeric types (UNKNOWN adopts the other side)."""
    if a == UNKNOWN:
        return b if b in _RANK else NUMERIC
    if b == UNKNOWN:
        return a
    return a if _RANK.get(a, 0) >= _RANK.get(b, 0) else b


# -- range checks -------------------------------------------------------------------------
_LIMITS = {INT2: (-32768, 32767, "smallint"), INT4: (-(2**31), 2**31 - 1, "integer"),
           INT8: (-(2**63), 2**63 - 1, "bigint"), OID: (0, 2**32 - 1, "oid")}


def check_int(v: int, oid: int) -> int:
    lo, hi, name = _LIMITS[oid]
    if v < lo or v > hi:
        raise errors.NumericOutOfRange(f"{name} out of range")
    return v


# -- text input ---------------------------------------------------------------------------
_TRUE = {"t", "true", "y", "yes", "on", "1"}
_FALSE = {"f", "false", "n", "no", "off", "0"}


def _bad(tname: str, s: str) -> errors.SqlError:
    return errors.InvalidTextRepresentation(f'invalid input syntax for type {tname}: "{s}"')


def parse_text(s: str, oid: int, typmod: int = -1) -> Any:
    """PostgreSQL's type input function: text -> value (22P02 on bad input)."""
    if oid in (TEXT, NAME, UNKNOWN):
        return s
    if oid in VECTORS:
        return parse_vector(s, oid)
    if oid in ELEM_OF:
        return parse_array(s, ELEM_OF[oid], typmod)
    if oid in (VARCHAR, BPCHAR):
        return fit_string(s, oid, typmod, explicit=False)
    if oid in _LIMITS:
        t = s.strip()
        try:
            v = int(t)
        except ValueError:
            raise _bad(_LIMITS[oid][2], s) from None
        lo, hi, name = _LIMITS[oid]
        if v < lo or v > hi:
            raise errors.NumericOutOfRange(f'value "{s}" is out of range for type {name}')
        return v
    if oid == NUMERIC:
        t = s.strip()
        try:
            d = Decimal(t)
        except InvalidOperation:
            raise _bad("numeric", s) from None
        if d.is_infinite() or (t.lower() not in ("nan",) and d.is_nan()):
            raise _bad("numeric", s)
        return fit_numeric(d, typmod)
    if oid in (FLOAT4, FLOAT8):
        t = s.strip().lower()
        try:
            v = float({"infinity": "inf", "-infinity": "-inf"}.get(t, t))
        except ValueError:
            raise _bad("real" if oid == FLOAT4 else "double precision", s) from None
        return v
    if oid == BOOL:
        t = s.strip().lower()
        if t in _TRUE:
            return True
        if t in _FALSE:
            return False
        raise _bad("boolean", s)
    if oid == DATE:
        from engine.datetime_parse import parse_date

        return parse_date(s)
    if oid in (TIMESTAMP, TIMESTAMPTZ):
        from engine.datetime_parse import parse_timestamp

        v = parse_timestamp(s, oid == TIMESTAMPTZ)
        return _with_precision(None, typmod)(v) if 0 <= typmod < 6 else v
    if oid == UUID:
        try:
            return uuid.UUID(s.strip())
        except ValueError:
            raise _bad("uuid", s) from None
    if oid == BYTEA:
        if s.startswith("\\x"):
            return bytes.fromhex(s[2:])
        return s.encode()
    if oid in (JSON, JSONB):
        import json

        try:
            return json.loads(s)
        except ValueError:
            raise _bad("json", s) from None
    if oid == TIME:
        from engine.datetime_parse import parse_time

        v = parse_time(s)
        return _with_precision(None, typmod)(v) if 0 <= typmod < 6 else v
    if oid == INTERVAL:
        from engine.datetime_parse import parse_interval

        return parse_interval(s, typmod)
    return s


def fit_string(s: str, oid: int, typmod: int, explicit: bool) -> str:
    if typmod < 4:
        return s
    n = typmod - 4
    if len(s) > n:
        if explicit or not s[n:].strip(" "):
            s = s[:n]
        else:
            tname = "character varying" if oid == VARCHAR else "character"
            raise errors.StringTooLong(f"value too long for type {tname}({n})")
    if oid == BPCHAR and len(s) < n:
        s = s.ljust(n)
    return s


def fit_numeric(d: Decimal, typmod: int) -> Decimal:
    if typmod < 4 or d.is_nan():
        return d
    p, s = (typmod - 4) >> 16, (typmod - 4) & 0xFFFF
    q = d.quantize(Decimal(1).scaleb(-s), rounding=ROUND_HALF_UP)
    if q.adjusted() >= p - s and q != 0:
        raise errors.NumericOutOfRange(
            "numeric field overflow",
            detail=f"A field with precision {p}, scale {s} must round to an absolute value less than 10^{p - s}.",
        )
    return q


# -- text output --------------------------------------------------------------------------
def format_float(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    r = repr(v)
    if r.endswith(".0"):
        r = r[:-2]
    return r


def _dt_types() -> tuple:
    from engine import datetime_values as dv
    from engine.intervals import Interval

    return (_dt.datetime, _dt.date, _dt.time, _dt.timedelta, Interval, dv.BigDate, dv.BigTimestamp)


_DT_TYPES: tuple = ()


def to_text(v: Any) -> str:
    """PostgreSQL's output function (text format) for an engine value."""
    t = type(v)
    if t is str:
        return v
    if t is bool:
        return "t" if v else "f"
    if t is int or t is Decimal:
        return str(v)
    if t is float:
        return format_float(v)
    if t in _DT_TYPES:
        from engine.datetime_format import value_text

        return value_text(v)
    if t is bytes:
        return "\\x" + v.hex()
    if t is bool:
        return "t" if v else "f"
    if t is Vector:
        return str(v)
    if isinstance(v, (dict, list)):
        import json

        return json.dumps(v)
    return str(v)


# -- casts --------------------------------------------------------------------------------
def _num_to_int(oid: int) -> Callable[[Any], Any]:
    def f(v: Any) -> int:
        if isinstance(v, float):
            if math.isnan(v) or math.isinf(v):
                raise errors.NumericOutOfRange(f"{_LIMITS[oid][2]} out of range")
            r = round(v)  # banker's rounding like rint()
        elif isinstance(v, Decimal):
            r = int(v.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        else:
            r = int(v)
        return check_int(r, oid)

    return f


def caster(src: int, dst: int, typmod: int = -1, explicit: bool = True) -> Callable[[Any], Any] | None:
    """A function converting non-NULL values of type ``src`` to ``dst`` (None: identity)."""
    if dst in (TIMESTAMP, TIMESTAMPTZ, TIME, INTERVAL) and 0 <= typmod < 6:
        base = caster(src, dst, -1, explicit)
        return _with_precision(base, typmod)
    if src == dst and typmod < 4:
        return None
    if src in REGS and dst != src:
        if dst in (TEXT, NAME, VARCHAR, BPCHAR):
            return str
        if dst in INTS or dst in OIDLIKE:
            return int
    if dst in REGS and (src in INTS or src == OID):
        return None  # an oid number (prints as the number, compares as the oid)
    if src in VECTORS and dst in (TEXT, NAME, VARCHAR, BPCHAR):
        return str
    if src in ELEM_OF and dst in VECTORS and src not in VECTORS:
        return lambda v: Vector(check_int(int(x), VECTORS[dst]) for x in v)
    if src in VECTORS and dst in ELEM_OF and dst not in VECTORS:
        ec = caster(VECTORS[src], ELEM_OF[dst], typmod, explicit)
        return (lambda v: list(v)) if ec is None else (lambda v: [ec(x) for x in v])
    if src in ELEM_OF:
        if dst in (TEXT, NAME, VARCHAR, BPCHAR):
            se = ELEM_OF[src]
            return lambda v: array_text(v, se)
        if dst in ELEM_OF:
            ec = caster(ELEM_OF[src], ELEM_OF[dst], typmod, explicit)
            if ec is None:
                return None

            def conv(v: list) -> list:
                return [None if x is None else conv(x) if isinstance(x, list) else ec(x) for x in v]

            return conv
    if dst in _LIMITS:
        if src in STRINGS:
            return lambda v: parse_text(v, dst)
        if src == BOOL:
            return lambda v: int(v)
        if src in _LIMITS and _RANK[src] <= _RANK[dst]:
            return None
        return _num_to_int(dst)
    if dst == NUMERIC:
        if src in STRINGS:
            return lambda v: parse_text(v, NUMERIC, typmod)
        if src in (FLOAT4, FLOAT8):
            return lambda v: fit_numeric(Decimal(repr(v)), typmod)
        return lambda v: fit_numeric(Decimal(v), typmod)
    if dst in (FLOAT4, FLOAT8):
        if src in STRINGS:
            return lambda v: parse_text(v, dst)
        return float
    if dst in (TEXT, NAME):
        if src in STRINGS:
            return (lambda v: v.rstrip(" ")) if src == BPCHAR else None
        return to_text
    if dst in (VARCHAR, BPCHAR):
        if src in STRINGS:
            return lambda v: fit_string(v, dst, typmod, explicit)
        return lambda v: fit_string(to_text(v), dst, typmod, explicit)
    if dst == BOOL:
        if src in STRINGS:
            return lambda v: parse_text(v, BOOL)
        if src in INTS:
            return bool
        raise errors.SqlError(f"cannot cast type {TYPE_NAMES.get(src)} to boolean", sqlstate="42846")
    if dst in (DATE, TIMESTAMP, TIMESTAMPTZ) and src in (DATE, TIMESTAMP, TIMESTAMPTZ):
        from engine import datetime_values as dv

        if dst == DATE:
            return lambda v: dv.to_date(v, _session_zone())
        tz = dst == TIMESTAMPTZ
        return lambda v: dv.to_timestamp(v, tz, _session_zone())
    if dst == INTERVAL and src == TIME:
        from engine.intervals import Interval

        return lambda v: Interval(0, 0, ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond)
    if src in STRINGS:
        return lambda v: parse_text(v, dst, typmod)
    if src == dst:
        return None
    if dst in (JSON, JSONB) and src in (JSON, JSONB):
        return None
    raise errors.SqlError(
        f"cannot cast type {TYPE_NAMES.get(src, src)} to {TYPE_NAMES.get(dst, dst)}", sqlstate="42846"
    )


def has_precision(oid: int, typmod: int) -> bool:
    """A timestamp(p) / time(p) / interval(p) typmod that rounds fractional seconds."""
    return 0 <= typmod < 6 and oid in (TIMESTAMP, TIMESTAMPTZ, TIME, INTERVAL)


def _with_precision(base: Callable[[Any], Any] | None, p: int) -> Callable[[Any], Any]:
    """A cast that then rounds seconds to ``p`` fractional digits (timestamp(p) etc.)."""
    from engine import datetime_values as dv
    from engine.intervals import Interval

    step = 10 ** (6 - p)

    def rnd(us: int) -> int:
        return (us + step // 2) // step * step if us >= 0 else -((-us + step // 2) // step * step)

    def f(v: Any) -> Any:
        if base is not None:
            v = base(v)
        if isinstance(v, Interval):
            return Interval(v.months, v.days, rnd(v.micros))
        if isinstance(v, _dt.time):
            us = rnd(((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond)
            us = min(us, 86_400_000_000 - 1)
            return _dt.time(us // 3_600_000_000, us // 60_000_000 % 60, us // 1_000_000 % 60, us % 1_000_000,
                            tzinfo=v.tzinfo)
        if dv.is_timestamp(v) and not dv.is_infinite(v):
            us = dv.ts_us(v)
            r = rnd(us)
            return v if r == us else dv.make_ts(r, dv.is_aware(v))
        return v

    return f


def _session_zone() -> Any:
    from engine.datetime_style import current

    return current().zone


def py_type_oid(v: Any) -> int:
    """Best guess of the SQL type of a Python value (parameters sent without a type)."""
    t = type(v)
    if t is bool:
        return BOOL
    if t is int:
        return INT8 if not -(2**31) <= v < 2**31 else INT4
    if t is float:
        return FLOAT8
    if t is Decimal:
        return NUMERIC
    if t is _dt.datetime:
        return TIMESTAMPTZ if v.tzinfo else TIMESTAMP
    if t is _dt.date:
        return DATE
    if t is bytes:
        return BYTEA
    from engine import datetime_values as dv
    from engine.intervals import Interval

    if t is Interval or t is _dt.timedelta:
        return INTERVAL
    if t is dv.BigDate:
        return DATE
    if t is dv.BigTimestamp:
        return TIMESTAMPTZ if v.tz else TIMESTAMP
    if t is _dt.time:
        return TIME
    return TEXT


_DT_TYPES = _dt_types()
