"""A virtual-time asyncio event loop: deterministic, and a simulated second costs nothing.

``SimLoop`` is a plain selector event loop whose clock is a number we own.  When the loop
has nothing ready to run it asks its selector to wait ``timeout`` seconds for I/O; our
selector never has I/O, so it just moves the clock forward to the next timer and returns.
Everything (asyncio.sleep, wait_for, call_later, gather) then runs in virtual time, in an
order fixed by the program and the seeded RNG -- no threads, no sockets.

A wait with no timer pending (``timeout is None``) would block forever: that is a
deadlock of the simulated world, reported as :class:`Deadlock`.
"""

from __future__ import annotations

import asyncio
import selectors


class Deadlock(RuntimeError):
    """The simulated world has nothing to run and no timer pending."""


class _VirtualSelector(selectors.SelectSelector):
    def __init__(self, loop: "SimLoop") -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None):  # type: ignore[override]
        if timeout is None:
            raise Deadlock("no runnable task and no timer: the simulation is stuck")
        if timeout > 0:
            self._loop.now += timeout
        return []


class SimLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(selector=_VirtualSelector(self))

    def time(self) -> float:
        return self.now
