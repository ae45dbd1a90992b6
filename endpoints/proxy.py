"""The endpoint proxy: one process listening on every endpoint port of ``cluster.json``.

Balancing is per connection, never per statement (as Aurora's endpoints do):

    1. a client connects to an endpoint port; what it sends before a backend is attached
       is held (a startup packet: a few hundred bytes at most);
    2. ``Router.candidates`` names the instances to try in order (writer endpoint: the
       writer; reader endpoint: the readers round robin or least connections, then the
       writer as a fallback; instance and custom endpoints: see ``endpoints.routing``);
    3. the proxy connects to the first candidate that accepts (1 s each);
    4. from then on bytes are relayed both ways untouched -- an SSLRequest is answered by
       the instance itself -- with flow control: when one side's write buffer fills,
       reading from the other side pauses until it drains;
    5. when either side closes, the other is closed (after flushing what is buffered).

A CancelRequest (the whole first packet of a connection: int32 16, int32 80877102, pid,
key) is not relayed to the routed instance but sent to every instance of the cluster,
each on a new connection (to its cancel socket, served by a thread, when the instance is on
this host -- see ``server.cancel`` -- else to its pg port): the session to cancel may live on another instance than the
one this connection was routed to (reader endpoints balance), and an instance ignores a
key it does not know.  (Sniffing BackendKeyData instead would not work once the session
is TLS-encrypted end to end.)

If no candidate accepts, the proxy speaks to the client itself: it answers encryption
requests with 'N' and the startup message with a FATAL ErrorResponse, SQLSTATE 57P03
(cannot_connect_now), then closes.

``cluster.json`` is re-read when its mtime changes (checked on every new connection and
every 0.2 s), so role changes after a failover, new readers and endpoint changes take
effect for the next connection.  On a reload the proxy

    * binds a listener for every endpoint it does not listen for yet, and closes the
      listener of an endpoint that is gone or moved to another port -- closing a listener
      never closes the connections it accepted;
    * closes the connections it relayed through the writer endpoint to an instance that is
      no longer the writer (the old writer is dead or fenced: its sessions cannot commit);
      every other established connection stays where it is.

Every 0.2 s (when something changed) the proxy writes ``DATA_DIR/run/endpoints.state.json``:

    {"endpoints": {name: [instance, ...]},               # members right now
     "connections": {instance: open connections},        # over all endpoints
     "endpoint_connections": {name: {instance: open}},   # per endpoint, per backend
     "routed": {name: {instance: connections routed}}}   # since the proxy started

Open counts cover relayed connections only: a connection handed off to an instance
(server.handoff) is the instance's from then on, and the instance itself reports its open
sessions (``borealis status``, ``instances[].connections``).  ``routed`` counts both.

which ``borealis status`` reads.

Run as ``python -m endpoints.proxy --data-dir DIR``; logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

import structlog
import uvloop

from server.cancel import cancel_socket_path
from server.handoff import hand_off, handoff_enabled, socket_path

from endpoints.pgwire import CANCEL_REQUEST, Refusal
from endpoints.routing import Router
from engine.errors import SqlError
from server.config import ClusterConf, EndpointConf, InstanceConf
from server.logs import configure

CONNECT_TIMEOUT = 1.0
TICK = 0.2
REFUSAL_TIMEOUT = 5.0
STATE_FILE = "endpoints.state.json"

HANDOFF_WAIT = 5.0  # how long to wait for a client's first packet before relaying
log = structlog.get_logger("endpoints")


class CannotConnectNow(SqlError):
    sqlstate = "57P03"
    severity = "FATAL"


class _Side(asyncio.Protocol):
    """One end of a relayed connection; ``peer`` is the other end's protocol."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Side | None = None
        self.closed = False

    def data_received(self, data: bytes) -> None:
        peer = self.peer
        if peer is not None and peer.transport is not None and not peer.transport.is_closing():
            try:
                peer.transport.write(data)
            except RuntimeError:  # uvloop: the other side closed in the meantime
                if self.transport is not None:
                    self.transport.close()

    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.transport.is_closing():
            try:
                self.peer.transport.pause_reading()
            except RuntimeError:
                pass

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None and not self.peer.transport.is_closing():
            try:
                self.peer.transport.resume_reading()
            except RuntimeError:
                pass

    def eof_received(self) -> bool:
        return False  # close our side; connection_lost closes the peer

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


