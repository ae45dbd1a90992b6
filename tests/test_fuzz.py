"""Protocol fuzzing of a real instance (the shared cluster's writer, on its own pg port).

Thousands of random and mutated frontend messages, in four groups:

* bad framing: an unknown type byte, a length below 4, a length above the limit (sent
  without its body: the server must refuse it from the header alone) -> ErrorResponse
  08P01 FATAL, then the connection is closed;
* one random-bodied message of each valid type after a good startup, then Sync + a probe
  query: either 08P01 (or another error, never XX000) and a closed connection, or the
  probe is answered (the session survived);
* mutated sequences of well-formed messages (byte flips, truncation, junk inserted),
  then the client half-closes: the server must answer in well-formed backend frames
  without XX000 and close within the time limit (no hang);
* random startup-phase packets: same, before authentication.

A session opened beside the fuzzing keeps an open transaction and must commit after it;
the writer process must be the same process at the end.  Internal errors would also
fail the shared cluster's teardown (it rejects tracebacks in the logs).

The examples are derandomized (same cases every run, so CI cannot flake); set
BOREALIS_FUZZ_RANDOM=1 to explore new ones.
"""

from __future__ import annotations

import os
import socket
import struct
import time
import uuid

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import server.pgwire.messages as m

SETTINGS = dict(
    deadline=None,
    database=None,
    derandomize=not os.environ.get("BOREALIS_FUZZ_RANDOM"),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)
READ_TIMEOUT = 10.0
BACKEND_TYPES = set(b"RSKZTDCEINnt123sGHdcAV")
VALID_TYPES = b"QPBDECSHXpdcfF"
PROBE = b"S\x00\x00\x00\x04" + b"Q" + struct.pack(">i", 4 + len(b"select 4242\0")) + b"select 4242\0"
COUNT = {"messages": 0}


def _frame(t: int, body: bytes) -> bytes:
    return bytes([t]) + struct.pack(">i", len(body) + 4) + body


def _startup(user: str = "postgres", database: str = "postgres") -> bytes:
    body = struct.pack(">i", m.PROTOCOL_3) + b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0\0"
    return struct.pack(">i", len(body) + 4) + body


def _cstr(s: str) -> bytes:
    return s.encode() + b"\0"


TEMPLATES = [
    _frame(ord("Q"), _cstr("select 1")),
    _frame(ord("Q"), _cstr("select $1")),
    _frame(ord("P"), _cstr("s1") + _cstr("select $1::int + 1") + struct.pack(">hI", 1, 23)),
    _frame(ord("P"), _cstr("") + _cstr("select 'x'") + struct.pack(">h", 0)),
    _frame(ord("B"), _cstr("") + _cstr("s1") + struct.pack(">hhh", 1, 0, 1) + struct.pack(">i", 1) + b"7"
           + struct.pack(">hh", 1, 1)),
    _frame(ord("B"), _cstr("p1") + _cstr("") + struct.pack(">hhh", 0, 0, 0)),
    _frame(ord("D"), b"S" + _cstr("s1")),
    _frame(ord("D"), b"P" + _cstr("")),
    _frame(ord("E"), _cstr("") + struct.pack(">i", 0)),
    _frame(ord("E"), _cstr("p1") + struct.pack(">i", 1)),
    _frame(ord("C"), b"S" + _cstr("s1")),
    _frame(ord("C"), b"P" + _cstr("p1")),
    b"S\x00\x00\x00\x04",
    b"H\x00\x00\x00\x04",
    _frame(ord("d"), b"1\t2\n"),
    b"c\x00\x00\x00\x04",
    _frame(ord("f"), _cstr("stop")),
    _frame(ord("p"), _cstr("secret")),
]


