"""Foreign keys: 23503 on missing parents and on referenced deletes; CASCADE / SET NULL."""

from __future__ import annotations

from engine import errors
from tests.engine.conftest import new_db, one, run


async def _fails(s, sql: str, state: str) -> str:
    try:
        await run(s, sql)
    except errors.SqlError as e:
        assert e.sqlstate == state, (sql, e.sqlstate, e)
        return str(e)
    raise AssertionError(f"{sql} did not fail")


def test_foreign_keys(arun):
    async def body():
        db = await new_db()
        s = db.session("u", "postgres", {})
        await run(s, "create table par (id int primary key, name text)")
        await run(s, "create table ch (id int primary key, p int references par(id) on delete cascade)")
        await run(s, "create table ch2 (id int primary key, p int, foreign key (p) references par on delete set null)")
        await run(s, "create table ch3 (id int primary key, p int references par(id))")
        await run(s, "insert into par values (1,'a'),(2,'b'),(3,'c')")
        await run(s, "insert into ch values (10, 1), (11, 2), (12, null)")
        msg = await _fails(s, "insert into ch values (13, 9)", "23503")
        assert 'violates foreign key constraint "ch_p_fkey"' in msg
        await run(s, "insert into ch2 values (20, 1), (21, 2)")
        await run(s, "insert into ch3 values (30, 3)")
        await run(s, "delete from par where id = 1")
        assert (await one(s, "select id from ch order by id")).rows == [(11,), (12,)]
        assert (await one(s, "select id, p from ch2 order by id")).rows == [(20, None), (21, 2)]
        await _fails(s, "delete from par where id = 3", "23503")
        await _fails(s, "update ch set p = 7 where id = 11", "23503")
        await run(s, "update ch set p = 3 where id = 11")
        assert (await one(s, "select count(*) from par")).rows == [(2,)]
        # a parent inserted earlier in the same transaction is visible to the check
        await run(s, "begin")
        await run(s, "insert into par values (4, 'd')")
        await run(s, "insert into ch3 values (31, 4)")
        await run(s, "commit")
        assert (await one(s, "select p from ch3 where id = 31")).rows == [(4,)]

    arun(body())
