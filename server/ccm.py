"""Cluster cache management (CCM): keep the failover target's cache like the writer's.

Turned on per cluster (``"ccm": true`` in cluster.json, ``borealis up --ccm``).  Caching is
by whole table here (server.volume), so the writer's *hot set* is the set of tables it has
cached, largest first.

    writer   every INTERVAL, when CCM is on: sends ``HotSet(tables)`` on the redo stream to
             every subscribed reader, and keeps the list in ``run/ccm.hotset.json``
                                                                       (``HotSetPublisher``)
    reader   with tier 0 and CCM on: loads every table of the hot set it does not cache yet
             (one at a time, in the background); from then on redo keeps them current, as
             for any cached table.  A reader that drops its cache (it missed redo) loads
             them again on the next HotSet                                (``CacheWarmer``)
    writer   at start-up (a restart or a promotion), with CCM on: loads the tables of
             ``run/ccm.hotset.json`` -- the previous writer's hot set -- in the background,
             all at once, right after recovery, instead of one by one as statements first
             touch them                                                  (``warm_start``)

A failover promotes the tier-0 reader in place (server.promote): the same process becomes
the writer and keeps its cache, so the tables CCM kept warm serve the first commits at
once; the warmer stops and the hot-set publisher starts (``CcmWiring.become_writer``).
Only when the manager has to fall back to restarting the process does the hot-set list
matter (``warm_start``).  Every instance reports the tables it caches
(``InstanceState.cached_tables``, ``borealis status --json``).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import structlog

from server.config import ClusterConf

INTERVAL = 1.0
MAX_TABLES = 256
HOTSET_FILE = "ccm.hotset.json"

log = structlog.get_logger("ccm")


def cached_tables(volume: Any) -> list[int]:
    """Tables the volume holds in full, largest first (ties: lower id)."""
    loaded = [(tid, len(t.rows)) for tid, t in list(volume.tables.items()) if t.loaded_at is not None]
    return [tid for tid, _ in sorted(loaded, key=lambda p: (-p[1], p[0]))]


class _ConfWatch:
    """cluster.json, re-read when its mtime changes."""

    def __init__(self, data_dir: str) -> None:
        self.path = Path(data_dir) / "cluster.json"
        self._stamp: tuple[int, int, int] | None = None
        self.conf: ClusterConf | None = None

    def get(self) -> ClusterConf | None:
        try:
            stamp = ClusterConf.stamp(self.path.parent)
            if stamp != self._stamp:
                self.conf = ClusterConf.load(self.path.parent)
                self._stamp = stamp
        except (OSError, ValueError, TypeError):
            pass
        return self.conf


class HotSetPublisher:
    """Writer side: publish the hot set to the readers and to run/ccm.hotset.json."""

    def __init__(self, data_dir: str, volume: Any, admin: Any) -> None:
        self.watch = _ConfWatch(data_dir)
        self.file = Path(data_dir) / "run" / HOTSET_FILE
        self.volume = volume
        self.admin = admin
        self._last: list[int] = []

    async def run(self) -> None:
        while True:
            await asyncio.sleep(INTERVAL)
            conf = self.watch.get()
            if conf is None or not conf.ccm:
                continue
            hot = cached_tables(self.volume)[:MAX_TABLES]
            self.admin.publish_hot_set(hot)
            if hot != self._last:
                self._last = hot
                self.file.parent.mkdir(parents=True, exist_ok=True)
                tmp = self.file.with_suffix(".tmp")
                tmp.write_text(json.dumps({"tables": hot, "at": time.time(), "epoch": self.volume.epoch}))
                os.replace(tmp, self.file)


class CacheWarmer:
    """Reader side: load the writer's hot set when this reader is tier 0 and CCM is on."""

    def __init__(self, data_dir: str, name: str, volume: Any) -> None:
        self.watch = _ConfWatch(data_dir)
        self.name = name
        self.volume = volume
        self._wanted: list[int] = []
        self._task: asyncio.Task | None = None
        self.loaded = 0

    def active(self) -> bool:
        conf = self.watch.get()
        if conf is None or not conf.ccm:
            return False
        try:
            return conf.instance(self.name).tier == 0
        except KeyError:
            return False

    def on_hot_set(self, tables: list[int]) -> None:
        if not self.active():
            return
        self._wanted = list(tables)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._load())

    async def _load(self) -> None:
        vol = self.volume
        while True:
            missing = [t for t in self._wanted if not _is_cached(vol, t)]
            if not missing:
                return
            tid = missing[0]
            try:
                await vol.ensure_loaded([tid])
                self.loaded += 1
            except Exception as e:  # noqa: BLE001 -- warming is best effort; the next HotSet retries
                log.info("ccm_load_failed", table=tid, error=str(e))
                return
            await asyncio.sleep(0)  # let queries run between tables


def _is_cached(volume: Any, tid: int) -> bool:
    t = volume.tables.get(tid)
    return t is not None and t.loaded_at is not None


def read_hot_set(data_dir: str) -> list[int]:
    try:
        return [int(t) for t in json.loads((Path(data_dir) / "run" / HOTSET_FILE).read_text())["tables"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


async def warm_start(data_dir: str, volume: Any) -> None:
    """A new writer with CCM on loads the previous writer's hot set, all tables at once."""
    conf = _ConfWatch(data_dir).get()
    if conf is None or not conf.ccm:
        return
    tables = read_hot_set(data_dir)
    if not tables:
        return
    t0 = time.monotonic()
    results = await asyncio.gather(*(volume.ensure_loaded([t]) for t in tables), return_exceptions=True)
    failed = [t for t, r in zip(tables, results) if isinstance(r, BaseException)]
    log.info("ccm_warm_start", tables=len(tables), failed=failed, seconds=round(time.monotonic() - t0, 3))


class CcmWiring:
    """CCM's part of one instance: the writer's publisher, or a reader's warmer."""

    def __init__(self, name: str, data_dir: str) -> None:
        self.name = name
        self.data_dir = data_dir
        self.tasks: list[asyncio.Task] = []
        self.warmer: CacheWarmer | None = None

    def become_writer(self, volume: Any, admin: Any, warm: bool = True) -> None:
        """Publish the hot set from now on; ``warm``: load the previous writer's hot set
        (what this instance does not cache yet) in the background."""
        if self.warmer is not None:
            if self.warmer._task is not None:
                self.warmer._task.cancel()
            self.warmer = None
        self.tasks.append(asyncio.ensure_future(HotSetPublisher(self.data_dir, volume, admin).run()))
        if warm:
            self.tasks.append(asyncio.ensure_future(warm_start(self.data_dir, volume)))


def attach(role: str, name: str, data_dir: str, volume: Any, admin: Any, subscriber: Any | None) -> CcmWiring:
    """Wire CCM into an instance (server.instance)."""
    wiring = CcmWiring(name, data_dir)
    if role == "writer":
        wiring.become_writer(volume, admin)
    elif subscriber is not None:
        wiring.warmer = CacheWarmer(data_dir, name, volume)
        subscriber.on_hot_set = wiring.warmer.on_hot_set
    return wiring
