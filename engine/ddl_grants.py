"""GRANT / REVOKE privileges ON objects, and ALTER DEFAULT PRIVILEGES.

The statement is read with ``engine.ddl_roles``' tokenizer (sqlglot reads only some of its
forms) and changes ACLs stored in catalog rows (``engine.privileges`` holds the ACL rules):
``TableDef.acl`` / ``col_acls`` for tables, views and sequences, ``DatabaseDef.acl`` for
databases, schema rows for ``public``, default-ACL rows for ALTER DEFAULT PRIVILEGES.  As in
PostgreSQL the grantor recorded is the object's owner when the current role has the owner's
privileges (superusers included), otherwise the role whose grant options allow it.
Privileges on functions, types, languages and other object kinds are refused (0A000):
accepting a REVOKE that changes nothing would be a wrong answer.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from engine import errors, privileges as P, roles
from engine.catalog import database_key, default_acl_key, schema_key
from engine.ddl_roles import Cursor, Tok, _must_exist, _role_spec, _writer

Result = tuple[str, list, list[str]]


@dataclasses.dataclass
class Spec:
    grant: bool
    option_for: bool = False  # REVOKE GRANT OPTION FOR
    all_privs: bool = False
    privs: list[tuple[str, list[str]]] = dataclasses.field(default_factory=list)  # (letter, columns)
    all_cols: list[str] = dataclasses.field(default_factory=list)  # ALL (cols)
    grantees: list[int] = dataclasses.field(default_factory=list)
    with_option: bool = False
    cascade: bool = False


def _columns(c: Cursor) -> list[str]:
    if not (c.peek() is not None and c.peek().text == "(" and c.peek().kind == "op"):  # type: ignore[union-attr]
        return []
    c.i += 1
    cols = c.names()
    t = c.peek()
    if t is None or t.text != ")":
        c.fail()
    c.i += 1
    return cols


def _privileges(c: Cursor, s: Spec) -> None:
    if c.accept("all"):
        c.accept("privileges")
        s.all_privs = True
        s.all_cols = _columns(c)
        return
    while True:
        t = c.peek()
        word = t.word if t is not None else ""
        if word not in P.NAMES:
            if word in ("set", "alter", "maintain"):
                raise errors.FeatureNotSupported(f"privilege {word.upper()} is not supported")
            c.fail()
        c.i += 1
        s.privs.append((P.NAMES[word], _columns(c)))
        t = c.peek()
        if t is None or t.text != ",":
            return
        c.i += 1


def _grantees(ctx: Any, c: Cursor, s: Spec) -> None:
    while True:
        c.accept("group")
        t = c.peek()
        if t is not None and t.kind == "id" and t.text == "public":
            c.i += 1
            s.grantees.append(P.PUBLIC)
        else:
            s.grantees.append(_must_exist(ctx, _role_spec(c, ctx)).oid)
        t = c.peek()
        if t is None or t.text != ",":
            return
        c.i += 1


def _tail(ctx: Any, c: Cursor, s: Spec) -> None:
    if s.grant and c.accept("with", "grant", "option"):
        s.with_option = True
    if c.accept("granted", "by"):
        who = _must_exist(ctx, _role_spec(c, ctx))
        if who.oid != roles.current(ctx.session, ctx.catalog).oid:
            raise errors.FeatureNotSupported("grantor must be current user")
    if not s.grant:
        if c.accept("cascade"):
            s.cascade = True
        else:
            c.accept("restrict")
    if not c.done():
        c.fail()
    if s.with_option and P.PUBLIC in s.grantees:
        raise errors.SqlError("grant options can only be granted to roles", sqlstate="0LP01")


# -- GRANT / REVOKE ... ON objects --------------------------------------------------------------

def object_grant(ctx: Any, head: str, toks: list[Tok]) -> Result:
    c = Cursor(toks[1:])
    s = Spec(grant=head == "grant")
    if not s.grant and c.accept("grant", "option", "for"):
        s.option_for = True
    _privileges(c, s)
    c.expect("on")
    kind, names = _objects(c)
    c.expect("to" if s.grant else "from")
    _grantees(ctx, c, s)
    _tail(ctx, c, s)
    verb = "GRANT" if s.grant else "REVOKE"
    notices: list[str] = []
    if kind in ("table", "sequence", "all tables", "all sequences"):
        cw = _writer(ctx)
        for td in _relations(ctx, kind, names):
            if isinstance(td, str):
                _system_grant(ctx, td, s)
                continue
            notices += _grant_relation(ctx, cw, td, kind, s)
        cw.finish()
    elif kind == "database":
        cw = _writer(ctx)
        for name in names:
            notices += _grant_database(ctx, cw, name, s)
        cw.finish()
    elif kind == "schema":
        cw = _writer(ctx)
        for name in names:
            notices += _grant_schema(ctx, cw, name, s)
        cw.finish()
    else:
        raise errors.FeatureNotSupported(f"privileges on {kind} are not supported")
    return verb, [], notices


def _objects(c: Cursor) -> tuple[str, list[str]]:
    if c.accept("all"):
        t = c.peek()
        word = t.word if t is not None else ""
        if word in ("functions", "procedures", "routines"):
            raise errors.FeatureNotSupported(f"privileges on {word} are not supported")
        if word not in ("tables", "sequences"):
            c.fail()
        c.i += 1
        c.expect("in", "schema")
        return f"all {word}", c.names()
    for word in ("table", "sequence", "database", "schema"):
        if c.accept(word):
            return word, c.names()
    t = c.peek()
    word = t.word if t is not None else ""
    if word in ("function", "procedure", "routine", "language", "type", "domain", "tablespace", "foreign", "large",
                "parameter"):
        raise errors.FeatureNotSupported(f"privileges on {word}s are not supported")
    return "table", c.names()


def _relations(ctx: Any, kind: str, names: list[str]) -> list[Any]:
    cat = ctx.catalog
    if kind.startswith("all "):
        for n in names:
            if n != "public":
                raise errors.SqlError(f'schema "{n}" does not exist', sqlstate="3F000")
        want = ("S",) if kind == "all sequences" else ("r", "v")
        return sorted((td for td in cat.tables.values() if td.kind in want), key=lambda td: td.table_id)
    out = []
    for n in names:
        td = cat.get(n)
        if td is None and _system_relation(n):
            out.append(n)
            continue
        if td is None:
            raise errors.UndefinedTable(f'relation "{n}" does not exist')
        if kind == "sequence" and td.kind != "S":
            raise errors.SqlError(f'"{n}" is not a sequence', sqlstate="42809")
        out.append(td)
    return out


def _system_relation(name: str) -> bool:
    from engine import sysviews
    from engine.pgcatalog import oids

    return sysviews.lookup(name) is not None or name in oids.CATALOG_RELATIONS


def _system_grant(ctx: Any, name: str, s: Spec) -> None:
    """The system catalogs and views are readable by PUBLIC and keep no ACL of their own
    here: granting SELECT on one changes nothing and is accepted; anything else is refused."""
    me = roles.current(ctx.session, ctx.catalog)
    if not me.superuser:
        raise P.denied("table", name)
    if not s.grant or s.with_option or s.all_privs or any(p != "r" or cols for p, cols in s.privs):
        raise errors.FeatureNotSupported(f"changing the privileges of system catalog {name} is not supported")


def _best_grantor(ctx: Any, owner: int, acl: list[list]) -> tuple[int, set[str]]:
    """select_best_grantor(): the owner (with every grant option) for a role that has the
    owner's privileges, else the role (the current one first) holding the most grant options."""
    me = roles.current(ctx.session, ctx.catalog)
    cat = ctx.catalog
    if P.owns(cat, me, owner):
        return owner, set(P.ORDER)
    best, best_opts = me.oid, P.mask(acl, {me.oid, P.PUBLIC})[1]
    for oid in sorted(P.privs_roles(cat, me.oid) - {me.oid, P.PUBLIC}):
        opts = P.mask(acl, {oid, P.PUBLIC})[1]
        if len(opts) > len(best_opts):
            best, best_opts = oid, opts
    return best, best_opts


