"""PostgreSQL v3 wire messages: bytes <-> message objects, with no I/O (h11 style).

Framing
-------
Before startup completes the client sends *untyped* packets::

    int32 length (includes itself) | int32 code | body

    code 196608 (3.0)  StartupMessage   body = (key \\0 value \\0)* \\0
    code 80877103      SSLRequest       length 8, no body   -> server answers b"N"
    code 80877104      GSSENCRequest    length 8, no body   -> server answers b"N"
    code 80877102      CancelRequest    length 16, body = int32 pid, int32 secret

Afterwards every message is *typed*::

    byte1 type | int32 length (includes itself, not the type byte) | body

``FrameParser.feed(data)`` returns the complete messages seen so far.  It refuses a frame
by its header -- length < 4 or above ``max_message`` -- before buffering the body, raising
``ProtocolError`` (the connection is then closed: a stream whose lengths lie cannot be
resynchronised).  Body fields that run past the frame end also raise ``ProtocolError``.

Frontend messages decoded here (type byte -> class)::

    Q Query(sql)                 P Parse(name, sql, param_types)
    B Bind(portal, statement, param_formats, params, result_formats)
    D Describe(kind 'S'|'P', name)     E Execute(portal, max_rows)
    C Close(kind, name)  S Sync  H Flush  X Terminate  p PasswordMessage(data)
    d CopyData(data)     c CopyDone      f CopyFail(message)

Backend messages are built by the ``*_msg`` functions, each returning ready bytes; the
connection appends them to one output list and writes once per Sync / simple Query.
"""

from __future__ import annotations

import functools

import struct
from dataclasses import dataclass
from typing import Any, Sequence

PROTOCOL_3 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
MAX_STARTUP = 10_000
DEFAULT_MAX_MESSAGE = 64 * 1024 * 1024

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_II = struct.Struct(">ii")


class ProtocolError(Exception):
    """The byte stream is not valid protocol; answer 08P01 and close."""


# --------------------------------------------------------------------------- frontend


@dataclass(slots=True)
class Startup:
    params: dict[str, str]


@dataclass(slots=True)
class SSLRequest:
    pass


@dataclass(slots=True)
class GSSENCRequest:
    pass


@dataclass(slots=True)
class CancelRequest:
    pid: int
    secret: int


@dataclass(slots=True)
class Query:
    sql: str


@dataclass(slots=True)
class Parse:
    name: str
    sql: str
    param_types: list[int]


@dataclass(slots=True)
class Bind:
    portal: str
    statement: str
    param_formats: list[int]
    params: list[bytes | None]
    result_formats: list[int]


@dataclass(slots=True)
class Describe:
    kind: str  # 'S' statement or 'P' portal
    name: str


@dataclass(slots=True)
class Execute:
    portal: str
    max_rows: int


@dataclass(slots=True)
class Close:
    kind: str
    name: str


@dataclass(slots=True)
class Sync:
    pass


@dataclass(slots=True)
class Flush:
    pass


@dataclass(slots=True)
class Terminate:
    pass


@dataclass(slots=True)
class PasswordMessage:
    """'p': a password, SASLInitialResponse or SASLResponse (meaning depends on state)."""

    data: bytes


@dataclass(slots=True)
class CopyData:
    data: bytes


@dataclass(slots=True)
class CopyDone:
    pass


@dataclass(slots=True)
class CopyFail:
    message: str


@dataclass(slots=True)
class Unsupported:
    """A typed message we recognise but do not implement (FunctionCall)."""

    type: bytes


