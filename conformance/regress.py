"""pg_regress-style runs: each ``sql/T.sql`` through ``psql -X -a -q`` against database
``regression``, compared with ``expected/T.out`` or any ``expected/T_N.out``.

Comparison is like ``diff -w`` (whitespace inside lines is ignored), at two levels:

* per file: the whole output equals one of the expected files;
* per statement: the script is cut into *units* -- the input lines of one statement (with
  the comment/blank lines before it; several statements on one line form one unit; COPY ...
  FROM stdin data lines belong to their COPY, psql does not echo them).  Because ``-a``
  echoes every input line before psql executes it, a unit's *block* in an output file runs
  from its echoed lines up to where the next unit's echoed lines begin.  A unit passes when
  its block equals its block in one of the expected files.

The environment, psql variables and database settings are the ones pg_regress uses (see
/work/shared/conformance/pg_regress/SOURCE.md).  ``test_setup.sql`` and ``data/`` come from
DIR when present, else from the shared set; a ``test_setup.sql`` without an expected file is
run as setup only.  Files run in the order of ``schedule`` (next to this module: the order
the upstream schedule implies), then the rest alphabetically.

psql runs with line-buffered output (``stdbuf -oL``); when it prints nothing for ``timeout``
seconds the statement is taken to hang and psql gets SIGINT, which makes it send a
CancelRequest (the statement fails with 57014) and end the script; a new psql resumes the
script after that unit.  If psql still prints nothing ``CANCEL_GRACE`` seconds after the
SIGINT it is killed and the units not reached fail; a server that then does not answer is
stopped and restarted before the next file (``Target``).
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from conformance.results import FileResult, SuiteResult, normalise_cause
from conformance.servers import Target

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared" / "conformance" / "pg_regress"
SCHEDULE = HERE / "schedule"
DB = "regression"
CANCEL_GRACE = 5.0  # seconds a timed-out statement gets to stop after psql's cancel
_DOLLAR = re.compile(r"\$([A-Za-z_]\w*)?\$")
_COPY_START = re.compile(r"(?:^|;)\s*copy\b", re.I | re.M)
_FROM_STDIN = re.compile(r"\bfrom\s+stdin\b", re.I)
_CREATED = re.compile(r"\bcreate\s+(?:or\s+replace\s+)?(?:temp\w*\s+|unlogged\s+|materialized\s+)?"
                      r"(table|view|sequence)\s+(?:if\s+not\s+exists\s+)?([A-Za-z_][\w.]*)", re.I)


@dataclass
class Unit:
    first_line: int  # 1-based line in the .sql file
    echo: list[str] = field(default_factory=list)  # input lines psql echoes
    text: str = ""  # the statement text (for reports)


def split_units(sql: str) -> list[Unit]:
    """Cut a psql script into units (see module docstring).  The lexer knows quotes, E''
    strings, quoted identifiers, dollar quotes, nested block comments, -- comments,
    parentheses and backslash meta-commands -- enough to find where psql sends a statement."""
    units: list[Unit] = []
    cur = Unit(1)
    pending = False  # statement text seen but not yet terminated
    state: str | None = None  # None, "'", "E", '"', "/*", or a dollar tag
    depth = comment_depth = 0
    copy_data = False
    stmt_text: list[str] = []
    lines = sql.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, 1):
        if copy_data:  # COPY FROM stdin data: not echoed, ends with \.
            if line.strip() == "\\.":
                copy_data = False
                units.append(cur)
                cur = Unit(number + 1)
            continue
        if line or state is not None:  # psql skips (does not echo) empty lines outside quotes
            cur.echo.append(line)
        terminated = False
        i, n = 0, len(line)
        if state is None and not pending and line.lstrip().startswith("\\"):
            terminated = True  # a meta-command line
            stmt_text.append(line)
            i = n
        while i < n:
            ch = line[i]
            if state is None:
                if ch == "-" and line.startswith("--", i):
                    break
                if ch == "/" and line.startswith("/*", i):
                    state, comment_depth = "/*", 1
                    i += 2
                    continue
                if not ch.isspace():
                    pending = True
                if ch == "'":
                    state = "E" if i > 0 and line[i - 1] in "eE" and (i < 2 or not line[i - 2].isalnum()) else "'"
                elif ch == '"':
                    state = '"'
                elif ch == "$":
                    m = _DOLLAR.match(line, i)
                    if m and (i == 0 or not (line[i - 1].isalnum() or line[i - 1] == "_")):
                        state = m.group(0)
                        i = m.end()
                        continue
                elif ch == "(":
                    depth += 1
                elif ch == ")":
                    depth = max(0, depth - 1)
                elif ch == ";" and depth == 0:
                    pending = False
                    terminated = True
                elif ch == "\\":  # meta-command after a query (e.g. \gset): sends it
                    pending = False
                    terminated = True
                    break
            elif state == "/*":
                if line.startswith("*/", i):
                    comment_depth -= 1
                    i += 2
                    if comment_depth == 0:
                        state = None
                    continue
                if line.startswith("/*", i):
                    comment_depth += 1
                    i += 2
                    continue
            elif state == "'":
                if ch == "'":
                    state = None
            elif state == "E":
                if ch == "\\":
                    i += 2
                    continue
                if ch == "'":
                    state = None
            elif state == '"':
                if ch == '"':
                    state = None
            elif line.startswith(state, i):  # dollar tag
                i += len(state)
                state = None
                continue
            i += 1
        if state is None and not line.lstrip().startswith("\\"):
            stmt_text.append(line)
        if terminated and not pending and state is None:
            cur.text = "\n".join(s for s in stmt_text if s.strip() and not s.lstrip().startswith("--"))
            stmt_text = []
            if copies_from_stdin(cur.text):
                copy_data = True
                continue
            units.append(cur)
            cur = Unit(number + 1)
    if cur.echo and any(x.strip() for x in cur.echo):
        cur.text = cur.text or "\n".join(s for s in stmt_text if s.strip())
        units.append(cur)
    return units


def copies_from_stdin(text: str) -> bool:
    """Whether the last statement of a unit is COPY ... FROM stdin."""
    starts = [m.end() for m in _COPY_START.finditer(text)]
    return bool(starts) and _FROM_STDIN.search(text, starts[-1]) is not None


def read(path: Path) -> str:
    """A file's text with its line ends as they are (a bare CR is data, not a newline)."""
    return path.read_bytes().decode("utf-8", "replace")


