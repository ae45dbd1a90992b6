"""COPY: statement parsing, the text/csv data formats, and the bulk load/unload paths.

Flow
----
``run_copy(session, stmt)`` is called by ``EngineSession`` for a statement whose text
starts with COPY.  It parses the statement itself (sqlglot 30.30 mis-reads
``WITH (freeze on)``), then:

* ``COPY t [(cols)] FROM STDIN`` returns a ``CopyInResult`` carrying a ``CopyLoader``.
  The pg-wire layer answers CopyInResponse, hands every CopyData payload to
  ``loader.feed(bytes)`` (synchronous, cheap), and on CopyDone awaits
  ``loader.finish()`` for the final ``COPY n`` result; on CopyFail it calls
  ``loader.fail(message)`` and sends the error that returns.
* ``COPY t|(query) TO STDOUT`` returns a ``CopyOutResult``: the rows plus the options.
  The pg-wire layer sends CopyOutResponse, then one CopyData per line of
  ``result.lines(encoder_for)`` (``encoder_for(type_oid) -> (value -> bytes)``, the same
  text encoders DataRow uses), then CopyDone and CommandComplete.
* ``... FROM 'file'`` / ``TO 'file'`` run entirely here (superuser only, 42501 otherwise).

Transactions: the loaded rows go into the session's transaction write buffer
(``Txn.tables``) like INSERT's, and are committed in one commit.  Outside a transaction
block ``finish`` opens its own implicit transaction and commits it; inside one the rows
become part of that transaction.  Rows of a table without primary key get fresh rowids
(nobody else can produce the same key, so no row locks are taken); with a primary key
each key is locked and checked for duplicates like INSERT.

Data formats (PostgreSQL's)
---------------------------
text: one row per line (``\\n`` or ``\\r\\n``), fields split by DELIMITER (default tab),
``\\N`` (the NULL string, compared before unescaping) is NULL, backslash escapes
``\\b \\f \\n \\r \\t \\v \\ooo \\xhh`` and ``\\<c>`` = c; a line ``\\.`` ends the data.
csv: fields split by DELIMITER (default ``,``), QUOTE (default ``"``) encloses fields that
may hold delimiters, quotes (doubled, or preceded by ESCAPE) and newlines; an *unquoted*
field equal to the NULL string (default empty) is NULL, a quoted one never is (unless
FORCE_NULL).  HEADER skips (FROM) or writes (TO) one line of column names.
binary: the 11-byte signature ``PGCOPY\n\377\r\n\0``, int32 flags, int32
header-extension length (+ that many bytes); then per row an int16 field count followed by
int32 length + the field's binary send representation (length -1 = NULL); an int16 -1
ends the data.  Field bytes are decoded by ``CopyLoader.decode_binary(type_oid, bytes)``,
which the pg-wire layer installs (the same binary input functions as Bind parameters);
COPY TO writes fields with the binary encoders the pg-wire layer passes as ``encoder_for``.

Errors carry PostgreSQL's context in ``SqlError.where``:
``COPY t, line 3, column x: "abc"``.
"""

from __future__ import annotations

import asyncio
import bisect
import re
import struct
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import structlog

from engine import errors, qualnames, roles
from engine import types as T
from engine.api import Column, LockBusy, Result
from engine.gcpause import gc_paused
from engine.keys import encode_int_key, encode_key, row_id_keys

log = structlog.get_logger("engine.copy")

_FLUSH_BYTES = 1 << 18  # parse buffered text-format data once this much is pending
_YIELD_ROWS = 5000  # rows written between yields to the event loop
_BINARY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"
_BIN_HDR = struct.Struct(">iI")  # flags, header extension length
_BIN_I16 = struct.Struct(">h")
_BIN_I32 = struct.Struct(">i")


# ------------------------------------------------------------------------------------ statement

@dataclass
class CopyOptions:
    format: str = "text"
    delimiter: str | None = None
    null: str | None = None
    header: bool = False
    quote: str | None = None
    escape: str | None = None
    force_quote: list[str] | bool = field(default_factory=list)  # True = all columns
    force_not_null: list[str] = field(default_factory=list)
    force_null: list[str] = field(default_factory=list)
    freeze: bool = False

    def finalize(self, direction: str) -> None:
        csv = self.format == "csv"
        if self.format == "binary":
            if self.delimiter is not None or self.null is not None or self.header or self.quote or self.escape:
                raise errors.SqlError("cannot specify DELIMITER, NULL, HEADER, QUOTE or ESCAPE in BINARY mode",
                                      sqlstate="42601")
            return
        if self.format not in ("text", "csv"):
            raise errors.SqlError(f'COPY format "{self.format}" not recognized', sqlstate="22023")
        if self.delimiter is None:
            self.delimiter = "," if csv else "\t"
        if len(self.delimiter) != 1:
            raise errors.FeatureNotSupported("COPY delimiter must be a single one-byte character")
        if self.delimiter in "\r\n":
            raise errors.SqlError("COPY delimiter cannot be newline or carriage return", sqlstate="22023")
        if self.null is None:
            self.null = "" if csv else "\\N"
        if "\r" in self.null or "\n" in self.null:
            raise errors.SqlError("COPY null representation cannot use newline or carriage return", sqlstate="22023")
        if not csv:
            for name, v in (("quote", self.quote), ("escape", self.escape)):
                if v is not None:
                    raise errors.FeatureNotSupported(f"COPY {name} available only in CSV mode")
            if self.force_quote or self.force_not_null or self.force_null:
                raise errors.FeatureNotSupported("COPY force options available only in CSV mode")
            if self.delimiter in "\\.abcdefghijklmnopqrstuvwxyz0123456789":
                raise errors.SqlError(f'COPY delimiter cannot be "{self.delimiter}"', sqlstate="22023")
        else:
            if self.quote is None:
                self.quote = '"'
            if self.escape is None:
                self.escape = self.quote
            if len(self.quote) != 1 or len(self.escape) != 1:
                raise errors.FeatureNotSupported("COPY quote/escape must be a single one-byte character")
            if self.quote == self.delimiter:
                raise errors.SqlError("COPY delimiter and quote must be different", sqlstate="22023")
        if direction == "from" and self.force_quote:
            raise errors.FeatureNotSupported("COPY force quote only available using COPY TO")
        if direction == "to" and (self.force_not_null or self.force_null):
            raise errors.FeatureNotSupported("COPY force not null/null only available using COPY FROM")


