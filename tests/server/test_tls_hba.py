"""TLS negotiation, host-based rules and per-user secrets, on real clusters: the shared trust
cluster (fixture ``pg``, TLS on as every cluster has it) and ``hba_cluster`` (a cluster
password, the hba.conf in tests/server/conftest.py, roles made with CREATE ROLE)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct

import asyncpg
import psycopg
import pytest

import pgwire_client as w
from wire_setup import HBA
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


def test_tls_with_libpq_and_asyncpg(pg):
    ca = str(pg.cluster.data_dir / "tls" / "ca.crt")
    port = pg.port
    for mode in ("require", "verify-ca", "verify-full"):
        with psycopg.connect(_dsn(port, sslmode=mode, sslrootcert=ca, host="localhost")) as c:
            assert c.pgconn.ssl_in_use
            assert c.execute("select 1").fetchone() == (1,)
    with psycopg.connect(_dsn(port, sslmode="disable")) as c:
        assert not c.pgconn.ssl_in_use
    # A different CA must be refused by verify-ca.
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(_dsn(port, sslmode="verify-ca", sslrootcert=__file__))

    async def main() -> None:
        conn = await asyncpg.connect(host="127.0.0.1", port=port, user="alice", database="db",
                                     ssl=ssl.create_default_context(cafile=ca))
        assert conn._transport.get_extra_info("ssl_object") is not None
        assert await conn.fetchval("SELECT count(*) FROM wire_gen") == 10
        await conn.close()

    asyncio.run(main())


def test_ssl_request_answers(pg):
    c = w.Conn(pg.port, do_startup=False)
    c.send(struct.pack(">ii", 8, 80877104))  # GSSENCRequest: no GSSAPI here
    assert c.sock.recv(1) == b"N"
    c.send(struct.pack(">ii", 8, 80877103))  # SSLRequest: the cluster has a certificate
    assert c.sock.recv(1) == b"S"
    c.close()
    c = w.Conn(pg.port, do_startup=False)  # plaintext stays allowed (hostssl is not required)
    c.send(w.startup())
    assert w.types_of(c.until_ready()).endswith(b"Z")


def test_plaintext_pipelined_after_ssl_request_is_refused(pg):
    # CVE-2021-23214: bytes sent with the SSLRequest must not be read as if inside TLS.
    c = w.Conn(pg.port, do_startup=False)
    c.send(struct.pack(">ii", 8, 80877103) + w.startup(application_name="pipelined-after-ssl"))
    msgs = c.read_all()
    assert [t for t, _ in msgs] == [b"E"]
    assert w.fields(msgs[0][1])["C"] == "08P01"
    # A handshake that is not TLS closes the connection without a session either.
    c = w.Conn(pg.port, do_startup=False)
    c.send(struct.pack(">ii", 8, 80877103))
    assert c.sock.recv(1) == b"S"
    c.send(b"\x16\x03\x01\x00\x05hello-not-tls" * 3)
    assert all(t != b"R" for t, _ in c.read_all())
    assert pg.sessions("pipelined-after-ssl") == 0


def test_hba_parse_and_match():
    rules = [r for r in hba.parse_hba(HBA) if r.users[0] not in ("clear", "md5user")]
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


def test_hba_decides_method_and_refusals(hba_cluster):
    port = hba_cluster.port
    f = _startup_error(port, "zed", "other")
    assert f["C"] == "28000" and f["S"] == "FATAL"
    assert f["M"] == 'no pg_hba.conf entry for host "127.0.0.1", user "zed", database "other", no encryption'
    f = _startup_error(port, "zed", "secure")  # not TLS -> the reject line
    assert f["C"] == "28000" and f["M"].startswith("pg_hba.conf rejects connection")
    # hostssl: over TLS the same database takes SCRAM with zed's own password.
    with psycopg.connect(hba_cluster.dsn(user="zed", dbname="secure", sslmode="verify-ca",
                                         sslrootcert=hba_cluster.ca, password="zedpw")) as c:
        assert c.pgconn.ssl_in_use
        assert c.execute("SELECT current_user, current_database()").fetchone() == ("zed", "secure")
    # md5 line for carol (an md5 verifier), trust for dave only from ::1 (SCRAM from 127.0.0.1).
    with psycopg.connect(hba_cluster.dsn(user="carol", password="carolpw", sslmode="disable")):
        pass
    with pytest.raises(psycopg.OperationalError, match=_BAD_PW):
        psycopg.connect(hba_cluster.dsn(user="carol", password="clusterpw", sslmode="disable"))
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(hba_cluster.dsn(user="dave", password="nope", sslmode="disable"))
    with psycopg.connect(hba_cluster.dsn(user="dave", password="davepw", sslmode="disable")):
        pass
    # bob has his own verifier: his password works, the cluster password does not.
    with psycopg.connect(hba_cluster.dsn(user="bob", password="bobpw", sslmode="disable")):
        pass
    with pytest.raises(psycopg.OperationalError, match=_BAD_PW):
        psycopg.connect(hba_cluster.dsn(user="bob", password="clusterpw", sslmode="disable"))


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


def test_unknown_user_gets_a_full_scram_exchange_with_a_stable_mock_salt(hba_cluster):
    port = hba_cluster.port
    s1, s2 = _sasl_salt(port, "ghost"), _sasl_salt(port, "ghost")
    assert s1 == s2  # an unknown user looks like a known one with a fixed salt
    assert _sasl_salt(port, "ghost2") != s1
    assert _sasl_salt(port, "bob") != s1
    with pytest.raises(psycopg.OperationalError, match=_BAD_PW):
        psycopg.connect(hba_cluster.dsn(user="ghost", password="x"))
    with psycopg.connect(hba_cluster.dsn(user="bob", password="bobpw")) as c:
        assert c.execute("SELECT current_user").fetchone() == ("bob",)


def test_cleartext_and_md5_against_a_scram_verifier(hba_cluster):
    # "clear" has a password rule, "md5user" an md5 rule; both are stored as SCRAM verifiers
    # (md5 falls back to SCRAM for a verifier-only role, as in PostgreSQL).
    for user, pw in (("clear", "clearpw"), ("md5user", "md5pw")):
        with psycopg.connect(hba_cluster.dsn(user=user, password=pw, dbname="postgres")):
            pass
        with pytest.raises(psycopg.OperationalError, match=_BAD_PW):
            psycopg.connect(hba_cluster.dsn(user=user, password="wrong", dbname="postgres"))


def test_verifier_text_roundtrip():
    v = auth.make_verifier("pw")
    text = auth.verifier_text(v)
    assert text.startswith("SCRAM-SHA-256$4096:") and "pw" not in text.split("$", 1)[1][:0]
    assert auth.parse_verifier(text) == v
    assert auth.parse_verifier("md5abc") is None
    assert auth._scram_matches(v, "pw") and not auth._scram_matches(v, "px")
