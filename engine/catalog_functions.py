"""Catalog-related SQL functions (psql's and drivers' introspection) and reg* casts.

Registered into ``engine.functions`` by name (``HANDLERS``).  They read the statement's
catalog through ``engine.pgcatalog.model.model_of(ctx)``.  ``::regclass`` / ``::regtype``
casts are rewritten by ``engine.pgcatalog.rewrite`` into calls of ``__regclass`` etc.;
their values are ``RegOid``: a ``str`` (the name, so text output shows the name) that
compares equal to its oid and converts with ``int()``; the expression type is ``oid``.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from sqlglot import exp

from engine import errors, privfuncs
from engine import types as T
from engine.expr import CExpr, Compiler, _subquery_rows, const
from engine.pgcatalog import oids
from engine.pgcatalog.deparse import ExprText
from engine.pgcatalog.model import model_of
from engine.pgcatalog.render import constraintdef, format_type, indexdef, oid_of
from engine.pgcatalog.tables import DATABASE_COMMENTS, NAMESPACE_COMMENTS, NAMESPACES, roles
from engine.pgcatalog.types_data import all_types

Handler = Callable[[Compiler, exp.Expression], CExpr]


class RegOid(str):
    """A reg* value: text is the object's name, comparisons and int() use the oid."""

    oid: int

    def __new__(cls, name: str, oid: int) -> "RegOid":
        s = super().__new__(cls, name)
        s.oid = oid
        return s

    def __int__(self) -> int:
        return self.oid

    def __index__(self) -> int:
        return self.oid

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RegOid):
            return self.oid == other.oid
        if isinstance(other, int):
            return self.oid == other
        return str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash(self.oid)

    def __lt__(self, other: Any) -> bool:  # reg* values sort by oid, like PostgreSQL's
        return self.oid < int(other) if isinstance(other, (int, RegOid)) else str.__lt__(self, other)

    def __gt__(self, other: Any) -> bool:
        return self.oid > int(other) if isinstance(other, (int, RegOid)) else str.__gt__(self, other)

    def __le__(self, other: Any) -> bool:
        return not self.__gt__(other)

    def __ge__(self, other: Any) -> bool:
        return not self.__lt__(other)


def _args(cp: Compiler, node: exp.Expression, types: list[int]) -> list[Callable]:
    out = []
    for a, t in zip(node.expressions, types):
        c = cp.compile(a)
        if c.type == T.UNKNOWN or (t == T.TEXT and c.type not in T.STRINGS) or t in (T.INT4, T.INT8, T.BOOL):
            c = cp.coerce(c, t, explicit=t == T.TEXT)
        out.append(c.fn)
    return out


def fn(types: list[int], oid: int, strict: bool = True, nargs_min: int | None = None) -> Callable:
    """Handler for a function of fixed arguments: ``body(ctx, *values)``."""
    def deco(body: Callable[..., Any]) -> Handler:
        def h(cp: Compiler, node: exp.Expression) -> CExpr:
            n = len(node.expressions)
            if n > len(types) or n < (len(types) if nargs_min is None else nargs_min):
                raise errors.UndefinedFunction(f"function {node.name}() does not exist",
                                               hint="No function matches the given name and argument types.")
            fs = _args(cp, node, types)

            def run(r: Any, c: Any) -> Any:
                vals = [f(r, c) for f in fs]
                if strict and any(v is None for v in vals):
                    return None
                return body(c, *vals)

            return CExpr(run, oid)

        return h

    return deco


def _oid(v: Any) -> int:
    return int(v)


# -- reg* types ------------------------------------------------------------------------------
def regclass_of(ctx: Any, v: Any) -> RegOid:
    m = model_of(ctx)
    if isinstance(v, str) and not isinstance(v, RegOid) and not v.strip().isdigit():
        name = v.strip()
        name = name.split(".", 1)[1] if name.startswith(("public.", "pg_catalog.")) else name
        name = name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()
        oid = m.relation_by_name(name)
        if oid is None and name in oids.CATALOG_RELATIONS:
            oid = oids.CATALOG_RELATIONS[name]
        if oid is None:
            from engine import sysviews

            if sysviews.lookup(name) is None:
                raise errors.UndefinedTable(f'relation "{v}" does not exist')
            oid = 0x7F000000 + (hash(name) & 0xFFFF)
        return RegOid(name, oid)
    oid = int(v)
    rel = m.relation(oid)
    if rel is None:
        name = next((n for n, o in oids.CATALOG_RELATIONS.items() if o == oid), None)
        return RegOid(name or str(oid), oid)
    return RegOid(rel[0], oid)


