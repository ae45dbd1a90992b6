"""Text PostgreSQL's ruleutils would print: type names, index and constraint definitions,
column default expressions."""

from __future__ import annotations

import re
from typing import Any

from engine import types as T
from engine.pgcatalog.types_data import all_types

_TYPNAME = {row[0]: row[1] for row in all_types()}


def format_type(oid: int | None, typmod: int | None) -> str | None:
    if oid is None:
        return None
    typmod = -1 if typmod is None else typmod
    if oid in T.TYPE_NAMES and oid not in (T.UNKNOWN, T.RECORD, T.VOID):
        if oid == T.BPCHAR and typmod < 4:
            return "bpchar"
        return T.display_name(oid, typmod)
    name = _TYPNAME.get(oid)
    if name is None:
        return "???"
    if name.startswith("_"):
        inner = format_type(oid_of(name[1:]), typmod)
        return f"{inner}[]"
    return {"char": '"char"'}.get(name, name)


def oid_of(typname: str) -> int:
    for row in all_types():
        if row[1] == typname:
            return row[0]
    return 0


def _ident(name: str) -> str:
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def _cols(td: Any, positions: list[int]) -> str:
    return ", ".join(_ident(td.columns[p].name) for p in positions)


def indexdef(ix: Any, pretty: bool = True) -> str:
    uniq = "UNIQUE " if ix.unique else ""
    tname = _ident(ix.table.name) if pretty else "public." + _ident(ix.table.name)
    return f"CREATE {uniq}INDEX {_ident(ix.name)} ON {tname} USING btree ({_cols(ix.table, ix.cols)})"


def constraintdef(c: Any) -> str:
    if c.contype == "p":
        return f"PRIMARY KEY ({_cols(c.table, c.cols)})"
    if c.contype == "u":
        return f"UNIQUE ({_cols(c.table, c.cols)})"
    if c.contype == "f":
        ref = c.ref_table
        rname = _ident(ref.name) if ref is not None else "?"
        rcols = _cols(ref, c.ref_cols) if ref is not None else ""
        return f"FOREIGN KEY ({_cols(c.table, c.cols)}) REFERENCES {rname}({rcols})"
    if c.contype == "c":
        return f"CHECK ({c.check})"
    return ""


def default_expr(text: str, type_oid: int, typmod: int = -1) -> str:
    """A stored default (SQL text) as pg_get_expr shows it: literals carry their cast."""
    s = text.strip()
    m = re.fullmatch(r"nextval\('([^']*)'\)", s, re.I)
    if m:
        return f"nextval('{m.group(1)}'::regclass)"
    if re.fullmatch(r"'(?:[^']|'')*'", s):
        if type_oid in (T.INT2, T.INT4, T.INT8, T.NUMERIC, T.FLOAT4, T.FLOAT8, T.BOOL):
            return s
        return f"{s}::{format_type(type_oid, typmod)}"
    low = s.lower()
    if low in ("current_timestamp", "current_timestamp()"):
        return "CURRENT_TIMESTAMP"
    if low in ("true", "false"):
        return low
    if re.fullmatch(r"-?\d+\.\d*", s) and type_oid == T.NUMERIC:
        return s
    if re.fullmatch(r"-\d+(\.\d+)?", s):
        return f"'{s}'::{format_type(type_oid, typmod)}" if type_oid != T.INT4 else s
    return s
