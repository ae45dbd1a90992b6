"""Arrays, set-returning functions (generate_series, unnest) in FROM / select list, LATERAL."""

from __future__ import annotations

import datetime as dt

from engine import types as T
from tests.engine.conftest import new_db, one, run


def test_arrays(arun):
    async def body():
        db = await new_db()
        s = db.session("u", "postgres", {})
        r = await one(s, "select array[1,2,3], (array[1,2,3])[2], array_length(array[1,2],1), "
                         "cardinality(array[[1,2],[3,4]]), 2 = any(array[1,2]), 3 = any('{1,2}'::int[]), "
                         "1 < all(array[2,3]), array[1,2] || 3, array_to_string(array['a','b'], '-'), "
                         "1 = any(array[2,null])")
        assert r.rows == [([1, 2, 3], 2, 2, 4, True, False, True, [1, 2, 3], "a-b", None)]
        assert r.columns[0].type_oid == 1007 and r.columns[2].name == "array_length"
        await run(s, "create table at (id int primary key, tags text[])")
        await run(s, "insert into at values (1, '{a,b}'), (2, array['c'])")
        r = await one(s, "select id, tags[1], tags[5] from at where 'b' = any(tags)")
        assert r.rows == [(1, "a", None)] and r.columns[1].name == "tags"
        r = await one(s, "select array_agg(id order by id desc) from at")
        assert r.columns[0].type_oid == 1007
        assert T.array_text(['a b', None, 'x"y'], T.TEXT) == '{"a b",NULL,"x\\"y"}'

    arun(body())


def test_generate_series_and_unnest(arun):
    async def body():
        db = await new_db()
        s = db.session("u", "postgres", {})
        assert (await one(s, "select * from generate_series(1,3) g")).rows == [(1,), (2,), (3,)]
        r = await one(s, "select g.x from generate_series(10, 1, -4) as g(x)")
        assert r.rows == [(10,), (6,), (2,)] and r.columns[0].name == "x"
        r = await one(s, "select generate_series(1, 2) as x, unnest(array['a','b','c'])")
        assert r.rows == [(1, "a"), (2, "b"), (None, "c")]
        r = await one(s, "select * from unnest(array[5,6]) with ordinality as u(a, n)")
        assert r.rows == [(5, 1), (6, 2)]
        r = await one(s, "select * from generate_series('2020-01-01'::timestamp, '2020-01-02', interval '12 hours')")
        assert [x[0] for x in r.rows] == [dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 1, 12), dt.datetime(2020, 1, 2)]
        try:
            await one(s, "select * from generate_series(1, 5, 0)")
        except Exception as e:
            assert getattr(e, "sqlstate", "") == "22023"
        else:
            raise AssertionError("step 0 must fail")
        # pgbench -i -I G style load, and a lateral series
        await run(s, "create table pa (aid int primary key, bid int, abalance int, filler char(84))")
        r = await one(s, "insert into pa(aid,bid,abalance,filler) select aid, (aid - 1) / 100 + 1, 0, '' "
                         "from generate_series(1, 250) as aid")
        assert r.command_tag == "INSERT 0 250"
        assert (await one(s, "select count(*), max(bid) from pa")).rows == [(250, 3)]
        r = await one(s, "select a, b from generate_series(1,3) a, generate_series(1, a) b")
        assert len(r.rows) == 6 and r.rows[-1] == (3, 3)
        r = await one(s, "select a, s.x from generate_series(1,3) a left join lateral (select a * 10 as x where a > 1) s on true")
        assert r.rows == [(1, None), (2, 20), (3, 30)]

    arun(body())
