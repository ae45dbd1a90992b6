"""Secondary indexes: lookups through the index (own writes included), unique indexes."""

from __future__ import annotations

import psycopg
import pytest


def test_index_lookup_and_unique(pgdb):
    s = pgdb("ix ix_a ix_b ix_a2").connect()
    s.run("create table ix (id int, a int, b text)")
    s.run("insert into ix select g, g % 10, 'v' || g from generate_series(1, 3000) g")
    s.run("create index ix_a on ix(a)")
    s.run("create unique index ix_b on ix(b)")
    assert s.rows("select count(*) from ix where a = 3") == [(300,)]
    # the lookup goes through the index, not a scan
    assert s.rows("explain (costs off) select id from ix where b = 'v1'")[0] == (s.names("Index Scan using ix_b on ix"),)
    for i in range(200):
        assert s.rows(f"select id from ix where b = 'v{i + 1}'") == [(i + 1,)]
    s.fails("insert into ix values (5000, 1, 'v77')", "23505")
    s.run("update ix set a = 42 where b = 'v78'")
    assert s.rows("select id, a from ix where a = 42") == [(78, 42)]
    s.fails("create unique index ix_a2 on ix(a)", "23505")
    s.run("begin")
    s.run("insert into ix values (6000, 99, 'new')")
    assert s.rows("select id from ix where a = 99") == [(6000,)]  # own uncommitted write
    s.run("rollback")
    assert s.rows("select id from ix where a = 99") == []


def test_unique_checks_see_own_writes_through_every_path(pgdb):
    """The transaction's own writes are indexed (not scanned per row): a duplicate within one
    INSERT ... SELECT, within a transaction, after an UPDATE of an own row, after a failed
    statement and after ROLLBACK TO SAVEPOINT must all still be found -- and a value freed
    by those must be usable again."""
    s = pgdb("ou ou_src ou_ab").connect()
    s.run("create table ou (id int primary key, f float8 unique, a int, b text)")
    s.run("create index ou_ab on ou (a, b)")
    s.run("create table ou_src (id int, f float8, a int, b text)")
    s.run("insert into ou_src select g, g * 1.5, g % 7, 'b' || (g % 3) from generate_series(1, 3000) g")
    s.run("insert into ou_src values (5000, 1500.0, 1, 'x')")  # same f as id 1000, last in the source
    s.fails("insert into ou select * from ou_src", "23505")
    assert s.rows("select count(*) from ou") == [(0,)]
    s.run("delete from ou_src where id = 5000")
    s.run("begin")
    s.run("insert into ou select * from ou_src")
    s.fails("insert into ou values (9000, 4.5, 0, 'y')", "23505")  # 4.5 is id 3's, written in this txn
    s.run("rollback")
    s.run("begin")
    s.run("insert into ou select * from ou_src where id <= 100")
    s.run("update ou set f = -1 where id = 3")  # frees 4.5 in the own buffer
    s.run("insert into ou values (9000, 4.5, 0, 'y')")
    s.run("savepoint sp")
    s.fails("insert into ou values (9001, -1, 0, 'y')", "23505")
    s.run("rollback to savepoint sp")
    s.run("update ou set f = -2 where id = 4")  # frees 6.0 ...
    s.run("insert into ou values (9002, 6.0, 0, 'y')")
    s.run("rollback to savepoint sp")  # ... and takes it back
    s.fails("insert into ou values (9003, 6.0, 0, 'y')", "23505")
    s.run("rollback to savepoint sp")
    # a failing multi-row UPDATE: its first rows' new values were written, then undone
    s.fails("update ou set f = case when id = 50 then -1 else f + 0.125 end where id >= 10", "23505")
    s.run("rollback to savepoint sp")
    s.fails("insert into ou values (9004, 15.0, 0, 'y')", "23505")  # id 10's f is back
    s.run("rollback to savepoint sp")
    s.run("insert into ou values (9005, 15.125, 0, 'y')")
    assert s.rows("select id from ou where a = 2 and b = 'b2' order by id") == [(2,), (23,), (44,), (65,), (86,)]
    s.run("commit")
    assert s.rows("select count(*), count(distinct f) from ou") == [(102, 102)]


def test_copy_checks_unique_indexes(pgdb):
    """COPY FROM honours a CREATE UNIQUE INDEX like a UNIQUE constraint: a duplicate within
    the data or against a stored row is 23505 and nothing of the COPY stays."""
    db = pgdb("cu cu_b")
    s = db.connect()
    s.run("create table cu (id int, b text)")
    s.run("create unique index cu_b on cu (b)")
    s.run("insert into cu values (0, 'zero')")
    for data in ("1\tone\n2\ttwo\n3\tone\n", "1\tone\n2\tzero\n"):
        with pytest.raises(psycopg.errors.UniqueViolation):
            with s.raw.cursor().copy(db.names("copy cu from stdin")) as cp:
                cp.write(data)
    assert s.rows("select id, b from cu") == [(0, "zero")]
    with s.raw.cursor().copy(db.names("copy cu from stdin")) as cp:
        cp.write("1\tone\n2\ttwo\n")
    assert s.rows("select count(*) from cu") == [(3,)]
