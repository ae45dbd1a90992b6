"""Raw-socket client helpers for pg-wire tests: build frontend messages, read backend ones."""

from __future__ import annotations

import socket
import struct


def startup(user: str = "alice", database: str = "db", application_name: str = "") -> bytes:
    body = struct.pack(">i", 196608) + b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0"
    if application_name:
        body += b"application_name\0" + application_name.encode() + b"\0"
    body += b"\0"
    return struct.pack(">i", len(body) + 4) + body


def msg(t: bytes, body: bytes = b"") -> bytes:
    return t + struct.pack(">i", len(body) + 4) + body


def query(sql: str) -> bytes:
    return msg(b"Q", sql.encode() + b"\0")


def parse(sql: str, name: str = "", types: tuple[int, ...] = ()) -> bytes:
    return msg(b"P", name.encode() + b"\0" + sql.encode() + b"\0" + struct.pack(">h", len(types))
               + b"".join(struct.pack(">I", t) for t in types))


def bind(portal: str = "", stmt: str = "", params: tuple[bytes | None, ...] = (), result_formats: tuple[int, ...] = ()) -> bytes:
    body = portal.encode() + b"\0" + stmt.encode() + b"\0" + struct.pack(">h", 0) + struct.pack(">h", len(params))
    for p in params:
        body += struct.pack(">i", -1) if p is None else struct.pack(">i", len(p)) + p
    body += struct.pack(">h", len(result_formats)) + b"".join(struct.pack(">h", f) for f in result_formats)
    return msg(b"B", body)


def describe(kind: str, name: str = "") -> bytes:
    return msg(b"D", kind.encode() + name.encode() + b"\0")


def execute(portal: str = "", max_rows: int = 0) -> bytes:
    return msg(b"E", portal.encode() + b"\0" + struct.pack(">i", max_rows))


SYNC = msg(b"S")
FLUSH = msg(b"H")
TERMINATE = msg(b"X")


class Conn:
    def __init__(self, port: int, *, do_startup: bool = True, application_name: str = "") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        if do_startup:
            self.send(startup(application_name=application_name))
            self.until_ready()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_msg(self) -> tuple[bytes, bytes] | None:
        """One (type, body) or None at EOF."""
        while len(self.buf) < 5 or len(self.buf) < 1 + struct.unpack(">i", self.buf[1:5])[0]:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        ln = struct.unpack(">i", self.buf[1:5])[0]
        t, body = self.buf[:1], self.buf[5 : 1 + ln]
        self.buf = self.buf[1 + ln :]
        return t, body

    def until_ready(self) -> list[tuple[bytes, bytes]]:
        out = []
        while True:
            m = self.read_msg()
            assert m is not None, f"connection closed; got {out}"
            out.append(m)
            if m[0] == b"Z":
                return out

    def read_all(self) -> list[tuple[bytes, bytes]]:
        """Messages until the server closes the connection."""
        out = []
        while True:
            try:
                m = self.read_msg()
            except (ConnectionResetError, socket.timeout):
                return out
            if m is None:
                return out
            out.append(m)

    def close(self) -> None:
        self.sock.close()


def fields(body: bytes) -> dict[str, str]:
    """ErrorResponse/NoticeResponse body -> {code: value}."""
    out = {}
    for part in body.rstrip(b"\0").split(b"\0"):
        if part:
            out[chr(part[0])] = part[1:].decode()
    return out


def types_of(msgs: list[tuple[bytes, bytes]]) -> bytes:
    return b"".join(t for t, _ in msgs)
