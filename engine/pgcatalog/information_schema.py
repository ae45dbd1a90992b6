"""information_schema views (schemata, tables, columns, table_constraints,
key_column_usage, referential_constraints, views, sequences, table_privileges,
role_table_grants) over the catalog model.  As in PostgreSQL, tables and columns list
the relations the current role has some privilege on (or whose owner it is a member of).

Names are schema-less in the planner's lookup, so a stored table of the same name wins.
"""

from __future__ import annotations

from typing import Any, Iterator

from engine import types as T
from engine.pgcatalog.model import model_of
from engine.pgcatalog.deparse import default_text
from engine.pgcatalog.render import format_type
from engine.pgcatalog.tables import NAMESPACES, Rows, _user, _viewdef, sequence_type

X, N, I4, B = T.TEXT, T.NAME, T.INT4, T.BOOL  # sql_identifier is name, character_data text
TABLES: dict[str, tuple[list[tuple[str, int]], Rows]] = {}


def view(name: str, cols: str, types: list[int]):
    names = cols.split()
    assert len(names) == len(types), name

    def deco(fn: Rows) -> Rows:
        TABLES[name] = (list(zip(names, types)), fn)
        return fn

    return deco


@view("schemata", "catalog_name schema_name schema_owner default_character_set_catalog "
      "default_character_set_schema default_character_set_name sql_path", [N, N, N, N, N, N, X])
def _schemata(ctx: Any) -> Iterator[tuple]:
    for _, name, owner in NAMESPACES:
        yield (ctx.session.database, name, _user(ctx) if owner == 10 else "pg_database_owner",
               None, None, None, None)


@view("tables", "table_catalog table_schema table_name table_type self_referencing_column_name "
      "reference_generation user_defined_type_catalog user_defined_type_schema user_defined_type_name "
      "is_insertable_into is_typed commit_action", [N, N, N, X, N, X, N, N, N, X, X, X])
def _tables(ctx: Any) -> Iterator[tuple]:
    for td in ctx.catalog.tables.values():
        if td.kind in ("r", "v") and _visible(ctx, td):
            yield (ctx.session.database, "public", td.name, "BASE TABLE" if td.kind == "r" else "VIEW",
                   None, None, None, None, None, "YES" if td.kind == "r" else "NO", "NO", None)


def _visible(ctx: Any, td: Any) -> bool:
    """Owner (through membership), or any privilege on the table or one of its columns."""
    from engine import privileges, roles

    cat = ctx.catalog
    me = roles.current(ctx.session, cat)
    if me.superuser or td.owner in privileges.privs_roles(cat, me.oid):
        return True
    return privileges.holds_on(cat, me, td, privileges.TABLE_ALL) or any(
        privileges.holds(cat, me, acl, "arwx") for acl in td.col_acls.values())


def _grants(ctx: Any, public_too: bool) -> Iterator[tuple]:
    """(grantor, grantee, table, privilege, grantable, with_hierarchy) of every table and
    view ACL item the current role is grantor or grantee of (directly or through the roles
    it has the privileges of), and, for table_privileges, those granted to PUBLIC."""
    from engine import privileges, roles

    cat = ctx.catalog
    me = roles.current(ctx.session, cat)
    mine = privileges.privs_roles(cat, me.oid) - {privileges.PUBLIC}
    everyone = me.superuser

    def name(oid: int) -> str:
        r = cat.role_by_oid.get(oid)
        return "PUBLIC" if oid == privileges.PUBLIC else (r.name if r is not None else str(oid))

    for td in sorted(cat.tables.values(), key=lambda t: t.table_id):
        if td.kind not in ("r", "v"):
            continue
        for grantee, grantor, privs, opts in privileges.table_acl(td):
            if not (everyone or grantor in mine or grantee in mine or (public_too and grantee == privileges.PUBLIC)):
                continue
            owner_like = grantee != privileges.PUBLIC and td.owner in privileges.privs_roles(cat, grantee)
            for p in privs:
                yield (name(grantor), name(grantee), td.name, privileges.LETTER_NAMES[p],
                       "YES" if p in opts or owner_like else "NO", "YES" if p == "r" else "NO")


_PRIV_COLS = ("grantor grantee table_catalog table_schema table_name privilege_type is_grantable "
              "with_hierarchy")


@view("table_privileges", _PRIV_COLS, [N, N, N, N, N, X, X, X])
def _table_privileges(ctx: Any) -> Iterator[tuple]:
    for grantor, grantee, table, priv, grantable, hier in _grants(ctx, True):
        yield (grantor, grantee, ctx.session.database, "public", table, priv, grantable, hier)


@view("role_table_grants", _PRIV_COLS, [N, N, N, N, N, X, X, X])
def _role_table_grants(ctx: Any) -> Iterator[tuple]:
    for grantor, grantee, table, priv, grantable, hier in _grants(ctx, False):
        yield (grantor, grantee, ctx.session.database, "public", table, priv, grantable, hier)


_DATA_TYPE = {T.BPCHAR: "character", T.VARCHAR: "character varying"}