@dataclass
class CopyStmt:
    table: str | None  # None when query is set
    columns: list[str] | None
    query: str | None
    direction: str  # "from" | "to"
    target: str  # "stdin" | "stdout" | "file" | "program"
    filename: str | None
    options: CopyOptions


_TOKEN = re.compile(
    r"""\s*(?:(?P<estr>[eE]'(?:[^'\\]|\\.|'')*')|(?P<str>'(?:[^']|'')*')|(?P<qid>"(?:[^"]|"")*")"""
    r"""|(?P<word>[A-Za-z_][\w$]*)|(?P<num>[-+]?\d+(?:\.\d+)?)|(?P<punct>[(),.*;=])|(?P<other>\S))""",
    re.S,
)
_ESC = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _unescape_estring(body: str) -> str:
    def rep(m: re.Match[str]) -> str:
        s = m.group(1)
        if s in _ESC:
            return _ESC[s]
        if s[0] in "01234567":
            return chr(int(s, 8))
        if s[0] == "x":
            return chr(int(s[1:], 16))
        return s

    return re.sub(r"\\([0-7]{1,3}|x[0-9A-Fa-f]{1,2}|.)", rep, body.replace("''", "'"), flags=re.S)


class _Tokens:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks: list[tuple[str, str, int, int]] = []  # kind, value, start, end
        pos = 0
        while True:
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                break
            kind = m.lastgroup or "other"
            raw = m.group(kind)
            start = m.start(kind)
            if kind == "estr":
                val, kind = _unescape_estring(raw[2:-1]), "str"
            elif kind == "str":
                val = raw[1:-1].replace("''", "'")
            elif kind == "qid":
                val, kind = raw[1:-1].replace('""', '"'), "ident"
            elif kind == "word":
                val = raw
            else:
                val = raw
            self.toks.append((kind, val, start, m.end()))
            pos = m.end()
        if text[pos:].strip():
            raise errors.SyntaxErr(f'syntax error at or near "{text[pos:pos + 10].strip()}"')
        while self.toks and self.toks[-1][1] == ";":
            self.toks.pop()
        self.i = 0

    def peek(self, k: int = 0) -> tuple[str, str, int, int] | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def next(self) -> tuple[str, str, int, int]:
        t = self.peek()
        if t is None:
            raise errors.SyntaxErr("syntax error at end of input")
        self.i += 1
        return t

    def word(self, k: int = 0) -> str | None:
        t = self.peek(k)
        return t[1].lower() if t is not None and t[0] == "word" else None

    def accept(self, *words: str) -> str | None:
        w = self.word()
        if w is not None and w in words:
            self.i += 1
            return w
        return None

    def expect_punct(self, p: str) -> None:
        t = self.next()
        if t[1] != p or t[0] != "punct":
            raise errors.SyntaxErr(f'syntax error at or near "{t[1]}"')

    def ident(self) -> str:
        t = self.next()
        if t[0] == "word":
            return t[1].lower()
        if t[0] == "ident":
            return t[1]
        raise errors.SyntaxErr(f'syntax error at or near "{t[1]}"')

    def string(self) -> str:
        t = self.next()
        if t[0] != "str":
            raise errors.SyntaxErr(f'syntax error at or near "{t[1]}"')
        return t[1]

    def ident_list(self) -> list[str]:
        self.expect_punct("(")
        out = [self.ident()]
        while self.peek() is not None and self.peek()[1] == ",":  # type: ignore[index]
            self.i += 1
            out.append(self.ident())
        self.expect_punct(")")
        return out

    def at_punct(self, p: str) -> bool:
        t = self.peek()
        return t is not None and t[0] == "punct" and t[1] == p


_BOOL_WORDS = {"on": True, "true": True, "1": True, "off": False, "false": False, "0": False}


def parse_copy(text: str) -> CopyStmt:
    """Parse one COPY statement (new ``WITH (...)`` and pre-9.0 option syntax)."""
    tk = _Tokens(text)
    if tk.accept("copy") is None:
        raise errors.SyntaxErr("not a COPY statement")
    table = query = None
    columns = None
    if tk.at_punct("("):
        start = tk.peek()[3]  # type: ignore[index]
        depth = 0
        while True:
            t = tk.next()
            if t[0] == "punct" and t[1] == "(":
                depth += 1
            elif t[0] == "punct" and t[1] == ")":
                depth -= 1
                if depth == 0:
                    query = text[start:t[2]].strip()
                    break
    else:
        parts = [tk.ident()]
        while tk.at_punct("."):
            tk.i += 1
            parts.append(tk.ident())
        table = parts[-1]
        if len(parts) > 2:
            raise errors.FeatureNotSupported(f'cross-database references are not implemented: "{".".join(parts)}"')
        if len(parts) == 2 and parts[0] not in qualnames.KNOWN_SCHEMAS:
            # the engine has one schema of user tables: another one must not become it
            raise errors.SqlError(f'schema "{parts[0]}" does not exist', sqlstate="3F000")
        if tk.at_punct("("):
            columns = tk.ident_list()
    direction = tk.accept("from", "to")
    if direction is None:
        t = tk.peek()
        raise errors.SyntaxErr(f'syntax error at or near "{t[1]}"' if t else "syntax error at end of input")
    if query is not None and direction == "from":
        raise errors.SyntaxErr('syntax error at or near "FROM"')
    filename = None
    w = tk.accept("stdin", "stdout", "program")
    if w == "program":
        filename = tk.string()
        target = "program"
    elif w is not None:
        if (w == "stdin") != (direction == "from"):
            raise errors.SyntaxErr(f'syntax error at or near "{w.upper()}"')
        target = w
    else:
        filename = tk.string()
        target = "file"
    opts = CopyOptions()
    tk.accept("with")
    if tk.at_punct("("):
        _parse_new_options(tk, opts)
    else:
        _parse_legacy_options(tk, opts)
    if tk.accept("where"):
        raise errors.FeatureNotSupported("COPY FROM ... WHERE is not supported")
    t = tk.peek()
    if t is not None:
        raise errors.SyntaxErr(f'syntax error at or near "{t[1]}"')
    opts.finalize(direction)
    return CopyStmt(table, columns, query, direction, target, filename, opts)


