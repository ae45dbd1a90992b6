"""Object ids of the virtual pg_catalog.

Relations use their table id (>= 16384).  Objects the engine does not store under an id of
their own (the primary-key index, unique/foreign-key constraints, secondary indexes,
attribute defaults) get ids derived from their table's id::

    derived(table_id, slot) = 0x40000000 + table_id * 256 + slot
    slot 0        primary-key index        slot 128       primary-key constraint
    slot 1..63    unique-constraint index  slot 129..191  unique constraints
    slot 64..127  CREATE INDEX indexes     slot 192..223  foreign-key constraints
                                           slot 224..255  CHECK constraints

so every id is stable across statements and unique without a counter.
"""

from __future__ import annotations

PG_CATALOG, PUBLIC, INFORMATION_SCHEMA, PG_TOAST = 11, 2200, 13000, 99
BOOTSTRAP_SUPERUSER, PG_DATABASE_OWNER = 10, 6171
HEAP_AM, BTREE_AM, HASH_AM = 2, 403, 405
DEFAULT_COLLATION, C_COLLATION = 100, 950
BASE = 0x40000000
# the catalogs' own pg_class oids (pg_description.classoid, 'pg_catalog.pg_class'::regclass)
CATALOG_RELATIONS = {"pg_class": 1259, "pg_attribute": 1249, "pg_type": 1247, "pg_proc": 1255,
                     "pg_namespace": 2615, "pg_constraint": 2606, "pg_index": 2610, "pg_database": 1262,
                     "pg_authid": 1260, "pg_description": 2609, "pg_am": 2601, "pg_attrdef": 2604,
                     "pg_trigger": 2620, "pg_rewrite": 2618, "pg_sequence": 2224, "pg_tablespace": 1213,
                     "pg_collation": 3456, "pg_depend": 2608, "pg_inherits": 2611, "pg_extension": 3079,
                     "pg_operator": 2617, "pg_opclass": 2616, "pg_language": 2612, "pg_cast": 2605}
PG_CLASS = CATALOG_RELATIONS["pg_class"]


def derived(table_id: int, slot: int) -> int:
    return BASE + table_id * 256 + slot


def split(oid: int) -> tuple[int, int] | None:
    """(table_id, slot) of a derived id, or None."""
    if oid < BASE:
        return None
    return (oid - BASE) // 256, (oid - BASE) % 256
