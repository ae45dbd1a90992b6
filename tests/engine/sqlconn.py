"""Helpers: engine tests drive the shared cluster (tests/conftest.py ``cluster``) through psycopg 3.

Every test gets its own table names: ``db = pgdb("t u")`` gives a factory of connections to
the writer endpoint whose SQL has the words ``t`` and ``u`` (and any listed derived names,
such as ``t_pkey``) replaced by ``<tag>_t``, ``<tag>_u`` -- outside single-quoted
literals, in statements and in expected error texts alike.  Prefixing (not suffixing)
keeps the names PostgreSQL derives, ``<tag>_t_pkey``, equal to the prefixed ``t_pkey``.
After the test every relation whose name starts with the tag is dropped, and every
connection is closed, so tests neither see nor disturb each other or other test files.

    c = db.connect()                # autocommit psycopg connection (a ``Conn``)
    c.rows("select * from t")       # rows of the last statement's result
    cur = c.run("update t ...")     # the cursor, positioned on the last result
    e = c.fails("select 1/0", "22012")  # the psycopg error (its SQLSTATE checked)
    c.status                        # "I" / "T" / "E": the client's transaction status
"""

from __future__ import annotations

import concurrent.futures
import re
from typing import Any

import psycopg
from psycopg import pq

_TOKEN = re.compile(r"'(?:[^']|'')*'|[A-Za-z_][A-Za-z0-9_$]*")
_STATUS = {pq.TransactionStatus.IDLE: "I", pq.TransactionStatus.INTRANS: "T",
           pq.TransactionStatus.INERROR: "E", pq.TransactionStatus.ACTIVE: "A"}


class Names:
    """The per-test renaming of identifiers (see the module docstring)."""

    def __init__(self, tag: str, words: str) -> None:
        self.tag = tag
        self.map = {w: f"{tag}_{w}" for w in words.split()}

    def __call__(self, text: str) -> str:
        if not self.map:
            return text
        return _TOKEN.sub(lambda m: self.map.get(m.group(0), m.group(0)), text)

    def __getitem__(self, word: str) -> str:
        return self.map[word]


class Conn:
    """A psycopg connection in autocommit mode (BEGIN/COMMIT are sent as SQL, as a
    psql user would) that renames this test's identifiers in what it sends."""

    def __init__(self, raw: psycopg.Connection, names: Names) -> None:
        self.raw, self.names = raw, names
        self.notices: list[str] = []
        raw.add_notice_handler(lambda d: self.notices.append(d.message_primary or ""))

    def run(self, sql: str, params: Any = None) -> psycopg.Cursor:
        """Execute; the cursor is left on the last result of a multi-statement text."""
        cur = self.raw.cursor()
        cur.execute(self.names(sql), params)
        while cur.nextset():
            pass
        return cur

    def results(self, sql: str) -> list[tuple[str, list[tuple] | None]]:
        """(command tag, rows) of every statement of a simple-query text."""
        cur = self.raw.cursor()
        cur.execute(self.names(sql))
        out = []
        while True:
            out.append((cur.statusmessage, cur.fetchall() if cur.description else None))
            if not cur.nextset():
                return out

    def rows(self, sql: str, params: Any = None) -> list[tuple]:
        return self.run(sql, params).fetchall()

    def tag(self, sql: str, params: Any = None) -> str | None:
        return self.run(sql, params).statusmessage

    def fails(self, sql: str, state: str | None = None, params: Any = None) -> psycopg.Error:
        try:
            self.run(sql, params)
        except psycopg.Error as e:
            if state is not None:
                assert e.sqlstate == state, (sql, e.sqlstate, str(e))
            return e
        raise AssertionError(f"no error for {sql!r}")

    @property
    def status(self) -> str:
        return _STATUS[self.raw.info.transaction_status]

    def close(self) -> None:
        self.raw.close()


def message(e: psycopg.Error) -> str | None:
    return e.diag.message_primary


class Db:
    """Connections to the shared cluster for one test; see the module docstring."""

    def __init__(self, writer_dsn: str, reader_dsn: str, names: Names) -> None:
        self.writer_dsn, self.reader_dsn, self.names = writer_dsn, reader_dsn, names
        self.conns: list[Conn] = []

    def connect(self, reader: bool = False, options: str = "", dbname: str | None = None) -> Conn:
        kw: dict[str, Any] = {"autocommit": True}
        if options:
            kw["options"] = options
        if dbname is not None:
            kw["dbname"] = dbname
        c = Conn(psycopg.connect(self.reader_dsn if reader else self.writer_dsn, **kw), self.names)
        self.conns.append(c)
        return c

    def __getitem__(self, word: str) -> str:
        return self.names[word]

    def cleanup(self) -> None:
        for c in self.conns:
            c.raw.close()  # ends any open transaction (rolled back), releases its locks
        with psycopg.connect(self.writer_dsn, autocommit=True) as c:
            for _ in range(5):  # views first; a table still referenced waits for the next round
                rels = c.execute("select relname, relkind from pg_class where relname like %s "
                                 "and relkind in ('r', 'v', 'S')", [self.names.tag + "\\_%"]).fetchall()
                if not rels:
                    return
                for name, kind in sorted(rels, key=lambda r: r[1] != "v"):
                    word = {"r": "table", "v": "view", "S": "sequence"}[kind]
                    try:
                        c.execute(f"drop {word} if exists {name}")
                    except psycopg.Error:
                        pass
        raise AssertionError(f"relations of {self.names.tag} left behind: {rels}")


BLOCK_PROBE = 0.3  # seconds a statement must stay unfinished to count as blocked (as test_isolation)


def is_blocked(fut: concurrent.futures.Future) -> bool:
    done, _ = concurrent.futures.wait([fut], timeout=BLOCK_PROBE)
    return not done


def texts(cur: psycopg.Cursor) -> list[list[str | None]]:
    """The current result's values exactly as the server sent them (text format)."""
    res = cur.pgresult
    assert res is not None
    out = []
    for r in range(res.ntuples):
        vals = [res.get_value(r, c) for c in range(res.nfields)]  # None for NULL
        out.append([None if v is None else bytes(v).decode() for v in vals])
    return out
