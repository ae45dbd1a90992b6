"""Error positions: which character of the client's query text an error points at.

PostgreSQL's ErrorResponse carries ``P``, the 1-based character index into the query string
as sent, for errors found while parsing and analysing a statement (syntax errors, unknown
columns/relations/functions/operators, a literal that is not valid input for its type ...);
psql prints it as the ``LINE n:`` excerpt with a caret.

Only the error path does any work here.  A ``SqlError`` raised by the compiler carries the
syntax node it is about (``err.node``, set by ``expr.Compiler.compile`` for the innermost
node being compiled, or by the raiser); the node's offsets (sqlglot ``meta``) are in the
text sqlglot parsed, which may differ from the client's text:

* ``Stmt.src``: the parser's textual rewrites (``interval '..'`` -> ``CAST(..)`` ...);
* the simple-query statement cache parses a *shape* with literals replaced by ``$n``;
* a multi-statement query is split, each ``Stmt`` knowing its ``offset`` in the whole text.

Offsets are mapped back through these by aligning the texts (``difflib``), so any rewrite
keeps positions roughly right without recording its own edits.  Errors without a node are
located by what the message names: a literal's value, a relation/column/function name.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.tokens import Token, TokenType

from engine.normalize import normalize, shape_to_text

# analysis-time errors that point at a node; data errors (22xxx) point at a literal
_NODE_STATES = frozenset({
    "42601",  # syntax error (found while compiling)
    "42703",  # undefined column
    "42P01",  # undefined table / missing FROM-clause entry
    "42883",  # undefined function / operator
    "42702",  # ambiguous column
    "42725",  # ambiguous function
    "42704",  # undefined object (type)
    "42803",  # grouping error
    "42804",  # datatype mismatch
    "42846",  # cannot coerce
    "42P10",  # invalid column reference (GROUP BY / ORDER BY position)
    "42P18",  # indeterminate datatype
    "42P19",  # invalid recursion
    "42P20",  # windowing error
    "42611",  # invalid column definition
    "42P02",  # undefined parameter
    "0A000",  # feature not supported (e.g. a subquery in a DEFAULT), when raised for a node
    "22P02", "22003", "22008", "22007", "22009", "22015", "2202E", "22023", "22P03",
})
_NAME_STATES = frozenset({"42P01", "42703", "42883", "42704"})
_ANALYSED = (exp.Query, exp.Insert, exp.Update, exp.Delete, exp.Merge)
_STRING_TOKENS = frozenset({TokenType.STRING, TokenType.NATIONAL_STRING, TokenType.BYTE_STRING,
                            TokenType.HEREDOC_STRING, TokenType.BIT_STRING, TokenType.HEX_STRING})
_PAREN = frozenset({TokenType.L_PAREN, TokenType.R_PAREN})
_MAX_ALIGN = 40_000  # len * len of the differing middles above which they are not aligned by character
_DIALECT = Dialect.get_or_raise("postgres")


def tokens(text: str) -> list[Token]:
    try:
        return _DIALECT.tokenize(text)
    except Exception:  # noqa: BLE001 -- an untokenisable text has no positions to offer
        return []


def aligner(a: str, b: str) -> Callable[[int], int]:
    """Map a character offset in ``a`` to the corresponding offset in ``b`` (texts that differ
    by a few local rewrites): common prefix and suffix map directly, the middle by ``difflib``
    when it is small, else to its start."""
    if a == b:
        return lambda i: i
    n = min(len(a), len(b))
    p = 0
    while p < n and a[p] == b[p]:
        p += 1
    q = 0
    while q < n - p and a[-1 - q] == b[-1 - q]:
        q += 1
    ma, mb = a[p:len(a) - q], b[p:len(b) - q]
    ops = (difflib.SequenceMatcher(None, ma, mb, autojunk=False).get_opcodes()
           if len(ma) * len(mb) <= _MAX_ALIGN else [("replace", 0, len(ma), 0, len(mb))])
    la, lb = len(a), len(b)

    def f(i: int) -> int:
        if i < p:
            return i
        if i >= la - q:
            return lb - (la - i)
        k = i - p
        for tag, i1, i2, j1, _j2 in ops:
            if i1 <= k < i2:
                return p + (j1 + (k - i1) if tag == "equal" else j1)
        return p

    return f


def node_span(node: exp.Expression) -> tuple[int, int] | None:
    """(first start, last end) of the tokens under ``node`` that sqlglot recorded."""
    lo = hi = None
    for n in node.walk():
        m = getattr(n, "_meta", None)
        if not m or "start" not in m:
            continue
        s, e = m["start"], m.get("end", m["start"])
        lo = s if lo is None or s < lo else lo
        hi = e if hi is None or e > hi else hi
    return None if lo is None else (lo, hi)  # type: ignore[return-value]


def _from_text(node: exp.Expression, src: str) -> bool:
    """Whether the first token recorded under ``node`` is really at its offset in ``src``."""
    for n in node.walk():
        m = getattr(n, "_meta", None)
        if m and "start" in m:
            end = m.get("end", m["start"]) + 1
            raw = src[m["start"]:end].lower().strip("'\"")
            if isinstance(n, exp.Func) and not isinstance(n, exp.Anonymous):
                return raw.isidentifier() and src[end:].lstrip()[:1] == "("  # a call, name maybe aliased
            want = str(n.name or n.this or "").lower()
            return bool(raw) and (raw == want or raw in want or want in raw)
    return True


def _operator_start(node: exp.Binary, src_tokens: list[Token]) -> int | None:
    left, right = node.left, node.right
    ls = node_span(left) if isinstance(left, exp.Expression) else None
    rs = node_span(right) if isinstance(right, exp.Expression) else None
    if ls is None or rs is None:
        return None
    for t in src_tokens:
        if ls[1] < t.start < rs[0] and t.token_type not in _PAREN:
            return t.start
    return None


def _node_start(node: exp.Expression, src: str, operator: bool) -> int | None:
    if operator and isinstance(node, exp.Binary):
        p = _operator_start(node, tokens(src))
        if p is not None:
            return p
    span = node_span(node)
    if span is not None and isinstance(node, (exp.Subquery, exp.Select)):
        # a subquery is where its "(" is (its first recorded token is inside the select list)
        toks = tokens(src)
        k = max((i for i, t in enumerate(toks) if t.start <= span[0]
                 and t.token_type in (TokenType.SELECT, TokenType.WITH, TokenType.VALUES)), default=None)
        if k is not None:
            return toks[k - 1].start if k and toks[k - 1].token_type == TokenType.L_PAREN else toks[k].start
    return None if span is None else span[0]


def _literal_value(msg: str) -> str | None:
    m = re.search(r': "(.*)"$', msg, re.S) or re.match(r'value "(.*)" is out of range', msg, re.S)
    return m.group(1) if m else None


def _quoted_name(msg: str) -> str | None:
    m = re.match(r'(?:relation|column|type|table) "([^"]+)"', msg) or re.match(
        r"column ([\w.]+) does not exist", msg)
    if m:
        return m.group(1)
    m = re.match(r"function ([\w.]+)\(", msg)
    return m.group(1) if m else None


def _find_name(name: str, toks: list[Token], text: str, call: bool) -> int | None:
    parts = name.split(".")
    for k, t in enumerate(toks):
        ok = True
        for j, part in enumerate(parts):
            i = k + 2 * j
            if i >= len(toks) or (j and toks[i - 1].token_type != TokenType.DOT):
                ok = False
                break
            tt = toks[i]
            raw = text[tt.start:tt.end + 1]
            if not (tt.text == part or (raw[:1] != '"' and tt.text.lower() == part.lower())):
                ok = False
                break
        if ok:
            nxt = k + 2 * len(parts) - 1
            if not call or (nxt < len(toks) and toks[nxt].token_type == TokenType.L_PAREN):
                return t.start
    return None


def locate(err: Any, stmt: Any, query: str, shaped: bool = False) -> None:
    """Fill ``err.position`` (1-based, into ``query``) when the error points somewhere in it.

    ``stmt`` is the ``engine.parse.Stmt`` that failed; ``shaped``: it is the literal-free
    shape the statement cache parsed instead of ``query`` itself.
    """
    if err.position is not None or stmt is None or err.sqlstate not in _NODE_STATES:
        return
    try:
        pos = _find(err, stmt, query, shaped)
    except Exception:  # noqa: BLE001 -- a position is a courtesy: never mask the error itself
        pos = None
    if pos is not None:
        err.position = pos + 1


def _find(err: Any, stmt: Any, query: str, shaped: bool) -> int | None:
    text = stmt.text
    src = getattr(stmt, "src", None) or text
    if shaped:
        orig, base = query, 0
    else:
        orig, base = text, getattr(stmt, "offset", 0)
    to_text = aligner(src, text)
    if shaped:
        edits: list[tuple[int, int, int]] = []
        normalize(query, edits)

        def to_orig(i: int) -> int:
            return shape_to_text(edits, i)
    else:
        def to_orig(i: int) -> int:
            return i

    def mapped(i: int) -> int:
        return base + to_orig(to_text(i))

    node = err.node if isinstance(err.node, exp.Expression) and stmt.ast is not None else None
    if node is not None and not _from_text(node, src):
        node = None  # parsed from other text (a stored DEFAULT, a COPY's inner query ...)
    span = node_span(node) if node is not None else None
    if err.sqlstate.startswith("22"):
        value = _literal_value(err.message)
        if value is None and (node is None or not err.message.startswith("invalid input syntax")):
            return None  # e.g. "bigint out of range" from folding constant arithmetic: no position
        lo, hi = (to_orig(to_text(span[0])), to_orig(to_text(span[1]))) if span else (0, len(orig))
        strings = [t for t in tokens(orig) if t.token_type in _STRING_TOKENS and lo <= t.start <= hi]
        for t in strings:
            if value is None or t.text == value:
                return base + t.start
        return None
    if node is not None:
        p = _node_start(node, src, err.message.startswith("operator"))
        if p is not None:
            if err.sqlstate in _NAME_STATES:
                name = _quoted_name(err.message)
                if name is not None and span is not None:
                    # the node may be a whole subquery the error surfaced through: find the name in it
                    lo, hi = to_orig(to_text(span[0])), to_orig(to_text(span[1]))
                    inner = [t for t in tokens(orig) if lo <= t.start <= hi]
                    q = _find_name(name, inner, orig, err.message.startswith("function"))
                    if q is not None:
                        return base + q
            return mapped(p)
    if err.sqlstate in _NAME_STATES and isinstance(stmt.ast, _ANALYSED):
        # utility statements (DROP, ALTER ...) report unknown names without a position
        name = _quoted_name(err.message)
        if name is not None:
            q = _find_name(name, tokens(orig), orig, err.message.startswith("function"))
            if q is not None:
                return base + q
    return None


# -- syntax errors ------------------------------------------------------------------------

_END_OF_INPUT = "syntax error at end of input"
_TRAILER = re.compile(r"(?:\s+|--[^\n]*|/\*.*?\*/)*", re.S)


def syntax_error(text: str, src: str) -> Any:
    """A ``SyntaxErr`` for a statement sqlglot rejects, naming and pointing at the token the
    parser stopped on (relative to ``text``), or at the end of the statement; None when the
    parser does not fail again the same way."""
    from engine.errors import SyntaxErr
    from sqlglot.errors import ParseError

    toks = tokens(src)
    if not toks:
        return None
    parser = _DIALECT.parser()
    try:
        parser.parse(toks, src)
    except ParseError:
        pass
    else:
        return None
    cur = getattr(parser, "_curr", None)
    if cur is None or cur.token_type == TokenType.SENTINEL:
        return SyntaxErr(_END_OF_INPUT, position=len(text) + 1)
    near = src[cur.start:cur.end + 1]
    return SyntaxErr(f'syntax error at or near "{near}"', position=aligner(src, text)(cur.start) + 1)


def to_query(err: Any, query: str, offset: int, length: int) -> None:
    """Make a position relative to one statement of ``query`` (starting at ``offset``,
    ``length`` characters long) relative to the whole query; the end of a statement that a
    ';' follows is that ';', as PostgreSQL's grammar sees it."""
    if err.position is None:
        return
    if err.message == _END_OF_INPUT:
        i = _TRAILER.match(query, offset + length).end()
        if i < len(query) and query[i] == ";":
            err.message = 'syntax error at or near ";"'
            err.args = (err.message,)
            err.position = i + 1
        else:
            err.position = len(query) + 1
        return
    err.position += offset
