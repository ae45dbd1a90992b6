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
    if oid == T.BPCHAR and typmod is not None and typmod < 4:
        return "bpchar"  # format_type(1042, -1); with a NULL typmod the SQL name "character"
    typmod = -1 if typmod is None else typmod
    if oid in T.TYPE_NAMES and oid not in (T.UNKNOWN, T.RECORD, T.VOID):
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


def constraintdef(c: Any, pretty: bool = False) -> str:
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
        from engine.pgcatalog.deparse import check_text

        t = check_text(c.table, c.check)
        return f"CHECK ({t.pretty if pretty else t})"
    return ""