_TYPES_BY_OID = {row[0]: row[1] for row in all_types()}


def regtype_of(ctx: Any, v: Any) -> RegOid:
    if isinstance(v, str) and not isinstance(v, RegOid) and not v.strip().isdigit():
        name = v.strip().lower()
        name = name.split(".", 1)[1] if name.startswith("pg_catalog.") else name
        oid = T._BY_NAME.get(name) or oid_of(name)
        if name.endswith("[]"):
            base = T._BY_NAME.get(name[:-2]) or oid_of(name[:-2])
            oid = next((r[7] for r in all_types() if r[0] == base), 0)
        if not oid:
            oid = _row_type(ctx, name)
            if oid:
                return RegOid(name, oid)
            raise errors.SqlError(f'type "{v}" does not exist', sqlstate="42704")
        return RegOid(format_type(oid, None) or name, oid)
    oid = int(v)
    if oid in _TYPES_BY_OID or oid in T.TYPE_NAMES:
        return RegOid(format_type(oid, None) or str(oid), oid)
    return RegOid(_row_type_name(ctx, oid) or str(oid), oid)


def _row_type(ctx: Any, name: str) -> int:
    """The composite type of a table or view (``name``) or its array type (``_name``, ``name[]``)."""
    from engine.pgcatalog.tables import row_array_type_oid, row_type_oid

    arr = name.endswith("[]") or name.startswith("_")
    base = name[:-2] if name.endswith("[]") else name[1:] if name.startswith("_") else name
    for n, is_arr in ((name, False), (base, arr)):
        td = ctx.catalog.get(n.strip('"'))
        if td is not None and td.kind in ("r", "v"):
            return row_array_type_oid(td.table_id) if is_arr else row_type_oid(td.table_id)
    return 0


def _row_type_name(ctx: Any, oid: int) -> str | None:
    from engine.pgcatalog.tables import row_array_type_oid, row_type_oid

    for td in ctx.catalog.tables.values():
        if td.kind in ("r", "v"):
            if row_type_oid(td.table_id) == oid:
                return td.name
            if row_array_type_oid(td.table_id) == oid:
                return td.name + "[]"
    return None


def regnamespace_of(ctx: Any, v: Any) -> RegOid:
    if isinstance(v, str) and not isinstance(v, RegOid) and not v.strip().isdigit():
        for oid, name, _ in NAMESPACES:
            if name == v:
                return RegOid(name, oid)
        raise errors.SqlError(f'schema "{v}" does not exist', sqlstate="3F000")
    oid = int(v)
    return RegOid(next((n for o, n, _ in NAMESPACES if o == oid), str(oid)), oid)


def regproc_of(ctx: Any, v: Any) -> RegOid:
    if isinstance(v, str) and not isinstance(v, RegOid) and not v.strip().isdigit():
        name = v.strip()
        name = name[len("pg_catalog."):] if name.startswith("pg_catalog.") else name
        return RegOid(name, 0 if name == "-" else proc_oid(name))
    return RegOid(str(int(v)) if int(v) else "-", int(v))


def proc_oid(name: str) -> int:
    import zlib

    return 0x30000000 + (zlib.crc32(name.encode()) & 0xFFFFFF)


def _reg(conv: Callable[[Any, Any], RegOid], oid: int) -> Handler:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        a = cp.compile(node.expressions[0])
        f = a.fn
        return CExpr(lambda r, c: None if (v := f(r, c)) is None else conv(c, v), oid)

    return h


def _to_reg(conv: Callable[[Any, Any], RegOid], oid: int) -> Handler:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        f = _args(cp, node, [T.TEXT])[0]

        def run(r: Any, c: Any) -> Any:
            v = f(r, c)
            if v is None:
                return None
            try:
                return conv(c, v)
            except errors.SqlError:
                return None

        return CExpr(run, oid)

    return h


