"""Roles and login from the catalog, on a real cluster with a cluster password.

One cluster for the module (writer i1, reader i2) whose hba.conf sends role ``md5rule``
to the md5 method and everybody else to scram-sha-256.  Roles are created through the
writer endpoint with psycopg / asyncpg / psql and must:

* log in through the writer and the reader endpoints by SCRAM; wrong password 28P01,
  unknown role 28P01 (password methods give nothing away), NOLOGIN 28000, an expired
  VALID UNTIL 28P01; md5 verifiers work with md5 rules (and not with SCRAM), as in PG;
* be stored as verifiers (never the password), a pre-hashed verifier as given;
* give PostgreSQL's errors (42710, 42704, 42501, 25006 on a reader), honour CONNECTION
  LIMIT (53300, per instance) and apply ALTER ROLE ... SET at login;
* show in ``\\du`` byte for byte as a scratch PostgreSQL 15 shows the same roles;
* survive a failover (kill -9 of the writer; the promoted reader serves the logins).

The shared trust cluster checks that an unknown role is refused with 28000.
"""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import time
import uuid
from urllib.parse import quote

import asyncpg
import psycopg
import pytest
import scramp

from cluster import ClusterHandle
from server.launcher import Cluster
from tests.clients.test_psql import scratch_pg  # noqa: F401 -- fixture: a scratch PostgreSQL 15

PW = "clusterpw"
HBA = """
host  all  md5rule  127.0.0.1/32  md5
host  all  all      all           scram-sha-256
"""


@pytest.fixture(scope="module")
def pwcluster(tmp_path_factory: pytest.TempPathFactory):
    launcher = Cluster(tmp_path_factory.mktemp("rolecluster"))
    launcher.create(port=None, readers=1, pgs=2, password=PW)
    (launcher.data_dir / "hba.conf").write_text(HBA)
    handle = ClusterHandle(data_dir=launcher.data_dir, launcher=launcher)
    try:
        handle.start(None, 60.0)
    except BaseException:
        launcher.stop_all()
        raise
    yield handle
    handle.teardown()


def dsn(c: ClusterHandle, user: str = "postgres", password: str = PW, endpoint: str = "writer") -> str:
    base = c.launcher.dsn(endpoint, user=user)
    return base.replace(f"{user}@", f"{user}:{quote(password, safe='')}@", 1)


def admin(c: ClusterHandle) -> psycopg.Connection:
    return psycopg.connect(dsn(c), autocommit=True)


def connect_error(conninfo: str) -> psycopg.Error:
    with pytest.raises(psycopg.OperationalError) as ei:
        psycopg.connect(conninfo, connect_timeout=10).close()
    return ei.value


async def asyncpg_error(conninfo: str) -> Exception:
    try:
        conn = await asyncpg.connect(conninfo, timeout=10)
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        return e
    await conn.close()
    raise AssertionError("connection unexpectedly succeeded")


