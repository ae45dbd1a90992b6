"""Waiting on a future with a time limit, from any coroutine.

``asyncio.wait_for`` needs a current task on Python 3.12 and later, but a pg-wire
handler's first steps run outside any task (``server.pgwire.server`` steps the handler
coroutine itself until it first waits).  ``wait_until`` uses only a timer and a
callback, so it works in both places, and it never cancels what it waits on.
"""

from __future__ import annotations

import asyncio
from typing import Any


async def wait_until(fut: "asyncio.Future[Any]", timeout: float) -> bool:
    """Wait until ``fut`` is done or ``timeout`` seconds pass; True when it is done.
    ``fut`` is left alone either way (its result or exception stays in it)."""
    if fut.done():
        return True
    loop = asyncio.get_running_loop()
    woken = loop.create_future()

    def wake(_: Any = None) -> None:
        if not woken.done():
            woken.set_result(None)

    fut.add_done_callback(wake)
    timer = loop.call_later(timeout, wake)
    try:
        await woken
    finally:
        timer.cancel()
        fut.remove_done_callback(wake)
    return fut.done()
