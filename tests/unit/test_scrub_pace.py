"""A scheduled scrub pass yields to foreground writes: between chunks it sleeps for
SCRUB_DUTY of the node's time when the node is idle, and for the much smaller
SCRUB_DUTY_BUSY share when the node flushed writes since the previous chunk."""

from __future__ import annotations

import asyncio

import pytest

from storage import scrub


def test_pace_sleeps_longer_while_the_node_takes_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    slept: list[float] = []
    flushes = [0]

    async def fake_sleep(seconds: float) -> None:
        slept.append(round(seconds, 6))
        clock[0] += seconds

    monkeypatch.setattr(scrub.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(scrub.asyncio, "sleep", fake_sleep)

    async def main() -> None:
        pace = scrub._Pace(True, lambda: flushes[0])
        clock[0] += 0.01  # a chunk of 10 ms, the node idle
        await pace.pause()
        clock[0] += 0.01  # a chunk while an Append was flushed
        flushes[0] += 3
        await pace.pause()
        flushes[0] += 1  # a flush during the sleep alone still counts as busy
        clock[0] += 0.01
        await pace.pause()
        clock[0] += 0.01  # idle again
        await pace.pause()

    asyncio.run(main())
    idle = 0.01 * (1 / scrub.SCRUB_DUTY - 1)
    busy = 0.01 * (1 / scrub.SCRUB_DUTY_BUSY - 1)
    assert slept == [round(idle, 6), round(busy, 6), round(busy, 6), round(idle, 6)]
    assert scrub.SCRUB_DUTY_BUSY < scrub.SCRUB_DUTY / 5


def test_unpaced_pass_never_sleeps(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(scrub.asyncio, "sleep", fake_sleep)
    asyncio.run(scrub._Pace(False, lambda: 1).pause())
    assert slept == [0]