class _Reader:
    """Cursor over one message body; every read checks the body's end."""

    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0
        self.end = len(buf)

    def cstr(self) -> str:
        i = self.buf.find(b"\0", self.pos)
        if i < 0:
            raise ProtocolError("invalid string in message")
        s = self.buf[self.pos : i]
        self.pos = i + 1
        try:
            return s.decode()
        except UnicodeDecodeError:
            raise ProtocolError("invalid UTF-8 in message") from None

    def i16(self) -> int:
        if self.pos + 2 > self.end:
            raise ProtocolError("insufficient data left in message")
        (v,) = _I16.unpack_from(self.buf, self.pos)
        self.pos += 2
        return v

    def i32(self) -> int:
        if self.pos + 4 > self.end:
            raise ProtocolError("insufficient data left in message")
        (v,) = _I32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return v

    def u32(self) -> int:
        if self.pos + 4 > self.end:
            raise ProtocolError("insufficient data left in message")
        (v,) = _U32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return v

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > self.end:
            raise ProtocolError("insufficient data left in message")
        v = self.buf[self.pos : self.pos + n]
        self.pos += n
        return v

    def i16_list(self) -> list[int]:
        n = self.i16()
        if n < 0:
            raise ProtocolError("negative count in message")
        return [self.i16() for _ in range(n)]

    def done(self) -> None:
        if self.pos != self.end:
            raise ProtocolError("invalid message format")


def _parse(r: _Reader) -> Parse:
    name = r.cstr()
    sql = r.cstr()
    n = r.i16()
    if n < 0:
        raise ProtocolError("negative count in message")
    types = [r.u32() for _ in range(n)]
    return Parse(name, sql, types)


def _i16_array(buf: bytes, pos: int) -> tuple[list[int], int]:
    """An int16 count and that many int16s at ``pos``: (values, position after them).
    Raises struct.error past the end."""
    (n,) = _I16.unpack_from(buf, pos)
    if n < 0:
        raise ProtocolError("negative count in message")
    return (list(struct.unpack_from(f">{n}h", buf, pos + 2)) if n else []), pos + 2 + 2 * n


def _bind(r: _Reader) -> Bind:
    """Bind is the one message of every prepared execution, so it is decoded in one pass
    over the body (``_Reader``'s per-field calls cost ~3 µs here); the same checks."""
    buf, end = r.buf, r.end
    i = buf.find(0, 0, end)
    j = buf.find(0, i + 1, end) if i >= 0 else -1
    if j < 0:
        raise ProtocolError("invalid string in message")
    try:
        portal = buf[:i].decode()
        stmt = buf[i + 1 : j].decode()
    except UnicodeDecodeError:
        raise ProtocolError("invalid UTF-8 in message") from None
    try:
        fmts, pos = _i16_array(buf, j + 1)
        (n,) = _I16.unpack_from(buf, pos)
        if n < 0:
            raise ProtocolError("negative count in message")
        pos += 2
        params: list[bytes | None] = []
        for _ in range(n):
            (ln,) = _I32.unpack_from(buf, pos)
            pos += 4
            if ln == -1:
                params.append(None)
                continue
            if ln < 0 or pos + ln > end:
                raise ProtocolError("insufficient data left in message")
            params.append(buf[pos : pos + ln])
            pos += ln
        rfmts, pos = _i16_array(buf, pos)
    except struct.error:
        raise ProtocolError("insufficient data left in message") from None
    if pos > end:
        raise ProtocolError("insufficient data left in message")
    r.pos = pos
    return Bind(portal, stmt, fmts, params, rfmts)


def _describe(r: _Reader) -> Describe:
    kind = r.take(1).decode("latin-1")
    if kind not in ("S", "P"):
        raise ProtocolError(f"invalid DESCRIBE message subtype {kind!r}")
    return Describe(kind, r.cstr())


def _close(r: _Reader) -> Close:
    kind = r.take(1).decode("latin-1")
    if kind not in ("S", "P"):
        raise ProtocolError(f"invalid CLOSE message subtype {kind!r}")
    return Close(kind, r.cstr())


_SYNC, _FLUSH, _TERM, _COPY_DONE = Sync(), Flush(), Terminate(), CopyDone()

