"""Client authentication as a small state machine with no I/O.

``Authenticator.start(user)`` returns the first Authentication* message to send (or
AuthenticationOk for trust); ``step(data)`` consumes the body of each 'p' message and
returns ``(reply_bytes, done)``.  Failure raises ``InvalidPassword`` (28P01, FATAL).

Methods
-------
* ``trust``          -- AuthenticationOk at once.
* ``password``       -- AuthenticationCleartextPassword (3); 'p' carries password\\0.
* ``md5``            -- AuthenticationMD5Password (5, 4-byte salt); the client answers
  ``"md5" + hex(md5(hex(md5(password + user)) + salt))``.
* ``scram-sha-256``  -- AuthenticationSASL (10) listing SCRAM-SHA-256; the client's
  SASLInitialResponse is ``mechanism\\0 int32 len data``; we answer SASLContinue (11) with
  the server-first message, then SASLFinal (12) with the server signature, then Ok.
  The crypto is ``scramp``'s; the server keeps only the verifier (salt, StoredKey,
  ServerKey, iterations), never the password.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass
from typing import Any

import scramp

from engine.errors import InvalidPassword, SqlError
from server.pgwire import messages as m

METHODS = ("trust", "password", "md5", "scram-sha-256")
_SCRAM = "SCRAM-SHA-256"


@dataclass(frozen=True)
class AuthConfig:
    """What the server knows about credentials: one password for every user (or none)."""

    method: str = "trust"
    password: str | None = None  # kept for cleartext / md5 only
    scram_verifier: tuple | None = None  # scramp auth_info: (salt, stored_key, server_key, iterations)

    @classmethod
    def build(cls, password: str | None, method: str = "scram-sha-256") -> "AuthConfig":
        if password is None:
            return cls("trust")
        if method not in METHODS:
            raise ValueError(f"unknown auth method {method!r}")
        if method == "scram-sha-256":
            verifier = scramp.ScramMechanism(_SCRAM).make_auth_info(password)
            return cls(method, None, verifier)
        return cls(method, password)


def _failed(user: str) -> SqlError:
    return InvalidPassword(f'password authentication failed for user "{user}"')


class Authenticator:
    """One connection's authentication exchange."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self.user = ""
        self._salt = b""
        self._scram: Any = None
        self._stage = 0

    def start(self, user: str) -> tuple[bytes, bool]:
        self.user = user
        method = self.config.method
        if method == "trust":
            return m.AUTH_OK, True
        if method == "password":
            return m.AUTH_CLEARTEXT, False
        if method == "md5":
            self._salt = os.urandom(4)
            return m.auth_md5_msg(self._salt), False
        verifier = self.config.scram_verifier
        self._scram = scramp.ScramMechanism(_SCRAM).make_server(lambda _username: verifier)
        return m.auth_sasl_msg([_SCRAM]), False

    def step(self, data: bytes) -> tuple[bytes, bool]:
        method = self.config.method
        if method == "password":
            given = data.rstrip(b"\0")
            if not hmac.compare_digest(given, (self.config.password or "").encode()):
                raise _failed(self.user)
            return m.AUTH_OK, True
        if method == "md5":
            pw = self.config.password or ""
            inner = hashlib.md5((pw + self.user).encode()).hexdigest().encode()
            want = b"md5" + hashlib.md5(inner + self._salt).hexdigest().encode()
            if not hmac.compare_digest(data.rstrip(b"\0"), want):
                raise _failed(self.user)
            return m.AUTH_OK, True
        if method == "scram-sha-256":
            return self._scram_step(data)
        raise _failed(self.user)

    def _set_client_first(self, client_first: str) -> None:
        """libpq and asyncpg send an empty SCRAM user name (``n,,n=,r=...``; PostgreSQL
        takes the user from the startup packet) but scramp refuses empty names.  So scramp
        parses a copy naming ``*`` and then gets the client's own bare message back, which
        is what both sides sign (RFC 5802 AuthMessage)."""
        head_end = client_first.find(",", client_first.find(",") + 1) + 1
        bare = client_first[head_end:]
        if head_end and bare.startswith("n=,"):
            self._scram.set_client_first(client_first[:head_end] + "n=*," + bare[3:])
            self._scram.client_first_bare = bare
        else:
            self._scram.set_client_first(client_first)

    def _scram_step(self, data: bytes) -> tuple[bytes, bool]:
        try:
            if self._stage == 0:
                mech_end = data.index(b"\0")
                mech = data[:mech_end].decode()
                if mech != _SCRAM:
                    raise InvalidPassword(
                        "client selected an invalid SASL authentication mechanism", sqlstate="28000"
                    )
                (ln,) = struct.unpack_from(">i", data, mech_end + 1)
                first = data[mech_end + 5 : mech_end + 5 + ln] if ln >= 0 else b""
                self._set_client_first(first.decode())
                self._stage = 1
                return m.auth_sasl_continue_msg(self._scram.get_server_first().encode()), False
            if self._stage == 1:
                self._scram.set_client_final(data.decode())
                self._stage = 2
                final = m.auth_sasl_final_msg(self._scram.get_server_final().encode())
                return final + m.AUTH_OK, True
        except SqlError:
            raise
        except (scramp.ScramException, ValueError, struct.error, UnicodeDecodeError):
            raise _failed(self.user) from None
        raise _failed(self.user)
