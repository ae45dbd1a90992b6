"""The socket hand-off between the endpoint proxy and an instance (server.handoff), in one
process with real sockets: exactly one party owns the client connection afterwards."""

from __future__ import annotations

import array
import asyncio
import socket
import struct
from pathlib import Path

from server.handoff import HandoffListener, hand_off


class _Echo(asyncio.Protocol):
    """Stands in for the instance's pg-wire protocol: answers every byte string with it reversed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data[::-1])  # type: ignore[attr-defined]


async def _listener(tmp_path: Path) -> HandoffListener:
    lst = HandoffListener(tmp_path / "i.handoff", _Echo)
    lst.start()
    return lst


def test_handed_off_socket_is_served_by_the_instance(tmp_path: Path) -> None:
    async def run() -> None:
        lst = await _listener(tmp_path)
        client, server_side = socket.socketpair()
        await hand_off(lst.path, server_side, b"abc")
        server_side.close()  # the proxy's copy goes; the instance keeps the connection open
        await asyncio.sleep(0.05)
        assert lst.adopted == 1
        client.setblocking(False)
        loop = asyncio.get_running_loop()
        assert await asyncio.wait_for(loop.sock_recv(client, 10), 2) == b"cba"  # the held bytes
        await loop.sock_sendall(client, b"xyz")
        assert await asyncio.wait_for(loop.sock_recv(client, 10), 2) == b"zyx"
        client.close()
        lst.close()

    asyncio.run(run())


def test_proxy_that_gives_up_after_k_keeps_sole_ownership(tmp_path: Path) -> None:
    """The race of a hand-off timing out just as the instance confirms: the proxy read no
    ``k`` in time and closes the Unix socket.  The instance must not adopt the client (the
    proxy relays it or hands it to another instance), and must close its copy of the fd."""

    async def run() -> None:
        lst = await _listener(tmp_path)
        client, server_side = socket.socketpair()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(lst.path))
        held = b"abc"
        s.sendmsg([struct.pack(">I", len(held)) + held],
                  [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [server_side.fileno()]))])
        loop = asyncio.get_running_loop()
        s.setblocking(False)
        assert await asyncio.wait_for(loop.sock_recv(s, 1), 2) == b"k"
        s.close()  # gave up: no ``y``
        await asyncio.sleep(0.1)
        assert lst.adopted == 0, "the instance adopted a client the proxy still owns"
        # The proxy still serves the client alone: what the client sends reaches only it.
        client.sendall(b"hello")
        server_side.settimeout(2)
        assert server_side.recv(10) == b"hello"
        client.close()
        server_side.close()
        lst.close()

    asyncio.run(run())
