"""A fault-injecting TCP proxy for tests: forwards a port to a target until partitioned.

    proxy = FaultProxy(listen_port, target_port).start()
    proxy.partition()   # drop every open connection, refuse new ones (closed at once)
    proxy.heal()
    proxy.stop()
Runs its own event loop in a thread.
"""

from __future__ import annotations

import asyncio
import threading


class _Pipe(asyncio.Protocol):
    def __init__(self, proxy: "FaultProxy") -> None:
        self.proxy = proxy
        self.transport: asyncio.Transport | None = None
        self.peer: "_Pipe | None" = None
        self.buffer: list[bytes] = []

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.proxy._open.add(self)

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        else:
            self.buffer.append(data)

    def connection_lost(self, exc) -> None:
        self.proxy._open.discard(self)
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.close()


class FaultProxy:
    def __init__(self, listen_port: int, target_port: int, host: str = "127.0.0.1") -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self.host = host
        self.partitioned = False
        self._open: set[_Pipe] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server = None

    def start(self) -> "FaultProxy":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(5)
        return self

    async def _serve(self) -> None:
        self._server = await self._loop.create_server(lambda: self._accept(), self.host, self.listen_port, reuse_address=True)

    def _accept(self) -> _Pipe:
        client = _Pipe(self)

        async def connect() -> None:
            if self.partitioned:
                client.transport.close()
                return
            try:
                _, upstream = await self._loop.create_connection(lambda: _Pipe(self), self.host, self.target_port)
            except OSError:
                client.transport.close()
                return
            upstream.peer, client.peer = client, upstream
            for chunk in client.buffer:
                upstream.transport.write(chunk)
            client.buffer.clear()

        self._loop.call_soon(lambda: self._loop.create_task(connect()))
        return client

    def _drop_all(self) -> None:
        for pipe in list(self._open):
            if pipe.transport is not None:
                pipe.transport.abort()

    def partition(self) -> None:
        self.partitioned = True
        self._loop.call_soon_threadsafe(self._drop_all)

    def heal(self) -> None:
        self.partitioned = False

    def stop(self) -> None:
        def close() -> None:
            self._drop_all()
            if self._server is not None:
                self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(close)
        self._thread.join(5)
