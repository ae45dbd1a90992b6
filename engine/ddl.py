"""DDL: CREATE/DROP TABLE, CREATE/DROP SEQUENCE, TRUNCATE (databases: engine.ddl_database).

DDL writes catalog rows (table 0) through the transaction like any data, so it is
transactional and logged.  Every DDL first locks the catalog version row ``b"v"``
(serialising DDL) and rewrites it as ``(version + 1, next_table_id)``.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from engine import errors, privileges
from engine.api import TABLE_DROPPED
from engine import types as T
from engine.catalog import (
    CATALOG_TABLE, SEQUENCE_TABLE, VERSION_KEY, Catalog, ColumnDef, SequenceDef, TableDef,
)
from engine.default_check import check_default
from engine.gcpause import gc_paused
from engine.keys import rowid_key


def is_temporary(node: Any) -> bool:
    """CREATE TEMP[ORARY] TABLE / SEQUENCE / VIEW?"""
    props = node.args.get("properties") if isinstance(node, exp.Create) else None
    return props is not None and any(isinstance(p, exp.TemporaryProperty) for p in props.expressions)


class CatalogWriter:
    """Catalog edits inside one transaction."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.txn = ctx.txn
        self.store = ctx.store
        self.txn.lock(CATALOG_TABLE, VERSION_KEY)
        row = self.txn.get(CATALOG_TABLE, VERSION_KEY, self.store.snapshot())
        self.version, self.next_id = row if row is not None else (0, 16384)
        self._first_new = self.next_id
        # CREATE TEMP ...: the new relations need TEMPORARY on the database, not CREATE on public
        self.temporary = False  # set by the CREATE TEMP statements (is_temporary)
        self.txn.put(CATALOG_TABLE, VERSION_KEY, (self.version + 1, self.next_id))

    @property
    def catalog(self) -> Catalog:
        return self.ctx.catalog

    def alloc_id(self) -> int:
        tid = self.next_id
        self.next_id += 1
        self.txn.put(CATALOG_TABLE, VERSION_KEY, (self.version + 1, self.next_id))
        return tid

    def write(self, key: bytes, row: tuple | None) -> None:
        """One catalog row written (None: deleted), its key locked first."""
        self.txn.lock(CATALOG_TABLE, key)
        self.txn.put(CATALOG_TABLE, key, row)

    def put_table(self, td: TableDef) -> None:
        td.database = self.catalog.database  # a new relation belongs to the session's database
        if td.table_id >= self._first_new:
            # a new relation: CREATE on the schema needed; the creating role owns it and
            # ALTER DEFAULT PRIVILEGES of that role apply
            from engine import privileges

            td.owner = privileges.creator(self.ctx, self.temporary)
            td.acl = privileges.initial_acl(self.catalog, td.kind, td.owner)
        self.write(td.key, td.to_row())
        if td.kind == "r" and td.table_id >= self._first_new:
            # An id allocated here has no row anywhere in storage (ids are never reused
            # once committed; a rolled-back one never had rows): the cache of the new table
            # is complete as it is, so its first statement (a COPY, CREATE TABLE AS's own
            # rows, an ALTER) does not load it back from storage.
            self.store.created(td.table_id)

    def drop(self, td: TableDef) -> None:
        self.write(td.key, None)
        if td.kind == "S":
            self.txn.put(SEQUENCE_TABLE, rowid_key(td.table_id), None)
            self.txn.seqs.discard(td.table_id)

    def finish(self) -> None:
        snap = self.store.snapshot()
        self.txn.catalog = Catalog.from_rows(self.txn.scan(CATALOG_TABLE, snap), self.catalog.database)
        self.ctx.catalog = self.txn.catalog


def serial_sequence(type_oid: int) -> SequenceDef:
    """A serial column's sequence stops at its column type's maximum (AS integer / smallint)."""
    return SequenceDef(max_value={T.INT2: 2**15 - 1, T.INT4: 2**31 - 1}.get(type_oid, 2**63 - 1))


# column options the engine accepts without acting on them: they change no answer
# (COLLATE: text compares by code point, as the C collation; COMPRESSION: storage only)
_HARMLESS_COLUMN_OPTIONS = (exp.CollateColumnConstraint, exp.CompressColumnConstraint)


