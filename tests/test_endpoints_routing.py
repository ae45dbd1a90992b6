"""Endpoint membership and balancing (pure endpoints.routing / endpoints.custom)."""

from __future__ import annotations

import pytest

from endpoints import custom
from endpoints.routing import Router
from server.config import ClusterConf, EndpointConf, InstanceConf


def _conf() -> ClusterConf:
    insts = [InstanceConf("i1", "writer", 1001, 2001), InstanceConf("i2", "reader", 1002, 2002),
             InstanceConf("i3", "reader", 1003, 2003), InstanceConf("i4", "reader", 1004, 2004)]
    return ClusterConf(instances=insts, endpoints=[EndpointConf("writer", "writer", 5432),
                                                   EndpointConf("reader", "reader", 5433)])


def names(insts) -> list[str]:
    return [i.name for i in insts]


def test_custom_members_exclude_and_type_follow_roles() -> None:
    conf = _conf()
    pair = custom.create(conf, "pair", 6000, members=["i1", "i2"], type="reader")
    rest = custom.create(conf, "rest", 6001, exclude=["i2"])
    r = Router(conf)
    assert names(r.members(pair)) == ["i2"]  # i1 is the writer: not a reader member
    assert names(r.members(rest)) == ["i1", "i3", "i4"]
    conf.instances.append(InstanceConf("i5", "reader", 1005, 2005))
    assert names(r.members(rest)) == ["i1", "i3", "i4", "i5"]  # new instances join "exclude" endpoints
    conf.instance("i1").role, conf.instance("i2").role = "reader", "writer"  # failover
    assert names(r.members(pair)) == ["i1"]
    assert names(r.candidates(conf.endpoints[1]))[-1] == "i2"  # the writer is the reader fallback


def test_least_connections_then_round_robin() -> None:
    conf = _conf()
    ep = conf.endpoints[1]
    ep.policy = "least_connections"
    r = Router(conf)
    load = {"i2": 5, "i3": 1, "i4": 1}
    firsts = [names(r.candidates(ep, load))[0] for _ in range(6)]
    assert set(firsts) == {"i3", "i4"}  # never the loaded i2; ties rotate
    ep.policy = "round_robin"
    seen = [names(r.candidates(ep, load))[0] for _ in range(6)]
    assert sorted(seen) == ["i2", "i2", "i3", "i3", "i4", "i4"]


def test_custom_endpoint_edits_are_checked() -> None:
    conf = _conf()
    with pytest.raises(custom.EndpointError, match="taken"):
        custom.create(conf, "i2", 6000, members=["i2"])
    with pytest.raises(custom.EndpointError, match="already used"):
        custom.create(conf, "x", 5433, members=["i2"])
    with pytest.raises(custom.EndpointError, match="exactly one"):
        custom.create(conf, "x", 6000, members=["i2"], exclude=["i3"])
    with pytest.raises(custom.EndpointError, match="no instance"):
        custom.create(conf, "x", 6000, members=["i9"])
    custom.create(conf, "x", 6000, members=["i2"])
    assert custom.modify(conf, "x", exclude=["i2"]).members == []
    with pytest.raises(custom.EndpointError, match="only --port and --policy"):
        custom.modify(conf, "reader", members=["i2"])
    assert custom.modify(conf, "reader", policy="least_connections").policy == "least_connections"
    with pytest.raises(custom.EndpointError, match="only custom"):
        custom.delete(conf, "writer")
    custom.delete(conf, "x")
    assert [e.name for e in conf.endpoints] == ["writer", "reader"]
