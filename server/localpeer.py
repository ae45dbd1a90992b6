"""Who may use an instance's Unix sockets (hand-off, cancel, heartbeat): processes of the
user the cluster runs as, nobody else.

TLS cannot travel with a passed file descriptor, so these sockets rely on the kernel
instead: the socket file is made 0600 right after ``bind``, and each accepted connection's
peer credentials (``SO_PEERCRED``, taken by the kernel at ``connect``) must name our own
effective uid -- which also covers the instant between ``bind`` and ``chmod``.  A refused
peer is logged once, with its pid and uid, and closed before anything is read.
"""

from __future__ import annotations

import os
import socket
import struct
from pathlib import Path

import structlog

log = structlog.get_logger("localpeer")

_CRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


def restrict(path: Path) -> None:
    """Owner-only access to a socket file just bound."""
    os.chmod(path, 0o600)


def admit(conn: socket.socket, what: str) -> bool:
    """True if the peer of an accepted Unix-socket connection runs as our user; otherwise
    log the refusal and return False (the caller closes ``conn``)."""
    try:
        pid, uid, _gid = _CRED.unpack(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _CRED.size))
    except OSError as e:
        log.warning("local_connection_refused", socket=what, reason=f"no peer credentials: {e}")
        return False
    if uid != os.geteuid():
        log.warning("local_connection_refused", socket=what, peer_pid=pid, peer_uid=uid,
                    reason="peer runs as another user")
        return False
    return True