def _clause(node: exp.Expression) -> str:
    """A clause the engine refuses, in SQL as the user wrote it (for the error message)."""
    k = node.args.get("kind") if isinstance(node, exp.ColumnConstraint) else None
    if isinstance(k, exp.ComputedColumnConstraint):
        return "GENERATED ALWAYS AS (expression) STORED columns"
    try:
        return node.sql("postgres")
    except Exception:  # noqa: BLE001 - only the message
        return type(k or node).__name__


def _identity(col: ColumnDef, k: exp.GeneratedAsIdentityColumnConstraint, sname: str, table: str) -> None:
    """Make ``col`` an identity column over the sequence ``sname`` (made by the caller)."""
    if k.args.get("expression") is not None:
        raise errors.FeatureNotSupported("feature not supported: GENERATED ALWAYS AS (expression) columns")
    if col.type_oid not in (T.INT2, T.INT4, T.INT8):
        raise errors.SqlError("identity column type must be smallint, integer, or bigint", sqlstate="22023")
    if col.default is not None:
        raise errors.SyntaxErr(f'both default and identity specified for column "{col.name}" of table "{table}"')
    col.identity = "a" if k.this else "d"
    col.not_null = True
    col.default = f"nextval('{sname}')"


def identity_sequence(type_oid: int, k: exp.GeneratedAsIdentityColumnConstraint) -> SequenceDef:
    """The sequence of an identity column with its options (START WITH, INCREMENT BY, ...),
    bounded by the column's type as PostgreSQL does."""
    sd = serial_sequence(type_oid)
    inc = _int(k.args.get("increment"), 1)
    if inc == 0:
        raise errors.SqlError("INCREMENT must not be zero", sqlstate="22023")
    sd.increment = inc
    if inc < 0:
        sd.min_value, sd.max_value = -sd.max_value - 1, -1
    sd.min_value = _int(k.args.get("minvalue"), sd.min_value)
    sd.max_value = _int(k.args.get("maxvalue"), sd.max_value)
    sd.start = _int(k.args.get("start"), sd.min_value if inc > 0 else sd.max_value)
    sd.cycle = bool(k.args.get("cycle"))
    if not sd.min_value <= sd.start <= sd.max_value:
        raise errors.SqlError(f"START value ({sd.start}) cannot be {'less than MINVALUE' if sd.start < sd.min_value else 'greater than MAXVALUE'} "
                              f"({sd.min_value if sd.start < sd.min_value else sd.max_value})", sqlstate="22023")
    return sd


def _int(node: exp.Expression | None, default: int) -> int:
    if node is None:
        return default
    s = node.sql("postgres")
    return int(s)


def _seq_def(props: exp.Expression | None) -> SequenceDef:
    sd = SequenceDef()
    if props is None:
        return sd
    for p in props.expressions:
        if isinstance(p, exp.SequenceProperties):
            inc = _int(p.args.get("increment"), 1)
            sd.increment = inc
            if inc < 0:
                sd.min_value, sd.max_value = -(2**63), -1
            sd.min_value = _int(p.args.get("minvalue"), sd.min_value)
            sd.max_value = _int(p.args.get("maxvalue"), sd.max_value)
            sd.start = _int(p.args.get("start"), sd.min_value if inc > 0 else sd.max_value)
            sd.cycle = bool(p.args.get("cycle"))
    return sd


def _fkey(table: str, given: str | None, cols: list[str], ref: Any) -> list:
    """A catalog foreign-key entry: [name, cols, ref table, ref cols] (PG's default name)."""
    rs = ref.this if ref is not None else None
    rtable = rs.this.name if isinstance(rs, exp.Schema) else (rs.name if rs is not None else "")
    rcols = [c.name for c in rs.expressions] if isinstance(rs, exp.Schema) else []
    from engine.fkeys import actions_of

    on_delete, on_update = actions_of(ref)
    return [given or f"{table}_{'_'.join(cols)}_fkey", cols, rtable, rcols, on_delete, on_update]


