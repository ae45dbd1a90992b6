"""SQL text -> statements: splitting, utility-statement recognition, sqlglot parsing, caching.

``Parser.parse(text)`` returns a list of ``Stmt``; the list is cached by the exact text, so
the same SQL is never parsed twice (plans are cached on the ``Stmt`` by the planner).

Utility statements that sqlglot parses poorly or not at all (transaction control, SET /
SHOW / RESET, DISCARD, VACUUM, ANALYZE) are recognised here with regular expressions;
everything else goes to ``sqlglot.parse_one(read="postgres")``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from engine import errors, lexcheck, positions, qualnames, unicode_escapes
from engine.normalize import normalize
from engine import datetime_dialect

datetime_dialect.install()
from engine.pgcatalog import rewrite as pgcatalog_rewrite

_CACHE_LIMIT = 20000


@dataclass(eq=False)
class Stmt:
    kind: str  # "begin" "commit" "rollback" "set" "show" "reset" "discard" "noop" "sql" "empty"
    text: str
    ast: exp.Expression | None = None
    info: dict[str, Any] = field(default_factory=dict)
    plans: dict[Any, Any] = field(default_factory=dict)  # planner cache: key -> plan
    offset: int = 0  # where ``text`` starts in the query text it was split from (error positions)
    src: str | None = None  # the text sqlglot parsed, when a rewrite made it differ from ``text``


def split_statements(text: str) -> list[str]:
    """Split on top-level ';' (outside quotes, dollar quotes and comments)."""
    return [s for _, s in split_spans(text)]


def split_spans(text: str) -> list[tuple[int, str]]:
    """``split_statements`` with each statement's offset in ``text``."""
    out, start, i, n = [], 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == "'" or c == '"':
            j = i + 1
            while j < n:
                if text[j] == c:
                    if j + 1 < n and text[j + 1] == c:
                        j += 2
                        continue
                    break
                if c == "'" and text[j] == "\\" and i > 0 and text[i - 1] in "eE":
                    j += 1
                j += 1
            i = j + 1
        elif c == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
        elif c == "/" and text.startswith("/*", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
        elif c == "$":
            m = re.match(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$", text[i:])
            if m and not (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")):
                tag = m.group(0)
                j = text.find(tag, i + len(tag))
                i = n if j < 0 else j + len(tag)
            else:
                i += 1
        elif c == ";":
            out.append((start, text[start:i]))
            start = i = i + 1
        else:
            i += 1
    out.append((start, text[start:]))
    spans = []
    for off, x in out:
        s = x.strip()
        if s and not _only_comments(s):
            spans.append((off + len(x) - len(x.lstrip()), s))
    return spans


def _only_comments(s: str) -> bool:
    s = re.sub(r"--[^\n]*|/\*.*?\*/", "", s, flags=re.S)
    return not s.strip()


_ISO = r"(?:isolation\s+level\s+(?P<iso>serializable|repeatable\s+read|read\s+committed|read\s+uncommitted))"
_MODES = rf"(?P<modes>(?:\s*,?\s*(?:{_ISO}|read\s+write|read\s+only|(?:not\s+)?deferrable))*)"
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("begin", re.compile(rf"^(?:begin(?:\s+(?:work|transaction))?|start\s+transaction){_MODES}\s*$", re.I)),
    ("commit", re.compile(r"^(?:commit|end)(?:\s+(?:work|transaction))?(?:\s+and\s+no\s+chain)?\s*$", re.I)),
    ("rollback", re.compile(r"^(?:rollback|abort)(?:\s+(?:work|transaction))?(?:\s+and\s+no\s+chain)?\s*$", re.I)),
    ("set_txn", re.compile(rf"^set\s+(?:session\s+characteristics\s+as\s+)?transaction{_MODES}\s*$", re.I)),
    ("set_tz", re.compile(r"^set\s+(?:(?:session|local)\s+)?time\s+zone\s+(?P<value>.+?)\s*$", re.I | re.S)),
    ("set", re.compile(r"^set\s+(?:(?P<scope>session|local)\s+)?(?P<name>[A-Za-z_][\w.]*|\"[^\"]+\")\s*(?:=|\s+to\s+|\s)\s*(?P<value>.+?)\s*$", re.I | re.S)),
    ("set_names", re.compile(r"^set\s+names\s+(?P<value>.+?)\s*$", re.I)),
    ("show", re.compile(r"^show\s+(?P<name>transaction\s+isolation\s+level|time\s+zone|session\s+authorization|[A-Za-z_][\w.]*)\s*$", re.I)),
    ("reset", re.compile(r"^reset\s+(?P<name>all|time\s+zone|[A-Za-z_][\w.]*)\s*$", re.I)),
    ("discard", re.compile(r"^discard\s+(?P<what>all|plans|sequences|temp|temporary)\s*$", re.I)),
    ("noop", re.compile(r"^(?P<tag>vacuum|analyze|checkpoint|listen|unlisten|notify|deallocate)\b.*$", re.I | re.S)),
    ("noop", re.compile(r"^(?P<tag>close)\s+all\s*$", re.I)),  # no SQL cursors: nothing to close
    ("savepoint", re.compile(r"^(?:savepoint|release|rollback\s+to)\b.*$", re.I | re.S)),
    ("copy", re.compile(r"^copy\b.*$", re.I | re.S)),  # engine.copy parses COPY itself
]


_ARRAY_TYPE = re.compile(r"::\s*(oid|name|regtype|regclass|char|int2vector|oidvector)\s*\[\]", re.I)
_INTERVAL_LIT = re.compile(
    r"\binterval\s+('(?:[^']|'')*')(?!\s*(?:years?|months?|days?|hours?|minutes?|seconds?|to)\b)(?!\s*\()",
    re.I)
_COMMENT_NULL = re.compile(r"\s+IS\s+NULL\s*;?\s*$", re.I)
_NULLS_DISTINCT = re.compile(r"\bUNIQUE\s+NULLS\s+DISTINCT\b", re.I)
_PARAM_OR_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$\d+(?=[^\s\d])")


_ROLE_DDL = re.compile(r"^\s*(create|alter|drop)\s+((?:role|user|group)\b(?!\s+mapping\b).*)$", re.I | re.S)
_REASSIGN = re.compile(r"^\s*(reassign)\s+(owned\b.*)$", re.I | re.S)  # sqlglot cannot read it


_OVERRIDING = re.compile(r"\boverriding\s+(system|user)\s+value\b", re.I)

def _classify(text: str) -> Stmt:
    head = text[:12].lower()
    if head[:1] in ("b", "s", "c", "e", "r", "a", "d", "v", "l", "u", "n"):
        for kind, pat in _PATTERNS:
            m = pat.match(text)
            if m:
                info = {k: v for k, v in m.groupdict().items() if v is not None}
                if "iso" in info:
                    info["iso"] = re.sub(r"\s+", " ", info["iso"].lower())
                if "modes" in info:
                    info["read_only"] = bool(re.search(r"read\s+only", info["modes"], re.I))
                return Stmt(kind, text, None, info)
    junk = lexcheck.check(text)
    if junk is not None:
        raise junk
    src = text
    if "&" in text:  # U&'...' / U&"..." (sqlglot does not read them): plain literals
        src = unicode_escapes.rewrite(text)
    if "[]" in text:  # sqlglot reads oid[] / name[] / regtype[] as subscripts: use the _type names
        src = _ARRAY_TYPE.sub(lambda m: f"::_{m.group(1).lower()}", src)
    if "ULLS" in text or "ulls" in text:
        # UNIQUE NULLS DISTINCT (PostgreSQL 15, what SQLAlchemy writes back after reflection) is the default
        src = _NULLS_DISTINCT.sub("UNIQUE", src)
    if head.startswith("comment"):  # COMMENT ON ... IS NULL removes the comment, like IS ''
        src = _COMMENT_NULL.sub(" IS ''", src)
    if "nterval" in text or "NTERVAL" in text:
        # sqlglot folds interval '1 day 02:03:04' into '1' DAY: keep the text as a cast
        src = _INTERVAL_LIT.sub(lambda m: f"CAST({m.group(1)} AS INTERVAL)", src)
    overriding = None
    if "verriding" in text or "VERRIDING" in text:
        # INSERT ... OVERRIDING {SYSTEM | USER} VALUE (sqlglot does not read it): kept on the tree
        m = _OVERRIDING.search(src)
        if m is not None:
            overriding = m.group(1).lower()
            src = src[: m.start()] + " " + src[m.end():]
    role = _ROLE_DDL.match(text) or _REASSIGN.match(text)
    if role is not None:  # role DDL (engine.ddl_roles) never reaches sqlglot, whose warning would log a password
        return Stmt("sql", text, exp.Command(this=role.group(1).upper(), expression=exp.Literal.string(role.group(2))))
    try:
        ast = sqlglot.parse_one(src, read="postgres")
    except TokenError as e:
        # sqlglot's tokenizer reads "$1,$2" (no space, as psycopg and JDBC send it) as the start
        # of a dollar-quoted string: retry once with a space after each parameter outside quotes
        spaced = _PARAM_OR_QUOTED.sub(lambda m: m.group(0) + (" " if m.group(0)[0] == "$" else ""), src)
        try:
            ast = sqlglot.parse_one(spaced, read="postgres")
        except (ParseError, TokenError):
            raise _syntax_error(text, src, e) from None
        src = spaced
    except ParseError as e:
        raise _syntax_error(text, src, e) from None
    if ast is None:
        return Stmt("empty", text)
    if isinstance(ast, (exp.Condition, exp.Alias, exp.Star)):  # a bare expression ("bad stuff", "1")
        err = _not_a_statement(text)
        if err is not None:
            raise err
    if any("A" <= ch <= "Z" for ch in src):  # unquoted identifiers fold to lower case
        ast = normalize_identifiers(ast, dialect="postgres")
    if pgcatalog_rewrite.wants_rewrite(text):
        ast = pgcatalog_rewrite.normalize(ast)
    if overriding is not None:
        if not isinstance(ast, exp.Insert):
            raise errors.SyntaxErr('syntax error at or near "OVERRIDING"')
        ast.meta["overriding"] = overriding
    qualnames.check(ast)
    return Stmt("sql", text, ast, src=src if src != text else None)


# The words a PostgreSQL statement can start with (its grammar's first tokens).
_STATEMENT_WORDS = frozenset(
    "abort alter analyse analyze begin call checkpoint close cluster comment commit copy create deallocate "
    "declare delete discard do drop end execute explain fetch grant import insert listen load lock merge move "
    "notify prepare reassign refresh reindex release reset revoke rollback savepoint security select set show "
    "start table truncate unlisten update vacuum values with".split())
_SKIP_SPACE = re.compile(r"(?:\s+|--[^\n]*\n?|/\*.*?\*/)*", re.S)
_FIRST_TOKEN = re.compile(r"[A-Za-z_][A-Za-z_0-9$]*|\d+(?:\.\d*)?|\"[^\"]*\"?|'[^']*'?|\S")


def _not_a_statement(text: str) -> errors.SyntaxErr | None:
    """PostgreSQL's grammar fails on the first token of text that starts no statement
    (sqlglot reads a bare expression such as ``bad stuff`` as a valid tree)."""
    start = _SKIP_SPACE.match(text).end()  # type: ignore[union-attr]
    m = _FIRST_TOKEN.match(text, start)
    if m is None or text[start] == "(" or m.group(0).lower() in _STATEMENT_WORDS:
        return None
    return errors.SyntaxErr(f'syntax error at or near "{m.group(0)}"', position=start + 1)


def _syntax_error(text: str, src: str, e: Exception) -> errors.SyntaxErr:
    """The error for a text sqlglot rejected, pointing (``position``, relative to ``text``)
    at the token the parser stopped on, or at the end of the statement."""
    err = _not_a_statement(text)  # PostgreSQL stops at the first token when it starts no statement
    if err is None and isinstance(e, ParseError):
        err = positions.syntax_error(text, src)
    if err is not None:
        return err
    near = None
    errs = getattr(e, "errors", None)
    if errs:
        near = errs[0].get("highlight")
    if not near:
        m = re.search(r"near '([^']*)'|Unexpected token: '?([^']*)'?", str(e))
        near = (m.group(1) or m.group(2)) if m else None
    if not near:
        return errors.SyntaxErr("syntax error at end of input")
    return errors.SyntaxErr(f'syntax error at or near "{near}"')


class Parser:
    """Per-database parse cache (shared by all sessions of one instance).

    ``parse(text)`` caches by exact text.  ``parse_bound(text)`` (simple-query path) first
    tries ``engine.normalize``: statements differing only in constants share one ``Stmt``
    (parsed from the parameterised shape) and are returned with their constants as
    parameter values and the constants' types as parameter types.
    """

    def __init__(self) -> None:
        self._cache: dict[str, list[Stmt]] = {}
        self._shapes: dict[tuple[str, tuple[int, ...]], Stmt] = {}

    def parse_bound(self, text: str) -> list[tuple[Stmt, Any, Any]]:
        stmts = self._cache.get(text)
        if stmts is None:
            norm = normalize(text) if not pgcatalog_rewrite.wants_rewrite(text) else None
            if norm is not None:
                shape, vals, types = norm
                key = (shape, types)
                st = self._shapes.get(key)
                if st is None:
                    try:
                        st = _classify(shape)
                    except errors.SqlError:
                        st = None
                    if st is None or st.kind != "sql":
                        norm = None
                    else:
                        if len(self._shapes) >= _CACHE_LIMIT:
                            self._shapes.clear()
                        self._shapes[key] = st
                if norm is not None:
                    return [(st, vals, types)]
            stmts = self.parse(text)
        return [(st, (), None) for st in stmts]

    def parse(self, text: str) -> list[Stmt]:
        stmts = self._cache.get(text)
        if stmts is None:
            stmts = []
            for off, s in split_spans(text):
                try:
                    st = _classify(s)
                except errors.SqlError as e:
                    positions.to_query(e, text, off, len(s))
                    raise
                st.offset = off
                stmts.append(st)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[text] = stmts
        return stmts
