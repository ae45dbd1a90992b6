"""Databases: each has relations of its own; DROP DATABASE and its refusals.

Expected errors and SQLSTATEs are PostgreSQL 15's for the same statements (checked on a
scratch PostgreSQL 15: template 42809, open database 55006, owner 42501, missing 3D000,
transaction block 25001, CREATE DATABASE without CREATEDB 42501).
"""

from __future__ import annotations

import time
import uuid

import psycopg
import pytest
from psycopg.conninfo import make_conninfo


def _dsn(cluster, dbname: str, reader: bool = False, **kw: str) -> str:
    return make_conninfo(cluster.reader_dsn if reader else cluster.writer_dsn, dbname=dbname, **kw)


def _connect(cluster, dbname: str, **kw: str) -> psycopg.Connection:
    return psycopg.connect(_dsn(cluster, dbname, **kw), autocommit=True)


def _fails(conn: psycopg.Connection, sql: str, sqlstate: str) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as ei:
        conn.execute(sql)
    assert ei.value.sqlstate == sqlstate, (sql, ei.value.sqlstate, str(ei.value))
    return ei.value


def test_each_database_has_its_own_relations(cluster) -> None:
    tag = "d" + uuid.uuid4().hex[:8]
    one, two = f"{tag}_one", f"{tag}_two"
    with _connect(cluster, "postgres") as admin:
        admin.execute(f"CREATE DATABASE {one}")
        admin.execute(f"CREATE DATABASE {two}")
    try:
        with _connect(cluster, one) as a, _connect(cluster, two) as b:
            # the same name in two databases: two tables, of different shapes
            a.execute("CREATE TABLE t (k int PRIMARY KEY, v text)")
            a.execute("CREATE SEQUENCE s")
            a.execute("INSERT INTO t VALUES (1, 'in one'), (2, 'also in one')")
            _fails(b, "SELECT * FROM t", "42P01")
            b.execute("CREATE TABLE t (x numeric)")  # no 42P07: b's namespace has no t
            b.execute("INSERT INTO t VALUES (2.5)")
            assert a.execute("SELECT k, v FROM t ORDER BY k").fetchall() == [(1, "in one"), (2, "also in one")]
            assert b.execute("SELECT x::text FROM t").fetchall() == [("2.5",)]
            # one SQL text, planned in each database (plans are cached per database)
            for _ in range(3):
                assert a.execute("SELECT count(*) FROM t").fetchone() == (2,)
                assert b.execute("SELECT count(*) FROM t").fetchone() == (1,)
            # pg_stat_activity names the session's database by its oid too
            datid = a.execute("SELECT datid FROM pg_stat_activity WHERE pid = pg_backend_pid()").fetchone()
            assert datid == a.execute("SELECT oid FROM pg_database WHERE datname = current_database()").fetchone()
            assert datid != b.execute("SELECT datid FROM pg_stat_activity WHERE pid = pg_backend_pid()").fetchone()
            # a sequence is the database's too
            assert a.execute("SELECT nextval('s')").fetchone() == (1,)
            _fails(b, "SELECT nextval('s')", "42P01")
            # the catalogs list only the database's own relations
            assert a.execute("SELECT relname FROM pg_class WHERE relname IN ('t', 's') ORDER BY 1").fetchall() \
                == [("s",), ("t",)]
            assert b.execute("SELECT relname FROM pg_class WHERE relname IN ('t', 's')").fetchall() == [("t",)]
            assert b.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 't'")\
                .fetchall() == [("x",)]
            with _connect(cluster, "postgres") as p:
                _fails(p, "SELECT * FROM t", "42P01")
            # DROP TABLE in one database leaves the other's table alone
            b.execute("DROP TABLE t")
            assert a.execute("SELECT count(*) FROM t").fetchone() == (2,)
        # the reader endpoint serves each database its own tables too
        deadline = time.monotonic() + 10
        with psycopg.connect(_dsn(cluster, one, reader=True), autocommit=True) as r:
            while True:
                try:
                    got = r.execute("SELECT k FROM t ORDER BY k").fetchall()
                    break
                except psycopg.errors.UndefinedTable:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            assert got == [(1,), (2,)]
        with psycopg.connect(_dsn(cluster, two, reader=True), autocommit=True) as r:
            _fails(r, "SELECT * FROM t", "42P01")
    finally:
        with _connect(cluster, "postgres") as admin:
            for name in (one, two):
                admin.execute(f"DROP DATABASE IF EXISTS {name}")


