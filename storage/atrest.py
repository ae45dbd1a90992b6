"""Encryption at rest: the keys and the sealing of stored values.

Two keys:

* the **KEK** (key-encryption key, 256 bits) is held outside the data directory: the
  ``BOREALIS_KEK`` environment variable (hex or base64), else the file named by
  ``kek_file`` in cluster.json (``borealis up --kek-file PATH``), else the default file
  ``$XDG_CONFIG_HOME/borealis/kek`` (``~/.config/borealis/kek``), which ``ensure_default_kek``
  creates (mode 0600) for local use.  A key file holds the key as hex or base64 text.
* the **DEK** (data key, 256 bits) is one per volume, made when the cluster is created and
  stored in cluster.json only wrapped by the KEK (AES key wrap, RFC 3394, whose integrity
  check tells a wrong KEK apart from the right one: ``WrongKek``).

Storage nodes seal the values of their ``L`` and ``V`` entries with AES-256-GCM
(:class:`EntryCipher`); the entry's raw RocksDB key is the associated data, so a value moved
to another key fails to open.  A sealed value is::

    b"E" + salt (8 bytes) + nonce (12 bytes) + ciphertext + tag (16 bytes)

``salt`` names a subkey, HKDF-SHA256(DEK, salt): each process seals under a subkey of its
own (a fresh random salt) and numbers its nonces with a counter that starts at a random
96-bit value; after ``SUBKEY_LIMIT`` seals it takes a new subkey.  So no (key, nonce) pair
is ever used twice -- that would need two processes to draw the same 64-bit salt *and*
overlapping 2**32-long stretches of a 2**96 counter space -- however long the volume lives
and however many nodes write it; a random nonce per entry would reach GCM's 2**32-message
bound under one key within hours on a busy volume, and costs a getrandom call per entry.
Every node can open every node's entries (peers copy raw entries to each other), as all
subkeys come from the one DEK.

This module knows nothing of RocksDB; ``storage.store`` applies it to entries.
"""

from __future__ import annotations

import base64
import binascii
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap, aes_key_wrap

KEK_ENV = "BOREALIS_KEK"
SEALED = b"E"
_SALT, _NONCE, _TAG = 8, 12, 16
OVERHEAD = 1 + _SALT + _NONCE + _TAG
SUBKEY_LIMIT = 1 << 32
_NONCE_SPACE = 1 << 96
_INFO = b"borealis entry v1"
_MAX_SUBKEYS = 4096  # opened subkeys kept (one per node process that ever wrote the volume)


class KeyUnavailable(Exception):
    """A key cannot be found or read; the message says which and where."""


class WrongKek(KeyUnavailable):
    """The KEK does not unwrap the volume's data key: it is not the KEK the volume was made with."""


class WrongDataKey(KeyUnavailable):
    """A store's data was sealed under another data key than the one this process has."""


class Unopenable(Exception):
    """A sealed value fails to open (damaged, moved to another key, or another volume's)."""


def default_kek_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "borealis" / "kek"


def parse_key(text: str, where: str) -> bytes:
    """A 256-bit key from hex (64 digits) or base64 text."""
    t = text.strip()
    key: bytes | None = None
    if len(t) == 64:
        try:
            key = bytes.fromhex(t)
        except ValueError:
            key = None
    if key is None:
        try:
            key = base64.b64decode(t, validate=True)
        except (binascii.Error, ValueError):
            key = None
    if key is None or len(key) != 32:
        raise KeyUnavailable(f"{where}: not a 256-bit key (64 hex digits or 44 base64 characters)")
    return key


def ensure_default_kek(path: Path | None = None) -> Path:
    """Create the default KEK file (mode 0600, directory 0700) unless it exists.  Two
    processes racing here end up with the same key: the file appears whole or not at all."""
    path = path or default_kek_path()
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".kek.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(os.urandom(32).hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    try:
        os.link(tmp, path)  # fails if another process made it first: theirs is kept
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_kek(kek_file: str | Path | None) -> bytes:
    """The KEK: ``BOREALIS_KEK``, else ``kek_file``, else the default file (not created here)."""
    env = os.environ.get(KEK_ENV)
    if env:
        return parse_key(env, f"${KEK_ENV}")
    return load_kek_file(Path(kek_file) if kek_file else default_kek_path())


def load_kek_file(path: Path) -> bytes:
    try:
        text = path.read_text()
    except OSError as e:
        raise KeyUnavailable(f"cannot read the key-encryption key {path}: {e.strerror or e}") from None
    return parse_key(text, str(path))


def new_wrapped_dek(kek: bytes) -> str:
    """A fresh data key, wrapped by ``kek`` (base64 text for cluster.json)."""
    return wrap_dek(kek, AESGCM.generate_key(256))


def wrap_dek(kek: bytes, dek: bytes) -> str:
    return base64.b64encode(aes_key_wrap(kek, dek)).decode()


def unwrap_dek(kek: bytes, wrapped: str) -> bytes:
    try:
        return aes_key_unwrap(kek, base64.b64decode(wrapped))
    except (InvalidUnwrap, ValueError, binascii.Error):
        raise WrongKek(
            "the key-encryption key does not unwrap this volume's data key: it is not the key "
            f"the cluster was created with (check --kek-file / ${KEK_ENV})") from None


class EntryCipher:
    """Seals and opens stored values under one volume's data key (one object per process)."""

    def __init__(self, dek: bytes) -> None:
        self._dek = dek
        self._open: dict[bytes, AESGCM] = {}
        self._salt = b""
        self._aead: AESGCM | None = None
        self._next = self._end = 0  # counter of the next nonce; a new subkey at _end

    def _subkey(self, salt: bytes) -> AESGCM:
        aead = self._open.get(salt)
        if aead is None:
            key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=_INFO).derive(self._dek)
            if len(self._open) >= _MAX_SUBKEYS:
                self._open.pop(next(iter(self._open)))
            aead = self._open[salt] = AESGCM(key)
        return aead

    def _new_subkey(self) -> None:
        self._salt = os.urandom(_SALT)
        self._aead = self._subkey(self._salt)
        self._next = int.from_bytes(os.urandom(_NONCE), "big")
        self._end = self._next + SUBKEY_LIMIT

    def seal(self, aad: bytes, plain: bytes) -> bytes:
        n = self._next
        if n >= self._end:
            self._new_subkey()
            n = self._next
        self._next = n + 1
        nonce = (n % _NONCE_SPACE).to_bytes(_NONCE, "big")
        return SEALED + self._salt + nonce + self._aead.encrypt(nonce, plain, aad)  # type: ignore[union-attr]

    def open(self, aad: bytes, sealed: bytes) -> bytes:
        """The plain value; raises Unopenable."""
        if len(sealed) < OVERHEAD or sealed[:1] != SEALED:
            raise Unopenable("not a sealed value")
        salt = sealed[1:1 + _SALT]
        nonce = sealed[1 + _SALT:1 + _SALT + _NONCE]
        try:
            return self._subkey(salt).decrypt(nonce, sealed[1 + _SALT + _NONCE:], aad)
        except InvalidTag:
            raise Unopenable("authentication tag mismatch") from None
