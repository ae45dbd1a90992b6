"""Silent wrong answers of issue 17: each statement here was once answered differently from
PostgreSQL 15 (or accepted and run differently); now it is answered as PostgreSQL does or
refused with PostgreSQL's error."""

from __future__ import annotations


def test_multi_argument_unnest_in_from(pgdb):
    s = pgdb("").connect()
    # both columns are named "unnest": SELECT * must still take each by its position
    assert s.rows("select * from unnest(array['a','b'], array[1,2])") == [("a", 1), ("b", 2)]
    assert s.rows("select u.* from unnest(array['a','b'], array[1,2,3]) u") == [("a", 1), ("b", 2), (None, 3)]
    cur = s.run("select * from unnest(array['a','b'], array[1,2,3]) with ordinality")
    assert cur.fetchall() == [("a", 1, 1), ("b", 2, 2), (None, 3, 3)]
    assert [d.name for d in cur.description] == ["unnest", "unnest", "ordinality"]
    cur = s.run("select * from unnest(array['a','b'], array[1,2,3]) with ordinality as t(x, y, n)")
    assert cur.fetchall() == [("a", 1, 1), ("b", 2, 2), (None, 3, 3)]
    assert [d.name for d in cur.description] == ["x", "y", "n"]
    assert s.rows("select unnest(array['a','b']), unnest(array[1,2,3])") == [("a", 1), ("b", 2), (None, 3)]
    # the same for any FROM item with two columns of one name
    assert s.rows("select * from (select 1 as a, 2 as a) s") == [(1, 2)]
    assert s.rows("select s.* from (select 1 as a, 2 as a) s") == [(1, 2)]


QUALIFIED = [  # (statement, SQLSTATE, message) as PostgreSQL 15 answers without a schema "app"
    ("create table app.t (a int)", "3F000", 'schema "app" does not exist'),
    ("create view app.v as select 1", "3F000", 'schema "app" does not exist'),
    ("create sequence app.s", "3F000", 'schema "app" does not exist'),
    ("create index on app.{t} (a)", "3F000", 'schema "app" does not exist'),
    ("create type app.e as enum ('a')", "3F000", 'schema "app" does not exist'),
    ("create function app.f() returns int as 'select 1' language sql", "3F000", 'schema "app" does not exist'),
    ("alter table app.{t} add column b int", "3F000", 'schema "app" does not exist'),
    ("drop table app.{t}", "3F000", 'schema "app" does not exist'),
    ("truncate app.{t}", "3F000", 'schema "app" does not exist'),
    ("copy app.{t} to stdout", "3F000", 'schema "app" does not exist'),
    ("select * from app.{t}", "42P01", 'relation "app.{t}" does not exist'),
    ("insert into app.{t} values (1)", "42P01", 'relation "app.{t}" does not exist'),
    ("update app.{t} set a = 2", "42P01", 'relation "app.{t}" does not exist'),
    ("delete from app.{t}", "42P01", 'relation "app.{t}" does not exist'),
    ("select app.f(1)", "3F000", 'schema "app" does not exist'),
    ("select 1::app.ty", "3F000", 'schema "app" does not exist'),
    ("select app.{t}.a from {t}", "42P01", 'invalid reference to FROM-clause entry for table "{t}"'),
    ("select * from x.public.{t}", "0A000", 'cross-database references are not implemented: "x.public.{t}"'),
]


def test_unknown_schema_is_refused_never_dropped(pgdb):
    db = pgdb("q")
    s = db.connect()
    t = db["q"]
    s.run(f"create table {t} (a int)")
    s.run(f"insert into {t} values (1)")
    for sql, state, msg in QUALIFIED:
        e = s.fails(sql.format(t=t), state)
        assert e.diag.message_primary == msg.format(t=t), sql
    # nothing reached public.<t>, and no public.t was made
    assert s.rows(f"select a from public.{t}") == [(1,)]
    assert s.rows(f"select count(*) from pg_class where relname = '{t}'") == [(1,)]
    assert s.rows("select count(*) from pg_class where relname in ('v', 's', 'e')") == [(0,)]
    # the known schemas still qualify
    assert s.rows(f"select public.{t}.a, pg_catalog.now() is not null, 3::pg_catalog.int4 from public.{t}") == [(1, True, 3)]
    assert s.rows("select count(*) > 0 from information_schema.tables") == [(True,)]
    s.run(f"drop table public.{t}")
