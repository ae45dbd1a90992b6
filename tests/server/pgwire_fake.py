"""A *test double* of the engine Session, and a server thread, for pg-wire tests.

``FakeSession`` is only a stand-in for the protocol layer's tests: it answers a handful
of fixed statements from a table (and echoes ``SELECT $1::type, ...`` parameters back)
so that real clients (psql, asyncpg, psycopg) can exercise framing, types, errors and
transaction status.  Integration tests with the real engine live elsewhere.

The server runs on its own uvloop event loop in a background thread so that blocking
clients (psql subprocess, psycopg) and asyncio clients (asyncpg) can both drive it.
"""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, AsyncIterator

import uvloop

from engine.api import Column, Prepared, Result
from engine.errors import QueryCanceled, SqlError, SyntaxErr, UndefinedDatabase
from server.pgwire import start_pg_server

INT4, INT8, TEXT, FLOAT8, BOOL, NUMERIC = 23, 20, 25, 701, 16, 1700
CAST_OIDS = {
    "int": 23, "int4": 23, "int2": 21, "int8": 20, "bigint": 20, "text": 25, "float8": 701,
    "float4": 700, "bool": 16, "numeric": 1700, "date": 1082, "timestamp": 1114,
    "timestamptz": 1184, "uuid": 2950, "bytea": 17, "jsonb": 3802, "json": 114,
    "interval": 1186, "int4[]": 1007, "text[]": 1009, "varchar": 1043, "time": 1083,
}
TYPES_ROW = (
    True, 42, 2**40, 1.5, 1e16, Decimal("12.340"), "héllo", b"\x00\xff",
    date(2024, 1, 2), datetime(2024, 1, 2, 3, 4, 5, 500000),
    datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc), timedelta(days=1, hours=2, minutes=3, seconds=4),
    uuid.UUID("12345678-1234-5678-1234-567812345678"), {"a": [1, 2]}, [1, 2, None], ["a b", 'q"x'], None,
)
TYPES_COLS = [
    Column("b", 16, 1), Column("i4", 23, 4), Column("i8", 20, 8), Column("f8", 701, 8), Column("big", 701, 8),
    Column("n", 1700), Column("t", 25), Column("by", 17), Column("d", 1082, 4), Column("ts", 1114, 8),
    Column("tz", 1184, 8), Column("iv", 1186, 16), Column("u", 2950, 16), Column("j", 3802),
    Column("ai", 1007), Column("at", 1009), Column("nul", 25),
]

GEN_ROWS = [(i, f"row{i}") for i in range(10)]
GEN_COLS = [Column("i", INT4, 4), Column("s", TEXT)]
_ECHO = re.compile(r"^select\s+(.*)$", re.I | re.S)
_PARAM = re.compile(r"^\$(\d+)(?:::([\w\[\]]+))?$")


@dataclass
class World:
    """State shared by all fake sessions of one server (inspected by tests)."""

    sessions: list["FakeSession"] = field(default_factory=list)


