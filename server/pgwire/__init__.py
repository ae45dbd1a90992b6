"""PostgreSQL v3 wire-protocol front end: ``messages`` (codec, no I/O), ``connection``
(per-connection state machine), ``server`` (asyncio transport + ``start_pg_server``)."""

from server.pgwire.server import start_pg_server

__all__ = ["start_pg_server"]