def squash(line: str) -> str:
    """A line as ``diff -w`` compares it."""
    return "".join(line.split())


def blocks(output: str, units: list[Unit]) -> list[list[str] | None]:
    """Each unit's block of ``output`` (None when its echo was not found)."""
    out = [squash(x) for x in output.split("\n")]
    raw = output.split("\n")
    starts: list[int | None] = []
    pos = 0
    for u in units:
        echo = [squash(x) for x in u.echo]
        found = None
        k = len(echo)
        for p in range(pos, len(out) - k + 1):
            if out[p:p + k] == echo:
                found = p
                break
        starts.append(found)
        if found is not None:
            pos = found + k
    result: list[list[str] | None] = []
    for idx, start in enumerate(starts):
        if start is None:
            result.append(None)
            continue
        end = next((s for s in starts[idx + 1:] if s is not None), len(raw))
        result.append(raw[start:end])
    return result


def same(a: list[str] | None, b: list[str] | None) -> bool:
    if a is None or b is None:
        return False
    strip = lambda xs: [squash(x) for x in xs]  # noqa: E731
    return strip(a) == strip(b)


def expected_files(root: Path, name: str) -> list[Path]:
    exp = root / "expected"
    files = [exp / f"{name}.out"] if (exp / f"{name}.out").exists() else []
    return files + sorted(exp.glob(f"{name}_[0-9]*.out"), key=lambda p: p.name)


def ordered_tests(root: Path) -> list[str]:
    names = {p.stem for p in (root / "sql").glob("*.sql")}
    listed = [w for line in SCHEDULE.read_text().splitlines() if not line.startswith("#")
              for w in line.split()] if SCHEDULE.exists() else []
    order = [n for n in dict.fromkeys(listed) if n in names]
    return order + sorted(names - set(order))


