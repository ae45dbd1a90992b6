"""DDL defined by a query: CREATE TABLE AS / SELECT INTO, CREATE [OR REPLACE] VIEW.

A view is a catalog entry of kind ``'v'`` holding the query text (``TableDef.view_sql``)
and its output columns; the planner expands it like a subquery wherever it is named.
CREATE TABLE AS plans the query against the catalog of the moment, creates a table
without a primary key (rowid keys) and inserts the result rows in the same transaction.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

from engine import errors, privileges
from engine import types as T
from engine.catalog import ColumnDef, TableDef
from engine.ddl import CatalogWriter, is_temporary


def _plan(ctx: Any, query: exp.Expression) -> Any:
    from engine import roles
    from engine.planner import Planner

    pl = Planner(ctx.catalog, [], roles.current(ctx.session, ctx.catalog))
    return pl.plan_query(query)


def _checked_plan(ctx: Any, query: exp.Expression) -> Any:
    """The query of CREATE TABLE AS / SELECT INTO, its privileges checked as a SELECT's."""
    from engine import privileges
    from engine.planner import Planner

    from engine import roles

    pl = Planner(ctx.catalog, [], roles.current(ctx.session, ctx.catalog))
    plan = pl.plan_query(query)
    privileges.check_needs(pl.needs, ctx.session, ctx.catalog)
    return plan


def _columns(plan: Any, names: list[str]) -> list[ColumnDef]:
    cols = []
    for i, c in enumerate(plan.columns):
        n = names[i] if i < len(names) else c.name
        oid = T.TEXT if c.type_oid == T.UNKNOWN else c.type_oid
        cols.append(ColumnDef(n, oid, c.type_mod))
    seen = set()
    for c in cols:
        if c.name in seen:
            raise errors.SqlError(f'column "{c.name}" specified more than once', sqlstate="42701")
        seen.add(c.name)
    return cols


def create_table_as(ctx: Any, name: str, query: exp.Expression, names: list[str], if_not_exists: bool = False,
                    with_data: bool = True, temporary: bool = False) -> tuple[str, list[str]]:
    cw = CatalogWriter(ctx)
    cw.temporary = temporary
    if cw.catalog.get(name) is not None:
        if if_not_exists:
            return "CREATE TABLE AS", [f'relation "{name}" already exists, skipping']
        raise errors.DuplicateTable(f'relation "{name}" already exists')
    plan = _checked_plan(ctx, query)
    td = TableDef(cw.alloc_id(), name, "r", _columns(plan, names))
    rows = list(plan.rows(ctx)) if with_data else []
    cw.put_table(td)
    cw.finish()
    txn = ctx.txn
    for row in rows:
        key = ctx.db.next_rowid(td, txn)
        txn.lock(td.table_id, key)
        txn.put(td.table_id, key, tuple(row))
    return f"SELECT {len(rows)}", []


def create_table_as_node(ctx: Any, node: exp.Create) -> tuple[str, list[str]]:
    target = node.this
    names: list[str] = []
    if isinstance(target, exp.Schema):
        names = [c.name for c in target.expressions]
        target = target.this
    with_data = "WITH NO DATA" not in node.sql("postgres").upper()
    return create_table_as(ctx, target.name, node.expression, names, bool(node.args.get("exists")), with_data,
                           is_temporary(node))


def select_into(ctx: Any, node: exp.Select) -> tuple[str, list[str]]:
    into = node.args["into"]
    q = node.copy()
    q.set("into", None)
    return create_table_as(ctx, into.this.name, q, [])


def _view_options(node: exp.Create) -> bool:
    """WITH (...) of CREATE VIEW: security_invoker (returned); security_barrier and
    check_option change nothing here (no user functions; views are not updatable)."""
    props = node.args.get("properties")
    invoker = False
    for p in props.expressions if props is not None else []:
        if isinstance(p, exp.TemporaryProperty):
            continue
        if not isinstance(p, exp.Property):
            raise errors.FeatureNotSupported(f"view option {p.sql('postgres')} is not supported")
        key = p.name.lower()
        value = p.args.get("value")
        text = value.sql("postgres").strip("'").lower() if value is not None else "true"
        if key not in ("security_invoker", "security_barrier", "check_option"):
            raise errors.SqlError(f'unrecognized parameter "{key}"', sqlstate="22023")
        if key == "security_invoker":
            if text not in ("true", "on", "1", "yes", "false", "off", "0", "no"):
                raise errors.SqlError(f'invalid value for boolean option "security_invoker": {text}',
                                      sqlstate="22023")
            invoker = text in ("true", "on", "1", "yes")
    return invoker


def create_view(ctx: Any, node: exp.Create) -> tuple[str, list[str]]:
    target = node.this
    names: list[str] = []
    if isinstance(target, exp.Schema):
        names = [c.name for c in target.expressions]
        target = target.this
    name = target.name
    cw = CatalogWriter(ctx)
    cw.temporary = is_temporary(node)
    invoker = _view_options(node)
    old = cw.catalog.get(name)
    query = node.expression
    plan = _plan(ctx, query)
    cols = _columns(plan, names)
    if not cw.temporary:  # CREATE on the schema, once the query is analysed, as PostgreSQL checks
        privileges.creator(ctx)
    if old is not None:
        if not node.args.get("replace") or old.kind != "v":
            raise errors.DuplicateTable(f'relation "{name}" already exists')
        privileges.must_own(ctx, old)
        if len(cols) < len(old.columns) or any(a.name != b.name for a, b in zip(old.columns, cols)):
            raise errors.SqlError("cannot drop columns from view", sqlstate="42P16")
        td = TableDef(old.table_id, name, "v", cols, view_sql=query.sql("postgres"), owner=old.owner, acl=old.acl,
                      comments=old.comments, invoker=invoker)
    else:
        td = TableDef(cw.alloc_id(), name, "v", cols, view_sql=query.sql("postgres"), invoker=invoker)
    cw.put_table(td)
    cw.finish()
    return "CREATE VIEW", []