def _restrict(ctx: Any, s: Spec, wanted: str, avail: set[str], acl: list[list], all_of_kind: str,
              word: str, name: str) -> tuple[str, list[str]]:
    """restrict_and_check_grant(): the privileges the grantor may grant or revoke, with
    PostgreSQL's error when it holds nothing at all and its warnings when some are left out."""
    notices: list[str] = []
    if not avail:
        me = roles.current(ctx.session, ctx.catalog)
        got, opts = P.mask(acl, P.privs_roles(ctx.catalog, me.oid))
        if not (got | opts) & set(all_of_kind):
            raise P.denied(word, name)
    this = "".join(ch for ch in wanted if ch in avail)
    if s.grant:
        if not this:
            notices.append(f'no privileges were granted for "{name}"')
        elif not s.all_privs and this != wanted:
            notices.append(f'not all privileges were granted for "{name}"')
    else:
        if not this:
            notices.append(f'no privileges could be revoked for "{name}"')
        elif not s.all_privs and this != wanted:
            notices.append(f'not all privileges could be revoked for "{name}"')
    return this, notices


def _apply(acl: list[list], s: Spec, grantor: int, privs: str, word: str) -> list[list]:
    for g in s.grantees:
        if s.grant:
            acl = P.update(acl, g, grantor, privs, True, s.with_option)
        else:
            had = next((a for a in acl if a[0] == g and a[1] == grantor), None)
            if had is not None and set(had[3]) & set(privs) and P.dependent_grants(acl, g, privs):
                if not s.cascade:
                    raise errors.SqlError("dependent privileges exist", sqlstate="2BP01",
                                          hint="Use CASCADE to revoke them too.")
                acl = P.revoke_cascade(acl, g, "".join(ch for ch in privs if ch in had[3]))
            acl = P.update(acl, g, grantor, privs, False, s.option_for)
    return acl


