"""Custom endpoints: checked edits of ``ClusterConf.endpoints`` (pure; no I/O).

A custom endpoint is ``EndpointConf(kind="custom")`` with either a static list
(``members``) or a negative one (``exclude``: every instance but these, so instances added
later join it), a ``type`` ("reader": only members whose role is reader; "any") and a
balancing ``policy``.  The proxy binds its port on its next reload; deleting or modifying
an endpoint never closes the connections it already relayed.

The built-in writer / reader / instance endpoints cannot be created or deleted here; only
their ``policy`` (and port) may be modified.
"""

from __future__ import annotations

from server.config import ClusterConf, EndpointConf

from endpoints.routing import CUSTOM_TYPES, POLICIES


class EndpointError(ValueError):
    """An endpoint edit that is not allowed; the message is fit for a terminal."""


def _check_port(conf: ClusterConf, port: int, name: str) -> None:
    if not 1 <= port <= 65535:
        raise EndpointError(f"port {port} is out of range")
    used = {s.port: s.name for s in conf.storage_nodes}
    used.update({p: i.name for i in conf.instances for p in (i.port, i.admin_port)})
    used.update({e.port: f"endpoint {e.name}" for e in conf.endpoints if e.name != name})
    if port in used:
        raise EndpointError(f"port {port} is already used by {used[port]}")


def _check_names(conf: ClusterConf, names: list[str]) -> None:
    known = {i.name for i in conf.instances}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise EndpointError(f"no instance named {', '.join(unknown)}")


def _check(conf: ClusterConf, ep: EndpointConf) -> None:
    if ep.policy not in POLICIES:
        raise EndpointError(f"policy must be one of {', '.join(POLICIES)}")
    if ep.kind != "custom":
        return
    if ep.type not in CUSTOM_TYPES:
        raise EndpointError(f"type must be one of {', '.join(CUSTOM_TYPES)}")
    if bool(ep.members) == bool(ep.exclude):
        raise EndpointError("give exactly one of --members and --exclude")
    _check_names(conf, ep.members + ep.exclude)


def create(conf: ClusterConf, name: str, port: int, members: list[str] | None = None,
           exclude: list[str] | None = None, type: str = "any", policy: str = "round_robin") -> EndpointConf:
    taken = {e.name for e in conf.endpoints} | {i.name for i in conf.instances}
    if name in taken:
        raise EndpointError(f"the name {name!r} is taken")
    if not name.replace("_", "").replace("-", "").isalnum():
        raise EndpointError(f"{name!r} is not a plain name")
    _check_port(conf, port, name)
    ep = EndpointConf(name, "custom", port, members=list(members or []), exclude=list(exclude or []),
                      type=type, policy=policy)
    _check(conf, ep)
    conf.endpoints.append(ep)
    return ep


def find(conf: ClusterConf, name: str) -> EndpointConf:
    for e in conf.endpoints:
        if e.name == name:
            return e
    raise EndpointError(f"no endpoint named {name!r}")


def modify(conf: ClusterConf, name: str, port: int | None = None, members: list[str] | None = None,
           exclude: list[str] | None = None, type: str | None = None, policy: str | None = None) -> EndpointConf:
    ep = find(conf, name)
    if ep.kind != "custom" and (members is not None or exclude is not None or type is not None):
        raise EndpointError(f"{name} is a {ep.kind} endpoint: only --port and --policy can change")
    new = EndpointConf(ep.name, ep.kind, ep.port, list(ep.members), list(ep.exclude), ep.type, ep.policy)
    if port is not None:
        _check_port(conf, port, name)
        new.port = port
    if members is not None:
        new.members, new.exclude = list(members), []
    if exclude is not None:
        new.exclude, new.members = list(exclude), []
    if type is not None:
        new.type = type
    if policy is not None:
        new.policy = policy
    _check(conf, new)
    conf.endpoints[conf.endpoints.index(ep)] = new
    return new


def delete(conf: ClusterConf, name: str) -> None:
    ep = find(conf, name)
    if ep.kind != "custom":
        raise EndpointError(f"{name} is a {ep.kind} endpoint; only custom endpoints can be deleted")
    conf.endpoints.remove(ep)
