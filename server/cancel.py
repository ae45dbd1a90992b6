"""Cancel requests that work while the event loop is busy, and probing for a gone client.

A CancelRequest normally arrives on the pg port, which the instance's event loop serves: a
CPU-bound statement keeps that loop busy, so the request would be read only once the
statement it was meant to stop has ended.  Each instance therefore also takes cancel
requests on a Unix socket (``DATA_DIR/run/<name>.cancel``) served by a small thread, and
the endpoint proxy sends the CancelRequests it receives there (``send_cancel``):

    proxy -> instance, one fresh connection per request, no reply:
        int32 16 | int32 80877102 | int32 pid | int32 secret key      (the client's packet)

The thread looks the key up in the pg server's backend registry (a dict read under the
GIL), marks the running statement of that session canceled in its ``Interrupts`` -- which
the executor polls between rows -- and schedules ``session.cancel(stmt)`` on the loop to
wake a statement that waits (a lock wait).  A wrong key cancels nothing; a session that
runs no statement ignores the request (``engine.interrupts``).

Limit: a CancelRequest sent inside TLS (asyncpg with sslmode=prefer/require does that;
libpq -- psql, psycopg -- always sends it in plain text) can only be read by the instance
that terminates the TLS session, on its event loop: it takes effect at the statement's
next await point, not in the middle of a CPU-bound statement.  The same holds for a
CancelRequest sent straight to an instance's pg port instead of through an endpoint.  statement_timeout and the
gone-client probe still stop such a statement.

``client_gone_probe`` tells whether a client socket's peer has closed (POLLRDHUP), so a
statement whose client disappeared (psql killed) stops instead of running to its end.
"""

from __future__ import annotations

import asyncio
import select
import socket
import struct
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from server.localpeer import admit, restrict

log = structlog.get_logger("cancel")

CANCEL_CODE = 80877102
_PACKET = struct.Struct(">iiii")
MAX_PATH = 100  # sun_path is 108 bytes on Linux


def cancel_socket_path(data_dir: str | Path, instance: str) -> Path | None:
    p = Path(data_dir).resolve() / "run" / f"{instance}.cancel"
    return p if len(str(p)) <= MAX_PATH else None


def parse_cancel(packet: bytes) -> tuple[int, int] | None:
    """(pid, key) of a CancelRequest packet, None if it is not one."""
    if len(packet) != _PACKET.size:
        return None
    length, code, pid, key = _PACKET.unpack(packet)
    if length != _PACKET.size or code != CANCEL_CODE:
        return None
    return pid, key


class CancelListener:
    """Instance side: a daemon thread accepting CancelRequests on a Unix socket.

    ``backends`` is the pg server's registry ``{(pid, key): connection}`` (each connection
    has ``.session``); ``loop`` is the event loop the sessions run on."""

    def __init__(self, path: Path, backends: dict, loop: asyncio.AbstractEventLoop) -> None:
        self.path = path
        self.backends = backends
        self.loop = loop
        self.received = 0
        self._sock: socket.socket | None = None

    def start(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        self.path.parent.mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        restrict(self.path)
        sock.listen(64)
        self._sock = sock
        threading.Thread(target=self._serve, name="cancel", daemon=True).start()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def _serve(self) -> None:
        sock = self._sock
        while sock is not None:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                if not admit(conn, f"cancel {self.path.name}"):  # only the cluster's own user
                    continue
                conn.settimeout(1.0)
                try:
                    data = b""
                    while len(data) < _PACKET.size:
                        chunk = conn.recv(_PACKET.size - len(data))
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    continue
            got = parse_cancel(data)
            if got is not None:
                self.received += 1
                self.deliver(*got)

    def deliver(self, pid: int, key: int) -> bool:
        """Cancel the statement running in backend (pid, key); False if nothing was canceled."""
        target = self.backends.get((pid, key))
        session = getattr(target, "session", None)
        intr = getattr(session, "interrupts", None)
        if intr is None:
            log.info("cancel request for unknown backend", pid=pid)
            return False
        stmt = intr.request_cancel()
        if stmt is None:
            return False
        log.info("cancel request", pid=pid, via="thread")
        try:
            self.loop.call_soon_threadsafe(session.cancel, stmt)
        except RuntimeError:  # the loop is closed: the instance is stopping
            pass
        return True


def send_cancel(path: Path, packet: bytes, timeout: float = 1.0) -> None:
    """Hand a CancelRequest packet to the instance listening at ``path`` (raises OSError)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        s.sendall(packet)


def client_gone_probe(fd: int) -> Callable[[], bool]:
    """A probe answering True once the peer of socket ``fd`` has closed or reset it."""
    gone = select.POLLRDHUP | select.POLLHUP | select.POLLERR | select.POLLNVAL

    def probe() -> bool:
        p = select.poll()
        p.register(fd, select.POLLRDHUP)
        try:
            events = p.poll(0)
        except OSError:
            return True
        return any(ev & gone for _, ev in events)

    return probe


def socket_fd(transport: Any) -> int:
    """The file descriptor under an asyncio transport (-1 if it has none)."""
    try:
        sock = transport.get_extra_info("socket")
        return sock.fileno() if sock is not None else -1
    except (AttributeError, OSError, ValueError):
        return -1


__all__ = ["CancelListener", "cancel_socket_path", "client_gone_probe", "parse_cancel", "send_cancel", "socket_fd"]
