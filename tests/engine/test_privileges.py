"""SQL privileges (issue 15): the same scripts on the shared cluster and on a scratch
PostgreSQL 15, each statement's outcome -- rows, or SQLSTATE and message -- compared.

The scripts play several roles (``privscript``: SET SESSION AUTHORIZATION between steps)
through owners, GRANT / REVOKE on tables, columns, sequences, schemas and databases,
WITH GRANT OPTION, PUBLIC, role membership, views read with their owner's rights, ALTER
DEFAULT PRIVILEGES, ``has_*_privilege`` and the ACLs pg_class shows.
"""

from __future__ import annotations

import subprocess
import uuid
from typing import Any

import psycopg

import privscript
from tests.clients.test_psql import _borealis_args, scratch_pg  # noqa: F401 -- fixture: a scratch PostgreSQL 15

ROLES = ("alice", "bob", "carol", "grp", "noinh")
RELATIONS = ("t", "u", "s", "v", "w", "iv", "ser", "ser_id_seq", "d1", "d2", "dseq", "ctas")

SETUP: list[privscript.Step] = [
    ("postgres", "CREATE ROLE {alice} LOGIN"),
    ("postgres", "CREATE ROLE {bob} LOGIN"),
    ("postgres", "CREATE ROLE {carol} LOGIN"),
    ("postgres", "CREATE ROLE {grp}"),
    ("postgres", "CREATE ROLE {noinh} NOINHERIT IN ROLE {grp}"),
    ("postgres", "GRANT {grp} TO {carol}"),
]

# The report: a non-superuser read, changed and dropped another role's table after REVOKE ALL.
OWNERS_AND_TABLES: list[privscript.Step] = [
    ("alice", "CREATE TABLE {t} (k int PRIMARY KEY, v text)"),  # PG 15: no CREATE on public for PUBLIC
    ("postgres", "GRANT CREATE ON SCHEMA public TO {alice}"),
    ("alice", "CREATE TABLE {t} (k int PRIMARY KEY, v text)"),
    ("alice", "INSERT INTO {t} VALUES (1, 'one'), (2, 'two')"),
    ("-", "SELECT relname, pg_get_userbyid(relowner), relacl::text FROM pg_class WHERE relname = '{t}'"),
    ("-", "REVOKE ALL ON {t} FROM {bob}"),
    ("bob", "SELECT * FROM {t}"),
    ("-", "INSERT INTO {t} VALUES (3, 'three')"),
    ("-", "UPDATE {t} SET v = 'x'"),
    ("-", "DELETE FROM {t}"),
    ("-", "TRUNCATE {t}"),
    ("-", "DROP TABLE {t}"),
    ("-", "ALTER TABLE {t} ADD COLUMN z int"),
    ("-", "ALTER TABLE {t} OWNER TO {bob}"),
    ("-", "GRANT SELECT ON {t} TO {bob}"),
    ("-", "SELECT count(*) FROM (SELECT 1 FROM {t} a JOIN {t} b USING (k)) x"),
    ("-", "SELECT 1 WHERE EXISTS (SELECT 1 FROM {t})"),
    ("alice", "GRANT SELECT, UPDATE ON {t} TO {bob}"),
    ("-", "SELECT relacl::text FROM pg_class WHERE relname = '{t}'"),
    ("bob", "SELECT k, v FROM {t} ORDER BY k"),
    ("-", "UPDATE {t} SET v = 'uno' WHERE k = 1"),
    ("-", "UPDATE {t} SET v = 'all'"),
    ("-", "DELETE FROM {t} WHERE k = 2"),
    ("-", "GRANT SELECT ON {t} TO {carol}"),  # no grant option
    ("alice", "GRANT SELECT ON {t} TO {bob} WITH GRANT OPTION"),
    ("bob", "GRANT SELECT ON {t} TO {carol}"),
    ("-", "GRANT INSERT ON {t} TO {carol}"),
    ("carol", "SELECT count(*) FROM {t}"),
    ("alice", "SELECT relacl::text FROM pg_class WHERE relname = '{t}'"),
    ("-", "REVOKE SELECT ON {t} FROM {bob}"),  # bob granted to carol: dependent privileges
    ("-", "REVOKE GRANT OPTION FOR SELECT ON {t} FROM {bob} CASCADE"),
    ("-", "SELECT relacl::text FROM pg_class WHERE relname = '{t}'"),
    ("carol", "SELECT count(*) FROM {t}"),
    ("alice", "REVOKE ALL ON {t} FROM {bob}"),
    ("bob", "SELECT * FROM {t}"),
    ("alice", "GRANT SELECT ON {t} TO PUBLIC"),
    ("bob", "SELECT count(*) FROM {t}"),
    ("-", "INSERT INTO {t} VALUES (5, 'five')"),
    ("alice", "REVOKE SELECT ON {t} FROM PUBLIC"),
    ("-", "GRANT INSERT ON {t} TO {grp}"),
    ("carol", "INSERT INTO {t} VALUES (6, 'six')"),  # through grp (inherited)
    ("-", "INSERT INTO {t} VALUES (7, 'seven') RETURNING k"),  # RETURNING needs SELECT
    ("noinh", "INSERT INTO {t} VALUES (8, 'eight')"),  # NOINHERIT: not without SET ROLE
    ("postgres", "SET ROLE {noinh}"),
    ("-", "SET ROLE {grp}"),
    ("-", "SELECT current_user = '{grp}', session_user = 'postgres'"),
    ("-", "INSERT INTO {t} VALUES (9, 'nine')"),
    ("-", "SELECT * FROM {t}"),
    ("-", "RESET ROLE"),
    ("alice", "ALTER TABLE {t} OWNER TO {bob}"),  # alice is not a member of bob
    ("postgres", "ALTER TABLE {t} OWNER TO {bob}"),
    ("-", "SELECT pg_get_userbyid(relowner), relacl::text FROM pg_class WHERE relname = '{t}'"),
    ("alice", "SELECT count(*) FROM {t}"),
    ("bob", "SELECT k FROM {t} ORDER BY k"),
    ("-", "TRUNCATE {t}"),
    ("-", "DROP TABLE {t}"),
]