def _grant_relation(ctx: Any, cw: Any, td: Any, kind: str, s: Spec) -> list[str]:
    word = P.kind_word(td)
    allowed = P.all_for(td.kind)
    notices: list[str] = []
    table_privs: list[str] = []
    col_privs: dict[str, set[str]] = {}
    for letter, cols in s.privs:
        if cols:
            if td.kind == "S":
                raise errors.SqlError(f'sequence "{td.name}" only supports USAGE, SELECT, and UPDATE privileges',
                                      sqlstate="0LP01")
            if letter not in "arwx":
                raise errors.SqlError(f"invalid privilege type {P.LETTER_NAMES[letter]} for column", sqlstate="0LP01")
            for col in cols:
                col_privs.setdefault(col, set()).add(letter)
        else:
            table_privs.append(letter)
    if s.all_privs:
        if s.all_cols:
            for col in s.all_cols:
                col_privs.setdefault(col, set()).update("arwx")
        else:
            table_privs = list(allowed)
    if td.kind == "S" and any(p not in allowed for p in table_privs):
        if kind == "sequence":
            bad = next(p for p in table_privs if p not in allowed)
            raise errors.SqlError(f"invalid privilege type {P.LETTER_NAMES[bad]} for sequence", sqlstate="0LP01")
        notices.append(f'sequence "{td.name}" only supports USAGE, SELECT, and UPDATE privileges')
        table_privs = [p for p in table_privs if p in allowed]
    elif td.kind != "S" and any(p not in allowed for p in table_privs):
        bad = next(p for p in table_privs if p not in allowed)
        raise errors.SqlError(f"invalid privilege type {P.LETTER_NAMES[bad]} for table", sqlstate="0LP01")
    for col in col_privs:
        if td.column_index(col) is None:
            raise errors.SqlError(f'column "{col}" of relation "{td.name}" does not exist', sqlstate="42703")
    acl = P.table_acl(td)
    grantor, avail = _best_grantor(ctx, td.owner, acl)
    new_acl = td.acl
    col_acls = dict(td.col_acls)
    if table_privs or not col_privs:
        wanted = "".join(ch for ch in P.ORDER if ch in table_privs)
        this, more = _restrict(ctx, s, wanted, avail, acl, allowed, word, td.name)
        notices += more
        new_acl = _apply(acl, s, grantor, this, word)
        if not s.grant:  # a table-level REVOKE takes the same privileges from every column
            for col, cacl in list(col_acls.items()):
                cacl = _apply(cacl, s, grantor, this, word)
                if cacl:
                    col_acls[col] = cacl
                else:
                    col_acls.pop(col)
    for col, letters in col_privs.items():
        wanted = "".join(ch for ch in P.ORDER if ch in letters)
        this, more = _restrict(ctx, s, wanted, avail, acl, allowed, word, td.name)
        notices += [n for n in more if n not in notices]
        cacl = _apply(col_acls.get(col, []), s, grantor, this, word)
        if cacl:
            col_acls[col] = cacl
        else:
            col_acls.pop(col, None)
    cw.put_table(dataclasses.replace(td, acl=new_acl, col_acls=col_acls, cache={}))
    return notices


def _letters(s: Spec, allowed: str, word: str) -> str:
    if s.all_privs:
        return allowed
    out = []
    for letter, cols in s.privs:
        if cols:
            raise errors.SqlError("column privileges are only valid for relations", sqlstate="0LP01")
        if letter not in allowed:
            raise errors.SqlError(f"invalid privilege type {P.LETTER_NAMES[letter]} for {word}", sqlstate="0LP01")
        out.append(letter)
    return "".join(ch for ch in P.ORDER if ch in out)


