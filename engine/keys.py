"""Order-preserving key encoding: ``encode_key(values) -> bytes``.

A key is the concatenation of its values' encodings; comparing keys bytewise compares the
value tuples (None sorts first, like ``NULLS FIRST`` -- primary keys are never NULL).

==========  ====  =============================================================
value       tag   body
==========  ====  =============================================================
None        0x00  (none)
False/True  0x01  0x00 / 0x01
int         0x02  8 bytes big-endian, sign bit flipped (int2/int4/int8 all fit)
float       0x03  8 bytes IEEE, sign flipped (positive) or all bits inverted
Decimal     0x04  text of the float value ordering via float encoding + exact text
str         0x05  UTF-8 with 0x00 escaped as 0x00 0xFF, terminated by 0x00 0x00
bytes       0x06  same escaping as str
date/time   0x07  ISO text, escaped like str (ISO text sorts chronologically)
==========  ====  =============================================================

Tags never use 0xFF, so engine lock keys that start with ``b"\\xff"`` (unique-value
locks, see ``engine.txn``) cannot collide with row keys.  Tables without a primary key
use an 8-byte big-endian rowid (``rowid_key``).
"""

from __future__ import annotations

import datetime as _dt
import struct
from decimal import Decimal
from typing import Any, Iterable

_Q = struct.Struct(">Q")
_D = struct.Struct(">d")


def _esc(b: bytes) -> bytes:
    return b.replace(b"\x00", b"\x00\xff") + b"\x00\x00"


def _float(f: float) -> bytes:
    (bits,) = _Q.unpack(_D.pack(f))
    bits = bits ^ 0xFFFFFFFFFFFFFFFF if bits >> 63 else bits | (1 << 63)
    return _Q.pack(bits)


def encode_value(v: Any) -> bytes:
    if v is None:
        return b"\x00"
    t = type(v)
    if t is int:
        return b"\x02" + _Q.pack((v + (1 << 63)) & 0xFFFFFFFFFFFFFFFF)
    if t is str:
        return b"\x05" + _esc(v.encode())
    if t is bool:
        return b"\x01\x01" if v else b"\x01\x00"
    if t is float:
        return b"\x03" + _float(v)
    if t is Decimal:
        # float prefix orders values; exact text (normalised) breaks float ties exactly
        return b"\x04" + _float(float(v)) + _esc(str(v.normalize()).encode())
    if t is bytes:
        return b"\x06" + _esc(v)
    if isinstance(v, (_dt.date, _dt.time, _dt.datetime)):
        if isinstance(v, _dt.datetime) and v.tzinfo is not None:
            v = v.astimezone(_dt.timezone.utc)
        return b"\x07" + _esc(v.isoformat().encode())
    if hasattr(v, "span"):  # Interval: ordered by its 30-day-month span
        return b"\x08" + (v.span() + (1 << 127)).to_bytes(16, "big")
    if hasattr(v, "days") or hasattr(v, "us"):  # BigDate / BigTimestamp: stable, unordered
        return b"\x07" + _esc(repr(v).encode())
    return b"\x05" + _esc(str(v).encode())


def encode_key(values: Iterable[Any]) -> bytes:
    return b"".join([encode_value(v) for v in values])


def encode_int_key(v: int) -> bytes:
    """Fast path for a single-integer primary key (same bytes as encode_key((v,)))."""
    return b"\x02" + _Q.pack((v + (1 << 63)) & 0xFFFFFFFFFFFFFFFF)


def rowid_key(rowid: int) -> bytes:
    """Key of a sequence's state row in the sequence table (8 bytes)."""
    return _Q.pack(rowid)


def rowid_of(key: bytes) -> int:
    return _Q.unpack(key)[0]


def row_id_key(n: int) -> bytes:
    """Key of the n-th row of a table without a primary key: the bytes of a one-integer
    key ``n``.  A table whose rows were loaded in the order of an integer column that
    later becomes its primary key (serial ids, pgbench's aid) keeps every key when the
    key is added: ADD PRIMARY KEY then moves no row (``engine.ddl_alter``)."""
    return encode_int_key(n)


def row_id_keys(first: int, count: int) -> list[bytes]:
    """``row_id_key`` of ``first`` .. ``first + count - 1`` (a bulk load)."""
    pack, bias = _Q.pack, 1 << 63
    return [b"\x02" + pack(n + bias) for n in range(first, first + count)]


def row_id_of(key: bytes) -> int | None:
    """The row number of a key made by ``row_id_key`` -- or by ``rowid_key``, which keyed
    such rows before -- else None."""
    if len(key) == 9 and key[0] == 2:
        return _Q.unpack_from(key, 1)[0] - (1 << 63)
    if len(key) == 8:
        return _Q.unpack(key)[0]
    return None