def _parse_new_options(tk: _Tokens, opts: CopyOptions) -> None:
    tk.expect_punct("(")
    seen: set[str] = set()
    while True:
        name = tk.ident()
        if name in seen:
            raise errors.SyntaxErr("conflicting or redundant options")
        seen.add(name)
        t = tk.peek()
        arg: Any = None
        if t is not None and not (t[0] == "punct" and t[1] in ",)"):
            if t[0] == "punct" and t[1] == "(":
                arg = tk.ident_list()
            else:
                tk.i += 1
                arg = True if t[1] == "*" else t[1]
        _set_option(opts, name, arg)
        if tk.at_punct(","):
            tk.i += 1
            continue
        tk.expect_punct(")")
        return


def _bool_arg(name: str, arg: Any) -> bool:
    if arg is None:
        return True
    v = _BOOL_WORDS.get(str(arg).lower())
    if v is None:
        raise errors.SyntaxErr(f"{name} requires a Boolean value")
    return v


def _set_option(opts: CopyOptions, name: str, arg: Any) -> None:
    if name == "format":
        opts.format = str(arg).lower()
    elif name == "freeze":
        opts.freeze = _bool_arg(name, arg)
    elif name == "header":
        opts.header = True if isinstance(arg, str) and arg.lower() == "match" else _bool_arg(name, arg)
    elif name in ("delimiter", "null", "quote", "escape"):
        if not isinstance(arg, str):
            raise errors.SyntaxErr(f"{name} requires a string value")
        setattr(opts, name, arg)
    elif name == "force_quote":
        opts.force_quote = True if arg is True else list(arg or [])
    elif name in ("force_not_null", "force_null"):
        if not isinstance(arg, list):
            raise errors.SyntaxErr(f"argument to option \"{name}\" must be a list of column names")
        setattr(opts, name, arg)
    elif name == "encoding":
        if str(arg).upper().replace("-", "") not in ("UTF8", "UNICODE", "SQL_ASCII"):
            raise errors.FeatureNotSupported(f"COPY encoding {arg} is not supported")
    elif name == "oids":
        if _bool_arg(name, arg):
            raise errors.FeatureNotSupported("COPY ... WITH OIDS is not supported")
    else:
        raise errors.SyntaxErr(f'option "{name}" not recognized')


def _parse_legacy_options(tk: _Tokens, opts: CopyOptions) -> None:
    while tk.peek() is not None:
        w = tk.word()
        if w == "binary":
            tk.i += 1
            opts.format = "binary"
        elif w == "csv":
            tk.i += 1
            opts.format = "csv"
        elif w == "header":
            tk.i += 1
            opts.header = True
        elif w == "freeze":
            tk.i += 1
            opts.freeze = True
        elif w in ("delimiter", "null", "quote", "escape", "encoding"):
            tk.i += 1
            tk.accept("as")
            _set_option(opts, w, tk.string())
        elif w == "force":
            tk.i += 1
            if tk.accept("quote"):
                opts.force_quote = True if tk.at_punct("*") and tk.next() else _legacy_cols(tk)
            elif tk.accept("not"):
                if not tk.accept("null"):
                    raise errors.SyntaxErr("syntax error at or near FORCE NOT")
                opts.force_not_null = _legacy_cols(tk)
            elif tk.accept("null"):
                opts.force_null = _legacy_cols(tk)
            else:
                raise errors.SyntaxErr("syntax error at or near FORCE")
        else:
            return


def _legacy_cols(tk: _Tokens) -> list[str]:
    if tk.at_punct("("):
        return tk.ident_list()
    out = [tk.ident()]
    while tk.at_punct(","):
        tk.i += 1
        out.append(tk.ident())
    return out


# ------------------------------------------------------------------------------------ text/csv in

_TEXT_ESC = re.compile(r"\\([0-7]{1,3}|x[0-9A-Fa-f]{1,2}|.)", re.S)


def _text_unescape(s: str) -> str:
    def rep(m: re.Match[str]) -> str:
        c = m.group(1)
        e = _ESC.get(c)
        if e is not None:
            return e
        if c[0] in "01234567":
            return chr(int(c, 8) & 0xFF)
        if c[0] == "x" and len(c) > 1:
            return chr(int(c[1:], 16))
        return c

    return _TEXT_ESC.sub(rep, s)


def split_text_line(line: str, delim: str, null: str) -> list[str | None]:
    """Fields of one text-format line that contains backslashes (the slow path)."""
    raw: list[str] = []
    cur: list[str] = []
    i, n = 0, len(line)
    while i < n:
        c = line[i]
        if c == "\\" and i + 1 < n:
            cur.append(line[i:i + 2])
            i += 2
            continue
        if c == delim:
            raw.append("".join(cur))
            cur = []
        else:
            cur.append(c)
        i += 1
    raw.append("".join(cur))
    return [None if f == null else (_text_unescape(f) if "\\" in f else f) for f in raw]


