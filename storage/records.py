"""Redo log records: the only thing the writer ever sends to storage.

A record is one change to one key of the volume, or a commit point.

    LogRecord (msgpack array, in field order)
    +-----+----+----------+------+------+-----+-------+-------+-----+
    | lsn | pg | prev_lsn | txid | kind | key | value | epoch | crc |
    +-----+----+----------+------+------+-----+-------+-------+-----+

* ``lsn``      -- allocated by the writer, strictly increasing over the volume.
* ``pg``       -- protection group the record belongs to.
* ``prev_lsn`` -- back-link: LSN of the previous record of the same PG (0 = none).
* ``kind``     -- PUT, DELETE or COMMIT.  A transaction's records have contiguous LSNs and
  end with its COMMIT record, which is the mini-transaction's CPL (consistency point).
  COMMIT records always live in PG 0 (the control PG); their ``value`` is the msgpack of
  ``{pg: highest LSN of this transaction in that pg}`` so that recovery can tell whether
  every record of the transaction reached a write quorum.
* ``epoch``    -- volume epoch of the writer that produced the record.
* ``crc``      -- crc32 of the other fields; storage refuses records whose crc mismatches.
"""

from __future__ import annotations

import zlib

import msgspec

PUT = 0
DELETE = 1
COMMIT = 2

# The writer never allocates an LSN more than this far above the VDL; recovery truncates
# the whole range (VDL, VDL + LAL] and the next writer allocates above it.
LSN_ALLOCATION_LIMIT = 10_000_000

CONTROL_PG = 0

_commit_enc = msgspec.msgpack.Encoder()
_commit_dec = msgspec.msgpack.Decoder(dict[int, int])


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
