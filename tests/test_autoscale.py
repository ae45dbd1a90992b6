"""Replica auto-scaling (server.autoscale).

* ``decide`` on its own: target tracking, cooldowns, min/max, only readers it added are
  removed, no flapping at the boundary.
* On a real cluster: ``borealis autoscale set`` with short cooldowns; sessions held through
  the reader endpoint make the manager add readers (which then get reader-endpoint
  connections), closing them makes it remove the readers it added -- and only those.
"""

from __future__ import annotations

from tests.cluster import borealis_cli as borealis, wait_for as _wait
import asyncio
import json
import math
import subprocess
import sys
import time
from collections import Counter

import asyncpg
import pytest

from server.autoscale import AutoscaleError, AutoscalePolicy, Cooldowns, CpuMeter, ReaderSample, decide, next_name
from server.config import ClusterConf, InstanceConf


def _samples(*loads: float, auto: int = 0) -> list[ReaderSample]:
    """Readers r1..rn with these loads; the last ``auto`` of them were added by autoscaling."""
    n = len(loads)
    return [ReaderSample(f"auto{k}" if k > n - auto else f"r{k}", k > n - auto, True, x)
            for k, x in enumerate(loads, 1)]


def test_target_tracking_and_cooldowns() -> None:
    p = AutoscalePolicy(min_readers=1, max_readers=4, target=10, scale_out_cooldown=30, scale_in_cooldown=60)
    cd = Cooldowns()
    d = decide(p, _samples(25), 100.0, cd)
    assert (d.action, d.wanted) == ("add", 3)
    cd.last_out = 100.0
    assert decide(p, _samples(15, 10), 110.0, cd).reason == "scale-out cooldown"
    assert decide(p, _samples(15, 10), 131.0, cd).action == "add"
    assert decide(p, _samples(10, 10), 131.0, cd).action == "none"  # exactly on target
    assert decide(p, _samples(40, 40, 40, 40), 500.0, cd).action == "none"  # already at max
    # scale-in: load fits one reader fewer at the target, both cooldowns passed
    cd = Cooldowns(last_out=100.0, last_in=-math.inf)
    quiet = _samples(3, 3, 2, auto=2)
    assert decide(p, quiet, 120.0, cd).reason == "scale-in cooldown"  # too soon after the scale-out
    d = decide(p, quiet, 200.0, cd)
    assert (d.action, d.instance) == ("remove", "auto3")  # the least loaded reader it added
    cd.last_in = 200.0
    assert decide(p, _samples(3, 3, auto=1), 230.0, cd).reason == "scale-in cooldown"
    # 19 sessions on 2 readers still needs 2 at target 10: no scale-in that would re-trigger a scale-out
    assert decide(p, _samples(10, 9, auto=1), 900.0, cd).action == "none"
    # never removes a reader it did not add
    assert decide(p, _samples(0, 0), 900.0, cd).reason.startswith("no reader added by autoscaling")


def test_min_max_and_unavailable_readers() -> None:
    p = AutoscalePolicy(min_readers=2, max_readers=3, target=10, scale_out_cooldown=1e9, scale_in_cooldown=1e9)
    cd = Cooldowns(last_out=0.0, last_in=0.0)
    assert decide(p, _samples(0), 1.0, cd).action == "add"  # below min: no cooldown
    d = decide(p, _samples(0, 0, 0, 0, auto=2), 1.0, cd)
    assert (d.action, d.instance) == ("remove", "auto4")  # above max: no cooldown
    down = [ReaderSample("r1", False, False, 0.0), ReaderSample("r2", False, False, 0.0)]
    assert decide(p, down, 1.0, cd).reason == "no reader answers"
    # a down reader added by autoscaling goes first
    mixed = [ReaderSample("auto1", True, False, 0.0), ReaderSample("auto2", True, True, 0.0),
             ReaderSample("r1", False, True, 1.0), ReaderSample("r2", False, True, 1.0)]
    assert decide(p, mixed, 1.0, cd).instance == "auto1"


def test_policy_checks_and_names() -> None:
    with pytest.raises(AutoscaleError, match="min"):
        AutoscalePolicy(min_readers=5, max_readers=2).check()
    with pytest.raises(AutoscaleError, match="metric"):
        AutoscalePolicy(metric="iops").check()
    with pytest.raises(AutoscaleError, match="at most 100"):
        AutoscalePolicy(metric="cpu", target=150).check()
    with pytest.raises(AutoscaleError, match="unknown"):
        AutoscalePolicy.from_dict({"min": 1})
    p = AutoscalePolicy(min_readers=0, max_readers=2, metric="cpu", target=50)
    assert AutoscalePolicy.from_dict(p.to_dict()) == p
    conf = ClusterConf(instances=[InstanceConf("i1", "writer", 1, 2), InstanceConf("auto1", "reader", 3, 4)])
    assert next_name(conf) == "auto2"
    conf.instances.append(InstanceConf("auto2", "reader", 5, 6, autoscaled=True))
    again = ClusterConf.from_dict(json.loads(conf.to_json()))
    assert [i.autoscaled for i in again.instances] == [False, False, True]
    assert "autoscaled" not in json.loads(conf.to_json())["instances"][0]


