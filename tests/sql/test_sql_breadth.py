"""SQL breadth through real clients (psycopg over the writer endpoint of the shared cluster)."""

from __future__ import annotations

import psycopg
import pytest


def test_alter_cte_upsert_savepoint_via_psycopg(cluster):
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as conn:
        cur = conn.cursor()
        cur.execute("CREATE TABLE sqlb_acc (aid int NOT NULL, bal int, filler char(20))")
        cur.execute("INSERT INTO sqlb_acc VALUES (1, 10, null), (2, 20, null), (3, 30, null)")
        cur.execute("ALTER TABLE sqlb_acc ADD PRIMARY KEY (aid)")
        cur.execute("ALTER TABLE sqlb_acc ADD COLUMN note text DEFAULT 'n/a'")
        cur.execute("SELECT aid, note FROM sqlb_acc WHERE aid = 2")
        assert cur.fetchall() == [(2, "n/a")]
        cur.execute("INSERT INTO sqlb_acc (aid, bal) VALUES (2, 5) ON CONFLICT (aid) "
                    "DO UPDATE SET bal = sqlb_acc.bal + excluded.bal RETURNING bal")
        assert cur.fetchall() == [(25,)]
        cur.execute("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
                    "SELECT sum(a.bal) FROM sqlb_acc a JOIN r ON a.aid = r.n")
        assert cur.fetchone()[0] == 65
        with pytest.raises(psycopg.errors.UniqueViolation):
            cur.execute("INSERT INTO sqlb_acc (aid) VALUES (1)")
        cur.execute("CREATE VIEW sqlb_rich AS SELECT aid FROM sqlb_acc WHERE bal > 20")
        cur.execute("SELECT aid FROM sqlb_rich ORDER BY aid")
        assert cur.fetchall() == [(2,), (3,)]
    with psycopg.connect(cluster.writer_dsn) as conn:
        cur = conn.cursor()
        cur.execute("UPDATE sqlb_acc SET bal = 0 WHERE aid = 1")
        cur.execute("SAVEPOINT s1")
        cur.execute("DELETE FROM sqlb_acc")
        cur.execute("ROLLBACK TO SAVEPOINT s1")
        conn.commit()
        cur.execute("SELECT count(*), sum(bal) FROM sqlb_acc")
        assert cur.fetchone() == (3, 55)
        conn.commit()
    with psycopg.connect(cluster.writer_dsn) as c1, psycopg.connect(cluster.writer_dsn) as c2:
        c1.execute("SELECT * FROM sqlb_acc WHERE aid = 3 FOR UPDATE")
        with pytest.raises(psycopg.errors.LockNotAvailable):
            c2.execute("SELECT * FROM sqlb_acc WHERE aid = 3 FOR UPDATE NOWAIT")
        c2.rollback()
        c1.rollback()
