"""DDL/DML round trips, NULL logic, aggregates, joins, ordering, errors, prepared statements."""

from __future__ import annotations

from decimal import Decimal

from psycopg import pq
from sqlconn import message

from engine import types as T

WORDS = "t g t_pkey"


def _setup(pgdb):
    s = pgdb(WORDS).connect()
    s.run("create table t (id int primary key, name text, score numeric(6,2), grp int)")
    s.run("insert into t values (1,'a',1.5,1),(2,'b',null,1),(3,null,2,2),(4,'d',4.25,null)")
    return s


def test_round_trip_types_and_tags(pgdb):
    s = _setup(pgdb)
    cur = s.run("select id, name, score from t where id = 1")
    assert cur.statusmessage == "SELECT 1"
    assert [(c.name, c.type_code) for c in cur.description] == [("id", 23), ("name", 25), ("score", 1700)]
    assert cur.fetchall() == [(1, "a", Decimal("1.50"))]
    cur = s.run("update t set score = score * 2 where grp = 1 returning id, score")
    assert cur.statusmessage == "UPDATE 2" and sorted(cur.fetchall()) == [(1, Decimal("3.00")), (2, None)]
    assert s.tag("delete from t where id > 2") == "DELETE 2"
    cur = s.run("select count(*) from t")
    assert cur.fetchall() == [(2,)] and cur.description[0].type_code == T.INT8
    cur = s.run("select 1::int8 as a, 'x' as b, 2.5::float8, true, now()::date is not null")
    assert [c.type_code for c in cur.description] == [20, 25, 701, 16, 16]
    assert cur.description[2].name == "float8"


def test_null_logic(pgdb):
    s = _setup(pgdb)
    assert s.rows("select null = null, null and false, null or true, not null, 1 in (1, null), 2 in (1, null), "
                  "coalesce(null, 3), nullif(1, 1), null is null") == [(None, False, True, None, True, None, 3, None, True)]
    assert s.rows("select id from t where name <> 'a' order by id") == [(2,), (4,)]  # NULL is neither = nor <>


def test_aggregates_group_order_limit(pgdb):
    s = _setup(pgdb)
    assert s.rows("select grp, count(*), count(score), sum(score), min(name), max(id) from t "
                  "group by grp order by grp nulls first") == [
        (None, 1, 1, Decimal("4.25"), "d", 4), (1, 2, 1, Decimal("1.50"), "a", 2), (2, 1, 1, Decimal("2.00"), None, 3)]
    assert s.rows("select grp, count(*) as n from t group by grp having count(*) > 1") == [(1, 2)]
    assert s.rows("select name from t order by name desc limit 2 offset 1") == [("d",), ("b",)]  # DESC: NULL first
    assert s.rows("select name from t order by name desc nulls last")[-1] == (None,)
    assert s.rows("select distinct grp from t order by grp") == [(1,), (2,), (None,)]
    assert s.rows("select avg(id), sum(id) from t") == [(Decimal("2.5000000000000000"), 10)]
    assert s.rows("select count(*), max(id) from t where id > 100") == [(0, None)]


def test_joins_subqueries_union(pgdb):
    s = _setup(pgdb)
    s.run("create table g (gid int primary key, label text)")
    s.run("insert into g values (1,'one'),(3,'three')")
    assert s.rows("select t.id, g.label from t join g on t.grp = g.gid order by t.id") == [(1, "one"), (2, "one")]
    assert s.rows("select t.id, g.label from t left join g on t.grp = g.gid order by t.id") == [
        (1, "one"), (2, "one"), (3, None), (4, None)]
    assert s.rows("select g.gid, t.id from t right join g on t.grp = g.gid order by g.gid, t.id") == [
        (1, 1), (1, 2), (3, None)]
    assert s.rows("select count(*) from t cross join g") == [(8,)]
    assert s.rows("select id from t where grp in (select gid from g) order by id") == [(1,), (2,)]
    assert s.rows("select id from t where exists (select 1 from g where g.gid = t.grp) order by 1") == [(1,), (2,)]
    assert s.rows("select (select max(id) from t), (select label from g where gid = 3)") == [(4, "three")]
    assert s.rows("select x from (select id * 10 as x from t) sub where x > 20 order by x") == [(30,), (40,)]
    assert sorted(s.rows("select 1 union all select 1 union select 2")) == [(1,), (2,)]


