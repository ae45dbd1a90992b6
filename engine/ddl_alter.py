"""ALTER TABLE: column and constraint changes.

Each action edits a copy of the ``TableDef`` and, when stored rows must change, rewrites
the table through the transaction (so the rewrite is transactional and logged like any
DML).  Which actions rewrite:

=================================  ==========================================================
action                             effect on stored rows
=================================  ==========================================================
ADD COLUMN [DEFAULT const]         none: the column is marked ``instant`` and its default is
                                   stored as ``ColumnDef.missing``; readers pad short rows
ADD COLUMN DEFAULT volatile/serial rewrite (one value per row)
DROP COLUMN, ALTER COLUMN TYPE     rewrite (position removed / value converted)
ADD / DROP PRIMARY KEY             rewrite: rows are re-keyed by the key columns (or rowids)
SET NOT NULL, ADD CHECK / UNIQUE   scan to validate, no rewrite
RENAME, SET/DROP DEFAULT, DROP ... catalog only
=================================  ==========================================================

A rewrite produces full-width rows, so it also clears every ``instant`` flag.
"""

from __future__ import annotations

import copy
from typing import Any, Callable

import sqlglot
from sqlglot import exp

from engine import errors
from engine import types as T
from engine.catalog import ColumnDef, TableDef
from engine.ddl import CatalogWriter, serial_sequence
from engine.expr import Compiler, Scope
from engine.gcpause import gc_paused
from engine.interrupts import checked
from engine.keys import encode_int_key, encode_key


def _fmt(vals: Any) -> str:
    return ", ".join("null" if v is None else T.to_text(v) for v in vals)


def _scope(td: TableDef) -> Scope:
    return Scope([(td.name, c.name, c.type_oid, c.typmod) for c in td.columns])