COLUMNS_VIEWS_SEQUENCES: list[privscript.Step] = [
    ("postgres", "GRANT CREATE ON SCHEMA public TO {alice}"),
    ("alice", "CREATE TABLE {u} (k int PRIMARY KEY, pub text, secret text)"),
    ("-", "INSERT INTO {u} VALUES (1, 'p', 's')"),
    ("-", "GRANT SELECT (k, pub), UPDATE (pub) ON {u} TO {bob}"),
    ("bob", "SELECT k, pub FROM {u}"),
    ("-", "SELECT * FROM {u}"),
    ("-", "SELECT secret FROM {u}"),
    ("-", "SELECT count(*) FROM {u}"),
    ("-", "UPDATE {u} SET pub = 'q' WHERE k = 1"),
    ("-", "UPDATE {u} SET secret = 'q'"),
    ("-", "SELECT has_column_privilege('{u}', 'pub', 'SELECT'), has_column_privilege('{u}', 'secret', 'SELECT'),"
          " has_table_privilege('{u}', 'SELECT'), has_any_column_privilege('{u}', 'SELECT')"),
    ("alice", "GRANT INSERT (k, pub) ON {u} TO {bob}"),
    ("bob", "INSERT INTO {u} (k, pub) VALUES (2, 'x')"),
    ("-", "INSERT INTO {u} VALUES (3, 'y', 'z')"),
    ("-", "INSERT INTO {u} (k, secret) VALUES (3, 'z')"),
    ("-", "SELECT has_column_privilege('{u}', 2::int2, 'INSERT'), has_column_privilege('{u}', 3::int2, 'INSERT')"),
    ("alice", "SELECT attname, attacl::text FROM pg_attribute WHERE attrelid = '{u}'::regclass AND attnum > 0"
              " ORDER BY attnum"),
    ("-", "REVOKE SELECT ON {u} FROM {bob}"),  # a table-level REVOKE takes the columns' too
    ("bob", "SELECT k FROM {u}"),
    ("-", "UPDATE {u} SET pub = 'r'"),
    ("alice", "CREATE VIEW {v} AS SELECT k, pub FROM {u}"),
    ("-", "GRANT SELECT ON {v} TO {bob}"),
    ("bob", "SELECT * FROM {v}"),  # the view reads with alice's rights
    ("-", "SELECT * FROM {u}"),
    ("carol", "SELECT * FROM {v}"),
    ("alice", "CREATE VIEW {iv} WITH (security_invoker = true) AS SELECT k FROM {u}"),
    ("-", "GRANT SELECT ON {iv} TO {bob}"),
    ("bob", "SELECT * FROM {iv}"),  # read with bob's privileges, not alice's
    ("alice", "SELECT * FROM {iv}"),
    ("-", "DROP VIEW {iv}"),
    ("bob", "CREATE VIEW {w} AS SELECT * FROM {u}"),  # no CREATE on public
    ("postgres", "GRANT CREATE ON SCHEMA public TO {bob}"),
    ("bob", "CREATE VIEW {w} AS SELECT * FROM {u}"),  # allowed; reading it is not
    ("-", "SELECT * FROM {w}"),
    ("-", "DROP VIEW {v}"),
    ("alice", "CREATE SEQUENCE {s}"),
    ("bob", "SELECT nextval('{s}')"),
    ("-", "SELECT currval('{s}')"),
    ("-", "SELECT setval('{s}', 5)"),
    ("alice", "GRANT USAGE ON SEQUENCE {s} TO {bob}"),
    ("bob", "SELECT nextval('{s}')"),
    ("-", "SELECT setval('{s}', 5)"),
    ("-", "SELECT has_sequence_privilege('{s}', 'USAGE'), has_sequence_privilege('{s}', 'UPDATE')"),
    ("alice", "GRANT INSERT ON {s} TO {bob}"),
    ("-", "GRANT SELECT, UPDATE ON SEQUENCE {s} TO {bob}"),
    ("-", "GRANT DELETE ON SEQUENCE {s} TO {bob}"),
    ("-", "SELECT relname, relacl::text FROM pg_class WHERE relname IN ('{s}', '{u}', '{v}') ORDER BY relname"),
    ("-", "CREATE TABLE {ser} (id serial PRIMARY KEY, x int)"),
    ("-", "GRANT INSERT ON {ser} TO {bob}"),
    ("bob", "INSERT INTO {ser} (x) VALUES (1)"),  # nextval on the serial's sequence
    ("alice", "GRANT USAGE ON SEQUENCE {ser_id_seq} TO {bob}"),
    ("bob", "INSERT INTO {ser} (x) VALUES (1)"),
    ("-", "SELECT has_table_privilege('{bob}', '{ser}', 'INSERT'), has_table_privilege('{carol}', '{ser}', 'INSERT'),"
          " has_table_privilege('{alice}', '{ser}', 'SELECT WITH GRANT OPTION')"),
    ("-", "SELECT pg_has_role('{grp}', 'MEMBER'), pg_has_role('{carol}', '{grp}', 'USAGE'),"
          " pg_has_role('{noinh}', '{grp}', 'USAGE'), pg_has_role('{noinh}', '{grp}', 'MEMBER')"),
    ("-", "SELECT has_schema_privilege('public', 'CREATE'), has_database_privilege('postgres', 'CONNECT')"),
    ("alice", "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO {bob}"),
    ("-", "CREATE TABLE {d1} (a int)"),
    ("-", "ALTER DEFAULT PRIVILEGES REVOKE SELECT ON TABLES FROM {bob}"),
    ("-", "CREATE TABLE {d2} (a int)"),
    ("bob", "SELECT count(*) FROM {d1}"),
    ("-", "SELECT count(*) FROM {d2}"),
    ("postgres", "REVOKE CREATE ON SCHEMA public FROM {bob}"),
    ("bob", "CREATE TABLE {ctas} AS SELECT 1 AS a"),
    ("postgres", "SELECT relname, pg_get_userbyid(relowner) FROM pg_class"
                 " WHERE relname IN ('{u}', '{s}', '{ser}', '{ser_id_seq}', '{d1}') ORDER BY relname"),
]