def test_cpu_meter_sees_a_busy_and_an_idle_process() -> None:
    import os

    m = CpuMeter()
    me = os.getpid()
    assert m.percent(me) == 0.0  # first sample: no interval yet
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        pass
    busy = m.percent(me)
    time.sleep(0.5)
    idle = m.percent(me)
    # the cores are shared with other work: a busy loop gets what the scheduler gives it
    assert busy >= 2 and idle < busy / 2, (busy, idle)
    assert m.percent(2**22 + 12345) == 0.0  # no such process


# --- on a real cluster -----------------------------------------------------------------------





def test_readers_follow_connection_load(make_cluster) -> None:
    c = make_cluster(readers=1)
    d = c.data_dir

    def readers() -> list[str]:
        return sorted(i.name for i in c.launcher.conf.readers())

    def available_readers() -> list[str]:
        st = c.status()
        return sorted(i["name"] for i in st["instances"] if i["role"] == "reader" and i["state"] == "available")

    out = borealis(d, "autoscale", "set", "--min", "1", "--max", "3", "--target-connections", "4",
                   "--scale-out-cooldown", "1", "--scale-in-cooldown", "2")
    assert "autoscale on: 1..3 readers" in out
    # no load: the manager samples the readers and leaves the count alone
    _wait(lambda: (c.status()["autoscale"]["now"] or {}).get("decision") == "on target", 15, "a first sample")
    assert readers() == ["i2"]

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        # 12 sessions at target 4 per reader: 3 readers wanted
        held = [await asyncpg.connect(c.reader_dsn, timeout=10) for _ in range(12)]
        assert {await k.fetchval("SHOW borealis.instance") for k in held} == {"i2"}
        grown = await loop.run_in_executor(
            None, _wait, lambda: (lambda r: r if len(r) == 3 else None)(available_readers()), 180,
            "3 available readers")
        assert grown == ["auto1", "auto2", "i2"]
        conf = c.launcher.conf
        assert [conf.instance(n).autoscaled for n in grown] == [True, True, False]
        assert {conf.instance(n).tier for n in ("auto1", "auto2")} == {15}
        # the new readers take reader-endpoint connections (no restart of the proxy)
        extra = [await asyncpg.connect(c.reader_dsn, timeout=10) for _ in range(9)]
        got = Counter([await k.fetchval("SHOW borealis.instance") for k in extra])
        assert set(got) == {"i2", "auto1", "auto2"}, got
        for k in extra:
            await k.close()
        # still at max: 12 sessions want 3 readers
        def scale_events(kind: str):
            evs = [e for e in c.status()["manager"]["events"] if e["kind"] == kind]
            assert all(e["ok"] for e in evs), evs
            evs = [(e["instance"], e["ok"]) for e in evs]
            return evs if len(evs) >= 2 else None

        outs = await loop.run_in_executor(None, _wait, lambda: scale_events("scale_out"), 30, "2 scale-out events")
        assert outs == [("auto1", True), ("auto2", True)], outs
        # the manager's sample lags the third reader's start: wait for a sample that counts it
        st = await loop.run_in_executor(
            None, _wait, lambda: (lambda s: s if (s["autoscale"]["now"] or {}).get("readers") == 3 else None)(
                c.status()), 30, "a sample with 3 readers")
        assert st["autoscale"]["policy"]["max_readers"] == 3
        text = borealis(d, "status")
        assert "AUTOSCALE  on  readers 1..3" in text and "auto1*" in text
        # load goes away: the readers it added are removed, one per cooldown; i2 stays
        for k in held:
            await k.close()
        shrunk = await loop.run_in_executor(
            None, _wait, lambda: (lambda r: r if r == ["i2"] else None)(readers()), 120, "back to one reader")
        assert shrunk == ["i2"]

        ins = await loop.run_in_executor(None, _wait, lambda: scale_events("scale_in"), 30, "2 scale-in events")
        assert sorted(ins) == [("auto1", True), ("auto2", True)], ins

    asyncio.run(scenario())
    st = c.status()
    assert [i["name"] for i in st["instances"]] == ["i1", "i2"]
    assert {e["name"] for e in st["endpoints"]} == {"writer", "reader", "i1", "i2"}
    assert not {"auto1", "auto2"} & set(c.launcher.running())
    # turned off: no more changes, even under load
    borealis(d, "autoscale", "off")
    assert c.launcher.conf.autoscale["enabled"] is False
