"""asyncio transport glue for the pg-wire front end.

``start_pg_server`` listens with one ``PgProtocol`` per client connection.  The protocol
object owns no protocol logic: ``data_received`` hands bytes to ``PgConnection.feed``
(which frames and decodes them) and queues the messages; one worker task per busy
connection awaits ``PgConnection.handle`` for each message in order and exits when the
queue is empty (a new one is started by the next ``data_received``).  Replies are
written by the connection once per Sync / simple Query.

TLS: when the server has an ``ssl_context``, the connection answers an SSLRequest with
'S' and awaits ``PgProtocol._start_tls``, which wraps the transport with
``loop.start_tls`` (server side); from then on this protocol object receives decrypted
bytes and ``self.transport`` is the TLS transport (writes go through it).  A failed
handshake just closes the connection (nothing can be said in clear after 'S').

Back-pressure: reading pauses while more than ``MAX_QUEUED`` messages wait, and the
worker stops between messages while the transport's write buffer is above its high-water
mark (``pause_writing`` / ``resume_writing``).
"""

from __future__ import annotations

import asyncio
import collections
import ssl
from typing import Any

import structlog

from engine.errors import SqlError
from server.auth import AuthConfig
from server.cancel import CancelListener, socket_fd
from server.pgwire import messages as m
from server.pgwire.connection import PgConnection, ServerContext, SessionFactory

MAX_QUEUED = 1024
TLS_HANDSHAKE_TIMEOUT = 10.0
# Like PostgreSQL's authentication_timeout: a client must be past authentication by then,
# so half-open or stalled connections cannot pile up.
AUTH_TIMEOUT = 60.0


class PgProtocol(asyncio.Protocol):
    __slots__ = ("ctx", "conn", "transport", "queue", "worker", "_drain", "_reading_paused", "_lost")

    def __init__(self, ctx: ServerContext) -> None:
        self.ctx = ctx
        self.conn: PgConnection | None = None
        self.transport: Any = None
        self.queue: collections.deque = collections.deque()
        self.worker: asyncio.Task | None = None
        self._drain: asyncio.Future | None = None
        self._reading_paused = False
        self._lost = False

    # -- asyncio callbacks

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername") or ("?", 0)
        conn = PgConnection(self.ctx, tuple(peer[:2]), self._write, self._close)
        conn.sock_fd = socket_fd(transport)
        conn.wake = self._wake
        if self.ctx.ssl_context is not None:
            conn.start_tls = self._start_tls
        self.conn = conn
        asyncio.get_running_loop().call_later(AUTH_TIMEOUT, self._auth_deadline)

    def _auth_deadline(self) -> None:
        conn = self.conn
        if conn is not None and conn.state in ("startup", "auth") and not self._lost:
            conn.log.info("authentication timeout")
            self.transport.close()

    def _wake(self) -> None:
        """Run the worker now (it sends a pending termination when the queue is empty)."""
        if self.worker is None and not self._lost:
            self.worker = asyncio.get_running_loop().create_task(self._run())

    def _write(self, data: bytes) -> None:
        self.transport.write(data)

    def _close(self) -> None:
        self.transport.close()

    async def _start_tls(self) -> None:
        conn = self.conn
        assert conn is not None
        old = self.transport
        try:
            self.transport = await asyncio.get_running_loop().start_tls(
                old, self, self.ctx.ssl_context, server_side=True, ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT)
        except (ssl.SSLError, OSError, ConnectionError, asyncio.TimeoutError, RuntimeError) as err:
            conn.log.info("tls handshake failed", error=str(err))
            conn.state = "closed"
            old.close()

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        assert conn is not None
        if conn.closed:
            return
        try:
            msgs = conn.feed(data)
        except m.ProtocolError as err:
            msgs = []
            # Answer what was framed correctly before, then refuse.
            self.queue.append(_Violation(str(err)))
        else:
            if not msgs:
                return
            self.queue.extend(msgs)
        if len(self.queue) > MAX_QUEUED and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()
        if self.worker is None:
            self.worker = asyncio.get_running_loop().create_task(self._run())

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        conn = self.conn
        if conn is None:
            return
        if self.worker is None:
            task = asyncio.get_running_loop().create_task(conn.close_session())
            self.ctx.tasks.add(task)
            task.add_done_callback(self.ctx.tasks.discard)
        else:
            conn.state = "closed"  # the worker closes the session when it returns

    def pause_writing(self) -> None:
        if self._drain is None or self._drain.done():
            self._drain = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    # -- worker

    async def _run(self) -> None:
        conn = self.conn
        assert conn is not None
        queue = self.queue
        try:
            while queue and not conn.closed:
                msg = queue.popleft()
                if type(msg) is _Violation:
                    conn.flush()
                    conn.protocol_violation(msg.message)
                    break
                aw = conn.dispatch(msg)
                if aw is not None:
                    await aw
                if self._drain is not None and not self._drain.done():
                    await self._drain
                if self._reading_paused and len(queue) < MAX_QUEUED // 2 and not conn.closed:
                    self._reading_paused = False
                    self.transport.resume_reading()
                if conn.pending_fatal is not None:
                    break
            if conn.pending_fatal is not None and not conn.closed:
                conn.fatal(conn.pending_fatal)  # server-side termination (PgConnection.terminate)
            elif not conn.closed:
                conn.flush()
        except Exception:
            conn.log.exception("connection worker failed")
            conn.fatal(SqlError("internal error", sqlstate="XX000"))
        finally:
            self.worker = None
            if conn.closed:
                queue.clear()
                await conn.close_session()


