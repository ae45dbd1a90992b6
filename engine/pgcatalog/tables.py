"""Row generators of the virtual pg_catalog and information_schema tables.

Each table is ``(columns, rows)``: ``columns`` lists ``(name, type oid)`` in PostgreSQL 15's
order (only the columns clients read are present), ``rows(ctx)`` yields tuples generated
from the statement's catalog snapshot (``ctx.catalog``) through ``model.model_of``.
Tables the engine has no objects for (pg_trigger, pg_policy, pg_inherits ...) are listed
in ``ALWAYS_EMPTY``; the rewrite pass short-circuits queries that inner-join them.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

from engine import privileges
from engine import types as T
from engine.pgcatalog import oids
from engine.pgcatalog.model import model_of
from engine.pgcatalog.deparse import check_text, default_text
from engine.pgcatalog.types_data import COLLATABLE, all_types

B, N, O, I2, I4, I8, X, F4 = T.BOOL, T.NAME, T.OID, T.INT2, T.INT4, T.INT8, T.TEXT, T.FLOAT4
CHAR = T.TEXT  # PostgreSQL's one-byte "char" is served as text
ARR = 1009  # text[]: aclitem[] and option arrays, Python lists
I2ARR, OIDARR = 1005, 1028  # int2[] (conkey), oid[]
I2V, OIDV = T.INT2VECTOR, T.OIDVECTOR  # subscripts from 0, text "1 2"
TS = T.TIMESTAMPTZ
RP = T.REGPROC

Rows = Callable[[Any], Iterator[tuple]]
TABLES: dict[str, tuple[list[tuple[str, int]], Rows]] = {}
ALWAYS_EMPTY: set[str] = set()


def table(name: str, cols: str, types: list[int]) -> Callable[[Rows], Rows]:
    names = cols.split()
    assert len(names) == len(types), name

    def deco(fn: Rows) -> Rows:
        TABLES[name] = (list(zip(names, types)), fn)
        return fn

    return deco


def empty(name: str, cols: str, types: list[int] | None = None) -> None:
    names = cols.split()
    TABLES[name] = (list(zip(names, types or [X] * len(names))), lambda ctx: iter(()))
    ALWAYS_EMPTY.add(name)


def _user(ctx: Any) -> str:
    return getattr(ctx.session, "user", "postgres") or "postgres"


# -- namespaces, roles, databases ------------------------------------------------------------
NAMESPACES = [(oids.PG_CATALOG, "pg_catalog", oids.BOOTSTRAP_SUPERUSER), (oids.PG_TOAST, "pg_toast", oids.BOOTSTRAP_SUPERUSER),
              (oids.PUBLIC, "public", oids.PG_DATABASE_OWNER),
              (oids.INFORMATION_SCHEMA, "information_schema", oids.BOOTSTRAP_SUPERUSER)]


@table("pg_namespace", "oid nspname nspowner nspacl", [O, N, O, ARR])
def _pg_namespace(ctx: Any) -> Iterator[tuple]:
    su = bootstrap_name(ctx)
    for oid, name, owner in NAMESPACES:
        if oid == oids.PUBLIC:
            owner, items = privileges.schema_acl(ctx.catalog, "public")
            acl = privileges.acl_text(items, ctx.catalog)
        else:
            acl = None if oid == oids.PG_TOAST else [f"{su}=UC/{su}", f"=U/{su}"]
        yield (oid, name, owner, acl)


# descriptions initdb gives the built-in schemas and databases (obj_description / shobj_description)
NAMESPACE_COMMENTS = {oids.PG_CATALOG: "system catalog schema", oids.PG_TOAST: "reserved schema for TOAST tables",
                      oids.PUBLIC: "standard public schema"}
DATABASE_COMMENTS = {"postgres": "default administrative connection database",
                     "template1": "default template for new databases", "template0": "unmodifiable empty database"}


def role_defs(ctx: Any) -> list[Any]:
    """The catalog's roles (``engine.catalog.RoleDef``) in oid order."""
    return sorted(ctx.catalog.roles.values(), key=lambda r: r.oid)


def roles(ctx: Any) -> list[tuple[int, str, bool]]:
    """(oid, name, can_login) of every role."""
    return [(r.oid, r.name, r.canlogin) for r in role_defs(ctx)]


def bootstrap_name(ctx: Any) -> str:
    r = ctx.catalog.role_by_oid.get(oids.BOOTSTRAP_SUPERUSER)
    return r.name if r is not None else "postgres"


def _rolpassword(ctx: Any, r: Any) -> str | None:
    if not r.stored and r.oid == oids.BOOTSTRAP_SUPERUSER:
        return getattr(ctx.db, "bootstrap_verifier", None)
    return r.password


