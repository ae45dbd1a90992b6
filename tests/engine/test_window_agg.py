"""Window functions, aggregates with FILTER / DISTINCT / ORDER BY, statistics aggregates."""

from __future__ import annotations

from decimal import Decimal


def _db(pgdb):
    s = pgdb("w").connect()
    s.run("create table w (id int primary key, g int, x int)")
    s.run("insert into w values (1,1,10),(2,1,20),(3,1,20),(4,2,5),(5,2,null)")
    return s


def test_window_functions(pgdb):
    s = _db(pgdb)
    cur = s.run("select id, row_number() over (partition by g order by x), rank() over (partition by g order by x), "
                "dense_rank() over (order by x), sum(x) over (partition by g order by x), sum(x) over (partition by g), "
                "lag(x) over (order by id), lead(x, 2, -1) over (order by id), "
                "first_value(x) over (order by id rows between 1 preceding and 1 following), "
                "ntile(2) over (order by id) from w order by id")
    assert cur.fetchall() == [(1, 1, 1, 2, 10, 50, None, 20, 10, 1), (2, 2, 2, 3, 50, 50, 10, 5, 10, 1),
                              (3, 3, 2, 3, 50, 50, 20, None, 20, 1), (4, 1, 1, 1, 5, 5, 20, -1, 20, 2),
                              (5, 2, 2, 4, 5, 5, 5, -1, 5, 2)]
    assert [c.name for c in cur.description][1:4] == ["row_number", "rank", "dense_rank"]
    assert s.rows("select g, sum(x), rank() over (order by sum(x) desc) from w group by g order by g") == [
        (1, 50, 1), (2, 5, 2)]
    r = s.rows("select id, avg(x) over (order by id rows between 1 preceding and current row), count(*) over win, "
               "last_value(id) over (order by x range between unbounded preceding and unbounded following) "
               "from w window win as (partition by g) order by id")
    assert [row[1] for row in r] == [Decimal(10), Decimal(15), Decimal(20), Decimal("12.5"), Decimal(5)]
    assert [row[2] for row in r] == [3, 3, 3, 2, 2] and {row[3] for row in r} == {5}


def test_aggregate_modifiers(pgdb):
    s = _db(pgdb)
    cur = s.run("select string_agg(x::text, ',' order by x desc), array_agg(x order by id), "
                "count(*) filter (where x > 10), stddev(x), variance(x), stddev_pop(x) from w")
    assert cur.fetchall() == [("20,20,10,5", [10, 20, 20, 5, None], 2, Decimal("7.5000000000000000"),
                               Decimal("56.2500000000000000"), Decimal("6.4951905283832899"))]
    assert cur.description[2].name == "count"
    assert s.rows("select g, count(distinct x), string_agg(distinct x::text, '|') from w group by g order by g") == [
        (1, 2, "10|20"), (2, 1, "5")]


def test_grouping_sets(pgdb):
    s = pgdb("gs").connect()
    s.run("create table gs (id int primary key, g int, h text, x int)")
    s.run("insert into gs values (1,1,'a',10),(2,1,'b',20),(3,2,'a',5)")
    r = s.rows("select g, h, sum(x), grouping(g, h) from gs group by rollup(g, h) order by g nulls last, h nulls last")
    assert r == [(1, "a", 10, 0), (1, "b", 20, 0), (1, None, 30, 1), (2, "a", 5, 0), (2, None, 5, 1),
                 (None, None, 35, 3)]
    assert len(s.rows("select g, h, count(*) from gs group by cube(g, h)")) == 8
    r = s.rows("select g, h, sum(x) from gs group by grouping sets ((g), (h), ()) order by 1, 2")
    assert r == [(1, None, 30), (2, None, 5), (None, "a", 15), (None, "b", 20), (None, None, 35)]
