"""Encryption at rest on one store, in process (a real RocksDB in a tmp dir): values of log
records and versions are sealed, open only under their own raw key and data key, and any
damage is CorruptData -- the same error a failed crc gives, so damage detection is unchanged.
The whole-cluster checks (no secret in any file, modes, a wrong KEK) are in
tests/test_secrets_at_rest.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage import atrest
from storage.atrest import EntryCipher
from storage.records import PUT, LogRecord
from storage.store import Batch, CorruptData, Store, check_record, log_key, pg_version_range, use_cipher, version_key

SECRET = b"at-rest-secret-value-7f3a"


@pytest.fixture
def cipher() -> Iterator[EntryCipher]:
    c = EntryCipher(os.urandom(32))
    yield c
    use_cipher(None)  # the process-wide setting goes back to unsealed for other tests


def _record(lsn: int, value: bytes) -> LogRecord:
    return LogRecord(lsn=lsn, pg=0, prev_lsn=lsn - 1, txid=1, kind=PUT, key=b"k%d" % lsn, value=value, epoch=1).sealed()


def _files_hold(path: Path, needle: bytes) -> list[str]:
    return [p.name for p in path.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_sealed_values_round_trip_and_leave_no_plain_text(tmp_path: Path, cipher: EntryCipher) -> None:
    store = Store(tmp_path / "db")
    assert store.seal_with(cipher)  # empty: marked encrypted
    b = Batch()
    b.put_log(_record(1, SECRET + b"-log"))
    b.put_version(0, b"k1", 1, SECRET + b"-one")
    b.put_versions(0, 2, [(b"k2", SECRET + b"-many"), (b"k\x003", None)])
    store.write(b)
    rec = check_record(log_key(0, 1), store.get_raw(log_key(0, 1)))
    assert rec.value == SECRET + b"-log"
    assert store.read_version(0, b"k1", 5) == (1, SECRET + b"-one")
    items, done = store.scan_versions(0, b"k", 5, None, 10, deletes=True)
    assert done and items == [(b"k\x003", 2, None), (b"k1", 1, SECRET + b"-one"), (b"k2", 2, SECRET + b"-many")]
    for _k, v in store.iter_raw(b"L", b"W"):
        if _k[:1] in (b"L", b"V"):
            assert v[:1] == atrest.SEALED and SECRET not in v
    store.close()  # memtable -> SST, WAL synced
    assert any(p.suffix == ".sst" for p in (tmp_path / "db").iterdir())
    assert _files_hold(tmp_path / "db", SECRET) == []
    # reopened (a new process would install the cipher the same way): still readable
    store = Store(tmp_path / "db")
    assert store.seal_with(cipher)
    assert store.read_version(0, b"k2", 5) == (2, SECRET + b"-many")
    store.close()


def test_damage_a_moved_value_and_another_key_are_corrupt_data(tmp_path: Path, cipher: EntryCipher) -> None:
    store = Store(tmp_path / "db")
    store.seal_with(cipher)
    b = Batch()
    b.put_version(0, b"a", 1, b"value-a")
    b.put_version(0, b"b", 1, b"value-b")
    b.put_log(_record(1, b"log-1"))
    b.put_log(_record(2, b"log-2"))
    store.write(b)
    ka, kb = version_key(0, b"a", 1), version_key(0, b"b", 1)
    raw_a = store.get_raw(ka)

    # a flipped byte anywhere in the sealed value fails the tag
    for at in (1, 10, len(raw_a) // 2, len(raw_a) - 1):
        bad = bytearray(raw_a)
        bad[at] ^= 0x01
        fix = Batch()
        fix.put_raw(ka, bytes(bad))
        store.write(fix)
        with pytest.raises(CorruptData) as e:
            store.read_version(0, b"a", 5)
        assert e.value.raw_key == ka
    # a's sealed value moved under b's key: refused (the raw key is the associated data)
    move = Batch()
    move.put_raw(kb, raw_a)
    store.write(move)
    with pytest.raises(CorruptData):
        store.read_version(0, b"b", 5)
    # the same for log records: record 1's value stored at lsn 2
    mv = Batch()
    mv.put_raw(log_key(0, 2), store.get_raw(log_key(0, 1)))
    store.write(mv)
    with pytest.raises(CorruptData):
        list(store.iter_log(0, 1))
    assert [r.lsn for r in store.iter_log(0, 0, 1)] == [1]
    # an unsealed value on a store made encrypted is damage too, not a silent downgrade
    plain = Batch()
    use_cipher(None)
    plain.put_version(0, b"c", 1, b"value-c")
    store.seal_with(cipher)
    store.write(plain)
    with pytest.raises(CorruptData):
        store.read_version(0, b"c", 5)
    # another volume's data key opens nothing
    use_cipher(EntryCipher(os.urandom(32)))
    with pytest.raises(CorruptData):
        check_record(log_key(0, 1), store.get_raw(log_key(0, 1)))
    store.close_damaged()


def test_a_store_made_afresh_by_a_sealing_process_is_marked(tmp_path: Path, cipher: EntryCipher) -> None:
    """What the scrubber's rebuild does: a new empty store while the process seals."""
    first = Store(tmp_path / "a")
    first.seal_with(cipher)
    fresh = Store(tmp_path / "b")  # marked at once: a restart finds it encrypted
    b = Batch()
    b.put_version(0, b"k", 1, b"v")
    fresh.write(b)
    fresh.close()
    again = Store(tmp_path / "b")
    assert again.seal_with(cipher)
    with pytest.raises(atrest.WrongDataKey):
        again.seal_with(EntryCipher(os.urandom(32)))
    again.close()
    first.close()