def _config(r: Any) -> list[str] | None:
    return list(r.config) if r.config else None


_ROLE_COLS = ("rolname rolsuper rolinherit rolcreaterole rolcreatedb rolcanlogin rolreplication "
              "rolconnlimit rolpassword rolvaliduntil rolbypassrls rolconfig oid")
_ROLE_TYPES = [N, B, B, B, B, B, B, I4, X, TS, B, ARR, O]


@table("pg_roles", _ROLE_COLS, _ROLE_TYPES)
def _pg_roles(ctx: Any) -> Iterator[tuple]:
    for r in role_defs(ctx):
        pw = "********" if _rolpassword(ctx, r) is not None else None
        yield (r.name, r.superuser, r.inherit, r.createrole, r.createdb, r.canlogin, r.replication, r.connlimit,
               pw, r.valid_until, r.bypassrls, _config(r), r.oid)


def _superuser_only(ctx: Any, name: str) -> None:
    from engine import errors, roles as _roles

    if not _roles.is_superuser(ctx.session, ctx.catalog):
        raise errors.SqlError(f"permission denied for {'table' if name == 'pg_authid' else 'view'} {name}",
                              sqlstate="42501")


@table("pg_authid", "oid rolname rolsuper rolinherit rolcreaterole rolcreatedb rolcanlogin rolreplication "
       "rolbypassrls rolconnlimit rolpassword rolvaliduntil", [O, N, B, B, B, B, B, B, B, I4, X, TS])
def _pg_authid(ctx: Any) -> Iterator[tuple]:
    _superuser_only(ctx, "pg_authid")
    for r in role_defs(ctx):
        yield (r.oid, r.name, r.superuser, r.inherit, r.createrole, r.createdb, r.canlogin, r.replication,
               r.bypassrls, r.connlimit, _rolpassword(ctx, r), r.valid_until)


_USER_COLS = "usename usesysid usecreatedb usesuper userepl usebypassrls passwd valuntil useconfig"
_USER_TYPES = [N, O, B, B, B, B, X, TS, ARR]


@table("pg_user", _USER_COLS, _USER_TYPES)
def _pg_user(ctx: Any) -> Iterator[tuple]:
    for r in role_defs(ctx):
        if r.canlogin:
            yield (r.name, r.oid, r.createdb, r.superuser, r.replication, r.bypassrls, "********", r.valid_until,
                   _config(r))


@table("pg_shadow", _USER_COLS, _USER_TYPES)
def _pg_shadow(ctx: Any) -> Iterator[tuple]:
    _superuser_only(ctx, "pg_shadow")
    for r in role_defs(ctx):
        if r.canlogin:
            yield (r.name, r.oid, r.createdb, r.superuser, r.replication, r.bypassrls, _rolpassword(ctx, r),
                   r.valid_until, _config(r))


@table("pg_group", "groname grosysid grolist", [N, O, ARR])
def _pg_group(ctx: Any) -> Iterator[tuple]:
    for r in role_defs(ctx):
        if not r.canlogin:
            yield (r.name, r.oid, [m for roleid, m, _g, _a in ctx.catalog.members if roleid == r.oid])


@table("pg_auth_members", "roleid member grantor admin_option", [O, O, O, B])
def _pg_auth_members(ctx: Any) -> Iterator[tuple]:
    for roleid, member, grantor, admin in ctx.catalog.members:
        yield (roleid, member, grantor, admin)


@table("pg_database", "oid datname datdba encoding datlocprovider datistemplate datallowconn datconnlimit "
       "datcollate datctype daticulocale datacl dattablespace",
       [O, N, O, I4, CHAR, B, B, I4, X, X, X, ARR, O])
def _pg_database(ctx: Any) -> Iterator[tuple]:
    cat = ctx.catalog
    for name, oid in database_oids(ctx).items():
        tmpl = name in ("template0", "template1")
        su = bootstrap_name(ctx)
        acl = ["=c/" + su, f"{su}=CTc/{su}"] if tmpl else None
        d = cat.database_def(name)
        owner = d.owner if d is not None else oids.BOOTSTRAP_SUPERUSER
        if d is not None and d.acl is not None:
            acl = privileges.acl_text([list(a) for a in d.acl], cat)
        yield (oid, name, owner, 6, "c", tmpl, name != "template0", -1,
               "C.UTF-8", "C.UTF-8", None, acl, 1663)


