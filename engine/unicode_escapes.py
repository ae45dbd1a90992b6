"""Unicode-escaped strings and identifiers: ``U&'d\\0061t\\+000061'``, ``U&"..." UESCAPE '!'``.

sqlglot does not read them, so ``rewrite`` replaces each with the plain literal or quoted
identifier it stands for before parsing.  ``\\XXXX`` (4 hex digits) and ``\\+XXXXXX`` (6) are
code points, a doubled escape character is itself, a UTF-16 surrogate pair written as two
escapes is one character.  Malformed ones are syntax errors positioned like PostgreSQL's.
"""

from __future__ import annotations

import re

from engine.errors import SyntaxErr

_SCAN = re.compile(r"""
    (?<![\w$])[eE]'(?:[^'\\]|\\.|'')*'
  | (?<![\w$])[uU]&(?P<q>'(?:[^']|'')*'|"(?:[^"]|"")*")(?P<uesc>\s*\bUESCAPE\b\s*(?P<esc>'(?:[^']|'')*'|\S?))?
  | '(?:[^']|'')*'
  | "(?:[^"]|"")*"
  | --[^\n]*
  | /\*.*?\*/
  | \$(?P<tag>(?:[^\W\d]\w*)?)\$.*?\$(?P=tag)\$
""", re.X | re.S | re.I)
_HEX = "0123456789abcdefABCDEF"
_ESCAPE_HINT = "Unicode escapes must be \\XXXX or \\+XXXXXX."


def rewrite(text: str) -> str:
    if "&" not in text:
        return text
    out: list[str] = []
    last = 0
    for m in _SCAN.finditer(text):
        if m.group("q") is None:
            continue
        esc = "\\"
        if m.group("uesc") is not None:
            lit = m.group("esc")
            where = m.start("esc") + 1
            if not lit.startswith("'"):
                raise SyntaxErr(f'UESCAPE must be followed by a simple string literal at or near "{lit}"',
                                position=where)
            esc = lit[1:-1].replace("''", "'")
            if len(esc) != 1 or esc in _HEX or esc in "+'\"" or esc.isspace():
                raise SyntaxErr(f'invalid Unicode escape character at or near "{lit}"', position=where)
        q = m.group("q")
        body = _decode(q[1:-1], esc, m.start("q") + 1, q[0])
        quoted = q[0] + body.replace(q[0], q[0] * 2) + q[0]
        out += [text[last:m.start()], quoted]
        last = m.end()
    if not out:
        return text
    out.append(text[last:])
    return "".join(out)


def _decode(raw: str, esc: str, base: int, quote: str) -> str:
    """``raw``: the text between the quotes (quotes still doubled); ``base``: its offset."""
    s = raw.replace(quote * 2, quote)  # offsets below are only exact without doubled quotes
    out: list[str] = []
    high = None  # pending high surrogate, and where the low one must start
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c != esc:
            if high is not None:
                raise SyntaxErr("invalid Unicode surrogate pair", position=base + i + 1)
            out.append(c)
            i += 1
            continue
        if i + 1 < n and s[i + 1] == esc:
            if high is not None:
                raise SyntaxErr("invalid Unicode surrogate pair", position=base + i + 1)
            out.append(esc)
            i += 2
            continue
        plus = i + 1 < n and s[i + 1] == "+"
        start = i + 2 if plus else i + 1
        digits = s[start:start + (6 if plus else 4)]
        if len(digits) != (6 if plus else 4) or any(d not in _HEX for d in digits):
            raise SyntaxErr("invalid Unicode escape", hint=_ESCAPE_HINT, position=base + i + 1)
        cp = int(digits, 16)
        if cp > 0x10FFFF:
            raise SyntaxErr("invalid Unicode escape value", position=base + i + 1)
        if high is not None:
            if not 0xDC00 <= cp <= 0xDFFF:
                raise SyntaxErr("invalid Unicode surrogate pair", position=base + i + 1)
            out.append(chr(0x10000 + ((high - 0xD800) << 10) + (cp - 0xDC00)))
            high = None
        elif 0xD800 <= cp <= 0xDBFF:
            high = cp
        elif 0xDC00 <= cp <= 0xDFFF:
            raise SyntaxErr("invalid Unicode surrogate pair", position=base + i + 1)
        elif cp == 0:
            raise SyntaxErr("invalid Unicode escape value", position=base + i + 1)
        else:
            out.append(chr(cp))
        i = start + len(digits)
    if high is not None:
        raise SyntaxErr("invalid Unicode surrogate pair", position=base + n + 1)
    return "".join(out)
