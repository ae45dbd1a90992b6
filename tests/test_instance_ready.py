"""An instance says "available" on its admin port only once its pg port takes connections.

Autoscaling, the cluster manager, ``borealis status`` and the reader endpoint's users read
"available" as "a connection routed there is served".  A new reader's volume is ready
before it has joined the redo stream, loaded its catalog and opened its pg port; in that
window it must say "starting".
"""

from __future__ import annotations

import asyncio
import threading
import time

from server.config import ClusterConf
from server.launcher import accepts
from server.status import instance_state
from storage.mtls import InternalTls
from tests.cluster import borealis_cli as borealis


def test_a_new_reader_is_available_only_when_its_port_accepts(make_cluster) -> None:
    c = make_cluster(readers=1)
    d = c.data_dir
    adding = threading.Thread(target=borealis, args=(d, "instance", "add", "i5"), daemon=True)
    adding.start()

    async def watch() -> list[tuple[str, bool]]:
        """(state, pg port accepts) for every answer of i5's admin port until it serves."""
        seen: list[tuple[str, bool]] = []
        tls = InternalTls.load(d)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                conf = ClusterConf.load(d)
                inst = conf.instance("i5")
            except KeyError:
                await asyncio.sleep(0.005)
                continue
            st = await instance_state(conf.host, inst.admin_port, 0.5, tls=tls)
            if st is not None:
                # ask the pg port right after the admin port answered
                seen.append((st.state, accepts(conf.host, inst.port)))
                if st.state == "available":
                    return seen
            await asyncio.sleep(0.002)
        return seen

    seen = asyncio.run(watch())
    adding.join(120)
    assert seen and seen[-1][0] == "available", seen
    # every "available" answer came with an open pg port
    assert all(port_open for state, port_open in seen if state == "available"), seen
    # the instance is watched from before it serves: the window exists and says "starting"
    assert any(state == "starting" for state, _ in seen), seen
