"""Virtual (generated) tables: the pg_catalog and information_schema relations.

The planner calls ``lookup(name)`` when a name is not a stored table and scans
``VirtualTable.rows(ctx)``, generated from the statement's catalog snapshot.  The row
generators live in ``engine.pgcatalog`` (one module per family of tables).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator

from engine.pgcatalog import information_schema as _info
from engine.pgcatalog import tables as _tables


@dataclass(frozen=True)
class VirtualTable:
    columns: list[tuple[str, int]]  # (name, type oid)
    rows: Callable[[Any], Iterator[tuple]]


REGISTRY: dict[str, VirtualTable] = {
    name: VirtualTable(cols, rows) for name, (cols, rows) in {**_tables.TABLES, **_info.TABLES}.items()
}


def lookup(name: str) -> VirtualTable | None:
    return REGISTRY.get(name)
