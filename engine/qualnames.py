"""Refuse schema-qualified names the engine cannot honour.

The engine has one schema of user objects (``public``) next to ``pg_catalog`` and
``information_schema``; it keeps objects by their bare name.  A name qualified by any other
schema (``app.t``) must not silently become ``public.t``: ``check(ast)`` raises PostgreSQL's
error for the first such name in a parsed statement -- ``relation "app.t" does not exist``
(42P01) where a query reads or writes a relation, ``schema "app" does not exist`` (3F000)
for DDL, functions and types -- and refuses three-part names (0A000), as PostgreSQL does for
another database.
"""

from __future__ import annotations

from sqlglot import exp

from engine import errors

KNOWN_SCHEMAS = frozenset({"public", "pg_catalog", "information_schema"})

# statements whose table references PostgreSQL reports as a missing relation
_DATA_STATEMENTS = (exp.Select, exp.Union, exp.Intersect, exp.Except, exp.Insert, exp.Update, exp.Delete,
                    exp.Merge, exp.Values)


def _missing_schema(name: str, node: exp.Expression) -> errors.SqlError:
    return errors.SqlError(f'schema "{name}" does not exist', sqlstate="3F000", node=node)


def check(ast: exp.Expression) -> None:
    """Raise for the first name in ``ast`` qualified by a schema other than the known ones."""
    data = isinstance(ast, _DATA_STATEMENTS)
    for node in ast.walk():
        if isinstance(node, exp.Table):
            catalog, db = node.text("catalog"), node.text("db")
            if catalog:
                parts = ".".join(p for p in (catalog, db, node.name) if p)
                raise errors.FeatureNotSupported(f'cross-database references are not implemented: "{parts}"',
                                                 node=node)
            if db and db not in KNOWN_SCHEMAS:
                if data and not isinstance(node.this, exp.Func):
                    raise errors.UndefinedTable(f'relation "{db}.{node.name}" does not exist', node=node)
                raise _missing_schema(db, node)
        elif isinstance(node, exp.Column):
            catalog, db = node.text("catalog"), node.text("db")
            if catalog:
                parts = ".".join((catalog, db, node.table, node.name))
                raise errors.FeatureNotSupported(f"cross-database references are not implemented: {parts}",
                                                 node=node)
            if db and db not in KNOWN_SCHEMAS:
                raise errors.UndefinedTable(f'invalid reference to FROM-clause entry for table "{node.table}"',
                                            node=node)
        elif isinstance(node, exp.Dot):
            # schema.function(...): sqlglot keeps the schema as an identifier before the call
            if (isinstance(node.this, exp.Identifier) and isinstance(node.expression, exp.Func)
                    and node.this.name not in KNOWN_SCHEMAS):
                raise _missing_schema(node.this.name, node)
        elif isinstance(node, exp.DataType) and node.this == exp.DataType.Type.USERDEFINED:
            kind = node.args.get("kind")
            if isinstance(kind, exp.Dot) and isinstance(kind.this, exp.Identifier) \
                    and kind.this.name not in KNOWN_SCHEMAS:
                raise _missing_schema(kind.this.name, node)
