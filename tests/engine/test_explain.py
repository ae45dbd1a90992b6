"""EXPLAIN / EXPLAIN ANALYZE output in PostgreSQL's text shape."""

from __future__ import annotations


def test_explain(pgdb):
    s = pgdb("t u t_pkey").connect()
    s.run("create table t (id int primary key, a int)")
    s.run("create table u (id int primary key, tid int)")
    s.run("insert into t select g, g % 3 from generate_series(1,10) g")
    cur = s.run("explain (costs off) select * from t where a = 1")
    assert cur.statusmessage == "EXPLAIN" and cur.description[0].name == "QUERY PLAN"
    assert [x[0] for x in cur.fetchall()] == [s.names("Seq Scan on t"), "  Filter: (a = 1)"]
    assert s.rows("explain (costs off) select * from t where id = 1") == [(s.names("Index Scan using t_pkey on t"),)]
    r = s.rows("explain (costs off) select a, count(*) from t join u on u.tid = t.id group by a order by a")
    assert [x[0] for x in r] == ["Sort", "  ->  HashAggregate", "        ->  Hash Join",
                                 s.names("              ->  Seq Scan on t"), "              ->  Hash",
                                 s.names("                    ->  Seq Scan on u")]
    lines = [x[0] for x in s.rows("explain analyze select * from t where a = 1")]
    assert "rows=4 loops=1" in lines[0] and lines[0].startswith(s.names("Seq Scan on t  (cost="))
    assert lines[-1].startswith("Execution Time:")
    r = s.rows("explain (analyze, costs off, timing off) update t set a = 5 where id = 3")
    assert r[0][0] == s.names("Update on t (actual rows=0 loops=1)")
    assert s.rows("select a from t where id = 3") == [(5,)]  # ANALYZE executes