def _grant_database(ctx: Any, cw: Any, name: str, s: Spec) -> list[str]:
    from engine.ddl_database import _must_exist as db_must_exist

    d = db_must_exist(ctx, name)
    wanted = _letters(s, P.DATABASE_ALL, "database")
    owner, acl = P.database_acl(ctx.catalog, name) or (d.owner, P.default_acl("database", d.owner))
    grantor, avail = _best_grantor(ctx, owner, acl)
    this, notices = _restrict(ctx, s, wanted, avail, acl, P.DATABASE_ALL, "database", name)
    acl = _apply(acl, s, grantor, this, "database")
    if d.oid == 0:
        d = dataclasses.replace(d, oid=cw.alloc_id())
    cw.write(database_key(d.name), dataclasses.replace(d, acl=tuple(tuple(a) for a in acl)).to_row())
    return notices


def _grant_schema(ctx: Any, cw: Any, name: str, s: Spec) -> list[str]:
    if name in ("pg_catalog", "information_schema"):
        raise errors.FeatureNotSupported(f"privileges on schema {name} are not supported")
    if name != "public":
        raise errors.SqlError(f'schema "{name}" does not exist', sqlstate="3F000")
    wanted = _letters(s, P.SCHEMA_ALL, "schema")
    owner, acl = P.schema_acl(ctx.catalog, name)
    grantor, avail = _best_grantor(ctx, owner, acl)
    this, notices = _restrict(ctx, s, wanted, avail, acl, P.SCHEMA_ALL, "schema", name)
    acl = _apply(acl, s, grantor, this, "schema")
    if "U" not in P.mask(acl, {P.PUBLIC})[0] or not any("U" in a[2] for a in acl if a[0] == owner):
        # USAGE on public is not checked: taking it away would be accepted and ignored
        raise errors.FeatureNotSupported("revoking USAGE on schema public is not supported")
    db = ctx.catalog.database
    cw.write(schema_key(db, name), (db, name, owner, acl))
    return notices


# -- ALTER DEFAULT PRIVILEGES --------------------------------------------------------------------

def default_privileges(ctx: Any, toks: list[Tok]) -> Result:
    """ALTER DEFAULT PRIVILEGES [FOR ROLE r, ...] [IN SCHEMA public] GRANT|REVOKE ... ON
    TABLES|SEQUENCES TO|FROM ...: the ACL new relations of those roles start with."""
    c = Cursor(toks[3:])
    me = roles.current(ctx.session, ctx.catalog)
    targets = [me]
    schema = ""
    while True:
        if c.accept("for", "role") or c.accept("for", "user"):
            targets = []
            while True:
                targets.append(_must_exist(ctx, _role_spec(c, ctx)))
                t = c.peek()
                if t is None or t.text != ",":
                    break
                c.i += 1
        elif c.accept("in", "schema"):
            names = c.names()
            for n in names:
                if n != "public":
                    raise errors.SqlError(f'schema "{n}" does not exist', sqlstate="3F000")
            schema = "public"
        else:
            break
    head = c.peek().word if c.peek() is not None else ""  # type: ignore[union-attr]
    if head not in ("grant", "revoke"):
        c.fail()
    c.i += 1
    s = Spec(grant=head == "grant")
    if not s.grant and c.accept("grant", "option", "for"):
        s.option_for = True
    _privileges(c, s)
    c.expect("on")
    t = c.peek()
    what = t.word if t is not None else ""
    if what not in ("tables", "sequences"):
        if what in ("functions", "routines", "types", "schemas"):
            raise errors.FeatureNotSupported(f"default privileges on {what} are not supported")
        c.fail()
    c.i += 1
    c.expect("to" if s.grant else "from")
    _grantees(ctx, c, s)
    _tail(ctx, c, s)
    kind = "S" if what == "sequences" else "r"
    allowed = P.all_for(kind)
    wanted = _letters(s, allowed, "sequence" if kind == "S" else "table")
    cw = _writer(ctx)
    db = ctx.catalog.database
    for role in targets:
        if not roles.is_member(ctx.catalog, me, role):
            raise errors.SqlError(f'must be member of role "{role.name}"', sqlstate="42501")
        key = (role.oid, db, schema, kind)
        base = P.default_acl(kind, role.oid) if not schema else []
        acl = ctx.catalog.default_acls.get(key, base)
        acl = _apply(acl, s, role.oid, wanted, "table")
        row_key = default_acl_key(role.oid, db, schema, kind)
        if acl == base:
            cw.write(row_key, None)
        else:
            cw.write(row_key, (role.oid, db, schema, kind, acl))
    cw.finish()
    return "ALTER DEFAULT PRIVILEGES", [], []


