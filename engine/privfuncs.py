"""has_table_privilege and its siblings, and pg_has_role: access privilege inquiry
functions answering from the catalog's ACLs (``engine.privileges``) as PostgreSQL does.

Each takes an optional role first (name or oid; the current role without it), then the
object (name or oid), then a privilege list such as ``'SELECT, UPDATE WITH GRANT OPTION'``
(true if any of them is held).  The object owner holds every grant option; superusers hold
everything.  Functions are all built in and EXECUTE on them is PUBLIC's: has_function_privilege
is true for any role.
"""

from __future__ import annotations

from typing import Any, Callable

from sqlglot import exp

from engine import errors, privileges as P, roles
from engine import types as T
from engine.catalog import RoleDef, TableDef
from engine.expr import CExpr, Compiler

_TABLE = {"SELECT": "r", "INSERT": "a", "UPDATE": "w", "DELETE": "d", "TRUNCATE": "D", "REFERENCES": "x",
          "TRIGGER": "t"}
_COLUMN = {"SELECT": "r", "INSERT": "a", "UPDATE": "w", "REFERENCES": "x"}
_SEQUENCE = {"USAGE": "U", "SELECT": "r", "UPDATE": "w"}
_DATABASE = {"CREATE": "C", "CONNECT": "c", "TEMPORARY": "T", "TEMP": "T"}
_SCHEMA = {"CREATE": "C", "USAGE": "U"}
_FUNCTION = {"EXECUTE": "X"}
_ROLE = {"MEMBER": "m", "USAGE": "u"}


def _wanted(text: Any, names: dict[str, str]) -> list[tuple[str, bool]]:
    """[(letter, with grant option)] of a privilege list (22023 for an unknown one)."""
    out = []
    for part in str(text).split(","):
        words = part.split()
        opt = False
        if len(words) > 3 and [w.upper() for w in words[-3:]] in (["WITH", "GRANT", "OPTION"],
                                                                   ["WITH", "ADMIN", "OPTION"]):
            words, opt = words[:-3], True
        key = " ".join(words).upper()
        if key not in names:
            raise errors.SqlError(f'unrecognized privilege type: "{part.strip()}"', sqlstate="22023")
        out.append((names[key], opt))
    return out


def _role(c: Any, v: Any) -> RoleDef:
    cat = c.catalog
    if isinstance(v, int):
        r = cat.role_by_oid.get(v)
        if r is None:
            raise errors.SqlError(f"role with OID {v} does not exist", sqlstate="42704")
        return r
    name = str(v)
    if name == "public":
        return RoleDef(P.PUBLIC, "public")
    r = cat.role(name)
    if r is None:
        raise errors.SqlError(f'role "{name}" does not exist', sqlstate="42704")
    return r


def _relation(c: Any, v: Any) -> TableDef | str | None:
    """The relation (a system catalog's name for one of pg_catalog; None: no such oid)."""
    from engine import sysviews
    from engine.pgcatalog import oids

    cat = c.catalog
    if isinstance(v, int):
        td = cat.by_id.get(v)
        if td is not None:
            return td
        return next((n for n, o in oids.CATALOG_RELATIONS.items() if o == v), None)
    name = str(v).strip()
    for prefix in ("public.", "pg_catalog.", "information_schema."):
        if name.startswith(prefix):
            name = name[len(prefix):]
    name = name[1:-1].replace('""', '"') if name.startswith('"') else name.lower()
    td = cat.get(name)
    if td is not None:
        return td
    if sysviews.lookup(name) is not None or name in oids.CATALOG_RELATIONS:
        return name
    raise errors.UndefinedTable(f'relation "{v}" does not exist')


def _acl_check(c: Any, who: RoleDef, owner: int, acl: list[list], wanted: list[tuple[str, bool]]) -> bool:
    if who.superuser:
        return True
    holders = P.privs_roles(c.catalog, who.oid)
    got, opts = P.mask(acl, holders)
    owner_opts = owner in holders
    return any((owner_opts or p in opts) if opt else p in got for p, opt in wanted)


def _split(args: list[Any], n: int, c: Any) -> tuple[RoleDef, list[Any]]:
    if len(args) == n + 1:
        return _role(c, args[0]), args[1:]
    return roles.current(c.session, c.catalog), args


def _table(c: Any, args: list[Any]) -> Any:
    who, (rel, priv) = _split(args, 2, c)
    wanted = _wanted(priv, _TABLE)
    td = _relation(c, rel)
    if td is None:
        return None
    if isinstance(td, str):  # the system catalogs: SELECT for everyone
        return who.superuser or any(p == "r" and not opt for p, opt in wanted)
    return _acl_check(c, who, td.owner, P.table_acl(td), wanted)