def split_csv(text: str, opts: CopyOptions) -> Iterator[tuple[int, list[str | None], list[bool]]]:
    """CSV records of ``text``: (first line number, fields, quoted flags).  Unquoted fields
    equal to the NULL string become None here; FORCE_NULL/FORCE_NOT_NULL are applied by the
    caller using the quoted flags."""
    delim, quote, esc, null = opts.delimiter, opts.quote, opts.escape, opts.null
    assert delim is not None and quote is not None and esc is not None
    i, n = 0, len(text)
    line = 1
    while i < n:
        start_line = line
        fields: list[str | None] = []
        quoted: list[bool] = []
        # fast path: a record with no quote char up to its newline
        nl = text.find("\n", i)
        end = n if nl < 0 else nl
        seg = text[i:end]
        if quote not in seg:
            if seg.endswith("\r"):
                seg = seg[:-1]
            i = end + 1
            line += 1
            if seg == "\\.":
                return
            parts = seg.split(delim)
            yield start_line, [None if p == null else p for p in parts], [False] * len(parts)
            continue
        cur: list[str] = []
        in_q = was_q = False
        while True:
            if i >= n:
                if in_q:
                    raise errors.SqlError("unterminated CSV quoted field", sqlstate="22P04")
                break
            c = text[i]
            if in_q:
                if c == esc and i + 1 < n and text[i + 1] in (quote, esc):
                    cur.append(text[i + 1])
                    i += 2
                    continue
                if c == quote:
                    in_q = False
                    i += 1
                    continue
                if c == "\n":
                    line += 1
                cur.append(c)
                i += 1
                continue
            if c == quote:
                in_q = was_q = True
                i += 1
                continue
            if c == delim:
                f = "".join(cur)
                fields.append(None if not was_q and f == null else f)
                quoted.append(was_q)
                cur, was_q = [], False
                i += 1
                continue
            if c == "\n" or c == "\r":
                i += 2 if c == "\r" and i + 1 < n and text[i + 1] == "\n" else 1
                line += 1
                break
            cur.append(c)
            i += 1
        f = "".join(cur)
        fields.append(None if not was_q and f == null else f)
        quoted.append(was_q)
        yield start_line, fields, quoted


def _converter(oid: int, typmod: int) -> Callable[[str], Any]:
    """Text -> value for one column, with fast paths for the common types."""
    if oid in (T.TEXT, T.NAME, T.UNKNOWN):
        return str
    if oid == T.INT8:
        def conv_i8(s: str) -> int:
            v = int(s)
            if -(2**63) <= v < 2**63 and "_" not in s:
                return v
            raise ValueError
        return _guard(conv_i8, oid, typmod)
    if oid == T.INT4:
        def conv_i4(s: str) -> int:
            v = int(s)
            if -(2**31) <= v < 2**31 and "_" not in s:
                return v
            raise ValueError
        return _guard(conv_i4, oid, typmod)
    if oid == T.BPCHAR and typmod >= 4:
        n = typmod - 4

        def conv_bpchar(s: str) -> str:
            if len(s) == n:
                return s
            if len(s) < n:
                return s.ljust(n)
            return T.fit_string(s, oid, typmod, explicit=False)
        return conv_bpchar
    return lambda s: T.parse_text(s, oid, typmod)


_INT_RANGES = {T.INT2: (-(2**15), 2**15 - 1), T.INT4: (-(2**31), 2**31 - 1), T.INT8: (-(2**63), 2**63 - 1)}


def _column_converter(oid: int, typmod: int, conv: Callable[[str], Any]) -> Callable[[tuple[str, ...]], list]:
    """A whole column of text fields (no NULLs) -> values, in C where the type allows; raises
    (ValueError or SqlError) on any bad field -- the caller then redoes the chunk row by row
    for PostgreSQL's exact error and line."""
    if oid in (T.TEXT, T.NAME, T.UNKNOWN):
        return list
    if oid in _INT_RANGES:
        lo, hi = _INT_RANGES[oid]

        def ints(col: tuple[str, ...]) -> list:
            vals = list(map(int, col))
            if vals and (min(vals) < lo or max(vals) > hi or "_" in "".join(col)):
                raise ValueError
            return vals
        return ints
    if oid == T.BPCHAR and typmod >= 4:
        n = typmod - 4
        blank = " " * n  # one shared string for every empty field (pgbench's filler)

        def bpchars(col: tuple[str, ...]) -> list:
            return [blank if not v else v if len(v) == n else conv(v) for v in col]
        return bpchars
    return lambda col: list(map(conv, col))


def _guard(fast: Callable[[str], Any], oid: int, typmod: int) -> Callable[[str], Any]:
    """Use ``fast``; on ValueError defer to ``parse_text`` for PostgreSQL's exact error."""
    def conv(s: str) -> Any:
        try:
            return fast(s)
        except ValueError:
            return T.parse_text(s, oid, typmod)
    return conv


# ------------------------------------------------------------------------------------ results

@dataclass
class CopyInResult(Result):
    loader: Any = None  # CopyLoader


@dataclass
class CopyOutResult(Result):
    options: CopyOptions | None = None
    copy_columns: list[Column] = field(default_factory=list)

    def lines(self, encoder_for: Callable[[int], Callable[[Any], bytes]]) -> Iterator[bytes]:
        yield from format_rows(self.copy_columns, self.rows, self.options or CopyOptions(), encoder_for)


