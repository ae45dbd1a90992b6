"""A storage node's RocksDB: the log, the materialised versions and a little metadata.

This is the only module that imports rocksdict.  One database per node, raw byte keys:

    b"L" + pg (4B BE) + lsn (8B BE)                       -> LogRecord (msgpack)
    b"V" + pg (4B BE) + esc(key) + b"\\x00\\x00" + ~lsn (8B BE) -> tag + crc (4B BE) + value
    b"M" + name                                            -> metadata (below)

* ``L``: the redo log of each PG in LSN order, including records above the SCL.
* ``V``: materialised versions.  ``esc`` doubles every 0x00 byte of the user key as
  0x00 0xFF and the key ends with 0x00 0x00; this keeps user-key order and makes a key
  never a byte-prefix confusion of another (b"a" ends 61 00 00, b"a\\x00" is 61 00 FF 00 00).
  ``~lsn`` is ``2**64 - 1 - lsn`` so the versions of one key sort newest first: seeking
  to ``esc(key) + 00 00 + ~at_lsn`` lands on the newest version with lsn <= at_lsn.
  The tag is ``P`` (a put, ``value`` follows) or ``D`` (a delete: tombstone, no value).
  ``crc`` is crc32 of the whole raw key, then the tag and value: a flipped byte in the
  key, the tag or the value fails the check (:class:`CorruptData` on every read path).
* ``M``: ``epoch`` (8B BE), ``vdl`` (8B BE, highest VDL hint), ``trunc`` (msgpack list of
  ``[epoch, after_lsn, upto_lsn]``), ``mat`` + pg (4B BE) -> 8B BE materialised point,
  ``scl`` + pg -> 8B BE SCL checkpoint (the SCL was at least this when it was written:
  a restart replays only the log above it), ``gc`` + pg -> 8B BE GC floor (records below
  it are deleted, versions older than the newest one <= it are deleted; the record at the
  floor itself is kept as the base of the chain), ``hist`` -> msgpack list of
  ``[unix_time, vdl_hint]`` samples (maps the retention window to an LSN), ``rt`` + pg
  (4B BE) + lsn (8B BE) -> key prefix: a materialised DELETE_PREFIX record (range
  tombstone) that GC has not applied yet (``storage.gc``), ``enc`` -> the mark of a store
  whose values are all sealed, itself sealed under the data key (:meth:`Store.seal_with`).

Records carry their own crc32 (``LogRecord.valid``).  RocksDB checks its own block
checksums and raises on read; both kinds of damage surface as :class:`CorruptData`.

Encryption at rest: once a node process calls :func:`use_cipher` (``storage.node`` does at
start, with the volume's data key), the values of ``L`` and ``V`` entries are stored sealed
by ``storage.atrest.EntryCipher`` (AES-GCM, the raw key as associated data) around the forms
above; a value that fails to open is :class:`CorruptData`, like a failed crc.  Keys and
``M`` entries stay as they are (docs/security.md says what that leaves readable).  On a
volume encrypted from its creation an unsealed value is damage; a volume that existed
before encryption keeps its unsealed values readable (``plain_ok``), also when peers copy
them to a rebuilt node.

Writes go through :class:`Batch` and :meth:`Store.write` unsynced (WAL on, no fsync);
durability comes from :meth:`Store.flush_wal`, one fsync shared by every write of an
event-loop turn (``storage.walsync``); ``put(sync=True)`` would fsync once per write.
"""

from __future__ import annotations

import errno
import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import msgspec
from rocksdict import Options, ReadOptions, Rdict, WriteBatch, WriteOptions

from storage.atrest import SEALED, EntryCipher, Unopenable, WrongDataKey
from storage.records import LogRecord

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_MAX64 = 2**64 - 1
_rec_enc = msgspec.msgpack.Encoder()
_rec_dec = msgspec.msgpack.Decoder(LogRecord)
_trunc_dec = msgspec.msgpack.Decoder(list[tuple[int, int, int]])

