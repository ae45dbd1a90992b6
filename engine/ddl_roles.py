"""Role DDL: CREATE / ALTER / DROP ROLE (and USER, GROUP), GRANT / REVOKE role membership.

sqlglot hands these statements over as ``exp.Command``; ``plan(node)`` recognises them and
returns ``(verb, runner)`` for ``engine.stmtplan``, so they run like other DDL: inside the
session's transaction, through ``CatalogWriter`` (the catalog version row is locked and
bumped), logged by the writer and replayed by readers.  Roles are rows ``b"r:" + name`` of
table 0, memberships rows ``b"m:" + roleid + member``; passwords are stored as verifiers
(``engine.passwords``) following ``password_encryption``.

GRANT / REVOKE of privileges on objects and ALTER DEFAULT PRIVILEGES are recognised here
and carried out by ``engine.ddl_grants``.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
from typing import Any, Callable

from sqlglot import exp

from engine import errors, passwords, roles
from engine import types as T
from engine.catalog import CATALOG_TABLE, RoleDef, member_key, role_key

Runner = Callable[[Any], tuple[str, list, list[str]]]

_TOKEN = re.compile(r"""\s*(?:
      (?P<str>[eE]?'(?:[^']|'')*')
    | (?P<qid>"(?:[^"]|"")*")
    | (?P<num>-?\d+)
    | (?P<id>[A-Za-z_][\w$]*)
    | (?P<op>[,=;()\.])
    | (?P<bad>\S)
)""", re.X)

_RESERVED_SPECS = {"current_user": "CURRENT_USER", "current_role": "CURRENT_ROLE", "session_user": "SESSION_USER"}
_FLAGS = {"superuser": "superuser", "createdb": "createdb", "createrole": "createrole", "inherit": "inherit",
          "login": "canlogin", "replication": "replication", "bypassrls": "bypassrls"}


@dataclasses.dataclass
class Tok:
    kind: str  # id qid str num op
    text: str  # identifiers lower-cased unless quoted; strings unquoted

    @property
    def word(self) -> str:
        return self.text if self.kind == "id" else ""


def tokenize(text: str) -> list[Tok]:
    out: list[Tok] = []
    pos = 0
    text = text.rstrip().rstrip(";")
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            break
        pos = m.end()
        kind = m.lastgroup
        v = m.group(kind)  # type: ignore[arg-type]
        if kind == "str":
            body = v[2:-1] if v[0] in "eE" else v[1:-1]
            body = body.replace("''", "'")
            if v[0] in "eE":
                body = body.encode("latin-1", "backslashreplace").decode("unicode_escape")
            out.append(Tok("str", body))
        elif kind == "qid":
            out.append(Tok("qid", v[1:-1].replace('""', '"')))
        elif kind == "id":
            out.append(Tok("id", v.lower()))
        elif kind == "bad":
            raise errors.SyntaxErr(f'syntax error at or near "{v}"')
        else:
            out.append(Tok(kind, v))  # type: ignore[arg-type]
    return out


class Cursor:
    def __init__(self, toks: list[Tok]) -> None:
        self.toks = toks
        self.i = 0

    def peek(self, k: int = 0) -> Tok | None:
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else None

    def at(self, *words: str) -> bool:
        return all((t := self.peek(k)) is not None and t.word == w for k, w in enumerate(words))

    def accept(self, *words: str) -> bool:
        if self.at(*words):
            self.i += len(words)
            return True
        return False

    def expect(self, *words: str) -> None:
        if not self.accept(*words):
            self.fail()

    def fail(self) -> None:
        t = self.peek()
        if t is None:
            raise errors.SyntaxErr("syntax error at end of input")
        shown = t.text if t.kind != "str" else f"'{t.text}'"
        raise errors.SyntaxErr(f'syntax error at or near "{shown}"')

    def done(self) -> bool:
        return self.i >= len(self.toks)

    def name(self) -> str:
        """A role name (identifier or quoted identifier)."""
        t = self.peek()
        if t is None or t.kind not in ("id", "qid"):
            self.fail()
        self.i += 1
        return t.text  # type: ignore[union-attr]

    def string(self) -> str:
        t = self.peek()
        if t is None or t.kind != "str":
            self.fail()
        self.i += 1
        return t.text  # type: ignore[union-attr]

    def number(self) -> int:
        t = self.peek()
        if t is None or t.kind != "num":
            self.fail()
        self.i += 1
        return int(t.text)  # type: ignore[union-attr]

    def names(self) -> list[str]:
        out = [self.name()]
        while self.peek() is not None and self.peek().text == "," and self.peek().kind == "op":  # type: ignore[union-attr]
            self.i += 1
            out.append(self.name())
        return out


# -- recognising the statements ------------------------------------------------------------

def _command_text(node: exp.Command) -> str:
    rest = node.expression
    rest = rest.name if isinstance(rest, exp.Literal) else str(rest or "")
    return f"{node.this} {rest}"


def plan(node: exp.Expression) -> tuple[str, Runner, bool] | None:
    """(verb, runner, writes) for a role or privilege statement, None for anything else."""
    from engine import ddl_grants

    if isinstance(node, exp.Grant) or type(node).__name__ == "Revoke":
        toks = tokenize(node.sql("postgres"))
        head = toks[0].word
        return head.upper(), lambda ctx: ddl_grants.object_grant(ctx, head, toks), True
    if not isinstance(node, exp.Command):
        return None
    text = _command_text(node)
    words = text.split(None, 3)
    low = [w.lower() for w in words]
    if low[:3] == ["alter", "default", "privileges"]:
        toks = tokenize(text)
        return "ALTER DEFAULT PRIVILEGES", lambda ctx: ddl_grants.default_privileges(ctx, toks), True
    found = ddl_grants.plan_command(low, text)
    if found is not None:
        return found
    if len(words) < 2 or low[0] not in ("create", "alter", "drop", "grant", "revoke", "reset") or (
            low[0] not in ("grant", "revoke") and low[1] not in ("role", "user", "group", "session")):
        return None
    toks = tokenize(text)
    if len(toks) < 2:
        return None
    head, obj = toks[0].word, toks[1].word
    if head in ("create", "alter", "drop") and obj in ("role", "user", "group") and not (
            obj == "user" and len(toks) > 2 and toks[2].word == "mapping"):
        fn = {"create": _create, "alter": _alter, "drop": _drop}[head]
        return f"{head.upper()} ROLE", lambda ctx: fn(ctx, obj, Cursor(toks[2:])), True
    if head == "reset" and obj == "session" and len(toks) == 3 and toks[2].word == "authorization":
        def reset_auth(ctx: Any) -> tuple[str, list, list[str]]:
            roles.set_session_authorization(ctx.session, ctx.catalog, "default")
            return "RESET", [], []

        return "RESET", reset_auth, False
    if head in ("grant", "revoke"):
        if any(t.word == "on" for t in toks):  # privileges ON objects sqlglot could not read
            return head.upper(), lambda ctx: ddl_grants.object_grant(ctx, head, toks), True
        return head.upper(), lambda ctx: _grant_roles(ctx, head == "grant", Cursor(toks[1:])), True
    return None


# -- helpers ---------------------------------------------------------------------------------

def _writer(ctx: Any) -> Any:
    from engine.ddl import CatalogWriter  # late: ddl imports the planner stack

    return CatalogWriter(ctx)


def _me(ctx: Any) -> RoleDef:
    return roles.current(ctx.session, ctx.catalog)


def _denied(msg: str, detail: str | None = None) -> errors.SqlError:
    return errors.SqlError(msg, sqlstate="42501", detail=detail)


def _reserved_check(name: str) -> None:
    if name.startswith("pg_"):
        raise errors.SqlError(f'role name "{name}" is reserved', sqlstate="42939",
                              detail='Role names starting with "pg_" are reserved.')
    if name in ("public", "none"):
        raise errors.SqlError(f'role name "{name}" is reserved', sqlstate="42939")


def _role_spec(c: Cursor, ctx: Any) -> str:
    t = c.peek()
    if t is not None and t.kind == "id" and t.text in _RESERVED_SPECS:
        c.i += 1
        return ctx.session.session_user if t.text == "session_user" else ctx.session.user
    return c.name()


def _must_exist(ctx: Any, name: str) -> RoleDef:
    r = ctx.catalog.role(name)
    if r is None:
        raise errors.SqlError(f'role "{name}" does not exist', sqlstate="42704")
    return r


def _valid_until(ctx: Any, text: str) -> _dt.datetime:
    low = text.strip().lower()
    if low == "infinity":
        return _dt.datetime.max.replace(tzinfo=_dt.timezone.utc)
    if low == "-infinity":
        return _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)
    cast = T.caster(T.TEXT, T.TIMESTAMPTZ)
    try:
        v = cast(text) if cast is not None else None
    except errors.SqlError:
        v = None
    except (ValueError, TypeError):
        v = None
    if not isinstance(v, _dt.datetime):
        raise errors.SqlError(f'invalid input syntax for type timestamp with time zone: "{text}"', sqlstate="22007")
    return v if v.tzinfo else v.replace(tzinfo=_dt.timezone.utc)


@dataclasses.dataclass
class Options:
    flags: dict[str, bool] = dataclasses.field(default_factory=dict)
    password: str | None = None
    password_set: bool = False
    valid_until: str | None = None
    connlimit: int | None = None
    in_roles: list[str] = dataclasses.field(default_factory=list)
    members: list[str] = dataclasses.field(default_factory=list)
    admins: list[str] = dataclasses.field(default_factory=list)
    notices: list[str] = dataclasses.field(default_factory=list)
    seen: set[str] = dataclasses.field(default_factory=set)

    def once(self, key: str) -> None:
        if key in self.seen:
            raise errors.SqlError("conflicting or redundant options", sqlstate="42601")
        self.seen.add(key)


def _options(c: Cursor, create: bool) -> Options:
    o = Options()
    c.accept("with")
    while not c.done():
        t = c.peek()
        w = t.word if t is not None else ""
        neg = w.startswith("no") and w[2:] in _FLAGS
        if w in _FLAGS or neg:
            key = _FLAGS[w[2:] if neg else w]
            o.once(key)
            o.flags[key] = not neg
            c.i += 1
        elif c.accept("connection", "limit"):
            o.once("connlimit")
            o.connlimit = c.number()
            if o.connlimit < -1:
                raise errors.SqlError(f"invalid connection limit: {o.connlimit}", sqlstate="22023")
        elif c.accept("encrypted", "password") or c.accept("password"):
            o.once("password")
            o.password_set = True
            if c.accept("null"):
                o.password = None
            else:
                o.password = c.string()
        elif c.accept("unencrypted", "password"):
            raise errors.FeatureNotSupported("UNENCRYPTED PASSWORD is no longer supported",
                                             hint="Remove UNENCRYPTED to store the password in encrypted form instead.")
        elif c.accept("valid", "until"):
            o.once("validuntil")
            o.valid_until = c.string()
        elif create and (c.accept("in", "role") or c.accept("in", "group")):
            o.in_roles += c.names()
        elif create and (c.accept("role") or c.accept("user")):
            o.members += c.names()
        elif create and c.accept("admin"):
            o.admins += c.names()
        elif create and c.accept("sysid"):
            c.number()
            o.notices.append("SYSID can no longer be specified")
        else:
            c.fail()
    return o


def _stored_password(ctx: Any, o: Options, name: str) -> str | None:
    if not o.password_set or o.password is None:
        return None
    if o.password == "":
        o.notices.append("empty string is not a valid password, clearing password")
        return None
    method = ctx.session.gucs.get("password_encryption", "scram-sha-256")
    if method.lower() not in ("md5", "scram-sha-256"):
        method = "scram-sha-256"
    return passwords.encrypt(o.password, name, method)


def _put_role(ctx: Any, r: RoleDef) -> None:
    ctx.txn.lock(CATALOG_TABLE, role_key(r.name))
    ctx.txn.put(CATALOG_TABLE, role_key(r.name), r.to_row())


def _members_of(ctx: Any) -> list[tuple[int, int, int, bool]]:
    return list(ctx.catalog.members)


def _put_member(ctx: Any, roleid: int, member: int, grantor: int, admin: bool) -> None:
    k = member_key(roleid, member)
    ctx.txn.lock(CATALOG_TABLE, k)
    ctx.txn.put(CATALOG_TABLE, k, (roleid, member, grantor, admin))


def _del_member(ctx: Any, roleid: int, member: int) -> None:
    k = member_key(roleid, member)
    ctx.txn.lock(CATALOG_TABLE, k)
    ctx.txn.put(CATALOG_TABLE, k, None)


# -- CREATE ROLE -------------------------------------------------------------------------------

def _create(ctx: Any, obj: str, c: Cursor) -> tuple[str, list, list[str]]:
    t = c.peek()
    if t is not None and t.kind == "id" and t.text in _RESERVED_SPECS:
        raise errors.SqlError(f"{_RESERVED_SPECS[t.text]} cannot be used as a role name here", sqlstate="42939")
    name = c.name()
    o = _options(c, create=True)
    _reserved_check(name)
    me = _me(ctx)
    f = o.flags
    if f.get("superuser") and not me.superuser:
        raise _denied("must be superuser to create superusers")
    if f.get("replication") and not me.superuser:
        raise _denied("must be superuser to create replication users")
    if f.get("bypassrls") and not me.superuser:
        raise _denied("must be superuser to create bypassrls users")
    if not (me.superuser or me.createrole):
        raise _denied("permission denied to create role")
    cw = _writer(ctx)
    if cw.catalog.role(name) is not None:
        raise errors.DuplicateObject(f'role "{name}" already exists')
    oid = cw.alloc_id()
    r = RoleDef(oid, name, superuser=f.get("superuser", False), inherit=f.get("inherit", True),
                createrole=f.get("createrole", False), createdb=f.get("createdb", False),
                canlogin=f.get("canlogin", obj == "user"), replication=f.get("replication", False),
                bypassrls=f.get("bypassrls", False), connlimit=-1 if o.connlimit is None else o.connlimit,
                password=_stored_password(ctx, o, name),
                valid_until=_valid_until(ctx, o.valid_until) if o.valid_until is not None else None)
    _put_role(ctx, r)
    cw.finish()
    # memberships named in the CREATE: IN ROLE (new role joins), ROLE/USER (join the new role), ADMIN
    for rn in o.in_roles:
        _add_member(ctx, _must_exist(ctx, rn), r, admin=False, grantor=me)
    for mn in o.members:
        _add_member(ctx, r, _must_exist(ctx, mn), admin=False, grantor=me)
    for an in o.admins:
        _add_member(ctx, r, _must_exist(ctx, an), admin=True, grantor=me)
    if o.in_roles or o.members or o.admins:
        cw.finish()
    return "CREATE ROLE", [], o.notices


# -- ALTER ROLE --------------------------------------------------------------------------------

def _alter(ctx: Any, obj: str, c: Cursor) -> tuple[str, list, list[str]]:
    if obj == "group":
        return _alter_group(ctx, c)
    if c.accept("all"):
        return _alter_set(ctx, None, c)
    name = _role_spec(c, ctx)
    if c.accept("rename", "to"):
        return _rename(ctx, name, c.name())
    if c.at("set") or c.at("reset") or c.at("in", "database"):
        return _alter_set(ctx, name, c)
    o = _options(c, create=False)
    target = _must_exist(ctx, name)
    if target.oid < 16384 and target.name.startswith("pg_"):
        raise errors.SqlError(f'role name "{target.name}" is reserved', sqlstate="42939",
                              detail="Cannot alter reserved roles.")
    me = _me(ctx)
    f = o.flags
    if (target.superuser or "superuser" in f) and not me.superuser:
        raise _denied("must be superuser to alter superuser roles or change superuser attribute")
    if "replication" in f and not me.superuser:
        raise _denied("must be superuser to alter replication roles or change replication attribute")
    if "bypassrls" in f and not me.superuser:
        raise _denied("must be superuser to change bypassrls attribute")
    if not (me.superuser or me.createrole):
        own_password_only = target.oid == me.oid and not f and o.connlimit is None and o.valid_until is None
        if not (own_password_only and o.password_set):
            raise _denied("permission denied")
    if f.get("superuser") is False and target.oid == 10:
        raise _denied("permission denied: bootstrap user must be superuser")
    cw = _writer(ctx)
    changes: dict[str, Any] = dict(f)
    if o.connlimit is not None:
        changes["connlimit"] = o.connlimit
    if o.password_set:
        changes["password"] = _stored_password(ctx, o, target.name)
    if o.valid_until is not None:
        changes["valid_until"] = _valid_until(ctx, o.valid_until)
    _put_role(ctx, dataclasses.replace(target, stored=True, **changes))
    cw.finish()
    return "ALTER ROLE", [], o.notices


def changed_config(c: Cursor, config: list[str]) -> list[str]:
    """``config`` ("name=value" items) after ``SET x = v | SET x TO v | RESET x | RESET ALL``
    (ALTER ROLE and ALTER DATABASE)."""
    if c.accept("set"):
        param = c.name()
        while c.peek() is not None and c.peek().text == ".":  # type: ignore[union-attr]
            c.i += 1
            param += "." + c.name()
        t = c.peek()
        if t is not None and t.kind == "op" and t.text == "=":
            c.i += 1
        elif not c.accept("to") and not c.accept("from", "current"):
            c.fail()
        vals = []
        while not c.done():
            t = c.peek()
            if t.text != ",":  # type: ignore[union-attr]
                vals.append(t.text)  # type: ignore[union-attr]
            c.i += 1
        config = [x for x in config if x.split("=", 1)[0] != param]
        if vals and vals != ["default"]:
            config.append(f"{param}={', '.join(vals)}")
    elif c.accept("reset", "all"):
        config = []
    elif c.accept("reset"):
        param = c.name()
        config = [x for x in config if x.split("=", 1)[0] != param]
    else:
        c.fail()
    return config


def _alter_set(ctx: Any, name: str | None, c: Cursor) -> tuple[str, list, list[str]]:
    """ALTER ROLE name|ALL [IN DATABASE d] SET x = v | RESET x | RESET ALL: kept in rolconfig
    (applied at login by no one yet: per-role defaults are recorded, not applied)."""
    if c.accept("in", "database"):
        db = c.name()
        if db not in ctx.catalog.databases:
            raise errors.UndefinedDatabase(f'database "{db}" does not exist')
    me = _me(ctx)
    if name is None:
        if not me.superuser:
            raise _denied("permission denied")
        return "ALTER ROLE", [], []
    target = _must_exist(ctx, name)
    if not (me.superuser or (me.createrole and not target.superuser) or me.oid == target.oid):
        raise _denied("permission denied")
    config = changed_config(c, list(target.config or ()))
    cw = _writer(ctx)
    _put_role(ctx, dataclasses.replace(target, stored=True, config=tuple(config) if config else None))
    cw.finish()
    return "ALTER ROLE", [], []


def _rename(ctx: Any, old: str, new: str) -> tuple[str, list, list[str]]:
    target = _must_exist(ctx, old)
    s = ctx.session
    if target.name == s.session_user:
        raise errors.FeatureNotSupported("session user cannot be renamed")
    if target.name == s.user:
        raise errors.FeatureNotSupported("current user cannot be renamed")
    if target.oid < 16384 and target.name.startswith("pg_"):
        raise errors.SqlError(f'role name "{target.name}" is reserved', sqlstate="42939",
                              detail="Cannot rename reserved roles.")
    if ctx.catalog.role(new) is not None:
        raise errors.DuplicateObject(f'role "{new}" already exists')
    _reserved_check(new)
    me = _me(ctx)
    if target.superuser and not me.superuser:
        raise _denied("must be superuser to rename superusers")
    if not (me.superuser or me.createrole):
        raise _denied("permission denied to rename role")
    cw = _writer(ctx)
    notices = []
    pw = target.password
    if passwords.is_md5(pw):
        pw = None
        notices.append("MD5 password cleared because of role rename")
    ctx.txn.lock(CATALOG_TABLE, role_key(target.name))
    ctx.txn.put(CATALOG_TABLE, role_key(target.name), None)
    _put_role(ctx, dataclasses.replace(target, name=new, password=pw, stored=True))
    cw.finish()
    return "ALTER ROLE", [], notices


def _alter_group(ctx: Any, c: Cursor) -> tuple[str, list, list[str]]:
    """ALTER GROUP g ADD|DROP USER u [, ...] (= GRANT / REVOKE g TO u); RENAME TO."""
    group = _role_spec(c, ctx)
    if c.accept("rename", "to"):
        return _rename(ctx, group, c.name())
    add = c.accept("add", "user")
    if not add:
        c.expect("drop", "user")
    users = c.names()
    role = _must_exist(ctx, group)
    notices = _change_members(ctx, add, [role], [_must_exist(ctx, u) for u in users], admin=False, admin_only=False)
    return "ALTER ROLE", [], notices


# -- DROP ROLE ---------------------------------------------------------------------------------

def _drop(ctx: Any, obj: str, c: Cursor) -> tuple[str, list, list[str]]:
    if_exists = c.accept("if", "exists")
    names = c.names()
    if not c.done():
        c.fail()
    me = _me(ctx)
    if not (me.superuser or me.createrole):
        raise _denied("permission denied to drop role")
    cw = _writer(ctx)
    notices: list[str] = []
    s = ctx.session
    for name in names:
        r = ctx.catalog.role(name)
        if r is None:
            if if_exists:
                notices.append(f'role "{name}" does not exist, skipping')
                continue
            raise errors.SqlError(f'role "{name}" does not exist', sqlstate="42704")
        if r.name == s.user:
            raise errors.SqlError("current user cannot be dropped", sqlstate="55006")
        if r.name == s.session_user:
            raise errors.SqlError("session user cannot be dropped", sqlstate="55006")
        if r.oid < 16384:
            raise errors.SqlError(f"cannot drop role {r.name} because it is required by the database system",
                                  sqlstate="2BP01")
        if r.superuser and not me.superuser:
            raise _denied("must be superuser to drop superusers")
        from engine import privileges

        depends = privileges.role_dependents(ctx.catalog, r.oid)
        if depends:
            raise errors.SqlError(f'role "{r.name}" cannot be dropped because some objects depend on it',
                                  sqlstate="2BP01", detail="\n".join(depends))
        ctx.txn.lock(CATALOG_TABLE, role_key(r.name))
        ctx.txn.put(CATALOG_TABLE, role_key(r.name), None)
        for roleid, member, _g, _a in _members_of(ctx):
            if r.oid in (roleid, member):
                _del_member(ctx, roleid, member)
        cw.finish()
    return "DROP ROLE", [], notices


# -- GRANT / REVOKE role ------------------------------------------------------------------------

def _add_member(ctx: Any, role: RoleDef, member: RoleDef, admin: bool, grantor: RoleDef) -> list[str]:
    if role.oid == 6171:
        raise errors.SqlError('role "pg_database_owner" cannot have explicit members', sqlstate="0LP01")
    if member.oid == role.oid or member.oid in roles.memberships(ctx.catalog, role.oid):
        raise errors.SqlError(f'role "{role.name}" is a member of role "{member.name}"', sqlstate="0LP01")
    existing = next((m for m in ctx.catalog.members if m[0] == role.oid and m[1] == member.oid), None)
    if existing is not None and (existing[3] or not admin):
        return [f'role "{member.name}" is already a member of role "{role.name}"']
    _put_member(ctx, role.oid, member.oid, existing[2] if existing else grantor.oid, admin)
    return []


def _change_members(ctx: Any, grant: bool, granted: list[RoleDef], grantees: list[RoleDef], admin: bool,
                    admin_only: bool) -> list[str]:
    me = _me(ctx)
    for r in granted:
        if r.superuser and not me.superuser:
            raise _denied("must be superuser to alter superusers")
        if not (me.superuser or (me.createrole and not r.superuser) or roles.has_admin(ctx.catalog, me, r)):
            raise _denied(f'must have admin option on role "{r.name}"')
    cw = _writer(ctx)
    notices: list[str] = []
    for r in granted:
        for g in grantees:
            if grant:
                notices += _add_member(ctx, r, g, admin, me)
            else:
                existing = next((m for m in ctx.catalog.members if m[0] == r.oid and m[1] == g.oid), None)
                if existing is None:
                    notices.append(f'role "{g.name}" is not a member of role "{r.name}"')
                elif admin_only:
                    _put_member(ctx, r.oid, g.oid, existing[2], False)
                else:
                    _del_member(ctx, r.oid, g.oid)
            cw.finish()
    return notices


def _grant_roles(ctx: Any, grant: bool, c: Cursor) -> tuple[str, list, list[str]]:
    admin_only = not grant and c.accept("admin", "option", "for")
    granted = c.names()
    c.expect("to" if grant else "from")
    grantees = [_role_spec(c, ctx)]
    while c.peek() is not None and c.peek().text == ",":  # type: ignore[union-attr]
        c.i += 1
        grantees.append(_role_spec(c, ctx))
    admin = grant and c.accept("with", "admin", "option")
    if c.accept("granted", "by"):
        _must_exist(ctx, _role_spec(c, ctx))
    c.accept("cascade") or c.accept("restrict")
    if not c.done():
        c.fail()
    gr = [_must_exist(ctx, n) for n in granted]
    ge = [_must_exist(ctx, n) for n in grantees]
    notices = _change_members(ctx, grant, gr, ge, admin, admin_only)
    return ("GRANT ROLE" if grant else "REVOKE ROLE"), [], notices
