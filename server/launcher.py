"""Starting and stopping the processes of one cluster (used by the CLI and by the tests).

Every part of a cluster is its own OS process, started with this interpreter
(``sys.executable``) in a new session, so a terminal's Ctrl-C never reaches it and its whole
process group can be signalled:

    part        command                                                    ready when
    s1..s6      python -m storage.node   --data-dir DIR --name s1           its port accepts
    i1 (writer) python -m server.instance --data-dir DIR --name i1          its pg port accepts
    i2.. (rdr)  python -m server.instance --data-dir DIR --name i2          its pg port accepts
    endpoints   python -m endpoints.proxy --data-dir DIR                    every endpoint port
    manager     python -m server.manager --data-dir DIR                     its pid file is live

Files under DIR:

    cluster.json            the layout (server.config.ClusterConf), written by ``create``;
                            the password only as its SCRAM verifier, the volume's data key
                            only wrapped by the KEK (storage.atrest)
    cluster.lock            flock'd around every read-modify-write of cluster.json
    run/<part>.pid          pid of the running part
    logs/<part>.log         stdout + stderr of the part (appended across restarts)

The manager (``server.manager``) owns the writer role while it runs: it fails over when the
writer dies.  So ``start`` does not restart a dead writer itself when the manager is
running: it first waits (up to ``FAILOVER_WAIT`` s) until the manager has promoted a
reader -- the dead writer is then a reader in cluster.json and comes back as one.

Everything under DIR is the owner's only: DIR is 0700, what the launcher writes is made
under umask 077 (directories 0700, files 0600), and every part runs with umask 077 too (so
RocksDB's SST, WAL and MANIFEST files come out 0600).  ``start`` tightens a DIR made by an
older version once, and moves an old cluster.json's clear-text password to its verifier.

Encryption at rest: ``create`` makes the volume's data key, wrapped by the KEK
(``BOREALIS_KEK``, else ``kek_file``, else the default file in the user's config directory,
created if missing); the parts inherit the environment, and the storage nodes unwrap it.

A part counts as running when its pid file names a live (non-zombie) process whose
command line is the part's command (so a reused pid is not mistaken for it).  Start order:
storage nodes, the writer, readers, the proxy -- each group waits until its ports accept
TCP before the next starts.  Stop order is the reverse: SIGTERM to the part's process
group, a grace period, then SIGKILL.

    c = Cluster("./borealis-data")
    c.create(port=5432, readers=1, pgs=2)      # first time only: picks free ports
    c.start_missing(timeout=60)                 # starts whatever is not running
    c.kill("s3", signal.SIGKILL); c.start(["s3"])
    c.status()                                  # dict, see server.status
    c.add_instance("i3", tier=0); c.remove_instance("i3")
    c.stop_all()
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from server.config import ClusterConf, EndpointConf, InstanceConf, StorageNodeConf

REPO_ROOT = Path(__file__).resolve().parent.parent
ENDPOINTS = "endpoints"
MANAGER = "manager"
AZS = ("az1", "az2", "az3")
MAX_READERS = 15
FAILOVER_WAIT = 20.0


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """Files and directories made inside the block are the owner's only (umask 077)."""
    old = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(old)


