"""Text/binary formats of server.types_io against PostgreSQL 15's own output."""

from __future__ import annotations

import math
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import pytest

from engine.errors import SqlError
from server import types_io as t
from engine.datetime_values import BigDate, BigTimestamp
from engine.intervals import Interval


@pytest.mark.parametrize(
    "value,oid,text",
    [
        (True, 16, "t"), (False, 16, "f"), (-7, 23, "-7"),
        (1.5, 701, "1.5"), (100.0, 701, "100"), (1e15, 701, "1e+15"), (123456789012345.0, 701, "123456789012345"),
        (1e-5, 701, "1e-05"), (0.0001, 701, "0.0001"), (-0.0, 701, "-0"), (math.inf, 701, "Infinity"),
        (-math.inf, 701, "-Infinity"), (math.nan, 701, "NaN"), (0.1, 701, "0.1"), (1 / 3, 701, "0.3333333333333333"),
        (0.1, 700, "0.1"), (1234567.0, 700, "1.234567e+06"), (123456.0, 700, "123456"),
        (Decimal("1E+2"), 1700, "100"), (Decimal("12.340"), 1700, "12.340"), (Decimal("NaN"), 1700, "NaN"),
        ("x", 25, "x"), (b"\x00\xab", 17, "\\x00ab"),
        (date(2024, 2, 29), 1082, "2024-02-29"),
        (datetime(2024, 1, 2, 3, 4, 5), 1114, "2024-01-02 03:04:05"),
        (datetime(2024, 1, 2, 3, 4, 5, 120000), 1114, "2024-01-02 03:04:05.12"),
        (datetime(2024, 1, 2, 3, 4, 5), 1184, "2024-01-02 03:04:05+00"),
        (datetime(2024, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))), 1184, "2024-01-02 03:04:05+00"),
        (time(1, 2, 3, 400000), 1083, "01:02:03.4"),
        (timedelta(days=1, hours=2, minutes=3, seconds=4), 1186, "1 day 02:03:04"),
        (timedelta(days=3), 1186, "3 days"), (timedelta(0), 1186, "00:00:00"),
        (timedelta(hours=-1), 1186, "-01:00:00"), (timedelta(days=-1, hours=-1), 1186, "-1 days -01:00:00"),
        (uuid.UUID(int=1), 2950, "00000000-0000-0000-0000-000000000001"),
        ({"a": [1, 2]}, 3802, '{"a": [1, 2]}'), ([1, 2], 3802, "[1, 2]"),
        ([1, 2, None], 1007, "{1,2,NULL}"), (["a b", 'q"x', "", "NULL"], 1009, '{"a b","q\\"x","","NULL"}'),
        ([[1, 2], [3, 4]], 1007, "{{1,2},{3,4}}"),
    ],
)
def test_text_output_matches_postgres(value, oid, text):
    assert t.column_encoder(oid, 0)(value) == text.encode()


ROUND_TRIP = [
    (16, True), (21, -3), (23, 2**31 - 1), (20, -(2**63)), (26, 4000000000), (700, 1.5), (701, -2.25),
    (25, "héllo"), (1043, "v"), (17, b"\x00\x01\xff"), (1082, date(1999, 12, 31)),
    (1114, datetime(1970, 1, 1, 0, 0, 0, 1)), (1184, datetime(2030, 5, 6, 7, 8, 9, tzinfo=timezone.utc)),
    (1083, time(23, 59, 59, 999999)), (1186, Interval(14, -2, 5_000_000)), (1186, Interval(-1, 3, -7)),
    (1082, BigDate(2**31 - 1)), (1082, BigDate(-800_000)), (1114, BigTimestamp(-(2**63), False)),
    (2950, uuid.UUID("12345678-1234-5678-1234-567812345678")),
    (1700, Decimal("0")), (1700, Decimal("-1234.5600")), (1700, Decimal("0.0001")), (1700, Decimal("100000000")),
    (1700, Decimal("123456789.000000001")), (1700, Decimal("NaN")),
    (3802, {"k": [1, "x", None]}), (114, [1, 2]), (1007, [1, None, 3]), (1009, ["a", "b c"]), (1007, []),
    (1007, [[1, 2], [3, 4]]),
]


@pytest.mark.parametrize("oid,value", ROUND_TRIP)
def test_binary_round_trip(oid, value):
    data = t.column_encoder(oid, 1)(value)
    back = t.decode_param(oid, 1, data)
    if isinstance(value, Decimal) and value.is_nan():
        assert back.is_nan()
    else:
        assert back == value and type(back) is type(value)


@pytest.mark.parametrize("oid,value", [x for x in ROUND_TRIP if x[0] not in (700, 701)])
def test_text_round_trip(oid, value):
    text = t.column_encoder(oid, 0)(value)
    back = t.decode_param(oid, 0, text)
    if isinstance(value, Decimal) and value.is_nan():
        assert back.is_nan()
    else:
        assert back == value


def test_known_binary_layouts():
    # numeric 12.34 -> ndigits 2, weight 0, sign +, dscale 2, digits 12 3400
    assert t.numeric_binary(Decimal("12.34")) == bytes.fromhex("0002 0000 0000 0002 000c 0d48")
    assert t.column_encoder(1082, 1)(date(2000, 1, 2)) == b"\x00\x00\x00\x01"
    assert t.column_encoder(3802, 1)({"a": 1}) == b'\x01{"a": 1}'


def test_param_decoding_unknown_type_is_str_and_bad_input_raises():
    assert t.decode_param(0, 0, b"12") == "12"
    assert t.decode_param(23, 0, None) is None
    assert t.decode_param(16, 0, b"on") is True
    assert t.decode_param(1184, 0, b"2024-01-02 05:00:00+02") == datetime(2024, 1, 2, 3, tzinfo=timezone.utc)
    with pytest.raises(SqlError) as e:
        t.decode_param(23, 0, b"12x")
    assert e.value.sqlstate == "22P02"
    with pytest.raises(SqlError) as e:
        t.decode_param(23, 1, b"\x00\x01")
    assert e.value.sqlstate == "22P03"


def test_binary_output_refused_for_unknown_oid():
    with pytest.raises(SqlError):
        t.column_encoder(600, 1)  # point: no binary output here
