"""Run-time parameters (GUCs): defaults, SET value normalisation, SHOW names.

Names are case-insensitive (stored lower-case); ``REPORTED`` lists those sent to the client
in ParameterStatus, with PostgreSQL's spelling.
"""

from __future__ import annotations

SERVER_VERSION = "15.8"

REPORTED = {
    "server_version": "server_version", "server_encoding": "server_encoding",
    "client_encoding": "client_encoding", "datestyle": "DateStyle", "timezone": "TimeZone",
    "intervalstyle": "IntervalStyle", "integer_datetimes": "integer_datetimes",
    "standard_conforming_strings": "standard_conforming_strings", "is_superuser": "is_superuser",
    "session_authorization": "session_authorization", "application_name": "application_name",
    "default_transaction_read_only": "default_transaction_read_only", "in_hot_standby": "in_hot_standby",
}


def defaults(user: str, instance: str, read_only: bool) -> dict[str, str]:
    return {
        "server_version": SERVER_VERSION, "server_version_num": "150008", "server_encoding": "UTF8",
        "client_encoding": "UTF8", "datestyle": "ISO, MDY", "timezone": "UTC", "intervalstyle": "postgres",
        "integer_datetimes": "on", "standard_conforming_strings": "on", "is_superuser": "on",
        "session_authorization": user, "application_name": "", "search_path": '"$user", public',
        "statement_timeout": "0", "lock_timeout": "0", "idle_in_transaction_session_timeout": "0",
        "extra_float_digits": "1", "default_transaction_isolation": "read committed",
        "transaction_isolation": "read committed", "default_transaction_read_only": "on" if read_only else "off",
        "transaction_read_only": "on" if read_only else "off", "in_hot_standby": "on" if read_only else "off",
        "max_identifier_length": "63", "borealis.instance": instance, "synchronous_commit": "on",
        "work_mem": "4MB", "max_connections": "100", "lc_messages": "C", "lc_monetary": "C",
        "lc_numeric": "C", "lc_time": "C", "bytea_output": "hex", "escape_string_warning": "on",
        "default_transaction_deferrable": "off", "row_security": "on", "jit": "off",
        "password_encryption": "scram-sha-256", "role": "none",
        "default_table_access_method": "heap", "default_tablespace": "",  # SQLAlchemy reflection reads these
    }


def normalize_value(raw: str) -> str:
    """SET value text -> stored string (quotes stripped from each list item)."""
    parts = []
    for item in _split_list(raw.strip()):
        item = item.strip()
        if len(item) >= 2 and item[0] == "'" and item[-1] == "'":
            item = item[1:-1].replace("''", "'")
        parts.append(item)
    return ", ".join(parts)


def _split_list(s: str) -> list[str]:
    out, cur, q = [], [], None
    for ch in s:
        if q:
            cur.append(ch)
            if ch == q:
                q = None
        elif ch in "'\"":
            q = ch
            cur.append(ch)
        elif ch == ",":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return out


SHOW_ALIASES = {"transaction isolation level": "transaction_isolation", "time zone": "timezone",
                "session authorization": "session_authorization"}


def command_line_options(options: str) -> dict[str, str]:
    """The ``-c name=value`` / ``--name=value`` settings of a startup packet's ``options``
    (libpq's PGOPTIONS), lower-cased names."""
    out: dict[str, str] = {}
    words = options.replace("\\ ", "\0").split()
    i = 0
    while i < len(words):
        w = words[i].replace("\0", " ")
        item = None
        if w == "-c" and i + 1 < len(words):
            item = words[i + 1].replace("\0", " ")
            i += 1
        elif w.startswith("-c"):
            item = w[2:]
        elif w.startswith("--"):
            item = w[2:]
        if item and "=" in item:
            k, v = item.split("=", 1)
            out[k.strip().lower().replace("-", "_")] = v
        i += 1
    return out
