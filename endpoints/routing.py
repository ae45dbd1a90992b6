"""Which instances an endpoint sends a new connection to (pure logic, no I/O).

Endpoint kinds (``server.config.EndpointConf.kind``) and their members:

    writer    the instance whose role is "writer"
    reader    every instance whose role is "reader"; the writer is appended last, as the
              fallback when no reader takes the connection
    instance  ``members[0]``, whatever its role
    custom    ``members`` if given, else every instance not in ``exclude``; with
              ``type == "reader"`` only those whose role is "reader" (so a promoted member
              leaves the endpoint and a demoted one comes back); no fallback

Membership is computed from the current ``ClusterConf`` on every call, so it follows the
cluster: a reader added at runtime joins the reader endpoint and every "exclude" custom
endpoint at once.

``Router.candidates(endpoint, load)`` orders the members for one new connection (the
proxy connects to the first that accepts):

    round_robin        start one further along than the last connection did
    least_connections  fewest open connections first (``load``: instance -> count), ties
                       broken round robin

Round-robin positions (``Router.positions``) are plain data so the proxy can carry them
across config reloads.
"""

from __future__ import annotations

from collections.abc import Mapping

from server.config import ClusterConf, EndpointConf, InstanceConf

POLICIES = ("round_robin", "least_connections")
CUSTOM_TYPES = ("reader", "any")


def members(conf: ClusterConf, ep: EndpointConf) -> list[InstanceConf]:
    """The instances ``ep`` routes to, before any fallback, in cluster.json order."""
    if ep.kind == "writer":
        w = conf.writer()
        return [w] if w else []
    if ep.kind == "reader":
        return conf.readers()
    if ep.kind == "instance":
        return [i for i in conf.instances if ep.members[:1] == [i.name]]
    if ep.kind == "custom":
        if ep.members:
            chosen = [i for i in conf.instances if i.name in ep.members]
        else:
            chosen = [i for i in conf.instances if i.name not in ep.exclude]
        if ep.type == "reader":
            chosen = [i for i in chosen if i.role == "reader"]
        return chosen
    return []


class Router:
    def __init__(self, conf: ClusterConf, positions: dict[str, int] | None = None) -> None:
        self.conf = conf
        self.positions: dict[str, int] = positions if positions is not None else {}

    def members(self, ep: EndpointConf) -> list[InstanceConf]:
        return members(self.conf, ep)

    def candidates(self, ep: EndpointConf, load: Mapping[str, int] | None = None) -> list[InstanceConf]:
        out = self.members(ep)
        if len(out) > 1:
            start = self.positions.get(ep.name, 0) % len(out)
            self.positions[ep.name] = start + 1
            out = out[start:] + out[:start]
            if ep.policy == "least_connections" and load is not None:
                out.sort(key=lambda i: load.get(i.name, 0))  # stable: ties keep round-robin order
        if ep.kind == "reader":
            w = self.conf.writer()
            if w is not None:
                out = out + [w]
        return out