MORE_STATEMENTS: list[privscript.Step] = [
    ("postgres", "GRANT CREATE ON SCHEMA public TO {alice}, {bob}"),
    ("alice", "CREATE TABLE {t} (k int PRIMARY KEY, v text)"),
    ("-", "INSERT INTO {t} VALUES (1, 'a')"),
    ("-", "GRANT SELECT ON {t} TO {bob}"),
    ("bob", "SELECT k FROM {t} FOR UPDATE"),  # locking needs UPDATE too
    ("-", "EXPLAIN SELECT * FROM {u}"),
    ("-", "CREATE TABLE {u} (k int REFERENCES {t} (k))"),  # REFERENCES on the parent
    ("alice", "GRANT REFERENCES, UPDATE ON {t} TO {bob}"),
    ("bob", "SELECT k FROM {t} FOR UPDATE"),
    ("-", "CREATE TABLE {u} (k int REFERENCES {t} (k))"),
    ("-", "INSERT INTO {u} VALUES (1)"),  # the foreign key's check needs nothing of bob
    ("carol", "CREATE TABLE {w} (a int)"),  # no CREATE on public ...
    ("-", "CREATE TEMP TABLE {w} (a int)"),  # ... but TEMPORARY on the database (PUBLIC's)
    ("-", "INSERT INTO {w} VALUES (1) RETURNING a"),
    ("-", "DROP TABLE {w}"),
    ("carol", "EXPLAIN SELECT * FROM {t}"),
    ("-", "COPY {t} FROM STDIN"),
    ("-", "COPY {t} TO STDOUT"),
    ("-", "INSERT INTO {t} SELECT k + 10, 'x' FROM {u}"),
    ("-", "WITH x AS (SELECT * FROM {t}) SELECT count(*) FROM x"),
    ("-", "SELECT (SELECT count(*) FROM {t})"),
    ("alice", "GRANT INSERT ON {t} TO {carol}"),
    ("carol", "INSERT INTO {t} SELECT k + 10, 'x' FROM {u}"),
    ("bob", "GRANT SELECT ON {u} TO {carol}"),
    ("carol", "INSERT INTO {t} SELECT k + 10, 'x' FROM {u}"),
    ("-", "UPDATE {t} SET v = 'y' WHERE k = 11"),
    ("-", "SELECT grantor, grantee, privilege_type, is_grantable, with_hierarchy"
          " FROM information_schema.table_privileges WHERE table_name IN ('{t}', '{u}') ORDER BY 1, 2, 3"),
    ("bob", "SELECT grantor, grantee, table_name, privilege_type, is_grantable"
            " FROM information_schema.role_table_grants WHERE table_name IN ('{t}', '{u}') ORDER BY 1, 2, 3, 4"),
    ("carol", "SELECT table_name FROM information_schema.tables WHERE table_name IN ('{t}', '{u}') ORDER BY 1"),
    ("alice", "GRANT UPDATE (v), SELECT (k) ON {t} TO {carol}"),
    ("carol", "SELECT table_name, column_name FROM information_schema.columns"
              " WHERE table_name IN ('{t}', '{u}') ORDER BY 1, 2"),
    ("carol", "UPDATE {t} SET v = 'y' WHERE k = 11"),
    ("-", "UPDATE {t} SET v = v || 'z' WHERE k = 11"),  # reads v: no SELECT on it
    ("-", "DELETE FROM {t} WHERE k = 11"),
    ("-", "TRUNCATE {u}"),
    ("-", "CREATE INDEX ON {t} (v)"),
    ("-", "COMMENT ON TABLE {t} IS 'x'"),
    ("-", "COMMENT ON COLUMN {t}.v IS 'x'"),
    ("-", "COMMENT ON INDEX {t}_pkey IS 'x'"),
    ("-", "ALTER TABLE {t} RENAME TO {w}"),
    ("-", "CREATE OR REPLACE VIEW {t} AS SELECT 1 AS k"),
    ("alice", "GRANT TRUNCATE ON {t} TO {grp}"),
    ("carol", "TRUNCATE {t}"),  # through grp; u's foreign key refers to t
    ("-", "TRUNCATE {t} CASCADE"),  # ... and carol may not truncate u
    ("bob", "INSERT INTO {u} VALUES (1)"),
    ("postgres", "TRUNCATE {t} CASCADE"),
    ("-", "SELECT count(*) FROM {u}"),
    ("carol", "DROP TABLE {u}"),
    ("bob", "DROP TABLE {u}"),
    ("carol", "TRUNCATE {t}"),
    ("alice", "SELECT count(*) FROM {t}"),
    ("postgres", "SELECT has_table_privilege('{carol}', '{t}', 'TRUNCATE'),"
                 " has_table_privilege('{noinh}', '{t}', 'TRUNCATE'),"
                 " has_table_privilege('{carol}', '{t}', 'DELETE, TRUNCATE')"),
    ("-", "SELECT has_table_privilege('{t}', 'SELEKT')"),
    ("-", "SELECT has_table_privilege('no_such_role_x', '{t}', 'SELECT')"),
    ("-", "SELECT has_table_privilege('{alice}', 'no_such_table_x', 'SELECT')"),
    ("-", "GRANT USAGE ON {t} TO {bob}"),
    ("-", "GRANT SELECT ON {t} TO {bob} WITH GRANT OPTION, PUBLIC"),
    ("-", "GRANT SELECT ON {t} TO PUBLIC WITH GRANT OPTION"),
    ("-", "GRANT SELECT (nope) ON {t} TO {bob}"),
    ("-", "DROP ROLE {alice}"),
    ("-", "DROP ROLE {grp}"),
    ("-", "DROP ROLE {carol}"),
    ("alice", "DROP TABLE {t}"),
]