class _Violation:
    """Queued marker: the byte stream went bad after the messages before it."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message


async def start_pg_server(
    host: str,
    port: int,
    session_factory: SessionFactory,
    *,
    password: str | None = None,
    instance_name: str = "",
    log: Any = None,
    auth_method: str = "scram-sha-256",
    max_message: int = m.DEFAULT_MAX_MESSAGE,
    ssl_context: ssl.SSLContext | None = None,
    hba: list | None = None,
    lookup: Any = None,
    handoff_path: Any = None,
    cancel_path: Any = None,
    backends: dict | None = None,
) -> asyncio.AbstractServer:
    """Listen for PostgreSQL v3 clients on (host, port).

    ``session_factory(user, database, params, peer)`` is awaited after authentication
    and returns an ``engine.api.Session``; a SqlError it raises is sent as FATAL.
    ``password`` None means trust; otherwise every user must present it, by
    ``auth_method`` ("scram-sha-256" default, or "md5" / "password").  ``hba`` (a list
    of ``server.hba.HbaRule``) decides the method per connection instead; ``lookup(user)``
    returns a ``server.auth.UserSecret`` for per-user passwords.  ``ssl_context`` enables
    TLS (SSLRequest -> 'S').  ``cancel_path``: a Unix socket where a thread takes
    CancelRequests even while a statement keeps the event loop busy (``server.cancel``).
    ``backends``: a dict the server registers its open sessions' connections in, keyed by
    (pid, secret), so the caller can ``terminate`` them (``server.promote``).
    """
    base = log or structlog.get_logger("borealis.pgwire")
    ctx = ServerContext(
        session_factory=session_factory,
        auth=AuthConfig.build(password, auth_method, hba, lookup),
        instance_name=instance_name,
        log=base,
        max_message=max_message,
        ssl_context=ssl_context,
    )
    if backends is not None:
        ctx.backends = backends
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: PgProtocol(ctx), host, port)
    if handoff_path is not None:
        # Sockets passed by the endpoint proxy on this host (server.handoff) join the same server.
        from server.handoff import HandoffListener

        HandoffListener(handoff_path, lambda: PgProtocol(ctx)).start()
    if cancel_path is not None:
        CancelListener(cancel_path, ctx.backends, loop).start()
    base.info("pg server listening", host=host, port=port, instance=instance_name, auth=ctx.auth.method,
              tls=ssl_context is not None, hba=hba is not None)
    return server
