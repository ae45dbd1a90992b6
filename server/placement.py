"""Where each table's rows live: the volume's protection-group placement map.

A volume starts with ``base`` protection groups (``protection_groups`` in cluster.json) and
table ``t`` starts in PG ``t % base``.  When the PG a table writes to passes the size limit
(``pg_size_limit``), the writer adds a PG ``q`` to the volume and records
``successor[p] = q``: from then on every write of a table whose newest PG was ``p`` goes to
``q``.  A table's PGs form a chain ``p -> q -> r ...``; the last one is where its new rows
go (its *head*).  Reading a table merges its chain: for each key the newest version wins,
deletes included (the storage scan returns tombstones for that, and PGs added as the
volume grew keep their tombstones through GC, because they hide versions in older PGs).

The map is stored as rows of ``PLACEMENT_TABLE`` (the largest table id, reserved: the
engine's ids count up from ``engine.catalog.FIRST_TABLE_ID``), always in PG 0, so it is logged like any other
write: the writer commits ``key = p (4 B BE) -> value = q (4 B BE)`` in a transaction of its
own before the first record of ``q``.  A durable write to ``q`` therefore implies a durable
map entry (LSN order).  Readers apply the entries from the redo stream; a new writer, or
a reader that dropped its cache, reads the whole map from PG 0.  Entries are only ever
added, so a map that is newer than a read point is still right for it (a PG added after
the read point holds nothing at or below it).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from storage.records import CONTROL_PG

PLACEMENT_TABLE = 0xFFFF_FFFF
_U32 = struct.Struct(">I")


def entry_key(pg: int) -> bytes:
    """Engine-level key of the map entry for ``pg`` (the storage key adds the table id)."""
    return _U32.pack(pg)


def entry_value(successor: int) -> bytes:
    return _U32.pack(successor)


@dataclass
class Placement:
    base: int  # PGs the volume started with
    count: int = 0  # PGs the volume has now (0 .. count-1)
    successor: dict[int, int] = field(default_factory=dict)
    heads: dict[int, int] = field(default_factory=dict)  # table id -> head PG (cache)

    def __post_init__(self) -> None:
        self.count = max(self.count, self.base)

    def head(self, table_id: int) -> int:
        """The PG new writes of ``table_id`` go to."""
        pg = self.heads.get(table_id)
        if pg is None:
            pg = self.chain(table_id)[-1]
            self.heads[table_id] = pg
        return pg

    def chain(self, table_id: int) -> list[int]:
        """Every PG that may hold rows of ``table_id``, oldest first."""
        if table_id == PLACEMENT_TABLE:
            return [CONTROL_PG]
        pg = table_id % self.base
        out = [pg]
        succ = self.successor
        while pg in succ:
            pg = succ[pg]
            out.append(pg)
        return out

    def add(self, pg: int, successor: int) -> bool:
        """Record ``successor[pg]``; True if it is new."""
        if self.successor.get(pg) == successor:
            return False
        self.successor[pg] = successor
        self.count = max(self.count, successor + 1)
        self.heads.clear()
        return True

    def apply_entry(self, key: bytes, value: bytes | None) -> bool:
        """A map row as stored (engine key and value); deletes never happen."""
        if value is None or len(key) != 4 or len(value) != 4:
            return False
        return self.add(_U32.unpack(key)[0], _U32.unpack(value)[0])

    def rows(self) -> list[dict[str, int]]:
        """The map for ``borealis status``: one row per added PG."""
        return [{"pg": q, "after": p} for p, q in sorted(self.successor.items(), key=lambda kv: kv[1])]
