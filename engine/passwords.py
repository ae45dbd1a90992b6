"""Stored password forms of roles (``pg_authid.rolpassword``), as PostgreSQL writes them.

* SCRAM-SHA-256 (``password_encryption = scram-sha-256``, the default)::

      SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>

  salt random (16 bytes), 4096 iterations; the password is SASLprep'ed first (scramp).
* MD5 (``password_encryption = md5``): ``"md5" + hex(md5(password + role name))`` -- so it
  depends on the name, and a rename clears it.

A password given already in either form (``\\password`` in psql sends a SCRAM verifier it
computed itself) is stored as given.  Nothing here keeps or logs a clear-text password.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re

import scramp

SCRAM = "SCRAM-SHA-256"
ITERATIONS = 4096
_MD5_RE = re.compile(r"md5[0-9a-f]{32}")

Verifier = tuple  # (salt, stored_key, server_key, iterations) -- scramp's auth_info


def _salted(password: str, salt: bytes, iterations: int) -> bytes:
    try:
        prepared = scramp.core.saslprep(password)
    except Exception:  # noqa: BLE001 -- not preparable: hashed as given, as PostgreSQL does
        prepared = password
    return hashlib.pbkdf2_hmac("sha256", prepared.encode(), salt, iterations)


def make_scram(password: str, iterations: int = ITERATIONS, salt: bytes | None = None) -> Verifier:
    """A SCRAM verifier for ``password`` (a fresh random salt unless given)."""
    salt = os.urandom(16) if salt is None else salt
    salted = _salted(password, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    return (salt, hashlib.sha256(client_key).digest(), server_key, iterations)


def scram_text(v: Verifier) -> str:
    salt, stored, server, iters = v
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"{SCRAM}${iters}:{b64(salt)}${b64(stored)}:{b64(server)}"


def parse_scram(text: str | None) -> Verifier | None:
    """Inverse of ``scram_text``; None if ``text`` is not a well-formed SCRAM verifier."""
    if not text or not text.startswith(SCRAM + "$"):
        return None
    try:
        _mech, head, keys = text.split("$")
        iters, salt = head.split(":")
        stored, server = keys.split(":")
        d = lambda s: base64.b64decode(s, validate=True)  # noqa: E731
        v = (d(salt), d(stored), d(server), int(iters))
    except (ValueError, TypeError):
        return None
    if v[3] <= 0 or len(v[1]) != 32 or len(v[2]) != 32:
        return None
    return v


def is_md5(text: str | None) -> bool:
    return bool(text) and _MD5_RE.fullmatch(text) is not None  # type: ignore[arg-type]


def md5_text(password: str, role: str) -> str:
    return "md5" + hashlib.md5((password + role).encode()).hexdigest()


def encrypt(password: str, role: str, method: str) -> str:
    """What ``rolpassword`` stores for ``PASSWORD 'password'`` under ``password_encryption = method``."""
    if parse_scram(password) is not None or is_md5(password):
        return password  # already hashed by the client: kept as is
    if method.strip().lower() == "md5":
        return md5_text(password, role)
    return scram_text(make_scram(password))


def scram_matches(v: Verifier, password: str) -> bool:
    """Does clear-text ``password`` match verifier ``v``?  (StoredKey = H(HMAC(SaltedPassword, "Client Key")))"""
    salt, stored, _server, iters = v
    salted = _salted(password, salt, iters)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return hmac.compare_digest(hashlib.sha256(client_key).digest(), stored)


def plain_matches(stored: str | None, password: str, role: str) -> bool:
    """Clear-text ``password`` (password method) against a stored verifier of either form."""
    v = parse_scram(stored)
    if v is not None:
        return scram_matches(v, password)
    if is_md5(stored):
        return hmac.compare_digest(md5_text(password, role), stored)  # type: ignore[arg-type]
    return False