def test_errors_have_sqlstates(pgdb):
    s = _setup(pgdb)
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
        e = s.fails(sql, state)
        if msg:
            assert message(e) == s.names(msg), sql
    e = s.fails("insert into t values (1, 'dup', 0, 0)", "23505")
    assert e.diag.message_detail == "Key (id)=(1) already exists."
    assert s.status == "I"


def test_prepared_param_inference_and_key_lookup(pgdb):
    """Parse / Describe / Execute through libpq: inferred parameter types, text parameters
    coerced by context, and the plan of a key equality is a primary-key lookup."""
    s = _setup(pgdb)
    pgc = s.raw.pgconn
    res = pgc.prepare(b"sel", s.names("select name, score from t where id = $1").encode())
    assert res.status == pq.ExecStatus.COMMAND_OK, res.error_message
    d = pgc.describe_prepared(b"sel")
    assert [d.param_type(i) for i in range(d.nparams)] == [T.INT4]
    assert [d.fname(i).decode() for i in range(d.nfields)] == ["name", "score"]
    r = pgc.exec_prepared(b"sel", [b"3"])
    assert [r.get_value(0, i) for i in range(2)] == [None, b"2.00"]
    r = pgc.exec_prepared(b"sel", [b"4"], param_formats=[0])  # a text parameter, coerced by context
    assert [bytes(r.get_value(0, i)) for i in range(2)] == [b"d", b"4.25"]
    assert s.rows("explain (costs off) select name, score from t where id = %s", [3]) == [
        (s.names("Index Scan using t_pkey on t"),)]
    res = pgc.prepare(b"upd", s.names("update t set score = score + $1 where id = $2").encode())
    assert res.status == pq.ExecStatus.COMMAND_OK, res.error_message
    d = pgc.describe_prepared(b"upd")
    assert [d.param_type(i) for i in range(d.nparams)] == [T.NUMERIC, T.INT4] and d.nfields == 0
    r = pgc.exec_prepared(b"upd", [b"1", b"1"])
    assert r.command_status == b"UPDATE 1"
    assert s.rows("select score from t where id = 1") == [(Decimal("2.50"),)]


def test_sequences_serial_defaults(pgdb):
    s = pgdb("s1 q").connect()
    q = s.names["q"]
    s.run("create table s1 (id serial primary key, v varchar(3) default 'zz', c char(3))")
    assert s.rows("insert into s1 (c) values ('a'), (default) returning id, v, c") == [(1, "zz", "a  "), (2, "zz", None)]
    s.run("create sequence q start with 10 increment by 5")
    assert s.rows(f"select nextval('{q}'), nextval('{q}')") == [(10, 15)]
    s.fails("insert into s1 (v) values ('toolong')", "22001")
    s.run(f"begin; select nextval('{q}'); rollback")
    assert s.rows(f"select nextval('{q}')") == [(25,)]  # not transactional


def test_multi_statement_and_select_without_from(pgdb, cluster):
    s = pgdb("m").connect()
    res = s.results("create table m (a int); insert into m values (1),(2); select sum(a) from m")
    assert [tag for tag, _ in res] == ["CREATE TABLE", "INSERT 0 2", "SELECT 1"]
    assert res[-1][1] == [(3,)]
    s.fails("insert into m values (10); select 1/0", "22012")
    # the implicit transaction of the failed message rolled back its insert
    assert s.rows("select count(*) from m") == [(2,)]
    r = s.rows("select pg_catalog.version(), current_database(), current_user, current_schema()")
    assert r[0][1:] == ("postgres", "postgres", "public")
    writer = next(i.name for i in cluster.launcher.conf.instances if i.role == "writer")
    assert s.rows("SHOW borealis.instance") == [(writer,)]
    assert s.rows("select lower('AbC'), upper('x'), length('héllo'), abs(-3), round(2.345, 2), 7 / 2, -7 % 3") == [
        ("abc", "X", 5, 3, Decimal("2.35"), 3, -1)]
