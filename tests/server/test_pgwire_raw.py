"""Raw-socket protocol tests: extended-query details and malformed input, against the
writer endpoint of the shared cluster (fixture ``pg``)."""

from __future__ import annotations

import socket
import struct
import threading

import pgwire_client as w


def ok_after(pg) -> None:
    """A fresh connection still gets answers (the server survived)."""
    c = w.Conn(pg.port)
    c.send(w.query("SELECT 1"))
    msgs = c.until_ready()
    assert w.types_of(msgs) == b"TDCZ"
    c.close()


def test_startup_sequence_after_gssenc_refusal(pg):
    c = w.Conn(pg.port, do_startup=False)
    c.send(struct.pack(">ii", 8, 80877104))  # GSSENCRequest: refused, the client goes on in plaintext
    assert c.sock.recv(1) == b"N"
    c.send(w.startup())
    msgs = c.until_ready()
    kinds = w.types_of(msgs)
    assert kinds.startswith(b"R") and kinds.endswith(b"KZ") and b"S" in kinds
    assert msgs[0][1] == b"\x00\x00\x00\x00"  # AuthenticationOk
    status = dict(tuple(b.split(b"\0")[:2]) for t, b in msgs if t == b"S")
    assert status[b"server_version"].startswith(b"15.") and status[b"client_encoding"] == b"UTF8"
    assert msgs[-1] == (b"Z", b"I")


def test_empty_query(pg):
    c = w.Conn(pg.port)
    c.send(w.query("  ;  "))
    assert w.types_of(c.until_ready()) == b"IZ"


def test_row_limited_execute_suspends_and_resumes(pg):
    c = w.Conn(pg.port)
    c.send(w.query("BEGIN"))
    c.until_ready()
    c.send(w.parse("SELECT * FROM wire_gen ORDER BY i", "s") + w.bind("cur", "s") + w.describe("P", "cur")
           + w.execute("cur", 4) + w.SYNC)
    msgs = c.until_ready()
    assert w.types_of(msgs) == b"12T" + b"D" * 4 + b"sZ"
    assert msgs[-1] == (b"Z", b"T")
    c.send(w.execute("cur", 4) + w.execute("cur", 4) + w.SYNC)
    msgs = c.until_ready()
    assert w.types_of(msgs) == b"D" * 4 + b"s" + b"DDC" + b"Z"
    assert msgs[-2] == (b"C", b"SELECT 2\0")
    assert msgs[0][1].endswith(b"row4")  # continued where it stopped


def test_binary_result_format_and_params(pg):
    c = w.Conn(pg.port)
    c.send(w.parse("SELECT $1::int4, $2::text", "", (0, 0)) + w.describe("S")
           + w.bind("", "", (b"41", b"hi"), (1,)) + w.execute() + w.SYNC)
    msgs = c.until_ready()
    assert w.types_of(msgs) == b"1tT2DCZ"
    assert msgs[1][1] == struct.pack(">hII", 2, 23, 25)
    row = msgs[4][1]
    assert row == struct.pack(">hi", 2, 4) + struct.pack(">i", 41) + struct.pack(">i", 2) + b"hi"


def test_error_in_extended_mode_skips_to_sync(pg):
    c = w.Conn(pg.port)
    c.send(w.parse("bad stmt", "") + w.bind() + w.describe("P") + w.execute() + w.SYNC)
    msgs = c.until_ready()
    assert w.types_of(msgs) == b"EZ"
    f = w.fields(msgs[0][1])
    assert f["C"] == "42601" and f["S"] == "ERROR" and f["P"] == "1"
    c.send(w.bind("", "nope") + w.execute() + w.SYNC)
    msgs = c.until_ready()
    assert w.types_of(msgs) == b"EZ" and w.fields(msgs[0][1])["C"] == "26000"
    c.send(w.parse("SELECT 1") + w.bind() + w.execute() + w.SYNC)
    assert w.types_of(c.until_ready()) == b"12DCZ"


def test_named_statement_lifecycle(pg):
    c = w.Conn(pg.port)
    c.send(w.parse("SELECT 1", "a") + w.parse("SELECT 1", "a") + w.SYNC)
    msgs = c.until_ready()
    assert w.types_of(msgs) == b"1EZ" and w.fields(msgs[1][1])["C"] == "42P05"
    c.send(w.msg(b"C", b"Sa\0") + w.bind("", "a") + w.SYNC)
    msgs = c.until_ready()
    assert w.types_of(msgs) == b"3EZ" and w.fields(msgs[1][1])["C"] == "26000"


def test_flush_sends_pending_output_without_sync(pg):
    c = w.Conn(pg.port)
    c.send(w.parse("SELECT 1", "f") + w.FLUSH)
    assert c.read_msg() == (b"1", b"")


def test_unknown_message_type_gives_08P01_and_close(pg):
    c = w.Conn(pg.port)
    c.send(w.msg(b"\x07", b"xx"))
    msgs = c.read_all()
    assert [w.fields(b)["C"] for t, b in msgs if t == b"E"] == ["08P01"]
    ok_after(pg)


def test_lying_length_gives_08P01_and_close(pg):
    c = w.Conn(pg.port)
    c.send(b"Q" + struct.pack(">i", 2) + b"SELECT 1\0")
    msgs = c.read_all()
    assert msgs and w.fields(msgs[-1][1])["C"] == "08P01"
    # Inner lengths that overrun their frame
    c = w.Conn(pg.port)
    c.send(w.msg(b"B", b"\0\0" + struct.pack(">hh", 0, 1) + struct.pack(">i", 999) + b"x"))
    msgs = c.read_all()
    assert msgs and w.fields(msgs[-1][1])["C"] == "08P01"
    ok_after(pg)


