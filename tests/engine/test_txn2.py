"""Savepoints, SET LOCAL / transactional SET, FOR UPDATE (NOWAIT / SKIP LOCKED), deadlocks, timeouts."""

from __future__ import annotations

from sqlconn import is_blocked


def _db(pgdb):
    db = pgdb("acct")
    s = db.connect()
    s.run("create table acct (id int primary key, bal int)")
    s.run("insert into acct values (1, 1), (2, 100)")
    return db, s


def test_savepoints(pgdb):
    _, s = _db(pgdb)
    s.fails("savepoint a", "25P01")
    s.run("begin; update acct set bal = 10 where id = 1; savepoint a")
    s.run("update acct set bal = 20 where id = 1; insert into acct values (3, 3)")
    s.fails("select 1/0", "22012")
    assert s.tag("rollback to savepoint a") == "ROLLBACK"
    assert s.status == "T"
    assert s.rows("select id, bal from acct order by id") == [(1, 10), (2, 100)]
    s.run("savepoint b; delete from acct where id = 2; release savepoint b")
    s.fails("rollback to b", "3B001")
    s.run("rollback to a; commit")
    assert s.rows("select id, bal from acct order by id") == [(1, 10), (2, 100)]


def test_set_local_and_transactional_set(pgdb):
    _, s = _db(pgdb)
    s.run("set work_mem = '4MB'")
    s.run("begin; set local work_mem = '8MB'")
    assert s.rows("show work_mem") == [("8MB",)]
    s.run("commit")
    assert s.rows("show work_mem") == [("4MB",)]
    s.run("begin; set work_mem = '16MB'; rollback")
    assert s.rows("show work_mem") == [("4MB",)]
    s.run("begin; set work_mem = '16MB'; commit")
    assert s.rows("show work_mem") == [("16MB",)]


def test_for_update_nowait_skip_locked(pgdb, pool):
    db, s = _db(pgdb)
    o = db.connect()
    s.run("begin")
    assert s.rows("select bal from acct where id = 1 for update") == [(1,)]
    o.run("begin")
    o.fails("select * from acct where id = 1 for update nowait", "55P03")
    o.run("rollback; begin")
    assert o.rows("select id from acct for update skip locked") == [(2,)]
    o.run("rollback")
    # a waiting locker gets the row after the holder commits, re-reading the new value
    waiter = pool.submit(o.rows, "select bal from acct where id = 1 for update")
    assert is_blocked(waiter)
    s.run("update acct set bal = 5 where id = 1; commit")
    assert waiter.result(timeout=10) == [(5,)]


def test_deadlock_and_statement_timeout(pgdb, pool):
    db, a = _db(pgdb)
    b = db.connect()
    a.run("begin; update acct set bal = 0 where id = 1")
    b.run("begin; update acct set bal = 0 where id = 2")
    ta = pool.submit(a.run, "update acct set bal = 0 where id = 2")
    assert is_blocked(ta)
    b.fails("update acct set bal = 0 where id = 1", "40P01")
    b.run("rollback")
    ta.result(timeout=10)
    a.run("commit")
    c = db.connect()
    a.run("begin; update acct set bal = 1 where id = 1")
    c.run("set statement_timeout = 100")
    c.fails("update acct set bal = 2 where id = 1", "57014")
    a.run("rollback")