TOMBSTONE = b"D"
_PUT = b"P"
_ENC_MARK, _ENC_MARK_TEXT = b"Menc", b"aes-256-gcm"  # see Store.seal_with
_hist_dec = msgspec.msgpack.Decoder(list[tuple[float, int]])


class CorruptData(Exception):
    """Stored bytes fail a checksum (ours or RocksDB's).  ``raw_key`` names the entry when
    it is known (None when RocksDB itself refused to read a block)."""

    def __init__(self, message: str, raw_key: bytes | None = None) -> None:
        super().__init__(message)
        self.raw_key = raw_key


class _Sealing:
    """How this process stores values: sealed under ``cipher`` or (None) as they are.  Set
    once at process start by :func:`use_cipher`; one storage node per process."""

    cipher: EntryCipher | None = None
    plain_ok: bool = True  # unsealed values are accepted (no cipher, or a pre-encryption store)


_sealing = _Sealing()


def use_cipher(cipher: EntryCipher | None, plain_ok: bool = False) -> None:
    """Seal every value this process writes from now on under ``cipher``; ``plain_ok``
    accepts unsealed values on read (a store that predates encryption)."""
    _sealing.cipher = cipher
    _sealing.plain_ok = plain_ok or cipher is None


def _unseal(raw_key: bytes, raw: bytes, what: str) -> bytes:
    """The plain form of a stored value; raises CorruptData."""
    if raw[:1] == SEALED:
        cipher = _sealing.cipher
        if cipher is None:
            raise CorruptData(f"{what} is encrypted and this process has no data key", raw_key)
        try:
            return cipher.open(raw_key, raw)
        except Unopenable as e:
            raise CorruptData(f"{what} fails authentication: {e}", raw_key) from None
    if not _sealing.plain_ok:
        raise CorruptData(f"{what} is not encrypted on an encrypted volume", raw_key)
    return raw


def _rocks_error(e: Exception) -> bool:
    return "Corruption" in str(e) or "checksum" in str(e).lower()


class _Reading:
    """``with _reading:`` around a RocksDB read: an error RocksDB raises for a damaged
    block becomes CorruptData (naming ``raw_key`` when known); others pass unchanged."""

    __slots__ = ("raw_key",)

    def __init__(self, raw_key: bytes | None = None) -> None:
        self.raw_key = raw_key

    def __enter__(self) -> None:
        return None

    def __exit__(self, et: object, e: BaseException | None, tb: object) -> bool:
        if isinstance(e, Exception) and not isinstance(e, CorruptData) and _rocks_error(e):
            raise CorruptData(str(e), self.raw_key) from e
        return False


_reading = _Reading()


def _ended(it: object) -> None:
    """An iterator stopped being valid: at the end of its range, or because RocksDB met an
    I/O or checksum error on the way.  Only ``status()`` tells the two apart (it raises for
    an error; a later seek would forget it), so every loop and every seek that comes back
    invalid asks it before taking "no more entries" for an answer."""
    try:
        it.status()  # type: ignore[attr-defined]
    except Exception as e:
        if _rocks_error(e):
            raise CorruptData(str(e)) from e
        raise OSError(f"storage read failed: {e}") from e


def encode_version(raw_key: bytes, value: bytes | None) -> bytes:
    body = TOMBSTONE if value is None else _PUT + value
    plain = body[:1] + _U32.pack(zlib.crc32(body, zlib.crc32(raw_key))) + body[1:]
    cipher = _sealing.cipher
    return plain if cipher is None else cipher.seal(raw_key, plain)


def decode_version(raw_key: bytes, raw: bytes) -> bytes | None:
    """The value (None for a tombstone); raises CorruptData if the checksum (or, sealed,
    the authentication tag) fails."""
    raw = _unseal(raw_key, raw, "version")
    if len(raw) < 5 or raw[:1] not in (_PUT, TOMBSTONE):
        raise CorruptData("version entry malformed", raw_key)
    body = raw[:1] + raw[5:]
    if _U32.unpack_from(raw, 1)[0] != zlib.crc32(body, zlib.crc32(raw_key)):
        raise CorruptData("version checksum mismatch", raw_key)
    if raw[:1] == TOMBSTONE:
        if len(raw) != 5:
            raise CorruptData("tombstone with a value", raw_key)
        return None
    return raw[5:]


