"""No internal port acts for someone who is not part of the cluster (docs/security.md,
"Internal traffic").

The attacker here uses no project code: a raw socket, ``msgspec`` to write msgpack and
``ssl`` / ``cryptography`` for its own TLS material.  It sends well-formed frames --
the same bytes get an answer over the cluster's mutual TLS, which each test checks first,
so a refusal is about who sends them, not what they say -- to every internal port kind:
the storage nodes, the writer's admin port (redo stream, state) and a reader's admin port
(Promote).  Plain TCP, TLS without a client certificate, TLS with a certificate of another
CA (named like the cluster's internal one) and TLS with the cluster's own pg-wire server
certificate (the right CA, not an internal certificate) are all closed unanswered, nothing
they sent is applied, and each refusal is logged with the peer's address.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import stat
import struct
import zlib
from pathlib import Path

import msgspec
import psycopg
import pytest

from cluster import ClusterHandle, wait_for

ATTACKS = ("plain", "tls-no-cert", "tls-other-ca", "tls-pg-server-cert")
FORGED_LSN = 10**12  # far above anything the cluster allocates


def _frame(msg: dict) -> bytes:
    body = msgspec.msgpack.encode(msg)
    return struct.pack(">I", len(body)) + body


def _read_frame(s: socket.socket) -> dict | None:
    """One reply frame, or None when the peer closed (or reset) without answering."""
    buf = b""
    try:
        while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
            chunk = s.recv(65536)
            if not chunk:
                return None
            buf += chunk
    except (ConnectionResetError, ssl.SSLError):
        return None
    n = struct.unpack(">I", buf[:4])[0]
    return msgspec.msgpack.decode(buf[4 : 4 + n])


def _crc(lsn: int, pg: int, prev: int, txid: int, kind: int, key: bytes, value: bytes, epoch: int) -> int:
    head = f"{lsn}|{pg}|{prev}|{txid}|{kind}|{epoch}|".encode()
    return zlib.crc32(value, zlib.crc32(key, zlib.crc32(head)))


def _other_ca(tmp: Path) -> tuple[Path, Path]:
    """A self-made CA and a client certificate it signed, CN and usages like the
    cluster's internal one: only the signer differs."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Borealis cluster CA")])
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "borealis-internal")]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    crt, pem = tmp / "evil.crt", tmp / "evil.key"
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()))
    return crt, pem


def _attack(kind: str, port: int, frame: bytes, tmp: Path, tls_dir: Path | None = None) -> tuple[dict | None, int]:
    """Send ``frame`` as attacker ``kind``; (the reply, or None, and our local port).
    ``tls-pg-server-cert`` presents the cluster's pg-wire server certificate (signed by the
    cluster CA, but not an internal one), found in ``tls_dir``."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    local = raw.getsockname()[1]
    s: socket.socket = raw
    try:
        if kind != "plain":
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # the attacker does not care who answers
            if kind == "tls-other-ca":
                ctx.load_cert_chain(*_other_ca(tmp))
            elif kind == "tls-pg-server-cert":
                assert tls_dir is not None
                ctx.load_cert_chain(tls_dir / "server.crt", tls_dir / "server.key")
            try:
                s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            except (ssl.SSLError, ConnectionResetError, OSError):
                return None, local  # refused during the handshake
        try:
            s.sendall(frame)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return None, local
        return _read_frame(s), local
    finally:
        s.close()


def _trusted(c: ClusterHandle, port: int, frame: bytes) -> dict | None:
    """The same frame over the cluster's own mutual TLS (what a part would send)."""
    from storage.mtls import InternalTls  # the positive control may use project code

    ctx = InternalTls.load(c.data_dir).client_for("127.0.0.1", port)
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                         server_hostname="127.0.0.1") as s:
        s.sendall(frame)
        return _read_frame(s)


def _logged_refusal(c: ClusterHandle, part: str, local_port: int) -> bool:
    text = (c.launcher.log_dir / f"{part}.log").read_text(errors="replace")
    return any("internal_connection_refused" in line and f"127.0.0.1:{local_port}" in line
               for line in text.splitlines())


