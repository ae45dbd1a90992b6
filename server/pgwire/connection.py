"""One client connection: a state machine dispatching on (state, message type).

The transport glue (``server.py``) feeds raw bytes to ``PgConnection.feed`` -- which
frames and decodes them and returns the messages -- and then awaits ``handle(msg)`` for
each message in order.  Replies accumulate in ``self.out`` and are written with one
``write`` call per Sync, per simple Query, per Flush and at the end of startup.

States and transitions (every (state, message) pair not listed is a protocol violation,
08P01 FATAL, except that SKIP silently drops everything but Sync/Terminate)::

    STARTUP --SSLRequest--> STARTUP                 ('S' + TLS handshake when the server has a
                                                     certificate, else 'N'; plaintext bytes
                                                     pipelined after it: 08P01, closed)
    STARTUP --GSSENCRequest--> STARTUP              (answer 'N')
    STARTUP --CancelRequest--> CLOSED               (cancel the target backend, no reply)
    STARTUP --StartupMessage--> AUTH | READY        (AuthenticationOk, ParameterStatus*,
                                                     BackendKeyData, ReadyForQuery)
    AUTH    --PasswordMessage--> AUTH | READY | CLOSED (28P01 FATAL)
    READY   --Query--> READY                        (results..., ReadyForQuery)
    READY   --Parse/Bind/Describe/Execute/Close/Flush--> READY, or SKIP on error
    READY   --Sync--> READY                         (ReadyForQuery)
    SKIP    --Sync--> READY                         (ReadyForQuery)
    READY   --Query (COPY ... FROM STDIN)--> COPY_IN (CopyInResponse)
    COPY_IN --CopyData--> COPY_IN                   (fed to the engine's loader)
    COPY_IN --CopyDone--> READY                     (CommandComplete, rest of the Query,
                                                     ReadyForQuery; extended: wait for Sync)
    COPY_IN --CopyFail / other message--> READY | SKIP (ErrorResponse)
    COPY_IN --Sync/Flush--> COPY_IN                 (ignored, as PostgreSQL does)
    READY   --CopyData/CopyDone/CopyFail--> READY   (ignored: leftovers of a failed COPY)
    any     --Terminate--> CLOSED                   (session.close())

Portals keep the rows of their result: an Execute with a row limit sends that many
DataRows and PortalSuspended; the next Execute continues from there.  Portals are
dropped at a Sync that leaves the session outside a transaction block (as PostgreSQL
drops them at the end of the implicit transaction).
"""

from __future__ import annotations

import inspect
import logging
import secrets
import traceback
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import structlog

from engine.api import Prepared, Result
from engine.copy import CopyInResult, CopyOutResult
from engine.errors import AdminShutdown, SqlError
from server import types_io
from server.auth import AuthConfig, Authenticator
from server.cancel import client_gone_probe
from server.pgwire import messages as m

STARTUP, AUTH, READY, SKIP, CLOSED = "startup", "auth", "ready", "skip", "closed"
COPY_IN = "copy_in"

SessionFactory = Callable[[str, str, dict[str, str], tuple], Awaitable[Any]]

_REPORT_TAGS = frozenset({"SET", "RESET", "DISCARD ALL"})


@dataclass
class ServerContext:
    """What all connections of one listening server share."""

    session_factory: SessionFactory
    auth: AuthConfig
    instance_name: str = ""
    log: Any = None
    max_message: int = m.DEFAULT_MAX_MESSAGE
    backends: dict[tuple[int, int], "PgConnection"] = field(default_factory=dict)
    next_pid: int = field(default_factory=lambda: 1000 + secrets.randbelow(30000))
    next_conn_id: int = 1
    tasks: set = field(default_factory=set)  # strong refs to background tasks (session closes)
    ssl_context: Any = None  # ssl.SSLContext: SSLRequest is answered 'S' and TLS starts
    debug: bool = False  # debug lines enabled: per-connection lines are written only then

    def __post_init__(self) -> None:
        log = self.log or structlog.get_logger("borealis.pgwire")
        try:
            self.debug = bool(log.bind().is_enabled_for(logging.DEBUG))
        except AttributeError:  # a logger without level filtering writes everything
            self.debug = True

    def allocate_pid(self) -> int:
        pid = self.next_pid
        self.next_pid = pid + 1 if pid < 2**31 - 2 else 1000
        return pid