def test_a_store_sealed_under_another_data_key_refuses_to_open(tmp_path: Path, cipher: EntryCipher) -> None:
    store = Store(tmp_path / "db")
    assert store.seal_with(cipher)
    b = Batch()
    b.put_version(0, b"a", 1, b"value-a")
    store.write(b)
    store.close()
    store = Store(tmp_path / "db")
    with pytest.raises(atrest.WrongDataKey, match="another data key"):
        store.seal_with(EntryCipher(os.urandom(32)))
    assert store.seal_with(cipher)  # the right key still opens it
    assert store.read_version(0, b"a", 1) == (1, b"value-a")
    store.close()


def test_a_store_from_before_encryption_stays_readable(tmp_path: Path, cipher: EntryCipher) -> None:
    store = Store(tmp_path / "db")
    old = Batch()
    old.put_version(0, b"old", 1, b"unsealed")  # written by a version without encryption
    store.write(old)
    assert not store.seal_with(cipher)  # holds values already: not marked, both forms read
    new = Batch()
    new.put_version(0, b"new", 2, b"sealed")
    new.put_log(_record(3, b"v"))
    store.write(new)
    assert store.read_version(0, b"old", 5) == (1, b"unsealed")
    assert store.read_version(0, b"new", 5) == (2, b"sealed")
    lo, hi = pg_version_range(0)
    store_values = list(store.iter_raw(lo, hi))
    kinds = sorted(v[:1] for _k, v in store_values)
    assert kinds == [atrest.SEALED, b"P"]
    store.close()
    # a node of such a volume rebuilt from empty takes its peers' unsealed copies (not strict)
    empty = Store(tmp_path / "rebuilt")
    assert empty.seal_with(cipher, strict=False)
    copy = Batch()
    copy.put_raw(version_key(0, b"old", 1), dict(store_values)[version_key(0, b"old", 1)])
    empty.write(copy)
    assert empty.read_version(0, b"old", 5) == (1, b"unsealed")
    empty.close()


def test_kek_wraps_the_data_key_and_a_wrong_kek_is_told_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(atrest.KEK_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = atrest.ensure_default_kek()
    assert path == tmp_path / "config" / "borealis" / "kek"
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert atrest.ensure_default_kek() == path  # kept, not replaced
    kek = atrest.load_kek(None)
    wrapped = atrest.new_wrapped_dek(kek)
    dek = atrest.unwrap_dek(kek, wrapped)
    assert len(dek) == 32 and dek not in wrapped.encode()
    with pytest.raises(atrest.WrongKek, match="does not unwrap"):
        atrest.unwrap_dek(os.urandom(32), wrapped)
    # BOREALIS_KEK (hex or base64) comes before any file
    import base64

    other = os.urandom(32)
    monkeypatch.setenv(atrest.KEK_ENV, base64.b64encode(other).decode())
    assert atrest.load_kek(path) == other
    monkeypatch.setenv(atrest.KEK_ENV, other.hex())
    assert atrest.load_kek(path) == other
    monkeypatch.setenv(atrest.KEK_ENV, "not a key")
    with pytest.raises(atrest.KeyUnavailable, match="not a 256-bit key"):
        atrest.load_kek(path)
    monkeypatch.delenv(atrest.KEK_ENV)
    with pytest.raises(atrest.KeyUnavailable, match="cannot read"):
        atrest.load_kek(tmp_path / "missing")


def test_subkeys_rotate_and_every_subkey_opens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atrest, "SUBKEY_LIMIT", 3)
    dek = os.urandom(32)
    writer, reader = EntryCipher(dek), EntryCipher(dek)  # two processes of one volume
    sealed = [writer.seal(b"key%d" % i, b"v%d" % i) for i in range(7)]
    salts = {s[1:9] for s in sealed}
    assert len(salts) == 3  # a new subkey every 3 seals
    nonces = [s[1:21] for s in sealed]  # (salt, nonce): never the same twice
    assert len(set(nonces)) == len(nonces)
    assert [reader.open(b"key%d" % i, s) for i, s in enumerate(sealed)] == [b"v%d" % i for i in range(7)]


def test_bench_atrest_reports_every_figure() -> None:
    """``python -m bench.atrest`` end to end, tiny: every figure, both modes, JSON."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    p = subprocess.run([sys.executable, "-m", "bench.atrest", "--n", "200", "--node", "30", "--json"],
                       cwd=root, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    figs = json.loads(p.stdout)["us_per_entry"]
    ops = {"version_write", "version_write_bulk", "version_read", "record_write", "record_read", "node_append_cpu"}
    assert set(figs) == {"plain", "sealed"} and all(set(f) == ops for f in figs.values())
    assert all(v > 0 for f in figs.values() for v in f.values())