def _rows(c: ClusterHandle, table: str) -> list[tuple]:
    with psycopg.connect(c.writer_dsn, autocommit=True) as conn:
        return conn.execute(f"SELECT id, v FROM {table} ORDER BY id").fetchall()


@pytest.fixture(scope="module")
def victim(cluster: ClusterHandle) -> list[tuple]:
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS ia_secret (id integer PRIMARY KEY, v text)")
        conn.execute("DELETE FROM ia_secret")
        conn.execute("INSERT INTO ia_secret VALUES (1, 'one'), (2, 'two'), (3, 'three')")
    return _rows(cluster, "ia_secret")


@pytest.mark.parametrize("kind", ATTACKS)
def test_storage_node_refuses_scan_and_forged_append(cluster: ClusterHandle, victim, kind, tmp_path) -> None:  # noqa: ANN001
    conf = cluster.launcher.conf
    node = conf.storage_nodes[0]
    scan = _frame({"type": "Scan", "req": 1, "pg": 0, "prefix": b"", "at_lsn": 0, "limit": 1000})
    answer = _trusted(cluster, node.port, scan)
    assert answer is not None and answer["req"] == 1  # well-formed: a cluster part gets an answer
    state = _trusted(cluster, node.port, _frame({"type": "GetState", "req": 2}))
    assert state is not None and state["type"] == "NodeState"
    epoch = state["epoch"]

    reply, local = _attack(kind, node.port, scan, tmp_path, cluster.data_dir / "tls")
    assert reply is None, f"{kind}: a storage node answered a Scan: {reply}"
    wait_for(lambda: _logged_refusal(cluster, node.name, local), 10, f"{node.name} to log the refusal")

    # A forged transaction (PUT + COMMIT with valid crcs at the node's own epoch), sent to
    # every node: none may take it in.
    put = [FORGED_LSN, 1, 0, 77, 0, b"forged-key", b"forged-value", epoch]
    commit_value = msgspec.msgpack.encode({1: FORGED_LSN})
    com = [FORGED_LSN + 1, 0, 0, 77, 2, b"", commit_value, epoch]
    records = [r + [_crc(*r)] for r in (put, com)]
    append = _frame({"type": "Append", "req": 3, "epoch": epoch, "vdl": 0, "records": records})
    for s in conf.storage_nodes:
        reply, _ = _attack(kind, s.port, append, tmp_path, cluster.data_dir / "tls")
        assert reply is None, f"{kind}: {s.name} answered a forged Append: {reply}"
        st = _trusted(cluster, s.port, _frame({"type": "GetState", "req": 4}))
        assert st is not None
        assert max(st["max_lsn"].values(), default=0) < FORGED_LSN, f"{s.name} took the forged records"
        assert st["epoch"] == epoch
    assert _rows(cluster, "ia_secret") == victim


@pytest.mark.parametrize("kind", ATTACKS)
def test_admin_ports_refuse_redo_state_and_promote(cluster: ClusterHandle, victim, kind, tmp_path) -> None:  # noqa: ANN001
    conf = cluster.launcher.conf
    writer = conf.writer()
    reader = conf.readers()[0]
    assert writer is not None
    get_state = _frame({"type": "GetInstanceState", "req": 5})
    st = _trusted(cluster, writer.admin_port, get_state)
    assert st is not None and st["role"] == "writer"

    # the writer's redo stream and state
    for frame in (get_state, _frame({"type": "Subscribe", "req": 6, "reader": "intruder"})):
        reply, local = _attack(kind, writer.admin_port, frame, tmp_path, cluster.data_dir / "tls")
        assert reply is None, f"{kind}: the writer's admin port answered: {reply}"
    wait_for(lambda: _logged_refusal(cluster, writer.name, local), 10, "the writer to log the refusal")

    # Promote on a reader would fence the real writer
    promote = _frame({"type": "Promote", "req": 7, "timeout": 5.0})
    reply, local = _attack(kind, reader.admin_port, promote, tmp_path, cluster.data_dir / "tls")
    assert reply is None, f"{kind}: a reader answered Promote: {reply}"
    wait_for(lambda: _logged_refusal(cluster, reader.name, local), 10, "the reader to log the refusal")
    assert _trusted(cluster, writer.admin_port, get_state)["role"] == "writer"
    assert _trusted(cluster, reader.admin_port, get_state)["role"] == "reader"
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as conn:  # the writer still commits
        conn.execute("INSERT INTO ia_secret VALUES (100, 'still the writer')")
        conn.execute("DELETE FROM ia_secret WHERE id = 100")
    assert _rows(cluster, "ia_secret") == victim