@table("pg_db_role_setting", "setdatabase setrole setconfig", [O, O, ARR])
def _pg_db_role_setting(ctx: Any) -> Iterator[tuple]:
    """ALTER ROLE ... SET (setdatabase 0) and ALTER DATABASE ... SET (setrole 0) defaults."""
    cat = ctx.catalog
    for r in cat.roles.values():
        if r.config:
            yield (0, r.oid, list(r.config))
    for name, oid in database_oids(ctx).items():
        d = cat.database_def(name)
        if d is not None and d.config:
            yield (oid, 0, list(d.config))


def database_oids(ctx: Any) -> dict[str, int]:
    """Database name -> pg_database.oid: initdb's oids for the built-in three, the stored
    oid for a database made since oids were kept, a stand-in by name order for older ones."""
    cat = ctx.catalog
    names = sorted(set(cat.databases) | {"template0"})
    return {n: d.oid if (d := cat.database_def(n)) is not None else 16000 + i for i, n in enumerate(names)}


@table("pg_tablespace", "oid spcname spcowner", [O, N, O])
def _pg_tablespace(ctx: Any) -> Iterator[tuple]:
    yield (1663, "pg_default", oids.BOOTSTRAP_SUPERUSER)
    yield (1664, "pg_global", oids.BOOTSTRAP_SUPERUSER)


@table("pg_am", "oid amname amhandler amtype", [O, N, X, CHAR])
def _pg_am(ctx: Any) -> Iterator[tuple]:
    yield (oids.HEAP_AM, "heap", "heap_tableam_handler", "t")
    yield (oids.BTREE_AM, "btree", "bthandler", "i")
    yield (oids.HASH_AM, "hash", "hashhandler", "i")


# -- relations -------------------------------------------------------------------------------
_CLASS_COLS = ("oid relname relnamespace reltype reloftype relowner relam relfilenode reltablespace relpages "
               "reltuples relallvisible reltoastrelid relhasindex relisshared relpersistence relkind relnatts "
               "relchecks relhasrules relhastriggers relhassubclass relrowsecurity relforcerowsecurity "
               "relispopulated relreplident relispartition relrewrite relfrozenxid relminmxid relacl "
               "reloptions relpartbound")
_CLASS_TYPES = [O, N, O, O, O, O, O, O, O, I4, F4, I4, O, B, B, CHAR, CHAR, I2, I2, B, B, B, B, B, B, CHAR,
                B, O, X, X, ARR, ARR, X]


def _class_row(oid: int, name: str, kind: str, natts: int, am: int, hasindex: bool, checks: int = 0,
               triggers: bool = False, owner: int = oids.BOOTSTRAP_SUPERUSER, acl: list | None = None,
               rls: str = "") -> tuple:
    reltype = row_type_oid(oid) if kind in ("r", "v") else 0
    pages, tuples = (1, 0.0) if kind == "i" else (0, -1.0)  # a new btree has its metapage; tables: never analysed
    return (oid, name, oids.PUBLIC, reltype, 0, owner, am, oid, 0, pages, tuples, 0, 0, hasindex,
            False, "p", kind, natts, checks, False, triggers, False, "e" in rls, "f" in rls, True,
            "d" if kind in ("r", "S") else "n", False, 0, "0", "1", acl, None, None)


@table("pg_class", _CLASS_COLS, _CLASS_TYPES)
def _pg_class(ctx: Any) -> Iterator[tuple]:
    m = model_of(ctx)
    has_index = {ix.table.table_id for ix in m.indexes}
    # foreign keys are implemented by (internal) triggers in PostgreSQL: both ends have them
    fk_ends = {t.table_id for c in m.constraints if c.contype == "f" for t in (c.table, c.ref_table) if t}
    for td in ctx.catalog.tables.values():
        kind = td.kind
        am = oids.HEAP_AM if kind == "r" else 0
        yield _class_row(td.table_id, td.name, kind, len(td.columns) if kind != "S" else 3, am,
                         td.table_id in has_index, len(getattr(td, "checks", []) or []), td.table_id in fk_ends,
                         td.owner, privileges.acl_text(td.acl, ctx.catalog), td.rls)
    for ix in m.indexes:
        yield _class_row(ix.oid, ix.name, "i", len(ix.cols), oids.BTREE_AM, False, owner=ix.table.owner)


# default btree operator classes of the column types (pg_opclass oids)
_OPCLASS = {T.INT2: 1979, T.INT4: 1978, T.INT8: 3124, T.TEXT: 3126, T.VARCHAR: 3126, T.BPCHAR: 10004,
            T.NAME: 10028, T.OID: 1981, T.BOOL: 10003, T.NUMERIC: 3125, T.FLOAT4: 10012, T.FLOAT8: 3123,
            T.DATE: 3122, T.TIMESTAMP: 3128, T.TIMESTAMPTZ: 3127, T.TIME: 10038, T.INTERVAL: 10022,
            T.UUID: 10065, T.BYTEA: 10006, T.JSONB: 10088}


