"""Messages on an instance's admin port (storage.wire framing).

    client -> instance                     instance -> client
    GetInstanceState(req)                  InstanceState(req, ...)
    Subscribe(req, reader)                 Redo(vdl, records)*   (stream, writer only)
                                           HotSet(tables)*       (on the stream, with CCM)

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


class AdminError(msgspec.Struct, tag=True):
    req: int
    message: str


AdminRequest = Union[GetInstanceState, Subscribe, Heartbeat]
AdminReply = Union[InstanceState, Redo, HotSet, AdminError]

ADMIN_REQUESTS = Codec(AdminRequest)
ADMIN_REPLIES = Codec(AdminReply)
