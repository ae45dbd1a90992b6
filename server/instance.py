"""A database instance process: ``python -m server.instance --data-dir DIR --name i1``.

Its role (writer or reader) comes from ``DIR/cluster.json``.  It keeps no durable state:

    pg-wire server (server.pgwire)  ->  engine (engine.Database / EngineSession)
        ->  RowStore = WriterVolume | ReaderVolume (server.volume)  ->  storage nodes
    admin port (server.admin): state for ``borealis status``; redo stream writer -> readers

The pg port opens only once the volume is ready (recovery done on a writer), so "accepts
connections" means "serves queries".

A reader can become the writer in place when the cluster manager asks (``Promote`` on the
admin port, server.promote): same process, same ports, its cache kept; its reader sessions
are ended (57P01).
"""

from __future__ import annotations

import argparse
import asyncio
import os
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
from storage.mtls import InternalTls

log = structlog.get_logger("instance")


class Instance:
    """One instance's parts, so that a promotion (server.promote) can swap the reader ones
    for writer ones in the running process."""

    def __init__(self, data_dir: str, name: str) -> None:
        from engine import codec

        self.data_dir = data_dir
        self.name = name
        self.conf = ClusterConf.load(data_dir)
        self.me = self.conf.instance(name)
        self.role = self.me.role
        self.admin = AdminServer(name, self.role, self.state)
        self.volume: WriterVolume | ReaderVolume
        if self.role == "writer":
            self.volume = WriterVolume(self.conf, codec, data_dir=data_dir)
            self.volume.publisher = self.admin
        else:
            self.volume = ReaderVolume(self.conf, codec, data_dir=data_dir)
            self.admin.promote_fn = self._promote
        self.admin.vdl_fn = self.volume.snapshot
        self.admin.tails_fn = lambda: self.volume.durable_tails
        self.open_sessions: set[Any] = set()
        self.backends: dict[Any, Any] = {}  # pg-wire connections with a session (server.pgwire)
        self.sub: RedoSubscriber | None = None
        self.db: Any = None
        self.ccm: ccm.CcmWiring | None = None
        self.serving = False  # the pg port is open: until then the admin port says "starting"

    def state(self) -> dict[str, Any]:
        volume = self.volume
        s = volume.status()
        # "available" means "takes connections" (autoscaling, status and tests count on it): a
        # reader's volume is ready before the redo stream is joined and the pg port opens
        s["state"] = volume.state if self.serving or volume.state != "available" else "starting"
        s["connections"] = len(self.open_sessions)
        s["cached_tables"] = sorted(ccm.cached_tables(volume))
        if isinstance(volume, ReaderVolume):
            s["lag_ms"] = volume.lag_ms
        return s

    async def _promote(self, req: int, timeout: float) -> Any:
        from server.promote import promote
        from server.replication import Promoted

        if self.db is None or self.volume.state != "available":
            return Promoted(req=req, ok=False, error=f"not ready ({self.volume.state})")
        return await promote(self, req, timeout)

    def stop_following(self) -> None:
        """Promotion, step 1: no more redo, no more CCM warming."""
        if self.sub is not None:
            self.sub.stop()
        if self.ccm is not None and self.ccm.warmer is not None and self.ccm.warmer._task is not None:
            self.ccm.warmer._task.cancel()

    def become_writer(self, writer: WriterVolume, shutdown: Exception) -> int:
        """Promotion, last step (synchronous): serve as the writer.  Ends the reader's
        sessions with ``shutdown``; returns how many."""
        from server.promote import terminate_sessions

        closed = terminate_sessions(self.backends, shutdown)
        self.volume = writer
        self.role = "writer"
        writer.publisher = self.admin
        self.admin.become_writer(writer.snapshot, lambda: writer.durable_tails)
        self.db.promote(writer)
        self.sub = None
        if self.ccm is not None:
            self.ccm.become_writer(writer, self.admin)
        return closed

    async def run(self) -> None:
        from engine.database import Database
        from server.pgwire.server import start_pg_server
        from server.hba import load_rules  # noqa: I001 -- pgwire first (server.auth imports it)
        from server.tls import server_context
        from server.auth import catalog_lookup

        conf, me, name, data_dir = self.conf, self.me, self.name, self.data_dir
        admin_server = await self.admin.start(conf.host, me.admin_port, InternalTls.load(data_dir))
        hb_path = heartbeat_path(data_dir, name)
        if hb_path is not None:
            HeartbeatResponder(hb_path).start()  # answers the manager even while a query runs
        await self.volume.start()
        if self.role == "reader":
            self.sub = RedoSubscriber(name, data_dir, self.volume)
            self.sub.start()
            for _ in range(100):  # wait (up to ~10 s) for the redo stream before serving
                if self.sub.connected:
                    break
                await asyncio.sleep(0.1)
        self.db = db = Database(self.volume, instance_name=name, role=self.role,
                                 bootstrap_verifier=conf.password_verifier)
        await db.start()
        open_sessions = self.open_sessions

        async def session_factory(user: str, database: str, params: dict[str, str], peer: Any):
            session = db.login(user, database, params)  # the role must exist and may log in (28000)
            open_sessions.add(session)  # counted for the admin port (autoscaling, status)
            close = session.close

            async def counted_close() -> None:
                open_sessions.discard(session)
                await close()

            session.close = counted_close
            return session

        pg_server = await start_pg_server(conf.host, me.port, session_factory, verifier=conf.password_verifier,
                                          instance_name=name,
                                          lookup=catalog_lookup(db, conf.password_verifier),  # roles of the catalog
                                          ssl_context=server_context(data_dir),
                                          hba=load_rules(data_dir, conf.password_verifier is not None),
                                          handoff_path=socket_path(data_dir, name) if handoff_enabled() else None,
                                          cancel_path=cancel_socket_path(data_dir, name),
                                          backends=self.backends)
        # Cluster cache management after the port is open: a writer's warm start loads its
        # tables on this event loop and would otherwise hold the port closed until it is done.
        self.serving = True
        self.ccm = ccm.attach(self.role, name, data_dir, self.volume, self.admin, self.sub)
        log.info("instance_ready", role=self.role, port=me.port, admin_port=me.admin_port)

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log.info("instance_stopping")
        pg_server.close()
        admin_server.close()


async def run(data_dir: str, name: str) -> None:
    await Instance(data_dir, name).run()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="borealis-instance")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--name", required=True)
    args = ap.parse_args(argv)
    os.umask(0o077)  # whatever this instance writes under the data directory: owner only
    configure("instance", args.name)
    # The heartbeat and cancel threads get the GIL within 1 ms of waking while the event
    # loop is busy (the default 5 ms would be the wait), as on storage nodes.
    sys.setswitchinterval(0.001)
    try:
        uvloop.run(run(args.data_dir, args.name))
    except KeyboardInterrupt:
        pass
    sys.exit(0)


if __name__ == "__main__":
    main()
