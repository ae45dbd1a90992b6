"""The endpoint proxy against fake instances: per-connection round robin over readers,
fallback to the writer, a FATAL 57P03 when nothing answers, cluster.json reloads, and
byte-exact relaying of a large stream (flow control)."""

from __future__ import annotations

import os
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from server.config import ClusterConf, EndpointConf, InstanceConf
from server.launcher import accepts, free_ports


class _Echo(socketserver.BaseRequestHandler):
    """Says its instance name (one line), then echoes everything back."""

    def handle(self) -> None:
        self.request.sendall(self.server.label.encode() + b"\n")  # type: ignore[attr-defined]
        while data := self.request.recv(65536):
            self.request.sendall(data)


class FakeInstance:
    def __init__(self, name: str, port: int) -> None:
        self.name, self.port = name, port
        self.server: socketserver.ThreadingTCPServer | None = None

    def start(self) -> None:
        socketserver.ThreadingTCPServer.allow_reuse_address = True
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", self.port), _Echo)
        self.server.daemon_threads = True
        self.server.label = self.name  # type: ignore[attr-defined]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None


def _recv_line(s: socket.socket) -> bytes:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = s.recv(1)
        if not chunk:
            break
        buf += chunk
    return buf


class Setup:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        ports = free_ports(5)
        self.fakes = {n: FakeInstance(n, p) for n, p in zip(("i1", "i2", "i3"), ports)}
        self.conf = ClusterConf(
            instances=[InstanceConf("i1", "writer", ports[0], 0), InstanceConf("i2", "reader", ports[1], 0),
                       InstanceConf("i3", "reader", ports[2], 0)],
            endpoints=[EndpointConf("writer", "writer", ports[3]), EndpointConf("reader", "reader", ports[4])],
        )
        self.writer_port, self.reader_port = ports[3], ports[4]

    def backend_of(self, port: int) -> str:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            return _recv_line(s).decode().strip()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    st = Setup(tmp_path)
    st.conf.save(tmp_path)
    for f in st.fakes.values():
        f.start()
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    log = open(tmp_path / "proxy.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "endpoints.proxy", "--data-dir", str(tmp_path)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 20
    while not (accepts("127.0.0.1", st.writer_port) and accepts("127.0.0.1", st.reader_port)):
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "proxy.log").read_text()
        time.sleep(0.05)
    yield st
    proc.terminate()
    assert proc.wait(10) == 0
    log.close()
    for f in st.fakes.values():
        f.stop()
    assert "Traceback" not in (tmp_path / "proxy.log").read_text()


def test_routing_round_robin_and_fallback(setup: Setup) -> None:
    assert setup.backend_of(setup.writer_port) == "i1"
    seen = [setup.backend_of(setup.reader_port) for _ in range(4)]
    assert sorted(seen) == ["i2", "i2", "i3", "i3"] and seen[0] != seen[1]
    setup.fakes["i2"].stop()
    assert {setup.backend_of(setup.reader_port) for _ in range(3)} == {"i3"}
    setup.fakes["i3"].stop()
    assert setup.backend_of(setup.reader_port) == "i1"  # no reader: the writer takes it


def test_no_backend_gets_fatal_57p03(setup: Setup) -> None:
    setup.fakes["i1"].stop()
    with socket.create_connection(("127.0.0.1", setup.writer_port), timeout=5) as s:
        s.sendall(struct.pack(">ii", 8, 80877103))  # SSLRequest
        assert s.recv(1) == b"N"
        s.sendall(struct.pack(">ii", 9, 196608) + b"\0")  # StartupMessage
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert data[:1] == b"E"
    fields = dict((f[:1], f[1:]) for f in data[5:].split(b"\0") if f)
    assert fields[b"S"] == b"FATAL" and fields[b"C"] == b"57P03"
    assert b"writer" in fields[b"M"]


def test_reload_after_role_change(setup: Setup) -> None:
    assert setup.backend_of(setup.writer_port) == "i1"
    time.sleep(0.01)  # a distinct mtime
    setup.conf.instances[0].role, setup.conf.instances[1].role = "reader", "writer"
    setup.conf.save(setup.data_dir)
    os.utime(setup.data_dir / "cluster.json")
    assert setup.backend_of(setup.writer_port) == "i2"
    assert {setup.backend_of(setup.reader_port) for _ in range(4)} == {"i1", "i3"}


def test_large_stream_relayed_exactly(setup: Setup) -> None:
    payload = os.urandom(1 << 16) * 128  # 8 MiB
    got = bytearray()
    with socket.create_connection(("127.0.0.1", setup.writer_port), timeout=10) as s:
        assert _recv_line(s) == b"i1\n"

        def reader() -> None:
            while len(got) < len(payload):
                chunk = s.recv(1 << 16)
                if not chunk:
                    return
                got.extend(chunk)

        t = threading.Thread(target=reader)
        t.start()
        s.sendall(payload)
        t.join(30)
    assert bytes(got) == payload
