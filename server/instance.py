"""A database instance process: ``python -m server.instance --data-dir DIR --name i1``.

Its role (writer or reader) comes from ``DIR/cluster.json``.  It keeps no durable state:

    pg-wire server (server.pgwire)  ->  engine (engine.Database / EngineSession)
        ->  RowStore = WriterVolume | ReaderVolume (server.volume)  ->  storage nodes
    admin port (server.admin): state for ``borealis status``; redo stream writer -> readers

The pg port opens only once the volume is ready (recovery done on a writer), so "accepts
connections" means "serves queries".
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

import structlog
import uvloop

from server import ccm
from server.admin import AdminServer, RedoSubscriber
from server.cancel import cancel_socket_path
from server.config import ClusterConf
from server.handoff import handoff_enabled, socket_path
from server.heartbeat import HeartbeatResponder, heartbeat_path
from server.logs import configure
from server.volume import ReaderVolume, WriterVolume

log = structlog.get_logger("instance")


async def run(data_dir: str, name: str) -> None:
    from engine import codec
    from engine.database import Database
    from server.pgwire.server import start_pg_server

    conf = ClusterConf.load(data_dir)
    me = conf.instance(name)
    role = me.role
    volume: WriterVolume | ReaderVolume
    admin = AdminServer(name, role, lambda: state())
    if role == "writer":
        volume = WriterVolume(conf, codec, data_dir=data_dir)
        volume.publisher = admin
    else:
        volume = ReaderVolume(conf, codec, data_dir=data_dir)
    admin.vdl_fn = volume.snapshot
    admin.tails_fn = lambda: volume.durable_tails

    open_sessions: set[Any] = set()

    def state() -> dict[str, Any]:
        s = volume.status()
        s["state"] = volume.state
        s["connections"] = len(open_sessions)
        s["cached_tables"] = sorted(ccm.cached_tables(volume))
        if role == "reader":
            s["lag_ms"] = volume.lag_ms  # type: ignore[union-attr]
        return s

    admin_server = await admin.start(conf.host, me.admin_port)
    hb_path = heartbeat_path(data_dir, name)
    if hb_path is not None:
        HeartbeatResponder(hb_path).start()  # answers the manager even while a query runs
    await volume.start()
    sub = None
    if role == "reader":
        sub = RedoSubscriber(name, data_dir, volume)
        sub.start()
        for _ in range(100):  # wait (up to ~10 s) for the redo stream before serving
            if sub.connected:
                break
            await asyncio.sleep(0.1)
    db = Database(volume, instance_name=name, role=role, bootstrap_password=conf.password)
    await db.start()
    ccm_tasks = ccm.attach(role, name, data_dir, volume, admin, sub)  # cluster cache management  # noqa: F841

    async def session_factory(user: str, database: str, params: dict[str, str], peer: Any):
        session = db.login(user, database, params)  # the role must exist and may log in (28000)
        open_sessions.add(session)  # counted for the admin port (autoscaling, status)
        close = session.close

        async def counted_close() -> None:
            open_sessions.discard(session)
            await close()

        session.close = counted_close
        return session

    from server.hba import load_rules
    from server.tls import server_context

    from server.auth import catalog_lookup

    pg_server = await start_pg_server(conf.host, me.port, session_factory, password=conf.password, instance_name=name,
                                      lookup=catalog_lookup(db, conf.password),  # roles of the catalog
                                      ssl_context=server_context(data_dir),
                                      hba=load_rules(data_dir, conf.password is not None),
                                      handoff_path=socket_path(data_dir, name) if handoff_enabled() else None,
                                      cancel_path=cancel_socket_path(data_dir, name))
    log.info("instance_ready", role=role, port=me.port, admin_port=me.admin_port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("instance_stopping")
    pg_server.close()
    admin_server.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="borealis-instance")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--name", required=True)
    args = ap.parse_args(argv)
    configure("instance", args.name)
    try:
        uvloop.run(run(args.data_dir, args.name))
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