def _binary_rows(cols: list[Column], rows: list[tuple],
                 encoder_for: Callable[[int], Callable[[Any], bytes]]) -> Iterator[bytes]:
    """Binary COPY: one chunk per row (int16 count, int32 length + bytes; the first one
    preceded by the header), then the trailer."""
    encs = [encoder_for(c.type_oid) for c in cols]
    count = _BIN_I16.pack(len(cols))
    null = _BIN_I32.pack(-1)
    header = _BINARY_SIGNATURE + _BIN_HDR.pack(0, 0)  # sent with the first row, as PostgreSQL does
    for row in rows:
        parts = [header, count]
        header = b""
        for v, enc in zip(row, encs):
            if v is None:
                parts.append(null)
            else:
                b = enc(v)
                parts.append(_BIN_I32.pack(len(b)))
                parts.append(b)
        yield b"".join(parts)
    yield header + _BIN_I16.pack(-1)


def format_rows(cols: list[Column], rows: list[tuple], opts: CopyOptions,
                encoder_for: Callable[[int], Callable[[Any], bytes]]) -> Iterator[bytes]:
    """Each row (and the header, if asked) as one encoded line ending in ``\\n``."""
    if opts.format == "binary":
        yield from _binary_rows(cols, rows, encoder_for)
        return
    delim = opts.delimiter.encode()  # type: ignore[union-attr]
    null = opts.null.encode()  # type: ignore[union-attr]
    encs = [encoder_for(c.type_oid) for c in cols]
    csv = opts.format == "csv"
    if csv:
        q = opts.quote.encode()  # type: ignore[union-attr]
        e = opts.escape.encode()  # type: ignore[union-attr]
        fq = opts.force_quote
        forced = [True] * len(cols) if fq is True else [c.name in fq for c in cols]  # type: ignore[operator]
        specials = (delim, q, b"\n", b"\r")

        def csv_cell(b: bytes, force: bool) -> bytes:
            if force or b == null or b == b"\\." or any(s in b for s in specials):
                if e == q:
                    return q + b.replace(q, q + q) + q
                return q + b.replace(e, e + e).replace(q, e + q) + q
            return b

        if opts.header:
            yield delim.join(csv_cell(c.name.encode(), False) for c in cols) + b"\n"
        for row in rows:
            yield delim.join(null if v is None else csv_cell(enc(v), f)
                             for v, enc, f in zip(row, encs, forced)) + b"\n"
        return
    esc_needed = re.compile(re.escape(delim) + rb"|[\\\n\r\t\b\f\v]")
    table = {b"\\": b"\\\\", b"\n": b"\\n", b"\r": b"\\r", b"\t": b"\\t", b"\b": b"\\b", b"\f": b"\\f",
             b"\v": b"\\v"}
    table.setdefault(delim, b"\\" + delim)

    def text_cell(b: bytes) -> bytes:
        if esc_needed.search(b) is None:
            return b
        return esc_needed.sub(lambda m: table[m.group(0)], b)

    if opts.header:
        yield delim.join(text_cell(c.name.encode()) for c in cols) + b"\n"
    for row in rows:
        yield delim.join(null if v is None else text_cell(enc(v)) for v, enc in zip(row, encs)) + b"\n"


def engine_encoder(type_oid: int) -> Callable[[Any], bytes]:
    """Text output without the wire layer (COPY TO 'file')."""
    return lambda v: T.to_text(v).encode()


# ------------------------------------------------------------------------------------ loading

