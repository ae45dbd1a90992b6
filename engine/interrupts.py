"""Interrupting a running statement: cancel requests, statement_timeout, a vanished client.

An instance runs every session on one event loop, so a CPU-bound statement keeps the loop
busy until it ends: nothing else on the instance runs, and not even a CancelRequest can be
read by the loop.  The executor's row loops therefore poll a per-session ``Interrupts``
object now and then (``check``: every few thousand rows and at the start of every scan),
and the cancel path writes into it from a thread (``server.cancel``) that does not need
the loop.

Statements are numbered: ``stmt`` is odd while one runs and even between statements.  A
cancel marks the statement running when it arrives (``cancel_stmt = stmt``), so a cancel
that lands between two statements, or after the one it was meant for has ended, never
cancels the next one.  Writing one int from another thread is atomic under the GIL.

``check`` costs one attribute compare when nothing is pending; the clock is read only
there, and the client socket is probed (``probe``, set by the pg-wire layer) at most every
``PROBE_EVERY`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from engine import errors

CHECK_EVERY = 2048  # rows between two checks in a row loop
PROBE_EVERY = 0.5  # seconds between two probes of the client socket

_USER = "canceling statement due to user request"
_TIMEOUT = "canceling statement due to statement timeout"


class ClientConnectionLost(errors.SqlError):
    """The client went away while its statement ran (the reply would go nowhere)."""

    sqlstate = "08006"
    severity = "FATAL"


class Interrupts:
    """Interrupt state of one session (see the module docstring)."""

    __slots__ = ("stmt", "cancel_stmt", "deadline", "next_probe", "probe", "_timeout_raw", "_timeout_s")

    def __init__(self) -> None:
        self.stmt = 0
        self.cancel_stmt = -1
        self.deadline = 0.0  # monotonic; 0: no statement_timeout
        self.next_probe = 0.0
        # () -> True when the client connection is gone; None: nothing to probe
        self.probe: Callable[[], bool] | None = None
        self._timeout_raw: str | None = None
        self._timeout_s = 0.0

    # -- statement boundaries (event-loop thread) -------------------------------------------
    def begin(self, statement_timeout: str | None) -> None:
        """A statement starts; ``statement_timeout`` is the GUC's text ("0": none)."""
        self.stmt += 2 if self.stmt & 1 else 1
        if statement_timeout != self._timeout_raw:
            self._timeout_raw = statement_timeout
            self._timeout_s = timeout_seconds(statement_timeout)
        # no clock read here unless there is a timeout: most statements never reach a check
        self.deadline = time.monotonic() + self._timeout_s if self._timeout_s else 0.0
        self.next_probe = 0.0  # set by the first check

    def end(self) -> None:
        if self.stmt & 1:
            self.stmt += 1
        self.deadline = 0.0

    @property
    def running(self) -> bool:
        return bool(self.stmt & 1)

    # -- any thread -------------------------------------------------------------------------
    def request_cancel(self) -> int | None:
        """Mark the running statement canceled; returns its number (None: none running)."""
        s = self.stmt
        if not s & 1:
            return None
        self.cancel_stmt = s
        return s

    # -- the running statement (event-loop thread) ------------------------------------------
    def canceled(self) -> bool:
        return self.cancel_stmt == self.stmt

    def check_cancel(self) -> None:
        """Raise 57014 if the running statement was canceled (cheap: for await points)."""
        if self.cancel_stmt == self.stmt:
            self.cancel_stmt = -1
            raise errors.QueryCanceled(_USER)

    def check(self) -> None:
        """Raise if the running statement must stop: canceled, timed out, client gone."""
        if self.cancel_stmt == self.stmt:
            self.cancel_stmt = -1
            raise errors.QueryCanceled(_USER)
        now = time.monotonic()
        if self.deadline and now >= self.deadline:
            self.deadline = 0.0
            raise errors.QueryCanceled(_TIMEOUT)
        if now >= self.next_probe:
            first = not self.next_probe
            self.next_probe = now + PROBE_EVERY
            if first:
                return
            probe = self.probe
            if probe is not None and probe():
                self.probe = None
                raise ClientConnectionLost("connection to client lost")

    def timeout_error(self) -> errors.QueryCanceled:
        return errors.QueryCanceled(_TIMEOUT)


def timeout_seconds(raw: str | None) -> float:
    """A duration GUC's value in seconds (bare numbers are milliseconds); 0 for none/invalid."""
    if not raw:
        return 0.0
    text = str(raw).strip().lower()
    num = text.rstrip("abcdefghijklmnopqrstuvwxyz").strip()
    unit = text[len(num):].strip() if num else ""
    mult = {"": 1e-3, "us": 1e-6, "ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}.get(unit)
    try:
        value = float(num)
    except ValueError:
        return 0.0
    if mult is None or value <= 0:
        return 0.0
    return value * mult


def checker(ctx: Any) -> Callable[[], None]:
    """The check function of the session running in ``ctx`` (a no-op outside a session)."""
    s = getattr(ctx, "session", None)
    intr = getattr(s, "interrupts", None)
    if intr is None:
        return _noop
    return intr.check


def _noop() -> None:
    return None


def checked(rows: Iterable[Any], ctx: Any, every: int = CHECK_EVERY) -> Iterator[Any]:
    """``rows`` with an interrupt check first and then every ``every`` items (for row
    sources without a loop of their own: set-returning functions, virtual tables)."""
    check = checker(ctx)
    check()
    n = every
    for row in rows:
        n -= 1
        if not n:
            n = every
            check()
        yield row