@view("columns", "table_catalog table_schema table_name column_name ordinal_position column_default "
      "is_nullable data_type character_maximum_length character_octet_length numeric_precision "
      "numeric_precision_radix numeric_scale datetime_precision udt_catalog udt_schema udt_name "
      "is_identity identity_generation is_generated generation_expression is_updatable collation_name",
      [N, N, N, N, I4, X, X, X, I4, I4, I4, I4, I4, I4, N, N, N, X, X, X, X, X, N])
def _columns(ctx: Any) -> Iterator[tuple]:
    from engine.pgcatalog.types_data import all_types

    udt = {r[0]: r[1] for r in all_types()}
    for td in ctx.catalog.tables.values():
        if td.kind not in ("r", "v") or not _visible(ctx, td):
            continue
        for i, c in enumerate(td.columns):
            t, tm = c.type_oid, c.typmod
            charlen = tm - 4 if t in (T.VARCHAR, T.BPCHAR) and tm >= 4 else None
            prec = {T.INT2: 16, T.INT4: 32, T.INT8: 64, T.FLOAT4: 24, T.FLOAT8: 53}.get(t)
            scale = 0 if t in T.INTS else None
            radix = 2 if prec else None
            if t == T.NUMERIC:
                radix = 10
                if tm >= 4:
                    prec, scale = (tm - 4) >> 16, (tm - 4) & 0xFFFF
            dflt = str(default_text(td, c)) if c.default is not None and not c.identity else None
            yield (ctx.session.database, "public", td.name, c.name, i + 1, dflt, "NO" if c.not_null else "YES",
                   _DATA_TYPE.get(t, format_type(t, -1)), charlen, charlen * 4 if charlen else None, prec,
                   radix, scale, 6 if t in (T.TIMESTAMP, T.TIMESTAMPTZ, T.TIME) else None,
                   ctx.session.database, "pg_catalog", udt.get(t, str(t)), "YES" if c.identity else "NO",
                   {"a": "ALWAYS", "d": "BY DEFAULT"}.get(c.identity), "NEVER", None,
                   "YES", None)


_BITS = {T.INT2: 16, T.INT4: 32, T.INT8: 64}
_CONTYPE = {"p": "PRIMARY KEY", "u": "UNIQUE", "f": "FOREIGN KEY", "c": "CHECK"}


@view("table_constraints", "constraint_catalog constraint_schema constraint_name table_catalog table_schema "
      "table_name constraint_type is_deferrable initially_deferred enforced nulls_distinct",
      [N, N, N, N, N, N, X, X, X, X, X])
def _table_constraints(ctx: Any) -> Iterator[tuple]:
    db = ctx.session.database
    for c in model_of(ctx).constraints:
        yield (db, "public", c.name, db, "public", c.table.name, _CONTYPE[c.contype], "NO", "NO", "YES",
               "YES" if c.contype in ("p", "u") else None)


@view("key_column_usage", "constraint_catalog constraint_schema constraint_name table_catalog table_schema "
      "table_name column_name ordinal_position position_in_unique_constraint", [N, N, N, N, N, N, N, I4, I4])
def _key_column_usage(ctx: Any) -> Iterator[tuple]:
    db = ctx.session.database
    for c in model_of(ctx).constraints:
        if c.contype == "c":
            continue
        for k, pos in enumerate(c.cols):
            yield (db, "public", c.name, db, "public", c.table.name, c.table.columns[pos].name, k + 1,
                   k + 1 if c.contype == "f" else None)


@view("referential_constraints", "constraint_catalog constraint_schema constraint_name "
      "unique_constraint_catalog unique_constraint_schema unique_constraint_name match_option update_rule "
      "delete_rule", [N, N, N, N, N, N, X, X, X])
def _referential_constraints(ctx: Any) -> Iterator[tuple]:
    db = ctx.session.database
    for c in model_of(ctx).constraints:
        if c.contype == "f":
            ref = c.ref_table.pkey_name if c.ref_table is not None else None
            yield (db, "public", c.name, db, "public", ref, "NONE", "NO ACTION", "NO ACTION")


@view("views", "table_catalog table_schema table_name view_definition check_option is_updatable "
      "is_insertable_into", [N, N, N, X, X, X, X])
def _views(ctx: Any) -> Iterator[tuple]:
    for td in ctx.catalog.tables.values():
        if td.kind == "v":
            yield (ctx.session.database, "public", td.name, _viewdef(ctx, td), "NONE", "NO", "NO")


@view("sequences", "sequence_catalog sequence_schema sequence_name data_type numeric_precision "
      "start_value minimum_value maximum_value increment cycle_option", [N, N, N, X, I4, X, X, X, X, X])
def _sequences(ctx: Any) -> Iterator[tuple]:
    for td in ctx.catalog.tables.values():
        if td.kind == "S" and td.seq is not None:
            s = td.seq
            st = sequence_type(s)
            yield (ctx.session.database, "public", td.name, T.TYPE_NAMES[st], _BITS[st], str(s.start), str(s.min_value),
                   str(s.max_value), str(s.increment), "YES" if s.cycle else "NO")