@dataclass(slots=True)
class _Statement:
    prepared: Prepared
    client_types: list[int]
    empty: bool = False
    # result formats (None = all text) -> (column encoders, RowDescription bytes); saves
    # rebuilding both on every Bind/Describe of a reused prepared statement.
    shapes: dict = field(default_factory=dict)

    def shape(self, formats: list[int] | None) -> tuple[list[Callable[[Any], bytes]], bytes]:
        key = tuple(formats) if formats else None
        got = self.shapes.get(key)
        if got is None:
            cols = self.prepared.columns
            got = ([], m.NO_DATA) if cols is None else _shape(cols, formats)
            self.shapes[key] = got
        return got


def _shape(cols: list, formats: list[int] | None) -> tuple[list[Callable[[Any], bytes]], bytes]:
    """Column encoders and the RowDescription of result columns ``cols`` (formats None: text)."""
    encs = [types_io.column_encoder(c.type_oid, formats[i] if formats else 0) for i, c in enumerate(cols)]
    return encs, m.row_description_msg(cols, formats)


@dataclass(slots=True)
class _Portal:
    stmt: _Statement
    params: list[Any]
    formats: list[int] | None  # per column, None = all text
    encoders: list[Callable[[Any], bytes]]
    result: Result | None = None
    offset: int = 0
    done: bool = False


def _is_empty_query(sql: str) -> bool:
    return not sql.strip().strip(";").strip()


def _error_msg(err: SqlError) -> bytes:
    return m.error_response_msg(err.severity, err.sqlstate, err.message, err.detail, err.hint, err.position,
                                getattr(err, "where", None))


def _text_encoder(type_oid: int) -> Callable[[Any], bytes]:
    return types_io.column_encoder(type_oid, 0)


@dataclass(slots=True)
class _CopyIn:
    """A COPY FROM STDIN in progress: the engine's loader and, for a simple Query, the
    suspended statement iterator to resume after CopyDone (None: extended protocol)."""

    loader: Any
    rest: Any


