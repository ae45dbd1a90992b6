"""``EngineSession``: one client connection's view of the engine (the Session protocol).

Statement flow: parse (cached) -> classify -> utility statements handled here; SQL gets a
cached ``StmtPlan`` (keyed by catalog version and parameter types) -> ``ensure_loaded`` of
the tables it touches -> run inside the session's transaction with a snapshot (per
statement in READ COMMITTED, per transaction otherwise).  A lock wait (``LockBusy``) or a
write conflict rolls back the statement's writes and restarts it (READ COMMITTED) or
raises 40001 (REPEATABLE READ / SERIALIZABLE).  Autocommit statements and multi-statement
messages run in an implicit transaction committed at the end of the message.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, AsyncIterator

import structlog
from greenlet import getcurrent, greenlet
from sqlglot import exp

from engine import datetime_style, errors, guc, positions, privileges, roles
from engine import types as T
from engine.api import Column, LockBusy, Prepared, Result
from engine.catalog import SEQUENCE_TABLE, Catalog
from engine.context import ExecCtx
from engine.interrupts import Interrupts
from engine.keys import rowid_key
from engine.parse import Stmt
from engine.stmtplan import StmtPlan, build_plan
from engine.txn import Restart, Txn
from engine.waits import wait_until

log = structlog.get_logger("engine")

_ISO_NAMES = {"read uncommitted": "read committed", "read committed": "read committed",
              "repeatable read": "repeatable read", "serializable": "serializable"}


def _unwind(g: greenlet, exc: BaseException) -> None:
    """End the suspended statement greenlet ``g`` by raising ``exc`` where it sleeps (its
    finally blocks run, its generators close); never leave it suspended."""
    try:
        g.throw(exc)
    except BaseException:  # noqa: BLE001 -- ``exc`` (or what the executor made of it) comes back
        pass  # the caller raises ``exc`` itself
    while not g.dead:  # it swallowed the exception and slept again: GreenletExit ends it
        try:
            g.throw()
        except BaseException:  # noqa: BLE001
            pass


class EngineSession:
    def __init__(self, db: Any, user: str, database: str, params: dict[str, str], backend_pid: int = 0) -> None:
        self.db = db
        self.store = db.store
        self.user = user  # the current user (SET ROLE changes it)
        self.session_user = self.login_user = user  # SET SESSION AUTHORIZATION changes session_user
        self.database = database
        self.backend_pid = backend_pid
        self.gucs = guc.defaults(user, db.instance_name, db.store.read_only)
        for k, v in params.items():
            if k.lower() not in ("user", "database", "options", "replication"):
                self.gucs[k.lower()] = v
        self.gucs.update(guc.command_line_options(params.get("options", "")))
        self._startup_gucs = dict(self.gucs)  # what RESET / SET ... TO DEFAULT go back to
        self.txn: Txn | None = None
        self.currvals: dict[str, int] = {}
        # Cancel / statement_timeout / client-gone state, polled by the executor's row loops
        # and at await points (engine.interrupts); a lock wait in progress is interrupted.
        self.interrupts = Interrupts()
        self._waiter: asyncio.Future | None = None
        # Ends the client connection with FATAL 57P01 (set by the pg-wire layer; used by
        # pg_terminate_backend); None for a session without one.
        self.terminate: Any = None
        # what pg_stat_activity shows of this session (unix times; the latest statement's text)
        self.backend_start = time.time()
        self.query = ""
        self.query_start = 0.0

    def cancel(self, stmt: int | None = None) -> None:
        """Cancel the running statement, if any (57014 at its next check point).  ``stmt``:
        the statement a cancel thread already marked (``Interrupts.request_cancel``); a
        later statement is left alone.  Call on the event loop's thread."""
        intr = self.interrupts
        if stmt is None:
            stmt = intr.request_cancel()
        if stmt is None or stmt != intr.stmt:
            return
        if self._waiter is not None and not self._waiter.done():
            self._waiter.cancel()

    def _check_cancel(self) -> None:
        self.interrupts.check_cancel()

    # -- Session protocol ---------------------------------------------------------------------
    @property
    def transaction_status(self) -> str:
        t = self.txn
        if t is None or not t.explicit:
            return "I"
        return "E" if t.failed else "T"

    async def execute(self, sql: str) -> AsyncIterator[Result]:
        try:
            stmts = self.db.parser.parse_bound(sql)
        except errors.SqlError:
            self._fail()
            raise
        if not stmts:
            yield Result("EMPTY")
            return
        last = len(stmts) - 1
        for i, (st, params, ptypes) in enumerate(stmts):
            try:
                res = await self._run(st, params, ptypes)
            except errors.SqlError as e:
                positions.locate(e, st, sql, shaped=bool(params))
                raise
            if i == last and not self._ended_without_commit():
                await self._end_implicit()
            yield res

    def prepare(self, sql: str, param_types: list[int]) -> Prepared:
        datetime_style.activate(self.gucs)
        try:
            stmts = self.db.parser.parse(sql)
        except errors.SqlError:
            self._fail()
            raise
        if len(stmts) > 1:
            raise errors.SyntaxErr("cannot insert multiple commands into a prepared statement")
        if not stmts:
            return Prepared(sql, list(param_types), None, None)
        st = stmts[0]
        if self.txn is not None and self.txn.failed:
            raise errors.InFailedTransaction(
                "current transaction is aborted, commands ignored until end of transaction block")
        if st.kind == "show":
            return Prepared(sql, [], [Column(self._show_name(st.info["name"]), T.TEXT)], st)
        if st.kind != "sql":
            return Prepared(sql, list(param_types), None, st)
        try:
            plan = self._plan(st, self._catalog(), list(param_types))
        except errors.SqlError as e:
            positions.locate(e, st, sql)
            self._fail()
            raise
        ptypes = [t if t not in (0, T.UNKNOWN) else T.TEXT for t in plan.param_types]
        if plan.cacheable and not (self.txn is not None and self.txn.catalog is not None):
            # executions look the plan up by the final parameter types: file it there too,
            # so the first Execute does not plan again
            cat = self._catalog()
            st.plans.setdefault((cat.version, cat.database, tuple(ptypes), datetime_style.current()), plan)
        return Prepared(sql, ptypes, plan.columns, st)

    async def execute_prepared(self, prepared: Prepared, params: list[Any], max_rows: int = 0) -> Result:
        st = prepared.handle
        if st is None:
            return Result("EMPTY")
        try:
            res = await self._run(st, params, prepared.param_types)
        except errors.SqlError as e:
            positions.locate(e, st, prepared.sql)
            raise
        if not self._ended_without_commit():
            await self._end_implicit()
        if max_rows and len(res.rows) > max_rows:
            res.rows = res.rows[:max_rows]
        return res

    def get_parameter(self, name: str) -> str | None:
        n = name.lower()
        if n == "transaction_isolation" and self.txn is not None:
            return self.txn.isolation
        return self.gucs.get(n)

    def set_parameter(self, name: str, value: str) -> None:
        self.gucs[name.lower()] = value

    def parameter_status(self) -> dict[str, str]:
        return {disp: self.gucs[k] for k, disp in guc.REPORTED.items() if k in self.gucs}

    async def close(self) -> None:
        self.db.sessions.pop(self.backend_pid, None)
        if self.txn is not None:
            self._rollback()

    @property
    def activity_state(self) -> str:
        """pg_stat_activity.state"""
        if self.interrupts.running:
            return "active"
        t = self.txn
        if t is not None and t.explicit:
            return "idle in transaction (aborted)" if t.failed else "idle in transaction"
        return "idle"

    def version_string(self) -> str:
        return (f"PostgreSQL {guc.SERVER_VERSION} (Borealis, instance {self.db.instance_name}) on "
                "x86_64-pc-linux-gnu, compiled by Python, 64-bit")

    # -- sequences (called from SQL functions) ------------------------------------------------------
    def _seq(self, name: str, privs: str) -> Any:
        """The sequence, if the current role holds one of ``privs`` on it (42501 otherwise)."""
        cat = self._catalog()
        td = cat.get(name.split(".")[-1].strip('"'))
        if td is None or td.kind != "S":
            raise errors.UndefinedTable(f'relation "{name}" does not exist')
        me = roles.current(self, cat)
        if not privileges.holds_on(cat, me, td, privs):
            raise privileges.denied("sequence", td.name)
        return td

    def nextval(self, name: str) -> int:
        td = self._seq(name, "Uw")
        if self.store.read_only:
            raise errors.ReadOnlyTransaction("cannot execute nextval() in a read-only transaction")
        v = self.db.nextval(td)
        if self.txn is not None:
            self.txn.seqs.add(td.table_id)
        self.currvals[td.name] = v
        return v

    def currval(self, name: str) -> int:
        td = self._seq(name, "rU")
        if td.name not in self.currvals:
            raise errors.SqlError(f'currval of sequence "{td.name}" is not yet defined in this session',
                                  sqlstate="55000")
        return self.currvals[td.name]

    def setval(self, name: str, v: int, called: bool = True) -> int:
        td = self._seq(name, "w")
        if self.store.read_only:
            raise errors.ReadOnlyTransaction("cannot execute setval() in a read-only transaction")
        self.db.setval(td, v, called)
        if self.txn is not None:
            self.txn.seqs.add(td.table_id)
        return v

    # -- internals -------------------------------------------------------------------------------
    def _catalog(self) -> Catalog:
        if self.txn is not None and self.txn.catalog is not None:
            return self.txn.catalog
        return self.db.catalog().scoped(self.database)

    def _plan(self, st: Stmt, catalog: Catalog, param_types: list[int]) -> StmtPlan:
        local = self.txn is not None and self.txn.catalog is not None
        # date/time constants are decoded at plan time under DateStyle / TimeZone
        key = (catalog.version, catalog.database, tuple(param_types), datetime_style.current())
        if not local:
            plan = st.plans.get(key)
            if plan is not None:
                return plan
        plan = build_plan(st.ast, catalog, list(param_types), roles.current(self, catalog))
        if not local and plan.cacheable:
            if len(st.plans) > 8:
                st.plans.clear()
            st.plans[key] = plan
        return plan

    def _new_txn(self, explicit: bool, iso: str | None = None, read_only: bool = False) -> Txn:
        iso = _ISO_NAMES.get(iso or self.gucs["default_transaction_isolation"], "read committed")
        ro = read_only or self.gucs.get("default_transaction_read_only") == "on"
        return Txn(self.store, iso, ro, explicit)

    def _fail(self) -> None:
        t = self.txn
        if t is None:
            return
        if t.explicit:
            t.failed = True
            if t.txid is not None:  # the failed part gives up its row locks at once
                self.store.release_since(t.txid, t.savepoints[-1][1][4] if t.savepoints else 0)
        else:
            self._rollback()

    def _rollback(self) -> None:
        t = self.txn
        self.txn = None
        if t is not None:
            self._end_gucs(t, committed=False)
            if t.ssi is not None:
                t.ssi.abort(t.txid)
            if t.txid is not None:
                self.store.release(t.txid)

    def _end_gucs(self, t: Txn, committed: bool) -> None:
        """Undo SET LOCAL (always) and plain SET (on rollback) made inside the transaction."""
        for name, old in t.guc_undo.items():
            if committed and name not in t.guc_local:
                continue
            if old is None:
                self.gucs.pop(name, None)
            else:
                self.gucs[name] = old
        if "role" in t.guc_undo:  # SET ROLE undone with the transaction
            role = self.gucs.get("role", "none")
            self.user = self.session_user if role == "none" else role

    async def _commit(self) -> None:
        t = self.txn
        if t is None:
            return
        ssi, lsn = t.ssi, None
        try:
            if ssi is not None:
                ssi.precommit(t.txid)  # 40001 for a doomed or dangerous SERIALIZABLE pivot
            if t.has_writes:
                if t.txid is None:
                    t.txid = self.store.new_txid()
                writes = t.write_set()
                for sid in t.seqs:  # current counters, set with no await before commit
                    st = self.db.seqs.get(sid)
                    if st is not None:
                        writes[(SEQUENCE_TABLE, rowid_key(sid))] = tuple(st)
                lsn = await self.store.commit(t.txid, writes)
            if ssi is not None:
                ssi.committed(t.txid, lsn if lsn is not None else self.store.snapshot())
                ssi = None
        finally:
            if ssi is not None:
                ssi.abort(t.txid)
            self.txn = None
            self._end_gucs(t, committed=True)
            if t.txid is not None:
                self.store.release(t.txid)

    def _ended_without_commit(self) -> bool:
        """True when no implicit transaction is left to commit: there is none, the
        transaction block goes on, or it only read and took no lock (then it ends here,
        with no coroutine for the commit -- most statements of a read workload)."""
        t = self.txn
        if t is None or t.explicit:
            return True
        if t.nothing_to_commit:
            self.txn = None
            return True
        return False

    async def _end_implicit(self) -> None:
        if not self._ended_without_commit():
            try:
                await self._commit()
            except errors.SqlError:
                raise
            except Exception as e:  # noqa: BLE001 -- storage failures become SQL errors
                log.exception("commit failed")
                raise errors.StorageUnavailable(f"could not commit: {e}") from None

    async def _run(self, st: Stmt, params: Any, ptypes: Any) -> Result:
        t = self.txn
        if t is not None and t.failed and st.kind not in ("commit", "rollback") and not (
                st.kind == "savepoint" and st.text.lstrip()[:8].lower() == "rollback"):
            raise errors.InFailedTransaction(
                "current transaction is aborted, commands ignored until end of transaction block")
        self.query = st.text
        self.query_start = time.time()
        self.interrupts.begin(self.gucs.get("statement_timeout"))
        datetime_style.activate(self.gucs)
        try:
            if st.kind == "sql":
                return await self._k_sql(st, params, ptypes)
            return await getattr(self, "_k_" + st.kind)(st)
        except errors.SqlError:
            self._fail()
            raise
        except Exception as e:  # noqa: BLE001 -- never a traceback to the client
            log.exception("internal error", sql=st.text[:200])
            self._fail()
            raise errors.InternalError(f"internal error: {type(e).__name__}: {e}") from None
        finally:
            self.interrupts.end()

    # -- SQL statements ------------------------------------------------------------------------------
    async def _k_sql(self, st: Stmt, params: Any, ptypes: Any) -> Result:
        if self.txn is None:
            self.txn = self._new_txn(explicit=False)
        txn = self.txn
        catalog = self._catalog()
        plan = self._plan(st, catalog, list(ptypes) if ptypes else [])
        if plan.writes and (self.store.read_only or txn.read_only):
            raise errors.ReadOnlyTransaction(f"cannot execute {plan.verb} in a read-only transaction")
        if plan.needs:
            privileges.check_needs(plan.needs, self, catalog)
        store = self.store
        tables = store.tables
        for tid in plan.tables:  # mostly all cached: no coroutine for the common case
            t = tables.get(tid)
            if t is None or t.loaded_at is None:
                await store.ensure_loaded(plan.tables)
                break
        started = time.monotonic()
        kept: int | None = None  # READ COMMITTED: the statement snapshot kept across lock waits
        while True:
            if txn.snapshot_per_txn:
                if txn.snapshot is None:
                    txn.snapshot = store.snapshot()
                    if txn.txid is None:
                        txn.txid = store.new_txid()
                    store.pin(txn.txid, txn.snapshot)  # keeps the versions it needs; unpinned by release()
                    if txn.isolation == "serializable" and not store.read_only:
                        txn.ssi = store.ssi
                        txn.ssi.begin(txn.txid, txn.snapshot, txn.read_only)
                if txn.ssi is not None:
                    txn.ssi.check(txn.txid)
                snap = txn.snapshot
            else:
                snap = kept if kept is not None else store.snapshot()
            self._check_cancel()
            ctx = ExecCtx(self, txn, snap, params)
            ctx.catalog = catalog
            txn.begin_statement()
            try:
                if plan.sleeps:
                    tag, rows, notices = await self._run_suspendable(plan, ctx, started)
                else:
                    tag, rows, notices = plan.run(ctx)
            except LockBusy as e:
                txn.rollback_statement()
                if not txn.snapshot_per_txn and txn.txid is not None:
                    # The versions visible at ``snap`` must outlive the wait (the horizon
                    # would otherwise prune them and the re-run would miss its rows).
                    store.pin(txn.txid, snap)
                    kept = snap  # re-run on the same snapshot: changed target rows are re-checked
                else:
                    kept = None
                try:
                    await self._wait_lock(txn, e.holder, started)
                except BaseException:
                    if kept is not None:
                        store.unpin(txn.txid)
                    raise
                continue
            except Restart:
                txn.rollback_statement()
                if kept is not None:
                    store.unpin(txn.txid)
                if txn.snapshot_per_txn:
                    raise errors.SerializationFailure("could not serialize access due to concurrent update") from None
                kept = None  # no re-check possible here: a new snapshot
                continue
            except BaseException:
                if kept is not None:
                    store.unpin(txn.txid)
                raise
            if kept is not None:
                store.unpin(txn.txid)
            return Result(tag, plan.columns, rows, notices)

    async def _run_suspendable(self, plan: StmtPlan, ctx: ExecCtx, started: float) -> tuple[str, list, list[str]]:
        """Run a plan that may call pg_sleep in a greenlet of its own.  The executor is
        synchronous; ``ExecCtx.sleep`` switches back here with the seconds to sleep, the
        sleep is awaited on the event loop (other sessions run; cancel, statement_timeout
        and termination end it) and the statement carries on where it stopped, on the same
        snapshot -- nothing before the sleep is evaluated twice.  If the wait fails, its
        exception is thrown into the greenlet, so the executor unwinds from the sleep as
        from any error, and then raised here.  Any other exception of the plan comes out
        of ``switch`` as from a direct call (the greenlet is then finished)."""
        here = getcurrent()
        g = greenlet(plan.run, here)
        ctx.suspend = g
        g.gr_context = here.gr_context  # contextvars (DateStyle, ...) as in a direct call
        out = g.switch(ctx)
        if g.dead:
            return out
        store, txn = self.store, ctx.txn
        pinned = not txn.snapshot_per_txn  # RR / SERIALIZABLE pin their snapshot already
        if pinned:
            # READ COMMITTED: other sessions commit during the sleep; the versions the
            # statement's snapshot sees must not be pruned before it ends
            if txn.txid is None:
                txn.txid = store.new_txid()
            store.pin(txn.txid, ctx.snapshot)
        try:
            while True:
                try:
                    await self._interruptible(asyncio.sleep(out), self._deadline(started), "statement")
                except BaseException as e:
                    _unwind(g, e)
                    raise
                here = getcurrent()
                g.parent = here
                g.gr_context = here.gr_context  # the pg-wire layer may have moved us into a task
                out = g.switch()
                if g.dead:
                    return out
        finally:
            if pinned:
                store.unpin(txn.txid)

    def _timeout_ms(self, name: str) -> float:
        raw = str(self.gucs.get(name, "0")).strip().lower()
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(ms|s|min|h|d)?", raw)
        if not m:
            return 0.0
        mult = {None: 1, "ms": 1, "s": 1000, "min": 60000, "h": 3600000, "d": 86400000}[m.group(2)]
        return float(m.group(1)) * mult

    async def _wait_lock(self, txn: Txn, holder: int, started: float) -> None:
        """Wait for ``holder`` to finish: deadlock check on the wait-for graph, then a timed wait."""
        store = self.store
        waits = getattr(store, "waits", None)
        me = txn.txid
        if waits is not None and me is not None:
            h: int | None = holder
            seen: set[int] = set()
            while h is not None and h not in seen:
                if h == me:
                    raise errors.DeadlockDetected(
                        "deadlock detected",
                        detail=f"Process {self.backend_pid} waits for transaction {holder}; "
                               f"transaction {holder} waits (directly or indirectly) for this transaction.",
                        hint="See server log for query details.")
                seen.add(h)
                h = waits.get(h)
        limits = [(self._deadline(started), "statement")]
        lk_ms = self._timeout_ms("lock_timeout")
        if lk_ms > 0:
            limits.append((lk_ms / 1000, "lock"))
        timeout, which = min(((t, w) for t, w in limits if t is not None), default=(None, ""))
        if waits is not None and me is not None:
            waits[me] = holder
        try:
            await self._interruptible(store.wait_for(holder), timeout, which)
        finally:
            if waits is not None and me is not None:
                waits.pop(me, None)

    def _deadline(self, started: float) -> float | None:
        """Seconds the statement begun at ``started`` may still run (None: no statement_timeout)."""
        st_ms = self._timeout_ms("statement_timeout")
        return st_ms / 1000 - (time.monotonic() - started) if st_ms > 0 else None

    async def _interruptible(self, aw: Any, timeout: float | None, which: str) -> None:
        """Await ``aw`` (a lock wait, pg_sleep) so that a cancel request ends it (57014), and
        ``timeout`` seconds: a lock_timeout (55P03) or the statement_timeout (57014)."""
        waiter = asyncio.ensure_future(aw)
        if timeout is not None and timeout <= 0:
            waiter.cancel()
            raise errors.QueryCanceled("canceling statement due to statement timeout")
        try:
            self._check_cancel()
        except BaseException:
            waiter.cancel()
            raise
        self._waiter = waiter
        try:
            if timeout is not None and not await wait_until(waiter, timeout):
                waiter.cancel()
                if which == "lock":
                    raise errors.LockNotAvailable("canceling statement due to lock timeout")
                raise errors.QueryCanceled("canceling statement due to statement timeout")
            await waiter
        except asyncio.CancelledError:
            waiter.cancel()  # the connection itself went away while we waited
            self._check_cancel()
            raise
        finally:
            self._waiter = None

    # -- transaction control --------------------------------------------------------------------------
    async def _k_begin(self, st: Stmt) -> Result:
        t = self.txn
        if t is not None and t.explicit:
            return Result("BEGIN", notices=["there is already a transaction in progress"])
        iso = st.info.get("iso")
        if t is not None:
            t.explicit = True
            if iso:
                t.isolation = _ISO_NAMES[iso]
        else:
            self.txn = self._new_txn(True, iso, st.info.get("read_only", False))
        return Result("BEGIN")

    async def _k_commit(self, st: Stmt) -> Result:
        t = self.txn
        if t is None or not t.explicit:
            if t is not None:
                await self._commit()
            return Result("COMMIT", notices=["there is no transaction in progress"])
        if t.failed:
            self._rollback()
            return Result("ROLLBACK")
        await self._commit()
        return Result("COMMIT")

    async def _k_rollback(self, st: Stmt) -> Result:
        t = self.txn
        self._rollback()
        if t is None or not t.explicit:
            return Result("ROLLBACK", notices=["there is no transaction in progress"])
        return Result("ROLLBACK")

    async def _k_savepoint(self, st: Stmt) -> Result:
        """SAVEPOINT / RELEASE / ROLLBACK TO: a savepoint saves copies of the write buffer,
        sequences touched, txn-local catalog and GUCs; ROLLBACK TO restores them and releases
        the row locks taken since (as an error inside the block does at once)."""
        text = " ".join(st.text.split())
        m = (re.fullmatch(r"(savepoint)\s+(\S+)", text, re.I)
             or re.fullmatch(r"(release)\s+(?:savepoint\s+)?(\S+)", text, re.I)
             or re.fullmatch(r"(rollback)\s+(?:work\s+|transaction\s+)?to\s+(?:savepoint\s+)?(\S+)", text, re.I))
        if m is None:
            raise errors.SyntaxErr(f'syntax error at or near "{text.split()[-1]}"')
        verb = m.group(1).lower()
        raw = m.group(2)
        name = raw[1:-1].replace('""', '"') if raw.startswith('"') else raw.lower()
        t = self.txn
        if t is None or not t.explicit:
            what = {"savepoint": "SAVEPOINT", "release": "RELEASE SAVEPOINT", "rollback": "ROLLBACK TO SAVEPOINT"}[verb]
            raise errors.NoActiveTransaction(f"{what} can only be used in transaction blocks")
        if verb == "savepoint":
            state = ({tid: dict(w) for tid, w in t.tables.items()}, set(t.seqs), t.catalog, dict(self.gucs),
                     self.store.lock_mark(t.txid) if t.txid is not None else 0)
            t.savepoints.append((name, state))
            return Result("SAVEPOINT")
        idx = next((i for i in range(len(t.savepoints) - 1, -1, -1) if t.savepoints[i][0] == name), None)
        if idx is None:
            raise errors.SavepointNotFound(f'savepoint "{name}" does not exist')
        if verb == "release":
            del t.savepoints[idx:]
            return Result("RELEASE")
        tables, seqs, catalog, gucs, lock_mark = t.savepoints[idx][1]
        del t.savepoints[idx + 1:]
        if t.txid is not None:  # locks taken since the savepoint go with it
            self.store.release_since(t.txid, lock_mark)
        t.tables = {tid: dict(w) for tid, w in tables.items()}
        t.seqs = set(seqs)
        t.catalog = catalog
        self.gucs = dict(gucs)
        t.failed = False
        t.undo = {}
        return Result("ROLLBACK")

    # -- GUCs ----------------------------------------------------------------------------------------
    def _note_guc(self, name: str, local: bool) -> None:
        t = self.txn
        if t is not None and t.explicit:
            if name not in t.guc_undo:
                t.guc_undo[name] = self.gucs.get(name)
            if local:
                t.guc_local.add(name)

    async def _k_set(self, st: Stmt) -> Result:
        name = st.info["name"].strip('"').lower()
        raw = st.info["value"]
        local = (st.info.get("scope") or "").lower() == "local"
        if local and (self.txn is None or not self.txn.explicit):
            return Result("SET", notices=["SET LOCAL can only be used in transaction blocks"])
        if name in ("role", "session_authorization") or (name == "authorization" and not local):
            from engine import roles  # SET ROLE / SET SESSION AUTHORIZATION

            for noted in ("role", "is_superuser"):
                self._note_guc(noted, local)
            (roles.set_role if name == "role" else roles.set_session_authorization)(self, self._catalog(), raw)
            return Result("SET")
        if name not in ("transaction_isolation", "transaction_read_only"):
            self._note_guc(name, local)
        if raw.strip().lower() == "default":
            d = dict(self._startup_gucs)
            if name in d:
                self.gucs[name] = d[name]
            else:
                self.gucs.pop(name, None)
            return Result("SET")
        value = guc.normalize_value(raw)
        if name == "transaction_isolation":
            return await self._set_iso(value.lower())
        if name == "client_encoding" and value.upper().replace("-", "") not in ("UTF8", "UNICODE"):
            raise errors.FeatureNotSupported(f"conversion to encoding \"{value}\" is not supported",
                                             sqlstate="22023")
        if name == "timezone" and value.upper() not in ("UTC", "GMT", "Z", "ETC/UTC", "0", "+00", "00:00"):
            pass  # accepted; timestamps are still shown in UTC
        if name == "transaction_read_only" and self.txn is not None:
            self.txn.read_only = value.lower() in ("on", "true", "1")
        if name == "default_transaction_read_only" and self.store.read_only and value.lower() in ("off", "false", "0"):
            pass
        if name in ("datestyle", "timezone", "intervalstyle"):
            value = datetime_style.check_setting(name, value, self.gucs.get(name, ""))
        self.gucs[name] = value
        return Result("SET")

    async def _set_iso(self, value: str) -> Result:
        if value not in _ISO_NAMES:
            raise errors.SqlError(f'invalid value for parameter "transaction_isolation": "{value}"', sqlstate="22023")
        if self.txn is not None:
            self.txn.isolation = _ISO_NAMES[value]
        return Result("SET")

    async def _k_set_tz(self, st: Stmt) -> Result:
        self._note_guc("timezone", bool(re.match(r"set\s+local\b", st.text, re.I)))
        v = guc.normalize_value(st.info["value"])
        self.gucs["timezone"] = "UTC" if v.lower() in ("local", "default") else \
            datetime_style.check_setting("timezone", v, self.gucs.get("timezone", ""))
        return Result("SET")

    async def _k_set_names(self, st: Stmt) -> Result:
        self.gucs["client_encoding"] = guc.normalize_value(st.info["value"])
        return Result("SET")

    async def _k_set_txn(self, st: Stmt) -> Result:
        iso = st.info.get("iso")
        if "characteristics" in st.text.lower():
            if iso:
                self.gucs["default_transaction_isolation"] = _ISO_NAMES[iso]
            if st.info.get("read_only"):
                self.gucs["default_transaction_read_only"] = "on"
            return Result("SET")
        if self.txn is not None:
            if iso:
                self.txn.isolation = _ISO_NAMES[iso]
            if st.info.get("read_only"):
                self.txn.read_only = True
            return Result("SET")
        return Result("SET", notices=["SET TRANSACTION can only be used in transaction blocks"])

    def _show_name(self, name: str) -> str:
        n = " ".join(name.lower().split())
        return guc.SHOW_ALIASES.get(n, n)

    async def _k_show(self, st: Stmt) -> Result:
        raw = st.info["name"]
        key = self._show_name(raw)
        if key == "all":
            rows = [(k, v, "") for k, v in sorted(self.gucs.items())]
            return Result("SHOW", [Column("name", T.TEXT), Column("setting", T.TEXT), Column("description", T.TEXT)], rows)
        v = self.get_parameter(key)
        if v is None:
            raise errors.SqlError(f'unrecognized configuration parameter "{key}"', sqlstate="42704")
        colname = key if " " in raw else raw.lower() if key not in guc.REPORTED else guc.REPORTED[key]
        if " " in raw:
            colname = key
        return Result("SHOW", [Column(colname, T.TEXT)], [(v,)])

    async def _k_reset(self, st: Stmt) -> Result:
        name = self._show_name(st.info["name"])
        if name == "role":
            from engine import roles

            roles.set_role(self, self._catalog(), "none")
            return Result("RESET")
        d = dict(self._startup_gucs)
        if name == "all":
            keep = {k: v for k, v in self.gucs.items() if k not in d}
            held = {k: self.gucs[k] for k in ("role", "is_superuser", "session_authorization") if k in self.gucs}
            self.gucs = {**d, **held}  # RESET ALL leaves the role alone, as PostgreSQL
            del keep
        elif name in d:
            self.gucs[name] = d[name]
        else:
            self.gucs.pop(name, None)
        return Result("RESET")

    async def _k_discard(self, st: Stmt) -> Result:
        what = st.info["what"].upper()
        if what == "ALL":
            if self.txn is not None and self.txn.explicit:
                raise errors.SqlError("DISCARD ALL cannot run inside a transaction block", sqlstate="25001")
            self.user = self.session_user = self.login_user  # also SET SESSION AUTHORIZATION DEFAULT
            self.gucs = dict(self._startup_gucs)
            from engine import roles as roles_mod

            self.gucs["is_superuser"] = "on" if roles_mod.is_superuser(self) else "off"
            self.currvals.clear()
        return Result(f"DISCARD {'TEMP' if what == 'TEMPORARY' else what}")

    async def _k_noop(self, st: Stmt) -> Result:
        tag = st.info["tag"].upper()
        if tag == "VACUUM" and self.txn is not None and self.txn.explicit:
            raise errors.SqlError("VACUUM cannot run inside a transaction block", sqlstate="25001")
        return Result(tag)

    async def _k_copy(self, st: Stmt) -> Result:
        from engine.copy import run_copy  # COPY lives in its own module

        return await run_copy(self, st.text)

    async def _k_empty(self, st: Stmt) -> Result:
        return Result("EMPTY")


__all__ = ["EngineSession", "exp"]
