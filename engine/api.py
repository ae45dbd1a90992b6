"""The two seams of the engine.

Below the engine: ``RowStore`` -- what an instance (writer or reader) gives the engine.
It is implemented by ``server.volume._Volume`` (``WriterVolume`` / ``ReaderVolume``) (cache + redo + storage nodes, over
``engine.memstore.VersionedTables``); the engine's tests drive it through a real cluster.

Above the engine: ``Session`` / ``Result`` / ``Column`` -- what the pg-wire server uses.

Data model seen through RowStore
--------------------------------
The volume is a key/value space of *tables* (``table_id: int``).  Keys are ``bytes``
(order-preserving encodings chosen by the engine, see ``engine.keys``); values are
Python rows (tuples of Python values: None, bool, int, float, Decimal, str, bytes,
datetime/date/time/timedelta, uuid.UUID, dict/list for json, lists for arrays).
Table 0 is the catalog, owned by the engine like any other table.

Every committed version carries the LSN of its transaction's commit.  A *snapshot* is an
LSN: a read at snapshot S sees, for each key, the newest committed version with lsn <= S.
Writes are buffered in the engine's transaction and handed to ``commit`` as one batch;
nothing uncommitted ever reaches the store.

Concurrency (writer only): before buffering a write of (table_id, key) a transaction
calls ``lock``; it raises ``LockBusy(holder)`` if another transaction holds the lock --
the session then awaits ``wait_for(holder)`` and restarts the statement.  Locks are
released by ``release(txid)`` after commit is durable or on rollback.  A write whose row
has a committed version newer than the statement's snapshot (``latest_lsn`` > snapshot)
is a conflict: READ COMMITTED restarts the statement with a fresh snapshot, REPEATABLE
READ / SERIALIZABLE raise 40001.
SERIALIZABLE transactions also report their reads and writes to ``store.ssi``
(``engine.ssi.SsiTracker``), which fails a pivot of a dangerous structure with 40001.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Iterable, Iterator, Protocol

Row = tuple
Key = bytes

# A write of ``(table_id, TABLE_DROPPED) -> None`` in a transaction drops the table's rows
# (DROP TABLE): ``Txn.write_set`` turns it into ``WriteSet.dropped`` and the store logs one
# range tombstone per protection group instead of a delete per row.  Row keys never start
# with 0xFF (``engine.keys``), so this key is no row's.
TABLE_DROPPED: Key = b"\xff\xffdropped"


class WriteSet(dict):
    """The writes of one commit, ``{(table_id, key): row | None}``, plus ``dropped``: the
    ids of the tables the commit drops (every row dead as of the commit; the dict holds no
    write of theirs).  Table ids, once committed, are never allocated again, so nothing
    reads a dropped table at a later snapshot."""

    __slots__ = ("dropped",)

    def __init__(self, *args: Any, dropped: tuple[int, ...] = ()) -> None:
        super().__init__(*args)
        self.dropped = dropped


class LockBusy(Exception):
    def __init__(self, holder: int) -> None:
        super().__init__(f"lock held by transaction {holder}")
        self.holder = holder


class RowStore(Protocol):
    read_only: bool  # True on readers: writes must fail with 25006

    def snapshot(self) -> int:
        """The current read point: VDL on the writer, applied VDL on a reader."""

    async def ensure_loaded(self, table_ids: Iterable[int]) -> None:
        """Make the tables readable synchronously (fetch from storage if not cached)."""

    def scan(self, table_id: int, snapshot: int) -> Iterator[tuple[Key, Row]]:
        """Committed rows visible at ``snapshot``, in key order. Table must be loaded."""

    def get(self, table_id: int, key: Key, snapshot: int) -> Row | None:
        """Committed row visible at ``snapshot``. Table must be loaded."""

    def latest_lsn(self, table_id: int, key: Key) -> int:
        """LSN of the newest committed version of the key (0 if none)."""

    def new_txid(self) -> int: ...

    def lock(self, txid: int, table_id: int, key: Key, shared: bool = False) -> None:
        """Take the row lock (shared: FOR SHARE, compatible with other shared holders) or
        raise LockBusy(holder)."""

    def lock_many(self, txid: int, table_id: int, keys: Iterable[Key]) -> None:
        """Exclusive ``lock`` of many rows of one table, or LockBusy at the first one held."""

    def lock_mark(self, txid: int) -> int:
        """A mark of the locks held so far (taken at SAVEPOINT)."""

    def release_since(self, txid: int, mark: int) -> None:
        """Release the locks taken after ``mark`` (ROLLBACK TO, an error in the block)."""

    async def wait_for(self, txid: int) -> None:
        """Wait until transaction ``txid`` has released its locks."""

    def lock_table(self, txid: int, table_id: int) -> None:
        """Exclusive lock on a whole table (DROP TABLE), or LockBusy while another
        transaction holds a lock on any of its rows; until ``release`` every other
        transaction's ``lock`` on the table waits.  Once a commit dropped the table, ``lock``
        on it raises UndefinedTable (42P01) -- a writer that waited for the drop."""

    async def commit(self, txid: int, writes: dict[tuple[int, Key], Row | None]) -> int:
        """Log the writes (None = delete) as one transaction; returns once durable
        (VDL >= commit LSN).  Returns the commit LSN.  Does not release locks.  A
        ``WriteSet`` also drops its ``dropped`` tables: their cached rows are forgotten
        once no snapshot before the commit is left."""

    def release(self, txid: int) -> None:
        """Release the transaction's locks (and its pinned snapshot)."""

    def pin(self, txid: int, snapshot: int) -> None:
        """A snapshot used across statements (REPEATABLE READ): keep its versions until
        ``release(txid)``.  Versions no pinned or current snapshot can see are dropped."""

    def unpin(self, txid: int) -> None:
        """Drop ``txid``'s pinned snapshot but keep its locks (a READ COMMITTED statement
        that kept its snapshot across a lock wait has finished)."""

    def status_rows(self) -> list[dict[str, Any]]:
        """Instance/volume facts for introspection functions (may be empty)."""