OWNED: list[privscript.Step] = [
    ("postgres", "GRANT CREATE ON SCHEMA public TO {alice}, {bob}"),
    ("-", "CREATE TABLE {w} (a int)"),
    ("-", "GRANT SELECT ON {w} TO {alice}"),
    ("alice", "CREATE TABLE {ser} (id serial, x int)"),
    ("-", "CREATE TABLE {u} (k int)"),
    ("-", "GRANT SELECT ON {ser} TO {bob} WITH GRANT OPTION"),
    ("bob", "GRANT SELECT ON {ser} TO {carol}"),
    ("alice", "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO {bob}"),
    ("bob", "REASSIGN OWNED BY {alice} TO {bob}"),
    ("-", "DROP OWNED BY {alice}"),
    ("postgres", "REASSIGN OWNED BY {alice} TO {bob}"),
    ("-", "SELECT relname, pg_get_userbyid(relowner), relacl::text FROM pg_class"
          " WHERE relname IN ('{ser}', '{u}', '{ser_id_seq}', '{w}') ORDER BY relname"),
    ("-", "DROP ROLE {alice}"),
    ("-", "DROP OWNED BY {bob}"),
    ("-", "SELECT relname, relacl::text FROM pg_class WHERE relname IN ('{ser}', '{u}', '{ser_id_seq}', '{w}')"
          " ORDER BY relname"),
    ("-", "DROP ROLE {bob}"),
    ("-", "DROP OWNED BY {alice}"),
    ("-", "SELECT relname, relacl::text FROM pg_class WHERE relname IN ('{w}') ORDER BY relname"),
    ("-", "SELECT count(*) FROM pg_default_acl WHERE defaclrole = (SELECT oid FROM pg_roles WHERE rolname = '{alice}')"),
    ("-", "DROP ROLE {alice}"),
    ("-", "DROP TABLE {w}"),
]

CLEANUP = ["RESET ROLE", "RESET SESSION AUTHORIZATION",
           *[f"DROP VIEW IF EXISTS {{{n}}}" for n in ("v", "w", "iv")],
           *[f"DROP TABLE IF EXISTS {{{n}}}" for n in ("t", "u", "ser", "d1", "d2", "ctas")],
           "DROP SEQUENCE IF EXISTS {s}",
           *[f"ALTER DEFAULT PRIVILEGES FOR ROLE {{{r}}} REVOKE ALL ON TABLES FROM {{{g}}}"
             for r in ("alice",) for g in ("bob",)],
           "REVOKE ALL ON SCHEMA public FROM {alice}, {bob}",
           *[f"DROP ROLE IF EXISTS {{{n}}}" for n in ROLES]]


