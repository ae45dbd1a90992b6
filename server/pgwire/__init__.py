"""PostgreSQL v3 wire-protocol front end: ``messages`` (codec, no I/O), ``connection``
(per-connection state machine), ``server`` (asyncio transport + ``start_pg_server``).

Nothing is imported here: ``server.auth`` uses ``messages`` and ``server`` uses
``server.auth``, so importing the package must not pull in ``server`` first."""