def opclass(type_oid: int) -> int:
    return _OPCLASS.get(type_oid, 0)


@table("pg_index", "indexrelid indrelid indnatts indnkeyatts indisunique indnullsnotdistinct indisprimary "
       "indisexclusion indimmediate indisclustered indisvalid indcheckxmin indisready indislive "
       "indisreplident indkey indcollation indclass indoption indexprs indpred",
       [O, O, I2, I2, B, B, B, B, B, B, B, B, B, B, B, I2V, OIDV, OIDV, I2V, X, X])
def _pg_index(ctx: Any) -> Iterator[tuple]:
    for ix in model_of(ctx).indexes:
        types = [ix.table.columns[c].type_oid for c in ix.cols]
        coll = T.Vector(oids.DEFAULT_COLLATION if t in COLLATABLE else 0 for t in types)
        yield (ix.oid, ix.table.table_id, len(ix.cols), len(ix.cols), ix.unique, False, ix.primary, False,
               True, False, True, False, True, True, False, T.Vector(c + 1 for c in ix.cols), coll,
               T.Vector(opclass(t) for t in types), T.Vector(0 for _ in ix.cols), None, None)


_ATT_COLS = ("attrelid attname atttypid attstattarget attlen attnum attndims attcacheoff atttypmod attbyval "
             "attalign attstorage attcompression attnotnull atthasdef atthasmissing attidentity attgenerated "
             "attisdropped attislocal attinhcount attcollation attacl attoptions")
_ATT_TYPES = [O, N, O, I4, I2, I2, I4, I4, I4, B, CHAR, CHAR, CHAR, B, B, B, CHAR, CHAR, B, B, I4, O, ARR, ARR]
_STORAGE = {T.INT2: "p", T.INT4: "p", T.INT8: "p", T.BOOL: "p", T.FLOAT4: "p", T.FLOAT8: "p", T.DATE: "p",
            T.TIMESTAMP: "p", T.TIMESTAMPTZ: "p", T.OID: "p", T.UUID: "p", T.TIME: "p", T.INTERVAL: "p",
            T.NAME: "p", T.NUMERIC: "m"}


def _att(relid: int, name: str, typ: int, num: int, typmod: int, notnull: bool, hasdef: bool,
         acl: list[str] | None = None, identity: str = "") -> tuple:
    ln = T.TYPE_SIZES.get(typ, -1)
    return (relid, name, typ, -1, ln, num, 0, -1, typmod, ln in (1, 2, 4, 8), "i",
            _STORAGE.get(typ, "x"), "", notnull, hasdef, False, identity, "", False, True, 0,
            oids.DEFAULT_COLLATION if typ in COLLATABLE else 0, acl, None)


_SYS_ATTS = [("tableoid", T.OID, -6), ("cmax", 29, -5), ("xmax", 28, -4), ("cmin", 29, -3),
             ("xmin", 28, -2), ("ctid", 27, -1)]


@table("pg_attribute", _ATT_COLS, _ATT_TYPES)
def _pg_attribute(ctx: Any) -> Iterator[tuple]:
    for td in ctx.catalog.tables.values():
        if td.kind == "S":
            for i, (n, t) in enumerate((("last_value", T.INT8), ("log_cnt", T.INT8), ("is_called", T.BOOL))):
                yield _att(td.table_id, n, t, i + 1, -1, True, False)
            continue
        for i, c in enumerate(td.columns):
            col_acl = td.col_acls.get(c.name)
            yield _att(td.table_id, c.name, c.type_oid, i + 1, c.typmod, c.not_null,
                       c.default is not None and not c.identity,
                       privileges.acl_text(col_acl, ctx.catalog) if col_acl else None, c.identity)
        for n, t, num in _SYS_ATTS:
            yield _att(td.table_id, n, t, num, -1, True, False)
    for ix in model_of(ctx).indexes:
        for k, pos in enumerate(ix.cols):
            c = ix.table.columns[pos]
            yield _att(ix.oid, c.name, c.type_oid, k + 1, c.typmod, False, False)


@table("pg_attrdef", "oid adrelid adnum adbin", [O, O, I2, X])
def _pg_attrdef(ctx: Any) -> Iterator[tuple]:
    for td in ctx.catalog.tables.values():
        for i, c in enumerate(td.columns):
            if c.default is not None and not c.identity:  # an identity column has no default of its own
                yield (oids.derived(td.table_id, 0) + 0x20000000 + i, td.table_id, i + 1, default_text(td, c))


