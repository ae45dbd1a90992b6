"""``borealis status``: one snapshot of a cluster, gathered over the parts' own ports.

    instances      InstanceState over each instance's admin port (GetInstanceState, req=1)
    storage_nodes  NodeState over each storage node's port (GetState)
    endpoints      from cluster.json: the instances each endpoint routes a new connection
                   to right now (its members that answer; the reader endpoint falls back
                   to the writer when no reader answers), plus the proxy's open
                   connections through that endpoint per backend instance, from
                   run/endpoints.state.json
    volume         vcl, vdl, epoch from the writer's InstanceState
    manager        the cluster manager (server.manager): pid (null when not running),
                   heartbeat round trip to the writer, and its failover events

Every query has a timeout (1 s); a part that does not answer is "down".  The dict is the
stable ``status --json`` schema documented in README.md:

    {"instances": [{"name", "role", "tier", "address", "port", "pid", "state", "applied_lsn",
                    "lag_ms", "connections", "cached_tables"}],
     "storage_nodes": [{"name", "az", "address", "port", "pid", "state", "epoch",
                        "scl": {"0": lsn, ...}, "damaged": {"0": "damaged" | "repairing", ...}}],
     "endpoints": [{"name", "kind", "port", "policy", "members",
                    "connections": {instance: open connections the proxy relays for this endpoint},
                    "routed": {instance: connections routed since the proxy started}}],
     "volume": {"vcl", "vdl", "epoch", "pg_size_limit",
                "protection_groups": [{"pg", "bytes", "pgcl", "scl": {node: lsn}}]},
     "manager": {"pid", "rtt_ms", "events": [{"at", "kind", "from", "to", "reason",
                                              "seconds", "ok"}]},
     "autoscale": {"policy": {...} | null, "now": {"readers", "wanted", "average", "metric",
                                                   "loads", "decision"} | null},
     "ccm": bool}
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from endpoints.routing import Router
from server.config import ClusterConf
from server.replication import ADMIN_REPLIES, ADMIN_REQUESTS, GetInstanceState, InstanceState
from storage.client import NodeClient, NodeError, NodeUnavailable
from storage.mtls import InternalTls
from storage.protocol import NodeState
from storage.wire import FrameError

if TYPE_CHECKING:
    from server.launcher import Cluster


class _OneReply(asyncio.Protocol):
    """Sends GetInstanceState and resolves ``reply`` with the first message back."""

    def __init__(self, reply: asyncio.Future) -> None:
        self.reply = reply
        self.dec = ADMIN_REPLIES.decoder()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(ADMIN_REQUESTS.frame(GetInstanceState(req=1)))  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        try:
            msgs = self.dec.feed(data)
        except FrameError as e:  # corrupt frame: report as down
            msgs = []
            if not self.reply.done():
                self.reply.set_exception(e)
        if msgs and not self.reply.done():
            self.reply.set_result(msgs[0])

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.reply.done():
            self.reply.set_exception(ConnectionError("closed before replying"))


async def instance_state(host: str, port: int, timeout: float = 1.0, *, tls: InternalTls) -> InstanceState | None:
    """The instance's answer on its admin port (mutual TLS), None when it gives none."""
    loop = asyncio.get_running_loop()
    reply: asyncio.Future = loop.create_future()
    transport = None
    try:
        async with asyncio.timeout(timeout):
            transport, _ = await tls.connect(lambda: _OneReply(reply), host, port)
            msg = await reply
    except (OSError, TimeoutError, FrameError):  # ssl.SSLError is an OSError
        return None
    finally:
        if transport is not None:
            transport.close()
    return msg if isinstance(msg, InstanceState) else None


async def node_state(name: str, host: str, port: int, timeout: float = 1.0, *, tls: InternalTls) -> NodeState | None:
    client = NodeClient(name, host, port, tls=tls)
    try:
        await client.connect(timeout)
        return await client.state(timeout)
    except (NodeUnavailable, NodeError, OSError, TimeoutError):
        return None
    finally:
        client.close()


async def _query(conf: ClusterConf, timeout: float, tls: InternalTls) -> tuple[list, list]:
    inst = [instance_state(conf.host, i.admin_port, timeout, tls=tls) for i in conf.instances]
    nodes = [node_state(s.name, conf.host, s.port, timeout, tls=tls) for s in conf.storage_nodes]
    res = await asyncio.gather(*inst, *nodes)
    return list(res[: len(inst)]), list(res[len(inst):])


