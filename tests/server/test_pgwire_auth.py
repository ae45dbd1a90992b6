"""Password authentication: SCRAM-SHA-256 with real clients, md5 and cleartext raw."""

from __future__ import annotations

import asyncio
import hashlib
import os
import struct
import subprocess

import asyncpg
import psycopg
import pytest

import pgwire_client as w
from pgwire_fake import ServerThread


def test_scram_psql_good_and_bad_password(pg_scram):
    base = ["psql", "-X", "-h", "127.0.0.1", "-p", str(pg_scram.port), "-U", "bob", "-d", "db", "-At", "-c", "SELECT 1"]
    r = subprocess.run(base, capture_output=True, text=True, timeout=30, env={**os.environ, "PGPASSWORD": "s3cret"})
    assert r.returncode == 0, r.stderr
    assert r.stdout == "1\n"
    r = subprocess.run(base, capture_output=True, text=True, timeout=30, env={**os.environ, "PGPASSWORD": "nope"})
    assert r.returncode != 0
    assert 'password authentication failed for user "bob"' in r.stderr


def test_scram_psycopg_and_asyncpg(pg_scram):
    with psycopg.connect(pg_scram.dsn + " password=s3cret") as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(pg_scram.dsn + " password=wrong")

    async def main():
        c = await asyncpg.connect(host="127.0.0.1", port=pg_scram.port, user="alice", database="db", password="s3cret")
        assert await c.fetchval("SELECT 1") == 1
        await c.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(host="127.0.0.1", port=pg_scram.port, user="alice", database="db", password="x")

    asyncio.run(main())
    assert len(pg_scram.world.sessions) == 2  # failed logins never reached the session factory


def test_scram_verifier_only_is_kept(pg_scram):
    # The server context holds scramp's verifier, not the password itself.
    from server.auth import AuthConfig

    cfg = AuthConfig.build("s3cret")
    assert cfg.password is None and cfg.scram_verifier is not None
    assert "s3cret" not in repr(cfg)


def _auth_request(c: w.Conn) -> tuple[bytes, bytes]:
    c.send(w.startup("carol"))
    return c.read_msg()


def test_md5_raw():
    srv = ServerThread(password="pw", auth_method="md5")
    try:
        c = w.Conn(srv.port, do_startup=False)
        t, body = _auth_request(c)
        assert t == b"R" and struct.unpack(">i", body[:4])[0] == 5
        salt = body[4:]
        inner = hashlib.md5(b"pwcarol").hexdigest().encode()
        c.send(w.msg(b"p", b"md5" + hashlib.md5(inner + salt).hexdigest().encode() + b"\0"))
        assert w.types_of(c.until_ready()).startswith(b"R")
        c = w.Conn(srv.port, do_startup=False)
        _auth_request(c)
        c.send(w.msg(b"p", b"md5deadbeef\0"))
        msgs = c.read_all()
        f = w.fields(msgs[-1][1])
        assert f["C"] == "28P01" and f["S"] == "FATAL"
        assert f["M"] == 'password authentication failed for user "carol"'
    finally:
        srv.stop()


def test_cleartext_with_psycopg():
    srv = ServerThread(password="pw", auth_method="password")
    try:
        with psycopg.connect(srv.dsn + " password=pw") as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(srv.dsn + " password=no")
    finally:
        srv.stop()
