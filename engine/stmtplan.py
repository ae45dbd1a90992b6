"""``StmtPlan``: what the session executes for one parsed SQL statement.

``build_plan`` dispatches on the sqlglot node: queries go to ``planner``, writes to
``dml``, schema changes to ``ddl``.  A StmtPlan records its row description, the inferred
parameter types, the stored tables to load, whether it writes (read-only checks),
whether it may be cached (DDL is not: it runs against the catalog of the moment) and
whether it may call pg_sleep (``sleeps``: the session then runs it in a greenlet).
"""

from __future__ import annotations

import dataclasses

from typing import Any, Callable

from sqlglot import exp

from engine import ddl, errors
from engine.api import Column
from engine.catalog import CATALOG_TABLE, SEQUENCE_TABLE
from engine.dml import DeletePlan, InsertPlan, UpdatePlan
from engine.executor import all_rows, scans_a_table
from engine.gcpause import gc_paused
from engine.interrupts import checked
from engine.planner import Planner
from engine.privileges import Need


def _needs(pl: Planner, node: exp.Expression, catalog: Any) -> tuple[Need, ...]:
    """The planner's privilege needs, each one's columns filled in: the columns the
    statement names (by name, so a name two tables share counts for both; ``*`` means all)."""
    if not pl.needs:
        return ()
    names: set[str] = set()
    star = False
    targets = {id(e.this) for e in node.expressions if isinstance(e, exp.EQ)} if isinstance(node, exp.Update) else set()
    for n in node.walk():
        if id(n) in targets:  # UPDATE's SET targets are written, not read
            continue
        if isinstance(n, exp.Star) and not isinstance(n.parent, exp.Count):
            star = True
        elif isinstance(n, exp.Column):
            if isinstance(n.this, exp.Star):
                star = True
            else:
                names.add(n.name)
    out = []
    for need in pl.needs:
        if need.cols is None:
            td = catalog.by_id.get(need.table_id)
            cols = tuple(c.name for c in td.columns if star or c.name in names) if td is not None else ()
            need = dataclasses.replace(need, cols=cols)
        out.append(need)
    return tuple(out)


class StmtPlan:
    __slots__ = ("columns", "param_types", "tables", "writes", "verb", "cacheable", "sleeps", "needs", "_run")

    def __init__(self, run: Callable[[Any], tuple[str, list, list[str]]], *, columns: list[Column] | None,
                 param_types: list[int], tables: list[int], writes: bool, verb: str, cacheable: bool = True,
                 sleeps: bool = False, needs: tuple[Need, ...] = ()) -> None:
        self._run = run
        self.columns = columns
        self.param_types = param_types
        self.tables = tables
        self.writes = writes
        self.verb = verb
        self.cacheable = cacheable
        self.sleeps = sleeps
        self.needs = needs  # relation privileges checked for the current role before each run

    def run(self, ctx: Any) -> tuple[str, list, list[str]]:
        return self._run(ctx)


def _query_runner(plan: Any, sleeps: bool = False) -> Callable[[Any], tuple[str, list, list[str]]]:
    # (both closures hold ``plan``: EXPLAIN finds the operator tree there)
    def run(ctx: Any) -> tuple[str, list, list[str]]:
        rows = all_rows(plan.root, ctx)  # every row is read: in batches (engine.executor)
        return f"SELECT {len(rows)}", rows, []

    if sleeps or not scans_a_table(plan.root):
        return run

    def run_bulk(ctx: Any) -> tuple[str, list, list[str]]:
        # A query that scans a table makes a tuple per row it passes on, millions for a
        # big table, and each burst of allocations set off collections that walk the
        # whole cache (a quarter of the writer's time in a count(*) over 1 M rows once its
        # heap had grown).  Reference counting frees those tuples all the same.  Not for
        # a query that may suspend in pg_sleep: the pause would outlast the statement.
        with gc_paused():
            rows = all_rows(plan.root, ctx)
        return f"SELECT {len(rows)}", rows, []

    return run_bulk


def _dml_runner(p: Any) -> Callable[[Any], tuple[str, list, list[str]]]:
    def run(ctx: Any) -> tuple[str, list, list[str]]:
        tag, rows = p.run(ctx)
        return tag, rows, []

    return run


def _ddl_runner(fn: Callable[[Any, Any], tuple[str, list[str]]], node: exp.Expression) -> Callable[[Any], Any]:
    def run(ctx: Any) -> tuple[str, list, list[str]]:
        tag, notices = fn(ctx, node)
        return tag, [], notices

    return run


