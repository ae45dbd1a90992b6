"""Client authentication as a small state machine with no I/O.

``Authenticator(config).start(user, database, addr, ssl)`` picks the method -- from the
host-based rules (``server.hba``) when the config has them, else ``config.method`` --
and returns the first Authentication* message to send (AuthenticationOk for trust);
``step(data)`` consumes the body of each 'p' message and returns ``(reply, done)``.
Failures raise SqlErrors sent as FATAL: 28P01 wrong password, 28000 no or rejecting
hba rule / bad SASL mechanism.

Methods
-------
* ``trust``          -- AuthenticationOk at once.
* ``password``       -- AuthenticationCleartextPassword (3); 'p' carries password\\0,
  checked against the plain password or the SCRAM verifier.
* ``md5``            -- AuthenticationMD5Password (5, 4-byte salt); the client answers
  ``"md5" + hex(md5(hex(md5(password + user)) + salt))``.  Needs the plain password or an
  md5 verifier (``"md5" + hex(md5(password + user))``); a user known only by a SCRAM
  verifier gets SCRAM instead (as PostgreSQL does).
* ``scram-sha-256``  -- AuthenticationSASL (10) listing SCRAM-SHA-256; the client's
  SASLInitialResponse is ``mechanism\\0 int32 len data``; we answer SASLContinue (11) with
  the server-first message, then SASLFinal (12) with the server signature, then Ok.
  The crypto is ``scramp``'s; the server keeps only the verifier (salt, StoredKey,
  ServerKey, iterations), never the password.  A user with only an md5 verifier cannot
  pass SCRAM (the exchange runs against a mock verifier and fails, as in PostgreSQL).

Secrets: ``config.lookup(user)`` (per-user secrets) and else the one cluster password,
which is every user's.  Instances use ``catalog_lookup``: the roles of the engine's catalog
(``CREATE ROLE ... PASSWORD``), where the cluster password is only the bootstrap
superuser's and an unknown role, one without a password or one past its VALID UNTIL has
no secret at all.  An unknown user, or one without a
password, is not told apart from a wrong password: the exchange runs in full against a
mock verifier whose salt is derived from the user name and a per-server random key
(stable across attempts, like PostgreSQL's mock salt), and fails with 28P01.  Password
comparisons are constant time (``hmac.compare_digest``).

Verifier text form (as in pg_authid.rolpassword)::

    SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

import scramp

from engine import passwords, roles
from engine.catalog import BOOTSTRAP_SUPERUSER
from engine.errors import InvalidAuthorization, InvalidPassword, SqlError
from server import hba as hba_mod
from server.pgwire import messages as m

METHODS = ("trust", "password", "md5", "scram-sha-256")
_SCRAM = "SCRAM-SHA-256"
ITERATIONS = 4096


@dataclass(frozen=True)
class UserSecret:
    """What the server knows of one user's password: the plain text (only a server started
    with ``password=``, as tests do; clusters keep verifiers only) and/or a SCRAM verifier
    (salt, StoredKey, ServerKey, iterations)."""

    password: str | None = field(default=None, repr=False)
    scram: tuple | None = field(default=None, repr=False)
    md5: str | None = field(default=None, repr=False)  # "md5" + hex(md5(password + user))


def make_verifier(password: str, iterations: int = ITERATIONS) -> tuple:
    """A SCRAM verifier for ``password``: (salt, stored_key, server_key, iterations)."""
    return passwords.make_scram(password, iterations)


verifier_text = passwords.scram_text
parse_verifier = passwords.parse_scram
_scram_matches = passwords.scram_matches


def catalog_lookup(db: Any, cluster_verifier_text: str | None) -> Callable[[str], UserSecret]:
    """``lookup`` for an instance: secrets from the roles of ``db.catalog()`` (read at each
    login, so roles created on the writer work on readers as soon as redo reaches them).
    ``cluster_verifier_text``: the bootstrap superuser's SCRAM verifier from cluster.json."""
    cluster_verifier = passwords.parse_scram(cluster_verifier_text)

    def lookup(user: str) -> UserSecret:
        role = db.catalog().role(user)
        if role is None or roles.password_expired(role):
            return UserSecret()
        if not role.stored and role.oid == BOOTSTRAP_SUPERUSER:  # never ALTERed: the cluster password
            return UserSecret(scram=cluster_verifier)
        stored = role.password
        if passwords.is_md5(stored):
            return UserSecret(md5=stored)
        return UserSecret(scram=passwords.parse_scram(stored))

    return lookup