def _refuse_table_options(node: exp.Create) -> None:
    """CREATE TABLE options the engine does not act on and that change answers (INHERITS,
    PARTITION BY / OF, ...) are refused; storage parameters, UNLOGGED, TEMP and TABLESPACE,
    which change no answer, stay accepted."""
    props = node.args.get("properties")
    for p in props.expressions if props is not None else []:
        if isinstance(p, exp.OnCommitProperty) and not p.args.get("delete"):
            continue  # ON COMMIT PRESERVE ROWS: what a temporary table does anyway
        if isinstance(p, exp.FileFormatProperty) and p.name.lower() == "heap":
            continue  # USING heap: the only table access method there is
        if type(p) not in _HARMLESS_TABLE_OPTIONS:
            raise errors.FeatureNotSupported(f"feature not supported: {_TABLE_OPTION_NAMES.get(type(p), _clause(p))}")


# PARTITION BY stays accepted as it was: the table is an ordinary one holding every row
# (PARTITION OF is refused, so there are no partitions to route to and every read answers as
# PostgreSQL would); only a row no partition would take is stored where PostgreSQL refuses it
_HARMLESS_TABLE_OPTIONS = {exp.Property, exp.UnloggedProperty, exp.TemporaryProperty, exp.TableSpaceProperty,
                           exp.PartitionedByProperty}
_TABLE_OPTION_NAMES = {exp.InheritsProperty: "INHERITS", exp.PartitionedByProperty: "PARTITION BY",
                       exp.PartitionedOfProperty: "PARTITION OF"}


