"""Liveness that does not depend on the event loop being idle.

An instance runs queries on its event loop; a long statement keeps the loop busy for
seconds, and a heartbeat answered by that loop would make a busy writer look dead (the
manager would fail it over).  So each instance also answers pings from a small thread on a
Unix socket (``DATA_DIR/run/<name>.hb``).  The thread gets the GIL every switch interval
even while the loop computes, and reports how long ago the loop last ran a tick:

    manager -> instance:  b"ping\\n"
    instance -> manager:  b'{"pid": 123, "loop_lag": 0.004}\\n'

A frozen (SIGSTOP) or dead process answers nothing; a loop stuck for minutes shows a large
``loop_lag``.  The manager (``server.manager``) decides what counts as failed.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from pathlib import Path

from server.localpeer import admit, restrict

TICK = 0.1


def heartbeat_path(data_dir: str | Path, instance: str) -> Path | None:
    p = Path(data_dir).resolve() / "run" / f"{instance}.hb"
    return p if len(str(p)) <= 100 else None


class HeartbeatResponder:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.last_tick = time.monotonic()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        loop = asyncio.get_running_loop()

        def tick() -> None:
            self.last_tick = time.monotonic()
            loop.call_later(TICK, tick)

        tick()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        self.path.parent.mkdir(parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        restrict(self.path)
        sock.listen(16)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="heartbeat", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        assert self._sock is not None
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                if not admit(conn, f"heartbeat {self.path.name}"):  # only the cluster's own user
                    continue
                conn.settimeout(1.0)
                try:
                    conn.recv(16)
                    lag = max(0.0, time.monotonic() - self.last_tick)
                    conn.sendall(json.dumps({"pid": os.getpid(), "loop_lag": round(lag, 3)}).encode() + b"\n")
                except OSError:
                    continue

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def ping(path: Path, timeout: float = 0.4) -> dict | None:
    """The instance's answer, or None if it did not answer in time."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(path))
            s.sendall(b"ping\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(256)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)
    except (OSError, ValueError):
        return None
