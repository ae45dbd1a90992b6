"""The two systems under test, each started fresh in its own temporary directory.

ScratchPostgres: ``initdb`` + ``postgres`` from /usr/lib/postgresql/15/bin with default settings
(fsync on).  PostgreSQL refuses to run as root, so when we are root both run as an
unprivileged user (``nobody``) via ``runuser``; the data dir and the unix-socket dir are
temp dirs owned by that user.  Clients connect over TCP on 127.0.0.1 and a free port, like
they do to Borealis, and authentication is ``trust``.

ScratchBorealis: ``server.launcher.Cluster`` with the launcher's defaults (6 storage nodes,
writer i1, reader i2, endpoint proxy) on free ports.

Both are context managers exposing ``name``, ``dsn`` (the writer), ``port`` and ``pids()``
(name -> pid of every server process).  Borealis also has ``reader_dsn``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from server.launcher import Cluster, accepts, free_ports

PG_BIN = Path("/usr/lib/postgresql/15/bin")
HOST = "127.0.0.1"
# Clients default to sslmode=prefer; Borealis offers TLS and the scratch PostgreSQL does not,
# so without this Borealis alone would pay for encryption.
NO_TLS = "?sslmode=disable"


class ScratchPostgres:
    name = "postgresql"
    reader_dsn: str | None = None

    def __init__(self, user: str = "nobody") -> None:
        self.user = user if os.geteuid() == 0 else None
        self.root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.data = self.root / "data"
        self.sock = self.root / "sock"
        self.port = free_ports(1)[0]
        self.proc: subprocess.Popen | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/postgres?sslmode=disable"

    def _as_user(self, args: list[str]) -> list[str]:
        return ["runuser", "-u", self.user, "--", *args] if self.user else args

    def __enter__(self) -> ScratchPostgres:
        self.sock.mkdir()
        if self.user:
            pw = pwd.getpwnam(self.user)
            for p in (self.root, self.sock):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        subprocess.run(
            self._as_user([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                           "--no-sync", "-E", "UTF8", "--locale=C"]),
            check=True, capture_output=True, cwd=self.root,
        )
        self.log = open(self.root / "postgres.log", "ab")
        self.proc = subprocess.Popen(
            self._as_user([str(PG_BIN / "postgres"), "-D", str(self.data), "-p", str(self.port),
                           "-k", str(self.sock), "-c", f"listen_addresses={HOST}"]),
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=self.root, start_new_session=True,
        )
        end = time.monotonic() + 30
        while not accepts(HOST, self.port):
            if self.proc.poll() is not None or time.monotonic() > end:
                raise RuntimeError("postgres did not start: " + (self.root / "postgres.log").read_text()[-2000:])
            time.sleep(0.05)
        time.sleep(0.2)  # the port accepts slightly before start-up completes
        return self

    def pids(self) -> dict[str, int]:
        """The postmaster (from postmaster.pid: ``runuser`` forks, so it is not our child) and
        its current children (background workers; client backends come and go)."""
        try:
            pm = int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return {}
        out = {"postmaster": pm}
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid == pm:
                    out[f"postgres-{d.name}"] = int(d.name)
        return out

    def __exit__(self, *exc: object) -> None:
        pm = self.pids().get("postmaster")
        if pm:
            os.kill(pm, signal.SIGINT)  # fast shutdown
        if self.proc is not None:
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()
        shutil.rmtree(self.root, ignore_errors=True)


class ScratchBorealis:
    name = "borealis"

    def __init__(self, keep: bool = False, manager: bool = True) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bench-borealis-"))
        self.cluster = Cluster(self.root / "data")
        self.keep = keep
        self.manager = manager

    @property
    def dsn(self) -> str:
        return self.cluster.dsn("writer") + NO_TLS

    @property
    def reader_dsn(self) -> str:
        return self.cluster.dsn("reader") + NO_TLS

    @property
    def port(self) -> int:
        return next(e.port for e in self.cluster.conf.endpoints if e.name == "writer")

    def writer_pid(self) -> int | None:
        writer = next(i.name for i in self.cluster.conf.instances if i.role == "writer")
        return self.cluster.pid(writer)

    def __enter__(self) -> ScratchBorealis:
        self.cluster.create(port=None)
        self.cluster.start_missing(timeout=90)
        if not self.manager and "manager" in self.cluster.running():
            self.cluster.stop(["manager"])  # no automatic failover during the run
        self._wait_serving(60.0)
        return self

    def ensure_serving(self, timeout: float = 30.0) -> None:
        """Before each workload: after a failover the new writer needs a moment."""
        try:
            self._wait_serving(timeout)
        except RuntimeError:
            pass  # the workload itself will fail and report why

    def manager_events(self) -> list[dict]:
        """The manager's failover/switchover events so far (run/manager.events.json)."""
        import json

        try:
            return json.loads((self.cluster.run_dir / "manager.events.json").read_text())
        except (OSError, ValueError):
            return []

    def _wait_serving(self, timeout: float) -> None:
        """Ports accepting is not enough: wait until both endpoints answer a query."""
        import asyncio

        import asyncpg

        async def probe() -> None:
            end = time.monotonic() + timeout
            for dsn in (self.dsn, self.reader_dsn):
                while True:
                    try:
                        conn = await asyncpg.connect(dsn, timeout=5)
                        try:
                            await conn.fetchval("select 1")
                        finally:
                            await conn.close()
                        break
                    except (OSError, asyncpg.PostgresError, asyncio.TimeoutError) as e:
                        if time.monotonic() > end:
                            raise RuntimeError(f"{dsn} does not answer: {e}") from e
                        await asyncio.sleep(0.2)

        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(1) as ex:  # we may be called from inside a running loop
            ex.submit(asyncio.run, probe()).result()

    def expected_parts(self) -> list[str]:
        return [p.name for p in self.cluster.parts() if self.manager or p.name != "manager"]

    def pids(self) -> dict[str, int]:
        return self.cluster.running()

    def __exit__(self, *exc: object) -> None:
        self.cluster.stop_all()
        if self.keep:
            print(f"kept {self.root} (logs under data/logs)", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)
