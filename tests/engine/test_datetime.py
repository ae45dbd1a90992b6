"""Date/time types with PostgreSQL semantics: input forms, DateStyle / TimeZone /
IntervalStyle output, interval months/days/time arithmetic, fields, errors.

Expected texts are what PostgreSQL 15 prints for the same statements."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from sqlconn import message
from sqlconn import texts as result_texts

# PostgreSQL's regression-test session settings, as libpq's PGOPTIONS would send them
REGRESS = r"-c timezone=PST8PDT -c datestyle=Postgres,\ MDY -c intervalstyle=postgres_verbose"


@pytest.fixture
def db(pgdb: Any) -> Any:
    return pgdb("t")


@pytest.fixture
def texts(db: Any) -> Any:
    def run(sql: str, options: str = "") -> list[list[str | None]]:
        """Rows of the last statement (on a new session), each value as the server sent it."""
        return result_texts(db.connect(options=options).run(sql))
    return run


@pytest.fixture
def error(db: Any) -> Any:
    def run(sql: str, options: str = "") -> psycopg.Error:
        return db.connect(options=options).fails(sql)
    return run


@pytest.mark.parametrize("text,iso", [
    ("January 8, 1999", "1999-01-08"), ("1999-Jan-08", "1999-01-08"), ("08-Jan-1999", "1999-01-08"),
    ("1/8/1999", "1999-01-08"), ("19990108", "1999-01-08"), ("990108", "1999-01-08"), ("1999.008", "1999-01-08"),
    ("J2451187", "1999-01-08"), ("epoch", "1970-01-01"), ("infinity", "infinity"), ("-infinity", "-infinity"),
    ("2040-04-10 BC", "2040-04-10 BC"), ("January 8, 99 BC", "0099-01-08 BC"),
])
def test_date_input_forms(texts, text, iso):
    assert texts(f"select date '{text}'") == [[iso]]


def test_date_input_errors_match_postgres(error):
    e = error("select date '1999-02-30'")
    assert (e.sqlstate, message(e)) == ("22008", 'date/time field value out of range: "1999-02-30"')
    e = error("select date '13/13/1999'")
    assert e.sqlstate == "22008" and e.diag.message_hint == 'Perhaps you need a different "datestyle" setting.'
    e = error("select date 'not a date'")
    assert (e.sqlstate, message(e)) == ("22007", 'invalid input syntax for type date: "not a date"')
    e = error("select date '4714-11-23 BC'")
    assert (e.sqlstate, message(e)) == ("22008", 'date out of range: "4714-11-23 BC"')


def test_dmy_order_follows_datestyle(texts):
    assert texts("set datestyle = 'ISO, DMY'; select date '1/8/1999'") == [["1999-08-01"]]
    assert texts("set datestyle = 'ISO, MDY'; select date '1/8/1999'") == [["1999-01-08"]]


def test_regress_session_output_styles(texts):
    rows = texts("select timestamptz '1997-12-31 23:59:59.99 PST', timestamp 'epoch', date '1999-01-08', "
                 "interval '-1 days +02:03', interval '@ 14 seconds ago'", REGRESS)
    assert rows == [["Wed Dec 31 23:59:59.99 1997 PST", "Thu Jan 01 00:00:00 1970", "01-08-1999",
                     "@ 1 day -2 hours -3 mins ago", "@ 14 secs ago"]]


def test_timestamptz_shown_in_session_zone(texts):
    sql = "set time zone 'America/New_York'; select timestamptz '2001-07-01 12:00:00+00', timestamptz '2001-01-01 12:00 UTC'"
    assert texts(sql) == [["2001-07-01 08:00:00-04", "2001-01-01 07:00:00-05"]]
    # input without a zone is local time in the session zone
    assert texts("set time zone 'PST8PDT'; select cast(timestamptz '2001-01-01 00:00' as timestamp)::text, "
                 "extract(epoch from timestamptz '1970-01-01 00:00')") == [["2001-01-01 00:00:00", "28800.000000"]]


@pytest.mark.parametrize("style,expect", [
    ("postgres", "1 year 2 mons -3 days +04:05:06.5"),
    ("postgres_verbose", "@ 1 year 2 mons -3 days 4 hours 5 mins 6.5 secs"),
    ("sql_standard", "+1-2 -3 +4:05:06.5"),
    ("iso_8601", "P1Y2M-3DT4H5M6.5S"),
])
def test_interval_styles(texts, style, expect):
    sql = f"set intervalstyle = {style}; select interval '1 year 2 months -3 days 4 hours 5 minutes 6.5 seconds'"
    assert texts(sql) == [[expect]]


def test_interval_keeps_months_and_days(texts):
    rows = texts("select interval '1.5 months', interval '1 month' = interval '30 days', "
                 "timestamp '2020-01-31' + interval '1 month', date '2020-02-29' - interval '1 year', "
                 "extract(month from interval '14 months'), justify_interval(interval '1 mon -1 hour'), "
                 "justify_hours(interval '50 hours'), justify_days(interval '35 days'), "
                 "interval '1 month' * 1.5, interval '1 day' / 4")
    assert rows == [["1 mon 15 days", "t", "2020-02-29 00:00:00", "2019-02-28 00:00:00", "2",
                     "29 days 23:00:00", "2 days 02:00:00", "1 mon 5 days", "1 mon 15 days", "06:00:00"]]


def test_interval_range_errors(error):
    e = error("select interval '2147483648 days'")
    assert (e.sqlstate, message(e)) == ("22015", 'interval field value out of range: "2147483648 days"')
    e = error("select interval '@ 30 eons ago'")
    assert e.sqlstate == "22007"


def test_bc_and_infinity_fields(texts):
    rows = texts("select extract(year from date '2020-08-11 BC'), extract(century from date '0101-12-31 BC'), "
                 "extract(decade from date '0002-12-31 BC'), date_trunc('century', date '0055-08-10 BC')::date, "
                 "extract(epoch from date 'infinity'), extract(day from date 'infinity'), "
                 "isfinite(date '-infinity'), date 'infinity' > date '2999-01-01'")
    assert rows == [["-2020", "-2", "-1", "0100-01-01 BC", "Infinity", None, "f", "t"]]


def test_timestamp_arithmetic_and_age(texts):
    rows = texts("select timestamp '2020-03-01' - timestamp '2020-01-01 12:00', "
                 "age(timestamp '2001-04-10', timestamp '1957-06-13'), date '2000-03-01' - date '2000-02-01', "
                 "make_interval(1, 0, 0, 2, 0, 0, 3.5), make_date(-44, 3, 15)")
    assert rows == [["59 days 12:00:00", "43 years 9 mons 27 days", "29", "1 year 2 days 00:00:03.5", "0044-03-15 BC"]]


def test_values_survive_storage_codec(texts):
    rows = texts("create table t (d date, ts timestamp, i interval); "
                 "insert into t values ('infinity', '0097-02-16 17:32:01 BC', '1 year 2 mons 3 days'); "
                 "select d, ts, i from t")
    assert rows == [["infinity", "0097-02-16 17:32:01 BC", "1 year 2 mons 3 days"]]


def test_to_char_date_bin_make_time(texts, error):
    rows = texts("select to_char(timestamp '0097-02-16 17:32:01 BC', 'FMDay Y,YYY BC HH12:MI:SS PM DDDth RM'), "
                 "to_char(interval '-13 mons', 'rm'), "
                 "date_bin('5 min'::interval, timestamp '2020-02-01 01:01:01', timestamp '2020-02-01 00:02:30'), "
                 "make_time(8, 20, 0.5), date_part('epoch', timestamptz '1970-01-01 00:00:01+00')")
    assert rows == [["Tuesday 0,097 BC 05:32:01 PM 047th II  ", "xii ", "2020-02-01 00:57:30", "08:20:00.5", "1"]]
    e = error("select date_bin('1 month'::interval, timestamp '2020-01-01', timestamp '2001-01-01')")
    assert e.sqlstate == "0A000"