def secure_tree(root: Path) -> None:
    """chmod go-rwx everything under ``root`` (a data directory made before modes were kept tight)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            p = os.path.join(dirpath, name)
            with contextlib.suppress(OSError):
                st = os.lstat(p)
                if st.st_mode & 0o077 and not os.path.islink(p):
                    os.chmod(p, st.st_mode & 0o7700)
    os.chmod(root, 0o700)


def new_encryption(kek_file: str | Path | None, from_creation: bool = True) -> dict:
    """cluster.json's ``encryption``: a fresh data key wrapped by the KEK (see the module
    docstring for where the KEK comes from); LaunchError if it cannot be read.
    ``from_creation``: a new volume, so storage may refuse any unsealed value as damage
    (False for a volume made before encryption, whose old values stay unsealed)."""
    from storage import atrest

    path = Path(kek_file).expanduser().resolve() if kek_file else None
    if path is None and not os.environ.get(atrest.KEK_ENV):
        atrest.ensure_default_kek()
    try:
        kek = atrest.load_kek(path)
    except atrest.KeyUnavailable as e:
        raise LaunchError(str(e)) from None
    enc: dict = {"wrapped_dek": atrest.new_wrapped_dek(kek), "from_creation": from_creation}
    if path is not None:
        enc["kek_file"] = str(path)
    return enc


class LaunchError(Exception):
    """A part could not be started; the message is one line fit for a terminal (log tails
    follow on later lines)."""


@dataclass(frozen=True)
class Part:
    name: str
    kind: str  # "storage" | "writer" | "reader" | "endpoints" | "manager"
    module: str
    ports: tuple[tuple[int, str], ...]  # (port, what) -- must be free to start, accept when ready

    def args(self, data_dir: Path) -> list[str]:
        a = ["-m", self.module, "--data-dir", str(data_dir)]
        return a if self.kind in ("endpoints", "manager") else a + ["--name", self.name]


def free_ports(n: int, host: str = "127.0.0.1", exclude: set[int] = frozenset()) -> list[int]:  # type: ignore[assignment]
    """``n`` distinct ports the kernel reports free right now (bind to port 0)."""
    socks: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < n:
            s = socket.socket()
            socks.append(s)
            s.bind((host, 0))
            p = s.getsockname()[1]
            if p not in exclude and p not in ports:
                ports.append(p)
    finally:
        for s in socks:
            s.close()
    return ports


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as our servers bind
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def accepts(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Cluster:
    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir).resolve()
        self._procs: dict[str, subprocess.Popen] = {}  # parts this object spawned (reaped here)

    # --- layout ----------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def exists(self) -> bool:
        return (self.data_dir / "cluster.json").exists()

    @property
    def conf(self) -> ClusterConf:
        return ClusterConf.load(self.data_dir)

    def create(
        self,
        port: int | None = 5432,
        readers: int = 1,
        pgs: int = 2,
        password: str | None = None,
        reader_port: int | None = None,
        host: str = "127.0.0.1",
        kek_file: str | Path | None = None,
    ) -> ClusterConf:
        """Write cluster.json: s1..s6 (2 per AZ), i1 writer + ``readers`` readers, a writer
        endpoint on ``port`` (free port if None) and a reader endpoint on ``reader_port``
        (default port + 1).  Every other port is picked free.  ``password`` is kept only as
        its verifier; the volume's data key is wrapped by the KEK (``kek_file``, see above)."""
        with private_files():
            return self._create(port, readers, pgs, password, reader_port, host, kek_file)

    def _create(self, port: int | None, readers: int, pgs: int, password: str | None,
                reader_port: int | None, host: str, kek_file: str | Path | None) -> ClusterConf:
        if self.exists():
            raise LaunchError(f"{self.data_dir} already holds a cluster")
        fixed = {p for p in (port, reader_port) if p is not None}
        if port is not None and reader_port is None:
            reader_port = port + 1
            fixed.add(reader_port)
        n_inst = 1 + readers
        ports = free_ports(6 + 2 * n_inst + 2, host, exclude=fixed)
        take = iter(ports)
        conf = ClusterConf(host=host, protection_groups=pgs, encryption=new_encryption(kek_file))
        conf.set_password(password)
        for k in range(6):
            conf.storage_nodes.append(StorageNodeConf(name=f"s{k + 1}", az=AZS[k // 2], port=next(take)))
        for k in range(n_inst):
            conf.instances.append(
                InstanceConf(name=f"i{k + 1}", role="writer" if k == 0 else "reader", port=next(take),
                             admin_port=next(take), tier=1)
            )
        wp = port if port is not None else next(take)
        rp = reader_port if reader_port is not None else next(take)
        conf.endpoints = [EndpointConf("writer", "writer", wp), EndpointConf("reader", "reader", rp)]
        inst_ports = free_ports(n_inst, host, exclude=fixed | set(ports))
        for inst, p in zip(conf.instances, inst_ports):
            conf.endpoints.append(EndpointConf(inst.name, "instance", p, members=[inst.name]))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        conf.save(self.data_dir)
        from server.tls import ensure_certificates  # DATA_DIR/tls/: CA + server certificate

        ensure_certificates(self.data_dir, host)
        return conf

    def parts(self, conf: ClusterConf | None = None) -> list[Part]:
        """Every part in start order."""
        conf = conf or self.conf
        out = [Part(s.name, "storage", "storage.node", ((s.listen_port or s.port, f"storage node {s.name}"),)) for s in conf.storage_nodes]
        insts = sorted(conf.instances, key=lambda i: i.role != "writer")
        for i in insts:
            out.append(Part(i.name, i.role, "server.instance",
                            ((i.port, f"instance {i.name}"), (i.admin_port, f"admin port of {i.name}"))))
        out.append(Part(ENDPOINTS, "endpoints", "endpoints.proxy",
                        tuple((e.port, f"{e.name} endpoint") for e in conf.endpoints)))
        out.append(Part(MANAGER, "manager", "server.manager", ()))
        return out

    def part(self, name: str) -> Part:
        for p in self.parts():
            if p.name == name:
                return p
        raise LaunchError(f"no part named {name!r} in {self.data_dir / 'cluster.json'}")

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def dsn(self, endpoint: str = "writer", user: str = "postgres", db: str = "postgres") -> str:
        conf = self.conf
        ep = next(e for e in conf.endpoints if e.name == endpoint)
        return f"postgresql://{user}@{conf.host}:{ep.port}/{db}"

    def instance_dsn(self, name: str, user: str = "postgres", db: str = "postgres") -> str:
        conf = self.conf
        return f"postgresql://{user}@{conf.host}:{conf.instance(name).port}/{db}"

    # --- process table ---------------------------------------------------------------
    def _pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def _alive(self, part: Part, pid: int) -> bool:
        proc = self._procs.get(part.name)
        if proc is not None and proc.pid == pid:
            return proc.poll() is None
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
        if stat.rsplit(")", 1)[-1].split()[0] in ("Z", "X"):
            return False
        args = [a.decode(errors="replace") for a in cmdline if a]
        return args[1:] == part.args(self.data_dir)

    def pid(self, name: str) -> int | None:
        """The pid of a running part, else None."""
        part = self.part(name)
        try:
            pid = int(self._pid_file(name).read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if self._alive(part, pid) else None

    def running(self) -> dict[str, int]:
        out = {}
        for p in self.parts():
            pid = self.pid(p.name)
            if pid is not None:
                out[p.name] = pid
        return out

    def tail(self, name: str, lines: int = 20) -> str:
        try:
            text = self.log_path(name).read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    # --- starting --------------------------------------------------------------------
    def _spawn(self, part: Part) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.log_path(part.name), "ab") as logf:
            logf.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {part.name}\n".encode())
            logf.flush()
            proc = subprocess.Popen(
                [sys.executable, *part.args(self.data_dir)],
                stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                cwd=self.data_dir, env=env, start_new_session=True, umask=0o077,
            )
        self._procs[part.name] = proc
        self._pid_file(part.name).write_text(f"{proc.pid}\n")
        return proc.pid

    def _wait_ready(self, parts: list[Part], host: str, deadline: float) -> None:
        pending = list(parts)
        while pending:
            for part in list(pending):
                pid = self.pid(part.name)
                if pid is None:
                    raise LaunchError(f"{part.name} exited during start-up (log {self.log_path(part.name)}):\n"
                                      + self.tail(part.name))
                ports = part.ports if part.kind == "endpoints" else part.ports[:1]
                if all(accepts(host, port) for port, _ in ports):
                    pending.remove(part)
            if not pending:
                return
            if time.monotonic() > deadline:
                p = pending[0]
                raise LaunchError(f"{p.name} did not accept connections in time (log {self.log_path(p.name)}):\n"
                                  + self.tail(p.name))
            time.sleep(0.05)

    def start(self, names: list[str] | None = None, timeout: float = 60.0) -> list[str]:
        """Start the named parts (default: all) that are not running, in start order, and
        wait until every named part accepts connections.  Returns the names started.
        On failure the parts started by this call are stopped again and LaunchError raised."""
        with private_files():
            return self._start(names, timeout)

    def _upgrade(self) -> None:
        """Bring a cluster made by an older version up to date: owner-only modes, no
        clear-text password in cluster.json, a data key for encryption at rest."""
        if os.stat(self.data_dir).st_mode & 0o077:
            secure_tree(self.data_dir)
        raw = json.loads((self.data_dir / "cluster.json").read_text())
        if "password" in raw or not (raw.get("encryption") or {}).get("wrapped_dek"):
            with self.editing() as conf:  # the save drops "password" (ClusterConf keeps the verifier)
                if not (conf.encryption or {}).get("wrapped_dek"):
                    conf.encryption = new_encryption(None, from_creation=False)

    def _start(self, names: list[str] | None, timeout: float) -> list[str]:
        self._upgrade()
        conf = self._await_failover(self.conf)
        from server.tls import ensure_internal_certificate  # a cluster made before internal TLS

        ensure_internal_certificate(self.data_dir, conf.host)
        parts = [p for p in self.parts(conf) if names is None or p.name in names]
        if names is not None:
            unknown = set(names) - {p.name for p in parts}
            if unknown:
                raise LaunchError(f"unknown part(s): {', '.join(sorted(unknown))}")
        down = [p for p in parts if self.pid(p.name) is None]
        for p in down:
            for port, what in p.ports:
                if port_in_use(conf.host, port):
                    raise LaunchError(f"port {port} ({what}) is already in use by another process")
        deadline = time.monotonic() + timeout
        started: list[str] = []
        try:
            for kind in ("storage", "writer", "reader", "endpoints", "manager"):
                group = [p for p in parts if p.kind == kind]
                for p in group:
                    if p in down:
                        self._pid_file(p.name).unlink(missing_ok=True)
                        self._spawn(p)
                        started.append(p.name)
                self._wait_ready(group, conf.host, deadline)
        except BaseException:
            self.stop(started)
            raise
        return started

    def start_missing(self, timeout: float = 60.0) -> list[str]:
        return self.start(None, timeout)

    def _await_failover(self, conf: ClusterConf) -> ClusterConf:
        """While the manager runs and the writer in cluster.json is down, give the manager
        time to promote a reader (or restart the writer in place) before starting parts."""
        if self.pid(MANAGER) is None:
            return conf
        deadline = time.monotonic() + FAILOVER_WAIT
        while time.monotonic() < deadline:
            w = conf.writer()
            if w is None or (self.pid(w.name) is not None and accepts(conf.host, w.port)):
                return conf
            if self.pid(MANAGER) is None:
                return conf
            time.sleep(0.1)
            conf = self.conf
        return conf

    def rekey(self, new_kek_file: str | Path) -> None:
        """Wrap the volume's data key by the KEK in ``new_kek_file`` instead of the current
        one (``BOREALIS_KEK``, the recorded file or the default, as the parts find it), and
        record that file.  Nothing stored is re-encrypted: running parts keep working, and
        every part started afterwards needs the new KEK (unset ``BOREALIS_KEK``)."""
        from storage import atrest

        new_path = Path(new_kek_file).expanduser().resolve()
        try:
            new_kek = atrest.load_kek_file(new_path)
            with private_files(), self.editing() as conf:
                enc = dict(conf.encryption or {})
                if not enc.get("wrapped_dek"):
                    raise LaunchError("this cluster has no data key yet (start it once with `borealis up`)")
                dek = atrest.unwrap_dek(atrest.load_kek(enc.get("kek_file")), enc["wrapped_dek"])
                enc["wrapped_dek"] = atrest.wrap_dek(new_kek, dek)
                enc["kek_file"] = str(new_path)
                conf.encryption = enc
        except atrest.KeyUnavailable as e:
            raise LaunchError(str(e)) from None

    # --- changing the layout of a running cluster -------------------------------------
    @contextlib.contextmanager
    def editing(self) -> Iterator[ClusterConf]:
        """Read-modify-write of cluster.json under ``DIR/cluster.lock`` (the manager and
        the CLI both edit it); the conf is saved when the block exits without error."""
        with private_files(), open(self.data_dir / "cluster.lock", "a") as lockf:
            fcntl.flock(lockf, fcntl.LOCK_EX)
            try:
                conf = self.conf
                yield conf
                conf.save(self.data_dir)
            finally:
                fcntl.flock(lockf, fcntl.LOCK_UN)

    def add_instance(self, name: str, tier: int = 1, timeout: float = 60.0, autoscaled: bool = False) -> InstanceConf:
        """Add a reader with its own instance endpoint, start it, and wait until it serves
        and the proxy listens on its endpoint.  The reader endpoint (and every "exclude"
        custom endpoint) picks it up on the proxy's next reload."""
        if not 0 <= tier <= 15:
            raise LaunchError(f"tier must be 0..15, not {tier}")
        with self.editing() as conf:
            taken = {i.name for i in conf.instances} | {s.name for s in conf.storage_nodes} \
                | {e.name for e in conf.endpoints} | {ENDPOINTS, MANAGER}
            if name in taken or not name.replace("_", "").replace("-", "").isalnum():
                raise LaunchError(f"cannot name an instance {name!r}: taken or not a plain name")
            if len(conf.readers()) >= MAX_READERS:
                raise LaunchError(f"a cluster has at most {MAX_READERS} readers")
            used = {s.port for s in conf.storage_nodes} | {e.port for e in conf.endpoints} \
                | {p for i in conf.instances for p in (i.port, i.admin_port)}
            port, admin, ep_port = free_ports(3, conf.host, exclude=used)
            inst = InstanceConf(name=name, role="reader", port=port, admin_port=admin, tier=tier, autoscaled=autoscaled)
            conf.instances.append(inst)
            conf.endpoints.append(EndpointConf(name, "instance", ep_port, members=[name]))
        try:
            self.start([name], timeout)
        except LaunchError:
            with self.editing() as conf:
                conf.instances = [i for i in conf.instances if i.name != name]
                conf.endpoints = [e for e in conf.endpoints if e.name != name]
            raise
        if self.pid(ENDPOINTS) is not None:
            deadline = time.monotonic() + 10.0
            while not accepts(self.conf.host, ep_port) and time.monotonic() < deadline:
                time.sleep(0.05)
        return inst

    def remove_instance(self, name: str, timeout: float = 10.0) -> None:
        """Remove a reader: out of cluster.json first (no new connections reach it), then
        its process is stopped.  The writer cannot be removed (fail over first)."""
        with self.editing() as conf:
            try:
                inst = conf.instance(name)
            except KeyError:
                raise LaunchError(f"no instance named {name!r}") from None
            if inst.role == "writer":
                raise LaunchError(f"{name} is the writer: fail over to another instance first")
            part = self.part(name)
            pid = self.pid(name)
            conf.instances = [i for i in conf.instances if i.name != name]
            conf.endpoints = [e for e in conf.endpoints if not (e.kind == "instance" and e.members == [name])]
            for e in conf.endpoints:
                e.members = [m for m in e.members if m != name]
                e.exclude = [m for m in e.exclude if m != name]
        if pid is not None:
            self._signal(pid, signal.SIGTERM)
            if not self._reap_part(part, pid, timeout):
                self._signal(pid, signal.SIGKILL)
                self._reap_part(part, pid, 5.0)
        self._pid_file(name).unlink(missing_ok=True)
        self._procs.pop(name, None)

    def _reap_part(self, part: Part, pid: int, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while self._alive(part, pid):
            if time.monotonic() > end:
                return False
            time.sleep(0.02)
        return True

    # --- stopping --------------------------------------------------------------------
    def _signal(self, pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            try:
                os.killpg(pid, sig)  # the part leads its own session / process group
            except ProcessLookupError:
                os.kill(pid, sig)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> int | None:
        """Send ``sig`` to a running part (fault injection); returns its pid.  The pid file
        stays: a dead part is simply not running any more."""
        pid = self.pid(name)
        if pid is not None:
            self._signal(pid, sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                self._reap(name, pid, 10.0)
        return pid

    def _reap(self, name: str, pid: int, timeout: float) -> bool:
        """Wait up to ``timeout`` for a signalled part to be gone; True if it is."""
        return self._reap_part(self.part(name), pid, timeout)

    def stop(self, names: list[str] | None = None, timeout: float = 10.0) -> list[str]:
        """SIGTERM the named running parts (default: all) -- proxy, then instances (readers
        before the writer), then storage -- waiting for each group; SIGKILL whatever is left
        after ``timeout``.  Removes their pid files.  Returns the names stopped."""
        parts = [p for p in reversed(self.parts()) if names is None or p.name in names]
        end = time.monotonic() + timeout
        stopped: list[str] = []
        for kind in ("manager", "endpoints", "reader", "writer", "storage"):
            group = [(p, self.pid(p.name)) for p in parts if p.kind == kind]
            for p, pid in group:
                if pid is not None:
                    self._signal(pid, signal.SIGTERM)
            for p, pid in group:
                if pid is not None:
                    if not self._reap(p.name, pid, max(0.0, end - time.monotonic())):
                        self._signal(pid, signal.SIGKILL)
                        self._reap(p.name, pid, 5.0)
                    stopped.append(p.name)
                self._pid_file(p.name).unlink(missing_ok=True)
                self._procs.pop(p.name, None)
        return stopped

    def stop_all(self, timeout: float = 10.0) -> list[str]:
        return self.stop(None, timeout)

    # --- observing -------------------------------------------------------------------
    def status(self, timeout: float = 1.0) -> dict:
        from server.status import gather

        return gather(self, timeout)