class _Alter:
    def __init__(self, ctx: Any, cw: CatalogWriter, td: TableDef) -> None:
        from engine.planner import Planner

        self.ctx = ctx
        self.cw = cw
        self.old = td
        self.td = copy.deepcopy(td)
        self.td.cache = {}
        self.planner = Planner(ctx.catalog, [])
        self.notices: list[str] = []
        # pending rewrite: per-row transform on the (padded) old row, or None
        self.transforms: list[Callable[[tuple, Any], tuple]] = []
        self.rekey = False
        self.validate: list[Callable[[tuple], None]] = []

    # -- helpers -------------------------------------------------------------------------
    def col(self, name: str) -> int:
        i = next((j for j, c in enumerate(self.td.columns) if c.name == name), None)
        if i is None:
            raise errors.UndefinedColumn(f'column "{name}" of relation "{self.td.name}" does not exist')
        return i

    def compiler(self) -> Compiler:
        return Compiler(self.planner.env, _scope(self.td))

    def rows(self) -> list[tuple[bytes, tuple]]:
        pad = self.old.pad_fn()
        out = []
        for k, r in checked(self.ctx.txn.scan(self.old.table_id, self.ctx.store.snapshot()), self.ctx):
            out.append((k, pad(r) if pad else r))
        return out

    # -- actions -------------------------------------------------------------------------
    def add_column(self, e: exp.ColumnDef) -> None:
        td = self.td
        name = e.name
        if any(c.name == name for c in td.columns):
            if e.args.get("exists"):
                self.notices.append(f'column "{name}" of relation "{td.name}" already exists, skipping')
                return
            raise errors.SqlError(f'column "{name}" of relation "{td.name}" already exists', sqlstate="42701")
        kind = e.args.get("kind")
        oid, typmod = T.from_sqlglot(kind)
        col = ColumnDef(name, oid, typmod)
        pos = len(td.columns)
        if kind.this.name in T.SERIAL_TYPES:
            sname = f"{td.name}_{name}_seq"
            if self.cw.catalog.get(sname) is not None:
                raise errors.DuplicateTable(f'relation "{sname}" already exists')
            self.cw.put_table(TableDef(self.cw.alloc_id(), sname, "S", seq=serial_sequence(oid)))
            # the sequence must be visible to nextval() while rewriting
            self.cw.finish()
            self.planner.catalog = self.planner.env.catalog = self.ctx.catalog
            td.owned_seqs.append(sname)
            col.default = f"nextval('{sname}')"
            col.not_null = True
        for cc in e.args.get("constraints") or []:
            k = cc.args.get("kind")
            if isinstance(k, exp.NotNullColumnConstraint):
                col.not_null = not k.args.get("allow_null")
            elif isinstance(k, exp.DefaultColumnConstraint):
                col.default = k.this.sql("postgres")
            elif isinstance(k, exp.PrimaryKeyColumnConstraint):
                self._add_pk([pos], extra_col=col)
            elif isinstance(k, exp.UniqueColumnConstraint):
                td.uniques.append((f"{td.name}_{name}_key", [pos]))
            elif isinstance(k, exp.CheckColumnConstraint):
                td.checks.append((f"{td.name}_{name}_check", k.this.sql("postgres")))
        td.columns.append(col)
        td.cache = {}
        value: Any = None
        volatile = False
        if col.default is not None:
            cp = Compiler(self.planner.env, None)
            c = cp.coerce(cp.compile(sqlglot.parse_one(col.default, read="postgres")), oid, typmod)
            if c.is_const or not any(True for _ in sqlglot.parse_one(col.default, read="postgres").find_all(exp.Func)) \
                    or _stable_default(col.default):
                value = c.fn(None, self.ctx)
            else:
                volatile = True
                f = c.fn
                self.transforms.append(lambda r, ctx, f=f: r + (f(None, ctx),))
        if not volatile:
            if self.transforms:
                self.transforms.append(lambda r, ctx, v=value: r + (v,))
            else:
                col.missing, col.instant = value, True
        if col.not_null and value is None and not volatile:
            if self.rows():
                raise errors.NotNullViolation(f'column "{name}" of relation "{td.name}" contains null values')

    def drop_column(self, name: str, if_exists: bool) -> None:
        td = self.td
        if not any(c.name == name for c in td.columns):
            if if_exists:
                self.notices.append(f'column "{name}" of relation "{td.name}" does not exist, skipping')
                return
            self.col(name)
        i = self.col(name)
        if len(td.columns) == 1:
            pass  # PostgreSQL allows zero-column tables
        self._materialise_instant()
        del td.columns[i]

        def remap(cols: list[int]) -> list[int] | None:
            if i in cols:
                return None
            return [j - 1 if j > i else j for j in cols]

        if td.pk:
            pk = remap(td.pk)
            if pk is None:
                td.pk = []
                self.rekey = True
            else:
                td.pk = pk
        td.uniques = [(n, m) for n, cols in td.uniques if (m := remap(cols)) is not None]
        td.indexes = [[n, m, u] for n, cols, u in td.indexes if (m := remap(cols)) is not None]
        td.checks = [(n, t) for n, t in td.checks
                     if not any(c.name == name for c in sqlglot.parse_one(t, read="postgres").find_all(exp.Column))]
        td.cache = {}
        self.transforms.append(lambda r, ctx: r[:i] + r[i + 1:])

    def rename_column(self, old: str, new: str) -> None:
        td = self.td
        i = self.col(old)
        if any(c.name == new for c in td.columns):
            raise errors.SqlError(f'column "{new}" of relation "{td.name}" already exists', sqlstate="42701")
        td.columns[i].name = new
        td.cache = {}

        def ren(node: exp.Expression) -> exp.Expression:
            if isinstance(node, exp.Column) and node.name == old:
                return exp.column(new)
            return node

        td.checks = [(n, sqlglot.parse_one(t, read="postgres").transform(ren).sql("postgres")) for n, t in td.checks]

    def alter_column(self, a: exp.AlterColumn) -> None:
        td = self.td
        i = self.col(a.this.name)
        col = td.columns[i]
        dtype = a.args.get("dtype")
        if col.identity:  # its default and NOT NULL belong to the identity
            if dtype is not None:
                raise errors.FeatureNotSupported("feature not supported: changing the type of an identity column")
            raise errors.SqlError(f'column "{col.name}" of relation "{td.name}" is an identity column',
                                  sqlstate="55000")
        if dtype is not None:
            oid, typmod = T.from_sqlglot(dtype)
            using = a.args.get("using")
            old = ColumnDef(col.name, col.type_oid, col.typmod)
            if using:
                cp = Compiler(self.planner.env, _scope(self.old))
                f = cp.coerce(cp.compile(using), oid, typmod).fn
                oi = self.old.column_index(col.name)
                # USING sees the old row: evaluate it before other transforms of this statement
                conv_row: Callable[[tuple, Any], Any] = lambda r, ctx, f=f: f(r, ctx)  # noqa: E731
                del oi
            else:
                try:
                    if old.type_oid in T.STRINGS and oid not in T.STRINGS:
                        raise errors.SqlError("", sqlstate="42804")
                    conv = T.caster(old.type_oid, oid, typmod, explicit=False)
                except errors.SqlError:
                    raise errors.DatatypeMismatch(
                        f'column "{col.name}" cannot be cast automatically to type {T.display_name(oid, typmod)}',
                        hint=f'You might need to specify "USING {col.name}::{T.display_name(oid, typmod)}".') from None
                conv_row = (lambda r, ctx, conv=conv, i=i: r[i] if conv is None or r[i] is None else conv(r[i]))
            self._materialise_instant()
            col.type_oid, col.typmod = oid, typmod
            col.missing = None
            self.transforms.append(lambda r, ctx, i=i, g=conv_row: r[:i] + (g(r, ctx),) + r[i + 1:])
            if i in td.pk:
                self.rekey = True
            return
        if "default" in a.args and a.args.get("default") is not None:
            col.default = a.args["default"].sql("postgres")
            return
        allow_null = a.args.get("allow_null")
        if allow_null is False:
            col.not_null = True
            for _, r in self.rows():
                if i < len(r) and r[i] is None:
                    raise errors.NotNullViolation(
                        f'column "{col.name}" of relation "{td.name}" contains null values')
            return
        if allow_null is True:
            if i in td.pk:
                raise errors.SqlError(f'column "{col.name}" is in a primary key', sqlstate="42P16")
            col.not_null = False
            return
        if a.args.get("drop"):
            col.default = None
            return
        raise errors.FeatureNotSupported(f"ALTER COLUMN action not supported: {a.sql('postgres')}")

    def _materialise_instant(self) -> None:
        """Before a rewrite: stored rows will be full width, so instant columns become ordinary."""
        for c in self.td.columns:
            c.instant = False

    def _add_pk(self, cols: list[int], extra_col: ColumnDef | None = None) -> None:
        td = self.td
        if td.pk:
            raise errors.SqlError(f'multiple primary keys for table "{td.name}" are not allowed', sqlstate="42P16")
        td.pk = cols
        for j in cols:
            if j < len(td.columns):
                td.columns[j].not_null = True
            elif extra_col is not None:
                extra_col.not_null = True
        self._materialise_instant()
        self.rekey = True

    def positions(self, idents: list[exp.Expression]) -> list[int]:
        out = []
        for ident in idents:
            n = ident.name
            i = next((j for j, c in enumerate(self.td.columns) if c.name == n), None)
            if i is None:
                raise errors.UndefinedColumn(f'column "{n}" named in key does not exist')
            out.append(i)
        return out

    def add_constraint(self, e: exp.Expression) -> None:
        td = self.td
        name = None
        if isinstance(e, exp.Constraint):
            name = e.this.name
            e = e.expressions[0]
        if isinstance(e, exp.PrimaryKey):
            self._add_pk(self.positions(e.expressions))
        elif isinstance(e, exp.UniqueColumnConstraint):
            pos = self.positions(e.this.expressions if isinstance(e.this, exp.Schema) else [e.this])
            cname = name or f"{td.name}_{'_'.join(td.columns[i].name for i in pos)}_key"
            seen: dict[tuple, bool] = {}
            for _, r in self.rows():
                vals = tuple(r[i] for i in pos)
                if None in vals:
                    continue
                if vals in seen:
                    raise errors.UniqueViolation(
                        f'could not create unique index "{cname}"',
                        detail=f"Key ({', '.join(td.columns[i].name for i in pos)})=({_fmt(vals)}) is duplicated.")
                seen[vals] = True
            td.uniques.append((cname, pos))
        elif isinstance(e, (exp.CheckColumnConstraint, exp.Check)):
            text = e.this.sql("postgres")
            cname = name or f"{td.name}_check"
            f = self.compiler().compile_bool(e.this).fn
            for _, r in self.rows():
                if f(r, self.ctx) is False:
                    raise errors.CheckViolation(f'check constraint "{cname}" of relation "{td.name}" is violated by some row')
            td.checks.append((cname, text))
        elif isinstance(e, exp.ForeignKey):
            cols = [i.name for i in e.expressions]
            ref = e.args.get("reference")
            rt = ref.this if ref is not None else None
            rname = rt.this.name if isinstance(rt, exp.Schema) else (rt.name if rt is not None else "")
            rcols = [i.name for i in rt.expressions] if isinstance(rt, exp.Schema) else []
            if self.cw.catalog.get(rname) is None:
                raise errors.UndefinedTable(f'relation "{rname}" does not exist')
            from engine import privileges

            privileges.require(self.ctx, self.cw.catalog.get(rname), "x")
            from engine.fkeys import actions_of

            on_delete, on_update = actions_of(ref)
            td.fkeys.append([name or f"{td.name}_{'_'.join(cols)}_fkey", cols, rname, rcols, on_delete, on_update])
        else:
            raise errors.FeatureNotSupported(f"constraint not supported: {e.sql('postgres')[:60]}")

    def drop_constraint(self, name: str, if_exists: bool) -> None:
        td = self.td
        if td.pk and name == td.pkey_name:
            td.pk = []
            self._materialise_instant()
            self.rekey = True
            return
        for lst in (td.uniques, td.checks):
            for j, item in enumerate(lst):
                if item[0] == name:
                    del lst[j]
                    return
        for j, fk in enumerate(td.fkeys):
            if fk[0] == name:
                del td.fkeys[j]
                return
        if if_exists:
            self.notices.append(f'constraint "{name}" of relation "{td.name}" does not exist, skipping')
            return
        raise errors.SqlError(f'constraint "{name}" of relation "{td.name}" does not exist', sqlstate="42704")

    # -- finishing -----------------------------------------------------------------------
    def apply_rewrite(self) -> None:
        if not self.transforms and not self.rekey:
            return
        with gc_paused():
            self._rewrite()

    def _rewrite(self) -> None:
        ctx, td, old = self.ctx, self.td, self.old
        txn, tid = ctx.txn, td.table_id
        from engine.dml import WRITE_CHECK_EVERY, _Writer

        w = _Writer(td, self.planner)
        fill = tuple(c.missing for c in td.columns)
        n = len(fill)
        one_int = len(td.pk) == 1 and td.columns[td.pk[0]].type_oid in T.INTS
        rows = self.rows()
        # The table is locked whole before anything is written, like PostgreSQL's ACCESS
        # EXCLUSIVE lock (a transaction holding one of its rows makes the statement wait
        # and re-run from here; row locks of others wait for this one; plain reads go on
        # reading their snapshot) -- one lock, not one per row.  Then the rows that change
        # key are removed from their old keys -- all of them, before any new key is
        # written: an old and a new key space can overlap (DROP CONSTRAINT pkey, ADD
        # PRIMARY KEY (other) in one statement), and one row's new key may be another
        # row's old one.
        txn.lock_table(tid)
        out: dict[bytes, tuple] = {}
        moved: list[bytes] = []
        writes: list[tuple[bytes, tuple]] = []
        transforms, check, pk = self.transforms, w.check_row, td.pk
        for key, row in checked(rows, ctx, WRITE_CHECK_EVERY):
            new = row
            for f in transforms:
                new = f(new, ctx)
            if len(new) < n:
                new = new + fill[len(new):]
            check(new, ctx)
            if pk:
                v = new[pk[0]]
                nkey = encode_int_key(v) if one_int and type(v) is int else encode_key([new[i] for i in pk])
                if nkey in out:
                    raise errors.UniqueViolation(
                        f'could not create unique index "{td.pkey_name}"',
                        detail=f"Key ({', '.join(td.columns[i].name for i in pk)})=({_fmt([new[i] for i in pk])}) is duplicated.")
            elif self.rekey:
                nkey = key if not old.pk else ctx.db.next_rowid(td, txn)
            else:
                nkey = key
            if nkey != key:
                moved.append(key)
                writes.append((nkey, new))
            elif new is not row:
                writes.append((nkey, new))
            # else neither its key nor its value changes: nothing to write (a table loaded
            # in the order of the integer column that becomes its key, engine.keys.row_id_key)
            out[nkey] = new
        del rows
        if moved:
            txn.put_many(tid, [(k, None) for k in moved if k not in out])
        del out
        txn.put_many(tid, writes)


