"""Row-level security: ALTER TABLE ... ROW LEVEL SECURITY, CREATE / DROP POLICY, and the
predicates policies add to statements, as PostgreSQL 15 applies them.

Policies are kept on the table's catalog row (``TableDef.rls``, ``TableDef.policies``).
Row security applies to a table whose RLS is enabled, for a role that is not a superuser,
has no BYPASSRLS and is not the owner (the owner too once FORCE is set).  Then:

- rows are visible (SELECT), updatable and deletable only where the USING expressions of
  the applicable permissive policies (any of them) and restrictive policies (all of them)
  hold -- no applicable permissive policy: no rows;
- a new row (INSERT, UPDATE) must pass the WITH CHECK expressions (a policy's USING when it
  has none) the same way, or the statement fails with 42501 "new row violates row-level
  security policy ..." ; a statement that also reads the table (WHERE, RETURNING) adds the
  SELECT policies, as PostgreSQL does.

A policy applies to a command when it is FOR ALL or FOR that command, and to a role when it
is TO PUBLIC or to a role whose privileges the current role has.  A plan that reads a table
with RLS enabled depends on the role it was made for and is not cached.
"""

from __future__ import annotations

import re
from typing import Any

import sqlglot
from sqlglot import exp

from engine import errors, privileges as P, roles
from engine.catalog import RoleDef, TableDef

Result = tuple[str, list, list[str]]
_CMDS = {"all": "*", "select": "r", "insert": "a", "update": "w", "delete": "d"}
CMD_NAMES = {"*": "ALL", "r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE"}


# -- who is subject to which policies --------------------------------------------------------

def applies(catalog: Any, role: RoleDef, td: TableDef) -> bool:
    """check_enable_rls(): is ``role`` subject to ``td``'s policies?"""
    if "e" not in td.rls or role.superuser or role.bypassrls:
        return False
    if "f" not in td.rls and td.owner in P.privs_roles(catalog, role.oid):
        return False
    return True


def _policies(catalog: Any, role: RoleDef, td: TableDef, cmd: str) -> list[list]:
    holders = P.privs_roles(catalog, role.oid)
    return [p for p in td.policies if p[2] in ("*", cmd) and any(r in holders for r in p[3])]


def _parse(sql: str) -> exp.Expression:
    return sqlglot.parse_one(sql, read="postgres")


def _combine(perm: list[exp.Expression], restr: list[exp.Expression]) -> exp.Expression:
    out: exp.Expression = exp.false() if not perm else exp.Paren(this=exp.or_(*[exp.Paren(this=e) for e in perm]))
    for r in restr:
        out = exp.and_(out, exp.Paren(this=r))
    return out


def using_qual(catalog: Any, role: RoleDef, td: TableDef, cmds: str) -> exp.Expression | None:
    """The filter rows of ``td`` get for commands ``cmds`` (letters; several: all must
    hold), or None when row security does not apply."""
    if not applies(catalog, role, td):
        return None
    parts = []
    for cmd in cmds:
        pols = _policies(catalog, role, td, cmd)
        perm = [_parse(p[4]) for p in pols if p[1] and p[4] is not None]
        restr = [_parse(p[4]) for p in pols if not p[1] and p[4] is not None]
        parts.append(_combine(perm, restr))
    return exp.and_(*parts) if len(parts) > 1 else parts[0]


def check_quals(catalog: Any, role: RoleDef, td: TableDef, cmd: str,
                with_select: bool) -> list[tuple[str | None, exp.Expression]] | None:
    """The checks a new row must pass, as (restrictive policy's name or None, predicate)."""
    if not applies(catalog, role, td):
        return None
    out: list[tuple[str | None, exp.Expression]] = []
    for c, force_using in [(cmd, False)] + ([("r", True)] if with_select else []):
        pols = _policies(catalog, role, td, c)

        def text(p: list) -> str | None:
            return p[4] if force_using or p[5] is None else p[5]

        perm = [_parse(t) for p in pols if p[1] and (t := text(p)) is not None]
        out.append((None, exp.false() if not perm else exp.or_(*[exp.Paren(this=e) for e in perm])))
        out += [(p[0], _parse(t)) for p in pols if not p[1] and (t := text(p)) is not None]
    return out