@dataclass(frozen=True)
class Column:
    name: str
    type_oid: int
    type_size: int = -1
    type_mod: int = -1
    table_oid: int = 0
    column_number: int = 0


@dataclass
class Result:
    command_tag: str  # e.g. "SELECT 3", "INSERT 0 1", "CREATE TABLE", "BEGIN"
    columns: list[Column] | None = None  # None: the statement returns no row description
    rows: list[Row] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Prepared:
    """A parsed statement ready to execute with parameters ($1..$n)."""

    sql: str
    param_types: list[int]  # type OIDs, inferred where the client sent 0
    columns: list[Column] | None  # row description (None for no-row statements)
    handle: Any = None  # engine-private plan/AST


class Session(Protocol):
    """One client connection's view of the engine (``engine.session.EngineSession``)."""

    @property
    def transaction_status(self) -> str:
        """'I' idle, 'T' in a transaction block, 'E' in a failed transaction block."""

    def execute(self, sql: str) -> AsyncIterator[Result]:
        """Simple query: an async generator yielding one Result per statement of ``sql``;
        raises SqlError at the first failing statement (results already yielded stand).
        Implicit-transaction semantics as PostgreSQL: several statements in one message
        without BEGIN run as one transaction."""

    def prepare(self, sql: str, param_types: list[int]) -> Prepared: ...

    async def execute_prepared(self, prepared: Prepared, params: list[Any], max_rows: int = 0) -> Result: ...

    def get_parameter(self, name: str) -> str | None: ...

    def parameter_status(self) -> dict[str, str]:
        """GUCs reported to the client with ParameterStatus at startup."""

    async def close(self) -> None:
        """Roll back any open transaction."""
