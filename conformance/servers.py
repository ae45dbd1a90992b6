"""The servers the runner talks to.

``Target``          a DSN plus, when the runner started the server itself, the means to
                    check it and start it again after it died.
``borealis_cluster``a temporary default Borealis cluster (server.launcher.Cluster in a temp
                    dir, free ports, one reader) for runs without ``--dsn``.
``scratch_postgres``a throwaway real PostgreSQL 15 (initdb into a temp dir, pg_ctl on a free
                    port, unix socket in the temp dir) used to record expected output.  When
                    we are root the server runs as the ``postgres`` OS user (initdb refuses
                    root), falling back to ``nobody``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import structlog

log = structlog.get_logger("conformance")

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class Target:
    dsn: str
    restart: Callable[[], None] | None = None  # set when we own the server
    diagnose: Callable[[], str] | None = None  # the writer's log tail, when we own it

    def with_db(self, db: str) -> str:
        """The DSN pointing at database ``db`` (URL or key=value form)."""
        info = psycopg.conninfo.conninfo_to_dict(self.dsn)
        info["dbname"] = db
        return psycopg.conninfo.make_conninfo(**info)

    def alive(self, timeout: int = 5) -> str | None:
        """None when the server answers ``SELECT 1``, else the reason it does not."""
        try:
            with psycopg.connect(self.dsn, connect_timeout=timeout, autocommit=True) as conn:
                conn.execute("SELECT 1")
            return None
        except Exception as e:  # noqa: BLE001 -- any failure means "not usable"
            return f"server not reachable: {str(e).strip().splitlines()[0] if str(e).strip() else e!r}"

    def recover(self, reason: str) -> None:
        """Restart a server we own that is up but stuck (a statement that no cancel stops,
        e.g. a commit that never completes): later files would hang on it one by one."""
        if self.restart is None:
            return
        log.warning("server stuck, restarting", reason=reason)
        try:
            self.restart()
        except Exception as e:  # noqa: BLE001
            log.error("restart failed", error=str(e).splitlines()[0])

    def ensure_alive(self) -> str | None:
        """Check the server; restart it when we own it.  Returns the problem seen, if any."""
        problem = self.alive()
        if problem and self.restart is not None:
            tail = self.diagnose() if self.diagnose else ""
            log.warning("server down, restarting", problem=problem, log_tail=tail)
            last = [x for x in tail.splitlines() if x.strip()]
            if last:
                problem += f" (writer log: {last[-1].strip()[:300]})"
            try:
                self.restart()
            except Exception as e:  # noqa: BLE001
                log.error("restart failed", error=str(e).splitlines()[0])
        return problem


@contextlib.contextmanager
def borealis_cluster() -> Iterator[Target]:
    from server.launcher import Cluster  # late: only needed without --dsn

    with tempfile.TemporaryDirectory(prefix="borealis-conf-") as tmp:
        c = Cluster(tmp)
        c.create(port=None, readers=1)
        try:
            c.start()
            yield Target(c.dsn("writer"), restart=lambda: _restart(c), diagnose=lambda: c.tail("i1", 30))
        finally:
            c.stop_all()


def _restart(c) -> None:
    """Bring a cluster we own back after it stopped answering.  A part that is still
    running but does not answer (an instance stuck in a statement holds its port) would
    make ``start_missing`` a no-op, so everything is stopped first -- SIGTERM, then SIGKILL
    for what does not exit -- and started again; the volume's data survives on storage."""
    c.stop_all(timeout=5)
    c.start_missing(timeout=90)


def _server_user() -> str | None:
    """The OS user to run postgres as (None: ourselves, when not root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise RuntimeError("running as root and no 'postgres' or 'nobody' user to run PostgreSQL as")


@contextlib.contextmanager
def scratch_postgres() -> Iterator[Target]:
    from server.launcher import free_ports

    user = _server_user()
    as_user = ["runuser", "-u", user, "--"] if user else []
    tmp = Path(tempfile.mkdtemp(prefix="pg15-scratch-"))
    data = tmp / "data"
    try:
        if user:
            shutil.chown(tmp, user)
        subprocess.run([*as_user, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres",
                        "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C"],
                       check=True, capture_output=True)
        port = free_ports(1)[0]
        opts = f"-p {port} -k {tmp} -c listen_addresses='' -c fsync=off"
        subprocess.run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts,
                        "-l", str(tmp / "log"), "-w", "start"], check=True, capture_output=True)
        try:
            yield Target(f"host={tmp} port={port} user=postgres dbname=postgres")
        finally:
            subprocess.run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate",
                            "stop"], capture_output=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
