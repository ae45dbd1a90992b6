"""Row codec round trips and order-preserving keys."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from engine.codec import decode_row, encode_row
from engine.datetime_values import BigDate, BigTimestamp
from engine.intervals import Interval
from engine.keys import encode_key


def test_codec_round_trip_exact():
    row = (None, True, -5, 2**62, 1.25, Decimal("12.340"), "héllo", b"\x00\xff",
           dt.datetime(2024, 1, 2, 3, 4, 5, 6), dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc),
           dt.date(2020, 2, 29), dt.time(1, 2, 3), Interval(14, 1, 5_000_007), BigDate(-2_000_000),
           BigTimestamp(2**63 - 1, True), uuid.UUID(int=12345), {"a": [1, 2, {"b": None}]}, [1, "x"], (1, Decimal("2")))
    back = decode_row(encode_row(row))
    assert back == row
    assert [type(v) for v in back] == [type(v) for v in row]
    assert str(back[5]) == "12.340"  # scale kept


def test_keys_preserve_order():
    vals = [-(2**63), -1000, -1, 0, 1, 2, 300, 2**40]
    enc = [encode_key((v,)) for v in vals]
    assert enc == sorted(enc)
    strs = ["", "a", "a\x00", "ab", "b"]
    assert [encode_key((s,)) for s in strs] == sorted(encode_key((s,)) for s in strs)
    fl = [-1e10, -1.5, -0.0, 1e-9, 2.5, 1e300]
    assert [encode_key((f,)) for f in fl] == sorted(encode_key((f,)) for f in fl)
    # composite: (1, "b") < (2, "a"); prefix-free strings keep composite order
    assert encode_key((1, "b")) < encode_key((2, "a"))
    assert encode_key(("a", 2)) < encode_key(("ab", 1))
