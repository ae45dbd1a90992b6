"""WHERE conditions that read one FROM item are applied to it before the join (its key
when they name one) -- but never to a side an outer join null-extends: there the WHERE
must see the NULL rows the join makes.  Answers checked against PostgreSQL 15's."""

from __future__ import annotations


def _setup(pgdb):  # noqa: ANN001, ANN202
    s = pgdb("a b c").connect()
    s.run("create table a (id int primary key, x int)")
    s.run("insert into a values (1, 10), (2, 20), (3, 30), (4, null)")
    s.run("create table b (id int primary key, aid int, y int)")
    s.run("insert into b values (1, 1, 100), (2, 1, 200), (3, 2, 300), (4, 9, 400)")
    s.run("create table c (id int primary key, bid int)")
    s.run("insert into c values (1, 1), (2, 3), (3, 99)")
    return s


def test_inner_and_preserved_sides(pgdb) -> None:  # noqa: ANN001
    s = _setup(pgdb)
    assert s.rows("select a.id, b.id from a join b on b.aid = a.id where b.y >= 200 order by 1, 2") == [
        (1, 2), (2, 3)]
    assert s.rows("select a.id, b.id from a left join b on b.aid = a.id where a.x > 15 order by 1") == [
        (2, 3), (3, None)]
    assert s.rows("select a.id from a join b on b.aid = a.id where abs(b.y - 250) < 60 order by 1") == [(1,), (2,)]
    assert s.rows("select a.id, b.id from a join b on b.aid = a.id where y = 300") == [(2, 3)]
    assert s.rows("select a.id, b.id from a, b where b.aid = a.id and b.id = 2 and a.x = 10") == [(1, 2)]


def test_null_extended_sides_are_filtered_after_the_join(pgdb) -> None:  # noqa: ANN001
    s = _setup(pgdb)
    assert s.rows("select a.id from a left join b on b.aid = a.id where b.id is null order by 1") == [(3,), (4,)]
    assert s.rows("select a.id, b.id from a right join b on b.aid = a.id where a.id is null order by 2") == [
        (None, 4)]
    assert s.rows("select a.id, b.id from a full join b on b.aid = a.id where b.y > 250 or b.y is null "
                  "order by 1 nulls last, 2") == [(2, 3), (3, None), (4, None), (None, 4)]
    # a, joined first, is null-extended by the later RIGHT JOIN: ``a.x is null`` keeps c's
    # unmatched row and nothing else
    assert s.rows("select a.id, b.id, c.id from a join b on b.aid = a.id right join c on c.bid = b.id "
                  "where a.x is null") == [(None, None, 3)]


def test_a_condition_on_a_key_becomes_a_lookup_below_the_join(pgdb) -> None:  # noqa: ANN001
    s = _setup(pgdb)
    plan = [r[0] for r in s.rows("explain (costs off) select a.id from a join b on b.aid = a.id where b.id = 3")]
    scans = [line.strip() for line in plan if "Scan" in line]
    assert any(line.startswith("->  Index Scan") and "on " + s.names("b") in line for line in scans), plan
    assert s.rows("select a.id from a join b on b.aid = a.id where b.id = 3") == [(2,)]
