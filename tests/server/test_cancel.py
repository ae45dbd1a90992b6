"""CancelRequest on a real cluster: a statement waiting for a row lock is canceled (57014),
through the writer endpoint with TLS and through the reader endpoint (the proxy sends the
request to every instance, so it reaches the writer holding the session)."""

from __future__ import annotations

import socket
import struct
import threading
import time
import uuid

import psycopg

import pgwire_client as w


def _ports(cluster) -> dict[str, int]:
    return {e.name: e.port for e in cluster.launcher.conf.endpoints}


def _locked_table(cluster) -> tuple[str, psycopg.Connection]:
    name = "canc_" + uuid.uuid4().hex[:8]
    holder = psycopg.connect(cluster.writer_dsn, autocommit=True)
    holder.execute(f"create table {name} (id int primary key, v int)")
    holder.execute(f"insert into {name} values (1, 1)")
    holder.execute("begin")
    holder.execute(f"update {name} set v = 2 where id = 1")
    return name, holder


def test_cancel_lock_wait_through_writer_endpoint_with_tls(cluster):
    name, holder = _locked_table(cluster)
    try:
        ca = cluster.data_dir / "tls" / "ca.crt"
        waiter = psycopg.connect(cluster.writer_dsn + f"?sslmode=verify-ca&sslrootcert={ca}", autocommit=True)
        assert waiter.pgconn.ssl_in_use
        timer = threading.Timer(0.4, waiter.cancel)
        timer.start()
        t0 = time.monotonic()
        try:
            waiter.execute(f"update {name} set v = 3 where id = 1")
            raise AssertionError("the lock wait was not canceled")
        except psycopg.errors.QueryCanceled as e:
            assert e.sqlstate == "57014"
            assert str(e).strip() == "canceling statement due to user request"
        assert time.monotonic() - t0 < 5
        assert waiter.execute("select 1").fetchone() == (1,)  # the session goes on
        # A cancel with no statement running is ignored.
        waiter.cancel()
        time.sleep(0.2)
        assert waiter.execute("select 2").fetchone() == (2,)
        waiter.close()
        holder.execute("rollback")
        assert holder.execute(f"select v from {name}").fetchone() == (1,)
        holder.execute("begin")
    finally:
        holder.execute("rollback")
        holder.execute(f"drop table {name}")
        holder.close()


def test_cancel_request_sent_to_reader_endpoint_reaches_writer_session(cluster):
    name, holder = _locked_table(cluster)
    ports = _ports(cluster)
    try:
        c = w.Conn(ports["writer"], do_startup=False)
        c.send(w.startup("postgres", "postgres"))
        msgs = c.until_ready()
        pid, key = next(struct.unpack(">ii", b) for t, b in msgs if t == b"K")
        c.send(w.query(f"update {name} set v = 3 where id = 1"))
        time.sleep(0.3)
        # A wrong key cancels nothing.
        for k in (key ^ 1, key):
            s = w.Conn(ports["reader"], do_startup=False)
            s.send(struct.pack(">iiii", 16, 80877102, pid, k))
            assert s.read_all() == []  # the proxy closes without a reply
            s.close()
            if k != key:  # the statement must still be waiting: nothing to read
                c.sock.settimeout(0.8)
                try:
                    early = c.sock.recv(1, socket.MSG_PEEK)
                except TimeoutError:
                    early = None
                c.sock.settimeout(5)
                assert early is None, "a CancelRequest with a wrong key canceled the statement"
        got = c.until_ready()
        err = next(w.fields(b) for t, b in got if t == b"E")
        assert err["C"] == "57014" and err["M"] == "canceling statement due to user request"
        c.send(w.query("select 1"))
        assert b"D" in w.types_of(c.until_ready())
        c.close()
    finally:
        holder.execute("rollback")
        holder.execute(f"drop table {name}")
        holder.close()