@table("pg_constraint", "oid conname connamespace contype condeferrable condeferred convalidated conrelid "
       "contypid conindid conparentid confrelid confupdtype confdeltype confmatchtype conislocal "
       "coninhcount connoinherit conkey confkey conbin",
       [O, N, O, CHAR, B, B, B, O, O, O, O, O, CHAR, CHAR, CHAR, B, I4, B, I2ARR, I2ARR, X])
def _pg_constraint(ctx: Any) -> Iterator[tuple]:
    for c in model_of(ctx).constraints:
        fk = c.contype == "f"
        yield (c.oid, c.name, oids.PUBLIC, c.contype, False, False, True, c.table.table_id, 0, c.index, 0,
               c.ref_table.table_id if fk and c.ref_table is not None else 0,
               "a" if fk else " ", "a" if fk else " ", "s" if fk else " ", True, 0, False,
               [p + 1 for p in c.cols], [p + 1 for p in c.ref_cols] if fk else None,
               check_text(c.table, c.check) if c.check is not None else None)


@table("pg_sequence", "seqrelid seqtypid seqstart seqincrement seqmax seqmin seqcache seqcycle",
       [O, O, I8, I8, I8, I8, I8, B])
def _pg_sequence(ctx: Any) -> Iterator[tuple]:
    for td in ctx.catalog.tables.values():
        if td.kind == "S" and td.seq is not None:
            s = td.seq
            yield (td.table_id, sequence_type(s), s.start, s.increment, s.max_value, s.min_value, 1, s.cycle)


def sequence_type(s: Any) -> int:
    """The sequence's AS type: a serial column's sequence ends at its column type's maximum."""
    return {2**31 - 1: T.INT4, 2**15 - 1: T.INT2}.get(s.max_value, T.INT8)


@table("pg_type", "oid typname typnamespace typowner typlen typbyval typtype typcategory typispreferred "
       "typisdefined typdelim typrelid typsubscript typelem typarray typinput typoutput typreceive typsend "
       "typmodin typmodout typanalyze typalign typstorage typnotnull typbasetype typtypmod typndims "
       "typcollation typdefaultbin typdefault typacl",
       [O, N, O, O, I2, B, CHAR, CHAR, B, B, CHAR, O, X, O, O, RP, RP, RP, RP, RP, RP, RP, CHAR, CHAR, B, O, I4, I4,
        O, X, X, ARR])
def _pg_type(ctx: Any) -> Iterator[tuple]:
    from engine.catalog_functions import regproc_of

    def procs(*names: str) -> list:
        return [regproc_of(ctx, n) for n in names]

    for oid, name, ln, byval, typtype, cat, elem, arr in all_types():
        io = "array_" if name.startswith("_") else _IO_PREFIX.get(name, name)
        yield (oid, name, oids.PG_CATALOG, oids.BOOTSTRAP_SUPERUSER, ln, byval, typtype, cat, False, True, ",",
               0, "array_subscript_handler" if elem else "-", elem, arr,
               *procs(io + "in", io + "out", io + "recv", io + "send", "-", "-", "-"),
               "i" if ln in (-1, 4) else ("d" if ln == 8 else "c"),
               "x" if ln == -1 else "p", False, 0, -1, 0,
               oids.DEFAULT_COLLATION if (oid in COLLATABLE or elem in COLLATABLE) else 0, None, None, None)
    record_io = procs("record_in", "record_out", "record_recv", "record_send", "-", "-", "-")
    array_io = procs("array_in", "array_out", "array_recv", "array_send", "-", "-", "array_typanalyze")
    for td in ctx.catalog.tables.values():  # composite row types of tables and views, and their arrays
        if td.kind not in ("r", "v"):
            continue
        rowtype, arrtype = row_type_oid(td.table_id), row_array_type_oid(td.table_id)
        yield (rowtype, td.name, oids.PUBLIC, oids.BOOTSTRAP_SUPERUSER, -1, False, "c", "C",
               False, True, ",", td.table_id, "-", 0, arrtype, *record_io, "d", "x", False, 0, -1, 0, 0,
               None, None, None)
        yield (arrtype, "_" + td.name, oids.PUBLIC, oids.BOOTSTRAP_SUPERUSER, -1, False, "b", "A",
               False, True, ",", 0, "array_subscript_handler", rowtype, 0, *array_io, "d", "x", False, 0, -1, 0,
               0, None, None, None)


# I/O function name prefixes that differ from the type name (int4 -> int4in, date -> date_in)
_IO_PREFIX = {n: n + "_" for n in ("numeric", "date", "time", "timestamp", "timestamptz", "interval", "timetz",
                                   "uuid", "json", "jsonb", "xml", "inet", "cidr", "macaddr", "bit", "varbit",
                                   "point", "pg_lsn", "jsonpath")}
