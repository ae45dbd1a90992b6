"""Virtual (generated) tables, e.g. pg_catalog views: a registry of row generators.

Each entry maps a (schema-less) name to ``VirtualTable(columns, rows)`` where ``rows(ctx)``
yields tuples.  The planner consults this registry when a name is not a stored table;
the full pg_catalog is meant to be added here as more generators.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

from engine import types as T


@dataclass(frozen=True)
class VirtualTable:
    columns: list[tuple[str, int]]  # (name, type oid)
    rows: Callable[[Any], Iterator[tuple]]


def _pg_tables(ctx: Any) -> Iterator[tuple]:
    for t in ctx.catalog.tables.values():
        if t.kind == "r":
            yield ("public", t.name, ctx.session.user, None, bool(t.pk), False, False, False)


def _pg_database(ctx: Any) -> Iterator[tuple]:
    for i, name in enumerate(sorted(ctx.catalog.databases)):
        yield (i + 1, name, 6, "UTF8")


def _pg_class(ctx: Any) -> Iterator[tuple]:
    for t in ctx.catalog.tables.values():
        yield (t.table_id, t.name, 2200, t.kind, len(t.columns), "p")


REGISTRY: dict[str, VirtualTable] = {
    "pg_tables": VirtualTable(
        [("schemaname", T.NAME), ("tablename", T.NAME), ("tableowner", T.NAME), ("tablespace", T.NAME),
         ("hasindexes", T.BOOL), ("hasrules", T.BOOL), ("hastriggers", T.BOOL), ("rowsecurity", T.BOOL)],
        _pg_tables,
    ),
    "pg_database": VirtualTable(
        [("oid", T.OID), ("datname", T.NAME), ("encoding", T.INT4), ("datcollate", T.NAME)], _pg_database
    ),
    "pg_class": VirtualTable(
        [("oid", T.OID), ("relname", T.NAME), ("relnamespace", T.OID), ("relkind", T.TEXT),
         ("relnatts", T.INT2), ("relpersistence", T.TEXT)],
        _pg_class,
    ),
}


def lookup(name: str) -> VirtualTable | None:
    return REGISTRY.get(name)
