"""WITH / WITH RECURSIVE, CREATE TABLE AS / SELECT INTO, views, ON CONFLICT, UPDATE FROM, DELETE USING."""

from __future__ import annotations

WORDS = "t u c c2 vv"


def _db(pgdb):
    s = pgdb(WORDS).connect()
    s.run("create table t (id int primary key, v int, k text unique)")
    s.run("create table u (id int, v int)")
    s.run("insert into t values (1,10,'a'),(2,20,'b'),(3,30,'c')")
    s.run("insert into u values (1,100),(3,300)")
    return s


def test_with_and_recursive(pgdb):
    s = _db(pgdb)
    assert s.rows("with recursive r(n) as (select 1 union all select n+1 from r where n<5) "
                  "select sum(n), count(*) from r") == [(15, 5)]
    r = s.rows("with recursive f(a,b) as (select 0, 1 union all select b, a+b from f) select a from f limit 7")
    assert [x for (x,) in r] == [0, 1, 1, 2, 3, 5, 8]
    assert s.rows("with a as (select id, v from t where v > 10), b as (select * from a where id < 3) "
                  "select * from b") == [(2, 20)]
    assert s.rows("with w as (select 42 as x) insert into u select x, x from w returning *") == [(42, 42)]


def test_update_from_delete_using(pgdb):
    s = _db(pgdb)
    cur = s.run("update t set v = u.v + t.v from u where t.id = u.id returning t.id, t.v")
    assert cur.statusmessage == "UPDATE 2" and sorted(cur.fetchall()) == [(1, 110), (3, 330)]
    cur = s.run("delete from t using u where t.id = u.id and u.v > 200 returning t.id")
    assert cur.statusmessage == "DELETE 1" and cur.fetchall() == [(3,)]
    assert s.rows("select id, v from t order by id") == [(1, 110), (2, 20)]


def test_on_conflict(pgdb):
    s = _db(pgdb)
    cur = s.run("insert into t values (1, 5, 'z'), (9, 9, 'q') on conflict (id) "
                "do update set v = excluded.v + t.v returning id, v, k")
    assert cur.statusmessage == "INSERT 0 2" and cur.fetchall() == [(1, 15, "a"), (9, 9, "q")]
    assert s.tag("insert into t values (1, 5, 'z') on conflict do nothing") == "INSERT 0 0"
    assert s.tag("insert into t values (7, 5, 'a') on conflict (k) do nothing") == "INSERT 0 0"
    assert s.tag("insert into t values (2, 0, 'b') on conflict (id) do update set v = 99 where t.v > 100") == "INSERT 0 0"
    s.fails("insert into t values (7, 5, 'a') on conflict (v) do nothing", "42P10")
    s.fails("insert into t values (5,1,'m'),(5,2,'n') on conflict (id) do update set v = excluded.v", "21000")
    s.fails("insert into t values (8, 1, 'a') on conflict (id) do nothing", "23505")


def test_ctas_select_into_views(pgdb):
    s = _db(pgdb)
    assert s.tag("create table c as select id, v*2 as dv from t") == "SELECT 3"
    assert s.rows("select dv from c where id = 2") == [(40,)]
    s.run("select id into c2 from t where id > 1")
    assert s.rows("select count(*) from c2") == [(2,)]
    s.run("create view vv as select id, v from t where id < 3")
    cur = s.run("select * from vv where v > 10")
    assert cur.fetchall() == [(2, 20)] and [c.name for c in cur.description] == ["id", "v"]
    s.run("insert into t values (0, 1, 'zz')")
    assert s.rows("select count(*) from vv") == [(3,)]
    s.fails("create or replace view vv as select id from t", "42P16")
    s.run("create or replace view vv as select id, v, k from t")
    s.fails("drop table vv", "42809")
    s.run("drop view vv")
    s.fails("select * from vv", "42P01")


def test_distinct_on_and_fetch_first(pgdb):
    s = _db(pgdb)
    s.run("insert into u values (1, 50), (3, 1)")
    assert s.rows("select distinct on (id) id, v from u order by id, v desc") == [(1, 100), (3, 300)]
    assert s.rows("select id from t order by id desc fetch first 2 rows only") == [(3,), (2,)]
    assert s.rows("select id from t order by id fetch first row only") == [(1,)]


def test_correlated_exists_as_semijoin(pgdb):
    """Correlated EXISTS on an equality is answered from one hashed pass, NULLs never match.
    Evaluated per outer row it would take minutes: the statement_timeout bounds that."""
    s = pgdb("tk").connect()
    s.run("create table tk (unique1 int primary key, unique2 int, thousand int)")
    s.run("insert into tk select g, 9999 - g, g % 1000 from generate_series(0, 9999) g")
    s.run("insert into tk values (10000, null, null)")
    s.run("set statement_timeout = '30s'")
    assert s.rows("select count(*) from tk a where exists (select 1 from tk b where b.thousand = a.unique2)") == [(1000,)]
    assert s.rows("select count(*) from tk a where not exists "
                  "(select 1 from tk b where b.thousand = a.unique2 and b.unique1 > 5000)") == [(9001,)]