def _column(c: Any, args: list[Any]) -> Any:
    who, (rel, col, priv) = _split(args, 3, c)
    wanted = _wanted(priv, _COLUMN)
    td = _relation(c, rel)
    if td is None:
        return None
    if isinstance(td, str):
        return who.superuser or any(p == "r" and not opt for p, opt in wanted)
    if isinstance(col, int):
        if not 1 <= col <= len(td.columns):
            return None
        name = td.columns[col - 1].name
    else:
        name = str(col)
        if td.column_index(name) is None:
            raise errors.UndefinedColumn(f'column "{name}" of relation "{td.name}" does not exist')
    return (_acl_check(c, who, td.owner, P.table_acl(td), wanted)
            or _acl_check(c, who, td.owner, td.col_acls.get(name, []), wanted))


def _any_column(c: Any, args: list[Any]) -> Any:
    who, (rel, priv) = _split(args, 2, c)
    wanted = _wanted(priv, _COLUMN)
    td = _relation(c, rel)
    if td is None:
        return None
    if isinstance(td, str):
        return who.superuser or any(p == "r" and not opt for p, opt in wanted)
    return _acl_check(c, who, td.owner, P.table_acl(td), wanted) or any(
        _acl_check(c, who, td.owner, acl, wanted) for acl in td.col_acls.values())


def _sequence(c: Any, args: list[Any]) -> Any:
    who, (rel, priv) = _split(args, 2, c)
    wanted = _wanted(priv, _SEQUENCE)
    td = _relation(c, rel)
    if td is None:
        return None
    if isinstance(td, str) or td.kind != "S":
        raise errors.SqlError(f'"{td if isinstance(td, str) else td.name}" is not a sequence', sqlstate="42809")
    return _acl_check(c, who, td.owner, P.table_acl(td), wanted)


def _database(c: Any, args: list[Any]) -> Any:
    who, (db, priv) = _split(args, 2, c)
    wanted = _wanted(priv, _DATABASE)
    cat = c.catalog
    if isinstance(db, int):
        from engine.pgcatalog.tables import database_oids

        name = next((n for n, o in database_oids(c).items() if o == db), None)
        if name is None:
            return None
    else:
        name = str(db)
    got = P.database_acl(cat, name)
    if got is None:
        raise errors.SqlError(f'database "{name}" does not exist', sqlstate="3D000")
    return _acl_check(c, who, got[0], got[1], wanted)


def _schema(c: Any, args: list[Any]) -> Any:
    from engine.pgcatalog import oids

    who, (schema, priv) = _split(args, 2, c)
    wanted = _wanted(priv, _SCHEMA)
    if isinstance(schema, int):
        names = {oids.PUBLIC: "public", oids.PG_CATALOG: "pg_catalog", oids.INFORMATION_SCHEMA: "information_schema"}
        if schema not in names:
            return None
        schema = names[schema]
    name = str(schema)
    if name not in ("public", "pg_catalog", "information_schema"):
        raise errors.SqlError(f'schema "{name}" does not exist', sqlstate="3F000")
    if name != "public":  # the built-in schemas: USAGE for PUBLIC, CREATE for their owner
        return who.superuser or any(p == "U" and not opt for p, opt in wanted)
    owner, acl = P.schema_acl(c.catalog, name)
    return _acl_check(c, who, owner, acl, wanted)


def _function(c: Any, args: list[Any]) -> Any:
    _who, (_fn, priv) = _split(args, 2, c)
    wanted = _wanted(priv, _FUNCTION)
    return bool(wanted) and (not any(opt for _p, opt in wanted) or _who.superuser)


def _has_role(c: Any, args: list[Any]) -> Any:
    who, (role, priv) = _split(args, 2, c)
    wanted = _wanted(priv, _ROLE)
    target = _role(c, role)
    cat = c.catalog
    for p, opt in wanted:
        if opt:
            if roles.has_admin(cat, who, target):
                return True
        elif p == "u":
            if who.superuser or target.oid in P.privs_roles(cat, who.oid):
                return True
        elif roles.is_member(cat, who, target):
            return True
    return False


def _handler(fn: Callable[[Any, list[Any]], Any], counts: tuple[int, ...]) -> Callable[[Compiler, exp.Expression], CExpr]:
    def build(cp: Compiler, node: exp.Expression) -> CExpr:
        args = list(node.expressions)
        if len(args) not in counts:
            raise errors.SqlError(f"function {node.name}({', '.join('unknown' for _ in args)}) does not exist",
                                  sqlstate="42883")
        fns = [cp.compile(a).fn for a in args]

        def run(r: Any, c: Any) -> Any:
            vals = [f(r, c) for f in fns]
            if any(v is None for v in vals):
                return None
            vals = [int(v) if not isinstance(v, str) and isinstance(v, (int, float)) else v for v in vals]
            return fn(c, vals)

        return CExpr(run, T.BOOL)

    return build


HANDLERS = {
    "has_table_privilege": _handler(_table, (2, 3)),
    "has_column_privilege": _handler(_column, (3, 4)),
    "has_any_column_privilege": _handler(_any_column, (2, 3)),
    "has_sequence_privilege": _handler(_sequence, (2, 3)),
    "has_database_privilege": _handler(_database, (2, 3)),
    "has_schema_privilege": _handler(_schema, (2, 3)),
    "has_function_privilege": _handler(_function, (2, 3)),
    "pg_has_role": _handler(_has_role, (2, 3)),
}
