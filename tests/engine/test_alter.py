"""ALTER TABLE (instant ADD COLUMN, rewrites, constraints) and CHECK constraints."""

from __future__ import annotations

from sqlconn import message


def test_add_primary_key_rekeys_and_enforces(pgdb):
    s = pgdb("b d").connect()
    s.run("create table b (bid int not null, bal int, filler char(10))")
    s.run("insert into b values (1,0,null),(2,5,null)")
    s.run("alter table b add primary key (bid)")
    assert s.rows("select bal from b where bid = 2") == [(5,)]
    s.fails("insert into b values (2, 1, 'x')", "23505")
    s.run("create table d (k int, v int)")
    s.run("insert into d values (1,1),(1,2)")
    e = s.fails("alter table d add primary key (k)", "23505")
    assert "could not create unique index" in str(e)


def test_primary_key_moved_to_another_column_keeps_every_row(pgdb):
    """One statement moves the key from ``a`` to ``b`` where one row's new key is another
    row's old key (both int): every row must survive the re-keying, as in PostgreSQL."""
    s = pgdb("m m_pkey").connect()
    s.run("create table m (a int primary key, b int not null, v text)")
    s.run("insert into m select g, 101 - g, 'v' || g from generate_series(1, 100) g")
    s.run("alter table m drop constraint m_pkey, add primary key (b)")
    assert s.rows("select count(*), sum(a), sum(b) from m") == [(100, 5050, 5050)]
    assert s.rows("select a, v from m where b = 1") == [(100, "v100")]
    s.fails("insert into m values (0, 1, 'dup')", "23505")
    s.run("insert into m values (1, 200, 'a is no longer the key')")
    assert s.rows("select count(*) from m where a = 1") == [(2,)]


def test_add_primary_key_moves_no_row_loaded_in_key_order(pgdb, cluster):
    """Rows of a table without a key are numbered like one-integer keys: when the column
    that becomes the key holds those same numbers (rows loaded in its order, as pgbench -i
    does), ADD PRIMARY KEY writes no row; rows in another order move, and lookups by the
    new key find every row either way."""
    s = pgdb("inorder shuffled").connect()

    def vdl() -> int:  # each row written is one log record
        return cluster.status()["volume"]["vdl"]

    for name, order in (("inorder", "g"), ("shuffled", "1001 - g")):
        s.run(f"create table {name} (id int not null, v text)")
        s.run(f"insert into {name} select {order}, 'v' || {order} from generate_series(1, 1000) g")
        before = vdl()
        s.run(f"alter table {name} add primary key (id)")
        written = vdl() - before
        if name == "inorder":
            assert written < 100, f"ADD PRIMARY KEY rewrote {written} records of a table already in key order"
        else:
            assert written >= 1000, "rows whose key changed were not moved"
        assert s.rows(f"select count(*), sum(id) from {name}") == [(1000, 500500)]
        assert s.rows(f"select v from {name} where id = 1") == [("v1",)]
        assert s.rows(f"select v from {name} where id = 1000") == [("v1000",)]
        s.fails(f"insert into {name} values (500, 'dup')", "23505")
        s.run(f"insert into {name} values (1001, 'new')")
        assert s.rows(f"select v from {name} where id = 1001") == [("new",)]


def test_instant_add_column_default_and_rewrites(pgdb, cluster):
    s = pgdb("t wide").connect()

    def vdl() -> int:  # the volume's durable LSN: each row written is one log record
        return cluster.status()["volume"]["vdl"]

    s.run("create table wide (id int primary key, a int)")
    s.run("insert into wide select g, g from generate_series(1, 1000) g")
    before = vdl()
    s.run("alter table wide add column n int default 7")
    assert vdl() - before < 100, "ADD COLUMN with a constant default rewrote the rows"
    assert s.rows("select count(*), min(n), max(n) from wide") == [(1000, 7, 7)]
    before = vdl()
    s.run("alter table wide alter column a type bigint")  # a rewrite: every row again
    assert vdl() - before >= 1000
    s.run("create table t (id int primary key, a text)")
    s.run("insert into t values (1,'x'),(2,'y')")
    s.run("alter table t add column n int default 7")
    assert s.rows("select id, n from t order by id") == [(1, 7), (2, 7)]
    assert s.rows("select n from t where id = 2") == [(7,)]
    s.run("insert into t (id, a) values (3, 'z')")
    s.run("update t set n = n + 1 where id = 1")
    assert s.rows("select id, n from t order by id") == [(1, 8), (2, 7), (3, 7)]
    s.run("alter table t drop column a")
    assert s.rows("select * from t order by id") == [(1, 8), (2, 7), (3, 7)]
    s.run("alter table t rename column n to m")
    s.run("alter table t alter column m type bigint")
    cur = s.run("select m from t where id = 1")
    assert cur.fetchall() == [(8,)] and cur.description[0].type_code == 20
    s.fails("select n from t", "42703")


def test_not_null_default_and_check(pgdb):
    s = pgdb("c c2").connect()
    s.run("create table c (id int primary key, v int check (v > 0), w int)")
    s.fails("insert into c values (1, 0, 1)", "23514")
    s.run("insert into c values (1, 5, null)")
    s.fails("alter table c alter column w set not null", "23502")
    s.run("alter table c alter column w set default 3")
    s.run("insert into c (id, v) values (2, 1)")
    assert s.rows("select w from c where id = 2") == [(3,)]
    s.run("alter table c alter column w drop default")
    s.run("insert into c (id, v) values (3, 1)")
    assert s.rows("select w from c where id = 3") == [(None,)]
    s.fails("alter table c add constraint small check (v < 3)", "23514")
    s.run("alter table c add constraint small check (v < 10)")
    s.fails("update c set v = 11 where id = 1", "23514")
    s.run("alter table c drop constraint small")
    s.run("update c set v = 11 where id = 1")
    s.fails("alter table c drop constraint nope", "42704")
    s.run("update c set v = id where id > 1")
    s.run("alter table c add constraint uv unique (v)")
    s.fails("insert into c values (9, 11, 0)", "23505")
    s.run("alter table c rename to c2")
    assert s.rows("select count(*) from c2") == [(3,)]
    assert message(s.fails("select * from c", "42P01")) == f'relation "{s.names["c"]}" does not exist'
