"""Parser settings for the date/time functions whose arguments sqlglot would rewrite.

sqlglot turns the template of ``to_char`` / ``to_date`` / ``to_timestamp`` into strftime
codes (losing PostgreSQL patterns such as ``FMDay``, ``Y,YYY`` or ``"quoted text"``) and
``date_part(...)`` into ``EXTRACT`` (which returns numeric, not double precision).  We keep
them as plain function calls; ``engine.functions_time`` implements them by name.
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.postgres import Postgres


def _plain(name: str):  # noqa: ANN202 -- a sqlglot function builder
    return lambda args: exp.Anonymous(this=name, expressions=args)


def install() -> None:
    """Idempotent: make the postgres parser keep these calls as written."""
    for name in ("to_char", "to_date", "to_timestamp", "date_part", "date_trunc", "date_bin", "make_time",
                 "make_timestamp", "make_timestamptz", "make_date"):
        Postgres.Parser.FUNCTIONS[name.upper()] = _plain(name)
    Postgres.Parser.FUNCTION_PARSERS.pop("DATE_PART", None)