_IO_PREFIX.update({"money": "cash_", "int4range": "range_", "bpchar": "bpchar", "char": "char"})


def row_type_oid(table_id: int) -> int:
    """pg_class.reltype: the composite type of a table or view."""
    return table_id + 0x10000000


def row_array_type_oid(table_id: int) -> int:
    return table_id + 0x18000000


@table("pg_collation", "oid collname collnamespace collowner collprovider collisdeterministic collencoding "
       "collcollate collctype", [O, N, O, O, CHAR, B, I4, X, X])
def _pg_collation(ctx: Any) -> Iterator[tuple]:
    yield (oids.DEFAULT_COLLATION, "default", oids.PG_CATALOG, 10, "d", True, -1, None, None)
    yield (oids.C_COLLATION, "C", oids.PG_CATALOG, 10, "c", True, -1, "C", "C")
    yield (951, "POSIX", oids.PG_CATALOG, 10, "c", True, -1, "POSIX", "POSIX")


@table("pg_description", "objoid classoid objsubid description", [O, O, I4, X])
def _pg_description(ctx: Any) -> Iterator[tuple]:
    """COMMENT ON texts: relations and their columns, indexes (all pg_class objects)."""
    from engine.catalog import INDEX_COMMENT

    m = model_of(ctx)
    index_oid = {(ix.table.table_id, ix.name): ix.oid for ix in m.indexes}
    for td in ctx.catalog.tables.values():
        for key, text in sorted((getattr(td, "comments", None) or {}).items()):
            if key == "":
                yield (td.table_id, oids.PG_CLASS, 0, text)
            elif key.startswith(INDEX_COMMENT):
                ioid = index_oid.get((td.table_id, key[len(INDEX_COMMENT):]))
                if ioid is not None:
                    yield (ioid, oids.PG_CLASS, 0, text)
            elif (i := td.column_index(key)) is not None:
                yield (td.table_id, oids.PG_CLASS, i + 1, text)


@table("pg_settings", "name setting unit category short_desc extra_desc context vartype source min_val "
       "max_val enumvals boot_val reset_val sourcefile sourceline pending_restart",
       [X, X, X, X, X, X, X, X, X, X, X, ARR, X, X, X, I4, B])
def _pg_settings(ctx: Any) -> Iterator[tuple]:
    params = ctx.session.parameter_status() if hasattr(ctx.session, "parameter_status") else {}
    fixed = {k: v for k, v in _PRESET.items() if k not in params}
    for name in sorted(set(params) | set(fixed)):
        if name in fixed:
            v, unit = fixed[name]
            yield (name, v, unit, "Preset Options", "", None, "internal", "integer", "default",
                   v, v, None, v, v, None, None, False)
            continue
        v = params[name]
        yield (name, v, None, "Client Connection Defaults", "", None, "user", "string", "default",
               None, None, None, v, v, None, None, False)


# compiled-in limits clients read from pg_settings (JDBC: max_index_keys)
_PRESET = {"max_index_keys": ("32", None), "max_function_args": ("100", None),
           "max_identifier_length": ("63", None), "block_size": ("8192", None),
           "segment_size": ("131072", "8kB"), "wal_block_size": ("8192", None)}


@table("pg_stat_activity", "datid datname pid leader_pid usesysid usename application_name client_addr "
       "client_hostname client_port backend_start xact_start query_start state_change wait_event_type "
       "wait_event state backend_xid backend_xmin query_id query backend_type",
       [O, N, I4, I4, O, N, X, X, X, I4, TS, TS, TS, TS, X, X, X, X, X, I8, X, X])
def _pg_stat_activity(ctx: Any) -> Iterator[tuple]:
    """Every open session of this instance; other roles' statements stay hidden from a
    non-superuser, as in PostgreSQL."""
    import datetime as dt

    me = ctx.session
    sessions = dict(getattr(ctx.db, "sessions", None) or {})
    sessions.setdefault(getattr(me, "backend_pid", 0), me)
    superuser = getattr(me, "gucs", {}).get("is_superuser") == "on"
    catalog = ctx.catalog

    def ts(t: float) -> Any:
        return dt.datetime.fromtimestamp(t, dt.timezone.utc) if t else None

    db_oids = database_oids(ctx)
    for pid in sorted(sessions):
        s = sessions[pid]
        user = getattr(s, "session_user", None) or getattr(s, "user", "postgres")
        role = catalog.role(user) if catalog is not None and hasattr(catalog, "role") else None
        txn = getattr(s, "txn", None)
        mine = superuser or user == getattr(me, "session_user", _user(ctx))
        state = s.activity_state if hasattr(s, "activity_state") else "active"
        app = (s.get_parameter("application_name") if hasattr(s, "get_parameter") else "") or ""
        datname = getattr(s, "database", "postgres")
        yield (db_oids.get(datname, 5), datname, pid, None,
               role.oid if role is not None else oids.BOOTSTRAP_SUPERUSER, user, app, None, None, None,
               ts(getattr(s, "backend_start", 0.0)), txn.start_time if txn is not None else None,
               ts(getattr(s, "query_start", 0.0)), ts(getattr(s, "query_start", 0.0)), None, None,
               state if mine else None, None, None, None,
               getattr(s, "query", "") if mine else "<insufficient privilege>", "client backend")


