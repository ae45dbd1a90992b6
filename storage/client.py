"""Async client for one storage node: pipelined requests over one TCP connection
(mutual TLS, ``storage.mtls``, when given the cluster's ``InternalTls``)."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from typing import Any

import msgspec
import structlog

from storage import protocol as P
from storage.mtls import InternalTls

log = structlog.get_logger("storage_client")
OnReply = Callable[[Any, BaseException | None], None]  # (reply, None) or (None, NodeError | NodeUnavailable)


class NodeUnavailable(Exception):
    """The node could not be reached or the connection broke."""


class NodeError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class _Proto(asyncio.Protocol):
    def __init__(self, owner: "NodeClient") -> None:
        self.owner = owner
        self.dec = P.REPLIES.decoder()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            msgs = self.dec.feed(data)
        except Exception as e:  # corrupt stream: drop the connection
            self.owner._fail(NodeUnavailable(f"bad frame: {e}"))
            if self.transport:
                self.transport.close()
            return
        for m in msgs:
            self.owner._deliver(m)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._fail(NodeUnavailable(f"connection to {self.owner.name} lost"))


class NodeClient:
    def __init__(self, name: str, host: str, port: int, az: str = "", *, tls: InternalTls | None) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.az = az
        # required, so that no caller forgets it: None means plain TCP, which every node
        # refuses (only for code that never connects, e.g. the simulation's volumes)
        self.tls = tls
        self._proto: _Proto | None = None
        self._pending: dict[int, asyncio.Future | OnReply] = {}
        self._ids = itertools.count(1)
        self._connecting: asyncio.Lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._proto is not None and self._proto.transport is not None and not self._proto.transport.is_closing()

    async def connect(self, timeout: float = 2.0) -> None:
        async with self._connecting:
            if self.connected:
                return
            loop = asyncio.get_running_loop()
            try:
                # wait_for, not asyncio.timeout: an instance's statement handler may reach
                # here on its first step, outside any task (asyncio.timeout needs one)
                if self.tls is not None:
                    made = self.tls.connect(lambda: _Proto(self), self.host, self.port)
                else:
                    made = loop.create_connection(lambda: _Proto(self), self.host, self.port)
                _, proto = await asyncio.wait_for(made, timeout)
            except (OSError, asyncio.TimeoutError) as e:  # ssl.SSLError is an OSError
                raise NodeUnavailable(f"{self.name} unreachable: {e}") from e
            self._proto = proto

    def close(self) -> None:
        if self._proto and self._proto.transport:
            self._proto.transport.close()
        self._proto = None

    def _deliver(self, msg: Any) -> None:
        fut = self._pending.pop(msg.req, None)
        if fut is None:
            return
        if isinstance(fut, asyncio.Future):
            if not fut.done():
                fut.set_result(msg)
        else:
            try:  # runs inside data_received: an exception here would close the connection
                if isinstance(msg, P.Error):
                    fut(None, NodeError(msg.code, msg.message))
                else:
                    fut(msg, None)
            except Exception:  # noqa: BLE001
                log.exception("reply_callback_failed", node=self.name)

    def _expire(self, req: int, fut: asyncio.Future) -> None:
        if self._pending.get(req) is fut:
            del self._pending[req]
        if not fut.done():
            fut.set_exception(NodeUnavailable(f"{self.name} timed out"))

    def _fail(self, exc: Exception) -> None:
        self._proto = None
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not isinstance(fut, asyncio.Future):
                try:
                    fut(None, exc)
                except Exception:  # noqa: BLE001 -- the others must still be told
                    log.exception("reply_callback_failed", node=self.name)
            elif not fut.done():
                fut.set_exception(exc)
                fut.exception()  # mark retrieved: a caller that gave up must not log it

    def send(self, msg_type: type, on_reply: OnReply, **fields: Any) -> None:
        """``call`` without a task or a future: ``on_reply(reply, None)`` runs when the reply
        arrives, ``on_reply(None, exc)`` on an Error reply or a lost connection (at once,
        from the event loop, if there is no connection).  No timeout: for requests whose
        reply may take long (Append waits for an fsync) and whose sender re-sends on its own."""
        proto = self._proto
        transport = proto.transport if proto is not None else None
        if transport is None or transport.is_closing():
            asyncio.get_running_loop().call_soon(on_reply, None, NodeUnavailable(f"{self.name} is not connected"))
            return
        req = next(self._ids)
        self._pending[req] = on_reply
        try:
            transport.write(P.REQUESTS.frame(msg_type(req=req, **fields)))
        except RuntimeError:  # uvloop: the transport closed under us
            self._pending.pop(req, None)
            self._proto = None
            asyncio.get_running_loop().call_soon(on_reply, None, NodeUnavailable(f"connection to {self.name} closed"))

    async def call(self, msg_type: type, timeout: float | None = 10.0, **fields: Any) -> Any:
        """Send a request (``req`` is filled in) and wait for its reply."""
        if not self.connected:
            await self.connect()
        assert self._proto is not None and self._proto.transport is not None
        req = next(self._ids)
        msg = msg_type(req=req, **fields)
        fut = asyncio.get_running_loop().create_future()
        self._pending[req] = fut
        try:
            self._proto.transport.write(P.REQUESTS.frame(msg))
        except RuntimeError as e:  # uvloop: the transport closed under us
            self._pending.pop(req, None)
            self._proto = None
            raise NodeUnavailable(f"connection to {self.name} closed") from e
        # A timer fails the reply future itself (not wait_for: that raises a reply's failure
        # instead of a cancellation that arrives in the same turn, and may run outside a task)
        timer = asyncio.get_running_loop().call_later(timeout, self._expire, req, fut) if timeout else None
        try:
            reply = await fut
        finally:
            if timer is not None:
                timer.cancel()
            if fut.cancelled():  # the caller gave up: no reply is awaited any more
                self._pending.pop(req, None)
        if isinstance(reply, P.Error):
            raise NodeError(reply.code, reply.message)
        return reply

    # Convenience wrappers -------------------------------------------------------------
    async def state(self, timeout: float = 2.0) -> P.NodeState:
        return await self.call(P.GetState, timeout=timeout)

    async def append(self, epoch: int, vdl: int, records: Any, timeout: float | None = None) -> P.AppendAck:
        """``records``: a list of LogRecord, or ``protocol.encode_records(list)`` when the same
        batch goes to several nodes (encoded once)."""
        if isinstance(records, msgspec.Raw):
            return await self.call(P.EncodedAppend, timeout=timeout, epoch=epoch, vdl=vdl, records=records)
        return await self.call(P.Append, timeout=timeout, epoch=epoch, vdl=vdl, records=records)

    def append_nowait(self, epoch: int, vdl: int, records: Any, on_reply: OnReply) -> None:
        """``append`` through ``send``: ``on_reply(AppendAck, None)`` or ``(None, exc)``."""
        if isinstance(records, msgspec.Raw):
            self.send(P.EncodedAppend, on_reply, epoch=epoch, vdl=vdl, records=records)
        else:
            self.send(P.Append, on_reply, epoch=epoch, vdl=vdl, records=records)

    async def read(self, pg: int, key: bytes, at_lsn: int) -> P.ReadResult:
        return await self.call(P.Read, pg=pg, key=key, at_lsn=at_lsn)

    async def scan(self, pg: int, prefix: bytes, at_lsn: int, after: bytes | None = None, limit: int = 10_000) -> P.ScanResult:
        return await self.call(P.Scan, pg=pg, prefix=prefix, at_lsn=at_lsn, after=after, limit=limit)

    async def fetch_log(self, pg: int, after_lsn: int, limit: int = 5_000) -> P.LogBatch:
        return await self.call(P.FetchLog, pg=pg, after_lsn=after_lsn, limit=limit)

    async def set_epoch(self, epoch: int) -> None:
        await self.call(P.SetEpoch, epoch=epoch)

    async def truncate(self, epoch: int, after_lsn: int, upto_lsn: int) -> None:
        await self.call(P.Truncate, epoch=epoch, after_lsn=after_lsn, upto_lsn=upto_lsn)

    async def scrub(self, timeout: float = 60.0) -> P.ScrubResult:
        return await self.call(P.Scrub, timeout=timeout)

    async def gc(self, timeout: float = 60.0) -> P.GcResult:
        return await self.call(P.Gc, timeout=timeout)

    async def copy_versions(self, pg: int, begin: bytes, end: bytes, limit: int = 5_000) -> P.VersionBatch:
        return await self.call(P.CopyVersions, pg=pg, begin=begin, end=end, limit=limit)


def to_builtins(obj: Any) -> Any:
    return msgspec.to_builtins(obj)
