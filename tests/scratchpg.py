"""A scratch PostgreSQL 15 for tests that compare Borealis with the real thing.

``scratch_postgres()`` initdb's a server into a fresh tmp dir, listening only on a Unix
socket there (as root it runs as ``nobody``: initdb refuses root), yields its socket
directory and port, and stops it afterwards.  It skips the test when the PostgreSQL 15
binaries are not installed.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cluster import wait_for

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def scratch_postgres() -> Iterator[tuple[Path, int]]:
    if not (PG_BIN / "initdb").exists() or shutil.which("psql") is None:
        pytest.skip("PostgreSQL 15 server binaries or psql not installed")
    # Not under pytest's basetemp: a concurrent pytest run resets /tmp/pytest-of-<user> to
    # 0700, and the server (running as nobody) would lose its way to the directory.
    base = Path(tempfile.mkdtemp(prefix="scratchpg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root and runuser is missing: initdb refuses root")
        prefix = ["runuser", "-u", "nobody", "--"]
        os.chmod(base, 0o777)
    data = base / "data"
    subprocess.run([*prefix, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                    "--locale=C.UTF-8", "-E", "UTF8"], check=True, capture_output=True)
    port = _free_port()
    proc = subprocess.Popen([*prefix, str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(base),
                             "-c", "listen_addresses="], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def answers() -> bool:
            if proc.poll() is not None:
                pytest.fail("scratch PostgreSQL exited while starting")
            return subprocess.run(["psql", "-h", str(base), "-p", str(port), "-U", "postgres", "-XAtc", "select 1"],
                                  capture_output=True).returncode == 0

        wait_for(answers, 60, "scratch PostgreSQL to start", interval=0.1)  # the machine may be busy
        yield base, port
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(base, ignore_errors=True)
