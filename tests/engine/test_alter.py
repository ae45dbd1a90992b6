"""ALTER TABLE (instant ADD COLUMN, rewrites, constraints) and CHECK constraints."""

from __future__ import annotations

import pytest

from engine import errors
from tests.engine.conftest import new_db, one, run


async def _db():
    db = await new_db()
    return db, db.session("alice", "postgres", {})


def test_add_primary_key_rekeys_and_enforces(arun):
    async def body():
        _, s = await _db()
        await run(s, "create table b (bid int not null, bal int, filler char(10))")
        await run(s, "insert into b values (1,0,null),(2,5,null)")
        await run(s, "alter table b add primary key (bid)")
        assert (await one(s, "select bal from b where bid = 2")).rows == [(5,)]
        with pytest.raises(errors.UniqueViolation):
            await run(s, "insert into b values (2, 1, 'x')")
        await run(s, "create table d (k int, v int)")
        await run(s, "insert into d values (1,1),(1,2)")
        with pytest.raises(errors.UniqueViolation) as ei:
            await run(s, "alter table d add primary key (k)")
        assert "could not create unique index" in str(ei.value)

    arun(body())


def test_instant_add_column_default_and_rewrites(arun):
    async def body():
        db, s = await _db()
        await run(s, "create table t (id int primary key, a text)")
        await run(s, "insert into t values (1,'x'),(2,'y')")
        n_versions = sum(len(v) for v in db.store.table(db.catalog().get("t").table_id).rows.values())
        await run(s, "alter table t add column n int default 7")
        # instant: no row versions written for the existing rows
        assert sum(len(v) for v in db.store.table(db.catalog().get("t").table_id).rows.values()) == n_versions
        assert (await one(s, "select id, n from t order by id")).rows == [(1, 7), (2, 7)]
        assert (await one(s, "select n from t where id = 2")).rows == [(7,)]
        await run(s, "insert into t (id, a) values (3, 'z')")
        await run(s, "update t set n = n + 1 where id = 1")
        assert (await one(s, "select id, n from t order by id")).rows == [(1, 8), (2, 7), (3, 7)]
        await run(s, "alter table t drop column a")
        assert (await one(s, "select * from t order by id")).rows == [(1, 8), (2, 7), (3, 7)]
        await run(s, "alter table t rename column n to m")
        await run(s, "alter table t alter column m type bigint")
        r = await one(s, "select m from t where id = 1")
        assert r.rows == [(8,)] and r.columns[0].type_oid == 20
        with pytest.raises(errors.UndefinedColumn):
            await run(s, "select n from t")

    arun(body())


def test_not_null_default_and_check(arun):
    async def body():
        _, s = await _db()
        await run(s, "create table c (id int primary key, v int check (v > 0), w int)")
        with pytest.raises(errors.CheckViolation):
            await run(s, "insert into c values (1, 0, 1)")
        await run(s, "insert into c values (1, 5, null)")
        with pytest.raises(errors.NotNullViolation):
            await run(s, "alter table c alter column w set not null")
        await run(s, "alter table c alter column w set default 3")
        await run(s, "insert into c (id, v) values (2, 1)")
        assert (await one(s, "select w from c where id = 2")).rows == [(3,)]
        await run(s, "alter table c alter column w drop default")
        await run(s, "insert into c (id, v) values (3, 1)")
        assert (await one(s, "select w from c where id = 3")).rows == [(None,)]
        with pytest.raises(errors.CheckViolation):
            await run(s, "alter table c add constraint small check (v < 3)")
        await run(s, "alter table c add constraint small check (v < 10)")
        with pytest.raises(errors.CheckViolation):
            await run(s, "update c set v = 11 where id = 1")
        await run(s, "alter table c drop constraint small")
        await run(s, "update c set v = 11 where id = 1")
        with pytest.raises(errors.SqlError) as ei:
            await run(s, "alter table c drop constraint nope")
        assert ei.value.sqlstate == "42704"
        await run(s, "update c set v = id where id > 1")
        await run(s, "alter table c add constraint uv unique (v)")
        with pytest.raises(errors.UniqueViolation):
            await run(s, "insert into c values (9, 11, 0)")
        await run(s, "alter table c rename to c2")
        assert (await one(s, "select count(*) from c2")).rows == [(3,)]

    arun(body())