def _rls_target(pl: Planner, node: exp.Expression, catalog: Any) -> tuple[exp.Expression, Any]:
    """An UPDATE / DELETE with its target's row-security filter added to the WHERE (as a
    copy), and the target's checks on new rows (INSERT, UPDATE) to compile; unchanged if
    row security does not apply."""
    from engine import rls
    from engine.dml import reads_target

    target = node.this.this if isinstance(node, exp.Insert) and isinstance(node.this, exp.Schema) else node.this
    td = catalog.get(target.name) if isinstance(target, exp.Table) else None
    if td is None or not td.rls:
        return node, None
    pl.rls_seen = True
    role = pl.rls_role()
    reads = isinstance(node, exp.Insert) and node.args.get("returning") is not None or (
        not isinstance(node, exp.Insert) and reads_target(node))
    cmd = "a" if isinstance(node, exp.Insert) else "w" if isinstance(node, exp.Update) else "d"
    conflict = node.args.get("conflict") if isinstance(node, exp.Insert) else None
    if conflict is not None and conflict.args.get("expressions") and rls.applies(catalog, role, td):
        raise errors.FeatureNotSupported(
            "INSERT ... ON CONFLICT DO UPDATE on a table with row-level security is not supported")
    checks = rls.check_quals(catalog, role, td, cmd, reads) if cmd != "d" else None
    if cmd != "a":
        qual = rls.using_qual(catalog, role, td, cmd + ("r" if reads else ""))
        if qual is not None:
            pl.dml_source = node
            node = node.copy()
            q = rls.qualify(qual, target.alias_or_name)
            where = node.args.get("where")
            node.set("where", exp.Where(this=exp.and_(exp.Paren(this=where.this), q) if where is not None else q))
    return node, (td, checks) if checks else None


def _compile_rls_checks(pl: Planner, p: Any, found: Any) -> None:
    from engine.dml import _scope
    from engine.expr import Compiler

    td, checks = found
    cp = Compiler(pl.env, _scope(td))
    p.writer.rls = [(name, cp.compile_bool(e).fn) for name, e in checks]


def build_plan(node: exp.Expression, catalog: Any, param_types: list[int], role: Any = None) -> StmtPlan:
    pl = Planner(catalog, param_types, role)
    base = [CATALOG_TABLE, SEQUENCE_TABLE]
    if isinstance(node, exp.Select) and node.args.get("into") is not None:
        from engine.ddl_query import select_into

        # (sleeps: the query is planned when the statement runs, so a pg_sleep in it is not known yet)
        return StmtPlan(_ddl_runner(select_into, node), columns=None, param_types=param_types,
                        tables=base + ddl.tables_of(node, catalog), writes=True, verb="SELECT INTO", cacheable=False,
                        sleeps=True)
    if isinstance(node, (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Subquery, exp.Values)):
        plan = pl.plan_query(node)
        locking = bool(node.args.get("locks"))
        if locking:  # FOR UPDATE / SHARE: UPDATE on the tables read directly, besides SELECT
            pl.needs += [dataclasses.replace(n, privs="w") for n in pl.needs if n.as_role is None]
        return StmtPlan(_query_runner(plan, pl.env.sleeps), columns=plan.columns, param_types=pl.env.param_types,
                        tables=sorted(pl.tables), writes=locking,
                        verb="SELECT FOR UPDATE" if locking else "SELECT", sleeps=pl.env.sleeps,
                        needs=_needs(pl, node, catalog), cacheable=not pl.rls_seen)
    original = node
    rls_checks = None
    if isinstance(node, (exp.Insert, exp.Update, exp.Delete)):
        node, rls_checks = _rls_target(pl, node, catalog)
        pl.push_with(node)
    if isinstance(node, exp.Insert):
        p: Any = InsertPlan(pl, node)
        verb = "INSERT"
    elif isinstance(node, exp.Update):
        p = UpdatePlan(pl, node)
        verb = "UPDATE"
    elif isinstance(node, exp.Delete):
        p = DeletePlan(pl, node)
        verb = "DELETE"
    else:
        p = None
        verb = ""
    if p is not None:
        if rls_checks is not None:
            _compile_rls_checks(pl, p, rls_checks)
        return StmtPlan(_dml_runner(p), columns=p.columns, param_types=pl.env.param_types,
                        tables=sorted(pl.tables), writes=True, verb=verb, sleeps=pl.env.sleeps,
                        needs=_needs(pl, original, catalog), cacheable=not pl.rls_seen)
    if isinstance(node, (exp.Create, exp.Drop, exp.Command)):
        from engine import ddl_database  # CREATE / ALTER / DROP DATABASE

        found = ddl_database.plan(node)
        if found is not None:
            verb, fn = found
            return StmtPlan(_ddl_runner(lambda ctx, _node, fn=fn: fn(ctx), node), columns=None,
                            param_types=param_types, tables=base, writes=True, verb=verb, cacheable=False)
    tables = base + ddl.tables_of(node, catalog)
    if isinstance(node, exp.Create):
        kind = str(node.args.get("kind") or "").upper()
        fn = {"TABLE": ddl.create_table, "SEQUENCE": ddl.create_sequence}.get(kind)
        if kind == "TABLE" and node.expression is not None:
            from engine.ddl_query import create_table_as_node

            fn = create_table_as_node
        elif kind == "VIEW":
            from engine.ddl_query import create_view

            fn = create_view
        if kind == "INDEX":
            fn = _create_index
        if fn is None:
            raise errors.FeatureNotSupported(f"CREATE {kind} is not supported yet")
        # CREATE TABLE AS plans its query when it runs: a pg_sleep there is not known yet
        return StmtPlan(_ddl_runner(fn, node), columns=None, param_types=param_types, tables=tables, writes=True,
                        verb=f"CREATE {kind}", cacheable=False,
                        sleeps=kind == "TABLE" and node.expression is not None)
    if isinstance(node, exp.Drop):
        kind = str(node.args.get("kind") or "").upper()
        # Not the dropped tables: a drop reads none of their rows (loading an uncached
        # 1 M-row table first took ~20 s)
        return StmtPlan(_ddl_runner(ddl.drop, node), columns=None, param_types=param_types, tables=base,
                        writes=True, verb=f"DROP {kind}", cacheable=False)
    if isinstance(node, exp.Alter):
        from engine.ddl_alter import alter_table

        # ALTER TABLE compiles its DEFAULT / USING expressions when it runs
        return StmtPlan(_ddl_runner(alter_table, node), columns=None, param_types=param_types, tables=tables,
                        writes=True, verb="ALTER TABLE", cacheable=False, sleeps=True)
    if isinstance(node, exp.Comment):
        from engine.ddl_comment import comment_on

        return StmtPlan(_ddl_runner(comment_on, node), columns=None, param_types=param_types, tables=tables,
                        writes=True, verb="COMMENT", cacheable=False)
    if isinstance(node, exp.TruncateTable):
        return StmtPlan(_ddl_runner(ddl.truncate, node), columns=None, param_types=param_types, tables=tables,
                        writes=True, verb="TRUNCATE TABLE", cacheable=False)
    if isinstance(node, (exp.Command, exp.Grant)) or type(node).__name__ == "Revoke":
        from engine import ddl_roles  # role DDL and GRANT/REVOKE

        found = ddl_roles.plan(node)
        if found is not None:
            return StmtPlan(found[1], columns=None, param_types=param_types, tables=base, writes=found[2],
                            verb=found[0], cacheable=False)
    if isinstance(node, exp.Command) and str(node.this).upper() == "EXPLAIN":
        from engine.explain import build_explain

        return build_explain(node, catalog, param_types, role)
    if isinstance(node, exp.Command):
        word = str(node.this).upper()
        raise errors.FeatureNotSupported(f"{word} is not supported")
    raise errors.FeatureNotSupported(f"statement not supported: {node.key.upper()}")


