"""An instance's admin port: state for ``borealis status`` and the redo stream to readers.

Writer side: ``RedoPublisher`` keeps the subscribed readers' connections and sends them
``Redo`` frames -- the VDL each time it advances, with the records published since
(coalesced to one frame per event-loop turn; records go out earlier only when many wait,
e.g. a bulk commit).  A reader that cannot
keep up (its socket buffer passes a limit) is disconnected; it reconnects and, having
missed records, drops its cache and reloads from storage.

Reader side: ``RedoSubscriber`` keeps a connection to the current writer's admin port
(re-reading cluster.json when it cannot connect, so it follows a new writer) and feeds
``ReaderVolume.receive``.

Both directions run over mutual TLS (``storage.mtls``): the admin port admits only peers
with the cluster's internal certificate -- readers, the cluster manager, the CLI -- so no
outsider can read the redo stream or send ``Promote``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from typing import Any, Awaitable, Callable

import msgspec
import structlog

from server import replication as R
from server.config import ClusterConf
from storage.mtls import InternalTls, Listener
from storage.records import LogRecord

log = structlog.get_logger("admin")

MAX_SUBSCRIBER_BUFFER = 64 * 1024 * 1024
# Published records wait for the VDL advance that makes them applicable and go out in the
# same frame (one frame, one reader wake-up per batch); this many (a bulk commit) go out earlier.
EAGER_RECORDS = 64
HEARTBEAT_EVERY = 0.05  # seconds: a reader tells the writer its applied point at most this often


class _AdminConn(asyncio.Protocol):
    def __init__(self, server: "AdminServer") -> None:
        self.server = server
        self.dec = R.ADMIN_REQUESTS.decoder()
        self.transport: asyncio.Transport | None = None
        self.subscribed = False
        self.reader_name = ""
        self.applied_lsn = 0
        self.last_heartbeat = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            msgs = self.dec.feed(data)
        except Exception:
            self.transport.close()  # type: ignore[union-attr]
            return
        for m in msgs:
            if isinstance(m, R.GetInstanceState):
                self.transport.write(R.ADMIN_REPLIES.frame(self.server.state(m.req)))  # type: ignore[union-attr]
            elif isinstance(m, R.Subscribe):
                self.reader_name = m.reader
                self.server.subscribe(self)
            elif isinstance(m, R.Heartbeat):
                self.applied_lsn = m.applied_lsn
                self.last_heartbeat = time.time()
            elif isinstance(m, R.Promote):
                task = asyncio.ensure_future(self._promote(m))
                self.server.tasks.add(task)  # a strong reference until it is done
                task.add_done_callback(self.server.tasks.discard)

    async def _promote(self, m: R.Promote) -> None:
        reply = await self.server.promote(m)
        t = self.transport
        if t is not None and not t.is_closing():
            t.write(R.ADMIN_REPLIES.frame(reply))

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.unsubscribe(self)


class AdminServer:
    def __init__(self, name: str, role: str, state_fn: Callable[[], dict[str, Any]]) -> None:
        self.name = name
        self.role = role
        self._state_fn = state_fn
        self.subscribers: set[_AdminConn] = set()
        self._pending: list[LogRecord] = []
        self._recent: deque[LogRecord] = deque()  # published records above the VDL
        self._vdl = 0
        self._send_scheduled = False
        self.vdl_fn: Callable[[], int] = lambda: 0
        self.tails_fn: Callable[[], dict[int, int]] = dict
        # In-place promotion (server.promote), set by a reader instance: timeout -> Promoted.
        self.promote_fn: Callable[[int, float], Awaitable[R.Promoted]] | None = None
        self._promotion: asyncio.Future | None = None
        self.tasks: set[asyncio.Task] = set()

    async def start(self, host: str, port: int, tls: InternalTls) -> Listener:
        """Listen on the admin port; only peers with the cluster's internal certificate
        (mutual TLS, ``storage.mtls``) get to send a frame."""
        return await tls.serve(lambda: _AdminConn(self), host, port, f"admin port of {self.name}")

    def state(self, req: int) -> R.InstanceState:
        s = self._state_fn()
        return R.InstanceState(
            req=req,
            name=self.name,
            role=self.role,
            state=s.get("state", "available"),
            applied_lsn=s.get("applied_lsn", 0),
            lag_ms=s.get("lag_ms", 0.0),
            vcl=s.get("vcl", 0),
            vdl=s.get("vdl", 0),
            epoch=s.get("epoch", 0),
            connections=s.get("connections", 0),
            pid=os.getpid(),
            cached_tables=s.get("cached_tables", []),
        )

    # -- in-place promotion (reader -> writer) ----------------------------------------------
    async def promote(self, m: R.Promote) -> R.Promoted:
        """Run the promotion once; a repeated request (the manager retrying) gets the same
        outcome.  A writer answers ok at once (it already is one)."""
        if self._promotion is None:
            if self.role == "writer":
                return R.Promoted(req=m.req, ok=True, error="already the writer")
            if self.promote_fn is None:
                return R.Promoted(req=m.req, ok=False, error="this instance cannot be promoted in place")
            self._promotion = asyncio.ensure_future(self.promote_fn(m.req, m.timeout))
        done: R.Promoted = await asyncio.shield(self._promotion)
        if not done.ok:
            self._promotion = None  # a failed attempt may be retried (or the manager restarts us)
        return R.Promoted(**{**msgspec.structs.asdict(done), "req": m.req})

    def become_writer(self, vdl_fn: Callable[[], int], tails_fn: Callable[[], dict[int, int]]) -> None:
        """The instance was promoted: serve ``Subscribe`` from now on."""
        self.vdl_fn = vdl_fn
        self.tails_fn = tails_fn
        self._vdl = vdl_fn()
        self.role = "writer"

    # -- redo publishing (writer) ------------------------------------------------------------
    def subscribe(self, conn: _AdminConn) -> None:
        if self.role != "writer":
            conn.transport.close()  # type: ignore[union-attr]
            return
        self._flush()  # everything before the start point goes out first to the old subscribers
        conn.subscribed = True
        self.subscribers.add(conn)
        vdl = self.vdl_fn()
        conn.transport.write(  # type: ignore[union-attr]
            R.ADMIN_REPLIES.frame(R.Redo(vdl=vdl, records=[], start=True, sent_at=time.time(), tails=dict(self.tails_fn())))
        )
        # Commits allocated but not yet durable: the new reader needs them too.
        inflight = [r for r in self._recent if r.lsn > vdl]
        if inflight:
            conn.transport.write(  # type: ignore[union-attr]
                R.ADMIN_REPLIES.frame(R.Redo(vdl=vdl, records=inflight, sent_at=time.time()))
            )
        log.info("reader_subscribed", reader=conn.reader_name)

    def unsubscribe(self, conn: _AdminConn) -> None:
        self.subscribers.discard(conn)

    def publish(self, records: list[LogRecord]) -> None:
        self._pending.extend(records)
        self._recent.extend(records)
        if len(self._pending) >= EAGER_RECORDS:
            self._schedule()

    def vdl_advanced(self, vdl: int) -> None:
        self._vdl = vdl
        recent = self._recent
        while recent and recent[0].lsn <= vdl:
            recent.popleft()
        self._schedule()

    def _schedule(self) -> None:
        if not self._send_scheduled and self.subscribers:
            self._send_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        elif not self.subscribers:
            self._pending.clear()

    def _flush(self) -> None:
        self._send_scheduled = False
        if not self.subscribers:
            self._pending.clear()
            return
        frame = R.ADMIN_REPLIES.frame(R.Redo(vdl=self.vdl_fn(), records=self._pending, sent_at=time.time()))
        self._pending = []
        for conn in list(self.subscribers):
            t = conn.transport
            if t is None or t.is_closing():
                self.subscribers.discard(conn)
                continue
            if t.get_write_buffer_size() > MAX_SUBSCRIBER_BUFFER:
                log.warning("reader_too_slow_disconnected", reader=conn.reader_name)
                self.subscribers.discard(conn)
                t.close()
                continue
            t.write(frame)

    def publish_hot_set(self, tables: list[int]) -> None:
        """Cluster cache management: tell the readers what the writer has cached (server.ccm)."""
        self._flush()  # keep the stream in order: pending redo first
        frame = R.ADMIN_REPLIES.frame(R.HotSet(tables=tables, sent_at=time.time()))
        for conn in list(self.subscribers):
            t = conn.transport
            if t is not None and not t.is_closing():
                t.write(frame)

    def replica_rows(self) -> list[dict[str, Any]]:
        return [
            {"name": c.reader_name, "applied_lsn": c.applied_lsn, "last_heartbeat": c.last_heartbeat}
            for c in self.subscribers
        ]


class _SubConn(asyncio.Protocol):
    def __init__(self, sub: "RedoSubscriber") -> None:
        self.sub = sub
        self.dec = R.ADMIN_REPLIES.decoder()
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future = asyncio.get_running_loop().create_future()
        self.stopped = False  # RedoSubscriber.stop: drop whatever still arrives
        self._last_beat = 0.0
        self._beat_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        if self.sub.stopped:
            transport.close()
            return
        transport.write(R.ADMIN_REQUESTS.frame(R.Subscribe(req=1, reader=self.sub.name)))  # type: ignore[attr-defined]

    def _heartbeat(self) -> None:
        """The applied point to the writer: at once if the last one is HEARTBEAT_EVERY old,
        else once that long has passed (not one frame, and one writer wake-up, per Redo)."""
        self._beat_timer = None
        t = self.transport
        if t is None or t.is_closing():
            return
        self._last_beat = time.monotonic()
        t.write(R.ADMIN_REQUESTS.frame(R.Heartbeat(applied_lsn=self.sub.volume.snapshot(), sent_at=time.time())))

    def data_received(self, data: bytes) -> None:
        if self.stopped or self.sub.stopped:
            if self.transport is not None:
                self.transport.close()
            return
        try:
            msgs = self.dec.feed(data)
        except Exception:
            self.transport.close()  # type: ignore[union-attr]
            return
        vol = self.sub.volume
        for m in msgs:
            if isinstance(m, R.Redo):
                if m.start:
                    vol.stream_started(m.vdl, m.tails)
                    self.sub.connected = True
                else:
                    vol.receive(m.records, m.vdl, m.sent_at)
            elif isinstance(m, R.HotSet):
                if self.sub.on_hot_set is not None:
                    self.sub.on_hot_set(m.tables)
        if self._beat_timer is None:
            wait = self._last_beat + HEARTBEAT_EVERY - time.monotonic()
            if wait <= 0:
                self._heartbeat()
            else:
                self._beat_timer = asyncio.get_running_loop().call_later(wait, self._heartbeat)

    def connection_lost(self, exc: Exception | None) -> None:
        self.sub.connected = False
        if self._beat_timer is not None:
            self._beat_timer.cancel()
            self._beat_timer = None
        if not self.closed.done():
            self.closed.set_result(None)


class RedoSubscriber:
    def __init__(self, name: str, data_dir: str, volume: Any, tls: InternalTls | None = None) -> None:
        self.name = name
        self.data_dir = data_dir
        self.volume = volume
        # the volume's (its storage connections'); None only for stand-ins without one, whose
        # plain TCP a writer's admin port refuses
        self.tls = tls if tls is not None else getattr(volume, "tls", None)
        self.connected = False
        self._task: asyncio.Task | None = None
        self.on_hot_set: Callable[[list[int]], None] | None = None  # server.ccm.CacheWarmer
        self._conn: _SubConn | None = None
        self.stopped = False

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._run())

    def stop(self) -> None:
        """Stop following the redo stream for good (the instance is being promoted): nothing
        reaches the volume after this returns."""
        self.stopped = True
        if self._task is not None:
            self._task.cancel()
            self._task = None
        conn = self._conn
        if conn is not None:
            conn.stopped = True
            if conn.transport is not None:
                conn.transport.close()
        self.connected = False

    async def _run(self) -> None:
        while True:
            try:
                conf = ClusterConf.load(self.data_dir)
                w = conf.writer()
                if w is None:
                    raise OSError("no writer in cluster.json")
                # asyncio.timeout, not wait_for: see promote.promote.  (This runs in the
                # task start() made.)
                async with asyncio.timeout(2.0):
                    if self.tls is not None:
                        _, proto = await self.tls.connect(lambda: _SubConn(self), conf.host, w.admin_port)
                    else:
                        _, proto = await asyncio.get_running_loop().create_connection(
                            lambda: _SubConn(self), conf.host, w.admin_port)
                self._conn = proto
                await proto.closed
            except (OSError, asyncio.TimeoutError) as e:
                log.debug("redo_connect_failed", error=str(e))
            await asyncio.sleep(0.3)
