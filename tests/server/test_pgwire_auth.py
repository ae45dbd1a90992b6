"""Password authentication with real clients and raw exchanges, on ``hba_cluster`` (a cluster
password and roles with their own SCRAM or md5 verifiers; tests/server/conftest.py)."""

from __future__ import annotations

import asyncio
import hashlib
import struct
import subprocess

import asyncpg
import psycopg
import pytest

import pgwire_client as w
from cluster import env_without_pg


def test_scram_psql_good_and_bad_password(hba_cluster):
    base = ["psql", "-X", "-h", "127.0.0.1", "-p", str(hba_cluster.port), "-U", "bob", "-d", "db", "-At",
            "-c", "SELECT current_user"]
    r = subprocess.run(base, capture_output=True, text=True, timeout=30, env={**env_without_pg(), "PGPASSWORD": "bobpw"})
    assert r.returncode == 0, r.stderr
    assert r.stdout == "bob\n"
    r = subprocess.run(base, capture_output=True, text=True, timeout=30, env={**env_without_pg(), "PGPASSWORD": "nope"})
    assert r.returncode != 0
    assert 'password authentication failed for user "bob"' in r.stderr


def test_scram_psycopg_and_asyncpg(hba_cluster):
    with psycopg.connect(hba_cluster.dsn(user="bob", password="bobpw")) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("bob",)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(hba_cluster.dsn(user="bob", password="wrong"))

    async def main():
        c = await asyncpg.connect(host="127.0.0.1", port=hba_cluster.port, user="bob", database="db", password="bobpw")
        assert await c.fetchval("SELECT current_user") == "bob"
        await c.close()
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(host="127.0.0.1", port=hba_cluster.port, user="bob", database="db", password="x")

    asyncio.run(main())


def test_scram_verifier_only_is_kept():
    # The server context holds scramp's verifier, not the password itself.
    from server.auth import AuthConfig

    cfg = AuthConfig.build("s3cret")
    assert cfg.password is None and cfg.scram_verifier is not None
    assert "s3cret" not in repr(cfg)


def test_md5_raw(hba_cluster):
    """carol's hba line says md5 and her role holds an md5 verifier: the classic exchange."""
    def auth_request(c: w.Conn) -> bytes:
        c.send(w.startup("carol", "db"))
        t, body = c.read_msg()
        assert t == b"R" and struct.unpack(">i", body[:4])[0] == 5  # AuthenticationMD5Password
        return body[4:]

    c = w.Conn(hba_cluster.port, do_startup=False)
    salt = auth_request(c)
    inner = hashlib.md5(b"carolpwcarol").hexdigest().encode()
    c.send(w.msg(b"p", b"md5" + hashlib.md5(inner + salt).hexdigest().encode() + b"\0"))
    assert w.types_of(c.until_ready()).startswith(b"R")
    c.send(w.query("SELECT current_user"))
    assert (b"D", struct.pack(">hi", 1, 5) + b"carol") in c.until_ready()
    c = w.Conn(hba_cluster.port, do_startup=False)
    auth_request(c)
    c.send(w.msg(b"p", b"md5deadbeef\0"))
    msgs = c.read_all()
    f = w.fields(msgs[-1][1])
    assert f["C"] == "28P01" and f["S"] == "FATAL"
    assert f["M"] == 'password authentication failed for user "carol"'


def test_cleartext_with_psycopg(hba_cluster):
    """The role "clear" has a 'password' (cleartext) hba line."""
    with psycopg.connect(hba_cluster.dsn(user="clear", password="clearpw", sslmode="disable")) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("clear",)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(hba_cluster.dsn(user="clear", password="no", sslmode="disable"))