def create_table(ctx: Any, node: exp.Create) -> tuple[str, list[str]]:
    _refuse_table_options(node)
    schema = node.this
    if not isinstance(schema, exp.Schema):
        raise errors.FeatureNotSupported("CREATE TABLE AS is not supported yet")
    name = schema.this.name
    cw = CatalogWriter(ctx)
    cw.temporary = is_temporary(node)
    if cw.catalog.get(name) is not None:
        if node.args.get("exists"):
            return "CREATE TABLE", [f'relation "{name}" already exists, skipping']
        raise errors.DuplicateTable(f'relation "{name}" already exists')
    cols: list[ColumnDef] = []
    pk: list[int] = []
    uniques: list[tuple[str, list[int]]] = []
    serials: list[tuple[int, str]] = []
    seq_opts: dict[int, exp.GeneratedAsIdentityColumnConstraint] = {}
    table_level = []
    checks: list[tuple[str, str]] = []
    fkeys: list[list] = []
    for e in schema.expressions:
        if not isinstance(e, exp.ColumnDef):
            table_level.append(e)
            continue
        cname = e.name
        if any(c.name == cname for c in cols):
            raise errors.SqlError(f'column "{cname}" specified more than once', sqlstate="42701")
        kind = e.args.get("kind")
        if kind is None:
            raise errors.SyntaxErr(f'syntax error at or near "{cname}"')
        oid, typmod = T.from_sqlglot(kind)
        col = ColumnDef(cname, oid, typmod)
        if kind.this.name in T.SERIAL_TYPES:
            serials.append((len(cols), f"{name}_{cname}_seq"))
            col.not_null = True
            col.default = f"nextval('{name}_{cname}_seq')"
        for cc in e.args.get("constraints") or []:
            k = cc.args.get("kind")
            if isinstance(k, exp.GeneratedAsIdentityColumnConstraint):
                sname = f"{name}_{cname}_seq"
                serials.append((len(cols), sname))
                _identity(col, k, sname, name)
                seq_opts[len(cols)] = k
            elif isinstance(k, exp.NotNullColumnConstraint):
                col.not_null = not k.args.get("allow_null")
            elif isinstance(k, exp.PrimaryKeyColumnConstraint):
                if pk:
                    raise errors.SqlError(f'multiple primary keys for table "{name}" are not allowed', sqlstate="42P16")
                pk = [len(cols)]
                col.not_null = True
            elif isinstance(k, exp.DefaultColumnConstraint):
                if col.identity:
                    raise errors.SyntaxErr(f'both default and identity specified for column "{cname}" of table "{name}"')
                check_default(k.this)
                col.default = k.this.sql("postgres")
            elif isinstance(k, exp.UniqueColumnConstraint):
                if k.args.get("nulls"):
                    raise errors.FeatureNotSupported("feature not supported: UNIQUE NULLS NOT DISTINCT")
                uniques.append((f"{name}_{cname}_key", [len(cols)]))
            elif isinstance(k, exp.CheckColumnConstraint):
                cn = cc.name or f"{name}_{cname}_check"
                checks.append((cn, k.this.sql("postgres")))
            elif not isinstance(k, (exp.Reference, *_HARMLESS_COLUMN_OPTIONS)):
                raise errors.FeatureNotSupported(f"feature not supported: {_clause(cc)}")
        cols.append(col)

    def positions(idents: list[exp.Expression]) -> list[int]:
        out = []
        for ident in idents:
            n = ident.name
            i = next((j for j, c in enumerate(cols) if c.name == n), None)
            if i is None:
                raise errors.UndefinedColumn(f'column "{n}" named in key does not exist')
            out.append(i)
        return out

    for e in table_level:
        cname_given = None
        if isinstance(e, exp.Constraint):
            cname_given = e.this.name if e.this is not None else None
            inner = e.expressions
            e = inner[0] if inner else e
        if isinstance(e, exp.PrimaryKey):
            if pk:
                raise errors.SqlError(f'multiple primary keys for table "{name}" are not allowed', sqlstate="42P16")
            pk = positions(e.expressions)
            for i in pk:
                cols[i].not_null = True
        elif isinstance(e, exp.UniqueColumnConstraint):
            if e.args.get("nulls"):
                raise errors.FeatureNotSupported("feature not supported: UNIQUE NULLS NOT DISTINCT")
            pos = positions(e.this.expressions if isinstance(e.this, exp.Schema) else [e.this])
            uniques.append((f"{name}_{'_'.join(cols[i].name for i in pos)}_key", pos))
        elif isinstance(e, (exp.CheckColumnConstraint, exp.Check)):
            refs = [c.name for c in e.this.find_all(exp.Column)]
            checks.append((cname_given or f"{name}_{refs[0] if refs else ''}_check".replace("__", "_"),
                           e.this.sql("postgres")))
        elif isinstance(e, exp.ForeignKey):  # recorded for pg_catalog, not enforced yet
            fk_cols = [c.name for c in e.expressions]
            fkeys.append(_fkey(name, cname_given, fk_cols, e.args.get("reference")))
        else:  # LIKE, EXCLUDE, ...: never silently dropped
            what = "LIKE" if isinstance(e, exp.LikeProperty) else (
                "EXCLUDE" if isinstance(e, exp.ExcludeColumnConstraint) else _clause(e))
            raise errors.FeatureNotSupported(f"feature not supported: {what}")
    for ce in schema.expressions:  # column-level REFERENCES
        if isinstance(ce, exp.ColumnDef):
            for cc in ce.args.get("constraints") or []:
                if isinstance(cc.args.get("kind"), exp.Reference):
                    fkeys.append(_fkey(name, None, [ce.name], cc.args["kind"]))
    for fk in fkeys:  # a foreign key needs REFERENCES on the table it points to
        ref = cw.catalog.get(fk[2])
        if ref is not None:
            privileges.require(ctx, ref, "x")
    td = TableDef(cw.alloc_id(), name, "r", cols, pk, uniques, checks=checks, fkeys=fkeys)
    for pos, sname in serials:
        if cw.catalog.get(sname) is not None:
            raise errors.DuplicateTable(f'relation "{sname}" already exists')
        seq = serial_sequence(cols[pos].type_oid)
        if pos in seq_opts:
            seq = identity_sequence(cols[pos].type_oid, seq_opts[pos])
        cw.put_table(TableDef(cw.alloc_id(), sname, "S", seq=seq))
        td.owned_seqs.append(sname)
    cw.put_table(td)
    cw.finish()
    return "CREATE TABLE", []


def create_sequence(ctx: Any, node: exp.Create) -> tuple[str, list[str]]:
    name = node.this.name
    cw = CatalogWriter(ctx)
    cw.temporary = is_temporary(node)
    if cw.catalog.get(name) is not None:
        if node.args.get("exists"):
            return "CREATE SEQUENCE", [f'relation "{name}" already exists, skipping']
        raise errors.DuplicateTable(f'relation "{name}" already exists')
    cw.put_table(TableDef(cw.alloc_id(), name, "S", seq=_seq_def(node.args.get("properties"))))
    cw.finish()
    return "CREATE SEQUENCE", []


