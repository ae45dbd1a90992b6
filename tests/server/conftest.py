"""Fixtures for the pg-wire front end tests, on the real cluster (real engine, real volume).

``pg``: the session's shared trust cluster (tests/conftest.py ``cluster``) seen through its
writer endpoint, with what these tests log in as and read: roles ``alice``, ``bob``,
``carol`` and ``u0``..``u7``, database ``db``, table ``wire_gen`` (10 rows ``(i, 'row<i>')``)
and an empty table ``wire_t``.  One per module: the roles it made are dropped when the
module ends (tests elsewhere list the cluster's roles); setting up is idempotent.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from cluster import ClusterHandle
from wire_setup import CLUSTER_PW, HBA, HBA_ROLES

ROLES = ("alice", "bob", "carol", *(f"u{k}" for k in range(8)))


@dataclass
class WireServer:
    cluster: ClusterHandle
    port: int  # the writer endpoint

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=alice dbname=db"

    def admin(self, dbname: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}", autocommit=True)

    def sessions(self, application_name: str) -> int:
        """Open sessions with this application_name on the writer (pg_stat_activity)."""
        with self.admin() as c:
            return c.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s",
                             [application_name]).fetchone()[0]

    def wait_sessions(self, application_name: str, n: int, timeout: float = 5.0) -> int:
        deadline = time.monotonic() + timeout
        while True:
            got = self.sessions(application_name)
            if got == n or time.monotonic() > deadline:
                return got
            time.sleep(0.05)


@pytest.fixture(scope="module")
def pg(cluster: ClusterHandle) -> Iterator[WireServer]:
    conf = cluster.launcher.conf
    port = next(e.port for e in conf.endpoints if e.kind == "writer")
    srv = WireServer(cluster, port)
    made: list[str] = []
    with srv.admin() as c:
        have = {r[0] for r in c.execute("SELECT rolname FROM pg_roles").fetchall()}
        for role in ROLES:
            if role not in have:
                c.execute(f"CREATE ROLE {role} LOGIN")
                made.append(role)
        if not c.execute("SELECT 1 FROM pg_database WHERE datname = 'db'").fetchone():
            c.execute("CREATE DATABASE db")
    # the tests' sessions use database db, whose tables are its own
    with srv.admin("db") as c:
        c.execute("CREATE TABLE IF NOT EXISTS wire_gen (i int4 PRIMARY KEY, s text)")
        c.execute("INSERT INTO wire_gen SELECT i, 'row' || i FROM generate_series(0, 9) i ON CONFLICT DO NOTHING")
        c.execute("CREATE TABLE IF NOT EXISTS wire_t (x int4)")
        c.execute("GRANT ALL ON wire_gen, wire_t TO PUBLIC")  # the tests' roles are not superusers
    yield srv
    # The roles and the database go with the module: the cluster is the session's, and later
    # tests (psql's \du and \l in tests/clients) must not find them.
    with srv.admin() as c:
        for _ in range(50):  # sessions the tests closed may take a moment to end on the server
            try:
                c.execute("DROP DATABASE IF EXISTS db")
                break
            except psycopg.errors.ObjectInUse:
                time.sleep(0.1)
        if made:
            c.execute(f"DROP ROLE IF EXISTS {', '.join(made)}")


# ---------------------------------------------------------------- a cluster with passwords and hba.conf

@dataclass
class HbaCluster:
    cluster: ClusterHandle
    port: int  # the writer endpoint

    def dsn(self, **kw: str) -> str:
        base = {"host": "127.0.0.1", "port": str(self.port), "user": "alice", "dbname": "db"}
        base.update(kw)
        return " ".join(f"{k}={v}" for k, v in base.items())

    @property
    def ca(self) -> str:
        return str(self.cluster.data_dir / "tls" / "ca.crt")


@pytest.fixture(scope="session")
def hba_cluster(tmp_path_factory: pytest.TempPathFactory):
    """A cluster with a cluster password and the hba.conf above (one for the session: the
    TLS, hba and password tests share it); its roles are made through the writer endpoint."""
    from server.launcher import Cluster

    launcher = Cluster(tmp_path_factory.mktemp("hbacluster"))
    launcher.create(port=None, readers=0, pgs=2, password=CLUSTER_PW)
    (launcher.data_dir / "hba.conf").write_text(HBA)
    handle = ClusterHandle(data_dir=launcher.data_dir, launcher=launcher)
    try:
        handle.start(None, 60.0)
        port = next(e.port for e in launcher.conf.endpoints if e.kind == "writer")
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                             password=CLUSTER_PW, autocommit=True) as c:
            for role, (pw, enc) in HBA_ROLES.items():
                c.execute(f"SET password_encryption = '{enc}'")
                c.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{pw}'")
            c.execute("CREATE DATABASE db")
            c.execute("CREATE DATABASE secure")
    except BaseException:
        launcher.stop_all()
        raise
    yield HbaCluster(handle, port)
    handle.teardown()