def qualify(e: exp.Expression, alias: str) -> exp.Expression:
    """The policy predicate's own column references tied to the target's alias (not those
    of subqueries inside it), for UPDATE ... FROM and DELETE ... USING."""
    e = e.copy()
    for col in list(e.find_all(exp.Column)):
        if col.table or col.find_ancestor(exp.Select) is not None:
            continue
        col.set("table", exp.to_identifier(alias))
    return e


# -- the statements -------------------------------------------------------------------------------

def plan_command(low: list[str], text: str) -> tuple[str, Any, bool] | None:
    """(verb, runner, writes) for the row-security statements sqlglot leaves as commands."""
    if len(low) >= 2 and low[1] == "policy" and low[0] == "create":
        return "CREATE POLICY", lambda ctx: _create_policy(ctx, text), True
    if len(low) >= 2 and low[1] == "policy" and low[0] == "drop":
        return "DROP POLICY", lambda ctx: _drop_policy(ctx, text), True
    if len(low) >= 2 and low[1] == "policy" and low[0] == "alter":
        return "ALTER POLICY", lambda ctx: _alter_policy(ctx, text), True
    m = re.fullmatch(r"\s*alter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?(\S+)\s+(enable|disable|force|no\s+force)"
                     r"\s+row\s+level\s+security\s*;?\s*", text, re.I | re.S)
    if m is not None:
        return "ALTER TABLE", lambda ctx: _set_rls(ctx, _name(m.group(1)), " ".join(m.group(2).lower().split())), True
    return None


def _refuse(msg: str) -> Any:
    def run(ctx: Any) -> Result:
        raise errors.FeatureNotSupported(msg)

    return run


def _name(text: str) -> str:
    text = text.split(".", 1)[1] if text.lower().startswith("public.") else text
    return text[1:-1].replace('""', '"') if text.startswith('"') else text.lower()


def _table(ctx: Any, name: str) -> TableDef:
    td = ctx.catalog.get(name)
    if td is None:
        raise errors.UndefinedTable(f'relation "{name}" does not exist')
    if td.kind != "r":
        raise errors.SqlError(f'"{name}" is not a table', sqlstate="42809")
    P.must_own(ctx, td)
    return td


def _write(ctx: Any, td: TableDef, **changes: Any) -> None:
    import dataclasses

    from engine.ddl import CatalogWriter

    cw = CatalogWriter(ctx)
    cw.put_table(dataclasses.replace(td, cache={}, **changes))
    cw.finish()


def _set_rls(ctx: Any, name: str, what: str) -> Result:
    td = _table(ctx, name)
    flags = set(td.rls)
    if what == "enable":
        flags.add("e")
    elif what == "disable":
        flags.discard("e")
    elif what == "force":
        flags.add("f")
    else:
        flags.discard("f")
    _write(ctx, td, rls="".join(sorted(flags)))
    return "ALTER TABLE", [], []


def _balanced(text: str, start: int) -> tuple[str, int]:
    """The text inside the parentheses opening at ``start`` (quotes respected), and the end."""
    depth, i, quote = 0, start, ""
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return text[start + 1:i], i + 1
        i += 1
    raise errors.SyntaxErr("syntax error at end of input")


_HEAD = re.compile(r"\s*create\s+policy\s+(\"(?:[^\"]|\"\")*\"|\w+)\s+on\s+(\S+)", re.I)


