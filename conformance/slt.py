"""sqllogictest: parse ``*.test`` files and run them over one psycopg connection per file.

File format (records are separated by blank lines, ``#`` starts a comment line)::

    hash-threshold 8                     values above this count are given as an md5
    skipif mysql / onlyif postgresql     conditions in front of a record (we are "postgresql")
    statement ok | statement error       SQL lines follow until a blank line
    query ITR nosort|rowsort|valuesort [label]
    SELECT ...
    ----
    result values, one per line  |  "N values hashing to <md5>"
    halt                                 stop reading the file (may itself be conditional)

Values are rendered the way SQLite's reference harness does: ``I`` columns as integers (text
that does not start with a number becomes 0, booleans 1/0, reals truncated), ``R`` columns
``%.3f``, NULL as ``NULL``, the empty string as ``(empty)`` and non-printable characters as
``@``.  We read the server's text form of each value straight from the result
(``cursor.pgresult``), so no client-side type conversion can hide a difference.  rowsort
sorts rows by their rendered columns, valuesort sorts all values; the hash is the md5 of the
values each followed by a newline.  A label ties queries that must give the same result.

Each file starts in a fresh state: the tables/views it creates (found by scanning its SQL)
are dropped before and after it.  A statement that runs longer than ``timeout`` seconds is
cancelled (and, if the server ignores the cancel, its socket is shut down); the file then
continues on a new connection.
"""

from __future__ import annotations

import hashlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from conformance.results import FileResult, SuiteResult
from conformance.servers import Target

ENGINE = "postgresql"
BOOL_OID = 16
_INT_PREFIX = re.compile(r"\s*[-+]?\d+")
_FLOAT_PREFIX = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_CREATED = re.compile(r"\bcreate\s+(?:temp\w*\s+|unique\s+)?(table|view)\s+(?:if\s+not\s+exists\s+)?"
                      r"([A-Za-z_][\w.]*)", re.I)
_HASHED = re.compile(r"^(\d+) values hashing to ([0-9a-f]{32})$")


@dataclass
class Record:
    kind: str  # "statement" | "query"
    line: int
    sql: str
    expect_error: bool = False
    types: str = ""
    sort: str = "nosort"
    label: str | None = None
    expected: list[str] | None = None  # None: no "----" section


def parse(text: str) -> Iterator[tuple[str, Record | None, int]]:
    """Yield ("record", rec, line), ("skip", None, line), ("halt", None, line) and
    ("threshold", None, n) events in file order."""
    lines = text.splitlines()
    i, n = 0, len(lines)
    while i < n:
        line = lines[i].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            i += 1
            continue
        # one record: lines up to the next blank line
        start = i
        block = []
        while i < n and lines[i].strip():
            block.append(lines[i].rstrip("\r\n"))
            i += 1
        skip = False
        while block and block[0].split()[0] in ("skipif", "onlyif"):
            word, _, engine = block[0].partition(" ")
            engine = engine.split()[0] if engine.split() else ""
            if (word == "skipif" and engine == ENGINE) or (word == "onlyif" and engine != ENGINE):
                skip = True
            block.pop(0)
            start += 1
        block = [b for b in block if not b.lstrip().startswith("#")] or [""]
        head = block[0].split()
        if not head:
            continue
        if head[0] == "halt":
            if not skip:
                yield "halt", None, start + 1
                return
            continue
        if head[0] == "hash-threshold":
            yield "threshold", None, int(head[1])
            continue
        if head[0] == "statement":
            rec = Record("statement", start + 1, "\n".join(block[1:]),
                         expect_error=len(head) > 1 and head[1] == "error")
        elif head[0] == "query":
            body = block[1:]
            expected = None
            if "----" in body:
                cut = body.index("----")
                body, expected = body[:cut], body[cut + 1:]
            rec = Record("query", start + 1, "\n".join(body),
                         expect_error=len(head) > 1 and head[1] == "error",
                         types=head[1] if len(head) > 1 else "",
                         sort=head[2] if len(head) > 2 else "nosort",
                         label=head[3] if len(head) > 3 else None, expected=expected)
        else:
            continue  # unknown directive: ignore it like the reference harness
        yield ("skip" if skip else "record"), rec, start + 1