# -- ALTER ... OWNER TO, and what is refused ------------------------------------------------------

def plan_command(low: list[str], text: str) -> tuple[str, Any, bool] | None:
    """(verb, runner, writes) for the privilege statements sqlglot leaves as commands."""
    from engine import rls
    from engine.ddl_roles import tokenize

    found = rls.plan_command(low, text)
    if found is not None:
        return found
    if len(low) >= 2 and low[0] in ("reassign", "drop") and low[1] == "owned":
        toks = tokenize(text)
        fn = reassign_owned if low[0] == "reassign" else drop_owned
        return f"{low[0].upper()} OWNED", lambda ctx: fn(ctx, Cursor(toks[2:])), True
    if len(low) < 3 or low[0] != "alter" or low[1] not in ("table", "sequence", "view"):
        return None
    try:
        toks = tokenize(text)
    except errors.SqlError:  # not one of ours (an operator in it)
        return None
    words = [t.word for t in toks]
    if words[-3:-1] == ["owner", "to"] or (len(words) > 2 and words[-2] == "to" and words[-3] == "owner"):
        return "ALTER " + low[1].upper(), lambda ctx: _alter_owner(ctx, low[1], toks), True
    if "row" in words and "level" in words and "security" in words:  # with other actions
        return "ALTER TABLE", _refuse("ROW LEVEL SECURITY with other ALTER TABLE actions is not supported"), False
    return None


def _refuse(msg: str) -> Any:
    def run(ctx: Any) -> Result:
        raise errors.FeatureNotSupported(msg)

    return run


def _alter_owner(ctx: Any, what: str, toks: list[Tok]) -> Result:
    c = Cursor(toks[2:])
    if_exists = c.accept("if", "exists")
    c.accept("only")
    name = c.name()
    c.expect("owner", "to")
    new = _must_exist(ctx, _role_spec(c, ctx))
    if not c.done():
        c.fail()
    verb = "ALTER " + what.upper()
    td = ctx.catalog.get(name)
    if td is None:
        if if_exists:
            return verb, [], [f'relation "{name}" does not exist, skipping']
        raise errors.UndefinedTable(f'relation "{name}" does not exist')
    if what == "sequence" and td.kind != "S":
        raise errors.SqlError(f'"{name}" is not a sequence', sqlstate="42809")
    if what == "view" and td.kind != "v":
        raise errors.SqlError(f'"{name}" is not a view', sqlstate="42809")
    if td.owner == new.oid:
        return verb, [], []
    me = roles.current(ctx.session, ctx.catalog)
    if not me.superuser:
        P.must_own(ctx, td)
        if not roles.is_member(ctx.catalog, me, new):
            raise errors.SqlError(f'must be member of role "{new.name}"', sqlstate="42501")
        if not P.holds(ctx.catalog, new, P.schema_acl(ctx.catalog)[1], "C"):
            raise P.denied("schema", "public")
    cw = _writer(ctx)
    for rel in [td] + [sd for s in td.owned_seqs if (sd := ctx.catalog.get(s)) is not None]:
        col_acls = {col: P.new_owner(acl, rel.owner, new.oid) for col, acl in rel.col_acls.items()}
        acl = P.new_owner(rel.acl, rel.owner, new.oid) if rel.acl is not None else None
        cw.put_table(dataclasses.replace(rel, owner=new.oid, acl=acl, col_acls=col_acls, cache={}))
    cw.finish()
    return verb, [], []


# -- REASSIGN OWNED / DROP OWNED -------------------------------------------------------------------

def _owned_roles(ctx: Any, c: Cursor) -> list[Any]:
    c.expect("by")
    out = [_must_exist(ctx, _role_spec(c, ctx))]
    while c.peek() is not None and c.peek().text == ",":  # type: ignore[union-attr]
        c.i += 1
        out.append(_must_exist(ctx, _role_spec(c, ctx)))
    return out


