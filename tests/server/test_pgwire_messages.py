"""FrameParser/decoders on real bytes: split feeds, lying lengths, oversized frames."""

from __future__ import annotations

import struct

import pytest

from server.pgwire import messages as m
import pgwire_client as wire


def typed_parser(cap: int = m.DEFAULT_MAX_MESSAGE) -> m.FrameParser:
    p = m.FrameParser(cap)
    p.expect_typed()
    return p


def test_startup_packet_and_ssl_request():
    p = m.FrameParser()
    assert p.feed(struct.pack(">ii", 8, m.SSL_REQUEST)) == [m.SSLRequest()]
    data = wire.startup("bob", "x")
    assert p.feed(data[:7]) == []
    assert p.feed(data[7:]) == [m.Startup({"user": "bob", "database": "x"})]


def test_byte_by_byte_feed_yields_the_same_messages():
    data = wire.parse("select $1", "s1", (23,)) + wire.bind("p", "s1", (b"5", None), (1,)) + wire.execute("p", 3) + wire.SYNC
    p = typed_parser()
    got = []
    for i in range(len(data)):
        got += p.feed(data[i : i + 1])
    assert got == [
        m.Parse("s1", "select $1", [23]),
        m.Bind("p", "s1", [], [b"5", None], [1]),
        m.Execute("p", 3),
        m.Sync(),
    ]
    assert not p.has_pending()


def test_oversized_message_refused_from_its_header():
    p = typed_parser(cap=1000)
    with pytest.raises(m.ProtocolError):
        p.feed(b"Q" + struct.pack(">i", 1001))  # no body sent at all


def test_length_below_four_and_unknown_type_rejected():
    with pytest.raises(m.ProtocolError):
        typed_parser().feed(b"Q" + struct.pack(">i", 3))
    with pytest.raises(m.ProtocolError):
        typed_parser().feed(wire.msg(b"\x01", b""))


def test_body_fields_that_overrun_the_frame_are_rejected():
    # Bind claims one parameter of 100 bytes but the frame ends first.
    body = b"\0\0" + struct.pack(">hh", 0, 1) + struct.pack(">i", 100) + b"abc"
    with pytest.raises(m.ProtocolError):
        typed_parser().feed(wire.msg(b"B", body))
    # Trailing garbage after a complete Sync body.
    with pytest.raises(m.ProtocolError):
        typed_parser().feed(wire.msg(b"S", b"junk"))


def test_bad_protocol_version_rejected():
    with pytest.raises(m.ProtocolError, match="unsupported frontend protocol"):
        m.FrameParser().feed(struct.pack(">ii", 8, 2 << 16))


def test_backend_encoders():
    assert m.ready_msg("T") == b"Z\x00\x00\x00\x05T"
    assert m.data_row_msg([b"1", None]) == b"D" + struct.pack(">ih", 15, 2) + struct.pack(">i", 1) + b"1" + b"\xff\xff\xff\xff"
    err = m.error_response_msg("ERROR", "42601", "boom", hint="h", position=3)
    assert wire.fields(err[5:]) == {"S": "ERROR", "V": "ERROR", "C": "42601", "M": "boom", "H": "h", "P": "3"}