def test_internal_key_and_local_sockets_are_owner_only(cluster: ClusterHandle) -> None:
    tls = cluster.data_dir / "tls"
    for key in ("internal.key", "ca.key"):
        assert stat.S_IMODE((tls / key).stat().st_mode) == 0o600, key
    run = cluster.data_dir / "run"
    socks = [p for p in run.iterdir() if p.suffix in (".handoff", ".cancel", ".hb")]
    assert socks, "no hand-off / cancel / heartbeat sockets found"
    for p in socks:
        assert stat.S_ISSOCK(p.stat().st_mode)
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p.name


def test_a_connection_made_again_resumes_its_tls_session(cluster: ClusterHandle) -> None:
    """Parts that reconnect often (the manager's heartbeat, status, the autoscaler) skip the
    certificate exchange: the second connection to a port resumes the first one's session."""
    import asyncio

    from storage.mtls import InternalTls

    port = cluster.launcher.conf.storage_nodes[0].port
    tls = InternalTls.load(cluster.data_dir)

    class _One(asyncio.Protocol):
        def __init__(self) -> None:
            self.reply = asyncio.get_running_loop().create_future()

        def data_received(self, data: bytes) -> None:
            if not self.reply.done():
                self.reply.set_result(data)

    async def once() -> bool:
        transport, proto = await tls.connect(_One, "127.0.0.1", port)
        try:
            transport.write(_frame({"type": "GetState", "req": 1}))
            assert await asyncio.wait_for(proto.reply, 10)  # the session ticket came before it
            return transport.get_extra_info("ssl_object").session_reused
        finally:
            transport.close()

    async def run() -> list[bool]:
        return [await once() for _ in range(3)]

    assert asyncio.run(run()) == [False, True, True]


def test_an_older_cluster_gets_its_internal_certificate_from_its_own_ca(tmp_path: Path) -> None:
    """A data dir made before internal TLS (CA and pg-wire certificate only) gets the
    internal certificate when it is next started, signed by its existing CA, key 0600;
    the pg-wire certificate clients may have pinned stays as it was."""
    import threading

    from server.tls import ensure_certificates, ensure_internal_certificate
    from storage.mtls import InternalTls, peer_is_internal

    assert ensure_certificates(tmp_path) is True
    d = tmp_path / "tls"
    for name in ("internal.crt", "internal.key"):
        (d / name).unlink()
    server_crt = (d / "server.crt").read_bytes()
    assert ensure_internal_certificate(tmp_path) is True
    assert ensure_internal_certificate(tmp_path) is False  # never overwritten
    assert (d / "server.crt").read_bytes() == server_crt
    assert stat.S_IMODE((d / "internal.key").stat().st_mode) == 0o600

    # a mutual handshake between the two sides' contexts: both chain to the same CA
    tls = InternalTls.load(tmp_path)
    a, b = socket.socketpair()
    seen: list = []

    def serve() -> None:
        with tls.server.wrap_socket(b, server_side=True) as s:
            seen.append(peer_is_internal(s))
            s.sendall(b"ok")

    t = threading.Thread(target=serve)
    t.start()
    with tls.client_for("127.0.0.1", 1).wrap_socket(a, server_hostname="127.0.0.1") as c:
        assert c.recv(2) == b"ok" and peer_is_internal(c)
    t.join(10)
    assert seen == [True]
