"""The conformance runner counts passes and failures right (against the shared cluster).

Tiny inputs made here: a sqllogictest file with 5 records (one with a deliberately wrong
expected result, one skipped) and a pg_regress dir with a setup file, one test whose
expected output is right and one whose last statement's expected output is wrong.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

SLT = """\
hash-threshold 8

statement ok
CREATE TABLE slt_cr_t1 (a int, b text)

statement ok
INSERT INTO slt_cr_t1 VALUES (1, 'x'), (2, ''), (3, NULL)

query IT rowsort
SELECT a, b FROM slt_cr_t1
----
1
x
2
(empty)
3
NULL

# deliberately wrong: the sum is 6
query I nosort
SELECT sum(a) FROM slt_cr_t1
----
7

statement error
SELECT * FROM slt_cr_nosuch

skipif postgresql
query I nosort
SELECT 1
----
2
"""

SETUP = "CREATE TABLE reg_cr_t (n int);\nINSERT INTO reg_cr_t VALUES (1), (2);\n"
GOOD_SQL = "-- a good one\nSELECT n FROM reg_cr_t ORDER BY n;\nSELECT 1 / 0;\n"
GOOD_OUT = """\
-- a good one
SELECT n FROM reg_cr_t ORDER BY n;
 n 
---
 1
 2
(2 rows)

SELECT 1 / 0;
ERROR:  division by zero
"""
BAD_SQL = "SELECT count(*) FROM reg_cr_t;\nSELECT 2 + 2 AS four;\n"
BAD_OUT = """\
SELECT count(*) FROM reg_cr_t;
 count 
-------
     2
(1 row)

SELECT 2 + 2 AS four;
 four 
------
    5
(1 row)

"""


def run(args: list[str]) -> str:
    proc = subprocess.run([sys.executable, "-m", "conformance", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=50)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.timeout(60)
def test_sqllogictest_counts(cluster, tmp_path: Path) -> None:
    test = tmp_path / "t.test"
    test.write_text(SLT)
    out = run(["sqllogictest", str(test), "--dsn", cluster.writer_dsn,
               "--json", str(tmp_path / "r.json")])
    assert out.strip().splitlines()[-1] == "4 passed, 1 failed"
    report = json.loads((tmp_path / "r.json").read_text())
    (f,) = report["files"]
    assert (f["passed"], f["failed"], f["skipped"]) == (4, 1, 1)
    assert f["failures"][0]["line"] == SLT.splitlines().index("query I nosort") + 1
    assert f["failures"][0]["got"] == "6"


@pytest.mark.timeout(60)
def test_pg_regress_counts(cluster, tmp_path: Path) -> None:
    root = tmp_path / "reg"
    (root / "sql").mkdir(parents=True)
    (root / "expected").mkdir()
    (root / "sql" / "test_setup.sql").write_text(SETUP)  # no expected file: setup only
    (root / "sql" / "good.sql").write_text(GOOD_SQL)
    (root / "expected" / "good.out").write_text(GOOD_OUT)
    (root / "sql" / "bad.sql").write_text(BAD_SQL)
    (root / "expected" / "bad.out").write_text(BAD_OUT)
    (root / "expected" / "bad_1.out").write_text(BAD_OUT.replace("     2", "     3"))
    out = run(["pg-regress", str(root), "--dsn", cluster.writer_dsn,
               "--json", str(tmp_path / "r.json")])
    assert out.strip().splitlines()[-1] == "3 passed, 1 failed"
    files = {f["file"]: f for f in json.loads((tmp_path / "r.json").read_text())["files"]}
    assert (files["good"]["passed"], files["good"]["failed"], files["good"]["exact"]) == (2, 0, True)
    assert (files["bad"]["passed"], files["bad"]["failed"], files["bad"]["exact"]) == (1, 1, False)
    assert files["bad"]["failures"][0]["line"] == 2


HANG_SQL = "SELECT count(*) FROM generate_series(1, 200000000);\nSELECT 3 AS three;\n"
HANG_OUT = """\
SELECT count(*) FROM generate_series(1, 200000000);
   count   
-----------
 200000000
(1 row)

SELECT 3 AS three;
 three 
-------
     3
(1 row)

"""
LATER_SQL = "SELECT 4 AS four;\n"
LATER_OUT = "SELECT 4 AS four;\n four \n------\n    4\n(1 row)\n\n"


@pytest.mark.timeout(60)
def test_pg_regress_cancels_a_hung_statement_and_goes_on(cluster, tmp_path: Path) -> None:
    """A statement that prints nothing for --timeout s is canceled (psql sends the
    CancelRequest); the rest of its file and the next file still run on the same server."""
    root = tmp_path / "reg"
    (root / "sql").mkdir(parents=True)
    (root / "expected").mkdir()
    (root / "sql" / "test_setup.sql").write_text("SELECT 1;\n")
    (root / "sql" / "hang.sql").write_text(HANG_SQL)
    (root / "expected" / "hang.out").write_text(HANG_OUT)
    (root / "sql" / "later.sql").write_text(LATER_SQL)
    (root / "expected" / "later.out").write_text(LATER_OUT)
    out = run(["pg-regress", str(root), "--dsn", cluster.writer_dsn, "--timeout", "2",
               "--json", str(tmp_path / "r.json")])
    files = {f["file"]: f for f in json.loads((tmp_path / "r.json").read_text())["files"]}
    hang = files["hang"]
    assert (hang["passed"], hang["failed"]) == (1, 1), out
    assert "canceled" in hang["error"] and "killed" not in hang["error"]
    assert "canceling statement due to user request" in hang["failures"][0]["got"]
    assert hang["seconds"] < 15
    assert (files["later"]["passed"], files["later"]["failed"]) == (1, 0)
