"""pg_get_viewdef: a view's stored query printed the way PostgreSQL prints it back.

PostgreSQL keeps a view as its analysed query and prints it with every column qualified
by its table (or alias), ``*`` expanded, an ``AS`` on every output column that is not a
plain column of the same name, and one clause per line (`` SELECT`` / ``   FROM`` /
``     JOIN`` / ``  WHERE`` / ``  GROUP BY`` / ``  HAVING`` / ``  ORDER BY`` / `` LIMIT``).
``viewdef`` does this for SELECTs over tables and views with joins, WHERE, GROUP BY,
HAVING, ORDER BY, LIMIT and OFFSET; any other query keeps the text it was written in.
"""

from __future__ import annotations

from typing import Any

import sqlglot
from sqlglot import exp

from engine.pgcatalog.deparse import Out, _Deparser, _ident


class _Unsupported(Exception):
    pass


def viewdef(sql: str, catalog: Any, pretty: bool) -> str:
    try:
        node = sqlglot.parse_one(sql, read="postgres")
        if not isinstance(node, exp.Select):
            raise _Unsupported
        return _select(node, catalog, pretty) + ";"
    except (_Unsupported, sqlglot.errors.ParseError, KeyError, AttributeError):
        return " " + sql.strip().rstrip(";") + ";"


def _select(sel: exp.Select, catalog: Any, pretty: bool) -> str:
    for key in ("with", "distinct", "windows", "qualify", "into", "locks"):
        if sel.args.get(key):
            raise _Unsupported
    rels: list[tuple[str, Any]] = []  # (qualifier, TableDef) in FROM order

    def add(t: exp.Expression) -> str:
        if not isinstance(t, exp.Table) or not isinstance(t.this, exp.Identifier):
            raise _Unsupported
        td = catalog.get(t.name)
        if td is None:
            raise _Unsupported
        alias = t.alias or ""
        rels.append((alias or td.name, td))
        return _ident(td.name) + (" " + _ident(alias) if alias else "")

    frm = sel.args.get("from_") or sel.args.get("from")
    if frm is None:
        raise _Unsupported
    from_text = add(frm.this)
    joins = []
    for j in sel.args.get("joins") or []:
        side = (j.side or "").upper()
        kind = (j.kind or "").upper()
        on = j.args.get("on")
        if j.args.get("using"):
            raise _Unsupported
        text = add(j.this)
        if on is None and not side and kind in ("", "CROSS") and not j.args.get("kind"):
            joins.append((", " + text, None))
            continue
        word = {"LEFT": "LEFT JOIN", "RIGHT": "RIGHT JOIN", "FULL": "FULL JOIN"}.get(side, "JOIN")
        if on is None:
            word = "CROSS JOIN"
        joins.append((word + " " + text, on))

    def resolve(col: exp.Column) -> Out | None:
        hits = []
        for q, td in rels:
            if col.table and col.table != q:
                continue
            i = td.column_index(col.name)
            if i is not None:
                c = td.columns[i]
                hits.append(Out(f"{_ident(q)}.{_ident(c.name)}", c.type_oid, "col"))
        if len(hits) != 1:
            raise _Unsupported
        return hits[0]

    dp = _Deparser((), pretty, resolve)
    targets = []
    for e in sel.expressions:
        if isinstance(e, exp.Star) or (isinstance(e, exp.Column) and isinstance(e.this, exp.Star)):
            q = e.table if isinstance(e, exp.Column) else None
            for qual, td in rels:
                if q is None or q == qual:
                    targets += [f"{_ident(qual)}.{_ident(c.name)}" for c in td.columns]
            continue
        inner, alias = (e.this, e.alias) if isinstance(e, exp.Alias) else (e, None)
        text = dp.d(inner).text
        if isinstance(inner, exp.Column):
            name = alias or inner.name
            targets.append(text if name == inner.name else f"{text} AS {_ident(name)}")
        else:
            from engine.expr import output_name

            targets.append(f"{text} AS {_ident(alias or output_name(inner))}")
    nested = sum(1 for word, _ in joins if not word.startswith(", ")) if not pretty else 0
    out = [" SELECT " + ",\n    ".join(targets), "   FROM " + "(" * nested + from_text]
    for word, on in joins:  # the plain style nests each join in parentheses, ON ((cond))
        if on is None and word.startswith(", "):
            out[-1] += word
            continue
        cond = "" if on is None else " ON " + (dp.d(on).text if pretty else f"({dp.d(on).text})")
        out.append("     " + word + cond + ("" if pretty else ")"))
    where = sel.args.get("where")
    if where is not None:
        out.append("  WHERE " + dp.d(where.this).text)
    group = sel.args.get("group")
    if group is not None:
        out.append("  GROUP BY " + ", ".join(dp.d(g).text for g in group.expressions))
    having = sel.args.get("having")
    if having is not None:
        out.append(("  HAVING " if pretty else " HAVING ") + dp.d(having.this).text)
    order = sel.args.get("order")
    if order is not None:
        keys = []
        for o in order.expressions:
            k = dp.d(o.this).text + (" DESC" if o.args.get("desc") else "")
            keys.append(k)
        out.append("  ORDER BY " + ", ".join(keys))
    for key, word in (("offset", " OFFSET "), ("limit", " LIMIT ")):
        v = sel.args.get(key)
        if v is not None:
            out.append(word + dp.d(v.expression if isinstance(v, (exp.Limit, exp.Offset)) else v).text)
    return "\n".join(out)
