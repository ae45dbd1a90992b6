"""COPY through real clients: psql (COPY and \\copy), psycopg's copy API.

Checks the text and csv formats byte for byte against what PostgreSQL produces, the
error context PostgreSQL reports (``CONTEXT:  COPY t, line 3, column x: "abc"``), that a
failed COPY leaves nothing behind, and that a COPY inside a transaction block is part of it.
"""

from __future__ import annotations

import subprocess
import time

import psycopg
import pytest

from cluster import env_without_pg


def psql(dsn: str, *args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", dsn, *args],
                          input=stdin, capture_output=True, text=True, timeout=60, env=env_without_pg(),
                          check=check)


def copy_out(conn: psycopg.Connection, sql: str) -> bytes:
    with conn.cursor() as cur, cur.copy(sql) as cp:
        return b"".join(bytes(b) for b in cp)


def copy_in(conn: psycopg.Connection, sql: str, data: bytes) -> int:
    with conn.cursor() as cur:
        with cur.copy(sql) as cp:
            cp.write(data)
        return cur.rowcount


def test_text_format_round_trip_with_escapes_and_nulls(cluster):
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE cp_text (id int PRIMARY KEY, s text, n numeric(6,2), b boolean)")
        data = b"1\thello\t1.5\tt\n2\t\\N\t2\tf\n3\ttab\\there\\\\back\\nline\t\\N\t\\N\n4\t\\x41\\101\t-0.25\ton\n"
        assert copy_in(conn, "COPY cp_text FROM STDIN", data) == 4
        rows = conn.execute("SELECT id, s, n::text, b FROM cp_text ORDER BY id").fetchall()
        assert rows == [(1, "hello", "1.50", True), (2, None, "2.00", False),
                        (3, "tab\there\\back\nline", None, None), (4, "AA", "-0.25", True)]
        out = copy_out(conn, "COPY cp_text TO STDOUT")
        assert out == (b"1\thello\t1.50\tt\n2\t\\N\t2.00\tf\n3\ttab\\there\\\\back\\nline\t\\N\t\\N\n"
                       b"4\tAA\t-0.25\tt\n")
        # column list, other delimiter and NULL string
        out = copy_out(conn, "COPY cp_text (s, id) TO STDOUT WITH (DELIMITER '|', NULL 'nil')")
        assert out.splitlines()[:2] == [b"hello|1", b"nil|2"]


def test_csv_header_quotes_null_and_force_quote(cluster):
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE cp_csv (id int, s text, t text DEFAULT 'dflt')")
        data = b'id,s\n1,"a,b"\n2,"say ""hi"""\n3,\n4,""\n5,"two\nlines"\n'
        assert copy_in(conn, "COPY cp_csv (id, s) FROM STDIN WITH (FORMAT csv, HEADER true)", data) == 5
        rows = conn.execute("SELECT id, s, t FROM cp_csv ORDER BY id").fetchall()
        assert rows == [(1, "a,b", "dflt"), (2, 'say "hi"', "dflt"), (3, None, "dflt"), (4, "", "dflt"),
                        (5, "two\nlines", "dflt")]
        out = copy_out(conn, "COPY cp_csv (id, s) TO STDOUT WITH (FORMAT csv, HEADER)")
        assert out == b'id,s\n1,"a,b"\n2,"say ""hi"""\n3,\n4,""\n5,"two\nlines"\n'
        out = copy_out(conn, "COPY (SELECT id, s FROM cp_csv WHERE id < 3 ORDER BY id) TO STDOUT "
                             "WITH (FORMAT csv, FORCE_QUOTE *, DELIMITER ';')")
        assert out == b'"1";"a,b"\n"2";"say ""hi"""\n'
        # pre-9.0 option syntax, as psql users still write it
        out = copy_out(conn, "COPY cp_csv (id) TO STDOUT CSV HEADER")
        assert out.splitlines()[0] == b"id" and len(out.splitlines()) == 6


