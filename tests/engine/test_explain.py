"""EXPLAIN / EXPLAIN ANALYZE output in PostgreSQL's text shape."""

from __future__ import annotations

from tests.engine.conftest import new_db, one, run


def test_explain(arun):
    async def body():
        db = await new_db()
        s = db.session("u", "postgres", {})
        await run(s, "create table t (id int primary key, a int)")
        await run(s, "create table u (id int primary key, tid int)")
        await run(s, "insert into t select g, g % 3 from generate_series(1,10) g")
        r = await one(s, "explain (costs off) select * from t where a = 1")
        assert r.command_tag == "EXPLAIN" and r.columns[0].name == "QUERY PLAN"
        assert [x[0] for x in r.rows] == ["Seq Scan on t", "  Filter: (a = 1)"]
        r = await one(s, "explain (costs off) select * from t where id = 1")
        assert r.rows == [("Index Scan using t_pkey on t",)]
        r = await one(s, "explain (costs off) select a, count(*) from t join u on u.tid = t.id group by a order by a")
        assert [x[0] for x in r.rows] == ["Sort", "  ->  HashAggregate", "        ->  Hash Join",
                                          "              ->  Seq Scan on t", "              ->  Hash",
                                          "                    ->  Seq Scan on u"]
        r = await one(s, "explain analyze select * from t where a = 1")
        lines = [x[0] for x in r.rows]
        assert "rows=4 loops=1" in lines[0] and lines[0].startswith("Seq Scan on t  (cost=")
        assert lines[-1].startswith("Execution Time:")
        r = await one(s, "explain (analyze, costs off, timing off) update t set a = 5 where id = 3")
        assert r.rows[0][0] == "Update on t (actual rows=0 loops=1)"
        assert (await one(s, "select a from t where id = 3")).rows == [(5,)]  # ANALYZE executes

    arun(body())
