"""SQL privileges: ACLs, who holds what, and the checks statements make.

An ACL is a list of items ``[grantee, grantor, privileges, grant_options]`` as PostgreSQL's
``aclitem``: grantee and grantor are role oids (grantee 0 is PUBLIC), privileges and grant
options are strings of aclitem letters (``r`` SELECT, ``a`` INSERT, ``w`` UPDATE, ``d`` DELETE,
``D`` TRUNCATE, ``x`` REFERENCES, ``t`` TRIGGER, ``X`` EXECUTE, ``U`` USAGE, ``C`` CREATE,
``T`` TEMPORARY, ``c`` CONNECT).  An object whose ACL was never changed stores None and
holds its kind's default (``default_acl``), exactly as ``relacl`` is NULL in PostgreSQL.

Checks follow PostgreSQL: superusers pass everything; a role holds the privileges granted
to it, to PUBLIC, and to the roles it inherits from (``rolinherit``); owners hold what the
ACL gives them (by default everything) and may always grant and revoke.  A statement's
plan lists the relation privileges it needs (``Need``); the session checks them for the
current role before the plan runs, so a cached plan is checked again under SET ROLE.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

from engine import errors
from engine.catalog import Catalog, RoleDef, TableDef

ORDER = "arwdDxtXUCTc"  # the order aclitem text lists privileges in
TABLE_ALL, SEQUENCE_ALL, DATABASE_ALL, FUNCTION_ALL, SCHEMA_ALL = "arwdDxt", "rwU", "CTc", "X", "UC"
PUBLIC = 0
PG_DATABASE_OWNER = 6171
# PostgreSQL 15's public schema: owned by pg_database_owner, USAGE for PUBLIC, CREATE not
PUBLIC_SCHEMA_ACL = [[PG_DATABASE_OWNER, PG_DATABASE_OWNER, SCHEMA_ALL, ""], [PUBLIC, PG_DATABASE_OWNER, "U", ""]]
NAMES = {"select": "r", "insert": "a", "update": "w", "delete": "d", "truncate": "D", "references": "x",
         "trigger": "t", "execute": "X", "usage": "U", "create": "C", "temporary": "T", "temp": "T",
         "connect": "c"}
LETTER_NAMES = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "D": "TRUNCATE", "x": "REFERENCES",
                "t": "TRIGGER", "X": "EXECUTE", "U": "USAGE", "C": "CREATE", "T": "TEMPORARY", "c": "CONNECT"}
KIND_WORDS = {"r": "table", "v": "view", "S": "sequence", "m": "materialized view"}


@dataclasses.dataclass(frozen=True)
class Need:
    """One privilege a statement needs on a relation: any of ``privs`` (letters), checked for
    the current role, or for ``as_role`` (a view's owner, for the relations the view reads)."""

    table_id: int
    privs: str
    as_role: int | None = None
    cols: tuple[str, ...] | None = None  # the columns used: column privileges may stand in for the table's


def all_for(kind: str) -> str:
    return SEQUENCE_ALL if kind == "S" else TABLE_ALL


def default_acl(kind: str, owner: int) -> list[list]:
    """acldefault(): what an object whose ACL is NULL grants."""
    if kind == "database":
        return [[PUBLIC, owner, "Tc", ""], [owner, owner, DATABASE_ALL, ""]]
    if kind == "function":
        return [[PUBLIC, owner, "X", ""], [owner, owner, "X", ""]]
    if kind == "schema":
        return [[owner, owner, SCHEMA_ALL, ""]]
    return [[owner, owner, all_for(kind), ""]]


def schema_acl(catalog: Catalog, schema: str = "public") -> tuple[int, list[list]]:
    """(owner, ACL) of a schema of the catalog's database."""
    got = catalog.schemas.get((catalog.database, schema))
    if got is not None:
        return got
    if schema == "public":
        return PG_DATABASE_OWNER, PUBLIC_SCHEMA_ACL
    return 10, default_acl("schema", 10)  # pg_catalog, information_schema: the bootstrap superuser's


def database_acl(catalog: Catalog, name: str) -> tuple[int, list[list]] | None:
    d = catalog.database_def(name)
    if d is None:
        return None
    return d.owner, [list(a) for a in d.acl] if d.acl is not None else default_acl("database", d.owner)


def creator(ctx: Any, temporary: bool = False) -> int:
    """The role that owns a relation created now: the current role, which needs CREATE on
    the schema (PostgreSQL 15 grants it to no one but the database owner by default), or
    for a temporary one TEMPORARY on the database (PUBLIC's by default)."""
    from engine import roles

    me = roles.current(ctx.session, ctx.catalog)
    if temporary:
        got = database_acl(ctx.catalog, ctx.catalog.database)
        if got is not None and not holds(ctx.catalog, me, got[1], "T"):
            raise errors.SqlError(f'permission denied to create temporary tables in database "{ctx.catalog.database}"',
                                  sqlstate="42501")
    elif not holds(ctx.catalog, me, schema_acl(ctx.catalog)[1], "C"):
        raise denied("schema", "public")
    return me.oid


def initial_acl(catalog: Catalog, kind: str, owner: int) -> list[list] | None:
    """A new object's ACL: NULL (the default) unless ALTER DEFAULT PRIVILEGES of its owner
    says otherwise -- the global entry replaces the default, the schema's entry adds to it."""
    objtype = "S" if kind == "S" else "r"
    glob = catalog.default_acls.get((owner, catalog.database, "", objtype))
    in_schema = catalog.default_acls.get((owner, catalog.database, "public", objtype))
    if glob is None and in_schema is None:
        return None
    acl = [list(a) for a in (glob if glob is not None else default_acl(kind, owner))]
    for a in in_schema or []:
        acl = update(acl, a[0], a[1], a[2], True, False)
        if a[3]:
            acl = update(acl, a[0], a[1], a[3], True, True)
    return acl


def table_acl(td: TableDef) -> list[list]:
    return td.acl if td.acl is not None else default_acl(td.kind, td.owner)


def _sorted(letters: Iterable[str]) -> str:
    got = set(letters)
    return "".join(ch for ch in ORDER if ch in got)


# -- who holds what ---------------------------------------------------------------------------

def privs_roles(catalog: Catalog, oid: int) -> set[int]:
    """The roles whose privileges ``oid`` uses: itself, PUBLIC, and the roles it is a member
    of through roles that inherit (has_privs_of_role)."""
    direct: dict[int, list[int]] = {}
    for roleid, member, _g, _a in catalog.members:
        direct.setdefault(member, []).append(roleid)
    seen = {oid, PUBLIC}
    todo = [oid]
    while todo:
        m = todo.pop()
        r = catalog.role_by_oid.get(m)
        if r is not None and not r.inherit:
            continue
        for g in direct.get(m, ()):
            if g not in seen:
                seen.add(g)
                todo.append(g)
    d = catalog.database_def(catalog.database)
    if d is not None and d.owner in seen:  # the database's owner is pg_database_owner there
        seen.add(PG_DATABASE_OWNER)
    return seen


def member_roles(catalog: Catalog, oid: int) -> set[int]:
    """Every role ``oid`` is a member of, inherited or not (is_member_of_role), itself included."""
    from engine import roles

    return roles.memberships(catalog, oid) | {oid}


def mask(acl: list[list], holders: set[int]) -> tuple[set[str], set[str]]:
    """(privileges, grant options) the ACL gives to any of ``holders``."""
    privs: set[str] = set()
    opts: set[str] = set()
    for grantee, _grantor, p, g in acl:
        if grantee in holders:
            privs.update(p)
            opts.update(g)
    return privs, opts


def owns(catalog: Catalog, role: RoleDef, owner: int) -> bool:
    """pg_class_ownercheck: the owner, a role that has its privileges, or a superuser."""
    return role.superuser or owner in privs_roles(catalog, role.oid)


def holds(catalog: Catalog, role: RoleDef, acl: list[list], privs: str) -> bool:
    """Does ``role`` hold any of ``privs`` under ``acl``?"""
    if role.superuser:
        return True
    got, _ = mask(acl, privs_roles(catalog, role.oid))
    return any(p in got for p in privs)


def holds_on(catalog: Catalog, role: RoleDef, td: TableDef, privs: str) -> bool:
    return holds(catalog, role, table_acl(td), privs)


def holds_columns(catalog: Catalog, role: RoleDef, td: TableDef, privs: str, cols: Iterable[str]) -> bool:
    """Column privileges in place of the table's: each column used (or, using none, any
    column) must grant one of ``privs``."""
    if not td.col_acls:
        return False
    holders = privs_roles(catalog, role.oid)

    def col_ok(name: str) -> bool:
        got, _ = mask(td.col_acls.get(name, []), holders)
        return any(p in got for p in privs)

    cols = list(cols)
    if not cols:
        return any(col_ok(c.name) for c in td.columns)
    return all(col_ok(c) for c in cols)


def kind_word(td: TableDef) -> str:
    return KIND_WORDS.get(td.kind, "relation")


def denied(word: str, name: str) -> errors.SqlError:
    return errors.SqlError(f"permission denied for {word} {name}", sqlstate="42501")


def not_owner(word: str, name: str) -> errors.SqlError:
    return errors.SqlError(f"must be owner of {word} {name}", sqlstate="42501")


def must_own(ctx: Any, td: TableDef) -> None:
    """ALTER / DROP / COMMENT ON a relation: its owner (or a member of it) only."""
    from engine import roles

    me = roles.current(ctx.session, ctx.catalog)
    if not owns(ctx.catalog, me, td.owner):
        raise not_owner(kind_word(td), td.name)


def require(ctx: Any, td: TableDef, privs: str) -> None:
    """The current role must hold one of ``privs`` on ``td`` (42501 otherwise)."""
    from engine import roles

    me = roles.current(ctx.session, ctx.catalog)
    if not holds_on(ctx.catalog, me, td, privs):
        raise denied(kind_word(td), td.name)


def check_needs(needs: Iterable[Need], session: Any, catalog: Catalog) -> None:
    """Before a plan runs: every relation privilege it needs, in the order it lists them."""
    from engine import roles

    me = roles.current(session, catalog)
    if me.superuser:
        return
    for n in needs:
        td = catalog.by_id.get(n.table_id)
        if td is None:
            continue
        who = me
        if n.as_role is not None:
            who = catalog.role_by_oid.get(n.as_role) or RoleDef(n.as_role, str(n.as_role))
        if not holds_on(catalog, who, td, n.privs) and not holds_columns(catalog, who, td, n.privs, n.cols or ()):
            raise denied(kind_word(td), td.name)


# -- changing an ACL ----------------------------------------------------------------------------

def update(acl: list[list], grantee: int, grantor: int, privs: str, grant: bool, grant_option: bool) -> list[list]:
    """aclupdate(): GRANT adds ``privs`` (and with ``grant_option`` their grant options) to
    the (grantee, grantor) item, appending it if new; REVOKE takes them away (only the
    grant options with ``grant_option``, i.e. REVOKE GRANT OPTION FOR); empty items go."""
    out = [list(a) for a in acl]
    item = next((a for a in out if a[0] == grantee and a[1] == grantor), None)
    if grant:
        if item is None:
            item = [grantee, grantor, "", ""]
            out.append(item)
        item[2] = _sorted(set(item[2]) | set(privs))
        if grant_option:
            item[3] = _sorted(set(item[3]) | set(privs))
    elif item is not None:
        if not grant_option:
            item[2] = _sorted(set(item[2]) - set(privs))
        item[3] = _sorted(set(item[3]) - set(privs))
    return [a for a in out if a[2]]


def new_owner(acl: list[list], old: int, new: int) -> list[list]:
    """aclnewowner(): the old owner's place in the ACL (as grantee and grantor) goes to the
    new owner; items that then coincide merge."""
    out: list[list] = []
    for grantee, grantor, privs, opts in acl:
        grantee = new if grantee == old else grantee
        grantor = new if grantor == old else grantor
        same = next((a for a in out if a[0] == grantee and a[1] == grantor), None)
        if same is None:
            out.append([grantee, grantor, privs, opts])
        else:
            same[2] = _sorted(set(same[2]) | set(privs))
            same[3] = _sorted(set(same[3]) | set(opts))
    return out


def dependent_grants(acl: list[list], grantee: int, privs: str) -> bool:
    """Would taking ``privs``' grant options from ``grantee`` orphan grants it made?"""
    return any(a[1] == grantee and a[0] != grantee and set(a[2]) & set(privs) for a in acl)


def revoke_cascade(acl: list[list], grantee: int, privs: str) -> list[list]:
    """Remove what ``grantee`` granted of ``privs`` (recursively), after its grant option went."""
    out = [list(a) for a in acl]
    todo = [grantee]
    seen: set[int] = set()
    while todo:
        g = todo.pop()
        if g in seen:
            continue
        seen.add(g)
        for a in out:
            if a[1] == g and a[0] != g and set(a[2]) & set(privs):
                a[2] = _sorted(set(a[2]) - set(privs))
                a[3] = _sorted(set(a[3]) - set(privs))
                todo.append(a[0])
    return [a for a in out if a[2]]


# -- showing an ACL -----------------------------------------------------------------------------

def _quote(name: str) -> str:
    """putid(): double-quote a role name unless it is all letters, digits and underscores."""
    if name and all(ch.isalnum() or ch == "_" for ch in name):
        return name
    return '"' + name.replace('"', '""') + '"'


def item_text(item: list, catalog: Catalog) -> str:
    grantee, grantor, privs, opts = item

    def who(oid: int) -> str:
        r = catalog.role_by_oid.get(oid)
        return _quote(r.name) if r is not None else str(oid)

    body = "".join(ch + ("*" if ch in opts else "") for ch in ORDER if ch in privs)
    return f"{'' if grantee == PUBLIC else who(grantee)}={body}/{who(grantor)}"


def acl_text(acl: list[list] | None, catalog: Catalog) -> list[str] | None:
    """The aclitem[] as text (relacl), None for a never-changed ACL."""
    if acl is None:
        return None
    return [item_text(a, catalog) for a in acl]


# -- what keeps a role from being dropped ----------------------------------------------------------

def _in_acl(acl: list[list] | None, oid: int) -> bool:
    return acl is not None and any(oid in (a[0], a[1]) for a in acl)


def role_dependents(catalog: Catalog, oid: int) -> list[str]:
    """DROP ROLE's list of what depends on a role, in PostgreSQL's words and order: the
    databases it owns or holds privileges on, then the objects of the current database
    (schema, relations and their columns, default privileges), then a count per other database."""
    out: list[str] = []
    for name in sorted(catalog.db_defs):
        d = catalog.db_defs[name]
        if d.owner == oid:
            out.append(f"owner of database {name}")
        elif _in_acl([list(a) for a in d.acl] if d.acl is not None else None, oid):
            out.append(f"privileges for database {name}")

    def local(db: str) -> list[str]:
        got: list[str] = []
        schema = catalog.schemas.get((db, "public"))
        if schema is not None and _in_acl(schema[1], oid):
            got.append("privileges for schema public")
        for td in sorted(catalog.by_db.get(db, {}).values(), key=lambda t: t.table_id):
            word = kind_word(td)
            if td.owner == oid:
                got.append(f"owner of {word} {td.name}")
            elif _in_acl(td.acl, oid):
                got.append(f"privileges for {word} {td.name}")
            for c in td.columns:
                if td.owner != oid and _in_acl(td.col_acls.get(c.name), oid):
                    got.append(f"privileges for column {c.name} of {word} {td.name}")
            for p in td.policies:
                if oid in p[3]:
                    got.append(f"target of policy {p[0]} on {word} {td.name}")
        for (role, d, schema_name, objtype), acl in catalog.default_acls.items():
            if d != db:
                continue
            what = "new sequences" if objtype == "S" else "new relations"
            owner_name = catalog.role_by_oid[role].name if role in catalog.role_by_oid else str(role)
            where = f" in schema {schema_name}" if schema_name else ""
            if role == oid:
                got.append(f"owner of default privileges on {what} belonging to role {owner_name}{where}")
            elif _in_acl(acl, oid):
                got.append(f"privileges for default privileges on {what} belonging to role {owner_name}{where}")
        return got

    out += local(catalog.database)
    for db in sorted(set(catalog.by_db) | {d for (_r, d, _s, _o) in catalog.default_acls}
                     | {d for (d, _s) in catalog.schemas}):
        if db == catalog.database:
            continue
        n = len(local(db))
        if n:
            out.append(f"{n} object{'s' if n > 1 else ''} in database {db}")
    return out
