"""``Database``: the engine's per-instance state shared by all sessions.

Holds the catalog cache (rebuilt when the catalog version row ``b"v"`` of table 0 gets a
new LSN -- on readers that happens when redo for a DDL is applied), the parse/plan cache,
in-memory sequence counters (nextval is not transactional) and per-table rowid counters
for tables without a primary key.
"""

from __future__ import annotations

from typing import Any

import structlog

from engine import errors, passwords, roles
from engine.api import RowStore
from engine.catalog import CATALOG_TABLE, SEQUENCE_TABLE, VERSION_KEY, Catalog, TableDef
from engine.keys import row_id_key, row_id_of, rowid_key
from engine.parse import Parser

log = structlog.get_logger("engine")


class Database:
    def __init__(self, store: RowStore, *, instance_name: str, role: str,
                 bootstrap_password: str | None = None, bootstrap_verifier: str | None = None) -> None:
        self.store = store
        # the cluster password (cluster.json keeps its verifier) belongs to the bootstrap
        # superuser until ALTER ROLE stores a password of its own; shown in pg_authid
        self.bootstrap_verifier = bootstrap_verifier or (
            passwords.scram_text(passwords.make_scram(bootstrap_password)) if bootstrap_password is not None else None)
        self.instance_name = instance_name
        self.role = role
        self.parser = Parser()
        self._catalog: Catalog | None = None
        self._catalog_lsn = -1
        self._catalog_at = -1  # the snapshot the cached catalog was last checked at
        self.seqs: dict[int, list] = {}  # seq id -> [last_value, is_called]
        self._rowids: dict[int, int] = {}
        self._next_pid = 1000
        self._role_sessions: dict[int, int] = {}  # live logins per role oid (CONNECTION LIMIT)
        self.sessions: dict[int, Any] = {}  # backend pid -> open session (pg_stat_activity, pg_cancel_backend)

    async def start(self) -> None:
        await self.store.ensure_loaded([CATALOG_TABLE, SEQUENCE_TABLE])
        self.catalog()
        log.info("engine started", instance=self.instance_name, role=self.role,
                 tables=len(self._catalog.tables) if self._catalog else 0)

    def promote(self, store: RowStore) -> None:
        """This instance became the writer in place (server.promote): serve from ``store``,
        which holds the reader's cache brought to the recovered VDL.  In-memory counters
        are rebuilt from the store on first use, as on a writer that starts; sessions
        opened as a reader keep the old store and are ended by the caller."""
        self.store = store
        self.role = "writer"
        self._catalog = None
        self._catalog_lsn = -1
        self._catalog_at = -1
        self.seqs.clear()
        self._rowids.clear()
        log.info("engine promoted", instance=self.instance_name, role=self.role)

    def catalog(self) -> Catalog:
        """The catalog as of the current snapshot.  Every statement asks, so the common
        answer -- nothing committed since the last look -- costs one comparison."""
        store = self.store
        snap = store.snapshot()
        cat = self._catalog
        if cat is not None:
            if snap == self._catalog_at:
                return cat
            t = store.tables.get(CATALOG_TABLE)
            if t is None or t.loaded_at is None:
                # A reader that dropped its cache (it missed redo) is reloading the catalog
                # table: the previous catalog serves meanwhile, never one built from a part.
                return cat
        lsn = store.latest_lsn(CATALOG_TABLE, VERSION_KEY)
        if lsn > snap:
            # A DDL commit not durable yet (the writer applies a commit to its cache before
            # the VDL reaches it): nobody may see it, and the newest version at ``snap`` is
            # not known from here -- build that catalog, and keep nothing.
            return Catalog.from_rows(store.scan(CATALOG_TABLE, snap))
        if lsn != self._catalog_lsn or cat is None:
            cat = self._catalog = Catalog.from_rows(store.scan(CATALOG_TABLE, snap))
            self._catalog_lsn = lsn
        self._catalog_at = snap
        return cat

    def session(self, user: str, database: str, params: dict[str, str] | None = None) -> Any:
        from engine.session import EngineSession

        if database not in self.catalog().databases:
            raise errors.UndefinedDatabase(f'database "{database}" does not exist')
        self._next_pid += 1
        session = EngineSession(self, user, database, params or {}, backend_pid=self._next_pid)
        role = self.catalog().role(user)
        session.gucs["is_superuser"] = "on" if role is not None and role.superuser else "off"
        self.sessions[session.backend_pid] = session  # until session.close()
        return session

    def _check_connect(self, role: Any, database: str) -> None:
        """CONNECT on the database (PUBLIC holds it unless revoked), as PostgreSQL checks it
        once the database is known to exist."""
        from engine import privileges

        cat = self.catalog()
        if database not in cat.databases or role.superuser:
            return
        acl = privileges.database_acl(cat, database)
        if acl is not None and not privileges.holds(cat.scoped(database), role, acl[1], "c"):
            raise errors.SqlError(f'permission denied for database "{database}"', sqlstate="42501",
                                  detail="User does not have CONNECT privilege.")

    def login(self, user: str, database: str, params: dict[str, str] | None = None) -> Any:
        """A session for a client that has authenticated: the role must exist and may log in
        (FATAL 28000, checked before the database as PostgreSQL does)."""
        role = roles.check_login(self.catalog(), user)
        self._check_connect(role, database)
        n = self._role_sessions.get(role.oid, 0)
        if role.connlimit >= 0 and not role.superuser and n >= role.connlimit:
            raise errors.SqlError(f'too many connections for role "{user}"', sqlstate="53300")
        # ALTER DATABASE ... SET defaults, under ALTER ROLE ... SET ones, under what the
        # client's startup packet sets
        d = self.catalog().database_def(database)
        db_defaults = dict(roles.login_settings(d)) if d is not None else {}
        merged = {**db_defaults, **dict(roles.login_settings(role)), **(params or {})}
        session = self.session(user, database, merged)
        self._role_sessions[role.oid] = n + 1
        close = session.close

        async def counted_close() -> None:
            if self._role_sessions.get(role.oid, 0) > 0 and not getattr(session, "_role_released", False):
                session._role_released = True
                self._role_sessions[role.oid] -= 1
            await close()

        session.close = counted_close
        return session

    # -- sequences ----------------------------------------------------------------------------
    def seq_state(self, td: TableDef) -> list:
        st = self.seqs.get(td.table_id)
        if st is None:
            row = self.store.get(SEQUENCE_TABLE, rowid_key(td.table_id), self.store.snapshot())
            st = list(row) if row is not None else [td.seq.start if td.seq else 1, False]
            self.seqs[td.table_id] = st
        return st

    def nextval(self, td: TableDef) -> int:
        st = self.seq_state(td)
        sd = td.seq
        assert sd is not None
        if not st[1]:
            v = st[0]
        else:
            v = st[0] + sd.increment
            if v > sd.max_value or v < sd.min_value:
                if not sd.cycle:
                    which = "maximum" if v > sd.max_value else "minimum"
                    raise errors.SqlError(f'nextval: reached {which} value of sequence "{td.name}" ({sd.max_value if v > sd.max_value else sd.min_value})',
                                          sqlstate="2200H")
                v = sd.min_value if sd.increment > 0 else sd.max_value
        st[0], st[1] = v, True
        return v

    def setval(self, td: TableDef, v: int, called: bool) -> int:
        st = self.seq_state(td)
        st[0], st[1] = v, called
        return v

    # -- rowids --------------------------------------------------------------------------------
    def next_rowid(self, td: TableDef, txn: Any) -> bytes:
        return row_id_key(self.reserve_rowids(td, txn, 1))

    def reserve_rowids(self, td: TableDef, txn: Any, count: int) -> int:
        """Number ``count`` new rows of a table without a primary key; returns the first
        number (keys: ``engine.keys.row_id_keys``)."""
        n = self._rowids.get(td.table_id)
        if n is None:
            n = 0
            for key, _ in txn.scan(td.table_id, self.store.snapshot()):
                i = row_id_of(key)
                if i is not None and i > n:
                    n = i
            for key in txn.tables.get(td.table_id, {}):
                i = row_id_of(key)
                if i is not None and i > n:
                    n = i
        self._rowids[td.table_id] = n + count
        return n + 1
