"""Regex, string, math and json functions/operators."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlconn import texts


def test_regex_and_strings(pgdb):
    s = pgdb().connect()
    cur = s.run("select 'abc' ~ 'b', 'abc' ~* 'B', 'abc' !~ 'b', regexp_replace('aXbX', 'x', 'y', 'gi'), "
                "substring('foobar' from 'o(b.)'), split_part('a,b,c', ',', 2), concat_ws('-', 'a', null, 'b'), "
                "format('%s=%L %I', 'x', 'it''s', 'A b'), lpad('5', 3, '0'), rpad('ab', 4), repeat('ab', 2), "
                "initcap('hello wORLD'), translate('abc', 'ab', 'x'), ascii('A'), chr(66), btrim('xxaxx', 'x'), "
                "starts_with('abc', 'ab'), to_hex(255)")
    assert cur.fetchall() == [(True, True, False, "ayby", "ba", "b", "a-b", "x='it''s' \"A b\"", "005", "ab  ",
                               "abab", "Hello World", "xc", 65, "B", "a", True, "ff")]
    assert [c.name for c in cur.description][8:10] == ["lpad", "rpad"]
    assert s.rows("select * from regexp_split_to_table('a b  c', '\\s+')") == [("a",), ("b",), ("c",)]
    assert s.rows("select json_build_object('k', 1 is not null)") == [({"k": True},)]


def test_math(pgdb):
    s = pgdb().connect()
    r = s.rows("select trunc(1.57), trunc(1.234, 2), power(2,3), cbrt(27), log(100), sign(-2), div(7,2), "
               "gcd(12,18), lcm(4,6), width_bucket(5, 0, 10, 5), floor(-1.5), ceil(1.2)")
    # log(int) and sign(int) resolve to the float8 overloads (PostgreSQL 15: double precision)
    assert r == [(Decimal(1), Decimal("1.23"), 8.0, 3.0, 2.0, -1.0,
                  Decimal(3), 6, 12, 3, Decimal(-2), Decimal(2))]
    assert texts(s.run("select log(100), log(100.0), trunc(1.234, 2)")) == [["2", "2.0000000000000000", "1.23"]]


def test_json(pgdb):
    s = pgdb("j").connect()
    s.run("create table j (id int primary key, d jsonb)")
    s.run("""insert into j values (1, '{"a": {"b": [1,2,3]}, "n": 5, "s": "x", "l": [{"x": 1}]}'), (2, '{"n": 7}')""")
    r = s.rows("select d->'a', d->>'n', d #> '{a,b}', d #>> '{a,b,1}', d->'a'->'b'->0, d @> '{\"n\":5}', "
               "d ? 's', d ?| array['s','q'], d ?& array['s','q'] from j order by id")
    assert r[0] == ({"b": [1, 2, 3]}, "5", [1, 2, 3], "2", 1, True, True, True, False)
    assert r[1] == (None, "7", None, None, None, False, False, False, False)
    cur = s.run("select jsonb_build_object('b', 1, 'a', 'x'), jsonb_typeof(d->'a'), jsonb_array_length(d#>'{a,b}'), "
                "jsonb_set(d, '{n}', '9')->'n', d -> 'l' -> 0 -> 'x' from j where id = 1")
    assert texts(cur) == [['{"a": "x", "b": 1}', "object", "3", "9", "1"]]  # jsonb orders keys
    assert s.rows("select key, value from jsonb_each((select d from j where id = 2))") == [("n", 7)]
    assert s.rows("select jsonb_agg(id order by id desc), json_object_agg(id, d->'n') from j") == [
        ([2, 1], {"1": 5, "2": 7})]


def test_datetime(pgdb):
    s = pgdb().connect()
    cur = s.run("select date_trunc('month', '2020-05-17 10:11:12'::timestamp), extract(dow from '2020-05-17'::date), "
                "to_char('2020-05-07 13:04:05'::timestamp, 'YYYY-MM-DD HH24:MI:SS Mon FMDD'), "
                "to_date('2020-05-17', 'YYYY-MM-DD'), make_date(2020, 2, 29), "
                "'2020-01-01 12:00:00+00'::timestamptz at time zone 'America/New_York'")
    assert cur.fetchall() == [(dt.datetime(2020, 5, 1), Decimal(0), "2020-05-07 13:04:05 May 7", dt.date(2020, 5, 17),
                               dt.date(2020, 2, 29), dt.datetime(2020, 1, 1, 7, 0))]
    assert cur.description[2].name == "to_char"


def test_intervals(pgdb):
    """Months, days and microseconds are kept apart: compared in the server's text form."""
    s = pgdb().connect()
    cur = s.run("select interval '1 day 02:03:04', '2 hours 30 mins'::interval, interval '2 hours' + interval '30 minutes', "
                "interval '1 hour' * 3, '@ 1 hour ago'::interval, '2020-01-01'::date + interval '1 day', "
                "'2020-01-02'::date - '2020-01-01'")
    assert texts(cur) == [["1 day 02:03:04", "02:30:00", "02:30:00", "03:00:00", "-01:00:00",
                           "2020-01-02 00:00:00", "1"]]
    assert [c.type_code for c in cur.description] == [1186] * 5 + [1114, 23]
    assert s.rows("select extract(day from interval '1 day 02:03:04'), extract(epoch from interval '1 day 02:03:04')") == [
        (Decimal(1), Decimal("93784.000000"))]
