"""Foreign keys: 23503 on missing parents and on referenced deletes; CASCADE / SET NULL."""

from __future__ import annotations


def test_foreign_keys(pgdb):
    s = pgdb("par ch ch2 ch3 ch_p_fkey").connect()
    s.run("create table par (id int primary key, name text)")
    s.run("create table ch (id int primary key, p int references par(id) on delete cascade)")
    s.run("create table ch2 (id int primary key, p int, foreign key (p) references par on delete set null)")
    s.run("create table ch3 (id int primary key, p int references par(id))")
    s.run("insert into par values (1,'a'),(2,'b'),(3,'c')")
    s.run("insert into ch values (10, 1), (11, 2), (12, null)")
    e = s.fails("insert into ch values (13, 9)", "23503")
    assert s.names('violates foreign key constraint "ch_p_fkey"') in str(e)
    s.run("insert into ch2 values (20, 1), (21, 2)")
    s.run("insert into ch3 values (30, 3)")
    s.run("delete from par where id = 1")
    assert s.rows("select id from ch order by id") == [(11,), (12,)]
    assert s.rows("select id, p from ch2 order by id") == [(20, None), (21, 2)]
    s.fails("delete from par where id = 3", "23503")
    s.fails("update ch set p = 7 where id = 11", "23503")
    s.run("update ch set p = 3 where id = 11")
    assert s.rows("select count(*) from par") == [(2,)]
    # a parent inserted earlier in the same transaction is visible to the check
    s.run("begin")
    s.run("insert into par values (4, 'd')")
    s.run("insert into ch3 values (31, 4)")
    s.run("commit")
    assert s.rows("select p from ch3 where id = 31") == [(4,)]
