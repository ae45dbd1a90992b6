"""psycopg2 and pg8000 (native and DB-API) against the writer and reader endpoints.

Both are installed into the venv at test time when missing (``pip install psycopg2-binary
pg8000``); if that is impossible the tests skip with pip's message.
"""

from __future__ import annotations

import datetime as dt
import importlib
import io
import subprocess
import sys
import time
from decimal import Decimal
from urllib.parse import urlparse

import pytest


def pip_import(module: str, requirement: str):
    """Import ``module``, pip-installing ``requirement`` into this interpreter first if needed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        pass
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", requirement],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        pytest.skip(f"cannot install {requirement}: {(r.stderr or r.stdout).strip()[-500:]}")
    importlib.invalidate_caches()
    return importlib.import_module(module)


def until(fn, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            v = fn()
            if v:
                return v
        except Exception:  # noqa: BLE001 -- the reader may not have the table yet
            if time.monotonic() > deadline:
                raise
        if time.monotonic() > deadline:
            return v
        time.sleep(0.2)


# ------------------------------------------------------------------------------ psycopg2
def test_psycopg2_queries_params_executemany_copy_transactions(cluster):
    psycopg2 = pip_import("psycopg2", "psycopg2-binary>=2.9")
    conn = psycopg2.connect(cluster.writer_dsn)
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE drv_p2 (id int PRIMARY KEY, name text, amount numeric(6,2), d date, ts timestamptz)")
        cur.execute("INSERT INTO drv_p2 VALUES (%s, %s, %s, %s, %s)",
                    (1, "o'k; --", Decimal("2.5"), dt.date(2024, 5, 6), dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)))
        cur.executemany("INSERT INTO drv_p2 (id, name) VALUES (%(id)s, %(name)s)",
                        [{"id": i, "name": f"n{i}"} for i in range(2, 6)])
        conn.commit()
        cur.execute("SELECT id, name, amount, d, ts FROM drv_p2 WHERE id = %s", (1,))
        assert cur.fetchone() == (1, "o'k; --", Decimal("2.50"), dt.date(2024, 5, 6),
                                  dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc))
        assert [d.name for d in cur.description] == ["id", "name", "amount", "d", "ts"]
        cur.copy_expert("COPY drv_p2 (id, name) FROM STDIN WITH (FORMAT csv)", io.StringIO('10,"a,b"\n11,\n'))
        assert cur.rowcount == 2
        out = io.StringIO()
        cur.copy_expert("COPY (SELECT id, name FROM drv_p2 WHERE id >= 10 ORDER BY id) TO STDOUT", out)
        assert out.getvalue() == "10\ta,b\n11\t\\N\n"
        conn.rollback()  # the COPY was part of the (implicit) transaction
        cur.execute("SELECT count(*) FROM drv_p2")
        assert cur.fetchone() == (5,)
        with pytest.raises(psycopg2.errors.UniqueViolation):
            cur.execute("INSERT INTO drv_p2 (id) VALUES (1)")
        conn.rollback()
        conn.autocommit = True
        cur.execute("SELECT %s::text || %s", ("a", "b"))
        assert cur.fetchone() == ("ab",)
    finally:
        conn.close()
    rconn = psycopg2.connect(cluster.reader_dsn)
    try:
        rconn.autocommit = True
        rcur = rconn.cursor()

        def count():
            rcur.execute("SELECT count(*) FROM drv_p2")
            return rcur.fetchone()[0] == 5

        assert until(count)
        with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
            rcur.execute("DELETE FROM drv_p2")
    finally:
        rconn.close()


# ------------------------------------------------------------------------------ pg8000
def test_pg8000_native_and_dbapi(cluster):
    pip_import("pg8000", "pg8000>=1.30")
    import pg8000.dbapi
    import pg8000.native

    u = urlparse(cluster.writer_dsn)
    kw = dict(user=u.username, host=u.hostname, port=u.port, database=u.path[1:])
    con = pg8000.native.Connection(**kw)
    try:
        con.run("CREATE TABLE drv_p8 (id int PRIMARY KEY, v text, ts timestamp, n numeric(5,1), b boolean)")
        con.run("INSERT INTO drv_p8 VALUES (:id, :v, :ts, :n, :b)", id=1, v="x", ts=dt.datetime(2024, 1, 1, 1, 1, 1),
                n=Decimal("1.5"), b=True)
        assert con.run("SELECT v, ts, n, b FROM drv_p8 WHERE id = :id", id=1) == \
            [["x", dt.datetime(2024, 1, 1, 1, 1, 1), Decimal("1.5"), True]]
        assert [c["name"] for c in con.columns] == ["v", "ts", "n", "b"]
        ps = con.prepare("SELECT v FROM drv_p8 WHERE id = :id")
        assert ps.run(id=1) == [["x"]] and ps.run(id=99) == []
        ps.close()
        with pytest.raises(pg8000.native.DatabaseError) as ei:
            con.run("INSERT INTO drv_p8 (id) VALUES (1)")
        assert ei.value.args[0]["C"] == "23505"
    finally:
        con.close()
    conn = pg8000.dbapi.connect(**kw)
    try:
        cur = conn.cursor()
        cur.execute("INSERT INTO drv_p8 (id, v) VALUES (%s, %s)", (2, "y"))
        conn.commit()
        cur.executemany("INSERT INTO drv_p8 (id, v) VALUES (%s, %s)", [(3, "a"), (4, "b")])
        conn.rollback()
        cur.execute("SELECT id, v FROM drv_p8 ORDER BY id")
        assert [tuple(r) for r in cur.fetchall()] == [(1, "x"), (2, "y")]
    finally:
        conn.close()
    ru = urlparse(cluster.reader_dsn)
    rcon = pg8000.native.Connection(user=ru.username, host=ru.hostname, port=ru.port, database=ru.path[1:])
    try:
        assert until(lambda: rcon.run("SELECT count(*) FROM drv_p8") == [[2]])
        with pytest.raises(pg8000.native.DatabaseError) as ei:
            rcon.run("UPDATE drv_p8 SET v = 'z'")
        assert ei.value.args[0]["C"] == "25006"
    finally:
        rcon.close()
