"""Framing for Borealis' internal TCP protocols (storage nodes, instance admin/redo).

Every frame is a 4-byte big-endian length followed by a msgpack body encoding one
``msgspec.Struct`` of a tagged union (the ``type`` tag names the message).  No I/O here:
``FrameDecoder.feed(bytes)`` returns the messages completed so far.
"""

from __future__ import annotations

import struct
from typing import Any

import msgspec

MAX_FRAME = 256 * 1024 * 1024
_LEN = struct.Struct(">I")


class FrameError(Exception):
    pass


class Codec:
    """Encodes/decodes frames of one message union."""

    def __init__(self, union: Any) -> None:
        self._enc = msgspec.msgpack.Encoder()
        self._dec = msgspec.msgpack.Decoder(union)

    def frame(self, msg: Any) -> bytes:
        body = self._enc.encode(msg)
        return _LEN.pack(len(body)) + body

    def decoder(self) -> "FrameDecoder":
        return FrameDecoder(self._dec)


class FrameDecoder:
    def __init__(self, dec: msgspec.msgpack.Decoder) -> None:
        self._dec = dec
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        self._buf += data
        out = []
        buf = self._buf
        pos = 0
        while len(buf) - pos >= 4:
            (n,) = _LEN.unpack_from(buf, pos)
            if n > MAX_FRAME:
                raise FrameError(f"frame of {n} bytes exceeds limit")
            if len(buf) - pos - 4 < n:
                break
            body = bytes(buf[pos + 4 : pos + 4 + n])
            pos += 4 + n
            try:
                out.append(self._dec.decode(body))
            except msgspec.DecodeError as e:
                raise FrameError(str(e)) from e
        if pos:
            del buf[:pos]
        return out