class FakeSession:
    """A test double of engine.api.Session for protocol tests only."""

    def __init__(self, user: str, database: str, params: dict[str, str]) -> None:
        self.user = user
        self.database = database
        self.params = params
        self.status = "I"
        self.closed = False
        self.cancelled: asyncio.Event | None = None
        self.gucs = {
            "server_version": "15.0", "server_encoding": "UTF8", "client_encoding": "UTF8",
            "DateStyle": "ISO, MDY", "IntervalStyle": "postgres", "TimeZone": "UTC",
            "integer_datetimes": "on", "standard_conforming_strings": "on",
            "application_name": params.get("application_name", ""), "is_superuser": "on",
            "session_authorization": user,
        }
        self.executed: list[str] = []

    @property
    def transaction_status(self) -> str:
        return self.status

    def parameter_status(self) -> dict[str, str]:
        return dict(self.gucs)

    def get_parameter(self, name: str) -> str | None:
        return self.gucs.get(name)

    async def close(self) -> None:
        self.closed = True
        self.status = "I"

    def cancel(self) -> None:
        if self.cancelled is not None:
            self.cancelled.set()

    async def _run(self, sql: str, params: list[Any] | None = None) -> Result:
        q = " ".join(sql.strip().rstrip(";").split()).lower()
        self.executed.append(q)
        if self.status == "E" and q not in ("rollback", "commit"):
            raise SqlError("current transaction is aborted, commands ignored until end of transaction block",
                           sqlstate="25P02")
        try:
            return await self._answer(q, sql, params or [])
        except SqlError:
            if self.status == "T":
                self.status = "E"
            raise

    async def _answer(self, q: str, sql: str, params: list[Any]) -> Result:
        if q == "begin":
            self.status = "T"
            return Result("BEGIN")
        if q in ("commit", "rollback"):
            self.status = "I"
            return Result("COMMIT" if q == "commit" else "ROLLBACK")
        if q == "select 1":
            return Result("SELECT 1", [Column("?column?", INT4, 4)], [(1,)])
        if q == "select * from gen":
            return Result("SELECT 10", GEN_COLS, list(GEN_ROWS))
        if q == "select types":
            return Result("SELECT 1", TYPES_COLS, [TYPES_ROW])
        if q == "select pg_sleep":
            self.cancelled = asyncio.Event()
            try:
                await asyncio.wait_for(self.cancelled.wait(), 10)
            finally:
                self.cancelled = None
            raise QueryCanceled("canceling statement due to user request")
        if q == "select boom":
            raise RuntimeError("unexpected bug in engine")
        if q.startswith("set application_name"):
            self.gucs["application_name"] = sql.split("=", 1)[1].strip().strip(";").strip("'")
            return Result("SET")
        if q.startswith("insert"):
            return Result("INSERT 0 1")
        if q.startswith("notice"):
            return Result("DO", notices=["hello from notice"])
        m = _ECHO.match(sql.strip().rstrip(";"))
        if m and params:
            return Result(f"SELECT 1", None, [tuple(params)])  # columns filled by execute_prepared
        if q.startswith("bad"):
            raise SyntaxErr('syntax error at or near "bad"', position=1, hint="try again")
        raise SqlError(f"fake session does not know: {q}", sqlstate="0A000")

    async def execute(self, sql: str) -> AsyncIterator[Result]:
        for part in [p for p in sql.split(";") if p.strip()]:
            yield await self._run(part)

    def prepare(self, sql: str, param_types: list[int]) -> Prepared:
        body = sql.strip().rstrip(";")
        m = _ECHO.match(body)
        if m and m.group(1).strip().startswith("$"):
            types, cols = [], []
            for i, item in enumerate(x.strip() for x in m.group(1).split(",")):
                pm = _PARAM.match(item)
                if pm is None:
                    raise SyntaxErr(f"cannot echo {item}")
                client = param_types[i] if i < len(param_types) else 0
                oid = client or CAST_OIDS.get(pm.group(2) or "", 0) or TEXT
                types.append(oid)
                cols.append(Column(f"c{i + 1}", oid))
            return Prepared(sql, types, cols, handle="echo")
        q = " ".join(body.split()).lower()
        if q.startswith("bad"):
            raise SyntaxErr('syntax error at or near "bad"', position=1)
        cols = {"select 1": [Column("?column?", INT4, 4)], "select * from gen": GEN_COLS,
                "select types": TYPES_COLS, "select pg_sleep": [Column("pg_sleep", 2278)],
                "select boom": [Column("x", INT4)]}.get(q)
        return Prepared(sql, list(param_types), cols)

    async def execute_prepared(self, prepared: Prepared, params: list[Any], max_rows: int = 0) -> Result:
        if prepared.handle == "echo":
            self.executed.append(prepared.sql)
            return Result("SELECT 1", prepared.columns, [tuple(params)])
        return await self._run(prepared.sql, params)


class ServerThread:
    """A pg-wire server with FakeSessions on a uvloop loop in a daemon thread."""

    def __init__(self, password: str | None = None, auth_method: str = "scram-sha-256", **kw: Any) -> None:
        self.world = World()
        self.loop = uvloop.new_event_loop()
        self.port = 0
        ready = threading.Event()

        async def factory(user: str, database: str, params: dict[str, str], peer: tuple) -> FakeSession:
            if database == "nodb":
                raise UndefinedDatabase(f'database "{database}" does not exist')
            s = FakeSession(user, database, params)
            self.world.sessions.append(s)
            return s

        async def main() -> None:
            self.server = await start_pg_server(
                "127.0.0.1", 0, factory, password=password, auth_method=auth_method, **kw
            )
            self.port = self.server.sockets[0].getsockname()[1]
            ready.set()

        self.thread = threading.Thread(target=self._run, args=(main,), daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def _run(self, main: Any) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(main())
        self.loop.run_forever()

    def stop(self) -> None:
        async def _close() -> None:
            self.server.close()
            await asyncio.sleep(0.05)  # let closing connections finish session.close()
            self.loop.stop()

        self.loop.call_soon_threadsafe(lambda: self.loop.create_task(_close()))
        self.thread.join(5)

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=alice dbname=db"
