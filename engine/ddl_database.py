"""Database DDL: CREATE / ALTER / DROP DATABASE.

A database is a row of table 0 (``engine.catalog.DatabaseDef``); its relations are the
catalog rows that name it (``TableDef.database``).  The checks and their SQLSTATEs are
PostgreSQL 15's:

    CREATE DATABASE name [WITH] [OWNER [=] role] [TEMPLATE [=] db] [other options, accepted]
        CREATEDB or superuser (42501); name taken 42P04; owner 42704; template 3D000
    ALTER DATABASE name RENAME TO new | OWNER TO role | SET x = v | RESET x | RESET ALL
        owner or superuser (42501); renaming needs CREATEDB and no session on the database,
        the current one included (55006); SET defaults apply to the database's new sessions
    DROP DATABASE [IF EXISTS] name
        owner or superuser (42501); template 42809; the current database or one other
        sessions of this instance use 55006; the relations' rows go as DROP TABLE's do

None of them runs inside a transaction block (25001).  The ``postgres`` database keeps its
name and is never dropped here (0A000): its relations' catalog keys are the short form.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from sqlglot import exp

from engine import errors, roles
from engine.catalog import DEFAULT_DATABASE, DatabaseDef, database_key
from engine.ddl import CatalogWriter, drop_table_rows
from engine.ddl_roles import Cursor, changed_config, tokenize

Runner = Callable[[Any], tuple[str, list[str]]]
TEMPLATES = ("template0", "template1")
# CREATE DATABASE options accepted and not acted on (one storage volume, one encoding, C locale)
_IGNORED_OPTIONS = {"encoding", "locale", "lc_collate", "lc_ctype", "icu_locale", "locale_provider",
                    "collation_version", "tablespace", "allow_connections", "is_template", "strategy", "oid"}


def plan(node: exp.Expression) -> tuple[str, Runner] | None:
    """(verb, runner) for a database statement, None for anything else."""
    if isinstance(node, exp.Create) and str(node.args.get("kind") or "").upper() == "DATABASE":
        opts: dict[str, str] = {}
        props = node.args.get("properties")
        for p in props.expressions if props is not None else []:
            if isinstance(p, exp.Property):
                opts[p.name.lower()] = p.args["value"].name
        name = node.this.name
        return "CREATE DATABASE", lambda ctx: create(ctx, name, opts)
    if isinstance(node, exp.Drop) and str(node.args.get("kind") or "").upper() == "DATABASE":
        (t,) = node.args.get("tables") or node.expressions
        name, if_exists = t.name, bool(node.args.get("exists"))
        return "DROP DATABASE", lambda ctx: drop(ctx, name, if_exists)
    if not isinstance(node, exp.Command):
        return None
    rest = node.expression
    rest = rest.name if isinstance(rest, exp.Literal) else str(rest or "")
    words = rest.split(None, 1)
    if str(node.this).lower() not in ("create", "alter") or not words or words[0].lower() != "database":
        return None  # (before tokenizing: other commands' text may hold what tokenize refuses)
    toks = tokenize(f"{node.this} {rest}")
    if len(toks) < 3:
        return None
    c = Cursor(toks[2:])
    if toks[0].word == "create":
        name = c.name()
        opts = _options(c)
        return "CREATE DATABASE", lambda ctx: create(ctx, name, opts)
    name = c.name()
    return "ALTER DATABASE", lambda ctx: alter(ctx, name, c)


def _options(c: Cursor) -> dict[str, str]:
    """CREATE DATABASE's ``[WITH] option [=] value ...`` (``CONNECTION LIMIT`` is two words)."""
    c.accept("with")
    opts: dict[str, str] = {}
    while not c.done():
        key = "connection_limit" if c.accept("connection", "limit") else c.name()
        t = c.peek()
        if t is not None and t.kind == "op" and t.text == "=":
            c.i += 1
        t = c.peek()
        if t is None or t.kind == "op":
            c.fail()
        c.i += 1
        opts[key] = t.text  # type: ignore[union-attr]
    return opts


def _outside_block(ctx: Any, verb: str) -> None:
    if ctx.txn.explicit:
        raise errors.SqlError(f"{verb} cannot run inside a transaction block", sqlstate="25001")


def _role(ctx: Any, name: str) -> int:
    r = ctx.catalog.role(name)
    if r is None:
        raise errors.SqlError(f'role "{name}" does not exist', sqlstate="42704")
    return r.oid


def _must_exist(ctx: Any, name: str) -> DatabaseDef:
    cat = ctx.catalog
    if name not in cat.databases and name != "template0":
        raise errors.SqlError(f'database "{name}" does not exist', sqlstate="3D000")
    d = cat.database_def(name)
    if d is None:  # a row of before oids were kept: give it one now, owned by the superuser
        d = DatabaseDef(name, 0)
    return d


