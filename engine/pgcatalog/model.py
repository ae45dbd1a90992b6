"""The engine's catalog seen as PostgreSQL objects: relations, indexes, constraints.

``Model(catalog)`` derives, once per statement, the index and constraint objects
PostgreSQL would store separately (the engine keeps them inside each ``TableDef``), with
ids from ``oids.derived``.  Every virtual table and catalog function reads this model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.pgcatalog import oids


@dataclass
class Index:
    oid: int
    name: str
    table: Any  # TableDef
    cols: list[int]  # 0-based column positions
    unique: bool
    primary: bool
    constraint: int = 0  # oid of the owning constraint (0: none)


@dataclass
class Constraint:
    oid: int
    name: str
    contype: str  # 'p' 'u' 'f' 'c'
    table: Any
    cols: list[int]
    index: int = 0
    ref_table: Any = None
    ref_cols: list[int] = field(default_factory=list)
    check: str | None = None


def _positions(td: Any, cols: list) -> list[int]:
    out = []
    for c in cols:
        i = c if isinstance(c, int) else td.column_index(c)
        if i is not None:
            out.append(i)
    return out


def _check_columns(td: Any, text: str) -> list[int]:
    """Positions of the columns a CHECK predicate mentions (pg_constraint.conkey)."""
    import sqlglot
    from sqlglot import exp

    try:
        names = {c.name for c in sqlglot.parse_one(text, read="postgres").find_all(exp.Column)}
    except sqlglot.errors.ParseError:
        return []
    return sorted(i for i, c in enumerate(td.columns) if c.name in names)


class Model:
    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog
        self.indexes: list[Index] = []
        self.constraints: list[Constraint] = []
        for td in catalog.tables.values():
            if td.kind != "r":
                continue
            tid = td.table_id
            if td.pk:
                io, co = oids.derived(tid, 0), oids.derived(tid, 128)
                self.indexes.append(Index(io, td.pkey_name, td, list(td.pk), True, True, co))
                self.constraints.append(Constraint(co, td.pkey_name, "p", td, list(td.pk), io))
            for k, (name, cols) in enumerate(td.uniques[:63]):
                io, co = oids.derived(tid, 1 + k), oids.derived(tid, 129 + k)
                self.indexes.append(Index(io, name, td, _positions(td, cols), True, False, co))
                self.constraints.append(Constraint(co, name, "u", td, _positions(td, cols), io))
            for k, ix in enumerate(getattr(td, "indexes", [])[:64]):
                name, cols, unique = ix[0], ix[1], bool(ix[2]) if len(ix) > 2 else False
                self.indexes.append(Index(oids.derived(tid, 64 + k), name, td, _positions(td, cols), unique, False))
            for k, fk in enumerate(getattr(td, "fkeys", [])[:32]):
                name, cols, rname, rcols = fk[:4]
                ref = catalog.get(rname)
                rpos = _positions(ref, rcols) if ref is not None and rcols else (list(ref.pk) if ref else [])
                self.constraints.append(
                    Constraint(oids.derived(tid, 192 + k), name, "f", td, _positions(td, cols), 0, ref, rpos))
            for k, (name, text) in enumerate((getattr(td, "checks", None) or [])[:32]):
                self.constraints.append(Constraint(oids.derived(tid, 224 + k), name, "c", td,
                                                   _check_columns(td, text), check=text))
        for c in self.constraints:  # a foreign key's conindid: the referenced key's unique index
            if c.contype == "f" and c.ref_table is not None:
                c.index = next((ix.oid for ix in self.indexes if ix.table is c.ref_table and ix.unique
                                and sorted(ix.cols) == sorted(c.ref_cols)), 0)
        self.index_by_oid = {i.oid: i for i in self.indexes}
        self.con_by_oid = {c.oid: c for c in self.constraints}

    def relation(self, oid: int) -> tuple[str, str, int] | None:
        """(name, relkind, namespace) of any relation id, tables and indexes alike."""
        td = self.catalog.by_id.get(oid)
        if td is not None:
            return td.name, td.kind, oids.PUBLIC
        ix = self.index_by_oid.get(oid)
        if ix is not None:
            return ix.name, "i", oids.PUBLIC
        return None

    def relation_by_name(self, name: str) -> int | None:
        td = self.catalog.get(name)
        if td is not None:
            return td.table_id
        for ix in self.indexes:
            if ix.name == name:
                return ix.oid
        return None


def model_of(ctx: Any) -> Model:
    """The model for the statement's catalog, cached on the catalog object (immutable)."""
    cat = ctx.catalog
    m = getattr(cat, "_pg_model", None)
    if m is None:
        m = Model(cat)
        try:
            cat._pg_model = m
        except AttributeError:
            pass
    return m