_DECODERS: dict[int, Any] = {
    ord("Q"): lambda r: Query(r.cstr()),
    ord("P"): _parse,
    ord("B"): _bind,
    ord("D"): _describe,
    ord("E"): lambda r: Execute(r.cstr(), r.i32()),
    ord("C"): _close,
    ord("S"): lambda r: _SYNC,
    ord("H"): lambda r: _FLUSH,
    ord("X"): lambda r: _TERM,
    ord("p"): lambda r: PasswordMessage(r.take(r.end - r.pos)),
    ord("d"): lambda r: CopyData(r.take(r.end - r.pos)),
    ord("c"): lambda r: _COPY_DONE,
    ord("f"): lambda r: CopyFail(r.cstr()),
}
# The commonest short messages of a pipelined batch, decoded once: handlers only read
# messages, so one instance serves every occurrence.
_EMPTY_BODY: dict[int, Any] = {ord("S"): _SYNC, ord("H"): _FLUSH, ord("X"): _TERM, ord("c"): _COPY_DONE}
_COMMON: dict[tuple[int, bytes], Any] = {
    (ord("E"), b"\0\0\0\0\0"): Execute("", 0),
    (ord("D"), b"P\0"): Describe("P", ""),
    (ord("D"), b"S\0"): Describe("S", ""),
}
# The same, as whole frames (type byte, length, body): a batch's Describe, Execute and
# Sync are recognised by one dict lookup on their bytes.
_SHORT_FRAMES: dict[bytes, Any] = {
    **{bytes([t]) + b"\0\0\0\x04": msg for t, msg in _EMPTY_BODY.items()},
    **{bytes([t]) + _I32.pack(len(body) + 4) + body: msg for (t, body), msg in _COMMON.items()},
}
# Valid frontend messages we answer with "not supported" rather than as garbage.
_UNSUPPORTED = {ord(c) for c in "F"}


def decode_typed(type_byte: int, body: bytes) -> Any:
    dec = _DECODERS.get(type_byte)
    if dec is None:
        if type_byte in _UNSUPPORTED:
            return Unsupported(bytes([type_byte]))
        raise ProtocolError(f"invalid frontend message type {type_byte}")
    r = _Reader(body)
    msg = dec(r)
    r.done()
    return msg


def decode_untyped(body: bytes) -> Any:
    """Body of a startup-phase packet (after the length)."""
    r = _Reader(body)
    code = r.i32()
    if code == PROTOCOL_3:
        params: dict[str, str] = {}
        while True:
            key = r.cstr()
            if not key:
                break
            params[key] = r.cstr()
        r.done()
        return Startup(params)
    if code == SSL_REQUEST:
        r.done()
        return SSLRequest()
    if code == GSSENC_REQUEST:
        r.done()
        return GSSENCRequest()
    if code == CANCEL_REQUEST:
        msg = CancelRequest(r.i32(), r.i32())
        r.done()
        return msg
    major, minor = code >> 16, code & 0xFFFF
    raise ProtocolError(f"unsupported frontend protocol {major}.{minor}: server supports 3.0 to 3.0")


