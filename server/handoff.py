"""Connection hand-off from the endpoint proxy to an instance on the same host.

Relaying every byte through the proxy costs two extra socket hops per round trip.  On one
host the proxy instead passes the accepted client socket itself to the chosen instance
(SCM_RIGHTS over a Unix socket) together with the bytes it has already read (the startup
or SSL request), and steps out of the data path.  Across hosts it keeps relaying.

    proxy -> instance, one message per hand-off on a fresh Unix-socket connection:
        uint32 big-endian n | n bytes already read from the client      + the client's fd
    instance -> proxy: ``k`` (received);  proxy -> instance: ``y`` (it is yours)

Exactly one party owns the client afterwards: the instance adopts the socket only on ``y``,
which the proxy sends only if ``k`` came in time.  If the proxy gives up first it closes
the Unix socket without ``y``, the instance closes its copy of the fd, and the proxy relays
(or tries another instance) knowing nobody else reads from the client.

Only processes of the cluster's user may connect (socket file 0600, peer credentials
checked at accept: ``server.localpeer``).

The instance adopts the socket with ``loop.connect_accepted_socket`` and feeds the held
bytes to the new protocol as if they had just arrived.
"""

from __future__ import annotations

import array
import asyncio
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from server.localpeer import admit, restrict

log = structlog.get_logger("handoff")

MAX_PATH = 100  # sun_path is 108 bytes on Linux
_HDR = struct.Struct(">I")


def socket_path(data_dir: str | Path, instance: str) -> Path | None:
    p = Path(data_dir).resolve() / "run" / f"{instance}.handoff"
    return p if len(str(p)) <= MAX_PATH else None


# How long the proxy waits for ``k``.  An instance whose event loop is busy (a reader just
# started and loading its catalog, a long synchronous step) confirms late; past this the
# proxy hands the client to another instance or relays.  Waiting does not block the proxy.
CONFIRM_TIMEOUT = 2.0


async def hand_off(path: Path, client: socket.socket, held: bytes, timeout: float = CONFIRM_TIMEOUT) -> None:
    """Pass ``client`` (and the bytes read from it so far) to the instance at ``path`` over
    the Unix socket (SCM_RIGHTS), without blocking the event loop while the instance
    confirms with ``k`` (a proxy that waited in a blocking recv handed off one connection
    at a time, at the pace of the instance's wake-ups).  Raises OSError if the instance
    does not take the socket in time; the caller then relays instead."""
    loop = asyncio.get_running_loop()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        # asyncio.timeout, not wait_for: wait_for runs _exchange in a task of its own, and
        # one cancelled (the proxy shutting down) just as it failed logs "Task exception was
        # never retrieved".  (asyncio.timeout needs a task: the proxy hands off from the
        # task it spawned for the client, see endpoints.proxy.)
        async with asyncio.timeout(timeout):
            await _exchange(loop, s, str(path), client.fileno(), held)
    except asyncio.TimeoutError as e:
        raise OSError("instance did not confirm the hand-off in time") from e
    finally:
        s.close()


async def _exchange(loop: asyncio.AbstractEventLoop, s: socket.socket, path: str, fd: int, held: bytes) -> None:
    await loop.sock_connect(s, path)
    payload = _HDR.pack(len(held)) + held
    sent = s.sendmsg([payload], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
    if sent < len(payload):
        await loop.sock_sendall(s, payload[sent:])
    if await loop.sock_recv(s, 1) != b"k":
        raise OSError("instance did not accept the connection")
    s.send(b"y")  # one byte on a fresh Unix socket: never blocks


class HandoffListener:
    """Instance side: adopts sockets passed by the proxy into ``protocol_factory``."""

    def __init__(self, path: Path, protocol_factory: Callable[[], asyncio.Protocol]) -> None:
        self.path = path
        self.factory = protocol_factory
        self.sock: socket.socket | None = None
        self.adopted = 0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        self.path.parent.mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        restrict(self.path)
        sock.listen(128)
        sock.setblocking(False)
        self.sock = sock
        loop.add_reader(sock.fileno(), self._accept)

    def close(self) -> None:
        if self.sock is not None:
            asyncio.get_running_loop().remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    def _accept(self) -> None:
        assert self.sock is not None
        while True:
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            if not admit(conn, f"hand-off {self.path.name}"):  # only the cluster's own user
                conn.close()
                continue
            conn.setblocking(False)
            _Receiver(self, conn).start()


class _Receiver:
    def __init__(self, owner: HandoffListener, conn: socket.socket) -> None:
        self.owner = owner
        self.conn = conn
        self.buf = b""
        self.fd: int | None = None
        self.confirmed: tuple[int, bytes] | None = None  # (fd, held) after ``k``, until ``y``

    def start(self) -> None:
        asyncio.get_running_loop().add_reader(self.conn.fileno(), self._readable)

    def _finish(self) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(self.conn.fileno())
        self.conn.close()

    def _readable(self) -> None:
        if self.confirmed is not None:
            self._await_yours()
            return
        try:
            data, ancdata, _, _ = self.conn.recvmsg(65536, socket.CMSG_SPACE(4))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None
            self._finish()
            return
        for level, kind, cdata in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS and len(cdata) >= 4:
                fds = array.array("i")
                fds.frombytes(cdata[: len(cdata) - (len(cdata) % fds.itemsize)])
                for extra in fds[1:]:
                    os.close(extra)
                if self.fd is None:
                    self.fd = fds[0]
                else:
                    os.close(fds[0])
        if not data:
            if self.fd is not None:
                os.close(self.fd)
            self._finish()
            return
        self.buf += data
        if len(self.buf) < 4:
            return
        (n,) = _HDR.unpack_from(self.buf)
        if len(self.buf) < 4 + n or self.fd is None:
            return
        held = self.buf[4 : 4 + n]
        fd, self.fd = self.fd, None
        try:
            self.conn.send(b"k")
        except OSError:
            os.close(fd)
            self._finish()
            return
        self.confirmed = (fd, held)  # the next read is ``y`` or EOF

    def _await_yours(self) -> None:
        """After ``k``: adopt on ``y``; anything else (EOF: the proxy gave up) closes the fd."""
        try:
            got = self.conn.recv(1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            got = b""
        assert self.confirmed is not None
        fd, held = self.confirmed
        self.confirmed = None
        self._finish()
        if got == b"y":
            asyncio.ensure_future(self._adopt(fd, held))
        else:
            log.info("handoff_abandoned", reason="the proxy gave up before confirming")
            os.close(fd)

    async def _adopt(self, fd: int, held: bytes) -> None:
        loop = asyncio.get_running_loop()
        client = socket.socket(fileno=fd)
        client.setblocking(False)
        try:
            transport, proto = await loop.connect_accepted_socket(self.owner.factory, client)
        except Exception as e:  # noqa: BLE001 - a broken client socket must not hurt the instance
            log.warning("handoff_adopt_failed", error=str(e))
            client.close()
            return
        self.owner.adopted += 1
        if held:
            proto.data_received(held)


def handoff_enabled() -> bool:
    return os.environ.get("BOREALIS_HANDOFF", "1") not in ("0", "false", "no")


def describe(listener: HandoffListener | None) -> dict[str, Any]:
    return {"handoff_path": str(listener.path) if listener else None, "adopted": listener.adopted if listener else 0}