def drop(ctx: Any, node: exp.Drop) -> tuple[str, list[str]]:
    kind = str(node.args.get("kind") or "").upper()
    want = {"TABLE": "r", "SEQUENCE": "S", "VIEW": "v"}.get(kind)
    if want is None:
        if kind in ("INDEX",):
            raise errors.FeatureNotSupported(f"DROP {kind} is not supported yet")
        raise errors.FeatureNotSupported(f"DROP {kind} is not supported")
    cw = CatalogWriter(ctx)
    notices = []
    word = {"r": "table", "S": "sequence", "v": "view"}[want]
    for t in node.args.get("tables") or node.expressions:
        name = t.name
        td = cw.catalog.get(name)
        if td is None or td.kind != want:
            if node.args.get("exists"):
                notices.append(f'{word} "{name}" does not exist, skipping')
                continue
            if td is not None:
                raise errors.SqlError(f'"{name}" is not a {word}', sqlstate="42809")
            raise errors.UndefinedTable(f'{word} "{name}" does not exist')
        privileges.must_own(ctx, td)
        cw.drop(td)
        if want == "r":
            drop_table_rows(ctx, td)
            for s in td.owned_seqs:
                sd = cw.catalog.get(s)
                if sd is not None:
                    cw.drop(sd)
    cw.finish()
    return f"DROP {kind}", notices


def drop_table_rows(ctx: Any, td: TableDef) -> None:
    """DROP TABLE's rows: the table locked whole (waits for the transactions writing it;
    later writers wait, then fail with 42P01) and one ``TABLE_DROPPED`` write -- the commit
    logs a range tombstone per protection group, not a delete per row.  A committed table
    id is never allocated again (``CatalogWriter.alloc_id``), so no catalog after the drop
    reaches the rows; storage reclaims them once the drop leaves the retention window."""
    ctx.txn.lock_table(td.table_id)
    ctx.txn.put(td.table_id, TABLE_DROPPED, None)


def _delete_all(ctx: Any, td: TableDef) -> None:
    """Every row of the table deleted (TRUNCATE, which keeps the table id): the table
    locked whole first (PostgreSQL's ACCESS EXCLUSIVE; one lock, not one per row), then
    every row deleted, in bulk."""
    txn = ctx.txn
    txn.lock_table(td.table_id)
    with gc_paused():
        keys = [key for key, _ in txn.scan(td.table_id, ctx.store.snapshot())]
        txn.put_many(td.table_id, [(key, None) for key in keys])


def truncate(ctx: Any, node: exp.TruncateTable) -> tuple[str, list[str]]:
    tds = []
    for t in node.expressions:
        td = ctx.catalog.get(t.name)
        if td is None or td.kind != "r":
            raise errors.UndefinedTable(f'relation "{t.name}" does not exist')
        privileges.require(ctx, td, "D")
        tds.append(td)
    names = {td.name for td in tds}
    notices = []
    while str(node.args.get("option") or "").lower() == "cascade":  # CASCADE: the tables referring to them too
        more = [o for o in ctx.catalog.tables.values()
                if o.name not in names and any(fk[2] in names for fk in o.fkeys)]
        if not more:
            break
        for o in sorted(more, key=lambda o: o.table_id):
            notices.append(f'truncate cascades to table "{o.name}"')
            privileges.require(ctx, o, "D")
            tds.append(o)
            names.add(o.name)
    for other in ctx.catalog.tables.values():  # a foreign key into a truncated table from outside
        for fk in other.fkeys:
            if fk[2] in names and other.name not in names:
                raise errors.FeatureNotSupported(
                    "cannot truncate a table referenced in a foreign key constraint",
                    detail=f'Table "{other.name}" references "{fk[2]}".',
                    hint=f'Truncate table "{other.name}" at the same time, or use TRUNCATE ... CASCADE.')
    for td in tds:
        _delete_all(ctx, td)
    return "TRUNCATE TABLE", notices


def tables_of(node: exp.Expression, catalog: Catalog, _seen: set[str] | None = None) -> list[int]:
    """Stored tables a statement may read (views expanded)."""
    import sqlglot

    seen = _seen if _seen is not None else set()
    ids = []
    for t in node.find_all(exp.Table):
        td = catalog.get(t.name)
        if td is None:
            continue
        if td.kind == "v" and td.view_sql and td.name not in seen:
            seen.add(td.name)
            ids.extend(tables_of(sqlglot.parse_one(td.view_sql, read="postgres"), catalog, seen))
        elif td.kind == "r":
            ids.append(td.table_id)
    return ids