class PgConnection:
    """Protocol state of one client connection (no sockets here: ``write``/``close`` are
    callables supplied by the transport)."""

    def __init__(
        self,
        ctx: ServerContext,
        peer: tuple,
        write: Callable[[bytes], None],
        close: Callable[[], None],
    ) -> None:
        self.ctx = ctx
        self.peer = peer
        self._write = write
        self._close_transport = close
        self.state = STARTUP
        self.parser = m.FrameParser(ctx.max_message)
        self.out: list[bytes] = []
        self.session: Any = None
        self.user = ""
        self.database = ""
        self.params: dict[str, str] = {}
        self.pid = 0
        self.secret = 0
        self.statements: dict[str, _Statement] = {}
        self.portals: dict[str, _Portal] = {}
        # simple-query results: id(columns) -> (columns, (text encoders, RowDescription)); a
        # cached plan hands out the same columns list every time, so its row description is
        # built once (the entry keeps the list alive, so the id cannot be reused meanwhile)
        self._text_shapes: dict[int, tuple[list, tuple[list, bytes]]] = {}
        self._auth: Authenticator | None = None
        self._reported: dict[str, str] = {}
        self._session_closed = False
        self._copy: _CopyIn | None = None
        self._report = False
        self.tls = False
        self.sock_fd = -1  # the client socket's fd (set by the transport): gone-client probe
        # Supplied by the transport glue: upgrade the transport to TLS (server side).
        self.start_tls: Callable[[], Awaitable[None]] | None = None
        # Server-side termination (``terminate``): the FATAL to send once the message being
        # handled is done; ``wake`` (from the transport glue) runs the worker for it.
        self.pending_fatal: SqlError | None = None
        self.wake: Callable[[], None] | None = None
        self.conn_id = ctx.next_conn_id
        ctx.next_conn_id += 1
        self._log: Any = None  # bound on first use (binding costs more than the rest of a login)

    @property
    def log(self) -> Any:
        """This connection's logger (conn_id, peer, instance and, once known, user/database)."""
        log = self._log
        if log is None:
            peer = self.peer
            log = (self.ctx.log or structlog.get_logger("borealis.pgwire")).bind(
                conn_id=self.conn_id, peer=f"{peer[0]}:{peer[1]}" if peer else "?")
            if self.ctx.instance_name:
                log = log.bind(instance=self.ctx.instance_name)
            if self.user:
                log = log.bind(user=self.user, database=self.database, tls=self.tls)
            self._log = log
        return log

    # ------------------------------------------------------------------ framing

    def feed(self, data: bytes) -> list[Any]:
        """Decode what ``data`` completes.  Raises ProtocolError on garbage.

        In the startup phase the framing of what follows depends on the packet just read,
        so that decision is taken here, synchronously, before decoding further bytes."""
        parser = self.parser
        if not parser.startup:
            return parser.feed(data)
        msgs: list[Any] = []
        while parser.startup:
            got = parser.feed(data)
            data = b""
            if not got:
                return msgs
            msg = got[0]
            msgs.append(msg)
            if isinstance(msg, m.Startup):
                parser.expect_typed()
                msgs.extend(parser.feed(b""))
                return msgs
            if isinstance(msg, m.CancelRequest):
                return msgs
            if isinstance(msg, m.SSLRequest) and self._tls_possible():
                return msgs  # what follows must be TLS records; _on_ssl checks nothing is left
        return msgs

    def _tls_possible(self) -> bool:
        return self.ctx.ssl_context is not None and not self.tls

    # ------------------------------------------------------------------ output

    def flush(self) -> None:
        if self.out:
            data = b"".join(self.out) if len(self.out) > 1 else self.out[0]
            self.out = []
            self._write(data)

    def fatal(self, err: SqlError) -> None:
        """Send a FATAL error and close the connection (the session is closed by the owner)."""
        self.out.append(m.error_response_msg("FATAL", err.sqlstate, err.message, err.detail, err.hint))
        self.flush()
        self.state = CLOSED
        self._close_transport()

    def terminate(self, err: SqlError) -> None:
        """End this connection from the server side (e.g. its instance changed role): the
        running statement, if any, is canceled, then the client gets FATAL ``err`` and the
        connection closes -- at once when it is idle."""
        if self.closed or self.pending_fatal is not None:
            return
        self.pending_fatal = err
        intr = getattr(self.session, "interrupts", None)
        if intr is not None and intr.running:
            self.session.cancel()  # also wakes a statement waiting (pg_sleep, a row lock)
        if self.wake is not None:
            self.wake()

    def protocol_violation(self, message: str) -> None:
        self.log.warning("protocol violation", error=message)
        self.fatal(SqlError(message, sqlstate="08P01"))

    @property
    def closed(self) -> bool:
        return self.state == CLOSED

    # ------------------------------------------------------------------ dispatch

    def dispatch(self, msg: Any) -> Awaitable[None] | None:
        """Handle ``msg``.  Messages whose handling never waits (Parse, Bind, Describe,
        Close, Flush, Sync) are handled right here and None is returned; otherwise the
        returned awaitable must be awaited before the next message is dispatched.
        (Skipping a coroutine per cheap message is measurable at pgbench rates.)"""
        state = self.state
        if state == CLOSED:
            return None
        key = (state, type(msg))
        handler = _SYNC_DISPATCH.get(key)
        if handler is not None:
            try:
                handler(self, msg)
            except Exception as err:
                self._failed(err, msg)
            return None
        if key == _EXECUTE:
            return self._on_execute(msg)
        handler = _DISPATCH.get(key)
        if handler is None:
            if type(msg) is m.Terminate:
                return self._on_terminate(msg)
            if state == SKIP:
                return None  # discard until Sync
            if state == COPY_IN:
                return self._copy_interrupted(msg)
            if type(msg) is m.Unsupported:
                self._ext_error(SqlError(f"message type {msg.type.decode()!r} is not supported", sqlstate="0A000"))
            else:
                self.protocol_violation(f"unexpected message {type(msg).__name__} in state {state}")
            return None
        return self._run_async(handler, msg)

    async def handle(self, msg: Any) -> None:
        aw = self.dispatch(msg)
        if aw is not None:
            await aw

    async def _run_async(self, handler: Any, msg: Any) -> None:
        try:
            await handler(self, msg)
        except Exception as err:
            self._failed(err, msg)

    def _failed(self, err: Exception, msg: Any) -> None:
        if isinstance(err, SqlError):
            if self.state in (STARTUP, AUTH):
                if err.severity != "FATAL":
                    err.severity = "FATAL"
                self.log.info("connection refused", sqlstate=err.sqlstate, error=err.message)
                self.fatal(err)
            else:
                self._ext_error(err)
            return
        self.log.error("internal error handling message", message=type(msg).__name__, exc=traceback.format_exc())
        if self.state in (STARTUP, AUTH):
            self.fatal(SqlError("internal error during connection startup", sqlstate="XX000"))
        else:
            self._ext_error(SqlError("internal error", sqlstate="XX000"))

    def _terminated_by(self, err: SqlError) -> bool:
        """A statement canceled because the server ends the connection (``terminate``)
        reports the FATAL, as PostgreSQL's terminated backends do, not the cancel."""
        if self.pending_fatal is None or err.sqlstate != "57014":
            return False
        self.fatal(self.pending_fatal)
        return True

    def _ext_error(self, err: SqlError) -> None:
        """An error while in READY: report it, then skip to Sync (extended protocol)."""
        if self._terminated_by(err):
            return
        self.out.append(_error_msg(err))
        if self.state == READY:
            self.state = SKIP
        if err.severity in ("FATAL", "PANIC"):
            self.flush()
            self.state = CLOSED
            self._close_transport()

    # ------------------------------------------------------------------ startup

    async def _on_ssl(self, msg: Any) -> None:
        if type(msg) is m.GSSENCRequest or not self._tls_possible() or self.start_tls is None:
            if self.tls:
                self.protocol_violation("SSL request received on an encrypted connection")
                return
            self._write(b"N")
            return
        if self.parser.has_pending():
            # CVE-2021-23214: bytes sent before the handshake must not be taken as if encrypted.
            self.protocol_violation("received unencrypted data after SSL request")
            return
        self._write(b"S")
        await self.start_tls()
        if not self.closed:
            self.tls = True

    async def _on_cancel(self, msg: m.CancelRequest) -> None:
        target = self.ctx.backends.get((msg.pid, msg.secret))
        self.state = CLOSED
        self._close_transport()
        if target is None or target.session is None:
            self.log.info("cancel request for unknown backend", pid=msg.pid)
            return
        cancel = getattr(target.session, "cancel", None)
        if cancel is None:
            return
        self.log.info("cancel request", pid=msg.pid)
        res = cancel()
        if inspect.isawaitable(res):
            await res

    async def _on_startup(self, msg: m.Startup) -> None:
        params = msg.params
        user = params.get("user", "")
        if not user:
            raise SqlError("no PostgreSQL user name specified in startup packet", sqlstate="28000", )
        self.user = user
        self.database = params.get("database") or user
        self.params = params
        self._log = None  # rebound with user and database
        self._auth = Authenticator(self.ctx.auth)
        addr = str(self.peer[0]) if self.peer else ""
        reply, done = self._auth.start(user, self.database, addr, self.tls)
        self.out.append(reply)
        if done:
            await self._open_session()
        else:
            self.state = AUTH
            self.flush()

    async def _on_password(self, msg: m.PasswordMessage) -> None:
        assert self._auth is not None
        reply, done = self._auth.step(msg.data)
        self.out.append(reply)
        if done:
            await self._open_session()
        else:
            self.flush()

    async def _open_session(self) -> None:
        self.state = AUTH  # errors from the factory are FATAL
        session = await self.ctx.session_factory(self.user, self.database, self.params, self.peer)
        self.session = session
        # One process id for BackendKeyData (cancel requests), pg_backend_pid(),
        # pg_stat_activity and pg_cancel_backend(): the engine session's when it has one.
        self.pid = getattr(session, "backend_pid", 0) or self.ctx.allocate_pid()
        self.secret = secrets.randbits(31)
        self.ctx.backends[(self.pid, self.secret)] = self
        if hasattr(session, "terminate"):  # pg_terminate_backend
            session.terminate = lambda: self.terminate(
                AdminShutdown("terminating connection due to administrator command"))
        intr = getattr(session, "interrupts", None)
        if intr is not None and self.sock_fd >= 0:
            # a long statement stops once its client is gone (engine.interrupts)
            intr.probe = client_gone_probe(self.sock_fd)
        status = session.parameter_status()
        self._reported = dict(status)
        out = self.out
        out.append(m.parameter_status_block(status))
        out.append(m.backend_key_data_msg(self.pid, self.secret))
        out.append(m.ready_msg(session.transaction_status))
        self.state = READY
        self.flush()
        # Per-connection lines are debug (like PostgreSQL's log_connections = off): at a few
        # hundred connects/s formatting them cost more than the rest of the login.
        if self.ctx.debug:
            self.log.debug("connection ready", pid=self.pid, application_name=self.params.get("application_name", ""))

    # ------------------------------------------------------------------ simple query

    async def _on_query(self, msg: m.Query) -> None:
        if _is_empty_query(msg.sql):
            self.out.append(m.EMPTY_QUERY)
            self.out.append(m.ready_msg(self.session.transaction_status))
            self.flush()
            return
        self._report = False
        await self._drive_query(self.session.execute(msg.sql).__aiter__(), False)

    async def _drive_query(self, results: Any, any_result: bool) -> None:
        """Send the results of a simple Query until it ends (ReadyForQuery) or stops at a
        COPY FROM STDIN (CopyInResponse; resumed by ``_on_copy_done``)."""
        out = self.out
        try:
            while True:
                try:
                    res = await results.__anext__()
                except StopAsyncIteration:
                    break
                any_result = True
                if type(res) is CopyInResult:
                    self._start_copy_in(res, results)
                    return
                self._send_result(res, None)
                if res.command_tag in _REPORT_TAGS:
                    self._report = True
            if not any_result:
                out.append(m.EMPTY_QUERY)
            if self._report:
                self._report_changes()
        except SqlError as err:
            if self._terminated_by(err):
                return
            out.append(_error_msg(err))
        except Exception:
            self.log.error("internal error in simple query", exc=traceback.format_exc())
            out.append(m.error_response_msg("ERROR", "XX000", "internal error"))
        out.append(m.ready_msg(self.session.transaction_status))
        self.flush()

    # ------------------------------------------------------------------ COPY

    def _start_copy_in(self, res: CopyInResult, rest: Any) -> None:
        for notice in res.notices:
            self.out.append(m.notice_response_msg(notice))
        loader = res.loader
        binary = getattr(loader, "binary", False)
        if binary:  # binary COPY fields use the same input functions as binary Bind parameters
            loader.decode_binary = lambda oid, data: types_io.decode_param(oid, 1, data)
        self._copy = _CopyIn(loader, rest)
        self.state = COPY_IN
        self.out.append(m.copy_in_response_msg(loader.column_count, binary))
        self.flush()

    def _on_copy_data(self, msg: m.CopyData) -> None:
        self._copy.loader.feed(msg.data)  # type: ignore[union-attr]

    def _ignore(self, msg: Any) -> None:
        pass

    async def _on_copy_done(self, msg: m.CopyDone) -> None:
        cp = self._copy
        assert cp is not None
        self._copy = None
        self.state = READY
        try:
            res = await cp.loader.finish()
        except SqlError as err:
            await self._copy_failed(cp, err)
            return
        self.out.append(m.command_complete_msg(res.command_tag))
        if cp.rest is not None:
            await self._drive_query(cp.rest, True)
        else:
            self.flush()

    async def _on_copy_fail(self, msg: m.CopyFail) -> None:
        cp = self._copy
        assert cp is not None
        self._copy = None
        self.state = READY
        await self._copy_failed(cp, cp.loader.fail(msg.message))

    async def _copy_interrupted(self, msg: Any) -> None:
        cp = self._copy
        assert cp is not None
        self._copy = None
        self.state = READY
        err = SqlError(f"unexpected message type 0x{ord(_msg_type(msg)):02X} during COPY from stdin",
                       sqlstate="08P01")
        cp.loader.fail("interrupted")
        await self._copy_failed(cp, err)

    async def _copy_failed(self, cp: _CopyIn, err: SqlError) -> None:
        if self._terminated_by(err):  # pg_terminate_backend during the COPY: FATAL 57P01
            if cp.rest is not None:
                await cp.rest.aclose()
            return
        self.out.append(_error_msg(err))
        if cp.rest is not None:
            await cp.rest.aclose()
            self.out.append(m.ready_msg(self.session.transaction_status))
        else:
            self.state = SKIP
        self.flush()

    def _send_copy_out(self, res: CopyOutResult) -> None:
        out = self.out
        binary = res.options is not None and res.options.format == "binary"
        out.append(m.copy_out_response_msg(len(res.copy_columns), binary))
        data = m.copy_data_msg
        encoder_for = (lambda oid: types_io.column_encoder(oid, 1)) if binary else _text_encoder
        out.extend([data(line) for line in res.lines(encoder_for)])
        out.append(m.COPY_DONE)
        out.append(m.command_complete_msg(res.command_tag))

    def _send_result(self, res: Result, portal: _Portal | None) -> None:
        out = self.out
        for notice in res.notices:
            out.append(m.notice_response_msg(notice))
        if type(res) is CopyOutResult:
            self._send_copy_out(res)
            return
        cols = res.columns
        if cols is not None:
            got = self._text_shapes.get(id(cols))
            if got is None or got[0] is not cols:
                if len(self._text_shapes) >= 256:
                    self._text_shapes.clear()
                got = self._text_shapes[id(cols)] = (cols, _shape(cols, None))
            encs, desc = got[1]
            out.append(desc)
            self._send_rows(res.rows, encs)
        out.append(m.command_complete_msg(res.command_tag))

    def _send_rows(self, rows: list, encs: list[Callable[[Any], bytes]]) -> None:
        out = self.out
        data_row = m.data_row_msg
        for row in rows:
            out.append(data_row([None if v is None else enc(v) for enc, v in zip(encs, row)]))

    def _report_changes(self) -> None:
        now = self.session.parameter_status()
        for k, v in now.items():
            if self._reported.get(k) != v:
                self.out.append(m.parameter_status_msg(k, v))
        self._reported = dict(now)

    # ------------------------------------------------------------------ extended query

    def _on_parse(self, msg: m.Parse) -> None:
        if msg.name and msg.name in self.statements:
            raise SqlError(f'prepared statement "{msg.name}" already exists', sqlstate="42P05")
        if _is_empty_query(msg.sql):
            stmt = _Statement(Prepared(msg.sql, list(msg.param_types), None), list(msg.param_types), True)
        else:
            prepared = self.session.prepare(msg.sql, list(msg.param_types))
            stmt = _Statement(prepared, list(msg.param_types))
        self.statements[msg.name] = stmt
        self.out.append(m.PARSE_COMPLETE)

    def _statement(self, name: str) -> _Statement:
        stmt = self.statements.get(name)
        if stmt is None:
            raise SqlError(f'prepared statement "{name}" does not exist', sqlstate="26000")
        return stmt

    def _portal(self, name: str) -> _Portal:
        portal = self.portals.get(name)
        if portal is None:
            raise SqlError(f'portal "{name}" does not exist', sqlstate="34000")
        return portal

    def _on_bind(self, msg: m.Bind) -> None:
        stmt = self._statement(msg.statement)
        if msg.portal and msg.portal in self.portals:
            raise SqlError(f'cursor "{msg.portal}" already exists', sqlstate="42P03")
        prepared = stmt.prepared
        types = prepared.param_types or stmt.client_types
        n = len(msg.params)
        if n != len(types) and not (stmt.empty and n == 0):
            raise SqlError(
                f'bind message supplies {n} parameters, but prepared statement "{msg.statement}" '
                f"requires {len(types)}",
                sqlstate="08P01",
            )
        pf = msg.param_formats
        if len(pf) not in (0, 1, n):
            raise SqlError(f"bind message has {len(pf)} parameter formats but {n} parameters", sqlstate="08P01")
        decode = types_io.decode_param
        params = [
            decode(types[i], pf[i] if len(pf) == n else (pf[0] if pf else 0), data)
            for i, data in enumerate(msg.params)
        ]
        cols = prepared.columns or []
        rf = msg.result_formats
        if not rf:
            formats = None
        elif len(rf) == 1:
            formats = rf * len(cols)
        elif len(rf) == len(cols):
            formats = list(rf)
        else:
            raise SqlError(
                f"bind message has {len(rf)} result formats but query has {len(cols)} columns", sqlstate="08P01"
            )
        if formats is not None and not any(formats):
            formats = None
        encs = stmt.shape(formats)[0]
        self.portals[msg.portal] = _Portal(stmt, params, formats, encs)
        self.out.append(m.BIND_COMPLETE)

    def _on_describe(self, msg: m.Describe) -> None:
        if msg.kind == "S":
            stmt = self._statement(msg.name)
            types = stmt.prepared.param_types or stmt.client_types
            self.out.append(m.parameter_description_msg(types))
            self.out.append(stmt.shape(None)[1])
        else:
            portal = self._portal(msg.name)
            if portal.result is not None and portal.result.columns is not portal.stmt.prepared.columns:
                cols = portal.result.columns
                self.out.append(m.row_description_msg(cols, portal.formats) if cols is not None else m.NO_DATA)
            else:
                self.out.append(portal.stmt.shape(portal.formats)[1])

    async def _on_execute(self, msg: m.Execute) -> None:
        """Execute, the message of every prepared execution: dispatched without the
        ``_run_async`` wrapper (one coroutine less), so it reports its own failures."""
        try:
            await self._execute(msg)
        except Exception as err:
            self._failed(err, msg)

    async def _execute(self, msg: m.Execute) -> None:
        portal = self._portal(msg.portal)
        out = self.out
        if portal.stmt.empty:
            out.append(m.EMPTY_QUERY)
            return
        res = portal.result
        if res is None:
            res = await self.session.execute_prepared(portal.stmt.prepared, portal.params, 0)
            if type(res) is CopyInResult:
                self._start_copy_in(res, None)
                return
            if type(res) is CopyOutResult:
                portal.done = True
                self._send_result(res, portal)
                return
            portal.result = res
            for notice in res.notices:
                out.append(m.notice_response_msg(notice))
            if res.command_tag in _REPORT_TAGS:
                self._report_changes()
            if res.columns is not None and len(portal.encoders) != len(res.columns):
                fmts = portal.formats
                portal.encoders = [
                    types_io.column_encoder(c.type_oid, fmts[i] if fmts and i < len(fmts) else 0)
                    for i, c in enumerate(res.columns)
                ]
        elif portal.done:
            tag = res.command_tag
            out.append(m.command_complete_msg("SELECT 0" if tag.startswith("SELECT") else tag))
            return
        if res.columns is None:
            portal.done = True
            out.append(m.command_complete_msg(res.command_tag))
            return
        rows = res.rows
        start = portal.offset
        limit = msg.max_rows
        end = len(rows) if limit <= 0 else min(len(rows), start + limit)
        self._send_rows(rows[start:end] if start or end != len(rows) else rows, portal.encoders)
        portal.offset = end
        if end < len(rows):
            out.append(m.PORTAL_SUSPENDED)
            return
        portal.done = True
        tag = res.command_tag
        if start or limit > 0:
            if tag.startswith("SELECT"):
                tag = f"SELECT {end - start}"
            elif tag.startswith("FETCH"):
                tag = f"FETCH {end - start}"
        out.append(m.command_complete_msg(tag))

    def _on_close(self, msg: m.Close) -> None:
        if msg.kind == "S":
            self.statements.pop(msg.name, None)
        else:
            self.portals.pop(msg.name, None)
        self.out.append(m.CLOSE_COMPLETE)

    def _on_flush(self, msg: m.Flush) -> None:
        self.flush()

    def _on_sync(self, msg: m.Sync) -> None:
        self.state = READY
        status = self.session.transaction_status
        if status == "I" and self.portals:
            self.portals.clear()
        self.out.append(m.ready_msg(status))
        self.flush()

    async def _on_terminate(self, msg: Any) -> None:
        self.flush()
        self.state = CLOSED
        self._close_transport()
        await self.close_session()

    # ------------------------------------------------------------------ teardown

    async def close_session(self) -> None:
        """Idempotent: unregister from the cancel registry and close the engine session."""
        if self._session_closed:
            return
        self._session_closed = True
        self.state = CLOSED
        self.ctx.backends.pop((self.pid, self.secret), None)
        intr = getattr(self.session, "interrupts", None)
        if intr is not None:
            intr.probe = None  # the fd may be reused once the transport closes it
        self.portals.clear()
        self.statements.clear()
        if self.session is not None:
            try:
                await self.session.close()
            except Exception:
                self.log.error("error closing session", exc=traceback.format_exc())
        if self.ctx.debug:
            self.log.debug("connection closed")