class BackendSide(_Side):
    def __init__(self, proxy: "Proxy", client: "ClientSide", instance: str) -> None:
        super().__init__()
        self.proxy = proxy
        self.peer = client
        self.instance = instance
        self.endpoint = client.endpoint
        self.kind = client.kind  # the endpoint's kind when the connection was made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.proxy.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.proxy.closed(self)
        super().connection_lost(exc)


class ClientSide(_Side):
    def __init__(self, proxy: "Proxy", endpoint: str) -> None:
        super().__init__()
        self.proxy = proxy
        self.endpoint = endpoint
        self.kind = ""
        self.refusal: Refusal | None = None
        self.first = True  # nothing received yet: the first packet may be a CancelRequest

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.early = bytearray()  # what the client sends before a backend is attached
        self.got_data = asyncio.get_running_loop().create_future()
        self.handed_off = False
        self.proxy.spawn(self.proxy.attach(self))

    def data_received(self, data: bytes) -> None:
        if self.first:
            self.first = False
            if len(data) == 16 and data[:8] == _CANCEL_HEAD:
                self.proxy.spawn(self.proxy.broadcast_cancel(bytes(data)))
                self.refusal = None
                if self.transport is not None:
                    self.transport.close()
                return
        if self.refusal is not None:
            reply, done = self.refusal.feed(data)
            if reply and self.transport is not None:
                self.transport.write(reply)
            if done and self.transport is not None:
                self.transport.close()
            return
        if self.peer is None:
            self.early += data
            if not self.got_data.done():
                self.got_data.set_result(None)  # all bytes read so far travel with a hand-off
            return
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        got = getattr(self, "got_data", None)
        if got is not None:
            _release(got)  # attach stops waiting for a first packet
        super().connection_lost(exc)

    def attached(self, backend: _Side) -> None:
        self.peer = backend
        if self.early and backend.transport is not None:
            backend.transport.write(bytes(self.early))
        self.early = bytearray()

    def refuse(self, err: SqlError) -> None:
        assert self.transport is not None
        self.refusal = Refusal(err)
        early, self.early = bytes(self.early), bytearray()
        if early:
            self.data_received(early)
        if not self.transport.is_closing():
            asyncio.get_running_loop().call_later(REFUSAL_TIMEOUT, self.transport.close)


_CANCEL_HEAD = (16).to_bytes(4, "big") + CANCEL_REQUEST.to_bytes(4, "big")


def _release(fut: asyncio.Future) -> None:
    """Stop waiting for a client's first packet (it may never come; then the proxy relays)."""
    if not fut.done():
        fut.set_result(None)


