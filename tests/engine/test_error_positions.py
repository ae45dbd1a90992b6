"""Error positions (ErrorResponse ``P``) and the wording of common errors, through a real cluster.

Every expected position, message and hint below was taken from PostgreSQL 15 for the same
text (psql ``LINE n:`` / caret output and ``PGresult`` fields).  asyncpg's ``execute``
without arguments sends a simple Query (the path with the literal-normalising statement
cache); ``fetch`` uses Parse/Bind/Execute.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from typing import Any
from urllib.parse import urlparse

import asyncpg
import pytest


@pytest.fixture(scope="module")
def dsn(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("cluster").writer_dsn


@pytest.fixture(scope="module")
def names(dsn: str) -> dict[str, str]:
    n = {k: f"{k}_{uuid.uuid4().hex[:8]}" for k in ("tt", "ta", "tb")}

    async def setup() -> None:
        c = await asyncpg.connect(dsn)
        try:
            await c.execute(f"create table {n['tt']} (a int, b text)")
            await c.execute(f"create table {n['ta']} (unique1 int, two int)")
            await c.execute(f"create table {n['tb']} (unique1 int, two int)")
        finally:
            await c.close()

    asyncio.run(setup())
    return n


async def _error(dsn: str, sql: str, extended: bool = False) -> asyncpg.PostgresError:
    c = await asyncpg.connect(dsn)
    try:
        if extended:
            await c.fetch(sql)
        else:
            await c.execute(sql)
    except asyncpg.PostgresError as e:
        return e
    finally:
        await c.close()
    raise AssertionError(f"no error for {sql!r}")


def err(dsn: str, sql: str, extended: bool = False) -> Any:
    return asyncio.run(_error(dsn, sql, extended))


def pos(e: Any) -> int | None:
    return None if e.position is None else int(e.position)


# (sql, sqlstate, message): {tt} is a table (a int, b text); "^" marks the character the
# error points at (it is removed before sending); no "^": the error has no position
CASES = [
    ("SELECT bool ^'test' AS error", "22P02", 'invalid input syntax for type boolean: "test"'),
    ("select ^'100000'::int2", "22003", 'value "100000" is out of range for type smallint'),
    ("select cast(^'x' as int)", "22P02", 'invalid input syntax for type integer: "x"'),
    ("select '1'::int + ^'y'", "22P02", 'invalid input syntax for type integer: "y"'),
    ("select interval ^'1 foo'", "22007", 'invalid input syntax for type interval: "1 foo"'),
    ("insert into {tt} values (1, 2), (^'z', 'q')", "22P02", 'invalid input syntax for type integer: "z"'),
    ("select * from ^nosuch_rel_x", "42P01", 'relation "nosuch_rel_x" does not exist'),
    ("select * from {tt} t1 join ^nosuch_rel_x n on true", "42P01", 'relation "nosuch_rel_x" does not exist'),
    ("select ^c from {tt}", "42703", 'column "c" does not exist'),
    ("select ^{tt}.c from {tt}", "42703", "column {tt}.c does not exist"),
    ("select * from {tt} where b ^+ 1 = 2", "42883", "operator does not exist: text + integer"),
    ("select ^nofunc_x(1, 'a')", "42883", "function nofunc_x(integer, unknown) does not exist"),
    ("select ^a from {tt} group by b", "42803",
     'column "{tt}.a" must appear in the GROUP BY clause or be used in an aggregate function'),
    ("update {tt} set ^c = 1", "42703", 'column "c" of relation "{tt}" does not exist'),
    ("delete from^;", "42601", 'syntax error at or near ";"'),
    ("select 1 +^", "42601", "syntax error at end of input"),
    ("select (1 ^2", "42601", 'syntax error at or near "2"'),
    ("drop index ^314159", "42601", 'syntax error at or near "314159"'),
    ("SELECT ^123abc", "42601", 'trailing junk after numeric literal at or near "123a"'),
    ("SELECT ^0.0e+a", "42601", 'trailing junk after numeric literal at or near "0.0e+"'),
    ("select 1; select ^from_x", "42703", 'column "from_x" does not exist'),
    ("select 1;\n  delete from  ^; select 2", "42601", 'syntax error at or near ";"'),
    ("select 3 ^|| 4.0", "42883", "operator does not exist: integer || numeric"),
    ("SELECT U&'wrong: ^\\061'", "42601", "invalid Unicode escape"),
    ("SELECT U&'wrong: \\db99^xy'", "42601", "invalid Unicode surrogate pair"),
    ("SELECT U&'wrong: +0061' UESCAPE ^'+'", "42601", "invalid Unicode escape character at or near \"'+'\""),
    ("SELECT E'wrong: \\udb99^\\u0061'", "42601", 'invalid Unicode surrogate pair at or near "\\u0061"'),
    ("SELECT E'wrong: ^\\U0061'", "42601", "invalid Unicode escape"),
    ("CREATE TABLE dflt_x (id int DEFAULT (avg(^id)))", "42P10", "cannot use column reference in DEFAULT expression"),
    ("CREATE TABLE dflt_x (a int DEFAULT ^(select 1))", "0A000", "cannot use subquery in DEFAULT expression"),
    ("CREATE TABLE dflt_x (a int DEFAULT (^avg(1)))", "42803",
     "aggregate functions are not allowed in DEFAULT expressions"),
    # no position: errors of constant folding / execution and of utility statements
    ("select 2147483647 + 1", "22003", "integer out of range"),
    ("select 1/0", "22012", "division by zero"),
    ("drop table nosuch_rel_x", "42P01", 'table "nosuch_rel_x" does not exist'),
]


def marked(sql: str, names: dict[str, str]) -> tuple[str, int | None]:
    """The text to send and the 1-based position its "^" marks."""
    text = sql.format(**names)
    i = text.find("^")
    return text.replace("^", ""), (None if i < 0 else i + 1)


@pytest.mark.parametrize("sql,state,message", CASES)
def test_simple_query_errors(dsn: str, names: dict[str, str], sql: str, state: str, message: str) -> None:
    text, position = marked(sql, names)
    e = err(dsn, text)
    assert (e.sqlstate, e.message, pos(e)) == (state, message.format(**names), position)


def test_same_shape_points_at_each_texts_literal(dsn: str, names: dict[str, str]) -> None:
    # both texts share one cached shape (constants replaced by parameters): each error must
    # still point into its own text
    for sql in ("insert into {tt} values (1, 'y'), (^'abcdef', 'y')",
                "insert into {tt} values (1234567, 'y'), (^'q', 'y')"):
        text, position = marked(sql, names)
        e = err(dsn, text)
        assert (e.sqlstate, pos(e)) == ("22P02", position)


def test_extended_protocol_positions(dsn: str, names: dict[str, str]) -> None:
    e = err(dsn, f"select nonesuch from {names['tt']}", extended=True)
    assert (e.sqlstate, pos(e)) == ("42703", 8)
    e = err(dsn, "select 1 +", extended=True)
    assert (e.message, pos(e)) == ("syntax error at end of input", 11)


def test_hints(dsn: str, names: dict[str, str]) -> None:
    ta, tb = names["ta"], names["tb"]
    e = err(dsn, f"select t1.uunique1 from {ta} t1 join {tb} t2 on t1.two = t2.two")
    assert (e.message, e.hint) == ("column t1.uunique1 does not exist",
                                   'Perhaps you meant to reference the column "t1.unique1".')
    e = err(dsn, f"select uunique1 from {ta} t1 join {tb} t2 on t1.two = t2.two")
    assert e.hint == 'Perhaps you meant to reference the column "t1.unique1" or the column "t2.unique1".'
    e = err(dsn, f"select zzzzzz from {ta}")
    assert e.hint is None
    e = err(dsn, "select nofunc_x(1)")
    assert e.hint == ("No function matches the given name and argument types. "
                      "You might need to add explicit type casts.")
    e = err(dsn, f"select * from {names['tt']} where b + 1 = 2")
    assert e.hint == ("No operator matches the given name and argument types. "
                      "You might need to add explicit type casts.")


def test_psql_shows_line_and_caret(dsn: str, names: dict[str, str]) -> None:
    u = urlparse(dsn)
    sql = f"select a,\n  nonesuch\nfrom {names['tt']};\n"
    out = subprocess.run(["psql", "-X", "-q", "-h", u.hostname or "", "-p", str(u.port), "-U", u.username or "",
                          u.path.lstrip("/")], input=sql, capture_output=True, text=True, timeout=30)
    assert out.stderr.splitlines()[-3:] == [
        'ERROR:  column "nonesuch" does not exist',
        "LINE 2:   nonesuch",
        "          ^",
    ]


def test_unicode_escaped_literals(dsn: str) -> None:
    async def body() -> list[Any]:
        c = await asyncpg.connect(dsn)
        try:
            return list(await c.fetchrow(
                "SELECT U&'d\\0061t\\+000061' AS U&\"d\\0061t\\+000061\", "
                "U&'d!0061t\\+000061' UESCAPE '!', U&'\\D83D\\DE00'"))
        finally:
            await c.close()

    assert asyncio.run(body()) == ["data", "dat\\+000061", "\U0001F600"]
