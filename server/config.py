"""The cluster's layout, stored in ``DATA_DIR/cluster.json`` (written by ``borealis up``).

    {
      "version": 1,
      "host": "127.0.0.1",
      "protection_groups": 2,
      "storage_nodes": [{"name": "s1", "az": "az1", "port": 40001}, ...],   # 6, 2 per AZ
      "instances": [{"name": "i1", "role": "writer", "port": 40010, "admin_port": 40011,
                     "tier": 1}, {"name": "i2", "role": "reader", ...}],
      "endpoints": [{"name": "writer", "kind": "writer", "port": 5432},
                    {"name": "reader", "kind": "reader", "port": 5433}],
      "password_verifier": null,  # SCRAM-SHA-256 verifier of the bootstrap superuser's
                                  # password (never the password); null = trust on loopback
      "encryption": {"wrapped_dek": "...",   # the volume's data key, wrapped by the KEK
                     "from_creation": true,  # no unsealed value ever (false: an older volume)
                     "kek_file": "/path"},   # optional: where the KEK is (storage.atrest)
      "ccm": false,               # cluster cache management (server.ccm); optional
      "autoscale": {...},         # replica auto-scaling policy (server.autoscale); optional
      "pg_size_limit": 10737418240  # bytes of log a PG takes before the volume adds a PG
    }                               # for new data (server.placement); optional, 10 GiB

A cluster.json from before verifiers holds ``"password"`` (the clear text): it is read as
its verifier, and the launcher rewrites the file without it at the next start.

Everything under DATA_DIR is the owner's only (directories 0700, files 0600): every part
runs with umask 077.

Runtime files: ``DATA_DIR/run/<part>.pid`` (pid of each running part) and
``DATA_DIR/logs/<part>.log``.  Storage node data: ``DATA_DIR/storage/<name>/``.
Instances keep no durable state.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine import passwords


@dataclass
class StorageNodeConf:
    name: str
    az: str
    port: int  # where instances and peers connect
    listen_port: int | None = None  # where the node listens, when not ``port`` (a proxy sits between)


@dataclass
class InstanceConf:
    name: str
    role: str  # "writer" | "reader"
    port: int  # pg-wire
    admin_port: int  # admin + redo stream (storage.wire framing, server.replication messages)
    tier: int = 1
    autoscaled: bool = False  # added by replica auto-scaling (server.autoscale), which may remove it


@dataclass
class EndpointConf:
    name: str
    kind: str  # "writer" | "reader" | "custom" | "instance"
    port: int
    members: list[str] = field(default_factory=list)  # custom: these; instance: [name]
    exclude: list[str] = field(default_factory=list)  # custom without members: all but these
    type: str = "any"  # custom: "reader" (readers only) | "any"
    policy: str = "round_robin"  # "round_robin" | "least_connections"


DEFAULT_PG_SIZE_LIMIT = 10 << 30  # Aurora's 10 GiB segments


@dataclass
class ClusterConf:
    host: str = "127.0.0.1"
    protection_groups: int = 2
    storage_nodes: list[StorageNodeConf] = field(default_factory=list)
    instances: list[InstanceConf] = field(default_factory=list)
    endpoints: list[EndpointConf] = field(default_factory=list)
    # SCRAM-SHA-256 verifier (engine.passwords) of the bootstrap superuser's password; None = trust
    password_verifier: str | None = field(default=None, repr=False)
    version: int = 1
    # set while a storage node is being replaced: {"old": name, "new": name} (storage.membership)
    storage_transition: dict | None = None
    retention_seconds: int | None = None
    pg_size_limit: int | None = None  # bytes; None = DEFAULT_PG_SIZE_LIMIT
    # cluster cache management: tier-0 readers keep the writer's hot set cached (server.ccm)
    ccm: bool = False
    # replica auto-scaling policy, server.autoscale.AutoscalePolicy as a dict; None = off
    autoscale: dict | None = None
    # encryption at rest (storage.atrest): {"wrapped_dek": base64, "from_creation": bool,
    # "kek_file": path (optional)}
    encryption: dict | None = None

    # --- lookups -------------------------------------------------------------------
    def instance(self, name: str) -> InstanceConf:
        for i in self.instances:
            if i.name == name:
                return i
        raise KeyError(name)

    def storage_node(self, name: str) -> StorageNodeConf:
        for s in self.storage_nodes:
            if s.name == name:
                return s
        raise KeyError(name)

    def writer(self) -> InstanceConf | None:
        return next((i for i in self.instances if i.role == "writer"), None)

    def readers(self) -> list[InstanceConf]:
        return [i for i in self.instances if i.role == "reader"]

    def pg_limit(self) -> int:
        """Bytes a protection group takes before new data goes to an added PG."""
        return self.pg_size_limit or DEFAULT_PG_SIZE_LIMIT

    # --- persistence -----------------------------------------------------------------
    def to_json(self) -> str:
        d = asdict(self)
        for optional in ("storage_transition", "retention_seconds", "autoscale", "pg_size_limit", "encryption"):
            if d.get(optional) is None:
                d.pop(optional, None)
        if not d.get("ccm"):
            d.pop("ccm", None)
        for i in d["instances"]:
            if not i.get("autoscaled"):
                i.pop("autoscaled", None)
        return json.dumps(d, indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> "ClusterConf":
        return cls(
            host=d.get("host", "127.0.0.1"),
            protection_groups=d.get("protection_groups", 2),
            storage_nodes=[StorageNodeConf(**s) for s in d.get("storage_nodes", [])],
            instances=[InstanceConf(**i) for i in d.get("instances", [])],
            endpoints=[EndpointConf(**e) for e in d.get("endpoints", [])],
            password_verifier=d.get("password_verifier") or _verifier_of(d.get("password")),
            version=d.get("version", 1),
            storage_transition=d.get("storage_transition"),
            retention_seconds=d.get("retention_seconds"),
            pg_size_limit=d.get("pg_size_limit"),
            ccm=bool(d.get("ccm", False)),
            autoscale=d.get("autoscale"),
            encryption=d.get("encryption"),
        )

    @classmethod
    def load(cls, data_dir: str | Path) -> "ClusterConf":
        return cls.from_dict(json.loads((Path(data_dir) / "cluster.json").read_text()))

    @staticmethod
    def stamp(data_dir: str | Path) -> tuple[int, int, int]:
        """What tells one version of ``cluster.json`` from the next, for the parts that
        re-read it when it changes: every save is a rename, so a new inode, also when two
        saves fall within one clock tick and keep the mtime.  Raises OSError if absent."""
        st = (Path(data_dir) / "cluster.json").stat()
        return st.st_ino, st.st_mtime_ns, st.st_size

    def set_password(self, password: str | None) -> None:
        """Store the verifier of ``password`` (None: trust on loopback)."""
        self.password_verifier = _verifier_of(password)

    def password_matches(self, password: str) -> bool:
        v = passwords.parse_scram(self.password_verifier)
        return v is not None and passwords.scram_matches(v, password)

    def save(self, data_dir: str | Path) -> None:
        path = Path(data_dir) / "cluster.json"
        tmp = path.with_suffix(".json.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.to_json())
        os.chmod(tmp, 0o600)  # a tmp file left over from an older version may be wider
        os.replace(tmp, path)


def _verifier_of(password: str | None) -> str | None:
    return None if password is None else passwords.scram_text(passwords.make_scram(password))
