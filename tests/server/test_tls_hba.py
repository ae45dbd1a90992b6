"""TLS negotiation, host-based rules and per-user secrets on a pg-wire server with fake sessions."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct

import asyncpg
import psycopg
import pytest

import pgwire_client as w
from pgwire_fake import ServerThread
from server import auth, hba, tls


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    d = tmp_path_factory.mktemp("tlsdata")
    assert tls.ensure_certificates(d) is True
    assert tls.ensure_certificates(d) is False  # never overwritten
    return d


_BAD_PW = "FATAL:  password authentication failed for user"  # libpq does not expose the SQLSTATE here


def _dsn(port: int, **kw: str) -> str:
    base = {"host": "127.0.0.1", "port": str(port), "user": "alice", "dbname": "db"}
    base.update(kw)
    return " ".join(f"{k}={v}" for k, v in base.items())


def test_certificates_chain_to_the_ca(certs):
    assert oct((certs / "tls" / "server.key").stat().st_mode & 0o777) == "0o600"
    ctx = ssl.create_default_context(cafile=str(certs / "tls" / "ca.crt"))
    srv = tls.server_context(certs)
    assert srv is not None and tls.server_context(certs / "nothing") is None
    # A TLS handshake between the two contexts succeeds only if server.crt chains to ca.crt
    # and names localhost.
    a, b = socket.socketpair()
    import threading

    t = threading.Thread(target=lambda: srv.wrap_socket(a, server_side=True).close())
    t.start()
    cli = ctx.wrap_socket(b, server_hostname="localhost")
    assert cli.version() in ("TLSv1.2", "TLSv1.3")
    cli.close()
    t.join(5)


def test_tls_with_libpq_and_asyncpg(certs):
    srv = ServerThread(ssl_context=tls.server_context(certs))
    try:
        ca = str(certs / "tls" / "ca.crt")
        for mode in ("require", "verify-ca", "verify-full"):
            with psycopg.connect(_dsn(srv.port, sslmode=mode, sslrootcert=ca, host="localhost")) as c:
                assert c.pgconn.ssl_in_use
                assert c.execute("select 1").fetchone() is not None
        with psycopg.connect(_dsn(srv.port, sslmode="disable")) as c:
            assert not c.pgconn.ssl_in_use
        # A different CA must be refused by verify-ca.
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(_dsn(srv.port, sslmode="verify-ca", sslrootcert=__file__))

        async def main() -> None:
            conn = await asyncpg.connect(host="127.0.0.1", port=srv.port, user="alice", database="db",
                                         ssl=ssl.create_default_context(cafile=ca))
            assert conn._protocol.get_settings() is not None
            assert conn._transport.get_extra_info("ssl_object") is not None
            await conn.close()

        asyncio.run(main())
    finally:
        srv.stop()


def test_ssl_request_answers():
    srv = ServerThread()  # no certificate: 'N', then plaintext works
    try:
        c = w.Conn(srv.port, do_startup=False)
        c.send(struct.pack(">ii", 8, 80877104))  # GSSENCRequest
        assert c.sock.recv(1) == b"N"
        c.send(struct.pack(">ii", 8, 80877103))
        assert c.sock.recv(1) == b"N"
        c.send(w.startup())
        assert w.types_of(c.until_ready()).endswith(b"Z")
    finally:
        srv.stop()


def test_plaintext_pipelined_after_ssl_request_is_refused(certs):
    # CVE-2021-23214: bytes sent with the SSLRequest must not be read as if inside TLS.
    srv = ServerThread(ssl_context=tls.server_context(certs))
    try:
        c = w.Conn(srv.port, do_startup=False)
        c.send(struct.pack(">ii", 8, 80877103) + w.startup())
        msgs = c.read_all()
        assert [t for t, _ in msgs] == [b"E"]
        assert w.fields(msgs[0][1])["C"] == "08P01"
        assert not srv.world.sessions
        # A handshake that is not TLS closes the connection without a session either.
        c = w.Conn(srv.port, do_startup=False)
        c.send(struct.pack(">ii", 8, 80877103))
        assert c.sock.recv(1) == b"S"
        c.send(b"\x16\x03\x01\x00\x05hello-not-tls" * 3)
        assert all(t != b"R" for t, _ in c.read_all())
        assert not srv.world.sessions
    finally:
        srv.stop()


HBA = """
# comment line
hostssl  secure        all          127.0.0.1/32        scram-sha-256
host     secure        all          all                 reject
host     db            carol        127.0.0.1 255.255.255.255  md5
host     db            dave         ::1/128             trust
host     db,sameuser   all          127.0.0.0/8         scram-sha-256
"""


def test_hba_parse_and_match():
    rules = hba.parse_hba(HBA)
    assert [r.method for r in rules] == ["scram-sha-256", "reject", "md5", "trust", "scram-sha-256"]
    assert str(rules[2].network) == "127.0.0.1/32"
    assert hba.match(rules, True, "secure", "x", "127.0.0.1").method == "scram-sha-256"
    assert hba.match(rules, False, "secure", "x", "127.0.0.1").method == "reject"
    assert hba.match(rules, False, "db", "carol", "127.0.0.1").method == "md5"
    assert hba.match(rules, False, "db", "carol", "127.0.0.2").method == "scram-sha-256"
    assert hba.match(rules, False, "db", "dave", "127.0.0.1").method == "scram-sha-256"
    assert hba.match(rules, False, "erin", "erin", "127.0.0.9").method == "scram-sha-256"  # sameuser
    assert hba.match(rules, False, "other", "erin", "127.0.0.9") is None
    assert hba.match(rules, False, "db", "erin", "10.0.0.1") is None
    for bad in ("hots all all all trust", "host all all 1.2.3.4/99 trust", "host all all all kerberos",
                "host all all"):
        with pytest.raises(hba.HbaError):
            hba.parse_hba(bad)
    loop = hba.default_rules(False)
    assert hba.match(loop, False, "d", "u", "127.0.0.1").method == "trust"
    assert hba.match(loop, False, "d", "u", "192.0.2.1") is None
    assert hba.match(hba.default_rules(True), False, "d", "u", "192.0.2.1").method == "scram-sha-256"


def _startup_error(port: int, user: str, database: str) -> dict[str, str]:
    c = w.Conn(port, do_startup=False)
    c.send(w.startup(user, database))
    msgs = c.read_all()
    assert msgs and msgs[-1][0] == b"E", msgs
    return w.fields(msgs[-1][1])


def test_hba_decides_method_and_refusals(certs):
    bob = auth.make_verifier("bobpw")
    lookup = {"bob": auth.UserSecret(scram=bob)}.get
    srv = ServerThread(password="clusterpw", ssl_context=tls.server_context(certs), hba=hba.parse_hba(HBA),
                       lookup=lookup)
    try:
        f = _startup_error(srv.port, "zed", "other")
        assert f["C"] == "28000" and f["S"] == "FATAL"
        assert f["M"] == 'no pg_hba.conf entry for host "127.0.0.1", user "zed", database "other", no encryption'
        f = _startup_error(srv.port, "zed", "secure")  # not TLS -> the reject line
        assert f["C"] == "28000" and f["M"].startswith("pg_hba.conf rejects connection")
        # hostssl: over TLS the same database takes SCRAM with the cluster password.
        ca = str(certs / "tls" / "ca.crt")
        with psycopg.connect(_dsn(srv.port, user="zed", dbname="secure", sslmode="verify-ca", sslrootcert=ca,
                                  password="clusterpw")) as c:
            assert c.pgconn.ssl_in_use
        # md5 line for carol (cluster password known in clear), trust for dave only from ::1.
        with psycopg.connect(_dsn(srv.port, user="carol", password="clusterpw", sslmode="disable")):
            pass
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(_dsn(srv.port, user="dave", password="nope", sslmode="disable"))
        # bob has his own verifier: his password works, the cluster password does not.
        with psycopg.connect(_dsn(srv.port, user="bob", password="bobpw", sslmode="disable")):
            pass
        with pytest.raises(psycopg.OperationalError, match=_BAD_PW):
            psycopg.connect(_dsn(srv.port, user="bob", password="clusterpw", sslmode="disable"))
    finally:
        srv.stop()


def _sasl_salt(port: int, user: str) -> bytes:
    c = w.Conn(port, do_startup=False)
    c.send(w.startup(user, "db"))
    t, body = c.read_msg()
    assert t == b"R" and struct.unpack(">i", body[:4])[0] == 10
    first = b"n,,n=,r=abcdefghijklmnop"
    c.send(w.msg(b"p", b"SCRAM-SHA-256\0" + struct.pack(">i", len(first)) + first))
    t, body = c.read_msg()
    assert t == b"R" and struct.unpack(">i", body[:4])[0] == 11
    attrs = dict(kv.split("=", 1) for kv in body[4:].decode().split(","))
    c.send(w.msg(b"p", b"c=biws,r=" + attrs["r"].encode() + b",p=" + b"A" * 44))
    msgs = c.read_all()
    assert w.fields(msgs[-1][1])["C"] == "28P01"
    return attrs["s"].encode()


def test_unknown_user_gets_a_full_scram_exchange_with_a_stable_mock_salt():
    lookup = {"bob": auth.UserSecret(scram=auth.make_verifier("bobpw"))}.get
    srv = ServerThread(hba=hba.default_rules(True), lookup=lookup)  # no cluster password at all
    try:
        s1, s2 = _sasl_salt(srv.port, "ghost"), _sasl_salt(srv.port, "ghost")
        assert s1 == s2  # an unknown user looks like a known one with a fixed salt
        assert _sasl_salt(srv.port, "ghost2") != s1
        assert _sasl_salt(srv.port, "bob") != s1
        with pytest.raises(psycopg.OperationalError, match=_BAD_PW):
            psycopg.connect(_dsn(srv.port, user="ghost", password="x"))
        with psycopg.connect(_dsn(srv.port, user="bob", password="bobpw")):
            pass
        assert [s.user for s in srv.world.sessions] == ["bob"]
    finally:
        srv.stop()


def test_cleartext_and_md5_against_a_scram_verifier():
    lookup = {"bob": auth.UserSecret(scram=auth.make_verifier("bobpw"))}.get
    for method in ("password", "md5"):  # md5 falls back to SCRAM for a verifier-only user
        rules = hba.parse_hba(f"host all all 127.0.0.1/32 {method}")
        srv = ServerThread(hba=rules, lookup=lookup)
        try:
            with psycopg.connect(_dsn(srv.port, user="bob", password="bobpw")):
                pass
            for user, pw in (("bob", "wrong"), ("nobody", "bobpw")):
                with pytest.raises(psycopg.OperationalError, match=_BAD_PW):
                    psycopg.connect(_dsn(srv.port, user=user, password=pw))
        finally:
            srv.stop()


def test_verifier_text_roundtrip():
    v = auth.make_verifier("pw")
    text = auth.verifier_text(v)
    assert text.startswith("SCRAM-SHA-256$4096:") and "pw" not in text.split("$", 1)[1][:0]
    assert auth.parse_verifier(text) == v
    assert auth.parse_verifier("md5abc") is None
    assert auth._scram_matches(v, "pw") and not auth._scram_matches(v, "px")
