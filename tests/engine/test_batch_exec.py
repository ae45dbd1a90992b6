"""Hash joins and folded aggregates (engine.executor's batch paths) through the wire:
keys of different numeric types, NULL keys, parameters bound by the extended protocol,
empty inputs.  tests/unit/test_executor_batches.py checks the same paths on bigger inputs."""

from __future__ import annotations

from decimal import Decimal

WORDS = "n m fl e"


def _db(pgdb):
    s = pgdb(WORDS).connect()
    s.run("create table n (id int primary key, k numeric, i int, f float8, v int)")
    s.run("create table m (id int primary key, k numeric, i bigint, f float8, w int)")
    s.run("create table e (id int primary key, k int, v int)")
    s.run("insert into n values (1, 1.0, 1, 0.0, 10), (2, 2.50, 2, 1.5, 20), (3, null, null, null, 30), "
          "(4, 1, 1, -0.0, 40), (5, 7, -7, 'NaN', 50)")
    s.run("insert into m values (1, 1.00, 1, -0.0, 100), (2, 2.5, 2, 1.5, 200), (3, null, null, null, 300), "
          "(4, 9, -7, 2.0, 400)")
    return s


def test_join_keys_of_each_numeric_type(pgdb):
    s = _db(pgdb)
    # numeric keys equal across scales (1.0 = 1.00 = 1), NULL never matches
    assert s.rows("select n.id, m.id from n join m on n.k = m.k order by 1, 2") == [(1, 1), (2, 2), (4, 1)]
    # int = bigint
    assert s.rows("select n.id, m.id from n join m on n.i = m.i order by 1, 2") == [(1, 1), (2, 2), (4, 1), (5, 4)]
    # float8: -0 = 0
    assert s.rows("select n.id, m.id from n join m on n.f = m.f order by 1, 2") == [(1, 1), (2, 2), (4, 1)]
    # numeric = int and numeric = float8 compare after coercion (not hashed as they are)
    assert s.rows("select n.id, m.id from n join m on n.k = m.i order by 1, 2") == [(1, 1), (4, 1)]
    assert s.rows("select n.id, m.id from n join m on n.k = m.f order by 1, 2") == []
    assert s.rows("select n.f, count(*) from n join m on n.f = m.f group by n.f order by 1") == [(0.0, 2), (1.5, 1)]
    assert s.rows("select n.id, m.id from n left join m on n.k = m.k order by 1, 2") == [
        (1, 1), (2, 2), (3, None), (4, 1), (5, None)]
    assert s.rows("select n.id, m.id from n full join m on n.i = m.i order by 1, 2") == [
        (1, 1), (2, 2), (3, None), (4, 1), (5, 4), (None, 3)]


def test_expression_keys_with_parameters(pgdb):
    s = _db(pgdb)
    # %s: psycopg binds a parameter (extended protocol), as asyncpg does; PostgreSQL's %
    # keeps the dividend's sign (-7 % 2 = -1, -7 % -3 = -1)
    q = "select n.id, m.id from n join m on n.i %% %s = m.i %% %s and n.v < m.w order by 1, 2"
    assert s.rows(q, (2, 2)) == [(1, 1), (2, 2), (4, 1), (5, 4)]
    assert s.rows(q, (3, 3)) == [(1, 1), (2, 2), (4, 1), (5, 4)]
    assert s.rows("select n.id, m.id from n join m on n.i %% %s = m.i %% %s order by 1, 2", (-3, -3)) == [
        (1, 1), (2, 2), (4, 1), (5, 4)]
    s.fails("select count(*) from n join m on n.i %% %s = m.i %% %s", "22012", (0, 0))


def test_grouped_aggregates_over_a_join(pgdb):
    s = _db(pgdb)
    assert s.rows("select m.id, count(*), count(n.i), sum(n.v), avg(n.v), min(n.v), max(n.v) "
                  "from n join m on n.i = m.i group by m.id order by m.id") == [
        (1, 2, 2, 50, Decimal("25.0000000000000000"), 10, 40),
        (2, 1, 1, 20, Decimal("20.0000000000000000"), 20, 20),
        (4, 1, 1, 50, Decimal("50.0000000000000000"), 50, 50)]
    # numeric group keys equal across scales form one group
    assert s.rows("select count(*), sum(v) from n group by k order by 1, 2") == [(1, 20), (1, 30), (1, 50), (2, 50)]
    rows = s.rows("select k is null, sum(k), sum(f), max(i), min(i) from n group by k is null order by 1")
    assert rows[1] == (True, None, None, None, None)
    assert rows[0][:2] == (False, Decimal("11.50")) and rows[0][2] != rows[0][2] and rows[0][3:] == (2, -7)  # NaN


def test_empty_inputs(pgdb):
    s = _db(pgdb)
    assert s.rows("select count(*), sum(v), max(v) from e") == [(0, None, None)]
    assert s.rows("select k, count(*), sum(v) from e group by k") == []
    assert s.rows("select count(*), sum(n.v) from n join e on e.k = n.i") == [(0, None)]
    assert s.rows("select n.id, e.id from n left join e on e.k = n.i order by 1") == [
        (1, None), (2, None), (3, None), (4, None), (5, None)]
    assert s.rows("select count(*) from e join n on e.k = n.i group by n.id") == []