def _create_index(ctx: Any, node: exp.Create) -> tuple[str, list[str]]:
    """Secondary indexes are not built yet: accept the DDL (checking the table exists)."""
    idx = node.this
    t = idx.args.get("table")
    if t is not None and ctx.catalog.get(t.name) is None:
        raise errors.UndefinedTable(f'relation "{t.name}" does not exist')
    if t is not None:  # store the definition (shown by pg_index / psql \d)
        from engine.ddl import CatalogWriter

        cw = CatalogWriter(ctx)
        td = cw.catalog.get(t.name)
        from engine import privileges

        privileges.must_own(ctx, td)
        params = idx.args.get("params")
        cols = params.args.get("columns") if params is not None else None
        pos = [td.column_index(c.this.name if isinstance(c, exp.Ordered) else c.name) for c in cols or []]
        if pos and None not in pos:
            name = idx.name or f"{td.name}_{'_'.join(td.columns[p].name for p in pos)}_idx"
            if any(ix[0] == name for ix in td.indexes):
                if node.args.get("exists"):
                    return "CREATE INDEX", []
                raise errors.DuplicateTable(f'relation "{name}" already exists')
            unique = bool(node.args.get("unique"))
            if unique:  # existing rows must already be unique
                seen: dict = {}
                pad = td.pad_fn()
                for _, row in checked(ctx.txn.scan(td.table_id, ctx.snapshot), ctx):
                    row = pad(row) if pad is not None else row
                    vals = tuple(row[i] for i in pos)
                    if None in vals:
                        continue
                    if vals in seen:
                        shown = ", ".join("NULL" if v is None else str(v) for v in vals)
                        raise errors.UniqueViolation(
                            f'could not create unique index "{name}"',
                            detail=f"Key ({', '.join(td.columns[i].name for i in pos)})=({shown}) is duplicated.")
                    seen[vals] = True
            td = dataclasses.replace(td, indexes=[*td.indexes, [name, pos, unique]], cache={})
            cw.put_table(td)
            cw.finish()
    return "CREATE INDEX", []