def test_bad_value_reports_line_and_column_and_loads_nothing(cluster):
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE cp_err (id int PRIMARY KEY, x int)")
        with pytest.raises(psycopg.errors.InvalidTextRepresentation) as ei:
            copy_in(conn, "COPY cp_err FROM STDIN", b"1\t10\n2\t20\n3\tabc\n4\t40\n")
        diag = ei.value.diag
        assert diag.context.strip() == 'COPY cp_err, line 3, column x: "abc"'
        assert 'invalid input syntax for type integer: "abc"' in diag.message_primary
        assert conn.execute("SELECT count(*) FROM cp_err").fetchone() == (0,)
        with pytest.raises(psycopg.errors.BadCopyFileFormat) as ei:
            copy_in(conn, "COPY cp_err FROM STDIN", b"1\t10\n2\n")
        assert ei.value.diag.context.strip() == 'COPY cp_err, line 2: "2"'
        assert 'missing data for column "x"' in ei.value.diag.message_primary
        with pytest.raises(psycopg.errors.UniqueViolation) as ei:
            copy_in(conn, "COPY cp_err FROM STDIN", b"1\t10\n1\t11\n")
        assert ei.value.diag.context.strip() == "COPY cp_err, line 2"
        # the connection is still usable and nothing was loaded
        assert copy_in(conn, "COPY cp_err FROM STDIN", b"7\t70\n") == 1
        assert conn.execute("SELECT id, x FROM cp_err").fetchall() == [(7, 70)]


def test_client_abort_sends_copyfail_and_rolls_back(cluster):
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE cp_fail (id int)")
        with pytest.raises(ZeroDivisionError):
            with conn.cursor() as cur, cur.copy("COPY cp_fail FROM STDIN") as cp:
                cp.write(b"1\n2\n")
                1 / 0
        assert conn.execute("SELECT count(*) FROM cp_fail").fetchone() == (0,)


def test_copy_inside_a_transaction_block_is_part_of_it(cluster):
    with psycopg.connect(cluster.writer_dsn) as conn:  # psycopg opens a transaction block
        conn.execute("CREATE TABLE cp_tx (id int)")
        conn.commit()
        copy_in(conn, "COPY cp_tx FROM STDIN", b"1\n2\n3\n")
        assert conn.execute("SELECT count(*) FROM cp_tx").fetchone() == (3,)
        with psycopg.connect(cluster.writer_dsn, autocommit=True) as other:
            assert other.execute("SELECT count(*) FROM cp_tx").fetchone() == (0,)
        conn.rollback()
        assert conn.execute("SELECT count(*) FROM cp_tx").fetchone() == (0,)
        copy_in(conn, "COPY cp_tx FROM STDIN", b"4\n")
        conn.commit()
        with psycopg.connect(cluster.writer_dsn, autocommit=True) as other:
            assert other.execute("SELECT id FROM cp_tx").fetchall() == [(4,)]


def test_psql_copy_from_stdin_and_backslash_copy(cluster, tmp_path):
    dsn = cluster.writer_dsn
    psql(dsn, "-c", "CREATE TABLE cp_psql (id int, name text)")
    # inline data after COPY ... FROM STDIN in a script, ended by \.
    psql(dsn, "-f", "-", stdin="COPY cp_psql FROM STDIN;\n1\tone\n2\ttwo\n\\.\nSELECT 1;\n")
    src = tmp_path / "in.csv"
    src.write_text("3,three\n4,\"fo,ur\"\n")
    psql(dsn, "-c", f"\\copy cp_psql from '{src}' with (format csv)")
    dst = tmp_path / "out.txt"
    psql(dsn, "-c", f"\\copy (select * from cp_psql order by id) to '{dst}'")
    assert dst.read_text() == "1\tone\n2\ttwo\n3\tthree\n4\tfo,ur\n"
    bad = psql(dsn, "-c", "COPY cp_psql FROM STDIN", stdin="5\tfive\nsix\tsix\n", check=False)
    assert bad.returncode != 0
    assert 'CONTEXT:  COPY cp_psql, line 2, column id: "six"' in bad.stderr
    assert psql(dsn, "-c", "SELECT count(*) FROM cp_psql").stdout.strip() == "4"


def test_server_file_copy_needs_superuser(cluster, tmp_path):
    path = tmp_path / "srv.txt"
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE cp_file (id int, s text)")
        conn.execute("INSERT INTO cp_file VALUES (1, 'a'), (2, NULL)")
        assert conn.execute(f"COPY cp_file TO '{path}'").rowcount == 2
        assert path.read_text() == "1\ta\n2\t\\N\n"
        conn.execute(f"COPY cp_file FROM '{path}'")
        assert conn.execute("SELECT count(*) FROM cp_file").fetchone() == (4,)
        conn.execute("CREATE ROLE cp_alice LOGIN")  # a non-superuser (dropped again: psql's \du test shares the cluster)
    try:
        other = cluster.writer_dsn.replace("postgres@", "cp_alice@", 1)
        with psycopg.connect(other, autocommit=True) as conn:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"COPY cp_file FROM '{path}'")
    finally:
        with psycopg.connect(cluster.writer_dsn, autocommit=True) as conn:
            conn.execute("DROP ROLE cp_alice")