class CopyLoader:
    """Receives COPY FROM data, parses it into rows, and writes them at ``finish``."""

    def __init__(self, session: Any, td: Any, positions: list[int], opts: CopyOptions) -> None:
        self.session = session
        self.td = td
        self.positions = positions
        self.opts = opts
        self.ncols = len(positions)
        cols = td.columns
        self.convs = [_converter(cols[p].type_oid, cols[p].typmod) for p in positions]
        self.col_convs = [_column_converter(cols[p].type_oid, cols[p].typmod, c) for p, c in zip(positions, self.convs)]
        self.names = [cols[p].name for p in positions]
        self.chunks: list[bytes] = []
        self.pending = 0
        self.rows: list[tuple] = []
        # (first row index, its line): rows after it are on the following lines, until the
        # next entry (text format rows are one line each; csv rows may span lines)
        self.line_runs: list[tuple[int, int]] = []
        self.line = 0  # lines consumed so far
        self.header_done = not opts.header
        self.crlf: bool | None = None
        self.ended = False  # saw "\."
        self.error: errors.SqlError | None = None
        self.full = positions == list(range(len(cols)))
        self.force_not_null = self._col_set(opts.force_not_null)
        self.force_null = self._col_set(opts.force_null)
        # binary format: (type_oid, field bytes) -> value; installed by the protocol layer
        self.decode_binary: Callable[[int, bytes], Any] | None = None
        self.binary = opts.format == "binary"

    def _col_set(self, names: list[str]) -> set[int]:
        out = set()
        for n in names:
            if n not in self.names:
                raise errors.SqlError(f'column "{n}" referenced by COPY is not in the column list',
                                      sqlstate="42P10")
            out.add(self.names.index(n))
        return out

    @property
    def column_count(self) -> int:
        return self.ncols

    # -- receiving ---------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        if self.error is not None or self.ended:
            return
        self.chunks.append(data)
        self.pending += len(data)
        if self.pending >= _FLUSH_BYTES and self.opts.format == "text":
            buf = b"".join(self.chunks)
            cut = buf.rfind(b"\n") + 1
            self.chunks = [buf[cut:]] if cut < len(buf) else []
            self.pending = len(buf) - cut
            self._guarded(buf[:cut])

    def fail(self, message: str) -> errors.SqlError:
        err = errors.QueryCanceled(f"COPY from stdin failed: {message}")
        self._abort(err)
        return err

    def _abort(self, err: errors.SqlError) -> None:
        self.rows = []
        self.session._fail()

    def _guarded(self, data: bytes) -> None:
        with gc_paused():
            self._parse(data)

    def _parse(self, data: bytes) -> None:
        if self.binary:
            try:
                self._parse_binary(data)
            except errors.SqlError as e:
                self.error = e
            return
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            self.error = errors.SqlError(f'invalid byte sequence for encoding "UTF8": 0x{data[e.start]:02x}',
                                         sqlstate="22021", where=f"COPY {self.td.name}, line {self.line + 1}")
            return
        try:
            if self.opts.format == "csv":
                self._parse_csv(text)
            else:
                self._parse_text(text)
        except errors.SqlError as e:
            self.error = e

    # -- parsing ------------------------------------------------------------------------------
    def _ctx(self, lineno: int, col: int | None = None, value: str | None = None, raw: str | None = None) -> str:
        s = f"COPY {self.td.name}, line {lineno}"
        if col is not None:
            s += f", column {self.names[col]}"
            if value is not None:
                s += f': "{value}"'
        elif raw is not None:
            s += f': "{raw}"'
        return s

    def _parse_text(self, text: str) -> None:
        if not text:
            return
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        if self.crlf is None and lines:
            self.crlf = lines[0].endswith("\r")
        opts = self.opts
        delim, null = opts.delimiter, opts.null
        assert delim is not None and null is not None
        if self.header_done and not self.crlf and self._fast_text(lines, delim, null, text.count("\\")):
            return
        ncols, convs, rows = self.ncols, self.convs, self.rows
        note_line = self._note_line
        crlf = self.crlf
        lineno = self.line
        try:
            for line in lines:
                lineno += 1
                if crlf and line.endswith("\r"):
                    line = line[:-1]
                if line == "\\.":
                    self.ended = True
                    break
                if not self.header_done:
                    self.header_done = True
                    continue
                if "\\" in line:
                    fields: list[Any] = split_text_line(line, delim, null)
                else:
                    fields = line.split(delim)
                    if null in fields:
                        fields = [None if f == null else f for f in fields]
                if len(fields) != ncols:
                    self._count_error(lineno, fields, line)
                try:
                    rows.append(tuple([None if f is None else c(f) for c, f in zip(convs, fields)]))
                except errors.SqlError as e:
                    self._value_error(e, lineno, fields)
                note_line(lineno)
        finally:
            self.line = lineno

    def _fast_text(self, lines: list[str], delim: str, null: str, backslashes: int) -> bool:
        """Text-format lines whose only backslashes are those of NULL fields (no escapes,
        no end marker), converted a column at a time; False (nothing consumed) if any line
        or field is not plain -- the row-by-row path then finds PostgreSQL's exact error."""
        if not lines:
            return True
        ncols = self.ncols
        split = [line.split(delim) for line in lines]
        if set(map(len, split)) != {ncols}:
            return False
        cols = list(zip(*split))
        if backslashes and backslashes != null.count("\\") * sum(col.count(null) for col in cols):
            return False
        out = []
        try:
            for col, conv, one in zip(cols, self.col_convs, self.convs):
                if null in col:
                    out.append([None if v == null else one(v) for v in col])
                else:
                    out.append(conv(col))
        except (ValueError, errors.SqlError):
            return False
        self._note_line(self.line + 1)
        self.rows.extend(zip(*out))
        self.line += len(lines)
        return True

    def _note_line(self, lineno: int) -> None:
        """The row about to be appended comes from line ``lineno``."""
        runs, i = self.line_runs, len(self.rows)
        if not runs or runs[-1][1] + (i - runs[-1][0]) != lineno:
            runs.append((i, lineno))

    def row_line(self, i: int) -> int:
        """The line row ``i`` came from (error context)."""
        runs = self.line_runs
        j = bisect.bisect_right(runs, (i, float("inf"))) - 1
        return runs[j][1] + (i - runs[j][0]) if j >= 0 else i + 1

    def _parse_binary(self, data: bytes) -> None:
        """The whole binary COPY stream (see the module docstring for its layout)."""
        name = self.td.name
        if self.decode_binary is None:
            raise errors.FeatureNotSupported("COPY FROM in BINARY format is only supported from STDIN")

        def eof() -> errors.SqlError:
            return errors.SqlError("unexpected EOF in COPY data", sqlstate="22P04",
                                   where=f"COPY {name}, line {self.line + 1}")

        if data[:11] != _BINARY_SIGNATURE:
            raise errors.SqlError("COPY file signature not recognized", sqlstate="22P04",
                                  where=f"COPY {name}, line 1")
        if len(data) < 19:
            raise eof()
        flags, ext = _BIN_HDR.unpack_from(data, 11)
        if flags & 0x0001FFFF:  # critical flags (bits 0-15) and "has OIDs" (bit 16)
            raise errors.SqlError("invalid COPY file header (unrecognized critical flags)", sqlstate="22P04",
                                  where=f"COPY {name}, line 1")
        pos, n = 19 + ext, len(data)
        cols = self.td.columns
        oids = [(cols[p].type_oid, cols[p].typmod) for p in self.positions]
        fits = [T.caster(oid, oid, typmod, explicit=False) if typmod >= 4 else None for oid, typmod in oids]
        decode, ncols = self.decode_binary, self.ncols
        while True:
            if pos + 2 > n:
                raise eof()
            (nf,) = _BIN_I16.unpack_from(data, pos)
            pos += 2
            if nf == -1:
                self.ended = True
                return
            self.line += 1
            if nf != ncols:
                raise errors.SqlError(f"row field count is {nf}, expected {ncols}", sqlstate="22P04",
                                      where=f"COPY {name}, line {self.line}")
            row = []
            for i in range(nf):
                if pos + 4 > n:
                    raise eof()
                (ln,) = _BIN_I32.unpack_from(data, pos)
                pos += 4
                if ln == -1:
                    row.append(None)
                    continue
                if ln < 0 or pos + ln > n:
                    raise eof()
                try:
                    v = decode(oids[i][0], data[pos:pos + ln])
                    if fits[i] is not None:
                        v = fits[i](v)
                except errors.SqlError as e:
                    e.where = f"COPY {name}, line {self.line}, column {self.names[i]}"
                    raise
                pos += ln
                row.append(v)
            self._note_line(self.line)
            self.rows.append(tuple(row))

    def _parse_csv(self, text: str) -> None:
        ncols, convs, rows = self.ncols, self.convs, self.rows
        note_line = self._note_line
        null = self.opts.null
        fnn, fn = self.force_not_null, self.force_null
        for lineno, fields, quoted in split_csv(text, self.opts):
            self.line = lineno
            if not self.header_done:
                self.header_done = True
                continue
            if fnn or fn:
                for i in range(min(len(fields), ncols)):
                    if i in fnn and fields[i] is None:
                        fields[i] = null
                    if i in fn and quoted[i] and fields[i] == null:
                        fields[i] = None
            if len(fields) != ncols:
                if ncols == 1 and len(fields) == 1:
                    pass
                self._count_error(lineno, fields, None)
            try:
                rows.append(tuple([None if f is None else c(f) for c, f in zip(convs, fields)]))
            except errors.SqlError as e:
                self._value_error(e, lineno, fields)
            note_line(lineno)

    def _count_error(self, lineno: int, fields: list[Any], raw: str | None) -> None:
        if len(fields) > self.ncols:
            raise errors.SqlError("extra data after last expected column", sqlstate="22P04",
                                  where=self._ctx(lineno, raw=raw))
        col = len(fields)
        raise errors.SqlError(f'missing data for column "{self.names[col]}"', sqlstate="22P04",
                              where=self._ctx(lineno, raw=raw))

    def _value_error(self, e: errors.SqlError, lineno: int, fields: list[Any]) -> None:
        for i, (c, f) in enumerate(zip(self.convs, fields)):
            if f is None:
                continue
            try:
                c(f)
            except errors.SqlError:
                e.where = self._ctx(lineno, i, f)
                raise e from None
        raise e

    # -- writing ---------------------------------------------------------------------------
    async def finish(self) -> Result:
        s = self.session
        # the rows are written here, after the COPY statement itself returned: a statement
        # of its own for cancel requests and statement_timeout (engine.interrupts)
        # (COPY FROM a file runs it inside its statement: that one goes on)
        intr = s.interrupts
        if intr.running:
            return await self._finish()
        intr.begin(s.gucs.get("statement_timeout"))
        try:
            return await self._finish()
        finally:
            intr.end()

    async def _finish(self) -> Result:
        s = self.session
        try:
            if self.error is None and self.chunks:
                data = b"".join(self.chunks)
                self.chunks = []
                self._guarded(data)
            if self.error is not None:
                raise self.error
            if self.opts.format == "csv" and not self.header_done:
                pass
            own = s.txn is None
            if own:
                s.txn = s._new_txn(explicit=False)
            await s.store.ensure_loaded([self.td.table_id])
            t0 = time.perf_counter()
            n = await self._write(s.txn)
            self.rows = []
            t1 = time.perf_counter()
            if own:
                await s._end_implicit()
            log.info("copy loaded", table=self.td.name, rows=n, write_s=round(t1 - t0, 3),
                     commit_s=round(time.perf_counter() - t1, 3) if own else None)
            return Result(f"COPY {n}")
        except errors.SqlError:
            self.rows = []
            s._fail()
            raise
        except Exception as e:  # noqa: BLE001 -- never a traceback to the client
            log.exception("COPY failed", table=self.td.name)
            self.rows = []
            s._fail()
            raise errors.InternalError(f"internal error: {type(e).__name__}: {e}") from None

    def _full_rows(self, ctx: Any) -> list[tuple]:
        """Rows in table column order, with defaults for columns not listed."""
        if self.full:
            return self.rows
        from engine.dml import default_expr
        from engine.planner import Planner

        td = self.td
        n = len(td.columns)
        pl = Planner(self.session._catalog(), [])
        fill = [(i, default_expr(pl, td, i).fn) for i in range(n)
                if i not in self.positions and td.columns[i].default is not None]
        pos = self.positions
        out = []
        for r in self.rows:
            row = [None] * n
            for i, f in fill:
                row[i] = f(None, ctx)
            for p, v in zip(pos, r):
                row[p] = v
            out.append(tuple(row))
        return out

    async def _write(self, txn: Any) -> int:
        from engine.context import ExecCtx
        from engine.dml import WRITE_CHECK_EVERY, _unique_sets, _Writer
        from engine.interrupts import checker

        s = self.session
        td = self.td
        store = s.store
        ctx = ExecCtx(s, txn, store.snapshot())
        ctx.catalog = s._catalog()
        rows = self._full_rows(ctx)
        tid = td.table_id
        buf = txn.tables.get(tid)
        if buf is None:
            buf = txn.tables[tid] = {}
        txn.drop_own_indexes(tid)  # rows go straight into the buffer below
        writer = _Writer(td)
        not_null = writer.not_null
        check = checker(ctx)
        try:
            i = 0
            uniques = bool(_unique_sets(td))  # UNIQUE constraints and CREATE UNIQUE INDEX
            if not td.pk and not uniques:
                firsts = []  # the first row with a NULL in each NOT NULL column
                for j in not_null:
                    col = [row[j] for row in rows]
                    if None in col:
                        firsts.append(col.index(None))
                if firsts:
                    i = min(firsts)
                    writer.check_row(rows[i])  # raises 23502 for the first such row
                first = s.db.reserve_rowids(td, txn, len(rows))
                for start in range(0, len(rows), _YIELD_ROWS):
                    check()
                    with gc_paused():
                        end = min(start + _YIELD_ROWS, len(rows))
                        buf.update(zip(row_id_keys(first + start, end - start), rows[start:end]))
                    await asyncio.sleep(0)  # keep the loop (heartbeats, other sessions) alive
                return len(rows)
            pk = td.pk
            single_int = len(pk) == 1 and td.columns[pk[0]].type_oid in T.INTS
            for i, row in enumerate(rows):
                if not i % WRITE_CHECK_EVERY:
                    check()
                writer.check_row(row)
                if pk:
                    key = encode_int_key(row[pk[0]]) if single_int else encode_key([row[j] for j in pk])
                else:
                    key = s.db.next_rowid(td, txn)
                while True:
                    try:
                        if pk:
                            writer.claim_key(key, row, ctx)
                        if uniques:
                            writer.check_uniques(key, row, ctx)
                        break
                    except LockBusy as e:
                        await store.wait_for(e.holder)
                buf[key] = row
                if txn.own_ix:  # later rows' unique checks look these up
                    txn.index_own(tid, buf, ((key, row),))
                if not i % _YIELD_ROWS and i:
                    await asyncio.sleep(0)
            return len(rows)
        except errors.SqlError as e:
            if e.where is None:
                e.where = f"COPY {td.name}, line {self.row_line(i)}"
            raise


