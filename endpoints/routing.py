"""Which instances an endpoint sends a new connection to (pure logic, no I/O).

Endpoint kinds (``server.config.EndpointConf.kind``):

    writer    the instance whose role is "writer"
    reader    every instance whose role is "reader", round robin; the writer last, as the
              fallback when no reader takes the connection
    custom    the instances named in ``members``, round robin
    instance  ``members[0]``

``Router.candidates(endpoint)`` returns the instances to try, in order, for one new
connection: the proxy connects to the first that accepts.  Round robin advances by one
per connection, so consecutive connections start at different readers.
"""

from __future__ import annotations

from server.config import ClusterConf, EndpointConf, InstanceConf


class Router:
    def __init__(self, conf: ClusterConf) -> None:
        self.conf = conf
        self._next: dict[str, int] = {}

    def members(self, ep: EndpointConf) -> list[InstanceConf]:
        """The instances the endpoint routes to, before any fallback."""
        if ep.kind == "writer":
            w = self.conf.writer()
            return [w] if w else []
        if ep.kind == "reader":
            return self.conf.readers()
        names = ep.members[:1] if ep.kind == "instance" else ep.members
        out = []
        for n in names:
            try:
                out.append(self.conf.instance(n))
            except KeyError:
                continue
        return out

    def candidates(self, ep: EndpointConf) -> list[InstanceConf]:
        members = self.members(ep)
        if len(members) > 1:
            start = self._next.get(ep.name, 0) % len(members)
            self._next[ep.name] = start + 1
            members = members[start:] + members[:start]
        if ep.kind == "reader":
            w = self.conf.writer()
            if w is not None:
                members = members + [w]
        return members
