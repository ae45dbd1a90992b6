"""Simple-query statement cache: literals normalised out of the text share one parsed shape."""

from __future__ import annotations

from decimal import Decimal

from engine import types as T
from engine.normalize import normalize
from tests.engine.conftest import new_db, one, run


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


def test_cached_shape_gives_right_answers(arun):
    async def body():
        db = await new_db()
        s = db.session("u", "postgres", {})
        await run(s, "create table nt (id int primary key, v int, name text, amount numeric(8,2))")
        await run(s, "insert into nt values (1, 10, 'a', 1.5), (2, 20, 'b', 2.25), (3, 30, 'c', 3)")
        for i, want in ((1, 10), (2, 20), (3, 30), (4, None)):
            r = await one(s, f"select v from nt where id = {i}")
            assert r.rows == ([(want,)] if want is not None else [])
        for d in (5, -7):
            await run(s, f"update nt set v = v + {d} where id = 1")
        assert (await one(s, "select v from nt where id = 1")).rows == [(8,)]
        r = await one(s, "select id from nt where name = 'b'")
        assert r.rows == [(2,)]
        r = await one(s, "select id from nt where amount > 2.0 order by id")
        assert r.rows == [(2,), (3,)]
        # the shape is shared: one Stmt for both texts
        p = db.parser
        a = p.parse_bound("select v from nt where id = 1")[0][0]
        b = p.parse_bound("select v from nt where id = 2")[0][0]
        assert a is b
        # result types follow the literal, not a text parameter
        r = await one(s, "select v * 2 from nt where id = 2")
        assert r.columns[0].type_oid == T.INT4 and r.rows == [(40,)]
        r = await one(s, "select 1 - 3.5")
        assert r.columns[0].type_oid == T.NUMERIC and r.rows == [(Decimal("-2.5"),)]
        try:
            await one(s, "select v from nt where name = 5")
        except Exception as e:  # text = integer has no operator, as in PostgreSQL
            assert getattr(e, "sqlstate", "") == "42883"
        else:
            raise AssertionError("expected 42883")

    arun(body())
