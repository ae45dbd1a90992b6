"""Outcome bookkeeping shared by both suites: per-file results, totals, failure causes, JSON.

A *case* is the unit that passes or fails: a sqllogictest record (``statement`` / ``query``)
or a pg_regress statement block.  A file additionally has ``exact`` (pg_regress: the whole
output matched an expected file; sqllogictest: no case failed).

JSON written by ``--json FILE``::

    {"suite": "sqllogictest", "dsn": ..., "started": ISO time, "seconds": float,
     "passed": N, "failed": M, "skipped": S, "files_total": F, "files_exact": E,
     "causes": [{"cause": "...", "count": n}, ...],          # most frequent first
     "files": [{"file": ..., "passed": .., "failed": .., "skipped": .., "exact": bool,
                "seconds": .., "error": str|null,
                "failures": [{"line": n, "sql": ..., "cause": ..., "expected": ..., "got": ...}]}]}

Failure causes are grouped by a normalised message: quoted names and numbers are replaced
by placeholders so "column \"a\" does not exist" and "column \"b\" does not exist" count as
one cause.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

MAX_FAILURES_KEPT = 40  # per file, in the JSON detail
MAX_TEXT = 2000  # characters of expected/got text kept per failure

_QUOTED = re.compile(r'"[^"]*"|\'[^\']*\'')
_NUMBER = re.compile(r"\b\d+(\.\d+)?\b")


def normalise_cause(message: str) -> str:
    """One line, quoted names -> "?", numbers -> N: the key failures are grouped by."""
    line = message.strip().splitlines()[0] if message.strip() else "(empty)"
    line = _QUOTED.sub('"?"', line)
    return _NUMBER.sub("N", line)[:200]


@dataclass
class Failure:
    line: int
    sql: str
    cause: str
    expected: str = ""
    got: str = ""


@dataclass
class FileResult:
    file: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    exact: bool = False
    seconds: float = 0.0
    error: str | None = None  # the file as a whole went wrong (timeout, server down, ...)
    failures: list[Failure] = field(default_factory=list)
    causes: Counter = field(default_factory=Counter)

    def fail(self, line: int, sql: str, cause: str, expected: str = "", got: str = "") -> None:
        self.failed += 1
        self.causes[normalise_cause(cause)] += 1
        if len(self.failures) < MAX_FAILURES_KEPT:
            self.failures.append(Failure(line, sql[:MAX_TEXT], cause[:MAX_TEXT],
                                         expected[:MAX_TEXT], got[:MAX_TEXT]))


@dataclass
class SuiteResult:
    suite: str
    dsn: str
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"))
    seconds: float = 0.0
    files: list[FileResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(f.passed for f in self.files)

    @property
    def failed(self) -> int:
        return sum(f.failed for f in self.files)

    @property
    def skipped(self) -> int:
        return sum(f.skipped for f in self.files)

    @property
    def files_exact(self) -> int:
        return sum(f.exact for f in self.files)

    def causes(self) -> list[tuple[str, int]]:
        total: Counter = Counter()
        for f in self.files:
            total.update(f.causes)
        return total.most_common()

    def rate(self) -> float:
        done = self.passed + self.failed
        return 100.0 * self.passed / done if done else 0.0

    def summary(self, top: int = 10) -> str:
        lines = [f"{self.suite}: {self.passed}/{self.passed + self.failed} cases passed "
                 f"({self.rate():.1f}%), {self.skipped} skipped; files exact "
                 f"{self.files_exact}/{len(self.files)}; {self.seconds:.0f} s"]
        for cause, n in self.causes()[:top]:
            lines.append(f"  {n:6d}  {cause}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        files = []
        for f in self.files:
            d = asdict(f)
            d["causes"] = dict(f.causes.most_common())
            files.append(d)
        return {"suite": self.suite, "dsn": self.dsn, "started": self.started,
                "seconds": round(self.seconds, 2), "passed": self.passed, "failed": self.failed,
                "skipped": self.skipped, "files_total": len(self.files),
                "files_exact": self.files_exact,
                "causes": [{"cause": c, "count": n} for c, n in self.causes()], "files": files}

    def write_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1) + "\n")