@table("pg_tables", "schemaname tablename tableowner tablespace hasindexes hasrules hastriggers rowsecurity",
       [N, N, N, N, B, B, B, B])
def _pg_tables(ctx: Any) -> Iterator[tuple]:
    m = model_of(ctx)
    has_index = {ix.table.table_id for ix in m.indexes}
    for td in ctx.catalog.tables.values():
        if td.kind == "r":
            yield ("public", td.name, _user(ctx), None, td.table_id in has_index, False, False, False)


def _viewdef(ctx: Any, td: Any) -> str | None:
    from engine.pgcatalog.viewdef import viewdef

    sql = getattr(td, "view_sql", None)
    return None if sql is None else viewdef(sql, ctx.catalog, False)


@table("pg_views", "schemaname viewname viewowner definition", [N, N, N, X])
def _pg_views(ctx: Any) -> Iterator[tuple]:
    for td in ctx.catalog.tables.values():
        if td.kind == "v":
            yield ("public", td.name, _user(ctx), _viewdef(ctx, td))


@table("pg_indexes", "schemaname tablename indexname tablespace indexdef", [N, N, N, N, X])
def _pg_indexes(ctx: Any) -> Iterator[tuple]:
    from engine.pgcatalog.render import indexdef

    for ix in model_of(ctx).indexes:
        yield ("public", ix.table.name, ix.name, None, indexdef(ix, pretty=False))


@table("pg_sequences", "schemaname sequencename sequenceowner data_type start_value min_value max_value "
       "increment_by cycle cache_size last_value", [N, N, N, T.REGTYPE, I8, I8, I8, I8, B, I8, I8])
def _pg_sequences(ctx: Any) -> Iterator[tuple]:
    from engine.catalog_functions import RegOid

    for td in ctx.catalog.tables.values():
        if td.kind == "S" and td.seq is not None:
            s = td.seq
            yield ("public", td.name, _user(ctx), RegOid(T.TYPE_NAMES[sequence_type(s)], sequence_type(s)), s.start,
                   s.min_value, s.max_value, s.increment,
                   s.cycle, 1, None)


@table("pg_default_acl", "oid defaclrole defaclnamespace defaclobjtype defaclacl", [O, O, O, CHAR, ARR])
def _pg_default_acl(ctx: Any) -> Iterator[tuple]:
    """ALTER DEFAULT PRIVILEGES entries of the session's database (oids made up from the entry)."""
    cat = ctx.catalog
    for n, ((role, db, schema, objtype), acl) in enumerate(sorted(cat.default_acls.items())):
        if db == cat.database:
            yield (oids.derived(role, 200 + n % 50), role, oids.PUBLIC if schema else 0, objtype,
                   privileges.acl_text(acl, cat))


empty("pg_inherits", "inhrelid inhparent inhseqno inhdetachpending", [O, O, I4, B])
empty("pg_trigger", "oid tgrelid tgparentid tgname tgfoid tgtype tgenabled tgisinternal tgconstraint",
      [O, O, O, N, O, I2, CHAR, B, O])
@table("pg_policy", "oid polname polrelid polcmd polpermissive polroles polqual polwithcheck",
       [O, N, O, CHAR, B, OIDARR, X, X])
def _pg_policy(ctx: Any) -> Iterator[tuple]:
    for td, n, p in _policies(ctx):
        yield (oids.derived(td.table_id, 224 - 1 - n % 32) + 0x10000000, p[0], td.table_id, p[2], p[1], list(p[3]),
               check_text(td, p[4]) if p[4] is not None else None, check_text(td, p[5]) if p[5] is not None else None)


def _policies(ctx: Any) -> Iterator[tuple]:
    for td in sorted(ctx.catalog.tables.values(), key=lambda t: t.table_id):
        for n, p in enumerate(td.policies):
            yield td, n, p


@table("pg_policies", "schemaname tablename policyname permissive roles cmd qual with_check",
       [N, N, N, X, ARR, X, X, X])
