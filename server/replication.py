"""Messages on an instance's admin port (storage.wire framing).

    client -> instance                     instance -> client
    GetInstanceState(req)                  InstanceState(req, ...)
    Subscribe(req, reader)                 Redo(vdl, records)*   (stream, writer only)
                                           HotSet(tables)*       (on the stream, with CCM)
    Promote(req, timeout)                  Promoted(req, ok, ...) (reader only: become the
                                                                   writer in place, server.promote)

The redo stream: after ``Subscribe`` the writer sends ``Redo`` frames carrying log records in
LSN order (each transaction's records contiguous, ending with its COMMIT record) and the
writer's VDL.  The first frame has ``start=True`` and no records: its ``vdl`` is the point
from which the stream is complete -- a reader whose applied LSN is below it drops its cache.
A reader applies only whole transactions with commit LSN <= vdl.
"""

from __future__ import annotations

from typing import Union

import msgspec

from storage.records import LogRecord
from storage.wire import Codec


class GetInstanceState(msgspec.Struct, tag=True):
    req: int


class Subscribe(msgspec.Struct, tag=True):
    req: int
    reader: str


class Heartbeat(msgspec.Struct, tag=True):
    """Reader -> writer, on the redo connection: what it has applied (for lag)."""

    applied_lsn: int
    sent_at: float


class InstanceState(msgspec.Struct, tag=True):
    req: int
    name: str
    role: str  # "writer" | "reader"
    state: str  # "starting" | "recovering" | "available"
    applied_lsn: int  # reader: applied VDL; writer: VDL
    lag_ms: float  # reader: how far behind the writer's VDL (ms); writer: 0
    vcl: int
    vdl: int
    epoch: int
    connections: int
    pid: int
    cached_tables: list[int] = []  # table ids cached whole on this instance (server.ccm)


class Redo(msgspec.Struct, tag=True):
    vdl: int
    records: list[LogRecord]
    start: bool = False
    sent_at: float = 0.0
    tails: dict[int, int] = {}  # start frame: per PG, the last record LSN <= vdl


class HotSet(msgspec.Struct, tag=True):
    """Writer -> readers, on the redo stream: the tables the writer has cached, hottest
    first (cluster cache management, server.ccm)."""

    tables: list[int]
    sent_at: float = 0.0


class Promote(msgspec.Struct, tag=True):
    """Manager -> reader: become the writer without a restart (server.promote).  Sent only
    once the old writer is gone; the reader answers ``Promoted`` when it serves as writer."""

    req: int
    timeout: float = 20.0  # seconds the reader may spend before it gives up (ok=False)


class Promoted(msgspec.Struct, tag=True):
    req: int
    ok: bool
    error: str = ""
    epoch: int = 0
    vdl: int = 0  # the recovered VDL: the cache now holds exactly the commits up to it
    applied_lsn: int = 0  # the reader's applied VDL when the promotion began
    cached_tables: list[int] = []  # tables still cached after the promotion
    dropped_tables: list[int] = []  # tables dropped from the cache (reload on demand)
    from_buffer: int = 0  # commits in (applied_lsn, vdl] applied from the buffered redo
    from_storage: int = 0  # ... read back from storage (the reader had not received them)
    sessions_closed: int = 0  # reader sessions terminated (57P01)
    seconds: dict[str, float] = {}  # step -> seconds


class AdminError(msgspec.Struct, tag=True):
    req: int
    message: str


AdminRequest = Union[GetInstanceState, Subscribe, Heartbeat, Promote]
AdminReply = Union[InstanceState, Redo, HotSet, Promoted, AdminError]

ADMIN_REQUESTS = Codec(AdminRequest)
ADMIN_REPLIES = Codec(AdminReply)