# ------------------------------------------------------------------------------------ entry

async def run_copy(session: Any, text: str) -> Result:
    """Start or run one COPY statement for ``session`` (an ``EngineSession``)."""
    st = parse_copy(text)
    if st.target == "program":
        raise errors.SqlError("must be superuser or a member of the pg_execute_server_program role "
                              "to COPY to or from an external program", sqlstate="42501") \
            if not roles.is_superuser(session) else errors.FeatureNotSupported("COPY ... PROGRAM is not supported")
    if st.target == "file" and not roles.is_superuser(session):
        raise errors.SqlError("must be superuser or have privileges of the pg_read_server_files role to COPY from a file"
                              if st.direction == "from" else
                              "must be superuser or have privileges of the pg_write_server_files role to COPY to a file",
                              sqlstate="42501",
                              hint="Anyone can COPY to stdout or from stdin. psql's \\copy command also works for anyone.")
    if st.direction == "from":
        return await _copy_from(session, st)
    return await _copy_to(session, st)


def _lookup(session: Any, name: str) -> Any:
    td = session._catalog().get(name)
    if td is None or td.kind != "r":
        raise errors.UndefinedTable(f'relation "{name}" does not exist')
    return td


def _positions(td: Any, names: list[str] | None) -> list[int]:
    if not names:
        return list(range(len(td.columns)))
    out = []
    for n in names:
        i = td.column_index(n)
        if i is None:
            raise errors.UndefinedColumn(f'column "{n}" of relation "{td.name}" does not exist')
        if i in out:
            raise errors.SqlError(f'column "{n}" specified more than once', sqlstate="42701")
        out.append(i)
    return out