def protection_groups(conf: ClusterConf, nstates: list[NodeState | None]) -> list[dict[str, Any]]:
    """Each PG the volume has (it grows: ``server.placement``) with its size -- bytes of
    log, the largest any segment reports -- and each segment's SCL (None: the node is down
    or does not hold that PG yet) and its PGCL (4th highest SCL)."""
    count = max([conf.protection_groups] + [len(ns.scl) for ns in nstates if ns is not None])
    out = []
    for pg in range(count):
        scl = {sc.name: (ns.scl.get(pg) if ns is not None else None) for sc, ns in zip(conf.storage_nodes, nstates)}
        known = sorted((v for v in scl.values() if v is not None), reverse=True)
        out.append({
            "pg": pg,
            "bytes": max((ns.pg_bytes.get(pg, 0) for ns in nstates if ns is not None), default=0),
            "pgcl": known[3] if len(known) >= 4 else None,
            "scl": scl,
        })
    return out


def _node_state(ns: NodeState | None) -> str:
    """``down``; ``damaged`` while a segment of the node is found damaged and not yet
    repaired (not served; counted as missing by the writer's quorum); ``repairing`` while
    a repaired or rebuilt segment refills from its peers; else ``up``."""
    if ns is None:
        return "down"
    states = set(ns.damaged.values())
    return "damaged" if "damaged" in states else "repairing" if states else "up"


def gather(cluster: "Cluster", timeout: float = 1.0) -> dict[str, Any]:
    conf = cluster.conf
    pids = cluster.running()
    from server.tls import ensure_internal_certificate  # a cluster made before internal TLS

    ensure_internal_certificate(cluster.data_dir, conf.host)
    istates, nstates = asyncio.run(_query(conf, timeout, InternalTls.load(cluster.data_dir)))

    instances = []
    up: set[str] = set()
    writer_state: InstanceState | None = None
    for ic, st in zip(conf.instances, istates):
        if st is not None:
            up.add(ic.name)
            if st.role == "writer":
                writer_state = st
        instances.append({
            "name": ic.name,
            "role": st.role if st else ic.role,
            "tier": ic.tier,
            "autoscaled": ic.autoscaled,
            "address": conf.host,
            "port": ic.port,
            "pid": pids.get(ic.name, st.pid if st else None),
            "state": st.state if st else "down",
            "applied_lsn": st.applied_lsn if st else None,
            "lag_ms": st.lag_ms if st else None,
            "connections": st.connections if st else None,
            "cached_tables": st.cached_tables if st else None,
        })

    storage = []
    for sc, ns in zip(conf.storage_nodes, nstates):
        storage.append({
            "name": sc.name,
            "az": sc.az,
            "address": conf.host,
            "port": sc.port,
            "pid": pids.get(sc.name),
            "state": _node_state(ns),
            "epoch": ns.epoch if ns else None,
            "scl": {str(pg): lsn for pg, lsn in sorted(ns.scl.items())} if ns else {},
            "damaged": {str(pg): st for pg, st in sorted(ns.damaged.items())} if ns else {},
        })

    ep_conns: dict[str, dict[str, int]] = {}
    ep_routed: dict[str, dict[str, int]] = {}
    if "endpoints" in pids:
        try:
            proxy_state = json.loads((cluster.run_dir / "endpoints.state.json").read_text())
            ep_conns = proxy_state["endpoint_connections"]
            ep_routed = proxy_state.get("routed", {})
        except (OSError, ValueError, KeyError):
            ep_conns = {}
    router = Router(conf)
    endpoints = []
    for ep in conf.endpoints:
        members = [i.name for i in router.members(ep) if i.name in up] if "endpoints" in pids else []
        if ep.kind == "reader" and not members and "endpoints" in pids:
            w = conf.writer()
            members = [w.name] if w and w.name in up else []
        conns = ep_conns.get(ep.name, {})
        endpoints.append({
            "name": ep.name,
            "kind": ep.kind,
            "port": ep.port,
            "policy": ep.policy,
            "members": members,
            # members first, then backends it still relays to that are no longer members
            "connections": {m: conns.get(m, 0) for m in members} | {k: v for k, v in conns.items() if k not in members},
            "routed": ep_routed.get(ep.name, {}),
        })

    epochs = [ns.epoch for ns in nstates if ns is not None]
    volume = {
        "vcl": writer_state.vcl if writer_state else None,
        "vdl": writer_state.vdl if writer_state else None,
        "epoch": writer_state.epoch if writer_state else (max(epochs) if epochs else None),
        "pg_size_limit": conf.pg_limit(),
        "protection_groups": protection_groups(conf, nstates),
    }
    from server.manager import STATE_FILE, read_events

    try:
        mstate = json.loads((cluster.run_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        mstate = {}
    manager = {
        "pid": pids.get("manager"),
        "rtt_ms": mstate.get("rtt_ms") if "manager" in pids else None,
        "events": read_events(cluster.data_dir),
    }
    autoscale = {
        "policy": conf.autoscale,  # as in cluster.json (server.autoscale.AutoscalePolicy); null = off
        "now": mstate.get("autoscale") if "manager" in pids else None,  # the manager's last sample
    }
    return {"instances": instances, "storage_nodes": storage, "endpoints": endpoints, "volume": volume,
            "manager": manager, "autoscale": autoscale, "ccm": conf.ccm}