@dataclass(frozen=True)
class AuthConfig:
    """How a server authenticates: the method (or hba rules) and where secrets come from."""

    method: str = "trust"
    password: str | None = field(default=None, repr=False)  # kept only when md5/password may need it
    scram_verifier: tuple | None = field(default=None, repr=False)
    hba: tuple | None = None  # HbaRule tuple; None: ``method`` for every connection
    lookup: Callable[[str], UserSecret | None] | None = field(default=None, repr=False)
    mock_key: bytes = field(default_factory=lambda: os.urandom(32), repr=False)

    @classmethod
    def build(
        cls,
        password: str | None,
        method: str = "scram-sha-256",
        hba: list | None = None,
        lookup: Callable[[str], UserSecret | None] | None = None,
        verifier: str | None = None,
    ) -> "AuthConfig":
        """``password`` (clear text) or ``verifier`` (its SCRAM verifier text, all a cluster
        keeps): every user's secret unless ``lookup`` knows the user.  Neither: trust."""
        if method not in METHODS:
            raise ValueError(f"unknown auth method {method!r}")
        rules = tuple(hba) if hba is not None else None
        if password is None and verifier is not None:
            parsed = passwords.parse_scram(verifier)
            if parsed is None:
                raise ValueError("the cluster's password verifier is not a SCRAM-SHA-256 verifier")
            return cls(method, None, parsed, rules, lookup)
        if password is None:
            return cls("trust", hba=rules, lookup=lookup)
        needs_plain = method in ("md5", "password") if rules is None else any(
            r.method in ("md5", "password") for r in rules)
        return cls(method, password if needs_plain else None, make_verifier(password), rules, lookup)

    def secret(self, user: str) -> UserSecret | None:
        if self.lookup is not None:
            s = self.lookup(user)
            if s is not None:
                return s
        if self.password is not None or self.scram_verifier is not None:
            return UserSecret(self.password, self.scram_verifier)
        return None

    def method_for(self, user: str, database: str, addr: str, ssl: bool) -> str:
        if self.hba is None:
            return self.method
        rule = hba_mod.match(list(self.hba), ssl, database, user, addr)
        enc = "SSL encryption" if ssl else "no encryption"
        if rule is None:
            raise InvalidAuthorization(
                f'no pg_hba.conf entry for host "{addr}", user "{user}", database "{database}", {enc}')
        if rule.method == "reject":
            raise InvalidAuthorization(
                f'pg_hba.conf rejects connection for host "{addr}", user "{user}", database "{database}", {enc}')
        return rule.method

    def mock_verifier(self, user: str) -> tuple:
        """Salt stable per user name; keys random, so no proof can match."""
        salt = hmac.new(self.mock_key, user.encode(), hashlib.sha256).digest()[:16]
        return (salt, os.urandom(32), os.urandom(32), ITERATIONS)


def _failed(user: str) -> SqlError:
    return InvalidPassword(f'password authentication failed for user "{user}"')


class Authenticator:
    """One connection's authentication exchange."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self.user = ""
        self.method = "trust"
        self._secret: UserSecret | None = None
        self._salt = b""
        self._scram: Any = None
        self._stage = 0

    def start(self, user: str, database: str = "", addr: str = "127.0.0.1", ssl: bool = False) -> tuple[bytes, bool]:
        self.user = user
        method = self.config.method_for(user, database or user, addr, ssl)
        if method == "trust":
            self.method = method
            return m.AUTH_OK, True
        secret = self._secret = self.config.secret(user)
        if method == "md5" and secret is not None and secret.password is None and secret.md5 is None \
                and secret.scram is not None:
            method = "scram-sha-256"
        self.method = method
        if method == "password":
            return m.AUTH_CLEARTEXT, False
        if method == "md5":
            self._salt = os.urandom(4)
            return m.auth_md5_msg(self._salt), False
        verifier = None
        if secret is not None:
            verifier = secret.scram
            if verifier is None and secret.password is not None:
                verifier = make_verifier(secret.password)
        if verifier is None:
            verifier = self.config.mock_verifier(user)
            self._secret = None
        self._scram = scramp.ScramMechanism(_SCRAM).make_server(lambda _username: verifier)
        return m.auth_sasl_msg([_SCRAM]), False

    def step(self, data: bytes) -> tuple[bytes, bool]:
        method = self.method
        secret = self._secret
        if method == "password":
            given = data.rstrip(b"\0")
            if secret is not None and secret.password is not None:
                ok = hmac.compare_digest(given, secret.password.encode())
            elif secret is not None and secret.md5 is not None:
                ok = passwords.plain_matches(secret.md5, given.decode(errors="replace"), self.user)
            else:
                try:
                    text = given.decode()
                except UnicodeDecodeError:
                    text = ""
                v = secret.scram if secret is not None and secret.scram else self.config.mock_verifier(self.user)
                ok = _scram_matches(v, text) and secret is not None
            if not ok:
                raise _failed(self.user)
            return m.AUTH_OK, True
        if method == "md5":
            pw = secret.password if secret is not None and secret.password is not None else None
            if pw is not None:
                inner = hashlib.md5((pw + self.user).encode()).hexdigest().encode()
            elif secret is not None and secret.md5 is not None:
                inner = secret.md5[3:].encode()
            else:
                inner = hashlib.md5((self.config.mock_key.hex() + self.user).encode()).hexdigest().encode()
            want = b"md5" + hashlib.md5(inner + self._salt).hexdigest().encode()
            known = secret is not None and (secret.password is not None or secret.md5 is not None)
            if not hmac.compare_digest(data.rstrip(b"\0"), want) or not known:
                raise _failed(self.user)
            return m.AUTH_OK, True
        if method == "scram-sha-256":
            done = self._scram_step(data)
            if done[1] and secret is None:  # cannot happen with a mock verifier; belt and braces
                raise _failed(self.user)
            return done
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
                    raise InvalidAuthorization("client selected an invalid SASL authentication mechanism")
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
        except (scramp.ScramException, ValueError, struct.error, UnicodeDecodeError, IndexError, KeyError):
            raise _failed(self.user) from None
        raise _failed(self.user)
