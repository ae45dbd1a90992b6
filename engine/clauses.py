"""The guard against clauses parsed but never read.

sqlglot parses far more than the engine implements; a clause it fills in that no handler
reads would be silently dropped and the statement run differently from what was asked (an
ignored ``TABLESAMPLE`` returns every row).  Each handler names the arguments it reads;
``refuse_unread`` raises 0A000 ``feature not supported: <clause>`` for any other argument
the parser populated.
"""

from __future__ import annotations

from sqlglot import exp

from engine import errors

# what plan_select reads (``into`` is SELECT INTO, rewritten before planning)
SELECT_ARGS = frozenset({"expressions", "from_", "joins", "where", "group", "having", "order", "limit", "offset",
                         "distinct", "with_", "windows", "locks", "into", "kind"})
# what a FROM item that names a table reads (ONLY changes nothing: there is no inheritance)
TABLE_ARGS = frozenset({"this", "alias", "db", "catalog", "only", "ordinality"})

_NAMES = {"sample": "TABLESAMPLE", "rows_from": "ROWS FROM", "qualify": "QUALIFY", "pivots": "PIVOT",
          "laterals": "LATERAL VIEW", "connect": "CONNECT BY", "prewhere": "PREWHERE", "sort": "SORT BY",
          "cluster": "CLUSTER BY", "distribute": "DISTRIBUTE BY", "for_": "FOR", "options": "OPTION",
          "settings": "SETTINGS", "format": "FORMAT", "hint": "hints", "exclude": "EXCLUDE",
          "operation_modifiers": "modifiers", "match": "MATCH_RECOGNIZE", "version": "FOR SYSTEM_TIME",
          "system_time": "FOR SYSTEM_TIME", "partition": "PARTITION", "changes": "CHANGES",
          "joins": "JOIN nested in a FROM item (UPDATE ... FROM or DELETE ... USING a JOIN b)"}


def _populated(node: exp.Expression) -> set[str]:
    return {k for k, v in node.args.items() if v is not None and v is not False and v != []}


def refuse_unread(node: exp.Expression, understood: frozenset[str]) -> None:
    """Raise 0A000 when ``node`` has a populated argument outside ``understood``."""
    left = _populated(node) - understood
    if left:
        k = sorted(left)[0]
        raise errors.FeatureNotSupported(f"feature not supported: {_NAMES.get(k, k.upper())}", node=node)


def check_select(sel: exp.Select) -> None:
    refuse_unread(sel, SELECT_ARGS)
    lim = sel.args.get("limit")
    opts = lim.args.get("limit_options") if isinstance(lim, exp.Fetch) else None
    if opts is not None and (opts.args.get("with_ties") or opts.args.get("percent")):
        raise errors.FeatureNotSupported(
            f"feature not supported: FETCH ... {'WITH TIES' if opts.args.get('with_ties') else 'PERCENT'}", node=lim)


def check_table(t: exp.Table) -> None:
    refuse_unread(t, TABLE_ARGS)