def reassign_owned(ctx: Any, c: Cursor) -> Result:
    """REASSIGN OWNED BY old [, ...] TO new: the relations of the current database and the
    databases the old roles own pass to the new one (their ACLs keep their other items)."""
    olds = _owned_roles(ctx, c)
    c.expect("to")
    new = _must_exist(ctx, _role_spec(c, ctx))
    if not c.done():
        c.fail()
    cat = ctx.catalog
    me = roles.current(ctx.session, cat)
    for r in olds:
        if not P.owns(cat, me, r.oid):
            raise errors.SqlError("permission denied to reassign objects", sqlstate="42501")
    if not roles.is_member(cat, me, new):
        raise errors.SqlError(f'must be member of role "{new.name}"', sqlstate="42501")
    old_oids = {r.oid for r in olds}
    cw = _writer(ctx)
    for name in sorted(cat.db_defs):
        d = cat.db_defs[name]
        if d.owner in old_oids:
            acl = P.new_owner([list(a) for a in d.acl], d.owner, new.oid) if d.acl is not None else None
            cw.write(database_key(name), dataclasses.replace(
                d, owner=new.oid, acl=tuple(tuple(a) for a in acl) if acl is not None else None).to_row())
    for td in sorted(cat.tables.values(), key=lambda t: t.table_id):
        if td.owner in old_oids:
            acl = P.new_owner(td.acl, td.owner, new.oid) if td.acl is not None else None
            col_acls = {col: P.new_owner(a, td.owner, new.oid) for col, a in td.col_acls.items()}
            cw.put_table(dataclasses.replace(td, owner=new.oid, acl=acl, col_acls=col_acls, cache={}))
    cw.finish()
    return "REASSIGN OWNED", [], []


def drop_owned(ctx: Any, c: Cursor) -> Result:
    """DROP OWNED BY r [, ...] [CASCADE | RESTRICT]: the roles' relations in the current
    database dropped, their privileges there and on databases revoked (with what they
    granted on), their default privileges and their places in policies removed."""
    from engine.ddl import drop_table_rows

    victims = _owned_roles(ctx, c)
    c.accept("cascade") or c.accept("restrict")
    if not c.done():
        c.fail()
    cat = ctx.catalog
    me = roles.current(ctx.session, cat)
    for r in victims:
        if not P.owns(cat, me, r.oid):
            raise errors.SqlError("permission denied to drop objects", sqlstate="42501")
    gone = {r.oid for r in victims}

    def without(acl: list[list]) -> list[list]:
        for oid in gone:
            acl = P.revoke_cascade(acl, oid, P.ORDER)
        return [a for a in acl if a[0] not in gone]

    cw = _writer(ctx)
    dropped: set[str] = set()
    for td in sorted(cat.tables.values(), key=lambda t: t.table_id):
        if td.owner in gone and td.name not in dropped:
            cw.drop(td)
            dropped.add(td.name)
            if td.kind == "r":
                drop_table_rows(ctx, td)
                for s in td.owned_seqs:
                    sd = cat.get(s)
                    if sd is not None and sd.name not in dropped:
                        cw.drop(sd)
                        dropped.add(sd.name)
    for td in sorted(cat.tables.values(), key=lambda t: t.table_id):
        if td.name in dropped:
            continue
        acl = without(td.acl) if td.acl is not None else None
        col_acls = {col: a2 for col, a in td.col_acls.items() if (a2 := without(a))}
        policies = []
        for p in td.policies:
            targets = [r for r in p[3] if r not in gone]
            if targets:
                policies.append([*p[:3], targets, *p[4:]])
        if acl != td.acl or col_acls != td.col_acls or policies != td.policies:
            cw.put_table(dataclasses.replace(td, acl=acl, col_acls=col_acls, policies=policies, cache={}))
    for name in sorted(cat.db_defs):
        d = cat.db_defs[name]
        if d.acl is not None:
            acl = without([list(a) for a in d.acl])
            if acl != [list(a) for a in d.acl]:
                cw.write(database_key(name), dataclasses.replace(d, acl=tuple(tuple(a) for a in acl)).to_row())
    schema = cat.schemas.get((cat.database, "public"))
    if schema is not None and without(schema[1]) != schema[1]:
        cw.write(schema_key(cat.database, "public"), (cat.database, "public", schema[0], without(schema[1])))
    for (role, db, sch, objtype), acl in cat.default_acls.items():
        if db != cat.database:
            continue
        key = default_acl_key(role, db, sch, objtype)
        if role in gone:
            cw.write(key, None)
        elif without(acl) != acl:
            cw.write(key, (role, db, sch, objtype, without(acl)))
    cw.finish()
    return "DROP OWNED", [], []
