"""Redo log records: the only thing the writer ever sends to storage.

A record is one change to one key of the volume, or a commit point.

    LogRecord (msgpack array, in field order)
    +-----+----+----------+------+------+-----+-------+-------+-----+
    | lsn | pg | prev_lsn | txid | kind | key | value | epoch | crc |
    +-----+----+----------+------+------+-----+-------+-------+-----+

* ``lsn``      -- allocated by the writer, strictly increasing over the volume.
* ``pg``       -- protection group the record belongs to.
* ``prev_lsn`` -- back-link: LSN of the previous record of the same PG (0 = none).
* ``kind``     -- PUT, DELETE, PUTS, DELETE_PREFIX or COMMIT.  A transaction's records
  have contiguous LSNs and end with its COMMIT record, which is the mini-transaction's CPL
  (consistency point).  COMMIT records always live in PG 0 (the control PG); their
  ``value`` is the msgpack of ``{pg: highest LSN of this transaction in that pg}`` so that
  recovery can tell whether every record of the transaction reached a write quorum.
* PUTS (bulk writes, e.g. COPY): one record carries many row writes of its PG; ``key`` is
  empty and ``value`` the msgpack array ``[key, value | nil, key, value | nil, ...]`` (nil
  = delete).  Every row write in it takes the record's LSN; storage materialises each as
  its own version.  One record per few hundred rows keeps the per-record work of the
  writer, the six segments and the readers off the per-row path.
* DELETE_PREFIX (a range tombstone, DROP TABLE): every key of the PG that starts with
  ``key`` (a table id) is dead as of the record's LSN; ``value`` is empty.  It carries no
  row write: reads do not apply it (nothing reads a dropped table at a point after its
  drop: a table id, once committed, is never allocated again), storage remembers it when it materialises the record
  and its GC deletes every version of the prefix in that PG once the record is at or
  below the GC point -- i.e. outside the retention window, so PITR, clones and backtrack
  to before the drop still see the rows.  A drop writes one into every PG that can hold
  rows of the table (``server.placement``), in the same transaction as its catalog change.
* ``epoch``    -- volume epoch of the writer that produced the record.
* ``crc``      -- crc32 of the other fields; storage refuses records whose crc mismatches.
"""

from __future__ import annotations

import zlib

import msgspec

PUT = 0
DELETE = 1
COMMIT = 2
PUTS = 3
DELETE_PREFIX = 4

# The writer never allocates an LSN more than this far above the VDL; recovery truncates
# the whole range (VDL, VDL + LAL] and the next writer allocates above it.
LSN_ALLOCATION_LIMIT = 10_000_000

CONTROL_PG = 0

_commit_enc = msgspec.msgpack.Encoder()
_commit_dec = msgspec.msgpack.Decoder(dict[int, int])
_puts_enc = msgspec.msgpack.Encoder()
_puts_dec = msgspec.msgpack.Decoder(list[bytes | None])


def _crc(lsn: int, pg: int, prev_lsn: int, txid: int, kind: int, key: bytes, value: bytes, epoch: int) -> int:
    head = f"{lsn}|{pg}|{prev_lsn}|{txid}|{kind}|{epoch}|".encode()
    return zlib.crc32(value, zlib.crc32(key, zlib.crc32(head)))


class LogRecord(msgspec.Struct, array_like=True, frozen=True):
    lsn: int
    pg: int
    prev_lsn: int
    txid: int
    kind: int
    key: bytes
    value: bytes
    epoch: int
    crc: int = 0

    def checksum(self) -> int:
        return _crc(self.lsn, self.pg, self.prev_lsn, self.txid, self.kind, self.key, self.value, self.epoch)

    def sealed(self) -> "LogRecord":
        return msgspec.structs.replace(self, crc=self.checksum())

    @classmethod
    def make(cls, lsn: int, pg: int, prev_lsn: int, txid: int, kind: int, key: bytes, value: bytes,
             epoch: int) -> "LogRecord":
        """A record with its crc, built once (the writer's per-record path)."""
        return cls(lsn, pg, prev_lsn, txid, kind, key, value, epoch,
                   _crc(lsn, pg, prev_lsn, txid, kind, key, value, epoch))

    def valid(self) -> bool:
        return self.crc == self.checksum()

    @property
    def is_commit(self) -> bool:
        return self.kind == COMMIT


def encode_commit_value(touched: dict[int, int]) -> bytes:
    return _commit_enc.encode(touched)


def decode_commit_value(value: bytes) -> dict[int, int]:
    return _commit_dec.decode(value)


def encode_puts(flat: list[bytes | None]) -> bytes:
    """The value of a PUTS record: ``[key, value | None, key, value | None, ...]``."""
    return _puts_enc.encode(flat)


def record_versions(rec: LogRecord) -> list[tuple[bytes, bytes | None]]:
    """The (key, value or None for a delete) row writes a record carries (none for COMMIT
    and DELETE_PREFIX)."""
    kind = rec.kind
    if kind == PUT:
        return [(rec.key, rec.value)]
    if kind == DELETE:
        return [(rec.key, None)]
    if kind == PUTS:
        flat = _puts_dec.decode(rec.value)
        return list(zip(flat[0::2], flat[1::2]))  # type: ignore[arg-type]
    return []
