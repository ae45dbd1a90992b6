"""asyncio transport glue for the pg-wire front end.

``start_pg_server`` listens with one ``PgProtocol`` per client connection.  The protocol
object owns no protocol logic: ``data_received`` hands bytes to ``PgConnection.feed``
(which frames and decodes them) and queues the messages, then handles them in order
right there (``_pump``): a message whose handler is synchronous (Parse, Bind, Sync, ...)
is done at once; an asynchronous one (Query, Execute, startup) is stepped once, and if it
completes without waiting -- a cached point select over tables in memory does -- the next
message follows in the same callback.  Only when a handler really waits (storage, a lock,
a commit's quorum) does a worker task take over the rest of the queue, continuing that
same coroutine; it exits when the queue is empty.  So a pipelined batch usually costs one
callback and one ``write`` (replies are written by the connection once per Sync / simple
Query), with no task per request.

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
from server.pgwire.connection import CLOSED, PgConnection, ServerContext, SessionFactory

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
        try:
            self.transport.write(data)
        except RuntimeError:
            # uvloop refuses writes on a transport closed meanwhile (the client went away
            # while its statement ran); there is nobody to answer, which is no server error.
            if not self.transport.is_closing():
                raise

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
            self._pump()

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

    # -- handling queued messages

    def _pump(self) -> None:
        """Handle queued messages synchronously until the queue is empty or a handler has to
        wait; then a worker task (``_run``) carries on from that handler's suspension."""
        conn = self.conn
        assert conn is not None
        queue = self.queue
        dispatch = conn.dispatch
        try:
            while queue and conn.state != CLOSED:
                msg = queue.popleft()
                if type(msg) is _Violation:
                    conn.flush()
                    conn.protocol_violation(msg.message)
                    break
                aw = dispatch(msg)
                if aw is not None:
                    try:
                        waiting = aw.send(None)
                    except StopIteration:
                        pass  # done without waiting
                    else:
                        self._start_worker(_Resume(aw, waiting))
                        return
                if self._drain is not None and not self._drain.done():
                    self._start_worker(None)
                    return
                if conn.pending_fatal is not None:
                    break
            if self._reading_paused and not conn.closed:
                self._reading_paused = False
                self.transport.resume_reading()
            if conn.pending_fatal is not None and not conn.closed:
                conn.fatal(conn.pending_fatal)  # server-side termination (PgConnection.terminate)
            elif not conn.closed:
                conn.flush()
        except Exception:
            conn.log.exception("connection worker failed")
            conn.fatal(SqlError("internal error", sqlstate="XX000"))
        if conn.closed:
            queue.clear()
            task = asyncio.get_running_loop().create_task(conn.close_session())
            self.ctx.tasks.add(task)
            task.add_done_callback(self.ctx.tasks.discard)

    def _start_worker(self, pending: "_Resume | None") -> None:
        self.worker = asyncio.get_running_loop().create_task(self._run(pending))

    async def _run(self, pending: "_Resume | None" = None) -> None:
        conn = self.conn
        assert conn is not None
        queue = self.queue
        try:
            if pending is not None:
                await pending
            while True:
                if self._drain is not None and not self._drain.done():
                    await self._drain
                if self._reading_paused and len(queue) < MAX_QUEUED // 2 and not conn.closed:
                    self._reading_paused = False
                    self.transport.resume_reading()
                if conn.pending_fatal is not None or not queue or conn.closed:
                    break
                msg = queue.popleft()
                if type(msg) is _Violation:
                    conn.flush()
                    conn.protocol_violation(msg.message)
                    break
                aw = conn.dispatch(msg)
                if aw is not None:
                    await aw
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


class _Resume:
    """Awaitable continuing a coroutine that was already stepped once (``coro.send(None)``
    returned ``first``, the future it waits on).  Awaiting it inside a task hands ``first``
    to the task exactly as if the task had been running the coroutine from the start."""

    __slots__ = ("coro", "first")

    def __init__(self, coro: Any, first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self) -> Any:
        coro, value = self.coro, self.first
        self.first = None
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # e.g. CancelledError: deliver it where the coroutine waits
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


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
    verifier: str | None = None,
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
    ``auth_method`` ("scram-sha-256" default, or "md5" / "password"); ``verifier`` instead
    gives only its SCRAM verifier (md5 then falls back to SCRAM, as in PostgreSQL).  ``hba`` (a list
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
        auth=AuthConfig.build(password, auth_method, hba, lookup, verifier),
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
