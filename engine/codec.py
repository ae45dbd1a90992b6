"""Row (de)serialisation for the volume: ``encode_row(tuple) -> bytes`` and back.

Format: a msgpack array (msgspec) of the row's values.  Types msgpack lacks travel as
msgpack *ext* values whose payload is itself text or msgpack:

====  ==================  ===========================================
code  Python type         payload
====  ==================  ===========================================
1     decimal.Decimal     ASCII ``str(d)`` (exact, keeps scale)
2     datetime (naive)    ISO text
3     datetime (aware)    ISO text with offset
4     date                ISO text
5     time                ISO text (offset kept if aware)
6     timedelta           msgpack [days, seconds, microseconds] (read back as Interval)
7     uuid.UUID           16 raw bytes
8     tuple               msgpack array (tuples inside rows stay tuples)
9     Interval            msgpack [months, days, microseconds]
10    BigDate             msgpack int: days since 2000-01-01 (BC, > 9999, infinity)
11    BigTimestamp        msgpack [microseconds since 2000-01-01, is timestamptz]
====  ==================  ===========================================

``bytes`` map to msgpack bin, lists / dicts (json, arrays) to msgpack arrays / maps, so
a round trip is exact for every value type the engine stores.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from decimal import Decimal
from typing import Any

import msgspec

from engine.datetime_values import BigDate, BigTimestamp
from engine.intervals import Interval

_EXT_DECIMAL, _EXT_NAIVE, _EXT_AWARE, _EXT_DATE, _EXT_TIME, _EXT_DELTA, _EXT_UUID, _EXT_TUPLE = range(1, 9)
_EXT_INTERVAL, _EXT_BIGDATE, _EXT_BIGTS = 9, 10, 11


def _enc_hook(v: Any) -> Any:
    if isinstance(v, Decimal):
        return msgspec.msgpack.Ext(_EXT_DECIMAL, str(v).encode())
    if isinstance(v, _dt.datetime):
        return msgspec.msgpack.Ext(_EXT_AWARE if v.tzinfo else _EXT_NAIVE, v.isoformat().encode())
    if isinstance(v, _dt.date):
        return msgspec.msgpack.Ext(_EXT_DATE, v.isoformat().encode())
    if isinstance(v, _dt.time):
        return msgspec.msgpack.Ext(_EXT_TIME, v.isoformat().encode())
    if isinstance(v, _dt.timedelta):
        return msgspec.msgpack.Ext(_EXT_DELTA, _ENC.encode([v.days, v.seconds, v.microseconds]))
    if isinstance(v, uuid.UUID):
        return msgspec.msgpack.Ext(_EXT_UUID, v.bytes)
    t = type(v)
    if t is Interval:
        return msgspec.msgpack.Ext(_EXT_INTERVAL, _ENC.encode([v.months, v.days, v.micros]))
    if t is BigDate:
        return msgspec.msgpack.Ext(_EXT_BIGDATE, _ENC.encode(v.days))
    if t is BigTimestamp:
        return msgspec.msgpack.Ext(_EXT_BIGTS, _ENC.encode([v.us, v.tz]))
    raise NotImplementedError(f"cannot encode {type(v).__name__}")


def _ext_hook(code: int, data: memoryview) -> Any:
    b = bytes(data)
    if code == _EXT_DECIMAL:
        return Decimal(b.decode())
    if code in (_EXT_NAIVE, _EXT_AWARE):
        return _dt.datetime.fromisoformat(b.decode())
    if code == _EXT_DATE:
        return _dt.date.fromisoformat(b.decode())
    if code == _EXT_TIME:
        return _dt.time.fromisoformat(b.decode())
    if code == _EXT_DELTA:
        d, s, us = _DEC.decode(b)
        return Interval(0, d, s * 1_000_000 + us)
    if code == _EXT_INTERVAL:
        mo, d, us = _DEC.decode(b)
        return Interval(mo, d, us, check=False)
    if code == _EXT_BIGDATE:
        return BigDate(_DEC.decode(b))
    if code == _EXT_BIGTS:
        us, tz = _DEC.decode(b)
        return BigTimestamp(us, tz)
    if code == _EXT_UUID:
        return uuid.UUID(bytes=b)
    if code == _EXT_TUPLE:
        return tuple(_DEC.decode(b))
    raise ValueError(f"unknown ext code {code}")


_ENC = msgspec.msgpack.Encoder(enc_hook=_enc_hook)
_DEC = msgspec.msgpack.Decoder(ext_hook=_ext_hook)


_PLAIN = (type(None), bool, int, float, str, bytes)


def _ext(v: Any) -> Any:
    """Turn values msgspec would encode natively but lossily (as str) into ext values."""
    t = type(v)
    if t in _PLAIN:
        return v
    if t is tuple:
        return msgspec.msgpack.Ext(_EXT_TUPLE, _ENC.encode([_ext(x) for x in v]))
    if t is list:
        return [_ext(x) for x in v]
    if t is dict:
        return {k: _ext(x) for k, x in v.items()}
    return _enc_hook(v)


def encode_row(row: tuple) -> bytes:
    """Serialise one row (a tuple of engine values)."""
    return _ENC.encode([v if type(v) in _PLAIN else _ext(v) for v in row])


def decode_row(data: bytes) -> tuple:
    """Inverse of ``encode_row``."""
    return tuple(_DEC.decode(data))