def _names() -> dict[str, str]:
    tag = "pv" + uuid.uuid4().hex[:6]
    return {n: f"{tag}_{n}" for n in ROLES + RELATIONS}


def _check(cluster: Any, scratch: list[str], script: list[privscript.Step]) -> None:
    names = _names()
    steps = SETUP + script
    ours_ci, theirs_ci = cluster.writer_dsn, privscript.conninfo_of(scratch)
    try:
        ours = privscript.run(ours_ci, steps, names)
        theirs = privscript.run(theirs_ci, steps, names)
        bad = privscript.compare(steps, ours, theirs, names)
        assert not bad, "\n".join(bad)
    finally:
        privscript.cleanup(ours_ci, CLEANUP, names)
        privscript.cleanup(theirs_ci, CLEANUP, names)


def test_owners_grants_and_enforcement_match_postgres(cluster, scratch_pg) -> None:  # noqa: F811
    _check(cluster, scratch_pg, OWNERS_AND_TABLES)


def test_columns_views_sequences_defaults_match_postgres(cluster, scratch_pg) -> None:  # noqa: F811
    _check(cluster, scratch_pg, COLUMNS_VIEWS_SEQUENCES)


def test_more_statements_match_postgres(cluster, scratch_pg) -> None:  # noqa: F811
    _check(cluster, scratch_pg, MORE_STATEMENTS)


def test_reassign_and_drop_owned_match_postgres(cluster, scratch_pg) -> None:  # noqa: F811
    _check(cluster, scratch_pg, OWNED)


DESCRIBE_SETUP = """
CREATE ROLE {alice}; CREATE ROLE "{bob} X";
CREATE TABLE {t} (a int, b int); CREATE SEQUENCE {s}; CREATE VIEW {v} AS SELECT 1 AS x;
GRANT SELECT, INSERT ON {t} TO {alice} WITH GRANT OPTION; GRANT UPDATE (b) ON {t} TO "{bob} X";
GRANT SELECT (a) ON {t} TO PUBLIC; GRANT USAGE ON SEQUENCE {s} TO {alice}; REVOKE ALL ON {v} FROM postgres;
ALTER DEFAULT PRIVILEGES FOR ROLE {alice} GRANT SELECT ON TABLES TO "{bob} X";
ALTER DEFAULT PRIVILEGES FOR ROLE {alice} IN SCHEMA public GRANT UPDATE ON SEQUENCES TO "{bob} X";
ALTER TABLE {t} ENABLE ROW LEVEL SECURITY; CREATE POLICY own ON {t} USING (a = 1);
CREATE POLICY r2 ON {t} AS RESTRICTIVE FOR UPDATE TO "{bob} X", {alice} USING (b > 0) WITH CHECK (b < 100);
CREATE POLICY ins ON {t} FOR INSERT WITH CHECK (a > 0);
"""
DESCRIBE_CLEANUP = """
DROP TABLE IF EXISTS {t}; DROP SEQUENCE IF EXISTS {s}; DROP VIEW IF EXISTS {v};
ALTER DEFAULT PRIVILEGES FOR ROLE {alice} REVOKE ALL ON TABLES FROM "{bob} X";
ALTER DEFAULT PRIVILEGES FOR ROLE {alice} IN SCHEMA public REVOKE ALL ON SEQUENCES FROM "{bob} X";
DROP ROLE IF EXISTS {alice}; DROP ROLE IF EXISTS "{bob} X";
"""


def test_psql_dp_z_ddp_match_postgres(cluster, scratch_pg) -> None:  # noqa: F811
    names = _names()
    bargs, benv = _borealis_args(cluster.writer_dsn)

    def psql(args: list[str], cmd: str, env: dict | None = None) -> str:
        r = subprocess.run(["psql", "-X", *args, "-c", privscript.fill(cmd, names)], capture_output=True, text=True,
                           env=env, timeout=60)
        return r.stdout + r.stderr

    try:
        assert "ERROR" not in psql(bargs, DESCRIBE_SETUP, benv)
        assert "ERROR" not in psql(scratch_pg, DESCRIBE_SETUP)
        for cmd in (r"\dp {t}|{s}|{v}", r"\z {t}", r"\dn+ public", r"\ddp", r"\d {t}"):
            ours, theirs = psql(bargs, cmd, benv), psql(scratch_pg, cmd)
            assert names["t"] in ours or cmd in (r"\dn+ public", r"\ddp"), ours
            assert ours == theirs, f"{cmd}\n--- borealis\n{ours}\n--- postgres\n{theirs}"
    finally:
        psql(bargs, DESCRIBE_CLEANUP, benv)
        psql(scratch_pg, DESCRIBE_CLEANUP)


