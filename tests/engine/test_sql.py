"""DDL/DML round trips, NULL logic, aggregates, joins, ordering, errors, prepared statements."""

from __future__ import annotations

from decimal import Decimal

import pytest

from engine import errors
from engine import types as T
from tests.engine.conftest import new_db, one, run


async def _setup():
    db = await new_db()
    s = db.session("alice", "postgres", {})
    await run(s, "create table t (id int primary key, name text, score numeric(6,2), grp int)")
    await run(s, "insert into t values (1,'a',1.5,1),(2,'b',null,1),(3,null,2,2),(4,'d',4.25,null)")
    return db, s


def test_round_trip_types_and_tags(arun):
    async def body():
        db, s = await _setup()
        r = await one(s, "select id, name, score from t where id = 1")
        assert r.command_tag == "SELECT 1"
        assert [(c.name, c.type_oid) for c in r.columns] == [("id", 23), ("name", 25), ("score", 1700)]
        assert r.rows == [(1, "a", Decimal("1.50"))]
        r = await one(s, "update t set score = score * 2 where grp = 1 returning id, score")
        assert r.command_tag == "UPDATE 2" and sorted(r.rows) == [(1, Decimal("3.00")), (2, None)]
        r = await one(s, "delete from t where id > 2")
        assert r.command_tag == "DELETE 2"
        r = await one(s, "select count(*) from t")
        assert r.rows == [(2,)] and r.columns[0].type_oid == T.INT8
        r = await one(s, "select 1::int8 as a, 'x' as b, 2.5::float8, true, now()::date is not null")
        assert [c.type_oid for c in r.columns] == [20, 25, 701, 16, 16]
        assert r.columns[2].name == "float8"

    arun(body())


def test_null_logic(arun):
    async def body():
        db, s = await _setup()
        r = await one(s, "select null = null, null and false, null or true, not null, 1 in (1, null), 2 in (1, null), "
                         "coalesce(null, 3), nullif(1, 1), null is null")
        assert r.rows == [(None, False, True, None, True, None, 3, None, True)]
        r = await one(s, "select id from t where name <> 'a' order by id")
        assert r.rows == [(2,), (4,)]  # NULL name is neither equal nor unequal

    arun(body())


def test_aggregates_group_order_limit(arun):
    async def body():
        db, s = await _setup()
        r = await one(s, "select grp, count(*), count(score), sum(score), min(name), max(id) from t "
                         "group by grp order by grp nulls first")
        assert r.rows == [(None, 1, 1, Decimal("4.25"), "d", 4), (1, 2, 1, Decimal("1.50"), "a", 2),
                          (2, 1, 1, Decimal("2.00"), None, 3)]
        r = await one(s, "select grp, count(*) as n from t group by grp having count(*) > 1")
        assert r.rows == [(1, 2)]
        r = await one(s, "select name from t order by name desc limit 2 offset 1")
        assert r.rows == [("d",), ("b",)]  # DESC puts NULL first
        r = await one(s, "select name from t order by name desc nulls last")
        assert r.rows[-1] == (None,)
        r = await one(s, "select distinct grp from t order by grp")
        assert r.rows == [(1,), (2,), (None,)]
        r = await one(s, "select avg(id), sum(id) from t")
        assert r.rows == [(Decimal("2.5000000000000000"), 10)]
        r = await one(s, "select count(*), max(id) from t where id > 100")
        assert r.rows == [(0, None)]

    arun(body())


def test_joins_subqueries_union(arun):
    async def body():
        db, s = await _setup()
        await run(s, "create table g (gid int primary key, label text)")
        await run(s, "insert into g values (1,'one'),(3,'three')")
        r = await one(s, "select t.id, g.label from t join g on t.grp = g.gid order by t.id")
        assert r.rows == [(1, "one"), (2, "one")]
        r = await one(s, "select t.id, g.label from t left join g on t.grp = g.gid order by t.id")
        assert r.rows == [(1, "one"), (2, "one"), (3, None), (4, None)]
        r = await one(s, "select g.gid, t.id from t right join g on t.grp = g.gid order by g.gid, t.id")
        assert r.rows == [(1, 1), (1, 2), (3, None)]
        r = await one(s, "select count(*) from t cross join g")
        assert r.rows == [(8,)]
        r = await one(s, "select id from t where grp in (select gid from g) order by id")
        assert r.rows == [(1,), (2,)]
        r = await one(s, "select id from t where exists (select 1 from g where g.gid = t.grp) order by 1")
        assert r.rows == [(1,), (2,)]
        r = await one(s, "select (select max(id) from t), (select label from g where gid = 3)")
        assert r.rows == [(4, "three")]
        r = await one(s, "select x from (select id * 10 as x from t) sub where x > 20 order by x")
        assert r.rows == [(30,), (40,)]
        r = await one(s, "select 1 union all select 1 union select 2")
        assert sorted(r.rows) == [(1,), (2,)]

    arun(body())