class FrameParser:
    """Incremental splitter of the client's byte stream into decoded messages.

    ``startup`` is True until the connection has seen its StartupMessage; the owner
    flips it with ``expect_typed()``.
    """

    __slots__ = ("buf", "startup", "max_message")

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.buf = bytearray()
        self.startup = True
        self.max_message = max_message

    def expect_typed(self) -> None:
        self.startup = False

    def feed(self, data: bytes) -> list[Any]:
        """Append ``data``; return the complete messages (may be empty). Raises ProtocolError.

        In the startup phase at most one packet is returned, because the packet that
        follows may be typed (after a StartupMessage) and only the caller knows.

        Typed messages are cut from ``data`` itself when nothing is pending (the common
        case: a client's batch arrives whole), and the tail of an incomplete message waits
        in ``buf``; bytes are joined again only once that message is complete, so a large
        message arriving in many pieces is copied once, not once per piece.
        """
        if self.startup:
            return self._feed_startup(data)
        buf = self.buf
        if buf:
            buf += data
            n = len(buf)
            if n < 5:
                return []
            (ln,) = _I32.unpack_from(buf, 1)
            if 4 <= ln <= self.max_message and n < 1 + ln:
                return []  # the pending message is still incomplete
            data = bytes(buf)
            buf.clear()
        elif type(data) is not bytes:
            data = bytes(data)
        out: list[Any] = []
        pos = 0
        n = len(data)
        cap = self.max_message
        short = _SHORT_FRAMES
        try:
            while n - pos >= 5:
                (ln,) = _I32.unpack_from(data, pos + 1)
                end = pos + 1 + ln
                if ln <= 9:
                    msg = short.get(data[pos:end])
                    if msg is not None:
                        out.append(msg)
                        pos = end
                        continue
                    if ln < 4:
                        raise ProtocolError(f"invalid message length {ln}")
                elif ln > cap:
                    raise ProtocolError(f"message of {ln} bytes exceeds the limit of {cap}")
                if end > n:
                    break
                out.append(decode_typed(data[pos], data[pos + 5 : end]))
                pos = end
        finally:
            if pos < n:
                buf += memoryview(data)[pos:]
        return out

    def _feed_startup(self, data: bytes) -> list[Any]:
        buf = self.buf
        buf += data
        n = len(buf)
        if n < 4:
            return []
        (ln,) = _I32.unpack_from(buf, 0)
        if ln < 8 or ln > MAX_STARTUP:
            del buf[:]
            raise ProtocolError("invalid length of startup packet")
        if n < ln:
            return []
        msg = decode_untyped(bytes(buf[4:ln]))
        del buf[:ln]
        return [msg]

    def has_pending(self) -> bool:
        return bool(self.buf)


# --------------------------------------------------------------------------- backend


def _cstr(s: str) -> bytes:
    return s.encode() + b"\0"


def _frame(t: bytes, body: bytes) -> bytes:
    return t + _I32.pack(len(body) + 4) + body


AUTH_OK = b"R\x00\x00\x00\x08\x00\x00\x00\x00"
AUTH_CLEARTEXT = b"R\x00\x00\x00\x08\x00\x00\x00\x03"
PARSE_COMPLETE = b"1\x00\x00\x00\x04"
BIND_COMPLETE = b"2\x00\x00\x00\x04"
CLOSE_COMPLETE = b"3\x00\x00\x00\x04"
NO_DATA = b"n\x00\x00\x00\x04"
EMPTY_QUERY = b"I\x00\x00\x00\x04"
PORTAL_SUSPENDED = b"s\x00\x00\x00\x04"
READY = {s: b"Z\x00\x00\x00\x05" + s.encode() for s in "ITE"}


def auth_md5_msg(salt: bytes) -> bytes:
    return _frame(b"R", _I32.pack(5) + salt)


def auth_sasl_msg(mechanisms: Sequence[str]) -> bytes:
    return _frame(b"R", _I32.pack(10) + b"".join(_cstr(m) for m in mechanisms) + b"\0")


def auth_sasl_continue_msg(data: bytes) -> bytes:
    return _frame(b"R", _I32.pack(11) + data)


def auth_sasl_final_msg(data: bytes) -> bytes:
    return _frame(b"R", _I32.pack(12) + data)


def parameter_status_msg(name: str, value: str) -> bytes:
    return _frame(b"S", _cstr(name) + _cstr(value))


@functools.lru_cache(maxsize=64)
def _status_block(items: tuple[tuple[str, str], ...]) -> bytes:
    return b"".join(parameter_status_msg(k, v) for k, v in items)


def parameter_status_block(status: dict[str, str]) -> bytes:
    """The ParameterStatus messages of a login, in one piece.  Logins mostly report the same
    dozen settings, so the encoded block is cached by their values."""
    return _status_block(tuple(status.items()))


