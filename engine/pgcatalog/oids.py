"""Object ids of the virtual pg_catalog.

Relations use their table id (>= 16384).  Objects the engine does not store under an id of
their own (the primary-key index, unique/foreign-key constraints, secondary indexes,
attribute defaults) get ids derived from their table's id::

    derived(table_id, slot) = 0x40000000 + table_id * 64 + slot
    slot 0        primary-key index       slot 32       primary-key constraint
    slot 1..15    unique-constraint index slot 33..47   unique constraints
    slot 16..31   CREATE INDEX indexes    slot 48..63   foreign-key constraints

so every id is stable across statements and unique without a counter.
"""

from __future__ import annotations

PG_CATALOG, PUBLIC, INFORMATION_SCHEMA, PG_TOAST = 11, 2200, 13000, 99
BOOTSTRAP_SUPERUSER, PG_DATABASE_OWNER = 10, 6171
HEAP_AM, BTREE_AM, HASH_AM = 2, 403, 405
DEFAULT_COLLATION, C_COLLATION = 100, 950
BASE = 0x40000000


def derived(table_id: int, slot: int) -> int:
    return BASE + table_id * 64 + slot


def split(oid: int) -> tuple[int, int] | None:
    """(table_id, slot) of a derived id, or None."""
    if oid < BASE:
        return None
    return (oid - BASE) // 64, (oid - BASE) % 64
