"""Mutual TLS for every internal TCP connection of a cluster.

Storage nodes, instance admin ports (admin requests, the redo stream, Promote) and the
clients of both (instances, peers, the cluster manager, the CLI) talk over TLS 1.3, and
both ends authenticate: a server asks for a client certificate (``CERT_REQUIRED``), a
client verifies the server, each against the cluster CA, and each also checks that the
peer's certificate is an *internal* one (its subject CN is ``INTERNAL_CN``; the pg-wire
server certificate, signed by the same CA, is not).

Files, in ``DATA_DIR/tls/`` (written by ``server.tls.ensure_internal_certificate`` when
the cluster is created; this module only reads them, so storage/ needs nothing of server/):

    ca.crt         the cluster CA (the same one clients pin for pg-wire TLS)
    internal.crt   the internal certificate: CN ``INTERNAL_CN``, client and server use,
                   SAN localhost / 127.0.0.1 / ::1 / the cluster host
    internal.key   its private key (0600)

A listener is made by ``InternalTls.serve``: each accepted socket does the TLS handshake
(adopted by ``loop.connect_accepted_socket`` with the TLS layer as its protocol) before
any protocol of ours sees a byte; a peer that fails it (plain TCP, a certificate of
another CA, none at all, not an internal one) is logged once, with its address, and
closed -- nothing it sent is read as a frame.  The TLS layer on both sides is the
standard library's, also under uvloop (``_tls_protocol``).  Clients take
``InternalTls.client_for(host, port)``: one context per destination that offers the
last session it got from there, so a connection made again (status probes, the
manager's heartbeats) resumes instead of doing the full handshake.

No TLS without the files: ``InternalTls.load`` raises ``MissingCertificates``, and a
part that listens refuses to start rather than serve in the clear.
"""

from __future__ import annotations

import asyncio
import asyncio.sslproto
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("mtls")

TLS_DIR = "tls"
CA_CERT = "ca.crt"
INTERNAL_CERT, INTERNAL_KEY = "internal.crt", "internal.key"
INTERNAL_CN = "borealis-internal"
HANDSHAKE_TIMEOUT = 10.0


class MissingCertificates(RuntimeError):
    """The data directory holds no internal certificate."""


class _ResumingContext(ssl.SSLContext):
    """A client context for one destination: each new connection offers the session
    ticket the previous one received, so the server can skip the certificate exchange."""

    _last: ssl.SSLObject | None = None

    def wrap_bio(self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, server_side: bool = False,
                 server_hostname: str | None = None, session: ssl.SSLSession | None = None) -> ssl.SSLObject:
        last = self._last
        if session is None and last is not None:
            try:
                got = last.session
            except (ValueError, ssl.SSLError):
                got = None
            if got is not None and got.has_ticket:
                session = got
        obj = super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)
        self._last = obj
        return obj


def peer_is_internal(ssl_object: Any) -> bool:
    cert = ssl_object.getpeercert() if ssl_object is not None else None
    if not cert:
        return False
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName" and value == INTERNAL_CN:
                return True
    return False