async def _copy_from(session: Any, st: CopyStmt) -> Result:
    txn = session.txn
    if session.store.read_only or (txn is not None and txn.read_only):
        raise errors.ReadOnlyTransaction("cannot execute COPY FROM in a read-only transaction")
    assert st.table is not None
    td = _lookup(session, st.table)
    positions = _positions(td, st.columns)
    from engine import privileges

    cat = session._catalog()
    privileges.check_needs([privileges.Need(td.table_id, "a", None, tuple(td.columns[i].name for i in positions))],
                           session, cat)
    if td.rls:
        from engine import rls, roles

        if rls.applies(cat, roles.current(session, cat), td):
            raise errors.FeatureNotSupported("COPY FROM not supported with row-level security",
                                             hint="Use INSERT statements instead.")
    loader = CopyLoader(session, td, positions, st.options)
    if st.target == "stdin":
        return CopyInResult("COPY", loader=loader)
    try:
        with open(st.filename, "rb") as f:  # type: ignore[arg-type]
            data = f.read()
    except OSError as e:
        raise errors.SqlError(f'could not open file "{st.filename}" for reading: {e.strerror}',
                              sqlstate="58P01") from None
    loader.feed(data)
    return await loader.finish()


async def _copy_to(session: Any, st: CopyStmt) -> Result:
    if st.query is not None:
        sql = st.query
    else:
        assert st.table is not None
        td = _lookup(session, st.table)
        cols = [td.columns[i].name for i in _positions(td, st.columns)]
        sql = "SELECT " + ", ".join('"' + c.replace('"', '""') + '"' for c in cols) + \
              ' FROM "' + td.name.replace('"', '""') + '"'
    stmts = session.db.parser.parse(sql)
    if len(stmts) != 1:
        raise errors.SyntaxErr("COPY query must be a single statement")
    res = await session._run(stmts[0], (), None)
    if res.columns is None:
        raise errors.FeatureNotSupported("COPY query must have a RETURNING clause")
    opts = st.options
    fq = opts.force_quote
    if isinstance(fq, list):
        names = {c.name for c in res.columns}
        for n in fq:
            if n not in names:
                raise errors.SqlError(f'FORCE_QUOTE column "{n}" not referenced by COPY', sqlstate="42P10")
    tag = f"COPY {len(res.rows)}"
    if st.target == "stdout":
        return CopyOutResult(tag, None, res.rows, options=opts, copy_columns=list(res.columns))
    if opts.format == "binary":
        raise errors.FeatureNotSupported("COPY TO a file in BINARY format is not supported (use STDOUT)")
    try:
        with open(st.filename, "wb") as f:  # type: ignore[arg-type]
            for line in format_rows(list(res.columns), res.rows, opts, engine_encoder):
                f.write(line)
    except OSError as e:
        raise errors.SqlError(f'could not open file "{st.filename}" for writing: {e.strerror}',
                              sqlstate="58P01") from None
    return Result(tag)
