"""What a column DEFAULT may not contain, checked when the table is created (PostgreSQL's rules).

A default is evaluated with no row in scope, once per inserted row: it cannot read columns,
aggregate, run a subquery or return a set.  The first offence in evaluation order (arguments
before the call that uses them) is reported, pointing at its node.
"""

from __future__ import annotations

from sqlglot import exp

from engine import errors


# keywords sqlglot reads as column names: they are values (USER, CURRENT_ROLE ...)
_SPECIAL_NAMES = frozenset({"user", "current_role", "current_user", "session_user", "current_catalog",
                            "current_schema", "system_user"})


def check_default(node: exp.Expression) -> None:
    from engine.expr import is_aggregate
    from engine.srf import srf_name

    if isinstance(node, (exp.Subquery, exp.Select)):
        raise errors.FeatureNotSupported("cannot use subquery in DEFAULT expression", node=node)
    for child in node.iter_expressions():
        check_default(child)
    if isinstance(node, exp.Column) and not (not node.table and node.name.lower() in _SPECIAL_NAMES
                                             and not node.this.args.get("quoted")):
        raise errors.SqlError("cannot use column reference in DEFAULT expression", sqlstate="42P10", node=node)
    if is_aggregate(node):
        raise errors.SqlError("aggregate functions are not allowed in DEFAULT expressions", sqlstate="42803",
                              node=node)
    if srf_name(node) is not None:
        raise errors.FeatureNotSupported("set-returning functions are not allowed in DEFAULT expressions",
                                         node=node)
