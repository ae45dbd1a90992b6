"""The simulated network: one ``SimClient`` per (caller, storage node) connection.

``SimClient`` has the surface of ``storage.client.NodeClient`` (``connect``, ``connected``,
``close``, ``call`` and the wrappers), so the real recovery, writer volume and gossip code
drive simulated nodes unchanged.  Per message the network draws a delay (so messages on
different connections, and requests handled concurrently by a node, reorder), and may
break the connection: a break fails every pending call of that connection with
``NodeUnavailable`` (what a TCP reset does); a request already in flight is delivered or
lost at random, a reply in flight is lost.  A partitioned link or a crashed node behaves
like a break.  Calls with a timeout raise ``NodeUnavailable`` when it expires.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable
from typing import Any

import msgspec

from storage import protocol as P
from storage.client import NodeError, NodeUnavailable
from storage.records import LogRecord
from storage.sim.node import Refused, SimNode


_records_dec = msgspec.msgpack.Decoder(list[LogRecord])


class Network:
    def __init__(self, rng: random.Random, nodes: Callable[[str], SimNode | None]) -> None:
        self.rng = rng
        self.nodes = nodes  # name -> live node or None
        self.cut: set[tuple[str, str]] = set()  # (caller, node) links that drop everything
        self.drop_p = 0.0  # chance that a message breaks its connection
        self.clients: list[SimClient] = []
        self.messages = 0

    def client(self, owner: str, node: str) -> "SimClient":
        c = SimClient(self, owner, node)
        self.clients.append(c)
        return c

    def delay(self) -> float:
        return self.rng.uniform(0.0002, 0.003)

    def reachable(self, owner: str, node: str) -> bool:
        n = self.nodes(node)
        return n is not None and n.alive and (owner, node) not in self.cut

    def break_link(self, owner: str, node: str) -> None:
        for c in self.clients:
            if c.owner == owner and c.name == node:
                c.reset()

    def node_down(self, node: str) -> None:
        for c in self.clients:
            if c.name == node:
                c.reset()


class SimClient:
    def __init__(self, net: Network, owner: str, name: str) -> None:
        self.net = net
        self.owner = owner
        self.name = name
        self.az = ""
        self.gen = 0  # connection generation: bumped by every (re)connect
        self._connected = False
        self._pending: dict[asyncio.Future, None] = {}  # ordered, for determinism
        self._ids = itertools.count(1)
        self.dead = False  # the owner crashed: it sends nothing any more

    @property
    def connected(self) -> bool:
        return self._connected

    async def connect(self, timeout: float = 2.0) -> None:
        await asyncio.sleep(self.net.delay())
        if self.dead or not self.net.reachable(self.owner, self.name):
            raise NodeUnavailable(f"{self.name} unreachable")
        if not self._connected:
            self._connected = True
            self.gen += 1

    def close(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._connected = False
        pending, self._pending = self._pending, {}
        for fut in pending:
            if not fut.done():
                fut.set_exception(NodeUnavailable(f"connection to {self.name} lost"))

    async def call(self, msg_type: type, timeout: float | None = 10.0, **fields: Any) -> Any:
        if self.dead:
            raise NodeUnavailable("caller is down")
        if not self._connected:
            await self.connect()
        msg = msg_type(req=next(self._ids), **fields)
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._pending[fut] = None
        net = self.net
        net.messages += 1
        gen = self.gen
        loop.call_later(net.delay(), self._deliver, msg, fut, gen)
        if net.drop_p and net.rng.random() < net.drop_p:
            loop.call_later(net.delay(), self.reset)
        try:
            reply = await asyncio.wait_for(fut, timeout) if timeout else await fut
        except asyncio.TimeoutError as e:
            raise NodeUnavailable(f"{self.name} timed out") from e
        finally:
            self._pending.pop(fut, None)
        if isinstance(reply, P.Error):
            raise NodeError(reply.code, reply.message)
        return reply

    def _deliver(self, msg: Any, fut: asyncio.Future, gen: int) -> None:
        net = self.net
        if not net.reachable(self.owner, self.name):
            self.reset()
            return
        if (gen != self.gen or fut.done()) and net.rng.random() < 0.5:
            return  # sent on a connection that broke meanwhile: lost
        node = net.nodes(self.name)
        assert node is not None

        async def serve() -> None:
            try:
                reply = await node.handle(msg)
            except Refused as e:
                reply = P.Error(req=msg.req, code=e.code, message=e.message)
            asyncio.get_running_loop().call_later(net.delay(), self._reply, reply, fut, gen)

        node.spawn(serve())

    def _reply(self, reply: Any, fut: asyncio.Future, gen: int) -> None:
        if gen == self.gen and not fut.done() and self.net.reachable(self.owner, self.name):
            fut.set_result(reply)

    # NodeClient's convenience wrappers ----------------------------------------------
    async def state(self, timeout: float = 2.0) -> P.NodeState:
        return await self.call(P.GetState, timeout=timeout)

    async def append(self, epoch: int, vdl: int, records: Any, timeout: float | None = None) -> P.AppendAck:
        if isinstance(records, msgspec.Raw):  # encoded once by the writer: the wire would decode it
            records = _records_dec.decode(records)
        return await self.call(P.Append, timeout=timeout, epoch=epoch, vdl=vdl, records=records)

    def append_nowait(self, epoch: int, vdl: int, records: Any, on_reply: Any) -> None:
        """NodeClient.append_nowait: the ack (or the failure) is handed to ``on_reply``."""
        async def run() -> None:
            try:
                ack = await self.append(epoch, vdl, records)
            except (NodeError, NodeUnavailable) as e:
                on_reply(None, e)
                return
            on_reply(ack, None)

        asyncio.ensure_future(run())

    async def fetch_log(self, pg: int, after_lsn: int, limit: int = 5_000) -> P.LogBatch:
        return await self.call(P.FetchLog, pg=pg, after_lsn=after_lsn, limit=limit)

    async def set_epoch(self, epoch: int) -> None:
        await self.call(P.SetEpoch, epoch=epoch)

    async def truncate(self, epoch: int, after_lsn: int, upto_lsn: int) -> None:
        await self.call(P.Truncate, epoch=epoch, after_lsn=after_lsn, upto_lsn=upto_lsn)