class Proxy:
    """Owns the routing table, the listening servers and the per-instance counters."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._stamp: tuple[int, int, int] | None = None
        self.router = Router(ClusterConf())
        self.connections: dict[str, int] = {}
        self.backends: set[BackendSide] = set()
        self.servers: dict[str, tuple[int, asyncio.AbstractServer]] = {}  # endpoint -> (port, server)
        self._bind_failed: set[tuple[str, int]] = set()
        self._last_state: str = ""
        self._tasks: set[asyncio.Task] = set()  # strong refs: the loop keeps only weak ones
        self.handoff = handoff_enabled()  # pass sockets to local instances instead of relaying
        self.handed_off: dict[str, int] = {}
        self.routed: dict[str, dict[str, int]] = {}  # endpoint -> instance -> connections routed
        self._handoff_paths: dict[str, Path | None] = {}  # instance -> hand-off socket path
        self.reload()

    def spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- configuration ---------------------------------------------------------------
    def reload(self) -> None:
        try:
            stamp = ClusterConf.stamp(self.data_dir)
        except OSError:
            return
        if stamp == self._stamp:
            return
        try:
            conf = ClusterConf.load(self.data_dir)
        except (OSError, ValueError, TypeError) as e:  # half-written or bad file: keep the old one
            log.warning("config_unreadable", error=str(e))
            return
        self._stamp = stamp
        self.router = Router(conf, self.router.positions)  # keep round-robin positions
        log.info("config_loaded", writer=getattr(conf.writer(), "name", None),
                 readers=[r.name for r in conf.readers()], endpoints=[e.name for e in conf.endpoints])
        self.cut_stale_writer_connections()

    def cut_stale_writer_connections(self) -> None:
        w = self.router.conf.writer()
        stale = [b for b in self.backends if b.kind == "writer" and (w is None or b.instance != w.name)]
        for b in stale:
            if b.transport is not None:
                b.transport.close()  # connection_lost closes the client side
        if stale:
            log.info("writer_connections_closed", count=len(stale), instances=sorted({b.instance for b in stale}))

    def opened(self, b: BackendSide) -> None:
        self.backends.add(b)
        self.connections[b.instance] = self.connections.get(b.instance, 0) + 1

    def closed(self, b: BackendSide) -> None:
        if b in self.backends:
            self.backends.discard(b)
            self.connections[b.instance] -= 1

    def count_routed(self, endpoint: str, instance: str) -> None:
        per = self.routed.setdefault(endpoint, {})
        per[instance] = per.get(instance, 0) + 1

    def endpoint(self, name: str) -> EndpointConf | None:
        return next((e for e in self.router.conf.endpoints if e.name == name), None)

    # --- connections -----------------------------------------------------------------
    def _handoff_path(self, instance: str) -> Path | None:
        """The instance's hand-off socket (cached: resolving the path costs syscalls), or None."""
        try:
            return self._handoff_paths[instance]
        except KeyError:
            path = self._handoff_paths[instance] = socket_path(self.data_dir, instance)
            return path

    def _can_hand_off(self, ep: EndpointConf | None, candidates: list) -> bool:
        """Hand-off suits endpoints that need no live connection counts, and only instances
        that listen for hand-offs (same host); otherwise the proxy relays."""
        if ep is None or getattr(ep, "policy", "") == "least_connections":
            return False
        path = self._handoff_path(candidates[0].name)
        return path is not None and path.exists()

    async def try_handoff(self, client: ClientSide, candidates: list) -> bool:
        """Pass the client socket to the first local candidate that takes it (server.handoff).
        Reading from the client pauses meanwhile: from the moment the instance holds the
        socket, whatever the client sends is the instance's to read."""
        tr = client.transport
        sock = tr.get_extra_info("socket") if tr is not None else None
        if sock is None:
            return False
        held = bytes(client.early)
        tr.pause_reading()
        for inst in candidates:
            path = self._handoff_path(inst.name)
            if path is None:
                continue
            try:
                await hand_off(path, sock, held)
            except OSError as e:
                if not isinstance(e, FileNotFoundError):
                    log.info("handoff_failed", instance=inst.name, error=str(e))
                continue
            client.handed_off = True
            client.early = bytearray()
            self.handed_off[inst.name] = self.handed_off.get(inst.name, 0) + 1
            self.count_routed(client.endpoint, inst.name)
            tr.abort()  # the instance holds the socket now; no FIN, no RST
            return True
        if not tr.is_closing():
            tr.resume_reading()
        return False

    async def attach(self, client: ClientSide) -> None:
        self.reload()
        ep = self.endpoint(client.endpoint)
        candidates = self.router.candidates(ep, self.connections) if ep is not None else []
        client.kind = ep.kind if ep is not None else ""
        loop = asyncio.get_running_loop()
        if self.handoff and candidates and self._can_hand_off(ep, candidates):
            got = client.got_data
            if not got.done():
                timer = loop.call_later(HANDOFF_WAIT, _release, got)
                await got
                timer.cancel()
            if client.closed or client.refusal is not None or client.transport is None or client.transport.is_closing():
                return
            if client.early and await self.try_handoff(client, candidates):
                return
            if client.closed:
                return
        for inst in candidates:
            if client.closed:
                return
            try:
                # asyncio.timeout, not wait_for (no inner task whose failure could go
                # unretrieved when this one is cancelled at shutdown): attach runs in a task
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    _, backend = await loop.create_connection(
                        lambda i=inst: BackendSide(self, client, i.name), self.router.conf.host, inst.port
                    )
            except (OSError, asyncio.TimeoutError) as e:
                log.info("backend_unavailable", endpoint=client.endpoint, instance=inst.name, error=str(e))
                continue
            if client.closed:
                backend.transport.close()
                return
            client.attached(backend)
            self.count_routed(client.endpoint, inst.name)
            return
        if client.closed:
            return
        log.warning("no_backend", endpoint=client.endpoint, tried=[i.name for i in candidates])
        client.refuse(CannotConnectNow(f"no instance is accepting connections for endpoint \"{client.endpoint}\""))

    async def broadcast_cancel(self, packet: bytes) -> None:
        """Send a CancelRequest to every instance (see the module docstring)."""
        loop = asyncio.get_running_loop()
        host = self.router.conf.host

        async def one(inst: InstanceConf) -> None:
            # On this host: the instance's cancel socket, served by a thread even while a
            # statement keeps its event loop busy (server.cancel); else its pg port.
            path = cancel_socket_path(self.data_dir, inst.name)
            if path is not None and path.exists():
                try:
                    async with asyncio.timeout(CONNECT_TIMEOUT):  # one() runs in gather's task
                        tr, _ = await loop.create_unix_connection(asyncio.Protocol, str(path))
                    tr.write(packet)
                    tr.close()
                    return
                except (OSError, asyncio.TimeoutError):
                    pass
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    tr, _ = await loop.create_connection(asyncio.Protocol, host, inst.port)
            except (OSError, asyncio.TimeoutError):
                return
            tr.write(packet)
            tr.close()

        await asyncio.gather(*(one(i) for i in self.router.conf.instances))
        log.info("cancel_request_forwarded", instances=len(self.router.conf.instances))

    # --- lifecycle -------------------------------------------------------------------
    async def start(self) -> None:
        await self.sync_listeners()

    async def sync_listeners(self) -> None:
        """Make the listening sockets match cluster.json's endpoints."""
        loop = asyncio.get_running_loop()
        host = self.router.conf.host
        wanted = {ep.name: ep for ep in self.router.conf.endpoints}
        for name, (port, srv) in list(self.servers.items()):
            ep = wanted.get(name)
            if ep is None or ep.port != port:
                srv.close()  # established connections stay open
                del self.servers[name]
                log.info("stopped_listening", endpoint=name, port=port)
        for name, ep in wanted.items():
            if name in self.servers:
                continue
            try:
                srv = await loop.create_server(lambda n=name: ClientSide(self, n), host, ep.port, reuse_address=True)
            except OSError as e:
                if (name, ep.port) not in self._bind_failed:  # retried every tick, logged once
                    self._bind_failed.add((name, ep.port))
                    log.warning("cannot_listen", endpoint=name, port=ep.port, error=str(e))
                continue
            self._bind_failed.discard((name, ep.port))
            self.servers[name] = (ep.port, srv)
            log.info("listening", endpoint=name, kind=ep.kind, port=ep.port)

    def state(self, members: dict[str, list[InstanceConf]]) -> dict:
        per_ep: dict[str, dict[str, int]] = {}
        for b in self.backends:
            counts = per_ep.setdefault(b.endpoint, {})
            counts[b.instance] = counts.get(b.instance, 0) + 1
        return {
            "endpoints": {name: [i.name for i in insts] for name, insts in members.items()},
            "connections": {k: v for k, v in sorted(self.connections.items()) if v},
            "endpoint_connections": {k: dict(sorted(v.items())) for k, v in sorted(per_ep.items())},
            "routed": {k: dict(sorted(v.items())) for k, v in sorted(self.routed.items())},
        }

    def write_state(self) -> None:
        members = {ep.name: self.router.members(ep) for ep in self.router.conf.endpoints}
        text = json.dumps(self.state(members))
        if text == self._last_state:
            return
        run = self.data_dir / "run"
        run.mkdir(exist_ok=True)
        tmp = run / (STATE_FILE + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, run / STATE_FILE)
        self._last_state = text

    async def housekeeping(self) -> None:
        while True:
            self.reload()
            await self.sync_listeners()
            self.write_state()
            await asyncio.sleep(TICK)

    def close(self) -> None:
        for _, srv in self.servers.values():
            srv.close()


async def serve(data_dir: Path) -> None:
    proxy = Proxy(data_dir)
    await proxy.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = loop.create_task(proxy.housekeeping())
    await stop.wait()
    log.info("stopping")
    task.cancel()
    proxy.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="endpoints.proxy", description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", required=True, type=Path)
    args = ap.parse_args(argv)
    os.umask(0o077)  # its files under the data directory: owner only
    configure("endpoints", "endpoints")
    uvloop.run(serve(args.data_dir.resolve()))


if __name__ == "__main__":
    main()
