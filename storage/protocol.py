"""Messages between the writer/readers/CLI and storage nodes.

Every request carries ``req`` (a per-connection request id, echoed in the reply) so a
client can pipeline requests on one connection.  Requests stamped with an ``epoch``
older than the node's volume epoch are refused with ``Error(code="stale_epoch")``.

Requests                                    Replies
  Append(req, epoch, vdl, records)            AppendAck(req, scl)        -- after fsync
  Read(req, pg, key, at_lsn)                  ReadResult(req, found, lsn, value)
  Scan(req, pg, prefix, at_lsn, after, limit) ScanResult(req, items, done)
  GetState(req)                               NodeState(req, ...)
  SetEpoch(req, epoch)                        Ok(req)
  Truncate(req, epoch, after_lsn, upto_lsn)   Ok(req)
  FetchLog(req, pg, after_lsn, limit)         LogBatch(req, records)
  any                                         Error(req, code, message)

``scl`` maps PG -> segment complete LSN.  ``vdl`` on Append is the writer's current VDL,
a hint storage may use to materialise records (it never materialises above it).
``Scan`` returns, for keys starting with ``prefix`` and > ``after`` (if given), the
newest version with lsn <= at_lsn that is not a delete, in key order, at most ``limit``.
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


class GetState(msgspec.Struct, tag=True):
    req: int


class SetEpoch(msgspec.Struct, tag=True):
    req: int
    epoch: int


class Truncate(msgspec.Struct, tag=True):
    """Delete every record with after_lsn < lsn <= upto_lsn from an epoch < ``epoch``,
    and remember the range so that gossip never brings such records back."""

    req: int
    epoch: int
    after_lsn: int
    upto_lsn: int


class FetchLog(msgspec.Struct, tag=True):
    req: int
    pg: int
    after_lsn: int
    limit: int = 5_000


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
    items: list[tuple[bytes, int, bytes]]  # (key, version lsn, value)
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


class Ok(msgspec.Struct, tag=True):
    req: int


class LogBatch(msgspec.Struct, tag=True):
    req: int
    records: list[LogRecord]


class Error(msgspec.Struct, tag=True):
    req: int
    code: str
    message: str


Request = Union[Append, Read, Scan, GetState, SetEpoch, Truncate, FetchLog]
Reply = Union[AppendAck, ReadResult, ScanResult, NodeState, Ok, LogBatch, Error]

REQUESTS = Codec(Request)
REPLIES = Codec(Reply)
