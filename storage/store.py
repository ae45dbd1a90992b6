"""A storage node's RocksDB: the log, the materialised versions and a little metadata.

This is the only module that imports rocksdict.  One database per node, raw byte keys:

    b"L" + pg (4B BE) + lsn (8B BE)                       -> LogRecord (msgpack)
    b"V" + pg (4B BE) + esc(key) + b"\\x00\\x00" + ~lsn (8B BE) -> b"P" + value | b"D"
    b"M" + name                                            -> metadata (below)

* ``L``: the redo log of each PG in LSN order, including records above the SCL.
* ``V``: materialised versions.  ``esc`` doubles every 0x00 byte of the user key as
  0x00 0xFF and the key ends with 0x00 0x00; this keeps user-key order and makes a key
  never a byte-prefix confusion of another (b"a" ends 61 00 00, b"a\\x00" is 61 00 FF 00 00).
  ``~lsn`` is ``2**64 - 1 - lsn`` so the versions of one key sort newest first: seeking
  to ``esc(key) + 00 00 + ~at_lsn`` lands on the newest version with lsn <= at_lsn.
  ``D`` marks a delete (tombstone).
* ``M``: ``epoch`` (8B BE), ``vdl`` (8B BE, highest VDL hint), ``trunc`` (msgpack list of
  ``[epoch, after_lsn, upto_lsn]``), ``mat`` + pg (4B BE) -> 8B BE materialised point.

Writes go through :class:`Batch` and :meth:`Store.write` unsynced (WAL on, no fsync);
durability comes from :meth:`Store.flush_wal`, which the node runs in a thread because it
releases the GIL while it fsyncs (``put(sync=True)`` would freeze the event loop).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import msgspec
from rocksdict import Options, ReadOptions, Rdict, WriteBatch, WriteOptions

from storage.records import LogRecord

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_MAX64 = 2**64 - 1
_rec_enc = msgspec.msgpack.Encoder()
_rec_dec = msgspec.msgpack.Decoder(LogRecord)
_trunc_dec = msgspec.msgpack.Decoder(list[tuple[int, int, int]])

TOMBSTONE = b"D"
_PUT = b"P"


def escape(key: bytes) -> bytes:
    return key.replace(b"\x00", b"\x00\xff")


def unescape(raw: bytes) -> bytes:
    return raw.replace(b"\x00\xff", b"\x00")


def log_key(pg: int, lsn: int) -> bytes:
    return b"L" + _U32.pack(pg) + _U64.pack(lsn)


def version_prefix(pg: int, key: bytes) -> bytes:
    """All versions of one user key share this prefix."""
    return b"V" + _U32.pack(pg) + escape(key) + b"\x00\x00"


def version_key(pg: int, key: bytes, lsn: int) -> bytes:
    return version_prefix(pg, key) + _U64.pack(_MAX64 - lsn)


def encode_record(rec: LogRecord) -> bytes:
    return _rec_enc.encode(rec)


def decode_record(raw: bytes) -> LogRecord:
    return _rec_dec.decode(raw)


class Batch:
    """Changes applied atomically by :meth:`Store.write`."""

    def __init__(self) -> None:
        self.wb = WriteBatch(raw_mode=True)
        self.count = 0

    def put_log(self, rec: LogRecord) -> None:
        self.wb.put(log_key(rec.pg, rec.lsn), encode_record(rec))
        self.count += 1

    def delete_log(self, pg: int, lsn: int) -> None:
        self.wb.delete(log_key(pg, lsn))
        self.count += 1

    def put_version(self, pg: int, key: bytes, lsn: int, value: bytes | None) -> None:
        """``value`` None writes a tombstone."""
        self.wb.put(version_key(pg, key, lsn), TOMBSTONE if value is None else _PUT + value)
        self.count += 1

    def delete_version(self, pg: int, key: bytes, lsn: int) -> None:
        self.wb.delete(version_key(pg, key, lsn))
        self.count += 1

    def put_meta_int(self, name: bytes, value: int) -> None:
        self.wb.put(b"M" + name, _U64.pack(value))
        self.count += 1

    def put_materialized(self, pg: int, lsn: int) -> None:
        self.put_meta_int(b"mat" + _U32.pack(pg), lsn)

    def put_truncations(self, truncs: list[tuple[int, int, int]]) -> None:
        self.wb.put(b"Mtrunc", msgspec.msgpack.encode([list(t) for t in truncs]))
        self.count += 1


class Store:
    def __init__(self, path: str | Path) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        opts = Options(raw_mode=True)
        opts.create_if_missing(True)
        self.db = Rdict(str(path), options=opts)
        self._wopts = WriteOptions()
        self._wopts.sync = False

    # --- writes ----------------------------------------------------------------------
    def write(self, batch: Batch) -> None:
        if batch.count:
            self.db.write(batch.wb, self._wopts)

    def flush_wal(self) -> None:
        """fsync the WAL: every write made before this call becomes durable.  Blocking;
        releases the GIL, so run it in a thread."""
        self.db.flush_wal(True)

    def close(self) -> None:
        self.db.flush_wal(True)
        self.db.close()

    # --- metadata --------------------------------------------------------------------
    def get_meta_int(self, name: bytes, default: int = 0) -> int:
        raw = self.db.get(b"M" + name)
        return default if raw is None else _U64.unpack(raw)[0]

    def get_materialized(self, pg: int) -> int:
        return self.get_meta_int(b"mat" + _U32.pack(pg))

    def get_truncations(self) -> list[tuple[int, int, int]]:
        raw = self.db.get(b"Mtrunc")
        return [] if raw is None else [tuple(t) for t in _trunc_dec.decode(raw)]  # type: ignore[misc]

    # --- the log ---------------------------------------------------------------------
    def iter_log(self, pg: int, after_lsn: int, upto_lsn: int | None = None) -> Iterator[LogRecord]:
        """Records of ``pg`` with after_lsn < lsn (<= upto_lsn), in LSN order."""
        if upto_lsn is not None and upto_lsn <= after_lsn:
            return
        it = self.db.iter(ReadOptions())
        start = log_key(pg, after_lsn + 1) if after_lsn < _MAX64 else None
        if start is None:
            return
        end = log_key(pg, upto_lsn) if upto_lsn is not None else log_key(pg, _MAX64)
        it.seek(start)
        while it.valid():
            k = it.key()
            if k > end:
                break
            yield decode_record(it.value())
            it.next()

    def last_log_lsn(self, pg: int, upto_lsn: int) -> int:
        """Highest LSN of ``pg`` held with lsn <= upto_lsn (0 if none)."""
        it = self.db.iter(ReadOptions())
        it.seek_for_prev(log_key(pg, upto_lsn))
        if it.valid():
            k = it.key()
            if k[:5] == b"L" + _U32.pack(pg):
                return _U64.unpack_from(k, 5)[0]
        return 0

    # --- versions --------------------------------------------------------------------
    def read_version(self, pg: int, key: bytes, at_lsn: int) -> tuple[int, bytes | None] | None:
        """Newest version of ``key`` with lsn <= at_lsn: (lsn, value or None for a delete),
        or None when the key has no such version."""
        prefix = version_prefix(pg, key)
        it = self.db.iter(ReadOptions())
        it.seek(prefix + _U64.pack(_MAX64 - at_lsn))
        if not it.valid():
            return None
        k = it.key()
        if len(k) != len(prefix) + 8 or not k.startswith(prefix):
            return None
        lsn = _MAX64 - _U64.unpack_from(k, len(prefix))[0]
        v = it.value()
        return lsn, (None if v == TOMBSTONE else v[1:])

    def scan_versions(
        self, pg: int, prefix: bytes, at_lsn: int, after: bytes | None, limit: int
    ) -> tuple[list[tuple[bytes, int, bytes]], bool]:
        """Live keys starting with ``prefix`` (and > ``after``), each with its newest
        version <= at_lsn, in key order.  Returns (items, done)."""
        head = b"V" + _U32.pack(pg)
        raw_prefix = head + escape(prefix)
        if after is not None and after >= prefix:
            # Just past every version of ``after``: its keys continue with 00 00.
            start = head + escape(after) + b"\x00\x01"
            if start < raw_prefix:
                start = raw_prefix
        else:
            start = raw_prefix
        items: list[tuple[bytes, int, bytes]] = []
        if limit <= 0:
            return items, False
        it = self.db.iter(ReadOptions())
        it.seek(start)
        current: bytes | None = None  # escaped user key whose answer is decided
        while it.valid():
            k = it.key()
            if not k.startswith(raw_prefix):
                return items, True
            ekey = k[5:-10]
            if ekey == current:
                it.next()
                continue
            lsn = _MAX64 - _U64.unpack_from(k, len(k) - 8)[0]
            if lsn > at_lsn:
                # Too new: jump straight to this key's newest version <= at_lsn.
                it.seek(k[:-8] + _U64.pack(_MAX64 - at_lsn))
                if it.valid() and it.key()[5:-10] != ekey:
                    current = ekey
                continue
            current = ekey
            v = it.value()
            if v != TOMBSTONE:
                if len(items) >= limit:
                    return items, False
                items.append((unescape(ekey), lsn, v[1:]))
            it.next()
        return items, True