def test_drop_database(cluster) -> None:
    name = "d" + uuid.uuid4().hex[:8]
    role = f"{name}_r"
    with _connect(cluster, "postgres") as admin:
        admin.execute(f"CREATE DATABASE {name}")
        assert admin.execute("SELECT datdba FROM pg_database WHERE datname = %s", [name]).fetchone() == (10,)
        oid = admin.execute("SELECT oid FROM pg_database WHERE datname = %s", [name]).fetchone()
        with _connect(cluster, name) as c:
            c.execute("CREATE TABLE t (k int PRIMARY KEY)")
            c.execute("INSERT INTO t SELECT generate_series(1, 100)")
            _fails(c, f"DROP DATABASE {name}", "55006")  # its own database
            # another session uses it
            e = _fails(admin, f"DROP DATABASE {name}", "55006")
            assert str(e).startswith(f'database "{name}" is being accessed by other users'), str(e)
            assert e.diag.message_detail == "There is 1 other session using the database."
        # its oid stays put while other databases come and go
        admin.execute(f"CREATE DATABASE {name}_x")
        admin.execute(f"DROP DATABASE {name}_x")
        assert admin.execute("SELECT oid FROM pg_database WHERE datname = %s", [name]).fetchone() == oid
        _fails(admin, "DROP DATABASE template1", "42809")
        # template0 takes settings and still takes no connections
        admin.execute("ALTER DATABASE template0 SET work_mem = '8MB'")
        try:
            with pytest.raises(psycopg.OperationalError):
                _connect(cluster, "template0")
        finally:
            admin.execute("ALTER DATABASE template0 RESET ALL")
        _fails(admin, f"DROP DATABASE {name}_nosuch", "3D000")
        admin.execute(f"DROP DATABASE IF EXISTS {name}_nosuch")  # a notice, no error
        admin.execute("BEGIN")
        _fails(admin, f"DROP DATABASE {name}", "25001")
        admin.execute("ROLLBACK")
        admin.execute(f"CREATE ROLE {role} LOGIN")
        try:
            admin.execute(f"SET ROLE {role}")
            _fails(admin, f"DROP DATABASE {name}", "42501")  # not the owner
            _fails(admin, f"CREATE DATABASE {name}_y", "42501")  # no CREATEDB
            admin.execute("RESET ROLE")
        finally:
            admin.execute("RESET ROLE")
            admin.execute(f"DROP ROLE {role}")
        admin.execute(f"DROP DATABASE {name}")
        assert admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [name]).fetchone() == (0,)
        with pytest.raises(psycopg.OperationalError, match="does not exist"):
            _connect(cluster, name)
        # the same name again: a new, empty database
        admin.execute(f"CREATE DATABASE {name}")
        try:
            with _connect(cluster, name) as c:
                _fails(c, "SELECT * FROM t", "42P01")
                c.execute("CREATE TABLE t (k int PRIMARY KEY)")
                assert c.execute("SELECT count(*) FROM t").fetchone() == (0,)
        finally:
            admin.execute(f"DROP DATABASE {name}")


def test_owner_rename_and_defaults(cluster) -> None:
    name = "d" + uuid.uuid4().hex[:8]
    role = f"{name}_o"
    with _connect(cluster, "postgres") as admin:
        admin.execute(f"CREATE ROLE {role} LOGIN")
        admin.execute(f"CREATE DATABASE {name} OWNER {role}")  # sqlglot reads this form as a command
        admin.execute(f"CREATE DATABASE {name}_b WITH OWNER = {role} TEMPLATE = template0 ENCODING 'UTF8'")
        try:
            owners = admin.execute("SELECT datname, pg_get_userbyid(datdba) FROM pg_database "
                                   "WHERE datname LIKE %s ORDER BY 1", [f"{name}%"]).fetchall()
            assert owners == [(name, role), (f"{name}_b", role)]
            _fails(admin, f"CREATE DATABASE {name}_c OWNER {name}_nosuch", "42704")
            _fails(admin, f"CREATE DATABASE {name}_c TEMPLATE {name}_nosuch", "3D000")
            # a role that owns databases cannot be dropped; the detail names them
            e = _fails(admin, f"DROP ROLE {role}", "2BP01")
            assert e.diag.message_detail == f"owner of database {name}\nowner of database {name}_b"
            admin.execute(f"ALTER DATABASE {name}_b OWNER TO postgres")
            # the owner (no superuser) may rename and set defaults; the relations move along
            with _connect(cluster, name, user=role) as c:
                c.execute("CREATE TABLE t (k int)")
                c.execute("INSERT INTO t VALUES (7)")
            with _connect(cluster, "postgres", user=role) as o:
                _fails(o, f"ALTER DATABASE {name} RENAME TO {name}_r", "42501")  # no CREATEDB
                _fails(o, f"ALTER DATABASE {name}_b SET timezone = 'UTC'", "42501")  # not the owner
                o.execute(f"ALTER DATABASE {name} SET timezone = 'Asia/Tokyo'")
            _fails(admin, f"ALTER DATABASE {name} RENAME TO {name}_b", "42P04")
            _fails(admin, f"ALTER DATABASE {name}_nosuch RENAME TO x", "3D000")
            _fails(admin, "ALTER DATABASE postgres RENAME TO x", "55006")  # the current database
            admin.execute(f"ALTER DATABASE {name} RENAME TO {name}_r")
            with _connect(cluster, f"{name}_r") as c:
                assert c.execute("SELECT k FROM t").fetchall() == [(7,)]
                # ALTER DATABASE ... SET applies to new sessions of the database
                assert c.execute("SHOW timezone").fetchone() == ("Asia/Tokyo",)
                _fails(c, f"ALTER DATABASE {name}_r RENAME TO {name}_s", "55006")
            assert admin.execute("SHOW timezone").fetchone() != ("Asia/Tokyo",)
            rows = admin.execute("SELECT setconfig FROM pg_db_role_setting s JOIN pg_database d "
                                 "ON d.oid = s.setdatabase WHERE d.datname = %s", [f"{name}_r"]).fetchall()
            assert rows == [(["timezone=Asia/Tokyo"],)]
            admin.execute(f"ALTER DATABASE {name}_r RESET timezone")
            with _connect(cluster, f"{name}_r") as c:
                assert c.execute("SHOW timezone").fetchone() != ("Asia/Tokyo",)
            with _connect(cluster, "postgres") as p:
                _fails(p, "SELECT * FROM t", "42P01")
        finally:
            for db in (name, f"{name}_r", f"{name}_b"):
                admin.execute(f"DROP DATABASE IF EXISTS {db}")
            admin.execute(f"DROP ROLE {role}")