def render(value: bytes | None, type_char: str, oid: int) -> str:
    """One value as SQLite's harness prints it."""
    if value is None:
        return "NULL"
    text = value.decode("utf-8", "replace")
    if oid == BOOL_OID:
        text = "1" if text == "t" else "0"
    if type_char == "I":
        m = _FLOAT_PREFIX.match(text)
        if not m:
            return "0"
        if _INT_PREFIX.fullmatch(m.group(0)):
            return str(int(m.group(0)))
        return str(int(float(m.group(0))))
    if type_char == "R":
        m = _FLOAT_PREFIX.match(text)
        return "%.3f" % (float(m.group(0)) if m else 0.0)
    if text == "":
        return "(empty)"
    return "".join(c if " " <= c <= "~" else "@" for c in text)


def result_values(rows: list[list[str]], sort: str) -> list[str]:
    if sort == "rowsort":
        rows = sorted(rows)
    values = [v for row in rows for v in row]
    if sort == "valuesort":
        values.sort()
    return values


def digest(values: list[str]) -> str:
    return hashlib.md5("".join(v + "\n" for v in values).encode()).hexdigest()


def matches(expected: list[str], values: list[str], ncols: int) -> bool:
    m = _HASHED.match(expected[0].strip()) if len(expected) == 1 else None
    if m:
        return int(m.group(1)) == len(values) and m.group(2) == digest(values)
    exp = [e.strip() for e in expected]
    if exp == [v.strip() for v in values]:
        return True
    # some files put one row per line, values separated by spaces
    rows = [" ".join(values[i:i + ncols]) for i in range(0, len(values), max(ncols, 1))]
    return [" ".join(e.split()) for e in exp] == [" ".join(r.split()) for r in rows]


class Connection:
    """One psycopg connection with a client-side per-statement time limit."""

    def __init__(self, target: Target, timeout: float) -> None:
        self.target, self.timeout = target, timeout
        self.conn: psycopg.Connection | None = None

    def open(self) -> None:
        self.close()
        self.conn = psycopg.connect(self.target.dsn, autocommit=True, connect_timeout=10,
                                    prepare_threshold=None)

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:  # noqa: BLE001
                pass
            self.conn = None

    def _expire(self, conn: psycopg.Connection, done: threading.Event) -> None:
        if done.wait(self.timeout):
            return
        try:
            conn.cancel()
        except Exception:  # noqa: BLE001
            pass
        if done.wait(2.0):
            return
        try:  # the server ignored the cancel: make the blocked read fail
            socket.socket(fileno=socket.dup(conn.fileno())).shutdown(socket.SHUT_RDWR)
        except Exception:  # noqa: BLE001
            pass

    def run(self, sql: str) -> tuple[list[tuple[int, str]], list[list[bytes | None]]]:
        """Execute; return ([(oid, name)], rows of raw text values).  Raises on errors;
        TimeoutError when the time limit hit (the connection is then reopened)."""
        if self.conn is None or self.conn.closed:
            self.open()
        conn = self.conn
        assert conn is not None
        done = threading.Event()
        watchdog = threading.Thread(target=self._expire, args=(conn, done), daemon=True)
        started = time.monotonic()
        watchdog.start()
        try:
            cur = conn.execute(sql)
            res = cur.pgresult
            if res is None or cur.description is None:
                return [], []
            cols = [(res.ftype(c), res.fname(c).decode()) for c in range(res.nfields)]
            rows = [[res.get_value(r, c) for c in range(res.nfields)] for r in range(res.ntuples)]
            return cols, rows
        except psycopg.Error as e:
            if time.monotonic() - started >= self.timeout:
                self.close()
                raise TimeoutError(f"statement timed out after {self.timeout:.0f} s") from e
            if conn.closed or conn.broken:
                self.close()
            raise
        finally:
            done.set()


def created_names(text: str) -> list[tuple[str, str]]:
    """(kind, name) of every table/view the file's SQL creates, in order."""
    seen: dict[tuple[str, str], None] = {}
    for m in _CREATED.finditer(text):
        seen[(m.group(1).lower(), m.group(2).lower())] = None
    return list(seen)


def drop_all(conn: Connection, names: list[tuple[str, str]]) -> None:
    for kind, name in reversed(names):  # views first: they were made after their tables
        for sql in (f"DROP {kind.upper()} IF EXISTS {name} CASCADE",
                    f"DROP {kind.upper()} IF EXISTS {name}"):
            try:
                conn.run(sql)
                break
            except TimeoutError:
                break
            except psycopg.Error:
                continue


