"""Messages between the writer/readers/CLI and storage nodes.

Every request carries ``req`` (a per-connection request id, echoed in the reply) so a
client can pipeline requests on one connection.  Requests stamped with an ``epoch``
older than the node's volume epoch are refused with ``Error(code="stale_epoch")``.

Requests                                    Replies
  Append(req, epoch, vdl, records)            AppendAck(req, scl)        -- after fsync
  Read(req, pg, key, at_lsn)                  ReadResult(req, found, lsn, value)
  Scan(req, pg, prefix, at_lsn, after, limit, deletes) ScanResult(req, items, done)
  GetState(req)                               NodeState(req, ...)
  SetEpoch(req, epoch)                        Ok(req)
  Truncate(req, epoch, after_lsn, upto_lsn)   Ok(req)
  FetchLog(req, pg, after_lsn, limit)         LogBatch(req, records)
  Scrub(req)                                  ScrubResult(req, ...)      -- verify + repair now
  Gc(req)                                     GcResult(req, ...)         -- collect now
  CopyVersions(req, pg, begin, end, limit)    VersionBatch(req, entries, more)
  AddPgs(req, epoch, count)                   Ok(req)                    -- after fsync
  any                                         Error(req, code, message)

Error codes a reader must expect besides ``not_complete``: ``corrupt`` (stored bytes of
this segment failed a checksum: ask another segment; the node repairs itself from its
peers) and ``too_old`` (the read point, or FetchLog's after_lsn, is below the node's GC
floor for the PG: versions/records needed for it were garbage-collected).

``scl`` maps PG -> segment complete LSN.  ``vdl`` on Append is the writer's current VDL,
a hint storage may use to materialise records (it never materialises above it).
``Scan`` returns, for keys starting with ``prefix`` and > ``after`` (if given), the
newest version with lsn <= at_lsn that is not a delete, in key order, at most ``limit``;
with ``deletes`` a key whose newest version is a delete comes back with value None (a
table spread over several PGs merges them newest-first: see ``server.placement``).
A node answers Read/Scan only when its SCL for the PG is >= at_lsn, else
``Error(code="not_complete")`` and the client asks another segment.
"""

from __future__ import annotations

from typing import Union

import msgspec

from storage.records import LogRecord
from storage.wire import Codec


class Append(msgspec.Struct, tag=True):
    req: int
    epoch: int
    vdl: int
    records: list[LogRecord]


class EncodedAppend(msgspec.Struct, tag="Append"):
    """An ``Append`` whose records were msgpack-encoded once (``encode_records``) and are
    sent to all six segments as the same bytes; it decodes as an ``Append``."""

    req: int
    epoch: int
    vdl: int
    records: msgspec.Raw


_records_enc = msgspec.msgpack.Encoder()


def encode_records(records: list[LogRecord]) -> msgspec.Raw:
    return msgspec.Raw(_records_enc.encode(records))


class Read(msgspec.Struct, tag=True):
    req: int
    pg: int
    key: bytes
    at_lsn: int


class Scan(msgspec.Struct, tag=True):
    req: int
    pg: int
    prefix: bytes
    at_lsn: int
    after: bytes | None = None
    limit: int = 10_000
    deletes: bool = False


class GetState(msgspec.Struct, tag=True):
    req: int


class SetEpoch(msgspec.Struct, tag=True):
    req: int
    epoch: int


class Truncate(msgspec.Struct, tag=True):
    """Delete every record with after_lsn < lsn <= upto_lsn from an epoch < ``epoch``,
    and remember the range so that gossip never brings such records back.  ``after_lsn``
    (the VDL the recovery settled on) also counts as a VDL hint."""

    req: int
    epoch: int
    after_lsn: int
    upto_lsn: int


class FetchLog(msgspec.Struct, tag=True):
    req: int
    pg: int
    after_lsn: int
    limit: int = 5_000


class Scrub(msgspec.Struct, tag=True):
    """Verify every record and version of the node now and repair what fails."""

    req: int


class Gc(msgspec.Struct, tag=True):
    """Garbage-collect below the retention window now."""

    req: int


class CopyVersions(msgspec.Struct, tag=True):
    """Raw stored version entries (``storage.store`` layout, checksum included) with
    begin <= raw key < end, in key order: bulk copy and repair of versions between peers."""

    req: int
    pg: int
    begin: bytes
    end: bytes
    limit: int = 5_000


class AddPgs(msgspec.Struct, tag=True):
    """The volume grew: hold segments of PGs 0..count-1 (idempotent; never shrinks)."""

    req: int
    epoch: int
    count: int


class AppendAck(msgspec.Struct, tag=True):
    req: int
    scl: dict[int, int]


class ReadResult(msgspec.Struct, tag=True):
    req: int
    found: bool
    lsn: int = 0
    value: bytes = b""


class ScanResult(msgspec.Struct, tag=True):
    req: int
    items: list[tuple[bytes, int, bytes | None]]  # (key, version lsn, value; None = deleted)
    done: bool


class NodeState(msgspec.Struct, tag=True):
    req: int
    name: str
    az: str
    epoch: int
    scl: dict[int, int]  # PG -> segment complete LSN
    max_lsn: dict[int, int]  # PG -> highest LSN held (may be above SCL when there are holes)
    vdl_hint: int  # highest VDL a writer has told this node
    materialized: int  # records up to this LSN are materialised into versions
    truncations: list[tuple[int, int, int]]  # (epoch, after_lsn, upto_lsn)
    gc_floor: dict[int, int] = {}  # PG -> reads below it are too_old (see storage.node)
    log_floor: dict[int, int] = {}  # PG -> FetchLog with after_lsn below it is too_old
    corrupt: int = 0  # damaged entries found and not yet repaired
    pg_bytes: dict[int, int] = {}  # PG -> bytes of log records this segment took in (its size)
    damaged: dict[int, str] = {}  # PG -> "damaged" | "repairing": segments not served (storage.node)


class Ok(msgspec.Struct, tag=True):
    req: int


class LogBatch(msgspec.Struct, tag=True):
    req: int
    records: list[LogRecord]


class ScrubResult(msgspec.Struct, tag=True):
    req: int
    records: int  # log records verified
    versions: int  # version entries verified
    corrupt: int  # damaged entries found
    repaired: int  # of those, repaired (from the local log or from peers)
    rebuilt: bool = False  # RocksDB refused to read: the whole store was rebuilt from peers


class GcResult(msgspec.Struct, tag=True):
    req: int
    window_lsn: int  # every read at an LSN >= this stays possible
    gc_floor: dict[int, int]
    versions_removed: int
    records_removed: int
    prefixes_dropped: int = 0  # range tombstones (DROP TABLE) applied: every version of each prefix


class VersionBatch(msgspec.Struct, tag=True):
    req: int
    entries: list[tuple[bytes, bytes]]
    more: bool


class Error(msgspec.Struct, tag=True):
    req: int
    code: str
    message: str


Request = Union[Append, Read, Scan, GetState, SetEpoch, Truncate, FetchLog, Scrub, Gc, CopyVersions, AddPgs]
Reply = Union[AppendAck, ReadResult, ScanResult, NodeState, Ok, LogBatch, Error, ScrubResult, GcResult, VersionBatch]

REQUESTS = Codec(Request)
REPLIES = Codec(Reply)