def test_errors_have_sqlstates(arun):
    async def body():
        db, s = await _setup()
        cases = {
            "select * from nope": ("42P01", 'relation "nope" does not exist'),
            "select nope from t": ("42703", None),
            "selec 1": ("42601", None),
            "create table t (x int)": ("42P07", 'relation "t" already exists'),
            "insert into t values (1, 'dup', 0, 0)": ("23505", 'duplicate key value violates unique constraint "t_pkey"'),
            "insert into t (name) values ('x')": ("23502", None),
            "select 1 / 0": ("22012", "division by zero"),
            "select 2147483647 + 1": ("22003", "integer out of range"),
            "select 'abc'::int": ("22P02", 'invalid input syntax for type integer: "abc"'),
            "insert into t values (9, 'x', 12345.678, 0)": ("22003", "numeric field overflow"),
        }
        for sql, (state, msg) in cases.items():
            with pytest.raises(errors.SqlError) as ei:
                await run(s, sql)
            assert ei.value.sqlstate == state, sql
            if msg:
                assert ei.value.message == msg
        with pytest.raises(errors.UniqueViolation) as ei:
            await run(s, "insert into t values (1, 'dup', 0, 0)")
        assert ei.value.detail == "Key (id)=(1) already exists."
        assert s.transaction_status == "I"

    arun(body())


def test_prepared_param_inference_and_key_lookup(arun):
    async def body():
        db, s = await _setup()
        p = s.prepare("select name, score from t where id = $1", [0])
        assert p.param_types == [T.INT4]
        assert [c.name for c in p.columns] == ["name", "score"]
        r = await s.execute_prepared(p, [3])
        assert r.rows == [(None, Decimal("2.00"))]
        r = await s.execute_prepared(p, ["4"])  # text param coerced by context
        assert r.rows == [("d", Decimal("4.25"))]
        plan = s._plan(p.handle, db.catalog(), [0])
        from engine.executor import KeyLookup, Project

        assert isinstance(plan._run.__closure__[0].cell_contents.root, Project)
        assert isinstance(plan._run.__closure__[0].cell_contents.root.child, KeyLookup)
        u = s.prepare("update t set score = score + $1 where id = $2", [0, 0])
        assert u.param_types == [T.NUMERIC, T.INT4] and u.columns is None
        r = await s.execute_prepared(u, [Decimal("1"), 1])
        assert r.command_tag == "UPDATE 1"
        assert (await one(s, "select score from t where id = 1")).rows == [(Decimal("2.50"),)]

    arun(body())


def test_sequences_serial_defaults(arun):
    async def body():
        db = await new_db()
        s = db.session("u", "postgres", {})
        await run(s, "create table s1 (id serial primary key, v varchar(3) default 'zz', c char(3))")
        r = await one(s, "insert into s1 (c) values ('a'), (default) returning id, v, c")
        assert r.rows == [(1, "zz", "a  "), (2, "zz", None)]
        await run(s, "create sequence q start with 10 increment by 5")
        r = await one(s, "select nextval('q'), nextval('q')")
        assert r.rows == [(10, 15)]
        with pytest.raises(errors.StringTooLong):
            await run(s, "insert into s1 (v) values ('toolong')")
        await run(s, "begin; select nextval('q'); rollback")
        assert (await one(s, "select nextval('q')")).rows == [(25,)]  # not transactional

    arun(body())


def test_multi_statement_and_select_without_from(arun):
    async def body():
        db = await new_db()
        s = db.session("u", "postgres", {})
        res = await run(s, "create table m (a int); insert into m values (1),(2); select sum(a) from m")
        assert [r.command_tag for r in res] == ["CREATE TABLE", "INSERT 0 2", "SELECT 1"]
        assert res[-1].rows == [(3,)]
        with pytest.raises(errors.SqlError):
            await run(s, "insert into m values (10); select 1/0")
        # the implicit transaction of the failed message rolled back its insert
        assert (await one(s, "select count(*) from m")).rows == [(2,)]
        r = await one(s, "select pg_catalog.version(), current_database(), current_user, current_schema()")
        assert r.rows[0][1:] == ("postgres", "u", "public")
        assert (await one(s, "SHOW borealis.instance")).rows == [("w1",)]
        r = await one(s, "select lower('AbC'), upper('x'), length('héllo'), abs(-3), round(2.345, 2), 7 / 2, -7 % 3")
        assert r.rows == [("abc", "X", 5, 3, Decimal("2.35"), 3, -1)]

    arun(body())
