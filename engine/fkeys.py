"""Foreign-key enforcement (23503) with ON DELETE / ON UPDATE actions.

Catalog entries: ``TableDef.fkeys`` = ``[name, cols, ref table, ref cols, on_delete,
on_update]`` (the actions were added later: older entries have 4 items = NO ACTION).
Actions: "a" NO ACTION, "r" RESTRICT, "c" CASCADE, "n" SET NULL, "d" SET DEFAULT (NULL).

``FkChecker`` is built when a DML statement is planned; it adds the referenced and the
referencing tables to the statement's table set (so they are loaded) and checks each
written row immediately (PostgreSQL checks NO ACTION at the end of the statement; rows
referencing rows inserted later by the same statement are therefore refused here).
Parent rows are looked up by primary key or through ``engine.indexes`` candidates, at
the store's latest snapshot overlaid with the transaction's own writes.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from engine import errors
from engine.keys import encode_key

_ACTIONS = {"CASCADE": "c", "SET NULL": "n", "SET DEFAULT": "d", "RESTRICT": "r", "NO ACTION": "a"}


def actions_of(ref: exp.Expression | None) -> tuple[str, str]:
    """(on_delete, on_update) from a sqlglot Reference's options."""
    on_delete = on_update = "a"
    for o in (ref.args.get("options") or []) if ref is not None else []:
        text = " ".join(str(o.sql() if isinstance(o, exp.Expression) else o).upper().split())
        for word, code in _ACTIONS.items():
            if text.endswith(word):
                if text.startswith("ON DELETE"):
                    on_delete = code
                elif text.startswith("ON UPDATE"):
                    on_update = code
                break
    return on_delete, on_update


def _fmt(vals: tuple) -> str:
    return ", ".join("NULL" if v is None else str(v) for v in vals)


class _Latest:
    __slots__ = ("store", "txn", "snapshot")

    def __init__(self, ctx: Any) -> None:
        self.store, self.txn, self.snapshot = ctx.store, ctx.txn, ctx.store.snapshot()


class _Out:
    """One foreign key of the written table (this table references ``parent``)."""

    def __init__(self, td: Any, fk: list, parent: Any) -> None:
        self.name = fk[0]
        self.cols = [td.column_index(c) for c in fk[1]]
        self.parent = parent
        self.pcols = [parent.column_index(c) for c in fk[3]] if fk[3] else list(parent.pk)
        self.by_pk = list(self.pcols) == list(parent.pk)
        self.child_name = td.name
        self.col_names = list(fk[1])


class _In:
    """A foreign key of another table ``child`` referencing the written table."""

    def __init__(self, td: Any, child: Any, fk: list) -> None:
        self.name = fk[0]
        self.child = child
        self.cols = [child.column_index(c) for c in fk[1]]
        self.pcols = [td.column_index(c) for c in fk[3]] if fk[3] else list(td.pk)
        self.on_delete = fk[4] if len(fk) > 4 else "a"
        self.on_update = fk[5] if len(fk) > 5 else "a"
        self.parent_name = td.name
        self.pcol_names = [td.columns[i].name for i in self.pcols]


class FkChecker:
    def __init__(self, planner: Any, td: Any) -> None:
        cat = planner.catalog
        self.out: list[_Out] = []
        self.inc: list[_In] = []
        for fk in td.fkeys or []:
            parent = cat.get(fk[2])
            if parent is not None and parent.kind == "r":
                self.out.append(_Out(td, fk, parent))
                planner.tables.add(parent.table_id)
        for other in _tables(cat):
            for fk in other.fkeys or []:
                if fk[2] == td.name:
                    self.inc.append(_In(td, other, fk))
                    planner.tables.add(other.table_id)
        self.catalog = cat

    @property
    def active(self) -> bool:
        return bool(self.out or self.inc)

    # -- child side: the referenced row must exist --------------------------------------------
    def check_row(self, row: tuple, ctx: Any, old: tuple | None = None) -> None:
        for o in self.out:
            vals = tuple(row[i] for i in o.cols)
            if None in vals or (old is not None and tuple(old[i] for i in o.cols) == vals):
                continue
            if not _parent_exists(o, vals, ctx):
                raise errors.SqlError(
                    f'insert or update on table "{o.child_name}" violates foreign key constraint "{o.name}"',
                    sqlstate="23503",
                    detail=f"Key ({', '.join(o.col_names)})=({_fmt(vals)}) is not present in table \"{o.parent.name}\".")

    # -- parent side: referencing rows follow the action ---------------------------------------
    def parent_changed(self, old: tuple, new: tuple | None, ctx: Any, depth: int = 0) -> None:
        if depth > 32:
            raise errors.SqlError("foreign key cascade too deep", sqlstate="54001")
        from engine.indexes import candidates

        for i in self.inc:
            pvals = tuple(old[p] for p in i.pcols)
            if None in pvals:
                continue
            if new is not None and tuple(new[p] for p in i.pcols) == pvals:
                continue
            action = i.on_delete if new is None else i.on_update
            child = i.child
            pad = child.pad_fn()
            hits = list(candidates(_Latest(ctx), child.table_id, tuple(i.cols), pvals, pad))
            hits = [(k, r) for k, r in hits if tuple(r[c] for c in i.cols) == pvals]
            if not hits:
                continue
            if action in ("a", "r"):
                raise errors.SqlError(
                    f'update or delete on table "{i.parent_name}" violates foreign key constraint "{i.name}" '
                    f'on table "{child.name}"', sqlstate="23503",
                    detail=f"Key ({', '.join(i.pcol_names)})=({_fmt(pvals)}) is still referenced from table \"{child.name}\".")
            sub = _child_checker(self.catalog, child)
            for key, crow in hits:
                ctx.txn.lock(child.table_id, key)
                if action == "c" and new is None:
                    ctx.txn.put(child.table_id, key, None)
                    if sub is not None:
                        sub.parent_changed(crow, None, ctx, depth + 1)
                    continue
                upd = list(crow)
                for c, p in zip(i.cols, i.pcols):
                    upd[c] = new[p] if action == "c" else None
                nrow = tuple(upd)
                ctx.txn.put(child.table_id, key, nrow)
                if sub is not None:
                    sub.parent_changed(crow, nrow, ctx, depth + 1)


def _tables(cat: Any) -> list:
    for attr in ("tables", "by_name"):
        d = getattr(cat, attr, None)
        if isinstance(d, dict):
            return [t for t in d.values() if getattr(t, "kind", "") == "r"]
    fn = getattr(cat, "all_tables", None)
    return [t for t in fn() if t.kind == "r"] if fn else []


class _PlannerLike:
    def __init__(self, catalog: Any) -> None:
        self.catalog = catalog
        self.tables: set[int] = set()


def _child_checker(cat: Any, child: Any) -> FkChecker | None:
    fc = FkChecker(_PlannerLike(cat), child)
    return fc if fc.inc else None


def _parent_exists(o: _Out, vals: tuple, ctx: Any) -> bool:
    p = o.parent
    latest = _Latest(ctx)
    if o.by_pk:
        return ctx.txn.get(p.table_id, encode_key(list(vals)), latest.snapshot) is not None
    from engine.indexes import candidates

    for _, row in candidates(latest, p.table_id, tuple(o.pcols), vals, p.pad_fn()):
        if tuple(row[i] for i in o.pcols) == vals:
            return True
    return False