@dataclass
class InternalTls:
    """The server context and per-destination client contexts of one process."""

    directory: Path
    server: ssl.SSLContext
    _clients: dict[tuple[str, int], ssl.SSLContext] = field(default_factory=dict)

    @classmethod
    def load(cls, data_dir: str | Path) -> "InternalTls":
        d = Path(data_dir) / TLS_DIR
        ca, cert, key = d / CA_CERT, d / INTERNAL_CERT, d / INTERNAL_KEY
        missing = [p.name for p in (ca, cert, key) if not p.exists()]
        if missing:
            raise MissingCertificates(
                f"{d} lacks {', '.join(missing)}: internal traffic needs the cluster's internal "
                "certificate (made by `borealis up` when it creates or starts the cluster)"
            )
        srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        srv.minimum_version = ssl.TLSVersion.TLSv1_3
        srv.verify_mode = ssl.CERT_REQUIRED
        srv.load_verify_locations(cafile=str(ca))
        srv.load_cert_chain(str(cert), str(key))
        return cls(directory=d, server=srv)

    def client_for(self, host: str, port: int) -> ssl.SSLContext:
        ctx = self._clients.get((host, port))
        if ctx is None:
            ctx = _ResumingContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.check_hostname = True
            ctx.load_verify_locations(cafile=str(self.directory / CA_CERT))
            ctx.load_cert_chain(str(self.directory / INTERNAL_CERT), str(self.directory / INTERNAL_KEY))
            self._clients[(host, port)] = ctx
        return ctx

    async def connect(
        self, factory: Callable[[], asyncio.Protocol], host: str, port: int
    ) -> tuple[asyncio.Transport, Any]:
        """``loop.create_connection`` over mutual TLS; the server must present an internal
        certificate of the cluster CA (``ssl.SSLError`` otherwise)."""
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        app = factory()
        tls = _tls_protocol(loop, app, self.client_for(host, port), waiter, server_side=False, server_hostname=host)
        raw, _ = await loop.create_connection(lambda: tls, host, port)
        try:
            await waiter
        except BaseException:
            raw.abort()
            raise
        transport = tls._get_app_transport()
        if not peer_is_internal(transport.get_extra_info("ssl_object")):
            transport.abort()
            raise ssl.SSLError(f"{host}:{port} presented a certificate that is not an internal one")
        return transport, app  # type: ignore[return-value]

    async def reachable(self, host: str, port: int, timeout: float) -> bool:
        """True if ``host:port`` completes a mutual-TLS handshake within ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                transport, _ = await self.connect(asyncio.Protocol, host, port)
        except (OSError, asyncio.TimeoutError):
            return False
        transport.close()
        return True

    async def open_connection(self, host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """``asyncio.open_connection`` over mutual TLS, with the checks of ``connect``."""
        reader, writer = await asyncio.open_connection(
            host, port, ssl=self.client_for(host, port), ssl_handshake_timeout=HANDSHAKE_TIMEOUT
        )
        if not peer_is_internal(writer.get_extra_info("ssl_object")):
            writer.transport.abort()
            raise ssl.SSLError(f"{host}:{port} presented a certificate that is not an internal one")
        return reader, writer

    async def serve(self, factory: Callable[[], asyncio.Protocol], host: str, port: int, what: str) -> "Listener":
        """Listen on ``host:port``; each accepted socket does the TLS handshake (the peer
        must present an internal certificate of the cluster CA) before ``factory()`` gets
        it.  A refused peer is logged once, with its address, and closed: no byte it sent
        reaches the protocol."""
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        lst = Listener(sock, self.server, factory, what)
        lst.start()
        return lst


class Listener:
    """The accept loop of one internal port (``InternalTls.serve``)."""

    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext, factory: Callable[[], asyncio.Protocol],
                 what: str) -> None:
        self.sock = sock
        self.ctx = ctx
        self.factory = factory
        self.what = what
        self.refused = 0
        self._task: asyncio.Task | None = None
        self._admitting: set[asyncio.Task] = set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._accept())

    def close(self) -> None:
        """Stop accepting (connections already admitted stay open, as with asyncio.Server)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        for t in list(self._admitting):
            t.cancel()
        self.sock.close()

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, addr = await loop.sock_accept(self.sock)
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                continue
            except OSError as e:  # out of descriptors, say: try again shortly
                log.warning("internal_accept_failed", port=self.what, error=str(e))
                await asyncio.sleep(0.1)
                continue
            task = loop.create_task(self._admit(conn, addr))
            self._admitting.add(task)
            task.add_done_callback(self._admitting.discard)

    async def _admit(self, conn: socket.socket, addr: Any) -> None:
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        raw = None
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            tls = _tls_protocol(loop, _Admit(self, addr), self.ctx, waiter, server_side=True)
            raw, _ = await loop.connect_accepted_socket(lambda: tls, conn)
            await waiter
        except asyncio.CancelledError:
            if raw is not None:
                raw.abort()
            conn.close()
            raise
        except (OSError, asyncio.TimeoutError, ConnectionError, RuntimeError) as e:  # ssl.SSLError: OSError
            self._refuse(addr, _reason(e))
            if raw is not None:
                raw.abort()
            conn.close()

    def _refuse(self, addr: Any, reason: str) -> None:
        self.refused += 1
        log.warning("internal_connection_refused", port=self.what, peer=_addr(addr), reason=reason)


def _retrieve(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()


def _tls_protocol(loop: asyncio.AbstractEventLoop, app: asyncio.BaseProtocol, ctx: ssl.SSLContext,
                  waiter: asyncio.Future, *, server_side: bool, server_hostname: str | None = None) -> Any:
    """The standard library's TLS layer (what ``loop.start_tls`` builds), as the protocol of
    a plain connection of whatever loop runs: ``waiter`` resolves when the handshake is
    over, then ``app`` gets the TLS transport.  uvloop has a TLS layer of its own, but it
    costs about twice the CPU per message of this one (a frame's round trip over loopback:
    ~55 us more than plain TCP against ~20 us), and every Append and ack pays it."""
    # The handshake's outcome is read by whoever awaits ``waiter``; if that caller was
    # cancelled first (a connect timeout, a closing listener), nobody does, and a failed
    # handshake would be logged as "Future exception was never retrieved".
    waiter.add_done_callback(_retrieve)
    return asyncio.sslproto.SSLProtocol(loop, app, ctx, waiter, server_side=server_side,
                                        server_hostname=server_hostname,
                                        ssl_handshake_timeout=HANDSHAKE_TIMEOUT)


class _Admit(asyncio.Protocol):
    """The protocol a connection has right after its handshake: a peer whose certificate
    is the CA's but not an internal one is refused here, before any data callback; an
    internal peer's transport is handed to the real protocol at once."""

    def __init__(self, owner: Listener, addr: Any) -> None:
        self.owner = owner
        self.addr = addr

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not peer_is_internal(transport.get_extra_info("ssl_object")):
            self.owner._refuse(self.addr, "certificate is not an internal one")
            transport.abort()  # type: ignore[attr-defined]
            return
        inner = self.owner.factory()
        transport.set_protocol(inner)
        inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:  # only after a refusal: dropped
        pass


def _addr(peer: Any) -> str:
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


def _reason(e: BaseException) -> str:
    if isinstance(e, asyncio.TimeoutError):
        return "no TLS handshake in time"
    if isinstance(e, ConnectionError) and not str(e):
        return "connection closed during the TLS handshake"
    text = str(e) or type(e).__name__
    return text[:200]
