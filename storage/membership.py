"""Storage membership: who a node's peers are, and replacing a storage node.

:class:`PeerSet` keeps a node's list of peer clients in step with ``cluster.json``
(checked every ``WATCH_INTERVAL`` s by mtime); the list object is mutated in place so
gossip and the scrubber always see the current peers.

:func:`replace` swaps storage node OLD for a fresh node NEW in the same AZ (Aurora's
segment replacement):

1. ``cluster.json`` gets NEW (a free port, OLD's AZ) added to ``storage_nodes`` and
   ``"storage_transition": {"old": OLD, "new": NEW}`` -- while it is there a write is
   durable only with 4/6 acks of the old set AND 4/6 of the new set (the writer's job:
   see docs/durability.md);
2. ``start(NEW)`` (the caller's launcher) starts the node process.  Having no data, it
   copies every segment from its peers by gossip: ``FetchLog`` from SCL 0, or, when a peer
   already collected its log, ``CopyVersions`` of the versions up to the peer's GC floor
   and then ``FetchLog`` above it (``storage.gossip``);
3. once NEW's SCL of every PG has reached what the old set had when the replacement began
   (reads materialise on demand, so the SCL is what matters), OLD is removed from ``cluster.json`` together with
   the transition marker, and ``stop(OLD)`` is called.

cluster.json is edited as raw JSON so that fields other modules add are kept.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog

from storage.client import NodeClient, NodeError, NodeUnavailable
from storage.mtls import InternalTls

log = structlog.get_logger("storage.membership")

WATCH_INTERVAL = 1.0


def _read(data_dir: Path) -> dict[str, Any]:
    return json.loads((data_dir / "cluster.json").read_text())


def _write(data_dir: Path, conf: dict[str, Any]) -> None:
    path = data_dir / "cluster.json"
    tmp = path.with_suffix(".json.membership.tmp")
    tmp.write_text(json.dumps(conf, indent=2))
    os.replace(tmp, path)


class PeerSet:
    """Clients for every storage node of cluster.json except ``me``."""

    def __init__(self, data_dir: Path, me: str) -> None:
        self.data_dir = Path(data_dir)
        self.me = me
        self.peers: list[NodeClient] = []
        self.tls = InternalTls.load(self.data_dir)  # gossip, repair and copies: mutual TLS
        self._stamp: tuple[int, int, int] | None = None
        self.reload()

    def reload(self) -> bool:
        path = self.data_dir / "cluster.json"
        try:
            st = path.stat()
            # as server.config.ClusterConf.stamp (storage does not import server): every save
            # is a rename, a new inode even within one clock tick of the last
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp == self._stamp:
                return False
            conf = _read(self.data_dir)
        except (OSError, ValueError):
            return False
        self._stamp = stamp
        host = conf.get("host", "127.0.0.1")
        want = {s["name"]: s for s in conf.get("storage_nodes", []) if s["name"] != self.me}
        have = {p.name: p for p in self.peers}
        changed = set(want) != set(have) or any(have[n].port != want[n]["port"] for n in want if n in have)
        if changed:
            for p in self.peers:
                if p.name not in want or p.port != want[p.name]["port"]:
                    p.close()
            self.peers[:] = [
                have[n] if n in have and have[n].port == s["port"] else NodeClient(n, host, s["port"], s.get("az", ""), tls=self.tls)
                for n, s in want.items()
            ]
            log.info("peers_changed", peers=sorted(want))
        return changed

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL)
            self.reload()


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


async def _state(host: str, node: dict[str, Any], tls: InternalTls) -> Any:
    c = NodeClient(node["name"], host, node["port"], node.get("az", ""), tls=tls)
    try:
        return await c.state(timeout=2.0)
    except (NodeUnavailable, NodeError, OSError, asyncio.TimeoutError):
        return None
    finally:
        c.close()


def begin_replace(data_dir: str | Path, old: str, new_name: str, port: int | None = None) -> dict[str, Any]:
    """Step 1: add NEW next to OLD in cluster.json with the transition marker; returns
    NEW's entry.  Idempotent for the same (old, new)."""
    data_dir = Path(data_dir)
    conf = _read(data_dir)
    nodes = conf["storage_nodes"]
    by_name = {s["name"]: s for s in nodes}
    if old not in by_name:
        raise KeyError(f"no storage node {old!r}")
    t = conf.get("storage_transition")
    if t and t != {"old": old, "new": new_name}:
        raise RuntimeError(f"another storage replacement is in progress: {t}")
    if new_name not in by_name:
        nodes.append({"name": new_name, "az": by_name[old]["az"], "port": port or _free_port(conf.get("host", "127.0.0.1"))})
    conf["storage_transition"] = {"old": old, "new": new_name}
    _write(data_dir, conf)
    return next(s for s in conf["storage_nodes"] if s["name"] == new_name)


