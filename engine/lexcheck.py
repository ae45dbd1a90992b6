"""Lexical errors PostgreSQL's scanner reports that sqlglot's tokenizer lets through.

PostgreSQL 15 rejects a number or parameter run into an identifier (``123abc``, ``0x1F``,
``1_000``, ``1e``, ``$1a``): sqlglot would read ``123abc`` as ``123 AS abc``.  ``check``
scans a statement once (strings, quoted identifiers, comments and identifiers are skipped
whole) and returns the syntax error PostgreSQL gives, positioned at the number.
"""

from __future__ import annotations

import re

from engine.errors import SyntaxErr

_SCAN = re.compile(r"""
    (?<![\w$])[eE]'(?:[^'\\]|\\.|'')*'          # escape string
  | '(?:[^']|'')*'                               # string (also U&'..', B'..', X'..' after their prefix)
  | "(?:[^"]|"")*"                               # quoted identifier
  | --[^\n]*                                     # comments
  | /\*.*?\*/
  | \$(?P<tag>(?:[^\W\d]\w*)?)\$.*?\$(?P=tag)\$  # dollar-quoted string
  | (?P<param>\$\d+)(?P<pjunk>[^\W\d])?          # parameter
  | [^\W\d][\w$]*                                # identifier or keyword
  | (?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:(?P<exp>[eE][-+]?)(?P<expdigits>\d*))?)(?P<junk>[^\W\d])?
""", re.X | re.S)


def check(text: str) -> SyntaxErr | None:
    if not any(c.isdigit() for c in text):
        return None
    for m in _SCAN.finditer(text):
        if m.group("num") is not None:
            if m.group("exp") is not None and not m.group("expdigits"):
                near = m.group("num")  # "1e", "1e+": an exponent without digits
            elif m.group("junk") is not None:
                near = m.group("num") + m.group("junk")
            else:
                continue
            return SyntaxErr(f'trailing junk after numeric literal at or near "{near}"', position=m.start() + 1)
        if m.group("pjunk") is not None:
            return SyntaxErr(f'trailing junk after parameter at or near "{m.group("param")}{m.group("pjunk")}"',
                             position=m.start() + 1)
    return None