def error_text(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def run_file(path: Path, target: Target, timeout: float, label: str) -> FileResult:
    result = FileResult(file=label)
    started = time.monotonic()
    text = path.read_text(errors="replace")
    names = created_names(text)
    conn = Connection(target, timeout)
    labels: dict[str, str] = {}
    threshold = 0
    events = list(parse(text))
    done = -1
    try:
        conn.open()
        drop_all(conn, names)
        for done, (event, rec, line) in enumerate(events):
            if event == "halt":
                break
            if event == "threshold":
                threshold = line
                continue
            if event == "skip":
                result.skipped += 1
                continue
            assert rec is not None
            run_record(conn, rec, result, labels, threshold)
        drop_all(conn, names)
    except (psycopg.OperationalError, OSError) as e:
        problem = target.ensure_alive()
        result.error = problem or f"connection failed: {error_text(e)}"
        result.fail(0, "", result.error)
        # the records this file did not get to run count as failed too
        for ev, r, _ in events[done + 1:]:
            if ev == "halt":
                break
            if ev == "record" and r is not None:
                result.fail(r.line, r.sql, "not run: server died earlier in the file")
    finally:
        conn.close()
    result.exact = result.failed == 0 and result.error is None
    result.seconds = round(time.monotonic() - started, 3)
    return result


def run_record(conn: Connection, rec: Record, result: FileResult, labels: dict[str, str],
               threshold: int) -> None:
    try:
        cols, rows = conn.run(rec.sql)
    except TimeoutError as e:
        result.fail(rec.line, rec.sql, str(e))
        return
    except psycopg.Error as e:
        if conn.conn is None:  # the connection broke: is the server still there?
            problem = conn.target.alive()
            if problem:
                raise psycopg.OperationalError(problem) from e
            conn.open()
        if rec.expect_error:
            result.passed += 1
        else:
            result.fail(rec.line, rec.sql, error_text(e))
        return
    if rec.expect_error:
        result.fail(rec.line, rec.sql, "expected an error, statement succeeded")
        return
    if rec.kind == "statement":
        result.passed += 1
        return
    types = rec.types or "T" * len(cols)
    if len(types) != len(cols):
        result.fail(rec.line, rec.sql, f"wrong column count: expected {len(types)}, got {len(cols)}")
        return
    rendered = [[render(v, types[c], cols[c][0]) for c, v in enumerate(row)] for row in rows]
    values = result_values(rendered, rec.sort)
    ok = True
    if rec.expected is not None and (rec.expected or values):
        ok = matches(rec.expected, values, len(cols)) if rec.expected else not values
    if ok and rec.label:
        h = digest(values)
        ok = labels.setdefault(rec.label, h) == h
    if ok:
        result.passed += 1
    else:
        shown = values if threshold <= 0 or len(values) <= threshold else \
            [f"{len(values)} values hashing to {digest(values)}"]
        result.fail(rec.line, rec.sql, "wrong result", "\n".join(rec.expected or []),
                    "\n".join(shown))


def find_files(paths: list[str]) -> list[tuple[Path, str]]:
    """(file, label) pairs: files as given, folders searched recursively for *.test."""
    out: list[tuple[Path, str]] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += [(f, str(f.relative_to(p.parent))) for f in sorted(p.rglob("*.test"))]
        elif p.is_file():
            out.append((p, p.name))
        else:
            raise FileNotFoundError(p)
    return out


def run_suite(paths: list[str], target: Target, timeout: float = 10.0,
              progress: bool = True) -> SuiteResult:
    suite = SuiteResult(suite="sqllogictest", dsn=target.dsn)
    started = time.monotonic()
    for path, label in find_files(paths):
        target.ensure_alive()  # restarts a server we own that died in the previous file
        fr = run_file(path, target, timeout, label)
        suite.files.append(fr)
        if progress:
            print(f"  {label}: {fr.passed} passed, {fr.failed} failed, {fr.skipped} skipped "
                  f"({fr.seconds:.1f} s){' -- ' + fr.error if fr.error else ''}", flush=True)
    suite.seconds = time.monotonic() - started
    return suite