@pytest.fixture(scope="module")
def target(cluster):
    """(host, writer instance port) plus a healthy session in an open transaction beside it."""
    conf = cluster.launcher.conf
    writer = conf.writer()
    pid = cluster.launcher.pid(writer.name)
    table = "fuzz_" + uuid.uuid4().hex[:8]
    side = psycopg.connect(cluster.instance_dsn(writer.name))
    side.execute(f"create table {table} (id int primary key)")
    side.commit()
    side.execute(f"insert into {table} values (1)")  # transaction left open during the fuzzing
    yield conf.host, writer.port
    side.execute(f"insert into {table} values (2)")
    side.commit()
    assert side.execute(f"select count(*) from {table}").fetchone() == (2,)
    side.close()
    with psycopg.connect(cluster.instance_dsn(writer.name)) as c:  # new sessions still work
        assert c.execute(f"select count(*) from {table}").fetchone() == (2,)
        c.execute(f"drop table {table}")
        c.commit()
    assert cluster.launcher.pid(writer.name) == pid, "the writer process was restarted"


class Peer:
    """A raw client connection; reads backend frames until EOF with a deadline."""

    def __init__(self, addr: tuple[str, int], startup: bool = True) -> None:
        self.sock = socket.create_connection(addr, timeout=READ_TIMEOUT)
        self.buf = b""
        if startup:
            self.sock.sendall(_startup())
            msgs, eof = self.read_until(lambda t, b: t == b"Z")
            assert not eof and msgs[-1][0] == b"Z", msgs

    def send(self, data: bytes, messages: int = 1) -> None:
        COUNT["messages"] += messages
        try:
            self.sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed first (allowed after an error)

    def read_until(self, stop, deadline: float = READ_TIMEOUT) -> tuple[list[tuple[bytes, bytes]], bool]:
        """Frames until ``stop(type, body)`` is true or EOF; (frames, eof). Fails on a hang."""
        out: list[tuple[bytes, bytes]] = []
        end = time.monotonic() + deadline
        while True:
            while len(self.buf) >= 5:
                t = self.buf[0]
                assert t in BACKEND_TYPES, f"server sent garbage type {t} after {out[-3:]}"
                (ln,) = struct.unpack_from(">i", self.buf, 1)
                assert 4 <= ln < 1 << 26, f"server sent bad length {ln}"
                if len(self.buf) < 1 + ln:
                    break
                msg = (self.buf[:1], self.buf[5 : 1 + ln])
                self.buf = self.buf[1 + ln :]
                out.append(msg)
                if stop(*msg):
                    return out, False
            left = end - time.monotonic()
            assert left > 0, f"server hung: no reply or close within {deadline}s; got {out[-5:]}"
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                chunk = b""
            except TimeoutError:
                raise AssertionError(f"server hung: no reply or close within {deadline}s; got {out[-5:]}") from None
            if not chunk:
                assert not self.buf, f"connection closed inside a frame: {self.buf[:20]!r}"
                return out, True
            self.buf += chunk

    def close(self) -> None:
        self.sock.close()


def _errors(msgs: list[tuple[bytes, bytes]]) -> list[dict[str, str]]:
    out = []
    for t, body in msgs:
        if t == b"E":
            f = {}
            for part in body.rstrip(b"\0").split(b"\0"):
                if part:
                    f[chr(part[0])] = part[1:].decode(errors="replace")
            out.append(f)
    return out


def _no_internal_errors(msgs: list[tuple[bytes, bytes]]) -> None:
    for f in _errors(msgs):
        assert f.get("C") != "XX000", f"internal error: {f}"


# --------------------------------------------------------------------------- bad framing


@settings(max_examples=150, **SETTINGS)
@given(kind=st.sampled_from(["type", "short", "huge"]),
       t=st.integers(0, 255).filter(lambda t: t not in VALID_TYPES),
       short=st.integers(-(2**31), 3), huge=st.integers(m.DEFAULT_MAX_MESSAGE + 1, 2**31 - 1),
       body=st.binary(max_size=40))
def test_bad_framing_is_refused(target, kind, t, short, huge, body):
    p = Peer(target)
    try:
        if kind == "type":
            p.send(_frame(t, body))
        elif kind == "short":
            p.send(b"Q" + struct.pack(">i", short) + body)
        else:  # only the header: the body never comes, the refusal must not wait for it
            p.send(b"d" + struct.pack(">i", huge))
        msgs, eof = p.read_until(lambda *_: False, deadline=5)
        assert eof
        errs = _errors(msgs)
        assert len(errs) == 1 and errs[0]["C"] == "08P01" and errs[0]["S"] == "FATAL", msgs
    finally:
        p.close()