def test_readers_enforce_the_same_privileges(cluster) -> None:
    """Owners and ACLs are catalog rows: a reader checks them as the writer does, and a
    GRANT / REVOKE committed on the writer changes what the reader allows."""
    from cluster import wait_for

    names = _names()
    alice, t, u = names["alice"], names["t"], names["u"]
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as w:
        w.execute(f"CREATE ROLE {alice} LOGIN")
        w.execute(f"CREATE TABLE {t} (k int)")
        w.execute(f"CREATE TABLE {u} (k int)")
        w.execute(f"INSERT INTO {t} VALUES (1), (2)")
        w.execute(f"GRANT SELECT ON {t} TO {alice}")
    reader = cluster.reader_dsn.replace("postgres@", f"{alice}@", 1)

    def outcome(sql: str) -> tuple:
        try:
            with psycopg.connect(reader, autocommit=True) as r:
                return privscript.outcome(r, sql)
        except psycopg.OperationalError as e:  # the reader has not replayed CREATE ROLE yet
            return ("connect", str(e))

    try:
        assert wait_for(lambda: outcome(f"SELECT count(*) FROM {t}") == ("rows", [("2",)]), 30, "the grant on the reader")
        assert outcome(f"SELECT count(*) FROM {u}") == ("error", "42501", f"permission denied for table {u}", None)
        assert outcome(f"SELECT has_table_privilege('{t}', 'SELECT'), has_table_privilege('{u}', 'SELECT')") == (
            "rows", [("True", "False")])
        assert outcome(f"SELECT relacl::text FROM pg_class WHERE relname = '{t}'") == (
            "rows", [(f"{{postgres=arwdDxt/postgres,{alice}=r/postgres}}",)])
        with psycopg.connect(cluster.writer_dsn, autocommit=True) as w:  # row-level security too
            w.execute(f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY")
            w.execute(f"CREATE POLICY one ON {t} USING (k = 1)")
        assert wait_for(lambda: outcome(f"SELECT k FROM {t}") == ("rows", [("1",)]), 30, "the policy on the reader")
        with psycopg.connect(cluster.writer_dsn, autocommit=True) as w:
            w.execute(f"REVOKE SELECT ON {t} FROM {alice}")
        assert wait_for(lambda: outcome(f"SELECT count(*) FROM {t}") ==
                        ("error", "42501", f"permission denied for table {t}", None), 30, "the revoke on the reader")
    finally:
        with psycopg.connect(cluster.writer_dsn, autocommit=True) as w:
            w.execute(f"DROP TABLE IF EXISTS {t}, {u}")
            w.execute(f"DROP ROLE IF EXISTS {alice}")


ROW_SECURITY: list[privscript.Step] = [
    ("postgres", "GRANT CREATE ON SCHEMA public TO {alice}"),
    ("alice", "CREATE TABLE {t} (k int PRIMARY KEY, owner text, v int)"),
    ("-", "INSERT INTO {t} VALUES (1, '{bob}', 10), (2, '{carol}', 20), (3, '{bob}', 30), (4, 'nobody', 40)"),
    ("-", "GRANT SELECT, INSERT, UPDATE, DELETE ON {t} TO PUBLIC"),
    ("bob", "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY"),  # not the owner
    ("-", "CREATE POLICY mine ON {t} USING (owner = current_user)"),
    ("alice", "ALTER TABLE {t} ENABLE ROW LEVEL SECURITY"),
    ("bob", "SELECT k FROM {t} ORDER BY k"),  # no policy: no rows
    ("-", "UPDATE {t} SET v = 0"),
    ("-", "DELETE FROM {t}"),
    ("-", "INSERT INTO {t} VALUES (5, '{bob}', 50)"),
    ("alice", "SELECT count(*) FROM {t}"),  # the owner is not subject to it
    ("-", "CREATE POLICY mine ON {t} USING (owner = current_user)"),
    ("-", "CREATE POLICY mine ON {t} USING (owner = current_user)"),
    ("-", "CREATE POLICY bad ON {t} FOR SELECT USING (true) WITH CHECK (true)"),
    ("-", "CREATE POLICY bad ON {t} FOR INSERT USING (true)"),
    ("-", "CREATE POLICY bad ON {t} USING (nope = 1)"),
    ("-", "CREATE POLICY bad ON {t} TO no_such_role_x USING (true)"),
    ("bob", "SELECT k, v FROM {t} ORDER BY k"),
    ("-", "SELECT count(*) FROM {t} a JOIN {t} b USING (k)"),
    ("-", "SELECT (SELECT count(*) FROM {t}), (SELECT max(k) FROM {t} WHERE v > 15)"),
    ("-", "SELECT k FROM {t} WHERE k IN (SELECT k FROM {t} WHERE v < 100) ORDER BY k"),
    ("-", "UPDATE {t} SET v = v + 1 RETURNING k, v"),
    ("-", "UPDATE {t} SET owner = '{carol}' WHERE k = 1"),  # the new row fails the policy
    ("-", "DELETE FROM {t} WHERE v > 0 RETURNING k"),
    ("-", "INSERT INTO {t} VALUES (6, '{carol}', 60)"),
    ("-", "INSERT INTO {t} VALUES (6, '{bob}', 60)"),
    ("-", "COPY {t} FROM STDIN"),
    ("-", "INSERT INTO {t} VALUES (6, '{carol}', 60) ON CONFLICT (k) DO NOTHING"),  # checked first
    ("-", "INSERT INTO {t} VALUES (6, '{bob}', 61) ON CONFLICT (k) DO NOTHING"),
    ("-", "INSERT INTO {t} VALUES (8, '{bob}', 80) ON CONFLICT (k) DO NOTHING RETURNING k"),
    ("-", "DELETE FROM {t} WHERE k = 8"),
    ("carol", "SELECT k, owner FROM {t} ORDER BY k"),
    ("alice", "CREATE POLICY small ON {t} AS RESTRICTIVE FOR ALL TO {grp} USING (v < 50) WITH CHECK (v < 45)"),
    ("-", "CREATE POLICY readall ON {t} FOR SELECT TO {carol} USING (true)"),
    ("carol", "SELECT k FROM {t} ORDER BY k"),  # readall, then small (carol is in grp)
    ("-", "UPDATE {t} SET v = 44 WHERE k = 2"),
    ("-", "UPDATE {t} SET v = 46 WHERE k = 2"),  # the restrictive policy's WITH CHECK
    ("-", "INSERT INTO {t} VALUES (7, '{carol}', 47)"),
    ("-", "DELETE FROM {t} WHERE k = 6"),  # visible (readall) but not deletable (mine)
    ("-", "SELECT k FROM {t} ORDER BY k"),
    ("alice", "SELECT policyname, permissive, roles::text, cmd, qual, with_check FROM pg_policies"
              " WHERE tablename = '{t}' ORDER BY policyname"),
    ("-", "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = '{t}'"),
    ("-", "ALTER TABLE {t} FORCE ROW LEVEL SECURITY"),
    ("-", "SELECT k FROM {t} ORDER BY k"),  # forced: the owner too
    ("-", "ALTER TABLE {t} NO FORCE ROW LEVEL SECURITY"),
    ("-", "CREATE VIEW {v} AS SELECT k FROM {t}"),
    ("-", "GRANT SELECT ON {v} TO {bob}"),
    ("bob", "SELECT k FROM {v} ORDER BY k"),  # read as the view's owner: no policy applies
    ("postgres", "DROP ROLE {grp}"),
    ("bob", "DROP POLICY mine ON {t}"),
    ("alice", "DROP POLICY nope ON {t}"),
    ("-", "DROP POLICY IF EXISTS nope ON {t}"),
    ("-", "DROP POLICY small ON {t}"),
    ("-", "ALTER POLICY readall ON {t} TO {carol}, {bob} USING (k > 3)"),
    ("bob", "SELECT k FROM {t} ORDER BY k"),
    ("-", "ALTER POLICY readall ON {t} USING (true)"),
    ("alice", "ALTER POLICY readall ON {t} RENAME TO mine"),
    ("-", "ALTER POLICY readall ON {t} RENAME TO everything"),
    ("-", "ALTER POLICY everything ON {t} WITH CHECK (true)"),
    ("-", "ALTER POLICY mine ON {t} WITH CHECK (v > 0)"),
    ("-", "SELECT policyname, roles::text, cmd, qual, with_check FROM pg_policies WHERE tablename = '{t}'"
          " ORDER BY policyname"),
    ("-", "CREATE POLICY rec ON {t} FOR SELECT USING (k IN (SELECT k FROM {t}))"),
    ("bob", "SELECT count(*) FROM {t}"),  # the policy reads its own table
    ("alice", "DROP POLICY rec ON {t}"),
    ("-", "ALTER TABLE {t} DISABLE ROW LEVEL SECURITY"),
    ("bob", "SELECT count(*) FROM {t}"),
    ("postgres", "DROP VIEW {v}"),
    ("-", "DROP TABLE {t}"),
]


def test_row_level_security_matches_postgres(cluster, scratch_pg) -> None:  # noqa: F811
    _check(cluster, scratch_pg, ROW_SECURITY)


def test_what_is_not_supported_is_refused(cluster) -> None:
    """INSERT ... ON CONFLICT under a policy, privileges on functions and taking USAGE on
    public away fail with 0A000 rather than being accepted and ignored."""
    names = _names()
    t, bob = names["t"], names["bob"]
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as c:
        c.execute(f"CREATE ROLE {bob}")
        c.execute(f"CREATE TABLE {t} (k int PRIMARY KEY)")
        try:
            c.execute(f"GRANT ALL ON {t} TO {bob}")
            c.execute(f"ALTER TABLE {t} ENABLE ROW LEVEL SECURITY")
            c.execute(f"CREATE POLICY p ON {t} USING (k = 1)")
            for sql in ("REVOKE USAGE ON SCHEMA public FROM PUBLIC", "REVOKE EXECUTE ON FUNCTION now() FROM PUBLIC",
                        f"ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM {bob}",
                        "REVOKE SELECT ON pg_class FROM PUBLIC"):
                assert privscript.outcome(c, sql)[:2] == ("error", "0A000"), sql
            assert privscript.outcome(c, "SELECT has_schema_privilege('public', 'USAGE')") == ("rows", [("True",)])
            c.execute(f"SET ROLE {bob}")
            assert privscript.outcome(c, f"INSERT INTO {t} VALUES (1) ON CONFLICT (k) DO UPDATE SET k = 1")[:2] == (
                "error", "0A000")
            assert privscript.outcome(c, f"INSERT INTO {t} VALUES (2)")[:2] == ("error", "42501")
            assert privscript.outcome(c, f"INSERT INTO {t} VALUES (1)") == ("ok", "INSERT 0 1")
            c.execute("RESET ROLE")
            assert privscript.outcome(c, f"SELECT k FROM {t}") == ("rows", [("1",)])
        finally:
            c.execute("RESET ROLE")
            c.execute(f"DROP TABLE {t}")
            c.execute(f"DROP ROLE {bob}")


def test_connect_privilege_matches_postgres(cluster, scratch_pg) -> None:  # noqa: F811
    names = _names()
    bob, db = names["bob"], names["d1"]
    ours = cluster.writer_dsn
    theirs = privscript.conninfo_of(scratch_pg)

    def as_bob(server: str) -> str:
        if server == ours:
            return ours.replace("postgres@", f"{bob}@", 1).rsplit("/", 1)[0] + f"/{db}"
        return theirs.replace("user=postgres", f"user={bob}").replace("dbname=postgres", f"dbname={db}")

    def attempt(server: str) -> tuple:
        try:
            with psycopg.connect(as_bob(server), autocommit=True) as c:
                return privscript.outcome(c, f"SELECT current_user = '{bob}', has_database_privilege('{db}', 'CONNECT')")
        except psycopg.OperationalError as e:
            got = str(e)
            return ("refused", "permission denied for database" in got, "User does not have CONNECT privilege." in got)

    def script(server: str) -> list:
        out = []
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"CREATE ROLE {bob} LOGIN")
            admin.execute(f"CREATE DATABASE {db}")
            out.append(attempt(server))
            admin.execute(f"REVOKE CONNECT ON DATABASE {db} FROM PUBLIC")
            out.append(privscript.outcome(admin, f"SELECT datacl::text FROM pg_database WHERE datname = '{db}'"))
            out.append(attempt(server))
            admin.execute(f"GRANT CONNECT ON DATABASE {db} TO {bob}")
            out.append(attempt(server))
            out.append(privscript.outcome(admin, f"DROP ROLE {bob}"))
            admin.execute(f"ALTER DATABASE {db} OWNER TO {bob}")  # the owner's place in the ACL moves
            out.append(privscript.outcome(admin, f"SELECT datacl::text FROM pg_database WHERE datname = '{db}'"))
            out.append(privscript.outcome(admin, f"DROP ROLE {bob}"))
            admin.execute(f"ALTER DATABASE {db} OWNER TO postgres")
        return out

    def cleanup(server: str) -> None:
        with psycopg.connect(server, autocommit=True) as admin:
            for sql in (f"DROP DATABASE IF EXISTS {db}", f"DROP ROLE IF EXISTS {bob}"):
                try:
                    admin.execute(sql)
                except psycopg.Error:
                    pass

    try:
        got, want = script(ours), script(theirs)
        assert want[2] == ("refused", True, True), want
        assert got == want
    finally:
        cleanup(ours)
        cleanup(theirs)