def test_oversized_message_refused_by_header(pg):
    c = w.Conn(pg.port)
    c.send(b"Q" + struct.pack(">i", 512 * 1024 * 1024))  # claims 512 MiB, sends nothing more
    msgs = c.read_all()
    assert msgs and w.fields(msgs[-1][1])["C"] == "08P01"
    assert "exceeds" in w.fields(msgs[-1][1])["M"]
    ok_after(pg)


def test_garbage_startup_and_abrupt_disconnect(pg):
    s = socket.create_connection(("127.0.0.1", pg.port))
    s.sendall(struct.pack(">ii", 8, 1234))
    assert s.recv(1) == b"E"
    s.close()
    app = "raw-abrupt"
    c = w.Conn(pg.port, application_name=app)
    c.send(w.query("BEGIN"))
    c.until_ready()
    assert pg.sessions(app) == 1
    c.sock.close()  # no Terminate
    ok_after(pg)
    assert pg.wait_sessions(app, 0) == 0  # the instance closed the session


def test_terminate_closes_session(pg):
    app = "raw-terminate"
    c = w.Conn(pg.port, application_name=app)
    assert pg.sessions(app) == 1
    c.send(w.TERMINATE)
    assert c.read_all() == []
    assert pg.wait_sessions(app, 0) == 0


def test_bind_param_count_mismatch(pg):
    c = w.Conn(pg.port)
    c.send(w.parse("SELECT $1::int4") + w.bind("", "", (b"1", b"2")) + w.SYNC)
    msgs = c.until_ready()
    assert w.types_of(msgs) == b"1EZ"
    assert "supplies 2 parameters" in w.fields(msgs[1][1])["M"]
    c.send(w.parse("SELECT $1::int4") + w.bind("", "", (b"x1",)) + w.SYNC)
    msgs = c.until_ready()
    assert w.fields(msgs[1][1])["C"] == "22P02"


WAITS = "SELECT pg_sleep(0.005)"  # really suspends (sleeps on the event loop)


def _batch(sql: str) -> bytes:
    return w.parse(sql) + w.bind() + w.describe("P") + w.execute() + w.SYNC


def test_pipelined_batches_answered_in_order_and_complete(pg):
    """Many extended-protocol batches in one write, some of whose statements really wait
    (the server carries on in a worker task), some not (answered in the same callback):
    every batch gets its complete reply, in order."""
    c = w.Conn(pg.port)
    plan = ["SELECT 1", WAITS, "SELECT * FROM wire_gen", "SELECT 1", WAITS] * 12
    c.send(b"".join(_batch(sql) for sql in plan))
    for sql in plan:
        msgs = c.until_ready()
        rows = {"SELECT 1": 1, WAITS: 1, "SELECT * FROM wire_gen": 10}[sql]
        assert w.types_of(msgs) == b"12T" + b"D" * rows + b"CZ", (sql, msgs)
    # simple queries pipelined around a waiting one, too
    c.send(w.query("SELECT 1") + w.query(WAITS) + w.query("SELECT 1"))
    assert [w.types_of(c.until_ready()) for _ in range(3)] == [b"TDCZ"] * 3
    c.close()
    ok_after(pg)


def test_error_mid_pipeline_skips_to_its_sync_only(pg):
    """An error in one batch of a pipeline skips that batch's remaining messages up to its
    Sync; the batches before and after it are answered normally."""
    c = w.Conn(pg.port)
    c.send(_batch(WAITS)
           + w.parse("bad stmt") + w.bind() + w.describe("P") + w.execute() + w.SYNC
           + w.parse("SELECT 1") + w.bind("", "", (b"1",)) + w.execute() + w.parse("SELECT 1", "n") + w.SYNC
           + _batch(WAITS) + _batch("SELECT 1"))
    assert w.types_of(c.until_ready()) == b"12TDCZ"
    msgs = c.until_ready()
    assert w.types_of(msgs) == b"EZ" and w.fields(msgs[0][1])["C"] == "42601"
    msgs = c.until_ready()  # Bind with a parameter too many: error, the rest skipped to Sync
    assert w.types_of(msgs) == b"1EZ" and w.fields(msgs[1][1])["C"] == "08P01"
    assert w.types_of(c.until_ready()) == b"12TDCZ"
    assert w.types_of(c.until_ready()) == b"12TDCZ"
    c.send(w.bind("", "n") + w.SYNC)  # the skipped Parse of "n" never happened
    msgs = c.until_ready()
    assert w.types_of(msgs) == b"EZ" and w.fields(msgs[0][1])["C"] == "26000"
    c.close()


def test_more_queued_messages_than_the_read_pause_limit(pg):
    """More pipelined messages than the server queues before it pauses reading: it must
    resume reading once it has worked through them (else the client waits forever)."""
    from server.pgwire.server import MAX_QUEUED

    n = MAX_QUEUED * 20  # 5-byte Syncs: one read of the socket holds thousands of them
    c = w.Conn(pg.port)
    c.sock.settimeout(30)
    payload = w.SYNC * n + w.query("SELECT 1")
    sender = threading.Thread(target=c.send, args=(payload,))
    sender.start()
    for _ in range(n):
        assert c.until_ready() == [(b"Z", b"I")]
    assert w.types_of(c.until_ready()) == b"TDCZ"
    sender.join()
    c.close()
