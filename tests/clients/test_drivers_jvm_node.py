"""PostgreSQL JDBC (Debian's libpostgresql-jdbc-java on the system OpenJDK) and node-postgres
(``pg`` from npm) against the writer and reader endpoints.

The programs live in tests/clients/java/ and tests/clients/node/.  The JDBC jar is
apt-installed when missing, ``pg`` is npm-installed once into .venv/node_clients (reused by
later runs); a client that cannot be installed skips with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

HERE = Path(__file__).parent
JDBC_JARS = (Path("/usr/share/java/postgresql.jar"),)
NODE_DIR = Path(sys.prefix) / "node_clients"


def jdbc_url(dsn: str) -> str:
    u = urlparse(dsn)
    return f"jdbc:postgresql://{u.hostname}:{u.port}{u.path}"


def jdbc_jar() -> Path:
    for jar in JDBC_JARS:
        if jar.exists():
            return jar
    if shutil.which("apt-get") is None:
        pytest.skip("PostgreSQL JDBC jar missing and no apt-get to install libpostgresql-jdbc-java")
    cmd = ["apt-get", "install", "-y", "-q", "libpostgresql-jdbc-java"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=300)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    for jar in JDBC_JARS:
        if jar.exists():
            return jar
    pytest.skip(f"cannot install libpostgresql-jdbc-java: {(r.stderr or r.stdout).strip()[-400:]}")


def run_java(jar: Path, classes: Path, *args: str) -> list[str]:
    r = subprocess.run(["java", "-cp", f"{jar}:{classes}", "JdbcCheck", *args],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"JdbcCheck failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout.splitlines()


# DatabaseMetaData as PostgreSQL 15 answers it for JdbcCheck's two tables (recorded from a
# scratch PostgreSQL 15 with the same driver; {t} is the table name)
JDBC_METADATA = [
    "md getTables: {t},TABLE; {t}_child,TABLE",
    "md getColumns: {t},id,int4,4,10,0,0,null,NO,1; {t},name,varchar,12,20,0,0,null,NO,2; "
    "{t},amount,numeric,2,8,2,1,null,NO,3; {t},ts,timestamp,93,29,6,1,null,NO,4; "
    "{t}_child,id,serial,4,10,0,0,nextval('{t}_child_id_seq'::regclass),YES,1; "
    "{t}_child,parent_id,int4,4,10,0,0,null,NO,2; {t}_child,code,bpchar,1,4,0,1,null,NO,3; "
    "{t}_child,note,text,12,2147483647,0,1,'n/a'::text,NO,4",
    "md getPrimaryKeys: id,1,{t}_child_pkey",
    "md getIndexInfo: {t}_child_code_key,f,1,code,A,3; {t}_child_pkey,f,1,id,A,3; "
    "{t}_child_note_idx,t,1,note,A,3; {t}_child_note_idx,t,2,parent_id,A,3",
    "md getIndexInfoUnique: {t}_child_code_key; {t}_child_pkey",
    "md getImportedKeys: {t},id,{t}_child,parent_id,1,{t}_child_parent_id_fkey,{t}_pkey,3,3,7",
    "md getExportedKeys: {t}_child,parent_id,{t}_child_parent_id_fkey",
    "md getCrossReference: {t}_child_parent_id_fkey",
    "md getBestRowIdentifier: id,int4,4",
    "md getSchemas: information_schema; pg_catalog; public",
    "md ResultSetMetaData: id,{t}_child,serial,0,true; parent_id,{t}_child,int4,0,false; "
    "code,{t}_child,bpchar,1,false; note,{t}_child,text,1,false",
]


def test_jdbc(cluster, tmp_path):
    if shutil.which("javac") is None or shutil.which("java") is None:
        pytest.skip("no java/javac on PATH")
    jar = jdbc_jar()
    r = subprocess.run(["javac", "-cp", str(jar), "-d", str(tmp_path), str(HERE / "java" / "JdbcCheck.java")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = run_java(jar, tmp_path, jdbc_url(cluster.writer_dsn), "drv_jdbc")
    assert lines[-1] == "ALL OK"
    for want in ("ok product name", "ok select row 6", "ok transactions", "ok getTables"):
        assert want in lines, lines
    assert not [ln for ln in lines if ln.startswith("FAIL")], lines
    got = [ln for ln in lines if ln.startswith("md ")]
    assert got == [ln.format(t="drv_jdbc") for ln in JDBC_METADATA], "\n".join(got)
    # reader endpoint: a read-only connection; the same program fails at CREATE TABLE with 25006
    r = subprocess.run(["java", "-cp", f"{jar}:{tmp_path}", "JdbcCheck", jdbc_url(cluster.reader_dsn), "drv_jdbc_r"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "read-only transaction" in r.stderr, r.stderr


def npm_pg() -> Path:
    mod = NODE_DIR / "node_modules" / "pg"
    if (mod / "package.json").exists():
        return NODE_DIR / "node_modules"
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("node/npm not on PATH")
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "pg"], cwd=NODE_DIR,
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0 or not (mod / "package.json").exists():
        pytest.skip(f"cannot npm install pg: {(r.stderr or r.stdout).strip()[-400:]}")
    return NODE_DIR / "node_modules"


def test_node_postgres(cluster):
    modules = npm_pg()
    env = dict(os.environ, NODE_PATH=str(modules))
    for k in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD"):
        env.pop(k, None)
    script = str(HERE / "node" / "pg_check.js")
    r = subprocess.run(["node", script, cluster.writer_dsn, "drv_node"], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    assert r.stdout.splitlines() == ["ok query/params", "ok transaction", "ok error code", "ok metadata", "ok pool",
                                     "ALL OK"]
    r = subprocess.run(["node", script, cluster.reader_dsn, "drv_node_r"], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 1 and "25006" in r.stderr, r.stderr
