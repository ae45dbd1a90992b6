"""A whole cluster for tests: real processes on free loopback ports, in a temporary dir.

    handle = start_cluster(tmp_dir, readers=1)   # 6 storage nodes, writer, readers, proxy
    handle.writer_dsn / handle.reader_dsn        # postgresql://postgres@127.0.0.1:PORT/postgres
    handle.launcher                              # server.launcher.Cluster: kill/start/stop/status
    handle.teardown()                            # stop all, assert no pid survives, scan logs

The teardown fails the test when a part's log holds a Python traceback (a crash that a
client may never have seen), printing the excerpt.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from server.launcher import Cluster

BAD_LOG_WORDS = ("Traceback",)


@dataclass
class ClusterHandle:
    data_dir: Path
    launcher: Cluster
    pids: dict[str, int] = field(default_factory=dict)  # every pid ever seen (for teardown)

    @property
    def writer_dsn(self) -> str:
        return self.launcher.dsn("writer")

    @property
    def reader_dsn(self) -> str:
        return self.launcher.dsn("reader")

    def instance_dsn(self, name: str) -> str:
        return self.launcher.instance_dsn(name)

    def start(self, names: list[str] | None = None, timeout: float = 60.0) -> list[str]:
        """(Re)start the named parts (default: whatever is down) and remember their pids."""
        started = self.launcher.start(names, timeout)
        self.pids.update({f"{n}@{p}": p for n, p in self.launcher.running().items()})
        return started

    def kill(self, name: str, sig: int = 9) -> int | None:
        return self.launcher.kill(name, sig)

    def status(self) -> dict:
        return self.launcher.status()

    def log_problems(self) -> list[str]:
        problems = []
        for log in sorted(self.launcher.log_dir.glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()
            for n, line in enumerate(lines):
                if any(w in line for w in BAD_LOG_WORDS):
                    excerpt = "\n".join(lines[max(0, n - 2): n + 25])
                    problems.append(f"{log.name}:{n + 1}:\n{excerpt}")
                    break
        return problems

    def teardown(self, check_logs: bool = True) -> None:
        self.launcher.stop_all()
        alive = [key for key, pid in self.pids.items() if pid_alive(pid)]
        assert not alive, f"processes survived `stop_all`: {alive}"
        if check_logs:
            problems = self.log_problems()
            assert not problems, "tracebacks in part logs:\n" + "\n\n".join(problems)


def pid_alive(pid: int) -> bool:
    """True for a live, non-zombie process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def fresh_kek_file(data_dir: Path) -> Path:
    """A fresh key-encryption key for one test cluster, beside (not in) its data directory,
    so tests never use or make the user's default key."""
    path = data_dir.parent / f"{data_dir.name}.kek"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(os.urandom(32).hex())
    return path


def start_cluster(data_dir: Path, readers: int = 1, pgs: int = 2, password: str | None = None,
                  timeout: float = 60.0, kek_file: Path | None = None) -> ClusterHandle:
    """A running cluster in ``data_dir``.  ``password``: the bootstrap superuser's (the
    caller knows it; cluster.json keeps only its verifier).  ``kek_file``: default a fresh
    one (``fresh_kek_file``)."""
    launcher = Cluster(data_dir)
    launcher.create(port=None, readers=readers, pgs=pgs, password=password,
                    kek_file=kek_file or fresh_kek_file(Path(data_dir)))
    handle = ClusterHandle(data_dir=launcher.data_dir, launcher=launcher)
    try:
        handle.start(None, timeout)
    except BaseException:
        launcher.stop_all()
        raise
    return handle


def env_without_pg() -> dict[str, str]:
    """The environment for psql subprocesses: no stray PG* settings from the caller."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PG")}


def borealis_cli(data_dir: Path, *args: str) -> str:
    """Run ``borealis ARGS --data-dir D`` and return its stdout (a failure fails the test)."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "server.cli", *args, "--data-dir", str(data_dir)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def wait_for(pred, timeout: float, what: str, interval: float = 0.2):
    """Poll ``pred`` until it returns something truthy (returned) or ``timeout`` passes."""
    import time

    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {last})")