class Psql:
    """Runs scripts through psql the way pg_regress does."""

    def __init__(self, target: Target, srcdir: Path, builddir: Path, timeout: float) -> None:
        self.target, self.timeout, self.builddir = target, timeout, builddir
        self.killed = False  # the last run's psql had to be killed (the cancel did not help)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        self.env.update(PGTZ="PST8PDT", PGDATESTYLE="Postgres, MDY",
                        PGOPTIONS="-c intervalstyle=postgres_verbose", LC_MESSAGES="C",
                        PG_ABS_SRCDIR=str(srcdir), PG_ABS_BUILDDIR=str(builddir),
                        PG_LIBDIR=str(builddir), PG_DLSUFFIX=".so")
        self.dsn = target.with_db(DB)

    def run(self, script: Path) -> tuple[str, str | None]:
        """(output, problem) -- problem is set when a statement timed out.

        A timed-out statement is canceled through psql (SIGINT: psql sends a
        CancelRequest, then ends the script), and the script is resumed by a new psql
        from the unit after the canceled one (session state such as SET or an open
        transaction is lost there).  If the cancel does not stop it, psql is killed and
        the rest of the script is not run."""
        output, status = self._once(script)
        problem = None
        self.killed = False
        sql = read(script)
        units: list[Unit] | None = None
        while status == "canceled":
            problem = f"statement timed out (no output for {self.timeout:.0f} s): canceled"
            units = units if units is not None else split_units(sql)
            found = [i for i, b in enumerate(blocks(output, units)) if b is not None]
            nxt = found[-1] + 1 if found else len(units)
            if nxt >= len(units):
                break
            rest = Path(self.builddir) / f"{script.stem}.rest.sql"
            rest.write_text("\n".join(sql.split("\n")[units[nxt].first_line - 1:]), encoding="utf-8")
            more, status = self._once(rest)
            output += more
        if status == "killed":
            self.killed = True
            problem = (f"statement timed out (no output for {self.timeout:.0f} s) and the cancel "
                       f"did not stop it within {CANCEL_GRACE:.0f} s: psql killed")
        return output, problem

    def _once(self, script: Path) -> tuple[str, str | None]:
        """One psql over ``script``: (output, None | "canceled" | "killed")."""
        cmd = ["psql", "-X", "-a", "-q", "-d", self.dsn, "-v", "HIDE_TABLEAM=on",
               "-v", "HIDE_TOAST_COMPRESSION=on"]
        if shutil.which("stdbuf"):
            cmd = ["stdbuf", "-oL", "-eL", *cmd]
        with script.open("rb") as stdin:
            proc = subprocess.Popen(cmd, stdin=stdin, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, env=self.env, start_new_session=True)
        assert proc.stdout is not None
        chunks: list[bytes] = []
        status = None
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        fd = proc.stdout.fileno()
        while True:
            if not sel.select(self.timeout if status is None else CANCEL_GRACE):
                if status is None:
                    # psql answers SIGINT by sending a CancelRequest for the running statement
                    status = "canceled"
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(proc.pid, signal.SIGINT)
                    continue
                status = "killed"
                os.killpg(proc.pid, signal.SIGKILL)
                break
            data = os.read(fd, 65536)
            if not data:
                break
            chunks.append(data)
        sel.close()
        proc.stdout.close()
        proc.wait()
        return b"".join(chunks).decode("utf-8", "replace"), status


def make_builddir(build: Path) -> None:
    """PG_ABS_BUILDDIR with its results/ folder, writable by a server running as another
    OS user (copy.sql has the server write and read files there)."""
    (build / "results").mkdir()
    for d in (build, build / "results"):
        d.chmod(0o777)


def setup_database(target: Target) -> None:
    """Create ``regression`` afresh (when possible) with pg_regress's database settings, as
    pg_regress does: dropped first, so nothing of an earlier run is left."""
    with psycopg.connect(target.dsn, autocommit=True, connect_timeout=10) as conn:
        try:
            conn.execute(f"DROP DATABASE IF EXISTS {DB}")
        except psycopg.Error:
            pass  # in use (or DROP DATABASE unsupported): drop_created empties it instead
        try:
            conn.execute(f"CREATE DATABASE {DB} TEMPLATE=template0")
        except psycopg.Error:
            pass  # exists already (or CREATE DATABASE unsupported: the name may still work)
        for setting in ("lc_messages TO 'C'", "lc_monetary TO 'C'", "lc_numeric TO 'C'",
                        "lc_time TO 'C'", "bytea_output TO 'hex'",
                        "timezone_abbreviations TO 'Default'"):
            try:
                conn.execute(f"ALTER DATABASE {DB} SET {setting}")
            except psycopg.Error:
                pass


def drop_created(target: Target, scripts: list[Path]) -> None:
    """Drop every table/view/sequence the scripts create, so a run starts fresh even on a
    server where ``regression`` could not be dropped and recreated."""
    names: dict[tuple[str, str], None] = {}
    for s in scripts:
        for m in _CREATED.finditer(s.read_text(errors="replace")):
            names[(m.group(1).lower(), m.group(2).lower())] = None
    try:
        conn = psycopg.connect(target.with_db(DB), autocommit=True, connect_timeout=10)
    except psycopg.Error:
        return
    with conn:
        for kind, name in reversed(list(names)):
            for sql in (f"DROP {kind.upper()} IF EXISTS {name} CASCADE",
                        f"DROP {kind.upper()} IF EXISTS {name}"):
                try:
                    conn.execute(sql)
                    break
                except psycopg.OperationalError:
                    return
                except psycopg.Error:
                    continue


