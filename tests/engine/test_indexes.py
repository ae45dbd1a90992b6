"""Secondary indexes: lookups through the index (own writes included), unique indexes."""

from __future__ import annotations


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
