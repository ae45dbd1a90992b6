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