def test_bulk_load_rate(cluster):
    n = 50_000
    data = "".join(f"{i}\t{i % 97}\tname-{i}\n" for i in range(n)).encode()
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE cp_bulk (id int, g int, name text)")
        t = time.perf_counter()
        with conn.cursor() as cur, cur.copy("COPY cp_bulk FROM STDIN") as cp:
            for i in range(0, len(data), 65536):
                cp.write(data[i:i + 65536])
        elapsed = time.perf_counter() - t
        assert conn.execute("SELECT count(*), sum(g) FROM cp_bulk").fetchone() == (n, sum(i % 97 for i in range(n)))
    print(f"COPY {n} rows: {n / elapsed:,.0f} rows/s")
    assert elapsed < 10


def test_asyncpg_copy_with_quoted_identifiers(cluster):
    import asyncio
    import io

    import asyncpg

    async def go() -> tuple:
        conn = await asyncpg.connect(cluster.writer_dsn)
        try:
            await conn.execute('CREATE TABLE "Cp Quoted" (a int, "B" text)')
            tag = await conn.copy_to_table("Cp Quoted", source=io.BytesIO(b"1\tx\n2\ty\n"))
            buf = io.BytesIO()
            out_tag = await conn.copy_from_table("Cp Quoted", columns=["B"], output=buf, format="csv")
            return tag, out_tag, buf.getvalue()
        finally:
            await conn.close()

    assert asyncio.run(go()) == ("COPY 2", "COPY 2", b"x\ny\n")


@pytest.mark.timeout(300)
def test_writer_killed_during_a_big_copy_shows_all_or_none_of_it(make_cluster):
    """kill -9 of the writer while a 120,000-row COPY is reaching storage (its PUTS records
    are on a write quorum -- the writer's VCL is past its VDL -- but its COMMIT record is
    not): after the failover the new writer and the reader show either every row of the
    COPY or none, never part, and the table takes new rows."""
    import asyncio
    import threading

    from server.status import instance_state
    from storage.mtls import InternalTls

    c = make_cluster(readers=1)
    n = 120_000
    psql(c.writer_dsn, "-c", "CREATE TABLE big (id int PRIMARY KEY, v text)")
    psql(c.writer_dsn, "-c", "INSERT INTO big VALUES (0, 'before')")
    data = "".join(f"{i}\trow {i}\n" for i in range(1, n + 1))
    result: dict = {}

    def load() -> None:
        result["copy"] = subprocess.run(["psql", "-X", "-q", c.writer_dsn, "-c", "COPY big FROM STDIN"], input=data,
                                        capture_output=True, text=True, timeout=240, env=env_without_pg())

    t = threading.Thread(target=load)
    t.start()
    w = c.launcher.conf.instance("i1")
    mid_commit = False
    end = time.monotonic() + 200
    while t.is_alive() and time.monotonic() < end:
        st = asyncio.run(instance_state(c.launcher.conf.host, w.admin_port, 2.0, tls=InternalTls.load(c.data_dir)))
        if st is not None and st.vcl > st.vdl + 8:  # several PUTS records durable, no COMMIT yet
            mid_commit = True
            break
        time.sleep(0.01)
    c.kill("i1", 9)
    t.join()
    assert mid_commit, "the COPY finished before the writer could be killed in the middle of its commit"
    assert result["copy"].returncode != 0  # never acknowledged

    def count(dsn: str) -> str:
        return psql(dsn, "-c", "SELECT count(*), coalesce(sum(id), 0) FROM big").stdout.strip()

    end = time.monotonic() + 90
    while True:  # the manager promotes i2; the writer endpoint follows
        try:
            got = count(c.writer_dsn)
            break
        except subprocess.CalledProcessError:
            assert time.monotonic() < end, "no writer after the failover"
            time.sleep(0.5)
    print(f"after the failover: {got} (count, sum of ids)")
    assert got in ("1|0", f"{n + 1}|{n * (n + 1) // 2}"), f"part of the COPY is visible: {got}"
    psql(c.writer_dsn, "-c", "COPY big FROM STDIN", stdin=f"{n + 1}\tafter\n")
    assert count(c.writer_dsn).split("|")[0] == str(int(got.split("|")[0]) + 1)
    c.start()  # the old writer comes back as a reader; it must agree
    end = time.monotonic() + 60
    while count(c.launcher.instance_dsn("i1")) != count(c.writer_dsn):
        assert time.monotonic() < end, "the restarted i1 does not show what the writer shows"
        time.sleep(0.5)