def backend_key_data_msg(pid: int, secret: int) -> bytes:
    return _frame(b"K", _II.pack(pid, secret))


def ready_msg(status: str) -> bytes:
    return READY.get(status) or READY["I"]


@functools.lru_cache(maxsize=1024)
def command_complete_msg(tag: str) -> bytes:
    """CommandComplete; tags repeat ("SELECT 1", "UPDATE 1"), so the frames are kept."""
    return _frame(b"C", _cstr(tag))


def parameter_description_msg(oids: Sequence[int]) -> bytes:
    return _frame(b"t", _I16.pack(len(oids)) + b"".join(_U32.pack(o & 0xFFFFFFFF) for o in oids))


_FIELD = struct.Struct(">IhIhih")


def row_description_msg(columns: Sequence[Any], formats: Sequence[int] | None = None) -> bytes:
    """``columns`` are engine.api.Column; ``formats`` one code per column (None: text)."""
    parts = [_I16.pack(len(columns))]
    for i, c in enumerate(columns):
        fmt = formats[i] if formats else 0
        parts.append(_cstr(c.name))
        parts.append(
            _FIELD.pack(c.table_oid, c.column_number, c.type_oid & 0xFFFFFFFF, c.type_size, c.type_mod, fmt)
        )
    return _frame(b"T", b"".join(parts))


def data_row_msg(cells: Sequence[bytes | None]) -> bytes:
    """One DataRow from already-encoded cells (None = SQL NULL)."""
    if len(cells) == 1:
        c = cells[0]
        if c is None:
            return b"D\x00\x00\x00\x0a\x00\x01\xff\xff\xff\xff"
        n = len(c)
        return b"D" + _I32.pack(n + 10) + b"\x00\x01" + _I32.pack(n) + c
    parts = [b"", _I16.pack(len(cells))]
    pack = _I32.pack
    for c in cells:
        if c is None:
            parts.append(b"\xff\xff\xff\xff")
        else:
            parts.append(pack(len(c)))
            parts.append(c)
    body = b"".join(parts)
    return b"D" + pack(len(body) + 4) + body


def error_fields(
    severity: str,
    sqlstate: str,
    message: str,
    detail: str | None = None,
    hint: str | None = None,
    position: int | None = None,
    where: str | None = None,
) -> bytes:
    parts = [b"S", _cstr(severity), b"V", _cstr(severity), b"C", _cstr(sqlstate), b"M", _cstr(message)]
    if detail is not None:
        parts += [b"D", _cstr(detail)]
    if hint is not None:
        parts += [b"H", _cstr(hint)]
    if position is not None:
        parts += [b"P", _cstr(str(position))]
    if where is not None:
        parts += [b"W", _cstr(where)]
    parts.append(b"\0")
    return b"".join(parts)


def error_response_msg(
    severity: str,
    sqlstate: str,
    message: str,
    detail: str | None = None,
    hint: str | None = None,
    position: int | None = None,
    where: str | None = None,
) -> bytes:
    return _frame(b"E", error_fields(severity, sqlstate, message, detail, hint, position, where))


def notice_response_msg(message: str, severity: str = "NOTICE", sqlstate: str = "00000") -> bytes:
    return _frame(b"N", error_fields(severity, sqlstate, message))


def copy_in_response_msg(ncols: int, binary: bool = False) -> bytes:
    """'G': text (or binary) format overall and per column."""
    fmt = b"\1" if binary else b"\0"
    return _frame(b"G", fmt + _I16.pack(ncols) + (b"\0" + fmt) * ncols)


def copy_out_response_msg(ncols: int, binary: bool = False) -> bytes:
    fmt = b"\1" if binary else b"\0"
    return _frame(b"H", fmt + _I16.pack(ncols) + (b"\0" + fmt) * ncols)


def copy_data_msg(data: bytes) -> bytes:
    return b"d" + _I32.pack(len(data) + 4) + data


COPY_DONE = b"c\x00\x00\x00\x04"
