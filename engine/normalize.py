"""Literal normalisation for the simple-query statement cache.

Clients that do not prepare (``pgbench -M simple``, most ORMs' simple mode) send the same
statement over and over with different constants::

    UPDATE pgbench_accounts SET abalance = abalance + -1234 WHERE aid = 5;

Parsing each text with sqlglot costs ~100 µs.  ``normalize(text)`` rewrites such a text
into a *shape* with the constants replaced by parameters and returns the constants::

    ("UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
     [-1234, 5], (INT4, INT4))

so the parser caches one ``Stmt`` per shape and the planner one parameterised plan per
(shape, literal types).  Literal types are the ones PostgreSQL gives the constants (int4 /
int8 / numeric for numbers, unknown for quoted strings), so planning sees the same types
it would for the literal text.

Only literals in positions where a parameter means exactly the same thing are replaced:
right after a comparison or arithmetic operator (``= <> != < > <= >= + - * / %``) or as a
whole item of a ``VALUES`` row, and never when followed by ``::`` / ``(`` / ``[`` / ``.``.
A ``-`` directly before a number in such a position is folded into the constant.  Other
literals (LIMIT counts, ORDER BY ordinals, type modifiers ``numeric(10,2)``, ``DATE '..'``,
LIKE patterns, function arguments) stay in the text, so the shape keeps them.  Texts with
comments, dollar quotes, parameters, escape strings, several statements, or that the
pg_catalog rewriter wants, are not normalised (``None``): they take the exact-text cache.
"""

from __future__ import annotations

import re
from decimal import Decimal

from engine import types as T

_NUM = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_STR = r"'(?:[^']|'')*'"
_ITEM = rf"(?:-?\s*{_NUM}|{_STR}|[A-Za-z_]\w*(?:\s*\(\s*\))?)"
_ROW = rf"\(\s*{_ITEM}(?:\s*,\s*{_ITEM})*\s*\)"
# leftmost-first scan: quoted text is consumed whole (a literal inside it is not one); a
# literal right after an operator (not part of ->, #>, @>, <@ ...), or a VALUES list of
# plain rows, is replaced
_SCAN = re.compile(rf"""
    (?P<keep>{_STR}|"(?:[^"]|"")*"|->>?|\#>>?|@>|<@|::|\|\||=>|:=|[!<>=]{{3,}})
  | (?P<pre>(?:<>|!=|<=|>=|[=<>+*/%-])\s*)(?P<neg>-\s*)?(?P<lit>(?>{_STR}|{_NUM}))
        (?![\w.'])(?!\s*(?:::|\(|\[|\|\|))
  | (?P<values>\bvalues\s*{_ROW}(?:\s*,\s*{_ROW})*)
""", re.X | re.I)
_VALUE_LIT = re.compile(rf"(?P<keep>[A-Za-z_]\w*)|(?P<pre>[(,]\s*)(?P<neg>-\s*)?(?P<lit>{_STR}|{_NUM})(?=\s*[,)])")
_VERBS = ("select", "insert", "update", "delete")
_MAX_LITERALS = 256  # bulk VALUES lists are rarely repeated: not worth a shape
_INT4_MAX = 2**31 - 1
_INT8_MAX = 2**63 - 1


def _literal(lit: str, neg: bool) -> tuple[object, int]:
    if lit[0] == "'":
        return lit[1:-1].replace("''", "'"), 0
    if lit.isdigit():
        v = int(lit)
        oid = T.INT4 if v <= _INT4_MAX else T.INT8 if v <= _INT8_MAX else T.NUMERIC
        if oid == T.NUMERIC:
            return Decimal(-v if neg else v), oid
        return (-v if neg else v), oid
    d = Decimal(lit)
    return (-d if neg else d), T.NUMERIC


def normalize(text: str, edits: list[tuple[int, int, int]] | None = None,
              ) -> tuple[str, list, tuple[int, ...]] | None:
    """(shape, values, literal type OIDs) or None when ``text`` is not worth/safe to normalise.

    ``edits`` (error path only): receives (start, end, length of the parameter that replaced
    it) for each literal of ``text`` the shape replaced, in order (see ``shape_to_text``)."""
    if "$" in text or "--" in text or "/*" in text or "\\" in text or ";" in text.rstrip().rstrip(";"):
        return None
    head = text.lstrip()[:7].lower()
    if not head.startswith(_VERBS):
        return None
    vals: list = []
    types: list[int] = []
    numbers: dict[str, str] = {}  # a number's text (sign included) -> its parameter
    strings: set[str] = set()
    repeated_string = False

    def lit(m: re.Match, base: int = 0) -> str:
        nonlocal repeated_string
        if m.lastgroup == "keep":
            return m.group()
        if m.lastgroup == "values":
            start = m.start()
            return _VALUE_LIT.sub(lambda v: lit(v, start), m.group())
        lt = m.group("lit")
        if lt[0] == "'" and m.group("pre").strip() in ("+", "-", "*", "/", "%"):
            return m.group()  # a quoted operand of arithmetic: its type comes from the literal text
        neg = m.group("neg") is not None
        # The same constant twice is one parameter: ``SELECT g % 3 ... GROUP BY g % 3``
        # must keep two equal expressions (``g % $1`` twice, not ``$1`` and ``$2``).  A
        # number's type is fixed by its text; a quoted literal's type comes from where it
        # stands, so one parameter could not serve two places -- a text repeating one is
        # not normalised at all.
        number = None if lt[0] == "'" else ("-" if neg else "") + lt
        if number is None:
            repeated_string = repeated_string or lt in strings
            strings.add(lt)
        param = numbers.get(number) if number is not None else None
        if param is None:
            v, oid = _literal(lt, neg)
            vals.append(v)
            types.append(oid)
            param = f"${len(vals)} "
            if number is not None:
                numbers[number] = param
        if edits is not None:
            edits.append((base + m.start("neg" if neg else "lit"), base + m.end("lit"), len(param)))
        return m.group("pre") + param

    shape = _SCAN.sub(lit, text.rstrip().rstrip(";"))
    if not vals or len(vals) > _MAX_LITERALS or repeated_string:
        return None
    return shape, vals, tuple(types)


def shape_to_text(edits: list[tuple[int, int, int]], pos: int) -> int:
    """Map an offset in the shape to the offset in the text (a parameter maps to its literal)."""
    delta = 0  # shape offset - text offset, after the edits passed so far
    for start, end, n in edits:
        at = start + delta
        if pos < at:
            break
        if pos < at + n:
            return start
        delta += n - (end - start)
    return pos - delta
