"""Host-based authentication rules: a subset of PostgreSQL's pg_hba.conf.

File: ``DATA_DIR/hba.conf`` (read by each instance at start).  One rule a line, ``#``
starts a comment, fields separated by blanks; the first rule matching a connection decides::

    # TYPE     DATABASE        USER          ADDRESS          METHOD
    local      all             all                            trust
    host       all             all           127.0.0.1/32     trust
    hostssl    sales,hr        alice,bob     10.0.0.0/8       scram-sha-256
    hostnossl  all             all           0.0.0.0/0        reject
    host       all             all           ::1  ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff  md5

TYPE      local (Unix socket: never matches, we only listen on TCP), host (TCP, with or
          without TLS), hostssl (TLS only), hostnossl (plain TCP only)
DATABASE  comma list of names, or ``all``, ``sameuser``
USER      comma list of names, or ``all``
ADDRESS   CIDR (``10.0.0.0/8``), a bare address with a mask in the next field, or ``all``
METHOD    trust | reject | password | md5 | scram-sha-256

Connections relayed by the endpoint proxy arrive from the proxy's (loopback) address.

Without a file the rules are ``default_rules(password_set)``: with no password, trust
on loopback (127.0.0.1/32 and ::1/128) and nothing else; with a password,
scram-sha-256 from anywhere.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from pathlib import Path

HBA_FILE = "hba.conf"
TYPES = ("local", "host", "hostssl", "hostnossl")
METHODS = ("trust", "reject", "password", "md5", "scram-sha-256")


class HbaError(ValueError):
    """A malformed hba.conf line (the message names the line)."""


@dataclass(frozen=True)
class HbaRule:
    type: str
    databases: tuple[str, ...]
    users: tuple[str, ...]
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None  # None: all addresses
    method: str
    line: int = 0

    def matches(self, ssl: bool, database: str, user: str, addr: str) -> bool:
        if self.type == "local":
            return False
        if self.type == "hostssl" and not ssl or self.type == "hostnossl" and ssl:
            return False
        if "all" not in self.databases and database not in self.databases and not (
                "sameuser" in self.databases and database == user):
            return False
        if "all" not in self.users and user not in self.users:
            return False
        if self.network is not None:
            ip = _address(addr)
            if ip is None or ip.version != self.network.version or ip not in self.network:
                return False
        return True


@functools.lru_cache(maxsize=256)
def _address(addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A client address as an ip_address (IPv4-mapped IPv6 as IPv4); None if unparsable.
    Cached: parsing costs more than the rest of matching, and clients reconnect from the
    same few addresses."""
    try:
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _network(addr: str, mask: str | None, lineno: int) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if addr == "all":
        return None
    if addr == "samehost":
        addr = "127.0.0.0/8"
    try:
        if mask is not None:
            bits = ipaddress.ip_network(f"0.0.0.0/{mask}" if ":" not in mask else f"::/{mask}").prefixlen
            return ipaddress.ip_network(f"{addr}/{bits}", strict=False)
        return ipaddress.ip_network(addr, strict=False)
    except ValueError:
        raise HbaError(f"invalid IP address or mask {addr!r} in hba.conf line {lineno}") from None


def parse_hba(text: str) -> list[HbaRule]:
    rules: list[HbaRule] = []
    for lineno, raw in enumerate(text.splitlines(), 1):
        fields = raw.split("#", 1)[0].split()
        if not fields:
            continue
        kind = fields[0]
        if kind not in TYPES:
            raise HbaError(f"invalid connection type {kind!r} in hba.conf line {lineno}")
        need = 4 if kind == "local" else 5
        if len(fields) < need:
            raise HbaError(f"end-of-line before authentication method in hba.conf line {lineno}")
        dbs = tuple(x for x in fields[1].split(",") if x)
        users = tuple(x for x in fields[2].split(",") if x)
        if kind == "local":
            network, rest = None, fields[3:]
        elif "/" not in fields[3] and fields[3] not in ("all", "samehost"):
            if len(fields) < 6:
                raise HbaError(f"end-of-line before authentication method in hba.conf line {lineno}")
            network, rest = _network(fields[3], fields[4], lineno), fields[5:]
        else:
            network, rest = _network(fields[3], None, lineno), fields[4:]
        method = rest[0]
        if method not in METHODS:
            raise HbaError(f"invalid authentication method {method!r} in hba.conf line {lineno}")
        rules.append(HbaRule(kind, dbs, users, network, method, lineno))
    return rules


def default_rules(password_set: bool) -> list[HbaRule]:
    if password_set:
        return [HbaRule("host", ("all",), ("all",), None, "scram-sha-256")]
    return [HbaRule("host", ("all",), ("all",), ipaddress.ip_network(net), "trust")
            for net in ("127.0.0.0/8", "::1/128")]


def load_rules(data_dir: str | Path, password_set: bool) -> list[HbaRule]:
    """``DATA_DIR/hba.conf`` if present (HbaError if malformed), else the defaults."""
    path = Path(data_dir) / HBA_FILE
    if not path.exists():
        return default_rules(password_set)
    return parse_hba(path.read_text())


def match(rules: list[HbaRule], ssl: bool, database: str, user: str, addr: str) -> HbaRule | None:
    for rule in rules:
        if rule.matches(ssl, database, user, addr):
            return rule
    return None
