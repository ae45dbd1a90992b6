"""Calls bounded with ``asyncio.timeout``, not ``wait_for`` (server.promote, server.admin,
server.handoff): cancelled just as the call fails, nothing is left behind for asyncio to
log as "Task exception was never retrieved".

The race, as 3.11 runs it: ``wait_for(coro)`` runs the call in a task of its own.  The
outer task is cancelled (shutdown) in the same loop iteration as the call's reply fails;
wait_for cancels the inner task and waits for it -- but the inner call awaits its reply
with ``wait_for(future)`` (storage.client.NodeClient.call does), which on a cancel
returns the outcome of a future already done: the inner task ends with the failure, and
the outer wait_for re-raises CancelledError without ever reading it.  With asyncio.timeout
there is no inner task: the failure surfaces in the caller's own task.

``_Call`` stands in for the bounded call (recover_volume, loop.create_connection,
handoff._exchange) and fails the way NodeClient.call does; the test cancels the caller's
task in the same iteration, then collects the garbage and looks at what reached the loop's
exception handler.  Deterministic: no timing, only the order of ready callbacks.
"""

from __future__ import annotations

import asyncio
import gc
import socket
from types import SimpleNamespace
from typing import Any

import pytest

from server import admin, handoff, promote


class _Call:
    """A call that awaits its reply as NodeClient.call does (wait_for on a future)."""

    def __init__(self) -> None:
        self.reply: asyncio.Future | None = None

    async def __call__(self, *args: Any, **kw: Any) -> Any:
        self.reply = asyncio.get_running_loop().create_future()
        return await asyncio.wait_for(self.reply, 30)


async def _cancel_as_it_fails(task: asyncio.Task, call: _Call) -> None:
    while call.reply is None:  # the task is inside the bounded call
        await asyncio.sleep(0)
    call.reply.set_exception(ConnectionResetError("connection closed"))
    task.cancel()  # in the same iteration: the shutdown
    for _ in range(20):  # a handful of ready callbacks settle it
        await asyncio.sleep(0)
    if not task.done():  # the failure won over the cancel (the caller retries): shut it down again
        task.cancel()
        await asyncio.wait([task], timeout=5)
    assert task.done()
    if not task.cancelled():
        task.exception()  # the caller's task: whoever awaits it reads this
    call.reply = None  # the failure's traceback reaches the call's arguments: keep nothing alive
    for _ in range(5):
        await asyncio.sleep(0)


def _run(scenario: Any) -> list[dict]:
    """Run ``scenario()`` on a fresh loop; what reached the loop's exception handler."""
    seen: list[dict] = []

    async def main() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda _loop, ctx: seen.append(ctx))
        await scenario()
        gc.collect()  # a task dropped with its exception unread logs from __del__
        await asyncio.sleep(0)

    asyncio.run(main())
    return [c for c in seen if "never retrieved" in str(c.get("message", ""))]


def test_hand_off_cancelled_as_the_exchange_fails(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    call = _Call()
    monkeypatch.setattr(handoff, "_exchange", call)

    async def scenario() -> None:
        client, server_side = socket.socketpair()
        try:
            task = asyncio.ensure_future(handoff.hand_off(tmp_path / "i.handoff", server_side, b"abc"))
            await _cancel_as_it_fails(task, call)
        finally:
            client.close()
            server_side.close()

    assert _run(scenario) == []


def test_hand_off_timeout_is_still_oserror(tmp_path) -> None:
    """What the proxy catches (endpoints.proxy.try_handoff): OSError, not TimeoutError."""

    async def scenario() -> None:
        lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # listens, never answers ``k``
        lst.bind(str(tmp_path / "i.handoff"))
        lst.listen(1)
        client, server_side = socket.socketpair()
        try:
            with pytest.raises(OSError, match="did not confirm the hand-off in time"):
                await handoff.hand_off(tmp_path / "i.handoff", server_side, b"abc", timeout=0.1)
        finally:
            for s in (lst, client, server_side):
                s.close()

    assert _run(scenario) == []


class _Reader:
    nodes: list = []
    conf = None
    pgs = 1
    state = "available"

    def snapshot(self) -> int:
        return 0

    def stop(self) -> None:
        pass


def test_promote_cancelled_as_recovery_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    call = _Call()
    monkeypatch.setattr(promote, "ReaderVolume", _Reader)
    monkeypatch.setattr(promote, "recover_volume", call)
    inst = SimpleNamespace(name="i2", volume=_Reader(), stop_following=lambda: None)

    async def scenario() -> None:
        task = asyncio.ensure_future(promote.promote(inst, 1, 30.0))
        await _cancel_as_it_fails(task, call)

    assert _run(scenario) == []


def test_promote_timeout_answers_timed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """The manager reads ``error="timed out"`` for a promotion past its time."""

    async def never(*_a: Any) -> Any:
        await asyncio.sleep(30)

    monkeypatch.setattr(promote, "ReaderVolume", _Reader)
    monkeypatch.setattr(promote, "recover_volume", never)
    inst = SimpleNamespace(name="i2", volume=_Reader(), stop_following=lambda: None)
    out: list = []

    async def scenario() -> None:
        out.append(await promote.promote(inst, 7, 0.05))

    assert _run(scenario) == []
    assert (out[0].ok, out[0].error, out[0].req) == (False, "timed out", 7)


def test_redo_subscriber_cancelled_as_connect_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    call = _Call()
    writer = SimpleNamespace(admin_port=1)
    monkeypatch.setattr(admin, "ClusterConf", SimpleNamespace(
        load=lambda _d: SimpleNamespace(host="127.0.0.1", writer=lambda: writer)))

    async def scenario() -> None:
        asyncio.get_running_loop().create_connection = call  # type: ignore[method-assign]
        sub = admin.RedoSubscriber("i2", "/nonexistent", None)
        sub.start()
        assert sub._task is not None
        await _cancel_as_it_fails(sub._task, call)
        del asyncio.get_running_loop().create_connection

    assert _run(scenario) == []