def _clauses(rest: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    """The clauses of CREATE / ALTER POLICY after the table: as, for, to, using, check."""
    out: dict[str, Any] = {}
    pos = 0
    while True:
        tail = rest[pos:]
        if not tail.strip():
            return out
        if "as" in allowed and (mm := re.match(r"\s*as\s+(permissive|restrictive)\b", tail, re.I)) is not None:
            out["as"] = mm.group(1).lower() == "permissive"
        elif "for" in allowed and (mm := re.match(r"\s*for\s+(all|select|insert|update|delete)\b", tail,
                                                  re.I)) is not None:
            out["for"] = _CMDS[mm.group(1).lower()]
        elif (mm := re.match(r"\s*to\s+((?:\"(?:[^\"]|\"\")*\"|\w+)(?:\s*,\s*(?:\"(?:[^\"]|\"\")*\"|\w+))*)", tail,
                             re.I)) is not None:
            out["to"] = [_name(r.strip()) for r in re.findall(r"\"(?:[^\"]|\"\")*\"|\w+", mm.group(1))]
        elif (mm := re.match(r"\s*using\s*(?=\()", tail, re.I)) is not None:
            out["using"], end = _balanced(tail, mm.end())
            pos += end
            continue
        elif (mm := re.match(r"\s*with\s+check\s*(?=\()", tail, re.I)) is not None:
            out["check"], end = _balanced(tail, mm.end())
            pos += end
            continue
        else:
            word = tail.split()[0]
            raise errors.SyntaxErr(f'syntax error at or near "{word}"')
        pos += mm.end()


def _role_oids(ctx: Any, names: list[str], notices: list[str]) -> list[int]:
    oids = []
    for rn in names:
        if rn == "public":
            oids.append(P.PUBLIC)
            continue
        if rn in ("current_user", "current_role", "session_user"):
            rn = ctx.session.session_user if rn == "session_user" else ctx.session.user
        r = ctx.catalog.role(rn)
        if r is None:
            raise errors.SqlError(f'role "{rn}" does not exist', sqlstate="42704")
        oids.append(r.oid)
    if P.PUBLIC in oids and len(oids) > 1:
        notices.append("ignoring specified roles other than PUBLIC")
        oids = [P.PUBLIC]
    return oids


def _create_policy(ctx: Any, text: str) -> Result:
    text = text.strip().rstrip(";")
    m = _HEAD.match(text)
    if m is None:
        raise errors.SyntaxErr("syntax error at or near \"POLICY\"")
    pname, tname = _name(m.group(1)), _name(m.group(2))
    c = _clauses(text[m.end():], ("as", "for"))
    cmd, using, check = c.get("for", "*"), c.get("using"), c.get("check")
    if cmd in ("r", "d") and check is not None:
        raise errors.SqlError("WITH CHECK cannot be applied to SELECT or DELETE", sqlstate="42601")
    if cmd == "a" and using is not None:
        raise errors.SqlError("only WITH CHECK expression allowed for INSERT", sqlstate="42601")
    notices: list[str] = []
    oids = _role_oids(ctx, c.get("to", ["public"]), notices)
    td = _table(ctx, tname)
    using_sql = _checked(ctx, td, using)
    check_sql = _checked(ctx, td, check)
    if any(p[0] == pname for p in td.policies):
        raise errors.SqlError(f'policy "{pname}" for table "{tname}" already exists', sqlstate="42710")
    _write(ctx, td, policies=[*td.policies, [pname, c.get("as", True), cmd, oids, using_sql, check_sql]])
    return "CREATE POLICY", [], notices


_ALTER_HEAD = re.compile(r"\s*alter\s+policy\s+(\"(?:[^\"]|\"\")*\"|\w+)\s+on\s+(\S+)", re.I)


def _alter_policy(ctx: Any, text: str) -> Result:
    """ALTER POLICY p ON t RENAME TO q | [TO roles] [USING (...)] [WITH CHECK (...)]."""
    text = text.strip().rstrip(";")
    m = _ALTER_HEAD.match(text)
    if m is None:
        raise errors.SyntaxErr("syntax error at or near \"POLICY\"")
    pname, tname = _name(m.group(1)), _name(m.group(2))
    rest = text[m.end():]
    rename = re.fullmatch(r"\s*rename\s+to\s+(\"(?:[^\"]|\"\")*\"|\w+)\s*", rest, re.I)
    if rename is not None:
        new = _name(rename.group(1))
        td = _table(ctx, tname)
        if any(p[0] == new for p in td.policies):
            raise errors.SqlError(f'policy "{new}" for table "{tname}" already exists', sqlstate="42710")
        if not any(p[0] == pname for p in td.policies):
            raise errors.SqlError(f'policy "{pname}" for table "{tname}" does not exist', sqlstate="42704")
        _write(ctx, td, policies=[[new, *p[1:]] if p[0] == pname else p for p in td.policies])
        return "ALTER POLICY", [], []
    c = _clauses(rest, ())
    notices: list[str] = []
    oids = _role_oids(ctx, c["to"], notices) if "to" in c else None
    td = _table(ctx, tname)
    using_sql = _checked(ctx, td, c.get("using"))
    check_sql = _checked(ctx, td, c.get("check"))
    old = next((p for p in td.policies if p[0] == pname), None)
    if old is None:
        raise errors.SqlError(f'policy "{pname}" for table "{tname}" does not exist', sqlstate="42704")
    if old[2] in ("r", "d") and check_sql is not None:
        raise errors.SqlError("only USING expression allowed for SELECT, DELETE", sqlstate="42601")
    if old[2] == "a" and using_sql is not None:
        raise errors.SqlError("only WITH CHECK expression allowed for INSERT", sqlstate="42601")
    changed = [old[0], old[1], old[2], oids if oids is not None else old[3],
               using_sql if "using" in c else old[4], check_sql if "check" in c else old[5]]
    _write(ctx, td, policies=[changed if p[0] == pname else p for p in td.policies])
    return "ALTER POLICY", [], notices


def _checked(ctx: Any, td: TableDef, text: str | None) -> str | None:
    """The predicate's SQL, once it compiles as a boolean over the table's columns."""
    if text is None:
        return None
    from engine.dml import _scope
    from engine.expr import Compiler
    from engine.planner import Planner

    node = sqlglot.parse_one(text, read="postgres")
    # compiled for its columns and types only: as a superuser, so no policy is expanded
    pl = Planner(ctx.catalog, [], RoleDef(0, "", superuser=True))
    Compiler(pl.env, _scope(td)).compile_bool(node)
    return node.sql("postgres")


def _drop_policy(ctx: Any, text: str) -> Result:
    m = re.fullmatch(r"\s*drop\s+policy\s+(if\s+exists\s+)?(\"(?:[^\"]|\"\")*\"|\w+)\s+on\s+(\S+?)"
                     r"(?:\s+(cascade|restrict))?\s*;?\s*", text, re.I | re.S)
    if m is None:
        raise errors.SyntaxErr("syntax error at or near \"POLICY\"")
    pname, tname = _name(m.group(2)), _name(m.group(3))
    td = ctx.catalog.get(tname)
    if td is None:
        raise errors.UndefinedTable(f'relation "{tname}" does not exist')
    if not P.owns(ctx.catalog, roles.current(ctx.session, ctx.catalog), td.owner):
        raise P.not_owner("relation", td.name)  # (PostgreSQL's word here)
    if not any(p[0] == pname for p in td.policies):
        if m.group(1):
            return "DROP POLICY", [], [f'policy "{pname}" for relation "{tname}" does not exist, skipping']
        raise errors.SqlError(f'policy "{pname}" for table "{tname}" does not exist', sqlstate="42704")
    _write(ctx, td, policies=[p for p in td.policies if p[0] != pname])
    return "DROP POLICY", [], []


def current_role(session: Any, catalog: Any) -> RoleDef:
    return roles.current(session, catalog)
