"""Simple-query statement cache: literals normalised out of the text share one parsed shape."""

from __future__ import annotations

from decimal import Decimal

from engine import types as T
from engine.normalize import normalize
from engine.parse import Parser


def test_shapes_and_values():
    shape, vals, types = normalize("UPDATE a SET b = b + -1234 WHERE id = 5;")
    assert shape.split() == ["UPDATE", "a", "SET", "b", "=", "b", "+", "$1", "WHERE", "id", "=", "$2"]
    assert vals == [-1234, 5] and types == (T.INT4, T.INT4)
    shape, vals, types = normalize("insert into h values (3, 'it''s', -1.5, now())")
    assert vals == [3, "it's", Decimal("-1.5")] and types == (T.INT4, 0, T.NUMERIC)
    assert "now()" in shape
    # literals that must stay: typmods, casts, LIKE patterns, quoted text, json operators
    shape, vals, _ = normalize("select x::numeric(10,2) from t where a = 3::int and b like 'a = 5' "
                               "and c->>'k' = 'v' and d = 7 limit 5")
    assert "numeric(10,2)" in shape and "3::int" in shape and "'a = 5'" in shape and "->>'k'" in shape
    assert "limit 5" in shape and vals == ["v", 7]
    assert normalize("select 1; select 2") is None
    assert normalize("select $1 from t where a = 1") is None
    assert normalize("create table t (a numeric(3,1) default 5)") is None


def test_parser_shares_one_shape_for_texts_differing_in_literals():
    """The parse cache (pure, no I/O): two texts with other literals give one Stmt."""
    p = Parser()
    a = p.parse_bound("select v from nt where id = 1")[0][0]
    b = p.parse_bound("select v from nt where id = 2")[0][0]
    assert a is b


def test_cached_shape_gives_right_answers(pgdb):
    s = pgdb("nt").connect()
    s.run("create table nt (id int primary key, v int, name text, amount numeric(8,2))")
    s.run("insert into nt values (1, 10, 'a', 1.5), (2, 20, 'b', 2.25), (3, 30, 'c', 3)")
    for i, want in ((1, 10), (2, 20), (3, 30), (4, None)):
        assert s.rows(f"select v from nt where id = {i}") == ([(want,)] if want is not None else [])
    for d in (5, -7):
        s.run(f"update nt set v = v + {d} where id = 1")
    assert s.rows("select v from nt where id = 1") == [(8,)]
    assert s.rows("select id from nt where name = 'b'") == [(2,)]
    assert s.rows("select id from nt where amount > 2.0 order by id") == [(2,), (3,)]
    # result types follow the literal, not a text parameter
    cur = s.run("select v * 2 from nt where id = 2")
    assert cur.description[0].type_code == T.INT4 and cur.fetchall() == [(40,)]
    cur = s.run("select 1 - 3.5")
    assert cur.description[0].type_code == T.NUMERIC and cur.fetchall() == [(Decimal("-2.5"),)]
    s.fails("select v from nt where name = 5", "42883")  # text = integer has no operator, as in PostgreSQL


def test_a_repeated_constant_is_one_parameter():
    """``g % 3`` in the select list and in GROUP BY must stay one expression: the same
    number twice becomes one parameter; a repeated quoted literal (whose type depends on
    where it stands) keeps the text out of the shape cache."""
    shape, vals, types = normalize("select g % 3, count(*) from t group by g % 3")
    assert shape.count("$1") == 2 and "$2" not in shape and vals == [3] and types == (T.INT4,)
    shape, vals, _ = normalize("select a from t where b = 1 and c = -1 and d = 1.0 and e = 1")
    assert vals == [1, -1, Decimal("1.0")] and shape.count("$1") == 2
    assert normalize("select a from t where b = 'x' and c = 'x'") is None
    assert normalize("select a from t where b = 'x' and c = 'y'")[1] == ["x", "y"]


def test_group_by_an_expression_with_a_constant(pgdb):
    s = pgdb("gt").connect()
    s.run("create table gt (g int primary key, d date, t text)")
    s.run("insert into gt select i, date '2020-01-01' + i, 'v' || i from generate_series(1, 10) i")
    assert s.rows("select g % 3, count(*) from gt group by g % 3 order by 1") == [(0, 3), (1, 4), (2, 3)]
    assert s.rows("select g % 4 as m, sum(g) from gt group by g % 4 having sum(g) > 10 order by m") == [
        (0, 12), (1, 15), (2, 18)]
    assert s.rows("select count(*) from gt where d > '2020-01-05' and t > '2020-01-05'") == [(6,)]