def compare(result: FileResult, sql_text: str, output: str, expected: list[str]) -> None:
    units = split_units(sql_text)
    got = blocks(output, units)
    wanted = [blocks(e, units) for e in expected]
    result.exact = any(squash_all(output) == squash_all(e) for e in expected)
    for idx, unit in enumerate(units):
        if wanted and all(w[idx] is None for w in wanted):
            continue  # not echoed even in the expected output (e.g. under \set ECHO none)
        if any(same(got[idx], w[idx]) for w in wanted):
            result.passed += 1
            continue
        mine = got[idx]
        exp = next((w[idx] for w in wanted if w[idx] is not None), None)
        result.fail(unit.first_line, unit.text, cause_of(mine, exp),
                    "\n".join(exp or []), "\n".join(mine or ["(not reached)"]))


def squash_all(text: str) -> list[str]:
    lines = [squash(x) for x in text.split("\n")]
    while lines and lines[-1] == "":
        lines.pop()
    return lines


def cause_of(got: list[str] | None, expected: list[str] | None) -> str:
    """The failure's group key: the first error line we printed that was not expected,
    else a generic reason."""
    if got is None:
        return "statement not reached"
    exp = set(expected or [])
    for line in got:
        if line.startswith(("ERROR:", "psql:", "FATAL:")) and line not in exp:
            return line
    if any(line.startswith("ERROR:") for line in exp) and not any(x.startswith("ERROR:") for x in got):
        return "expected an error, got none"
    for prefix in ("LINE ", "DETAIL:", "HINT:", "NOTICE:", "WARNING:", "CONTEXT:"):
        if any(x.startswith(prefix) for x in exp) != any(x.startswith(prefix) for x in got):
            return f"error report differs in its {prefix.strip(': ')} line(s)"
    if any(x.startswith("ERROR:") for x in got):
        return "same error, other text differs"
    return "result differs"


def run_suite(root: Path, target: Target, timeout: float = 10.0, progress: bool = True,
              shared: Path = SHARED) -> SuiteResult:
    root = root.resolve()
    suite = SuiteResult(suite="pg_regress", dsn=target.dsn)
    started = time.monotonic()
    srcdir = root if (root / "data").is_dir() else shared
    setup = root / "sql" / "test_setup.sql"
    if not setup.exists():
        setup = shared / "sql" / "test_setup.sql"
    tests = [t for t in ordered_tests(root) if expected_files(root, t)]
    scripts = [setup] + [root / "sql" / f"{t}.sql" for t in tests]
    with tempfile.TemporaryDirectory(prefix="pg-regress-") as build:
        make_builddir(Path(build))
        psql = Psql(target, srcdir, Path(build), timeout)
        target.ensure_alive()
        if target.alive() is None:  # else every file below reports the server as down
            setup_database(target)
            drop_created(target, scripts)
            if "test_setup" not in tests:
                psql.run(setup)
        for name in tests:
            suite.files.append(run_one(psql, root, name, target))
            fr = suite.files[-1]
            if progress:
                print(f"  {name}: {fr.passed} passed, {fr.failed} failed"
                      f"{' (exact)' if fr.exact else ''} ({fr.seconds:.1f} s)"
                      f"{' -- ' + fr.error if fr.error else ''}", flush=True)
        drop_created(target, scripts)
    suite.seconds = time.monotonic() - started
    return suite


def run_one(psql: Psql, root: Path, name: str, target: Target) -> FileResult:
    result = FileResult(file=name)
    started = time.monotonic()
    script = root / "sql" / f"{name}.sql"
    problem = target.ensure_alive()
    if problem and target.alive():
        result.error = problem
        result.fail(0, "", problem)
        return result
    output, problem = psql.run(script)
    expected = [read(p) for p in expected_files(root, name)]
    compare(result, read(script), output, expected)
    if problem:
        result.error = problem
        result.causes[normalise_cause(problem)] += 1
        if psql.killed:
            target.recover(problem)
    elif (down := target.alive()) is not None:
        result.error = down
        target.ensure_alive()
    result.seconds = round(time.monotonic() - started, 3)
    return result