def finish_replace(data_dir: str | Path, old: str, new_name: str) -> None:
    """Step 3: drop OLD and the transition marker from cluster.json."""
    data_dir = Path(data_dir)
    conf = _read(data_dir)
    conf["storage_nodes"] = [s for s in conf["storage_nodes"] if s["name"] != old]
    conf.pop("storage_transition", None)
    _write(data_dir, conf)


async def caught_up(data_dir: str | Path, old: str, new_name: str, target: dict[int, int] | None = None,
                    tls: InternalTls | None = None) -> bool:
    """True when NEW's SCL of every PG reached ``target`` (by
    default: the highest SCL among the other nodes of the old set right now)."""
    data_dir = Path(data_dir)
    conf = _read(data_dir)
    host = conf.get("host", "127.0.0.1")
    nodes = {s["name"]: s for s in conf["storage_nodes"]}
    tls = tls or InternalTls.load(data_dir)
    if target is None:
        target = await replace_target(data_dir, old, new_name, tls)
    st = await _state(host, nodes[new_name], tls)
    if st is None:
        return False
    return all(st.scl.get(pg, 0) >= lsn for pg, lsn in target.items())


async def replace_target(data_dir: str | Path, old: str, new_name: str,
                         tls: InternalTls | None = None) -> dict[int, int]:
    conf = _read(Path(data_dir))
    tls = tls or InternalTls.load(data_dir)
    host = conf.get("host", "127.0.0.1")
    target: dict[int, int] = {}
    for s in conf["storage_nodes"]:
        if s["name"] in (old, new_name):
            continue
        st = await _state(host, s, tls)
        if st is not None:
            for pg, lsn in st.scl.items():
                target[pg] = max(target.get(pg, 0), lsn)
    return target


async def replace(
    data_dir: str | Path,
    old: str,
    new_name: str,
    *,
    start: Callable[[str], Awaitable[None] | None],
    stop: Callable[[str], Awaitable[None] | None] | None = None,
    port: int | None = None,
    timeout: float = 300.0,
) -> dict[str, Any]:
    """Replace storage node ``old`` by a fresh ``new_name`` (same AZ); see the module
    docstring.  ``start(name)``/``stop(name)`` start/stop a storage node process (the
    launcher's).  Returns NEW's cluster.json entry; raises TimeoutError if NEW does not
    catch up within ``timeout`` (cluster.json then still lists both, with the marker)."""
    data_dir = Path(data_dir)
    entry = begin_replace(data_dir, old, new_name, port)
    log.info("replace_begun", old=old, new=new_name, port=entry["port"], az=entry["az"])
    r = start(new_name)
    if r is not None:
        await r
    tls = InternalTls.load(data_dir)
    target = await replace_target(data_dir, old, new_name, tls)
    deadline = time.monotonic() + timeout
    while not await caught_up(data_dir, old, new_name, target, tls):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{new_name} did not catch up with {target} in {timeout} s")
        await asyncio.sleep(0.2)
    finish_replace(data_dir, old, new_name)
    log.info("replace_done", old=old, new=new_name, target=target)
    if stop is not None:
        r = stop(old)
        if r is not None:
            await r
    return entry
