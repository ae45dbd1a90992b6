"""WITH / WITH RECURSIVE, CREATE TABLE AS / SELECT INTO, views, ON CONFLICT, UPDATE FROM, DELETE USING."""

from __future__ import annotations

import pytest

from engine import errors
from tests.engine.conftest import new_db, one, run


async def _db():
    db = await new_db()
    s = db.session("alice", "postgres", {})
    await run(s, "create table t (id int primary key, v int, k text unique)")
    await run(s, "create table u (id int, v int)")
    await run(s, "insert into t values (1,10,'a'),(2,20,'b'),(3,30,'c')")
    await run(s, "insert into u values (1,100),(3,300)")
    return db, s


def test_with_and_recursive(arun):
    async def body():
        _, s = await _db()
        r = await one(s, "with recursive r(n) as (select 1 union all select n+1 from r where n<5) "
                         "select sum(n), count(*) from r")
        assert r.rows == [(15, 5)]
        r = await one(s, "with recursive f(a,b) as (select 0, 1 union all select b, a+b from f) select a from f limit 7")
        assert [x for (x,) in r.rows] == [0, 1, 1, 2, 3, 5, 8]
        r = await one(s, "with a as (select id, v from t where v > 10), b as (select * from a where id < 3) "
                         "select * from b")
        assert r.rows == [(2, 20)]
        r = await one(s, "with w as (select 42 as x) insert into u select x, x from w returning *")
        assert r.rows == [(42, 42)]

    arun(body())


def test_update_from_delete_using(arun):
    async def body():
        _, s = await _db()
        r = await one(s, "update t set v = u.v + t.v from u where t.id = u.id returning t.id, t.v")
        assert r.command_tag == "UPDATE 2" and sorted(r.rows) == [(1, 110), (3, 330)]
        r = await one(s, "delete from t using u where t.id = u.id and u.v > 200 returning t.id")
        assert r.command_tag == "DELETE 1" and r.rows == [(3,)]
        assert (await one(s, "select id, v from t order by id")).rows == [(1, 110), (2, 20)]

    arun(body())


def test_on_conflict(arun):
    async def body():
        _, s = await _db()
        r = await one(s, "insert into t values (1, 5, 'z'), (9, 9, 'q') on conflict (id) "
                         "do update set v = excluded.v + t.v returning id, v, k")
        assert r.command_tag == "INSERT 0 2" and r.rows == [(1, 15, "a"), (9, 9, "q")]
        r = await one(s, "insert into t values (1, 5, 'z') on conflict do nothing")
        assert r.command_tag == "INSERT 0 0"
        r = await one(s, "insert into t values (7, 5, 'a') on conflict (k) do nothing")
        assert r.command_tag == "INSERT 0 0"
        r = await one(s, "insert into t values (2, 0, 'b') on conflict (id) do update set v = 99 where t.v > 100")
        assert r.command_tag == "INSERT 0 0"
        with pytest.raises(errors.SqlError) as ei:
            await run(s, "insert into t values (7, 5, 'a') on conflict (v) do nothing")
        assert ei.value.sqlstate == "42P10"
        with pytest.raises(errors.SqlError) as ei:
            await run(s, "insert into t values (5,1,'m'),(5,2,'n') on conflict (id) do update set v = excluded.v")
        assert ei.value.sqlstate == "21000"
        with pytest.raises(errors.UniqueViolation):
            await run(s, "insert into t values (8, 1, 'a') on conflict (id) do nothing")

    arun(body())


def test_ctas_select_into_views(arun):
    async def body():
        _, s = await _db()
        r = await one(s, "create table c as select id, v*2 as dv from t")
        assert r.command_tag == "SELECT 3"
        assert (await one(s, "select dv from c where id = 2")).rows == [(40,)]
        await run(s, "select id into c2 from t where id > 1")
        assert (await one(s, "select count(*) from c2")).rows == [(2,)]
        await run(s, "create view vv as select id, v from t where id < 3")
        r = await one(s, "select * from vv where v > 10")
        assert r.rows == [(2, 20)] and [c.name for c in r.columns] == ["id", "v"]
        await run(s, "insert into t values (0, 1, 'zz')")
        assert (await one(s, "select count(*) from vv")).rows == [(3,)]
        with pytest.raises(errors.SqlError) as ei:
            await run(s, "create or replace view vv as select id from t")
        assert ei.value.sqlstate == "42P16"
        await run(s, "create or replace view vv as select id, v, k from t")
        with pytest.raises(errors.SqlError) as ei:
            await run(s, "drop table vv")
        assert ei.value.sqlstate == "42809"
        await run(s, "drop view vv")
        with pytest.raises(errors.UndefinedTable):
            await run(s, "select * from vv")

    arun(body())


def test_distinct_on_and_fetch_first(arun):
    async def body():
        _, s = await _db()
        await run(s, "insert into u values (1, 50), (3, 1)")
        r = await one(s, "select distinct on (id) id, v from u order by id, v desc")
        assert r.rows == [(1, 100), (3, 300)]
        r = await one(s, "select id from t order by id desc fetch first 2 rows only")
        assert r.rows == [(3,), (2,)]
        r = await one(s, "select id from t order by id fetch first row only")
        assert r.rows == [(1,)]

    arun(body())


def test_correlated_exists_as_semijoin(arun):
    """Correlated EXISTS on an equality is answered from one hashed pass (fast), NULLs never match."""
    import time

    from tests.engine.conftest import new_db, one, run

    async def body():
        db = await new_db()
        s = db.session("u", "postgres", {})
        await run(s, "create table tk (unique1 int primary key, unique2 int, thousand int)")
        await run(s, "insert into tk select g, 9999 - g, g % 1000 from generate_series(0, 9999) g")
        await run(s, "insert into tk values (10000, null, null)")
        t0 = time.perf_counter()
        r = await one(s, "select count(*) from tk a where exists (select 1 from tk b where b.thousand = a.unique2)")
        assert r.rows == [(1000,)]
        assert time.perf_counter() - t0 < 2.0
        r = await one(s, "select count(*) from tk a where not exists "
                         "(select 1 from tk b where b.thousand = a.unique2 and b.unique1 > 5000)")
        assert r.rows == [(9001,)]

    arun(body())