# -- ARRAY(subquery), ARRAY[...], regex operators ----------------------------------------------
def _array(cp: Compiler, node: exp.Expression) -> CExpr:
    items = node.expressions
    if len(items) == 1 and isinstance(items[0], (exp.Select, exp.Union, exp.Subquery)):
        q = items[0]
        plan = cp.env.planner.plan_subquery(q.this if isinstance(q, exp.Subquery) else q, cp.scope)
        getrows = _subquery_rows(plan)
        return CExpr(lambda r, c: [row[0] for row in getrows(r, c)], T.TEXT)
    fs = [cp.compile(e).fn for e in items]
    return CExpr(lambda r, c: [f(r, c) for f in fs], T.TEXT)


def _regex(flags: int) -> Handler:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        a = cp.compile(node.this)
        a = cp.coerce(a, T.TEXT, explicit=True) if a.type not in T.STRINGS or a.type == T.UNKNOWN else a
        p = cp.compile(node.expression)
        p = cp.coerce(p, T.TEXT) if p.type == T.UNKNOWN else p
        fa, fp = a.fn, p.fn
        cache: dict[str, re.Pattern[str]] = {}

        def run(r: Any, c: Any) -> Any:
            v, pat = fa(r, c), fp(r, c)
            if v is None or pat is None:
                return None
            rx = cache.get(pat)
            if rx is None:
                try:
                    rx = cache[pat] = re.compile(pat, flags)
                except re.error as e:
                    raise errors.SqlError(f"invalid regular expression: {e}", sqlstate="2201B") from None
            return rx.search(str(v)) is not None

        return CExpr(run, T.BOOL)

    return h


# -- object descriptions and definitions -----------------------------------------------------------
@fn([T.OID, T.INT4], T.TEXT, strict=False, nargs_min=2)
def _format_type(c: Any, oid: Any, typmod: Any) -> Any:
    return None if oid is None else format_type(int(oid), typmod)


@fn([T.OID, T.INT4, T.BOOL], T.TEXT, nargs_min=1)
def _pg_get_indexdef(c: Any, oid: Any, col: int = 0, pretty: bool = False) -> Any:
    ix = model_of(c).index_by_oid.get(int(oid))
    if ix is None:
        return None
    if col:
        return ix.table.columns[ix.cols[col - 1]].name if col <= len(ix.cols) else ""
    return indexdef(ix, pretty=True)


@fn([T.OID, T.BOOL], T.TEXT, nargs_min=1)
def _pg_get_constraintdef(c: Any, oid: Any, pretty: bool = False) -> Any:
    con = model_of(c).con_by_oid.get(int(oid))
    return None if con is None else constraintdef(con, bool(pretty))


@fn([T.TEXT, T.OID, T.BOOL], T.TEXT, nargs_min=2)
def _pg_get_expr(c: Any, text: Any, relid: Any, pretty: bool = False) -> Any:
    # pg_attrdef.adbin / pg_constraint.conbin hold the display text (ExprText: both styles)
    return text.pretty if pretty and isinstance(text, ExprText) else str(text)


@fn([T.OID, T.BOOL], T.TEXT, nargs_min=1)
def _pg_get_viewdef(c: Any, oid: Any, pretty: Any = False) -> Any:
    """The view's query as PostgreSQL prints it (engine.pgcatalog.viewdef)."""
    from engine.pgcatalog.viewdef import viewdef

    td = c.catalog.by_id.get(int(oid))
    sql = getattr(td, "view_sql", None) if td is not None else None
    return None if sql is None else viewdef(sql, c.catalog, bool(pretty))


@fn([T.OID], T.NAME)
def _pg_get_userbyid(c: Any, oid: Any) -> Any:
    oid = int(oid)
    return next((n for o, n, _ in roles(c) if o == oid), f"unknown (OID={oid})")


@fn([T.INT4], T.NAME)
def _pg_encoding_to_char(c: Any, enc: Any) -> Any:
    return {0: "SQL_ASCII", 6: "UTF8", 8: "LATIN1"}.get(int(enc), "")


@fn([T.TEXT, T.TEXT], T.TEXT, nargs_min=2)
def _array_to_string(c: Any, arr: Any, sep: Any) -> Any:
    if not isinstance(arr, (list, tuple)):
        arr = [arr]
    return sep.join(T.to_text(v) for v in arr if v is not None)


