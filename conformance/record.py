"""Record expected output for our own pg_regress-style cases against real PostgreSQL 15.

``record(DIR)`` starts a scratch PostgreSQL (conformance.servers.scratch_postgres), runs
every ``DIR/sql/*.sql`` the same way the runner does (same psql flags, environment,
``regression`` database, shared test_setup) and writes ``DIR/expected/<name>.out``.
Running the runner on DIR against that same server must then pass every file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from conformance import regress
from conformance.servers import scratch_postgres


def record(root: Path) -> list[Path]:
    root = root.resolve()
    (root / "expected").mkdir(exist_ok=True)
    written = []
    with scratch_postgres() as target, tempfile.TemporaryDirectory(prefix="pg-record-") as build:
        regress.make_builddir(Path(build))
        srcdir = root if (root / "data").is_dir() else regress.SHARED
        psql = regress.Psql(target, srcdir, Path(build), timeout=60.0)
        regress.setup_database(target)
        setup = root / "sql" / "test_setup.sql"
        if not setup.exists():
            psql.run(regress.SHARED / "sql" / "test_setup.sql")
        for name in regress.ordered_tests(root):
            output, problem = psql.run(root / "sql" / f"{name}.sql")
            if problem:
                raise RuntimeError(f"{name}: {problem}")
            if name == "test_setup":
                continue  # setup only: run, no expected file (the runner does the same)
            path = root / "expected" / f"{name}.out"
            path.write_text(output)
            written.append(path)
            print(f"recorded {path}")
    return written
