"""psql 15's describe commands against Borealis and against a scratch PostgreSQL 15.

The same DDL (a table with a primary key, an index, NOT NULL, a DEFAULT and a foreign
key) runs on both servers; each backslash command's output must match byte for byte.
The scratch server is initdb'ed into a tmp dir and listens only on a Unix socket there;
as root it runs as ``nobody`` (initdb refuses root).
"""

from __future__ import annotations

import os
import subprocess
import uuid
from urllib.parse import urlparse

import pytest
from scratchpg import scratch_postgres

COMMANDS = [r"\d {t}", r"\d+ {t}", r"\d {p}", r"\dt", r"\di", r"\dn", r"\du", r"\du {r}", r"\df", r"\d", r"\l",
            r"\l {db}"]


@pytest.fixture(scope="module")
def scratch_pg():
    with scratch_postgres() as (base, port):
        yield ["-h", str(base), "-p", str(port), "-U", "postgres", "-d", "postgres"]


def _borealis_args(dsn: str) -> tuple[list[str], dict[str, str]]:
    u = urlparse(dsn)
    env = dict(os.environ)
    if u.password:
        env["PGPASSWORD"] = u.password
    return ["-h", u.hostname or "127.0.0.1", "-p", str(u.port), "-U", u.username or "postgres",
            "-d", (u.path or "/postgres").lstrip("/") or "postgres"], env


def _psql(args: list[str], cmd: str, env: dict[str, str] | None = None) -> str:
    r = subprocess.run(["psql", "-X", *args, "-c", cmd], capture_output=True, text=True, env=env, timeout=60)
    return r.stdout + r.stderr


def _rows_named(out: str, names: set[str]) -> list[str]:
    """The lines of psql's table whose first column is one of ``names`` (the header's
    included), with their continuation lines, padding collapsed."""
    rows, keep = [], False
    for line in out.splitlines():
        if "|" not in line:  # title, rule, footer
            continue
        first = line.split("|", 1)[0].strip()
        if first:  # a new row; an empty first column continues the last one
            keep = first in names
        if keep:
            rows.append(" ".join(line.split()))
    return rows


def test_describe_commands_match_postgres(cluster, scratch_pg) -> None:
    tag = uuid.uuid4().hex[:6]
    t, p = f"psq_t_{tag}", f"psq_p_{tag}"
    g, u = f"psq_g_{tag}", f"psq_u_{tag}"
    ddl = (f"create table {p}(id int primary key); "
           f"create table {t}(id int primary key, name text not null default 'x', "
           f"pid int references {p}(id), score numeric(10,2)); "
           f"create index {t}_name_idx on {t}(name); "
           f"create role {g}; create role {u} login createdb connection limit 2 in role {g};")
    bargs, benv = _borealis_args(cluster.writer_dsn)
    try:
        assert "ERROR" not in _psql(bargs, ddl, benv)
        assert "ERROR" not in _psql(scratch_pg, ddl)
        mismatched = []
        for template in COMMANDS:
            # The patterns name what is the same on both servers: the built-in superuser and
            # this test's roles, the databases initdb makes.
            cmd = template.format(t=t, p=p, r=f"postgres|psq_*_{tag}", db="postgres|template*")
            ours, theirs = _psql(bargs, cmd, benv), _psql(scratch_pg, cmd)
            if template == r"\du {r}":
                assert all(f" {name} " in ours for name in ("postgres", g, u)), ours
            elif template == r"\l {db}":
                assert all(f" {name} " in ours for name in ("postgres", "template0", "template1")), ours
            if cmd in (r"\dt", r"\di", r"\d"):  # the shared cluster holds other tests' tables
                # ...whose longer names widen the columns: compare the rows without padding
                ours = "\n".join(" ".join(line.split()) for line in ours.splitlines() if tag in line)
                theirs = "\n".join(" ".join(line.split()) for line in theirs.splitlines() if tag in line)
                assert ours, f"{cmd}: our tables are missing"
            elif cmd in (r"\du", r"\l"):  # ...and other tests' roles and databases
                # (their patterned forms compare byte for byte): the rows the scratch server
                # lists, without padding; and no pg_ role, which \du leaves out
                names = {line.split("|", 1)[0].strip() for line in theirs.splitlines() if "|" in line}
                listed = {line.split("|", 1)[0].strip() for line in ours.splitlines() if "|" in line}
                if cmd == r"\du":
                    assert {g, u, "postgres"} <= names, theirs
                    assert not any(n.startswith("pg_") for n in listed), ours
                ours, theirs = "\n".join(_rows_named(ours, names)), "\n".join(_rows_named(theirs, names))
            if ours != theirs:
                mismatched.append(f"{cmd}:\n--- borealis\n{ours}\n--- postgres\n{theirs}")
        assert not mismatched, "\n".join(mismatched)
    finally:
        drop = f"drop role if exists {u}, {g}"
        _psql(bargs, drop, benv)
        _psql(scratch_pg, drop)


def test_catalog_functions_and_reg_casts(cluster) -> None:
    tag = uuid.uuid4().hex[:6]
    t = f"psq_r_{tag}"
    bargs, benv = _borealis_args(cluster.writer_dsn)
    _psql(bargs, f"create table {t}(id int primary key, v varchar(5))", benv)
    out = subprocess.run(
        ["psql", "-X", "-At", *bargs, "-c",
         f"select '{t}'::regclass::oid = (select oid from pg_class where relname = '{t}'), "
         f"'{t}'::regclass::text, 'int4'::regtype::text, format_type(1043, 9), pg_is_in_recovery(), "
         f"(select string_agg(column_name || ':' || data_type, ',') from information_schema.columns "
         f"where table_name = '{t}')"],
        capture_output=True, text=True, env=benv).stdout.strip()
    assert out == f"t|{t}|integer|character varying(5)|f|id:integer,v:character varying", out
    rargs, renv = _borealis_args(cluster.reader_dsn)
    rec = subprocess.run(["psql", "-X", "-At", *rargs, "-c", "select pg_is_in_recovery()"],
                         capture_output=True, text=True, env=renv).stdout.strip()
    assert rec == "t"