def until_visible(fn, timeout: float = 10.0):
    """Retry ``fn`` while a reader may still be catching up with the writer's redo."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except (psycopg.OperationalError, AssertionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_created_role_logs_in_on_writer_and_reader(pwcluster):
    name = f"app_{uuid.uuid4().hex[:6]}"
    with admin(pwcluster) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD 'app pw'")
        stored = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [name]).fetchone()[0]
    assert stored.startswith("SCRAM-SHA-256$4096:") and "app pw" not in stored

    def login(endpoint: str) -> tuple:
        with psycopg.connect(dsn(pwcluster, name, "app pw", endpoint), connect_timeout=10) as c:
            return c.execute("SELECT current_user, session_user, current_setting('is_superuser')").fetchone()

    assert login("writer") == (name, name, "off")
    assert until_visible(lambda: login("reader")) == (name, name, "off")
    for endpoint in ("writer", "reader"):
        e = connect_error(dsn(pwcluster, name, "wrong", endpoint))
        assert f'password authentication failed for user "{name}"' in str(e)
    err = asyncio.run(asyncpg_error(dsn(pwcluster, name, "wrong")))
    assert isinstance(err, asyncpg.InvalidPasswordError) and err.sqlstate == "28P01"
    # an unknown role looks exactly like a wrong password
    err = asyncio.run(asyncpg_error(dsn(pwcluster, "no_such_role", "app pw")))
    assert err.sqlstate == "28P01" and 'password authentication failed for user "no_such_role"' in str(err)
    # the cluster password is the bootstrap superuser's only
    err = asyncio.run(asyncpg_error(dsn(pwcluster, name, PW)))
    assert err.sqlstate == "28P01"
    # no clear-text password in any part's log
    logs = "".join(p.read_text(errors="replace") for p in pwcluster.launcher.log_dir.glob("*.log"))
    assert "instance_ready" in logs and "app pw" not in logs


def test_nologin_expired_and_password_changes(pwcluster):
    tag = uuid.uuid4().hex[:6]
    nolog, old, chg = f"nolog_{tag}", f"old_{tag}", f"chg_{tag}"
    with admin(pwcluster) as conn:
        conn.execute(f"CREATE ROLE {nolog} PASSWORD 'pw'")  # CREATE ROLE: NOLOGIN by default
        conn.execute(f"CREATE USER {old} PASSWORD 'pw' VALID UNTIL '2001-01-01'")
        conn.execute(f"CREATE USER {chg} PASSWORD 'first'")
    err = asyncio.run(asyncpg_error(dsn(pwcluster, nolog, "pw")))
    assert err.sqlstate == "28000" and str(err) == f'role "{nolog}" is not permitted to log in'
    err = asyncio.run(asyncpg_error(dsn(pwcluster, old, "pw")))
    assert err.sqlstate == "28P01"
    with admin(pwcluster) as conn:
        conn.execute(f"ALTER ROLE {old} VALID UNTIL '2999-01-01'")
        conn.execute(f"ALTER ROLE {nolog} LOGIN")
    for who in (old, nolog):
        with psycopg.connect(dsn(pwcluster, who, "pw"), connect_timeout=10) as c:
            assert c.execute("SELECT current_user").fetchone() == (who,)
    # a role changes its own password; the old one stops working
    with psycopg.connect(dsn(pwcluster, chg, "first"), autocommit=True) as c:
        c.execute(f"ALTER USER {chg} WITH PASSWORD 'second'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="^permission denied$"):
            c.execute(f"ALTER ROLE {chg} CREATEDB")
    connect_error(dsn(pwcluster, chg, "first"))
    psycopg.connect(dsn(pwcluster, chg, "second")).close()
    # PASSWORD NULL: no password login at all
    with admin(pwcluster) as conn:
        conn.execute(f"ALTER ROLE {chg} PASSWORD NULL")
        assert conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [chg]).fetchone() == (None,)
    connect_error(dsn(pwcluster, chg, "second"))


def test_prehashed_scram_verifier_is_stored_as_given(pwcluster):
    name = f"pre_{uuid.uuid4().hex[:6]}"
    # what psql's \password sends: a verifier computed on the client (here by scramp)
    salt, stored, server, iters = scramp.ScramMechanism("SCRAM-SHA-256").make_auth_info("hashed pw")
    b64 = lambda b: __import__("base64").b64encode(b).decode()  # noqa: E731
    verifier = f"SCRAM-SHA-256${iters}:{b64(salt)}${b64(stored)}:{b64(server)}"
    with admin(pwcluster) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN")
        conn.execute(f"ALTER ROLE {name} PASSWORD '{verifier}'")
        assert conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s", [name]).fetchone() == (verifier,)
    with psycopg.connect(dsn(pwcluster, name, "hashed pw")) as c:
        assert c.execute("SELECT session_user").fetchone() == (name,)


def test_md5_verifiers_and_md5_rules(pwcluster):
    with admin(pwcluster) as conn:
        conn.execute("SET password_encryption = 'md5'")
        conn.execute("CREATE ROLE md5rule LOGIN PASSWORD 'm5pw'")
        conn.execute("RESET password_encryption")
        stored = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'md5rule'").fetchone()[0]
        conn.execute("CREATE ROLE md5other LOGIN PASSWORD 'm5pw'")
        conn.execute("SET password_encryption TO md5")
        conn.execute("ALTER ROLE md5other PASSWORD 'm5pw'")  # md5 verifier, but under a SCRAM rule
    assert stored == "md5" + hashlib.md5(b"m5pwmd5rule").hexdigest()
    with psycopg.connect(dsn(pwcluster, "md5rule", "m5pw")) as c:  # md5 rule + md5 verifier
        assert c.execute("SELECT current_user").fetchone() == ("md5rule",)
    e = connect_error(dsn(pwcluster, "md5rule", "nope"))
    assert 'password authentication failed for user "md5rule"' in str(e)
    # an md5 verifier cannot answer a SCRAM exchange (as in PostgreSQL)
    err = asyncio.run(asyncpg_error(dsn(pwcluster, "md5other", "m5pw")))
    assert err.sqlstate == "28P01"
    # renaming clears an md5 verifier (it is salted with the name)
    with admin(pwcluster) as conn:
        conn.execute("ALTER ROLE md5other RENAME TO md5renamed")
        assert conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = 'md5renamed'").fetchone() == (None,)
        conn.execute("DROP ROLE md5renamed")


def test_errors_like_postgres(pwcluster):
    tag = uuid.uuid4().hex[:6]
    low, creator = f"low_{tag}", f"creator_{tag}"
    with admin(pwcluster) as conn:
        conn.execute(f"CREATE USER {low} PASSWORD 'pw'")
        conn.execute(f"CREATE USER {creator} CREATEROLE PASSWORD 'pw'")
        with pytest.raises(psycopg.errors.DuplicateObject, match=f'role "{low}" already exists'):
            conn.execute(f"CREATE ROLE {low}")
        with pytest.raises(psycopg.errors.UndefinedObject, match='role "ghost_role" does not exist'):
            conn.execute("ALTER ROLE ghost_role LOGIN")
        with pytest.raises(psycopg.errors.UndefinedObject):
            conn.execute("DROP ROLE ghost_role")
        conn.execute("DROP ROLE IF EXISTS ghost_role")
        # privileges on objects: the roles and tables must exist (tests/engine/test_privileges.py: the rest)
        conn.execute(f"GRANT ALL PRIVILEGES ON ALL TABLES IN SCHEMA public TO {low}")
        conn.execute(f"GRANT SELECT ON pg_class TO {low}")
        with pytest.raises(psycopg.errors.UndefinedTable):
            conn.execute(f"GRANT SELECT ON no_such_table TO {low}")
        with pytest.raises(psycopg.errors.UndefinedObject):
            conn.execute("GRANT SELECT ON pg_class TO ghost_role")
        with pytest.raises(psycopg.errors.ReservedName):
            conn.execute("CREATE ROLE pg_mine")
        with pytest.raises(psycopg.errors.SyntaxError, match="conflicting or redundant options"):
            conn.execute("CREATE ROLE twice LOGIN NOLOGIN")
        with pytest.raises(psycopg.errors.DependentObjectsStillExist):
            conn.execute("DROP ROLE pg_monitor")
    with psycopg.connect(dsn(pwcluster, low, "pw"), autocommit=True) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied to create role"):
            c.execute(f"CREATE ROLE x_{tag}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied to drop role"):
            c.execute(f"DROP ROLE {creator}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute(f"SET ROLE {creator}")
    with psycopg.connect(dsn(pwcluster, creator, "pw"), autocommit=True) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be superuser to create superusers"):
            c.execute(f"CREATE ROLE su_{tag} SUPERUSER")
        c.execute(f"CREATE ROLE made_{tag}")  # CREATEROLE may
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match="must be superuser to alter superuser roles or change superuser attribute"):
            c.execute("ALTER ROLE postgres NOLOGIN")
        c.execute(f"DROP ROLE made_{tag}")
    with psycopg.connect(dsn(pwcluster, endpoint="reader"), autocommit=True) as c:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            c.execute(f"CREATE ROLE r_{tag}")


def test_membership_set_role_and_transactions(pwcluster):
    tag = uuid.uuid4().hex[:6]
    grp, usr = f"grp_{tag}", f"usr_{tag}"

    async def body() -> None:
        conn = await asyncpg.connect(dsn(pwcluster))
        try:
            await conn.execute(f"CREATE ROLE {grp}; CREATE USER {usr} PASSWORD 'pw'")
            await conn.execute(f"GRANT {grp} TO {usr}")
            rows = await conn.fetch(
                "SELECT r.rolname, m.rolname, a.admin_option FROM pg_auth_members a "
                "JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member WHERE m.rolname = $1", usr)
            assert [tuple(r) for r in rows] == [(grp, usr, False)]
            with pytest.raises(asyncpg.PostgresError) as ei:
                await conn.execute(f"GRANT {usr} TO {grp}")  # would make a cycle
            assert ei.value.sqlstate == "0LP01"
            # role DDL is transactional
            await conn.execute("BEGIN")
            await conn.execute(f"CREATE ROLE gone_{tag}")
            assert await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", f"gone_{tag}") == 1
            await conn.execute("ROLLBACK")
            assert await conn.fetchval("SELECT count(*) FROM pg_roles WHERE rolname = $1", f"gone_{tag}") == 0
        finally:
            await conn.close()
        u = await asyncpg.connect(dsn(pwcluster, usr, "pw"))
        try:
            await u.execute(f"SET ROLE {grp}")
            assert tuple(await u.fetchrow("SELECT current_user, session_user")) == (grp, usr)
            await u.execute("RESET ROLE")
            assert await u.fetchval("SELECT current_user") == usr
            await u.execute(f"BEGIN; SET ROLE {grp}; ROLLBACK")  # undone with the transaction
            assert await u.fetchval("SELECT current_user") == usr
            await u.execute(f"SET ROLE {grp}; RESET ALL")  # RESET ALL keeps the role ...
            assert await u.fetchval("SELECT current_user") == grp
            await u.execute("DISCARD ALL")  # ... DISCARD ALL does not
            assert await u.fetchval("SELECT current_user") == usr
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await u.execute("SET ROLE postgres")
        finally:
            await u.close()
        conn = await asyncpg.connect(dsn(pwcluster))
        try:
            await conn.execute(f"REVOKE {grp} FROM {usr}")
            assert await conn.fetchval("SELECT count(*) FROM pg_auth_members WHERE member = "
                                       "(SELECT oid FROM pg_roles WHERE rolname = $1)", usr) == 0
            await conn.execute(f"DROP ROLE {grp}, {usr}")
        finally:
            await conn.close()

    asyncio.run(body())


def test_connection_limit_and_role_settings(pwcluster):
    name = f"lim_{uuid.uuid4().hex[:6]}"
    with admin(pwcluster) as conn:
        conn.execute(f"CREATE USER {name} PASSWORD 'pw' CONNECTION LIMIT 1")
        conn.execute(f"ALTER ROLE {name} SET statement_timeout = '5s'")
        assert conn.execute("SELECT rolconfig FROM pg_roles WHERE rolname = %s", [name]).fetchone() == (
            ["statement_timeout=5s"],)
    first = psycopg.connect(dsn(pwcluster, name, "pw"))
    try:
        assert first.execute("SHOW statement_timeout").fetchone() == ("5s",)
        err = asyncio.run(asyncpg_error(dsn(pwcluster, name, "pw")))
        assert err.sqlstate == "53300" and str(err) == f'too many connections for role "{name}"'
    finally:
        first.close()
    # the slot is given back when the session ends
    until_visible(lambda: psycopg.connect(dsn(pwcluster, name, "pw")).close())


DU_SETUP = ("CREATE ROLE du_grp; "
            "CREATE USER du_app PASSWORD 'x' CREATEDB CONNECTION LIMIT 3 VALID UNTIL '2030-01-01 00:00:00+00'; "
            "CREATE ROLE du_admin SUPERUSER CREATEROLE NOLOGIN; "
            "CREATE ROLE du_noinh NOINHERIT LOGIN; "
            "GRANT du_grp TO du_app; GRANT du_grp TO du_noinh;")


def test_du_matches_postgres(pwcluster, scratch_pg):  # noqa: F811
    env = {"PGPASSWORD": PW, "PATH": "/usr/bin:/bin"}
    url = pwcluster.launcher.dsn("writer")
    ours_args = [url]

    def psql(args: list[str], cmd: str, e: dict | None = None) -> str:
        r = subprocess.run(["psql", "-X", *args, "-c", cmd], capture_output=True, text=True, env=e, timeout=60)
        return r.stdout + r.stderr

    assert "ERROR" not in psql(ours_args, DU_SETUP, env)
    theirs_setup = psql(scratch_pg, DU_SETUP)
    try:
        for cmd in (r"\du du_*", r"\du+ du_*", r"\dg du_a*"):
            ours = psql(ours_args, cmd, env)
            assert "du_admin" in ours and ours == psql(scratch_pg, cmd), (cmd, ours)
    finally:
        if "ERROR" not in theirs_setup:
            psql(scratch_pg, "DROP ROLE du_grp, du_app, du_admin, du_noinh")


def test_roles_survive_failover(pwcluster):
    name = f"ha_{uuid.uuid4().hex[:6]}"
    with admin(pwcluster) as conn:
        conn.execute(f"CREATE USER {name} PASSWORD 'ha pw'")
    pwcluster.kill("i1")  # the manager promotes i2
    deadline = time.monotonic() + 60
    while True:
        try:
            with psycopg.connect(dsn(pwcluster, name, "ha pw"), connect_timeout=3) as c:
                assert c.execute("SELECT pg_is_in_recovery(), current_user").fetchone() == (False, name)
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)
    pwcluster.start(["i1"])  # the old writer rejoins as a reader


def test_unknown_role_refused_on_trust_cluster(cluster):
    url = cluster.writer_dsn.replace("postgres@", "nobody_here@", 1)
    err = asyncio.run(asyncpg_error(url))
    assert err.sqlstate == "28000" and str(err) == 'role "nobody_here" does not exist'
    out = subprocess.run(["psql", "-X", url, "-c", "select 1"], capture_output=True, text=True, timeout=30)
    assert 'FATAL:  role "nobody_here" does not exist' in out.stderr
