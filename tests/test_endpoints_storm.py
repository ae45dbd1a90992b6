"""Endpoints on a real cluster under many connections (make_cluster(readers=3): i1 writer,
readers i2..i4, later i5).

* connection storm: 500 short connections (connect, SHOW borealis.instance, close) with
  50 at a time through the writer endpoint and again through the reader endpoint -- every
  one succeeds, on the right instances; afterwards every instance is back to zero open
  sessions and still available, and ``borealis status`` reports per backend how many
  connections each endpoint routed and how many sessions each instance holds;
* 300 held connections through the reader endpoint spread over the 3 readers within +-10%;
* a reader added with ``borealis instance add`` takes reader-endpoint connections without
  any restart; a custom endpoint over 2 of the 4 readers never routes anywhere else.
"""

from __future__ import annotations

from tests.cluster import borealis_cli as borealis, wait_for as _wait
import asyncio
import subprocess
import sys
import time
from collections import Counter

import asyncpg

from server.launcher import accepts, free_ports

STORM = 500
CONCURRENCY = 50






async def storm(dsn: str, n: int = STORM, concurrency: int = CONCURRENCY) -> tuple[Counter, list[str], float]:
    """``n`` short connections, ``concurrency`` at a time: (instances seen, errors, seconds)."""
    seen: Counter = Counter()
    errors: list[str] = []
    todo = iter(range(n))

    async def one_client() -> None:
        for _ in todo:
            try:
                conn = await asyncpg.connect(dsn, timeout=20)
                try:
                    seen[await conn.fetchval("SHOW borealis.instance")] += 1
                finally:
                    await conn.close(timeout=10)
            except Exception as e:  # noqa: BLE001 -- every failure is reported by the assertion
                errors.append(f"{type(e).__name__}: {e}")

    t0 = time.monotonic()
    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    return seen, errors, time.monotonic() - t0


async def held(dsn: str, n: int) -> tuple[list[asyncpg.Connection], Counter]:
    conns = [await asyncpg.connect(dsn, timeout=20) for _ in range(n)]
    return conns, Counter([await k.fetchval("SHOW borealis.instance") for k in conns])


async def close_all(conns: list[asyncpg.Connection]) -> None:
    await asyncio.gather(*(k.close(timeout=10) for k in conns))


def test_connection_storm_and_balance(make_cluster) -> None:
    c = make_cluster(readers=3)
    d = c.data_dir
    host = c.launcher.conf.host
    readers = {"i2", "i3", "i4"}
    proxy_pid = c.launcher.pid("endpoints")

    # --- a storm through each endpoint ------------------------------------------------------
    w_seen, w_err, w_s = asyncio.run(storm(c.writer_dsn))
    r_seen, r_err, r_s = asyncio.run(storm(c.reader_dsn))
    print(f"\nstorm: writer endpoint {STORM / w_s:.0f} connects/s ({dict(w_seen)}), "
          f"reader endpoint {STORM / r_s:.0f} connects/s ({dict(r_seen)})")
    assert not w_err and not r_err, (w_err[:5], r_err[:5])
    assert w_seen == Counter({"i1": STORM})
    assert set(r_seen) == readers and sum(r_seen.values()) == STORM
    assert max(r_seen.values()) - min(r_seen.values()) <= STORM // 10, r_seen

    def settled():
        st = c.status()
        ok = all(i["state"] == "available" and i["connections"] == 0 for i in st["instances"])
        return st if ok else None

    st = _wait(settled, 20, "every instance available with no session left open")
    st = _wait(lambda: (lambda s: s if sum(s["endpoints"][1]["routed"].values()) >= STORM else None)(c.status()),
               10, "the proxy's counts")
    eps = {e["name"]: e for e in st["endpoints"]}
    assert eps["writer"]["routed"] == {"i1": STORM}
    assert eps["reader"]["routed"] == dict(r_seen)  # per backend, as the clients saw it
    text = borealis(d, "status")
    assert f"i1={STORM}" in text and "sessions" in text

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        # --- 300 held connections over 3 readers, within +-10% ------------------------------
        conns, names = await held(c.reader_dsn, 300)
        print(f"300 reader-endpoint connections: {dict(names)}")
        assert set(names) == readers and all(90 <= v <= 110 for v in names.values()), names
        st = await loop.run_in_executor(None, c.status)
        sessions = {i["name"]: i["connections"] for i in st["instances"]}
        assert {n: sessions[n] for n in readers} == dict(names)  # the instances count them too
        await close_all(conns)

        # --- a 4th reader joins the reader endpoint without a restart -----------------------
        await loop.run_in_executor(None, borealis, d, "instance", "add", "i5")
        assert c.launcher.pid("endpoints") == proxy_pid
        conns, names = await held(c.reader_dsn, 40)
        assert set(names) == readers | {"i5"} and all(v == 10 for v in names.values()), names
        await close_all(conns)

        # --- a custom endpoint of 2 of the 4 readers never routes elsewhere ------------------
        (port,) = free_ports(1)
        await loop.run_in_executor(None, borealis, d, "endpoint", "create", "pair", "--port", str(port),
                                   "--members", "i3,i5", "--type", "reader")
        await loop.run_in_executor(None, _wait, lambda: accepts(host, port), 10, "the custom endpoint's port")
        pair = f"postgresql://postgres@{host}:{port}/postgres"
        seen, errors, _ = await storm(pair, 100, 20)
        assert not errors, errors[:5]
        assert set(seen) == {"i3", "i5"} and all(v == 50 for v in seen.values()), seen
        conns, names = await held(pair, 30)
        assert set(names) == {"i3", "i5"}, names
        await close_all(conns)

    asyncio.run(scenario())

    def pair_routed():
        st = c.status()
        assert all(i["state"] == "available" for i in st["instances"])
        routed = next(e for e in st["endpoints"] if e["name"] == "pair")["routed"]
        return routed if sum(routed.values()) == 130 else None

    assert _wait(pair_routed, 10, "the proxy's counts") == {"i3": 65, "i5": 65}