# --------------------------------------------------------------------------- random bodies


def _answered(msgs: list[tuple[bytes, bytes]]) -> bool:
    return any(t == b"D" and b"4242" in b for t, b in msgs)


@settings(max_examples=500, **SETTINGS)
@given(t=st.sampled_from(list(VALID_TYPES)), body=st.binary(max_size=64) | st.sampled_from(
    [b"", b"\0", b"\0\0", b"\xff\xff\xff\xff", b"S\0", b"P\0", b"x\0", b"\0\xff\xff", b"\0\0\x7f\xff"]))
def test_random_bodies_error_or_survive(target, t, body):
    p = Peer(target)
    try:
        p.send(_frame(t, body) + PROBE, messages=3)
        msgs, eof = _read_probe(p)
        _no_internal_errors(msgs)
        if eof:
            if t != ord("X"):
                errs = _errors(msgs)
                assert errs and errs[-1]["C"] == "08P01" and errs[-1]["S"] == "FATAL", msgs
        else:
            assert _answered(msgs), msgs
    finally:
        p.close()


def _read_probe(p: Peer) -> tuple[list[tuple[bytes, bytes]], bool]:
    seen: list[tuple[bytes, bytes]] = []

    def stop(t: bytes, body: bytes) -> bool:
        seen.append((t, body))
        return t == b"Z" and _answered(seen)

    return p.read_until(stop)


# --------------------------------------------------------------------------- mutated sequences


@st.composite
def mutated_stream(draw) -> tuple[bytes, int]:
    picks = draw(st.lists(st.integers(0, len(TEMPLATES) - 1), min_size=1, max_size=20))
    data = bytearray(b"".join(TEMPLATES[i] for i in picks))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and pos < len(data):
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        elif pos < len(data):
            del data[pos : pos + draw(st.integers(1, 8))]
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data), len(picks)


@settings(max_examples=400, **SETTINGS)
@given(stream=mutated_stream())
def test_mutated_sequences_never_hang_or_crash(target, stream):
    data, n = stream
    p = Peer(target)
    try:
        p.send(data, messages=n)
        p.sock.shutdown(socket.SHUT_WR)
        msgs, eof = p.read_until(lambda *_: False)
        assert eof
        _no_internal_errors(msgs)
    finally:
        p.close()


# --------------------------------------------------------------------------- startup phase


@st.composite
def startup_packet(draw) -> bytes:
    code = draw(st.sampled_from([m.PROTOCOL_3, m.SSL_REQUEST, m.GSSENC_REQUEST, m.CANCEL_REQUEST,
                                 196609, 131072, 0, -1]) | st.integers(-(2**31), 2**31 - 1))
    if code == m.PROTOCOL_3 and draw(st.booleans()):
        pairs = draw(st.lists(st.tuples(st.sampled_from(["user", "database", "options", "application_name", "x"]),
                                        st.text(max_size=12)), max_size=4))
        body = b"".join(k.encode() + b"\0" + v.encode() + b"\0" for k, v in pairs) + b"\0"
    else:
        body = draw(st.binary(max_size=32))
    packet = struct.pack(">i", code) + body
    length = draw(st.sampled_from([len(packet) + 4]) | st.integers(-5, 20000))
    return struct.pack(">i", length) + packet


@settings(max_examples=300, **SETTINGS)
@given(packets=st.lists(startup_packet(), min_size=1, max_size=3))
def test_random_startup_packets(target, packets):
    p = Peer(target, startup=False)
    try:
        p.send(b"".join(packets), messages=len(packets))
        p.sock.shutdown(socket.SHUT_WR)
        end = time.monotonic() + READ_TIMEOUT
        raw = b""
        while True:  # raw bytes: 'S'/'N' answers are not framed
            p.sock.settimeout(max(0.01, end - time.monotonic()))
            try:
                chunk = p.sock.recv(65536)
            except ConnectionResetError:
                break
            except TimeoutError:
                raise AssertionError("server hung in the startup phase") from None
            if not chunk:
                break
            raw += chunk
        assert b"CXX000" not in raw, raw
    finally:
        p.close()

