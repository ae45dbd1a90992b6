"""Running one script of statements, as several roles, on Borealis and on PostgreSQL 15.

A script is a list of ``(role, sql)`` steps; before a step whose role differs from the last
one the connection runs ``SET SESSION AUTHORIZATION role`` (``-`` keeps the role, ``postgres``
is the bootstrap superuser).  Each step's outcome is its rows (every row of the last
result, as text) or its SQLSTATE, message and detail; a test runs the same script on both servers
and compares the outcomes one by one.  ``{x}`` in a step is this run's name for ``x``
(roles are the cluster's, so a shared cluster needs names of its own per run).
"""

from __future__ import annotations

import re
from typing import Any

import psycopg

Step = tuple[str, str]


def outcome(conn: psycopg.Connection, sql: str) -> tuple:
    try:
        cur = conn.execute(sql)
    except psycopg.Error as e:
        return ("error", e.sqlstate, e.diag.message_primary, e.diag.message_detail)
    if cur.description is None:
        return ("ok", cur.statusmessage)
    return ("rows", [tuple(None if v is None else str(v) for v in row) for row in cur.fetchall()])


def run(conninfo: str, steps: list[Step], names: dict[str, str]) -> list[tuple]:
    """The outcome of each step, in order (autocommit; the session starts as postgres)."""
    out = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SET client_min_messages = error")
        who = "postgres"
        for role, sql in steps:
            text = fill(sql, names)
            if role not in ("-", who):
                conn.execute("RESET ROLE")
                conn.execute(f"SET SESSION AUTHORIZATION {fill('{' + role + '}', names) if role != 'postgres' else role}")
                who = role
            out.append(outcome(conn, text))
    return out


def fill(text: str, names: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: names.get(m.group(1), m.group(1)), text)


def compare(steps: list[Step], ours: list[tuple], theirs: list[tuple], names: dict[str, str]) -> list[str]:
    """The steps whose outcomes differ, shown with both outcomes."""
    bad = []
    for (role, sql), a, b in zip(steps, ours, theirs):
        if a != b:
            bad.append(f"[{role}] {fill(sql, names)}\n  borealis: {a}\n  postgres: {b}")
    return bad


def conninfo_of(psql_args: list[str]) -> str:
    """A libpq conninfo from the scratch server's psql arguments (-h dir -p port -U user -d db)."""
    opts = dict(zip(psql_args[::2], psql_args[1::2]))
    return f"host={opts['-h']} port={opts['-p']} user={opts['-U']} dbname={opts['-d']}"


def cleanup(conninfo: str, sql: list[str], names: dict[str, str]) -> Any:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for s in sql:
            try:
                conn.execute(fill(s, names))
            except psycopg.Error:
                pass