@fn([], T.VOID)
def _pg_advisory_unlock_all(c: Any) -> Any:
    """No advisory locks can be taken here, so releasing them all is a no-op (asyncpg's pool reset)."""
    return None


@fn([T.TEXT], T.TEXT)
def _quote_ident(c: Any, s: Any) -> Any:
    return s if re.fullmatch(r"[a-z_][a-z0-9_$]*", s) else '"' + s.replace('"', '""') + '"'


@fn([T.TEXT, T.TEXT], T.TEXT)
def _pg_get_serial_sequence(c: Any, table: Any, col: Any) -> Any:
    name = f"{table.split('.')[-1]}_{col}_seq"
    td = c.catalog.get(name)
    return f"public.{name}" if td is not None and td.kind == "S" else None


@fn([T.INT8], T.TEXT)
def _pg_size_pretty(c: Any, n: Any) -> Any:
    n = int(n)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(n) < 10 * 1024 or unit == "TB":
            return f"{n} {unit}"
        n = (n + 512) // 1024
    return f"{n} PB"


def _const(v: Any, oid: int) -> Handler:
    return lambda cp, node: const(v, oid)


def _session(getter: Callable[[Any], Any], oid: int) -> Handler:
    return lambda cp, node: CExpr(lambda r, c: getter(c), oid)


def _true_any(cp: Compiler, node: exp.Expression) -> CExpr:
    fs = [cp.compile(a).fn for a in node.expressions]
    return CExpr(lambda r, c: True, T.BOOL)


def _null_text(cp: Compiler, node: exp.Expression) -> CExpr:
    for a in node.expressions:
        cp.compile(a)
    return const(None, T.TEXT)


def _empty_text(cp: Compiler, node: exp.Expression) -> CExpr:
    return const("", T.TEXT)


def _size(cp: Compiler, node: exp.Expression) -> CExpr:
    f = cp.compile(node.expressions[0]).fn
    return CExpr(lambda r, c: None if f(r, c) is None else 8192, T.INT8)


def _current_schemas(cp: Compiler, node: exp.Expression) -> CExpr:
    f = _args(cp, node, [T.BOOL])[0]
    return CExpr(lambda r, c: ["pg_catalog", "public"] if f(r, c) else ["public"], T.array_of(T.NAME))


def _same_oid(cp: Compiler, node: exp.Expression) -> CExpr:
    """pg_partition_ancestors(rel) without partitioning: the relation itself."""
    return cp.coerce(cp.compile(node.expressions[0]), T.OID)


def _comment(c: Any, oid: int, subid: int) -> str | None:
    """COMMENT ON text of a relation (subid 0) or of its column ``subid``, or of an index."""
    from engine.catalog import INDEX_COMMENT

    m = model_of(c)
    td = c.catalog.by_id.get(oid)
    if td is None:
        ix = m.index_by_oid.get(oid)
        if ix is None or subid:
            return None
        return (getattr(ix.table, "comments", None) or {}).get(INDEX_COMMENT + ix.name)
    comments = getattr(td, "comments", None) or {}
    if subid == 0:
        return comments.get("")
    return comments.get(td.columns[subid - 1].name) if 0 < subid <= len(td.columns) else None


@fn([T.OID, T.TEXT], T.TEXT, nargs_min=1)
def _obj_description(c: Any, oid: Any, catalog: str = "pg_class") -> Any:
    if catalog in ("pg_namespace", "pg_catalog.pg_namespace"):
        return NAMESPACE_COMMENTS.get(int(oid))
    return _comment(c, int(oid), 0) if catalog in ("pg_class", "pg_catalog.pg_class") else None


@fn([T.OID, T.TEXT], T.TEXT)
def _shobj_description(c: Any, oid: Any, catalog: str) -> Any:
    if catalog not in ("pg_database", "pg_catalog.pg_database"):
        return None
    from engine.pgcatalog.tables import database_oids

    return next((DATABASE_COMMENTS.get(n) for n, o in database_oids(c).items() if o == int(oid)), None)