def _pg_policies(ctx: Any) -> Iterator[tuple]:
    from engine.rls import CMD_NAMES

    cat = ctx.catalog
    for td, _n, p in _policies(ctx):
        names = sorted("public" if r == 0 else (cat.role_by_oid[r].name if r in cat.role_by_oid else str(r))
                       for r in p[3])
        yield ("public", td.name, p[0], "PERMISSIVE" if p[1] else "RESTRICTIVE", names, CMD_NAMES[p[2]],
               str(check_text(td, p[4])) if p[4] is not None else None,
               str(check_text(td, p[5])) if p[5] is not None else None)


empty("pg_rewrite", "oid rulename ev_class ev_type ev_enabled is_instead ev_qual ev_action",
      [O, N, O, CHAR, CHAR, B, X, X])
empty("pg_foreign_table", "ftrelid ftserver ftoptions", [O, O, ARR])
empty("pg_foreign_server", "oid srvname srvowner srvfdw", [O, N, O, O])
empty("pg_foreign_data_wrapper", "oid fdwname fdwowner", [O, N, O])
empty("pg_statistic_ext", "oid stxrelid stxname stxnamespace stxowner stxstattarget stxkeys stxkind",
      [O, O, N, O, O, I4, X, ARR])
empty("pg_publication", "oid pubname pubowner puballtables pubinsert pubupdate pubdelete pubtruncate pubviaroot",
      [O, N, O, B, B, B, B, B, B])
empty("pg_publication_rel", "oid prpubid prrelid prqual prattrs", [O, O, O, X, X])
empty("pg_publication_namespace", "oid pnpubid pnnspid", [O, O, O])
empty("pg_partitioned_table", "partrelid partstrat partnatts partdefid", [O, CHAR, I2, O])
empty("pg_event_trigger", "oid evtname evtevent evtowner evtfoid evtenabled", [O, N, N, O, O, CHAR])
empty("pg_extension", "oid extname extowner extnamespace extrelocatable extversion", [O, N, O, O, B, X])
empty("pg_enum", "oid enumtypid enumsortorder enumlabel", [O, O, F4, N])
empty("pg_range", "rngtypid rngsubtype rngmultitypid", [O, O, O])
@table("pg_depend", "classid objid objsubid refclassid refobjid refobjsubid deptype", [O, O, I4, O, O, I4, CHAR])
def _pg_depend(ctx: Any) -> Iterator[tuple]:
    """A serial column's sequence belongs to the column (deptype 'a': psql's "Owned by")."""
    for td in ctx.catalog.tables.values():
        for seq in getattr(td, "owned_seqs", None) or []:
            sd = ctx.catalog.get(seq)
            if sd is None:
                continue
            col = next((i for i, c in enumerate(td.columns) if c.default and f"'{seq}'" in c.default), None)
            if col is not None:
                yield (oids.PG_CLASS, sd.table_id, 0, oids.PG_CLASS, td.table_id, col + 1, "a")
empty("pg_shdescription", "objoid classoid description", [O, O, X])
empty("pg_cast", "oid castsource casttarget castfunc castcontext castmethod", [O, O, O, O, CHAR, CHAR])
empty("pg_operator", "oid oprname oprnamespace oprleft oprright oprresult oprcode", [O, N, O, O, O, O, X])
empty("pg_opclass", "oid opcmethod opcname opcnamespace", [O, O, N, O])
empty("pg_language", "oid lanname", [O, N])
empty("pg_matviews", "schemaname matviewname matviewowner definition", [N, N, N, X])
empty("pg_stat_replication", "pid usename application_name state", [I4, N, X, X])


@table("pg_proc", "oid proname pronamespace proowner prolang procost prorows provariadic prokind prosecdef "
       "proleakproof proisstrict proretset provolatile pronargs pronargdefaults prorettype proargtypes "
       "proallargtypes proargmodes proargnames prosrc", [O, N, O, O, O, F4, F4, O, CHAR, B, B, B, B, CHAR, I2,
                                                          I2, O, OIDV, OIDARR, ARR, ARR, X])
def _pg_proc(ctx: Any) -> Iterator[tuple]:
    """The functions the engine implements (built-ins in pg_catalog; argument types unknown: none)."""
    from engine.catalog_functions import proc_oid
    from engine.functions import _HANDLERS

    for name in sorted(n for n in _HANDLERS if n.islower() and not n.startswith("_")):
        yield (proc_oid(name), name, oids.PG_CATALOG, oids.BOOTSTRAP_SUPERUSER, 12, 1.0, 0.0, 0, "f", False,
               False, True, False, "s", 0, 0, T.TEXT, T.Vector(), None, None, None, name)