def _must_own(ctx: Any, d: DatabaseDef) -> Any:
    me = roles.current(ctx.session, ctx.catalog)
    if not (me.superuser or me.oid == d.owner):
        raise errors.SqlError(f"must be owner of database {d.name}", sqlstate="42501")
    return me


def _others_using(ctx: Any, name: str) -> None:
    others = sum(1 for s in list(ctx.db.sessions.values()) if s is not ctx.session and s.database == name)
    if others:
        raise errors.SqlError(
            f'database "{name}" is being accessed by other users', sqlstate="55006",
            detail=f"There {'is' if others == 1 else 'are'} {others} other session{'' if others == 1 else 's'} "
                   "using the database.")


def _put(cw: CatalogWriter, d: DatabaseDef) -> None:
    if d.oid == 0:
        d = dataclasses.replace(d, oid=cw.alloc_id())
    cw.write(database_key(d.name), d.to_row())


def create(ctx: Any, name: str, opts: dict[str, str]) -> tuple[str, list[str]]:
    _outside_block(ctx, "CREATE DATABASE")
    me = roles.current(ctx.session, ctx.catalog)
    if not (me.superuser or me.createdb):
        raise errors.SqlError("permission denied to create database", sqlstate="42501")
    cw = CatalogWriter(ctx)
    cat = cw.catalog
    if name in cat.databases or name == "template0":
        raise errors.SqlError(f'database "{name}" already exists', sqlstate="42P04")
    owner = me.oid
    for key, value in opts.items():
        if key == "owner":
            owner = me.oid if value == "default" else _role(ctx, value)
        elif key == "template":
            if value not in cat.databases and value != "template0":
                raise errors.SqlError(f'template database "{value}" does not exist', sqlstate="3D000")
        elif key not in _IGNORED_OPTIONS and key != "connection_limit":
            raise errors.SqlError(f'option "{key}" not recognized', sqlstate="42601")
    _put(cw, DatabaseDef(name, cw.alloc_id(), owner))
    cw.finish()
    return "CREATE DATABASE", []


def alter(ctx: Any, name: str, c: Cursor) -> tuple[str, list[str]]:
    d = _must_exist(ctx, name)
    me = _must_own(ctx, d)
    cw = CatalogWriter(ctx)
    if c.accept("rename", "to"):
        new = c.name()
        if not c.done():
            c.fail()
        _outside_block(ctx, "ALTER DATABASE")
        if not (me.superuser or me.createdb):
            raise errors.SqlError("permission denied to rename database", sqlstate="42501")
        if new in cw.catalog.databases or new == "template0":
            raise errors.SqlError(f'database "{new}" already exists', sqlstate="42P04")
        if name == ctx.session.database:
            raise errors.SqlError("current database cannot be renamed", sqlstate="55006")
        if name == DEFAULT_DATABASE:
            raise errors.FeatureNotSupported('the "postgres" database cannot be renamed')
        _others_using(ctx, name)
        cw.write(database_key(name), None)
        _put(cw, dataclasses.replace(d, name=new))
        for td in list(cw.catalog.by_db.get(name, {}).values()):  # the relations' rows move with it
            cw.drop(td)
            moved = dataclasses.replace(td, database=new, cache={})
            cw.write(moved.key, moved.to_row())
    elif c.accept("owner", "to"):
        who = c.name()
        if not c.done():
            c.fail()
        owner = me.oid if who in ("current_user", "current_role", "session_user") else _role(ctx, who)
        from engine import privileges  # the old owner's place in the ACL goes to the new one

        acl = privileges.new_owner([list(a) for a in d.acl], d.owner, owner) if d.acl is not None else None
        _put(cw, dataclasses.replace(d, owner=owner, acl=tuple(tuple(a) for a in acl) if acl is not None else None))
    else:
        config = changed_config(c, list(d.config or ()))
        _put(cw, dataclasses.replace(d, config=tuple(config) if config else None))
    cw.finish()
    return "ALTER DATABASE", []


def drop(ctx: Any, name: str, if_exists: bool) -> tuple[str, list[str]]:
    _outside_block(ctx, "DROP DATABASE")
    cw = CatalogWriter(ctx)
    cat = cw.catalog
    if if_exists and name not in cat.databases and name != "template0":
        cw.finish()
        return "DROP DATABASE", [f'database "{name}" does not exist, skipping']
    _must_own(ctx, _must_exist(ctx, name))
    if name in TEMPLATES:
        raise errors.SqlError("cannot drop a template database", sqlstate="42809")
    if name == ctx.session.database:
        raise errors.SqlError("cannot drop the currently open database", sqlstate="55006")
    if name == DEFAULT_DATABASE:
        raise errors.FeatureNotSupported('the "postgres" database cannot be dropped')
    _others_using(ctx, name)
    cw.write(database_key(name), None)
    for td in list(cat.by_db.get(name, {}).values()):
        cw.drop(td)
        if td.kind == "r":
            drop_table_rows(ctx, td)
    cw.finish()
    return "DROP DATABASE", []
