"""The little of the PostgreSQL wire protocol the endpoint proxy needs (no I/O here).

The proxy never parses a relayed session; it only speaks to a client itself when no
backend can take the connection.  Then it must get the client to the point where it
reads an ErrorResponse:

    client -> proxy   SSLRequest      int32 len=8, int32 80877103   -> proxy answers b"N"
                      GSSENCRequest   int32 len=8, int32 80877104   -> proxy answers b"N"
                      StartupMessage  int32 len, int32 196608, k\\0v\\0...\\0
                      CancelRequest   int32 len=16, int32 80877102, pid, key
    proxy -> client   ErrorResponse   'E', int32 len, ('S'|'V'|'C'|'M') str\\0 ..., \\0

``Refusal.feed(bytes)`` consumes what the client sent and returns what to write back plus
whether the exchange is over (close the connection after writing).
"""

from __future__ import annotations

import struct

from engine.errors import SqlError

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
_I32 = struct.Struct(">i")
_HEAD = struct.Struct(">ii")


def error_response(err: SqlError) -> bytes:
    """Encode ``err`` as an ErrorResponse message (severity, SQLSTATE, message)."""
    fields = [
        b"S" + err.severity.encode(),
        b"V" + err.severity.encode(),
        b"C" + err.sqlstate.encode(),
        b"M" + err.message.encode(),
    ]
    if err.detail:
        fields.append(b"D" + err.detail.encode())
    if err.hint:
        fields.append(b"H" + err.hint.encode())
    body = b"\0".join(fields) + b"\0\0"
    return b"E" + _I32.pack(len(body) + 4) + body


class Refusal:
    """Answers a client's opening packets with 'N' for encryption requests and then an
    ErrorResponse carrying ``err`` in place of authentication."""

    def __init__(self, err: SqlError) -> None:
        self._err = err
        self._buf = bytearray()

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        self._buf += data
        out = bytearray()
        while len(self._buf) >= 8:
            length, code = _HEAD.unpack_from(self._buf, 0)
            if length in (8,) and code in (SSL_REQUEST, GSSENC_REQUEST):
                del self._buf[:8]
                out += b"N"
                continue
            if code == CANCEL_REQUEST:
                return bytes(out), True  # nothing to cancel on a backend we never reached
            # A startup message (or garbage): answer with the error right away.
            out += error_response(self._err)
            return bytes(out), True
        return bytes(out), False
