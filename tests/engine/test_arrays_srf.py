"""Arrays, set-returning functions (generate_series, unnest) in FROM / select list, LATERAL."""

from __future__ import annotations

import datetime as dt

from engine import types as T


def test_arrays(pgdb):
    s = pgdb("at").connect()
    cur = s.run("select array[1,2,3], (array[1,2,3])[2], array_length(array[1,2],1), "
                "cardinality(array[[1,2],[3,4]]), 2 = any(array[1,2]), 3 = any('{1,2}'::int[]), "
                "1 < all(array[2,3]), array[1,2] || 3, array_to_string(array['a','b'], '-'), "
                "1 = any(array[2,null])")
    assert cur.fetchall() == [([1, 2, 3], 2, 2, 4, True, False, True, [1, 2, 3], "a-b", None)]
    assert cur.description[0].type_code == 1007 and cur.description[2].name == "array_length"
    s.run("create table at (id int primary key, tags text[])")
    s.run("insert into at values (1, '{a,b}'), (2, array['c'])")
    cur = s.run("select id, tags[1], tags[5] from at where 'b' = any(tags)")
    assert cur.fetchall() == [(1, "a", None)] and cur.description[1].name == "tags"
    cur = s.run("select array_agg(id order by id desc) from at")
    assert cur.fetchall() == [([2, 1],)] and cur.description[0].type_code == 1007
    # the array text form, a pure function of engine.types
    assert T.array_text(['a b', None, 'x"y'], T.TEXT) == '{"a b",NULL,"x\\"y"}'
    assert s.rows("""select array['a b', null, 'x"y']::text""") == [('{"a b",NULL,"x\\"y"}',)]


def test_generate_series_and_unnest(pgdb):
    s = pgdb("pa").connect()
    assert s.rows("select * from generate_series(1,3) g") == [(1,), (2,), (3,)]
    cur = s.run("select g.x from generate_series(10, 1, -4) as g(x)")
    assert cur.fetchall() == [(10,), (6,), (2,)] and cur.description[0].name == "x"
    assert s.rows("select generate_series(1, 2) as x, unnest(array['a','b','c'])") == [(1, "a"), (2, "b"), (None, "c")]
    assert s.rows("select * from unnest(array[5,6]) with ordinality as u(a, n)") == [(5, 1), (6, 2)]
    r = s.rows("select * from generate_series('2020-01-01'::timestamp, '2020-01-02', interval '12 hours')")
    assert [x[0] for x in r] == [dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 1, 12), dt.datetime(2020, 1, 2)]
    s.fails("select * from generate_series(1, 5, 0)", "22023")
    # pgbench -i -I G style load, and a lateral series
    s.run("create table pa (aid int primary key, bid int, abalance int, filler char(84))")
    assert s.tag("insert into pa(aid,bid,abalance,filler) select aid, (aid - 1) / 100 + 1, 0, '' "
                 "from generate_series(1, 250) as aid") == "INSERT 0 250"
    assert s.rows("select count(*), max(bid) from pa") == [(250, 3)]
    r = s.rows("select a, b from generate_series(1,3) a, generate_series(1, a) b")
    assert len(r) == 6 and r[-1] == (3, 3)
    r = s.rows("select a, s.x from generate_series(1,3) a left join lateral (select a * 10 as x where a > 1) s on true")
    assert r == [(1, None), (2, 20), (3, 30)]