@fn([T.TEXT], T.INT8)
def _pg_database_size(c: Any, name: Any) -> Any:
    """Databases share one volume here: report what an empty PostgreSQL 15 database takes."""
    if name not in c.catalog.databases and name != "template0":
        raise errors.SqlError(f'database "{name}" does not exist', sqlstate="3D000")
    return 7_700_000


@fn([T.OID, T.INT4], T.TEXT)
def _col_description(c: Any, oid: Any, attnum: Any) -> Any:
    return _comment(c, int(oid), int(attnum)) if int(attnum) > 0 else None


def _field(cp: Compiler, node: exp.Expression) -> CExpr:
    """``__field(record, 'name')``: what the rewrite makes of ``(record).name``."""
    from engine.srf import compile_field

    return compile_field(cp, node.expressions[0], node.expressions[1].name)


def _is_reader(c: Any) -> bool:
    return getattr(c.db, "role", "writer") != "writer"


HANDLERS: dict[str, Handler] = {
    "__regclass": _reg(regclass_of, T.REGCLASS), "__regtype": _reg(regtype_of, T.REGTYPE),
    "__regnamespace": _reg(regnamespace_of, T.REGNAMESPACE), "__regproc": _reg(regproc_of, T.REGPROC),
    "to_regclass": _to_reg(regclass_of, T.REGCLASS), "to_regtype": _to_reg(regtype_of, T.REGTYPE),
    "to_regnamespace": _to_reg(regnamespace_of, T.REGNAMESPACE),
    "Array": _array, "RegexpLike": _regex(0), "RegexpILike": _regex(re.I),
    "pg_advisory_unlock_all": _pg_advisory_unlock_all,
    "format_type": _format_type, "pg_get_indexdef": _pg_get_indexdef,
    "pg_get_constraintdef": _pg_get_constraintdef, "pg_get_expr": _pg_get_expr,
    "pg_get_viewdef": _pg_get_viewdef, "pg_get_userbyid": _pg_get_userbyid,
    "pg_encoding_to_char": _pg_encoding_to_char, "array_to_string": _array_to_string,
    "ArrayToString": lambda cp, node: _array_to_string(cp, exp.Anonymous(
        this="array_to_string", expressions=[node.this, node.expression])),
    "quote_ident": _quote_ident, "pg_get_serial_sequence": _pg_get_serial_sequence,
    "pg_size_pretty": _pg_size_pretty,
    "pg_table_is_visible": _true_any, "pg_type_is_visible": _true_any, "pg_function_is_visible": _true_any,
    "pg_collation_is_visible": _true_any, "pg_operator_is_visible": _true_any,
    "pg_opclass_is_visible": _true_any, "pg_conversion_is_visible": _true_any,
    "pg_relation_is_publishable": lambda cp, node: const(False, T.BOOL),
    "pg_is_other_temp_schema": lambda cp, node: const(False, T.BOOL),
    "pg_my_temp_schema": _const(0, T.OID),
    **privfuncs.HANDLERS,
    "obj_description": _obj_description, "col_description": _col_description,
    "shobj_description": _shobj_description, "pg_database_size": _pg_database_size,
    "pg_tablespace_size": _size, "pg_tablespace_location": _empty_text,
    "pg_get_function_result": _empty_text, "pg_get_function_arguments": _empty_text,
    "pg_get_function_identity_arguments": _empty_text, "pg_get_triggerdef": _null_text,
    "pg_get_statisticsobjdef_columns": _null_text, "pg_get_partkeydef": _null_text,
    "pg_relation_size": _size, "pg_total_relation_size": _size, "pg_table_size": _size,
    "pg_indexes_size": _size,
    "pg_partition_ancestors": _same_oid, "__field": _field,
    "current_schemas": _current_schemas,
    "CurrentSchemas": lambda cp, node: _current_schemas(cp, exp.Anonymous(
        this="current_schemas", expressions=[node.this] if node.this is not None else [exp.true()])),
    "pg_is_in_recovery": _session(_is_reader, T.BOOL),
    "pg_backend_pid": _session(lambda c: c.session.backend_pid, T.INT4),
    "pg_postmaster_start_time": _session(lambda c: c.now, T.TIMESTAMPTZ),
    "pg_conf_load_time": _session(lambda c: c.now, T.TIMESTAMPTZ),
}