def _stable_default(text: str) -> bool:
    """Defaults evaluated once even though they are function calls (now() is stable in PG)."""
    node = sqlglot.parse_one(text, read="postgres")
    volatile = ("nextval", "random", "gen_random_uuid", "clock_timestamp", "uuid_generate_v4")
    for f in node.find_all(exp.Func):
        n = (f.name if isinstance(f, exp.Anonymous) else f.sql_name()).lower()
        if n in volatile or isinstance(f, exp.Rand):
            return False
    return True


def alter_table(ctx: Any, node: exp.Alter) -> tuple[str, list[str]]:
    kind = str(node.args.get("kind") or "").upper()
    if kind != "TABLE":
        raise errors.FeatureNotSupported(f"ALTER {kind} is not supported")
    name = node.this.name
    cw = CatalogWriter(ctx)
    td = cw.catalog.get(name)
    if td is None or td.kind != "r":
        if node.args.get("exists"):
            return "ALTER TABLE", [f'relation "{name}" does not exist, skipping']
        raise errors.UndefinedTable(f'relation "{name}" does not exist')
    from engine import privileges

    privileges.must_own(ctx, td)
    al = _Alter(ctx, cw, td)
    for a in node.args.get("actions") or []:
        if isinstance(a, exp.ColumnDef):
            al.add_column(a)
        elif isinstance(a, exp.Drop):
            k = str(a.args.get("kind") or "").upper()
            for t in a.args.get("tables") or []:
                if k == "COLUMN":
                    al.drop_column(t.name, bool(a.args.get("exists")))
                elif k == "CONSTRAINT":
                    al.drop_constraint(t.name, bool(a.args.get("exists")))
                else:
                    raise errors.FeatureNotSupported(f"ALTER TABLE DROP {k} is not supported")
        elif isinstance(a, exp.RenameColumn):
            al.rename_column(a.this.name, a.args["to"].name)
        elif isinstance(a, exp.AlterColumn):
            al.alter_column(a)
        elif isinstance(a, exp.AddConstraint):
            for e in a.expressions:
                al.add_constraint(e)
        elif isinstance(a, exp.AlterRename):
            new = a.this.name
            if cw.catalog.get(new) is not None:
                raise errors.DuplicateTable(f'relation "{new}" already exists')
            cw.write(td.key, None)
            al.td.name = new
        else:
            raise errors.FeatureNotSupported(f"ALTER TABLE action not supported: {a.sql('postgres')[:60]}")
    al.apply_rewrite()
    cw.put_table(al.td)
    cw.finish()
    return "ALTER TABLE", al.notices