_Handler = Callable[[PgConnection, Any], Awaitable[None]]
_DISPATCH: dict[tuple[str, type], _Handler] = {
    (STARTUP, m.SSLRequest): PgConnection._on_ssl,
    (STARTUP, m.GSSENCRequest): PgConnection._on_ssl,
    (STARTUP, m.CancelRequest): PgConnection._on_cancel,
    (STARTUP, m.Startup): PgConnection._on_startup,
    (AUTH, m.PasswordMessage): PgConnection._on_password,
    (READY, m.Query): PgConnection._on_query,
    (COPY_IN, m.CopyDone): PgConnection._on_copy_done,
    (COPY_IN, m.CopyFail): PgConnection._on_copy_fail,
}
_EXECUTE = (READY, m.Execute)
_SYNC_DISPATCH: dict[tuple[str, type], Callable[[PgConnection, Any], None]] = {
    (READY, m.Parse): PgConnection._on_parse,
    (READY, m.Bind): PgConnection._on_bind,
    (READY, m.Describe): PgConnection._on_describe,
    (READY, m.Close): PgConnection._on_close,
    (READY, m.Flush): PgConnection._on_flush,
    (READY, m.Sync): PgConnection._on_sync,
    (SKIP, m.Sync): PgConnection._on_sync,
    (SKIP, m.Flush): PgConnection._on_flush,
    (COPY_IN, m.CopyData): PgConnection._on_copy_data,
    (COPY_IN, m.Sync): PgConnection._ignore,
    (COPY_IN, m.Flush): PgConnection._ignore,
    # Leftovers of a COPY that failed early: PostgreSQL accepts and ignores them.
    (READY, m.CopyData): PgConnection._ignore,
    (READY, m.CopyDone): PgConnection._ignore,
    (READY, m.CopyFail): PgConnection._ignore,
    (SKIP, m.CopyData): PgConnection._ignore,
    (SKIP, m.CopyDone): PgConnection._ignore,
    (SKIP, m.CopyFail): PgConnection._ignore,
}

_TYPE_BYTES = {m.Query: "Q", m.Parse: "P", m.Bind: "B", m.Describe: "D", m.Execute: "E", m.Close: "C"}


def _msg_type(msg: Any) -> str:
    return _TYPE_BYTES.get(type(msg), "?")
