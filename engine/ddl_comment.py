"""COMMENT ON TABLE | VIEW | SEQUENCE | INDEX | COLUMN ... IS 'text' (or NULL / '' to remove).

Comments live in the owning relation's ``TableDef.comments`` (so DROP takes them along);
pg_description, obj_description() and col_description() read them back.
"""

from __future__ import annotations

import copy
from typing import Any

from sqlglot import exp

from engine import errors
from engine.catalog import INDEX_COMMENT, TableDef
from engine.ddl import CatalogWriter
from engine import privileges, roles

_KINDS = {"TABLE": ("r",), "VIEW": ("v",), "SEQUENCE": ("S",), "MATERIALIZED VIEW": ("m",),
          "FOREIGN TABLE": ("f",)}


def _relation(cw: CatalogWriter, name: str, kinds: tuple[str, ...], what: str) -> TableDef:
    td = cw.catalog.get(name)
    if td is None:
        raise errors.UndefinedTable(f'relation "{name}" does not exist')
    if td.kind not in kinds:
        raise errors.SqlError(f'"{name}" is not {what}', sqlstate="42809")
    return td


def _index_owner(cw: CatalogWriter, name: str) -> TableDef | None:
    for td in cw.catalog.tables.values():
        if td.kind != "r":
            continue
        names = [td.pkey_name] if td.pk else []
        names += [n for n, _ in td.uniques] + [ix[0] for ix in td.indexes]
        if name in names:
            return td
    return None


def comment_on(ctx: Any, node: exp.Comment) -> tuple[str, list[str]]:
    kind = str(node.args.get("kind") or "").upper()
    text = node.expression.name if isinstance(node.expression, exp.Literal) else None
    target = node.this
    cw = CatalogWriter(ctx)
    if kind == "COLUMN":
        if not isinstance(target, exp.Column) or not target.table:
            raise errors.SyntaxErr("column name must be qualified")
        td = _relation(cw, target.table, ("r", "v"), "a table or view")
        if td.column_index(target.name) is None:
            raise errors.UndefinedColumn(f'column "{target.name}" of relation "{td.name}" does not exist')
        key = target.name
    elif kind == "INDEX":
        owner = _index_owner(cw, target.name)
        if owner is None:
            raise errors.UndefinedTable(f'relation "{target.name}" does not exist')
        td, key = owner, INDEX_COMMENT + target.name
    elif kind in _KINDS:
        td = _relation(cw, target.name, _KINDS[kind], "a " + kind.lower())
        key = ""
    else:
        raise errors.FeatureNotSupported(f"COMMENT ON {kind} is not supported")
    me = roles.current(ctx.session, ctx.catalog)
    if not privileges.owns(ctx.catalog, me, td.owner):  # in PostgreSQL's words for each kind
        word = {"COLUMN": "relation", "INDEX": "index"}.get(kind)
        raise privileges.not_owner(word or privileges.kind_word(td), target.name if kind == "INDEX" else td.name)
    td = copy.deepcopy(td)
    if text:
        td.comments[key] = text
    else:
        td.comments.pop(key, None)
    td.cache = {}
    cw.put_table(td)
    cw.finish()
    return "COMMENT", []


def comment_of(td: TableDef, key: str) -> str | None:
    return (getattr(td, "comments", None) or {}).get(key)
