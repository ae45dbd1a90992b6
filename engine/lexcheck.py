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
    (?P<estr>(?<![\w$])[eE]'(?:[^'\\]|\\.|'')*')   # escape string
  | '(?:[^']|'')*'                               # string (also U&'..', B'..', X'..' after their prefix)
  | "(?:[^"]|"")*"                               # quoted identifier
  | --[^\n]*                                     # comments
  | /\*.*?\*/
  | \$(?P<tag>(?:[^\W\d]\w*)?)\$.*?\$(?P=tag)\$  # dollar-quoted string
  | (?P<param>\$\d+)(?P<pjunk>[^\W\d])?          # parameter
  | [^\W\d][\w$]*                                # identifier or keyword
  | (?P<num>(?:\d+(?:\.\d*)?|\.\d+)(?:(?P<exp>[eE][-+]?)(?P<expdigits>\d*))?)(?P<junk>[^\W\d])?
""", re.X | re.S)


_SUSPECT = re.compile(r"\d\.?[^\W\d]|\\[uU]")  # a digit run into a letter, or a Unicode escape


def check(text: str) -> SyntaxErr | None:
    if _SUSPECT.search(text) is None:
        return None  # the common case: nothing that could be junk
    unicode = "\\u" in text or "\\U" in text
    for m in _SCAN.finditer(text):
        if m.group("estr") is not None:
            if unicode:
                err = _check_unicode(m.group("estr")[2:-1], m.start() + 2)
                if err is not None:
                    return err
            continue
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


_HEX = frozenset("0123456789abcdefABCDEF")


def _escape_at(body: str, i: int) -> tuple[int, int] | None:
    """(code point, length) of a complete \\uXXXX / \\UXXXXXXXX escape at ``body[i]``."""
    if body[i:i + 1] != "\\" or body[i + 1:i + 2] not in ("u", "U"):
        return None
    n = 4 if body[i + 1] == "u" else 8
    digits = body[i + 2:i + 2 + n]
    if len(digits) != n or not all(d in _HEX for d in digits):
        return None
    return int(digits, 16), 2 + n


def _check_unicode(body: str, base: int) -> SyntaxErr | None:
    """Unicode escapes of an E'...' string (its ``body`` starts at offset ``base``)."""
    i, n = 0, len(body)
    while i < n:
        if body[i] != "\\":
            i += 1
            continue
        if body[i + 1:i + 2] not in ("u", "U"):
            i += 2
            continue
        esc = _escape_at(body, i)
        if esc is None:
            return SyntaxErr("invalid Unicode escape", position=base + i + 1,
                             hint="Unicode escapes must be \\uXXXX or \\UXXXXXXXX.")
        cp, length = esc
        if cp > 0x10FFFF:
            return SyntaxErr(f'invalid Unicode escape value at or near "{body[i:i + length]}"', position=base + i + 1)
        j = i + length
        if 0xD800 <= cp <= 0xDBFF:
            low = _escape_at(body, j)
            if low is None or not 0xDC00 <= low[0] <= 0xDFFF:
                near = body[j:j + low[1]] if low is not None else (body[j] if j < n else "'")
                return SyntaxErr(f'invalid Unicode surrogate pair at or near "{near}"', position=base + j + 1)
            j += low[1]
        i = j
    return None