IN_SCHEMA: list[privscript.Step] = [
    ("postgres", "CREATE TABLE {t} (k int)"),
    ("-", "CREATE VIEW {v} AS SELECT 1 AS x"),
    ("-", "CREATE SEQUENCE {s}"),
    ("-", "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {bob}"),
    ("-", "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {carol}"),
    ("-", "GRANT SELECT ON ALL TABLES IN SCHEMA nowhere TO {bob}"),
    ("-", "SELECT relname, relacl::text FROM pg_class WHERE relname IN ('{t}', '{v}', '{s}') ORDER BY relname"),
    ("bob", "SELECT count(*) FROM {t}"),
    ("-", "SELECT nextval('{s}')"),
    ("postgres", "REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {bob}"),
    ("-", "SELECT relname, relacl::text FROM pg_class WHERE relname IN ('{t}', '{v}', '{s}') ORDER BY relname"),
    ("-", "DROP TABLE {t}"),
    ("-", "DROP VIEW {v}"),
    ("-", "DROP SEQUENCE {s}"),
]


def test_all_tables_in_schema_match_postgres(cluster, scratch_pg) -> None:  # noqa: F811
    """ON ALL TABLES / SEQUENCES IN SCHEMA public, in a database of the test's own (the
    shared cluster's postgres database holds other tests' tables)."""
    names = _names()
    db = names["d1"]
    ours, theirs = cluster.writer_dsn, privscript.conninfo_of(scratch_pg)
    in_db = {ours: ours.rsplit("/", 1)[0] + f"/{db}", theirs: theirs.replace("dbname=postgres", f"dbname={db}")}
    steps = SETUP + IN_SCHEMA
    try:
        for server in (ours, theirs):
            with psycopg.connect(server, autocommit=True) as c:
                c.execute(f"CREATE DATABASE {db}")
        got, want = (privscript.run(in_db[s], steps, names) for s in (ours, theirs))
        bad = privscript.compare(steps, got, want, names)
        assert not bad, "\n".join(bad)
    finally:
        for server in (ours, theirs):
            with psycopg.connect(server, autocommit=True) as c:
                for sql in (f"DROP DATABASE IF EXISTS {db}", *[f"DROP ROLE IF EXISTS {names[r]}" for r in ROLES]):
                    try:
                        c.execute(sql)
                    except psycopg.Error:
                        pass