def test_bulk_text_copy_values_nulls_and_error_lines(cluster):
    """Text COPY big enough to be parsed in chunks a column at a time: NULLs, an escape that
    looks like the NULL marker, blank-padded char(n), and a bad value deep inside reported
    on its own line and column."""
    n = 40_000
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE cp_chunks (a int, b bigint, c char(5), d text)")
        null = "\\N"
        lines = [f"{i}\t{i * 10_000_000_000}\t{'x' if i % 3 else ''}\t{null if i % 7 == 0 else f'v{i}'}"
                 for i in range(1, n + 1)]
        lines[100] = "101\t\\N\tab\ty\\N"  # "y\N" is "yN", not NULL
        assert copy_in(conn, "COPY cp_chunks FROM STDIN", ("\n".join(lines) + "\n").encode()) == n
        assert conn.execute("SELECT count(*), count(b), count(d), sum(a) FROM cp_chunks").fetchone() == \
            (n, n - 1, n - n // 7, n * (n + 1) // 2)
        assert conn.execute("SELECT b, c, d FROM cp_chunks WHERE a = 101").fetchone() == (None, "ab   ", "yN")
        assert conn.execute("SELECT c, d FROM cp_chunks WHERE a = 3").fetchone() == ("     ", "v3")
        lines[30_000] = "30001\t1\tx\t2147483648"  # fine: d is text
        lines[35_000] = "35001\t1\tx"  # missing a column
        with pytest.raises(psycopg.errors.BadCopyFileFormat) as e:
            copy_in(conn, "COPY cp_chunks FROM STDIN", ("\n".join(lines) + "\n").encode())
        assert "COPY cp_chunks, line 35001" in str(e.value.diag.context)
        lines[35_000] = "35001\t1\tx\tz"
        lines[36_000] = "2147483648\t1\tx\tz"
        with pytest.raises(psycopg.errors.NumericValueOutOfRange) as e:
            copy_in(conn, "COPY cp_chunks FROM STDIN", ("\n".join(lines) + "\n").encode())
        assert 'COPY cp_chunks, line 36001, column a: "2147483648"' in str(e.value.diag.context)
        assert conn.execute("SELECT count(*) FROM cp_chunks").fetchone() == (n,)


def test_copy_into_a_table_without_key_checks_not_null_in_line_order(cluster):
    """A keyless table's rows are numbered in bulk: a NULL in a NOT NULL column is still
    reported for the first such line (as PostgreSQL does), nothing of that COPY stays,
    and rows added later -- by INSERT or another COPY -- never reuse a number."""
    with psycopg.connect(cluster.writer_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE cp_keyless (a int NOT NULL, b text NOT NULL, c int)")
        with pytest.raises(psycopg.errors.NotNullViolation) as e:
            copy_in(conn, "COPY cp_keyless FROM STDIN", b"1\tx\t1\n2\tx\t\\N\n3\t\\N\t3\n\\N\ty\t4\n")
        assert e.value.diag.context.startswith("COPY cp_keyless, line 3")
        assert 'column "b"' in str(e.value)
        assert conn.execute("SELECT count(*) FROM cp_keyless").fetchone() == (0,)
        assert copy_in(conn, "COPY cp_keyless FROM STDIN", b"1\tx\t1\n2\ty\t\\N\n") == 2
        conn.execute("INSERT INTO cp_keyless VALUES (3, 'z', 3)")
        assert copy_in(conn, "COPY cp_keyless FROM STDIN", b"4\tw\t4\n5\tv\t5\n") == 2
        assert conn.execute("SELECT a, b, c FROM cp_keyless ORDER BY a").fetchall() == [
            (1, "x", 1), (2, "y", None), (3, "z", 3), (4, "w", 4), (5, "v", 5)]
        conn.execute("UPDATE cp_keyless SET c = 0 WHERE a = 3")
        assert conn.execute("SELECT count(*), sum(c) FROM cp_keyless").fetchone() == (5, 10)