def check_record(raw_key: bytes, raw: bytes) -> LogRecord:
    """Decode a stored log record and verify its crc and key; raises CorruptData."""
    raw = _unseal(raw_key, raw, "log record")
    try:
        rec = decode_record(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as e:
        raise CorruptData(f"log record undecodable: {e}", raw_key) from e
    if not rec.valid() or log_key(rec.pg, rec.lsn) != raw_key:
        raise CorruptData("log record checksum mismatch", raw_key)
    return rec


def parse_version_key(raw_key: bytes) -> tuple[int, bytes, int]:
    """(pg, user key, lsn) of a raw ``V`` key."""
    pg = _U32.unpack_from(raw_key, 1)[0]
    lsn = _MAX64 - _U64.unpack_from(raw_key, len(raw_key) - 8)[0]
    return pg, unescape(raw_key[5:-10]), lsn


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
    """The stored value of a log record (sealed when this process has a cipher)."""
    plain = _rec_enc.encode(rec)
    cipher = _sealing.cipher
    return plain if cipher is None else cipher.seal(log_key(rec.pg, rec.lsn), plain)


def decode_record(raw: bytes) -> LogRecord:
    """The record of an unsealed value (``check_record`` opens sealed ones first)."""
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
        k = version_key(pg, key, lsn)
        self.wb.put(k, encode_version(k, value))
        self.count += 1

    def put_versions(self, pg: int, lsn: int, pairs: list[tuple[bytes, bytes | None]]) -> int:
        """``put_version`` for many keys at one LSN (a PUTS record); returns how many."""
        head = b"V" + _U32.pack(pg)
        tail = b"\x00\x00" + _U64.pack(_MAX64 - lsn)
        put = self.wb.put
        crc32, u32 = zlib.crc32, _U32.pack
        cipher = _sealing.cipher
        for key, value in pairs:
            k = head + (key.replace(b"\x00", b"\x00\xff") if b"\x00" in key else key) + tail
            if value is None:
                v = TOMBSTONE + u32(crc32(TOMBSTONE, crc32(k)))
            else:
                v = _PUT + u32(crc32(value, crc32(_PUT, crc32(k)))) + value
            put(k, v if cipher is None else cipher.seal(k, v))
        self.count += len(pairs)
        return len(pairs)

    def put_raw(self, raw_key: bytes, raw_value: bytes) -> None:
        self.wb.put(raw_key, raw_value)
        self.count += 1

    def delete_raw(self, raw_key: bytes) -> None:
        self.wb.delete(raw_key)
        self.count += 1

    def delete_range(self, begin: bytes, end: bytes) -> None:
        """Delete every key with begin <= key < end."""
        self.wb.delete_range(begin, end)
        self.count += 1

    def delete_version(self, pg: int, key: bytes, lsn: int) -> None:
        self.wb.delete(version_key(pg, key, lsn))
        self.count += 1

    def put_range_tombstone(self, pg: int, lsn: int, prefix: bytes) -> None:
        """Remember a materialised DELETE_PREFIX record until GC applies it."""
        self.wb.put(range_tombstone_key(pg, lsn), prefix)
        self.count += 1

    def delete_range_tombstone(self, pg: int, lsn: int) -> None:
        self.wb.delete(range_tombstone_key(pg, lsn))
        self.count += 1

    def put_meta_int(self, name: bytes, value: int) -> None:
        self.wb.put(b"M" + name, _U64.pack(value))
        self.count += 1

    def put_materialized(self, pg: int, lsn: int) -> None:
        self.put_meta_int(b"mat" + _U32.pack(pg), lsn)

    def put_truncations(self, truncs: list[tuple[int, int, int]]) -> None:
        self.wb.put(b"Mtrunc", msgspec.msgpack.encode([list(t) for t in truncs]))
        self.count += 1

    def put_pg_meta(self, name: bytes, pg: int, value: int) -> None:
        self.put_meta_int(name + _U32.pack(pg), value)

    def put_history(self, hist: list[tuple[float, int]]) -> None:
        self.wb.put(b"Mhist", msgspec.msgpack.encode([list(h) for h in hist]))
        self.count += 1


def _write_error(e: Exception) -> Exception:
    """What a failed RocksDB write means: damage (CorruptData: the store must be rebuilt),
    a full disk (OSError ENOSPC) or another I/O error (OSError EIO)."""
    if _rocks_error(e):
        return CorruptData(str(e))
    if "No space" in str(e) or "ENOSPC" in str(e):
        return OSError(errno.ENOSPC, f"no space left on device: {e}")
    return OSError(errno.EIO, f"storage write failed: {e}")


class Store:
    # Fault hook: while True every write fails as on a full disk (the node sets it while
    # a ``FAULT_ENOSPC`` file exists in its directory; see storage.node).
    full = False

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        opts = Options(raw_mode=True)
        opts.create_if_missing(True)
        self.db = Rdict(str(path), options=opts)
        self._wopts = WriteOptions()
        self._wopts.sync = False
        if _sealing.cipher is not None:  # a store made afresh by a sealing process (scrub's rebuild)
            self._mark_if_empty(_sealing.cipher)

    def _mark_if_empty(self, cipher: EntryCipher) -> None:
        """Mark a store that holds no value yet as encrypted (``seal_with``)."""
        try:
            if self.get_raw(_ENC_MARK) is None and self._holds_no_values():
                self.db.put(_ENC_MARK, cipher.seal(_ENC_MARK, _ENC_MARK_TEXT), self._wopts)
                self.db.flush_wal(True)
        except CorruptData:
            pass

    def seal_with(self, cipher: EntryCipher, strict: bool = True) -> bool:
        """Seal this process's writes under ``cipher`` (``use_cipher``).  A store made
        encrypted (marked ``Menc``), or empty and marked now, accepts only sealed values
        when ``strict`` (a volume encrypted from its creation: no node or peer holds an
        unsealed value); one that already holds unsealed ones (made before encryption), or
        on a volume that had some, accepts both.  Returns True when the store is marked.
        Damage met while finding out (the scrubber repairs it later) accepts both forms
        meanwhile: unsealed values still pass their crc.

        The mark is itself a value sealed under the data key: a store sealed under another
        data key (a cluster.json whose key was replaced) raises WrongDataKey here, at open,
        instead of every read finding "damage" that no repair can fix."""
        try:
            mark = self.get_raw(_ENC_MARK)
            if mark is None:
                self._mark_if_empty(cipher)
            else:
                try:
                    if cipher.open(_ENC_MARK, mark) != _ENC_MARK_TEXT:
                        raise Unopenable("unexpected mark")
                except Unopenable:
                    raise WrongDataKey(
                        f"{self.path} was encrypted under another data key than cluster.json's "
                        "(was cluster.json's encryption.wrapped_dek replaced?)") from None
            marked = self.get_raw(_ENC_MARK) is not None
        except CorruptData:
            marked = False
        use_cipher(cipher, plain_ok=not (marked and strict))
        return marked

    def _holds_no_values(self) -> bool:
        return all(next(self.iter_raw(lo, hi), None) is None for lo, hi in ((b"L", b"M"), (b"V", b"W")))

    # --- writes ----------------------------------------------------------------------
    def write(self, batch: Batch) -> None:
        """Apply ``batch`` atomically; raises CorruptData or OSError (nothing applied)."""
        if batch.count:
            if self.full:
                raise OSError(errno.ENOSPC, "no space left on device (FAULT_ENOSPC)")
            try:
                self.db.write(batch.wb, self._wopts)
            except Exception as e:
                raise _write_error(e) from e

    def flush_wal(self) -> None:
        """fsync the WAL: every write made before this call becomes durable.  Blocking
        (releases the GIL); ``storage.walsync`` calls it once per event-loop turn."""
        self.db.flush_wal(True)

    def close(self) -> None:
        self.db.flush_wal(True)
        try:
            self.db.flush()  # memtable -> SST: the next open replays no WAL
        except Exception:  # noqa: BLE001 -- a damaged db still closes
            pass
        self.db.close()

    def close_damaged(self) -> None:
        """Close without flushing the memtable (the files may be unreadable)."""
        try:
            self.db.flush_wal(True)
        except Exception:  # noqa: BLE001
            pass
        try:
            self.db.close()
        except Exception:  # noqa: BLE001 -- RocksDB reports its background error again on close
            pass

    # --- metadata --------------------------------------------------------------------
    def get_meta_int(self, name: bytes, default: int = 0) -> int:
        raw = self.db.get(b"M" + name)
        return default if raw is None else _U64.unpack(raw)[0]

    def get_materialized(self, pg: int) -> int:
        return self.get_meta_int(b"mat" + _U32.pack(pg))

    def get_pg_meta(self, name: bytes, pg: int) -> int:
        return self.get_meta_int(name + _U32.pack(pg))

    def get_history(self) -> list[tuple[float, int]]:
        raw = self.db.get(b"Mhist")
        return [] if raw is None else [tuple(h) for h in _hist_dec.decode(raw)]  # type: ignore[misc]

    def get_truncations(self) -> list[tuple[int, int, int]]:
        raw = self.db.get(b"Mtrunc")
        return [] if raw is None else [tuple(t) for t in _trunc_dec.decode(raw)]  # type: ignore[misc]

    def range_tombstones(self, pg: int, upto_lsn: int) -> list[tuple[int, bytes]]:
        """(lsn, prefix) of the PG's pending range tombstones with lsn <= upto_lsn."""
        lo = range_tombstone_key(pg, 0)
        hi = range_tombstone_key(pg, min(upto_lsn, _MAX64 - 1) + 1)
        return [(_U64.unpack_from(k, len(k) - 8)[0], v) for k, v in self.iter_raw(lo, hi)]

    # --- the log ---------------------------------------------------------------------
    def iter_log(
        self,
        pg: int,
        after_lsn: int,
        upto_lsn: int | None = None,
        on_corrupt: Callable[[CorruptData], None] | None = None,
    ) -> Iterator[LogRecord]:
        """Records of ``pg`` with after_lsn < lsn (<= upto_lsn), in LSN order, each
        verified.  A damaged record raises CorruptData, or, with ``on_corrupt``, is
        reported to it and skipped (RocksDB block errors always raise)."""
        with _reading:
            yield from self._iter_log(pg, after_lsn, upto_lsn, on_corrupt)

    def _iter_log(
        self, pg: int, after_lsn: int, upto_lsn: int | None, on_corrupt: Callable[[CorruptData], None] | None
    ) -> Iterator[LogRecord]:
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
            try:
                rec = check_record(k, it.value())
            except CorruptData as e:
                if on_corrupt is None:
                    raise
                on_corrupt(e)
            else:
                yield rec
            it.next()
        else:
            _ended(it)

    def last_log_lsn(self, pg: int, upto_lsn: int) -> int:
        """Highest LSN of ``pg`` held with lsn <= upto_lsn (0 if none).  Raises CorruptData."""
        with _reading:
            it = self.db.iter(ReadOptions())
            it.seek_for_prev(log_key(pg, upto_lsn))
            if not it.valid():
                _ended(it)
                return 0
        k = it.key()
        if k[:5] == b"L" + _U32.pack(pg):
            return _U64.unpack_from(k, 5)[0]
        return 0

    # --- versions --------------------------------------------------------------------
    def read_version(self, pg: int, key: bytes, at_lsn: int) -> tuple[int, bytes | None] | None:
        """Newest version of ``key`` with lsn <= at_lsn: (lsn, value or None for a delete),
        or None when the key has no such version.  Raises CorruptData."""
        with _reading:
            return self._read_version(pg, key, at_lsn)

    def _read_version(self, pg: int, key: bytes, at_lsn: int) -> tuple[int, bytes | None] | None:
        prefix = version_prefix(pg, key)
        it = self.db.iter(ReadOptions())
        it.seek(prefix + _U64.pack(_MAX64 - at_lsn))
        if not it.valid():
            _ended(it)
            return None
        k = it.key()
        if len(k) != len(prefix) + 8 or not k.startswith(prefix):
            return None
        lsn = _MAX64 - _U64.unpack_from(k, len(prefix))[0]
        return lsn, decode_version(k, it.value())

    def scan_versions(
        self, pg: int, prefix: bytes, at_lsn: int, after: bytes | None, limit: int, deletes: bool = False
    ) -> tuple[list[tuple[bytes, int, bytes | None]], bool]:
        """Live keys starting with ``prefix`` (and > ``after``), each with its newest
        version <= at_lsn, in key order (``deletes``: deleted keys too, value None).
        Returns (items, done).  Raises CorruptData."""
        with _reading:
            return self._scan_versions(pg, prefix, at_lsn, after, limit, deletes)

    def _scan_versions(
        self, pg: int, prefix: bytes, at_lsn: int, after: bytes | None, limit: int, deletes: bool = False
    ) -> tuple[list[tuple[bytes, int, bytes | None]], bool]:
        head = b"V" + _U32.pack(pg)
        raw_prefix = head + escape(prefix)
        if after is not None and after >= prefix:
            # Just past every version of ``after``: its keys continue with 00 00.
            start = head + escape(after) + b"\x00\x01"
            if start < raw_prefix:
                start = raw_prefix
        else:
            start = raw_prefix
        items: list[tuple[bytes, int, bytes | None]] = []
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
            v = decode_version(k, it.value())
            if v is not None or deletes:
                if len(items) >= limit:
                    return items, False
                items.append((unescape(ekey), lsn, v))
            it.next()
        _ended(it)  # also covers a re-seek above that came back invalid
        return items, True

    # --- whole-store walks (scrub, GC, bulk copy) ------------------------------------------
    def iter_raw(self, begin: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Raw (key, value) pairs with begin <= key < end.  RocksDB block errors become
        CorruptData (the walk cannot go on past them)."""
        with _reading:
            it = self.db.iter(ReadOptions())
            it.seek(begin)
            while it.valid():
                k = it.key()
                if k >= end:
                    return
                yield k, it.value()
                it.next()
            _ended(it)

    def get_raw(self, raw_key: bytes) -> bytes | None:
        with _Reading(raw_key):
            return self.db.get(raw_key)

    def verify_files(self) -> None:
        """Ask RocksDB to read and checksum every block of every file (CorruptData)."""
        for _ in self.iter_raw(b"", b"\xff"):
            pass


def pg_log_range(pg: int) -> tuple[bytes, bytes]:
    return b"L" + _U32.pack(pg), b"L" + _U32.pack(pg + 1)


def pg_version_range(pg: int) -> tuple[bytes, bytes]:
    return b"V" + _U32.pack(pg), b"V" + _U32.pack(pg + 1)


def prefix_version_range(pg: int, prefix: bytes) -> tuple[bytes, bytes]:
    """[begin, end) of the raw keys of every version of every user key of ``pg`` that
    starts with ``prefix`` (escaping keeps a key's escaped form starting with its prefix's)."""
    begin = b"V" + _U32.pack(pg) + escape(prefix)
    end = begin.rstrip(b"\xff")  # never empty: it starts with b"V"
    return begin, end[:-1] + bytes([end[-1] + 1])


def range_tombstone_key(pg: int, lsn: int) -> bytes:
    return b"Mrt" + _U32.pack(pg) + _U64.pack(lsn)
