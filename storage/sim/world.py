"""One seeded run of the simulated volume, and the invariants it must keep.

A run (``run(seed)``) builds six ``SimNode``s (each with the real gossip loop), starts a
writer -- the real ``server.volume.WriterVolume`` (records built by its ``commit``, VDL
from the real ``ConsistencyTracker``, startup through the real ``server.recovery.recover``)
whose node clients are ``SimClient``s -- and lets a few clients commit small transactions
while a fault injector, driven by the same RNG, crashes and restarts nodes (torn WAL
tails), breaks connections, cuts links, crashes the writer (a new one recovers) or cuts a
writer off from part of the volume and starts a new one beside it (the old one is a
zombie).  Then faults stop: links heal, nodes restart, zombies die, the last writer
drains its commits, gossip runs, and the checker compares the volume with the history.

Invariants (``Run.violations``):

* durable    -- every acknowledged commit is <= the recovered VDL of every later writer,
  and after convergence every segment holds each of its records, byte for byte.
* vdl        -- a writer's VDL never goes backwards.
* epochs     -- every writer has its own epoch; acknowledged records carry their
  writer's epoch.
* zombie     -- a commit a fenced writer acknowledges after a newer writer finished its
  recovery is already <= that writer's recovered VDL (so nothing it acks is lost).
* converge   -- once faults stop, every segment reaches SCL = the final VDL's tail of its
  PG, and the final writer's VDL reaches every LSN it allocated.
* integrity  -- the corruption fault damages a stored record of one node (its bytes no
  longer match its crc; one damaged node at a time, as quorums tolerate one lost copy on
  top of the other faults): no reply ever carries a damaged record, the node marks the
  segment damaged, repairs it from its peers, and after convergence holds every
  acknowledged record byte for byte again (``durable``) with no segment left damaged.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field
from typing import Any

import msgspec
import msgspec.structs

from engine.errors import SqlError
from server.config import DEFAULT_PG_SIZE_LIMIT
from server.volume import WriterVolume
from storage.gossip import gossip_loop
from storage.records import COMMIT
from storage.sim.loop import Deadlock, SimLoop
from storage.sim.net import Network
from storage.sim.node import SimDisk, SimNode

NODES = [f"s{i}" for i in range(1, 7)]


class _Codec:
    @staticmethod
    def encode_row(row: Any) -> bytes:
        return msgspec.msgpack.encode(row)

    @staticmethod
    def decode_row(raw: bytes) -> Any:
        return msgspec.msgpack.decode(raw)


@dataclass
class _NodeConf:
    name: str
    port: int = 0
    az: str = ""


@dataclass
class _Conf:
    protection_groups: int
    storage_nodes: list[_NodeConf]
    host: str = "sim"
    pg_size_limit: int = 0  # 0: the default (no growth in a sim run)

    def pg_limit(self) -> int:
        return self.pg_size_limit or DEFAULT_PG_SIZE_LIMIT


class SimWriter(WriterVolume):
    """The real writer volume; being fenced stops it (instead of exiting the process)
    and every VDL change is checked for monotonicity."""

    def __init__(self, run: "Run", name: str, pgs: int) -> None:
        super().__init__(_Conf(pgs, [_NodeConf(n) for n in NODES], pg_size_limit=run.pg_limit), _Codec(),
                         commit_timeout=3.0)
        self.run = run
        self.name = name
        self.nodes = [run.net.client(name, n) for n in NODES]  # type: ignore[assignment]
        self.recovered_vdl: int | None = None
        self.recovered_at = 0.0
        self.fenced_flag = False
        self.crashed = False

    def _fenced(self) -> None:
        self.fenced_flag = True
        self.state = "fenced"
        for _, fut in self._commit_waiters:
            if not fut.done():
                fut.set_exception(SqlError("fenced"))
        self._commit_waiters.clear()

    def _vdl_advanced(self) -> None:
        before = self._vdl
        super()._vdl_advanced()
        if self._vdl < before:
            self.run.violation(f"vdl: writer {self.name} VDL went back from {before} to {self._vdl}")

    def crash(self) -> None:
        self.crashed = True
        for c in self.nodes:
            c.dead = True  # type: ignore[attr-defined]
            c.reset()  # type: ignore[attr-defined]
        for t in self._tasks:
            t.cancel()


@dataclass
class Acked:
    writer: str
    epoch: int
    lsn: int
    at: float
    records: list[tuple[int, int, bytes, bytes]]  # (lsn, pg, key, value)


@dataclass
class Run:
    seed: int
    pgs: int = 2
    pg_limit: int = 0  # bytes per PG before the volume grows (0: never, in practice)
    violations: list[str] = field(default_factory=list)
    acked: list[Acked] = field(default_factory=list)
    writers: list[SimWriter] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

    def violation(self, text: str) -> None:
        self.violations.append(text)

    def note(self, text: str) -> None:
        self.events.append(f"t={asyncio.get_running_loop().time():.3f} {text}")

    def bump(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1


class World:
    def __init__(self, run: Run, rng: random.Random) -> None:
        self.run = run
        self.rng = rng
        self.disks = {n: SimDisk() for n in NODES}
        self.nodes: dict[str, SimNode | None] = {n: None for n in NODES}
        self.net = Network(rng, lambda n: self.nodes.get(n))
        run.net = self.net  # type: ignore[attr-defined]
        self.writer: SimWriter | None = None
        self.next_writer = 1
        self.stop_clients = False
        self.starting: asyncio.Task | None = None
        # The corruption fault draws from its own RNG: the other faults' history of a seed
        # stays what it was before corruption joined the menu.
        self.crng = random.Random(run.seed * 104_729 + 3)
        self.served_invalid = 0  # by nodes that crashed since (the live ones are added at the end)

    # --- nodes -----------------------------------------------------------------------
    def start_node(self, name: str) -> None:
        node = SimNode(name, self.run.pgs, self.disks[name], self.rng)
        self.nodes[name] = node
        peers = [self.net.client(name, p) for p in NODES if p != name]
        node.spawn(gossip_loop(node, peers))  # type: ignore[arg-type]
        node.spawn(node.scrubber())

    def crash_node(self, name: str) -> None:
        node = self.nodes[name]
        if node is not None:
            self.served_invalid += node.served_invalid
            node.crash()
            self.nodes[name] = None
            self.net.node_down(name)
            for c in self.net.clients:
                if c.owner == name:
                    c.dead = True

    def corrupt(self) -> None:
        """Damage one stored record of one node: its value changes, its crc does not (a
        flipped byte on disk).  Only while no node holds damage (found or not)."""
        rng = self.crng
        if any(not r.valid() for d in self.disks.values() for log in d.logs.values() for r in log.values()):
            return
        if any(x is not None and x.damaged for x in self.nodes.values()):
            return
        name = rng.choice(NODES)
        disk = self.disks[name]
        held = [(pg, lsn) for pg in sorted(disk.logs) for lsn in sorted(disk.logs[pg])]
        if not held:
            return
        pg, lsn = rng.choice(held)
        rec = disk.logs[pg][lsn]
        bad = msgspec.structs.replace(rec, value=rec.value + b"\xff", key=rec.key[::-1] if rng.random() < 0.3 else rec.key)
        if bad.valid():
            return
        disk.logs[pg][lsn] = bad
        node = self.nodes[name]
        if node is not None and lsn in node.store.mem.logs.get(pg, {}):
            node.store.mem.logs[pg][lsn] = bad  # what the running node reads
        self.run.note(f"corrupt {name} pg {pg} lsn {lsn}")
        self.run.bump("corruptions")

    # --- writers ---------------------------------------------------------------------
    async def start_writer(self) -> SimWriter:
        name = f"w{self.next_writer}"
        self.next_writer += 1
        w = SimWriter(self.run, name, self.run.pgs)
        self.writer = w
        self.run.writers.append(w)
        self.run.note(f"{name} starts recovery")
        try:
            await w.start()
        except TimeoutError as e:
            # recover() gives up (e.g. the truncation missed a write quorum); the instance
            # would exit and be restarted: a new writer tries again.
            self.run.note(f"{name} recovery failed: {e}")
            self.run.bump("recoveries_failed")
            w.crash()
            await asyncio.sleep(0.2)
            return await self.start_writer()
        w.recovered_vdl = w._vdl
        w.recovered_at = asyncio.get_running_loop().time()
        self.run.note(f"{name} recovered epoch={w.epoch} vdl={w._vdl}")
        for a in self.run.acked:
            if a.lsn > w._vdl:
                self.run.violation(
                    f"durable: commit {a.lsn} acked by {a.writer} (epoch {a.epoch}) is above "
                    f"the VDL {w._vdl} recovered by {name} (epoch {w.epoch})"
                )
        return w

    async def client(self, cid: int) -> None:
        rng = self.rng
        n = 0
        while not self.stop_clients:
            await asyncio.sleep(rng.uniform(0.004, 0.04))
            w = self.writer
            if w is None or w.state != "available" or w.crashed:
                continue
            n += 1
            writes = {}
            for _ in range(rng.randint(1, 3)):
                tid = rng.randint(1, 4)
                writes[(tid, f"k{rng.randint(0, 9)}".encode())] = [cid, n]
            asyncio.get_running_loop().create_task(self.commit(w, writes))

    async def commit(self, w: SimWriter, writes: dict) -> None:
        txid = next(w._txids)
        try:
            lsn = await w.commit(txid, writes)
        except (SqlError, asyncio.TimeoutError):
            self.run.bump("commits_failed")
            return
        if w.crashed:
            return  # the client never hears of it
        first = lsn - len(writes)
        recs = [
            (first + i, -1, tid.to_bytes(4, "big") + key, _Codec.encode_row(row))  # pg: any (the volume grows)
            for i, ((tid, key), row) in enumerate(writes.items())
        ]
        now = asyncio.get_running_loop().time()
        self.run.acked.append(Acked(w.name, w.epoch, lsn, now, recs))
        self.run.bump("commits_acked")
        for other in self.run.writers:
            if other.epoch > w.epoch and other.recovered_vdl is not None and other.recovered_at < now:
                if lsn > other.recovered_vdl:
                    self.run.violation(
                        f"zombie: {w.name} (epoch {w.epoch}) acked commit {lsn} after {other.name} "
                        f"(epoch {other.epoch}) recovered VDL {other.recovered_vdl}"
                    )

    # --- faults ----------------------------------------------------------------------
    async def faults(self, duration: float) -> None:
        rng = self.rng
        loop = asyncio.get_running_loop()
        end = loop.time() + duration
        while loop.time() < end:
            await asyncio.sleep(rng.uniform(0.02, 0.25))
            r = rng.random()
            down = [n for n, x in self.nodes.items() if x is None]
            if r < 0.22:
                up = [n for n in NODES if n not in down]
                if up and len(down) < 3:
                    name = rng.choice(up)
                    self.crash_node(name)
                    self.run.note(f"crash {name}")
                    self.run.bump("node_crashes")
            elif r < 0.44:
                if down:
                    name = rng.choice(down)
                    self.start_node(name)
                    self.run.note(f"restart {name}")
            elif r < 0.56:
                owner = rng.choice(NODES + [w.name for w in self.run.writers])
                self.net.break_link(owner, rng.choice(NODES))
                self.run.bump("link_breaks")
            elif r < 0.66:
                owner = rng.choice(NODES + ([self.writer.name] if self.writer else []))
                target = rng.choice(NODES)
                self.net.cut.add((owner, target))
                self.net.break_link(owner, target)
                self.run.note(f"cut {owner}->{target}")
            elif r < 0.76:
                self.net.cut.clear()
                self.run.note("heal links")
            elif r < 0.86 and len(self.run.writers) < 4 and self.writer is not None and self.writer.state == "available" and (self.starting is None or self.starting.done()):
                old = self.writer
                if rng.random() < 0.5:
                    old.crash()
                    self.run.note(f"crash writer {old.name}")
                    self.run.bump("writer_crashes")
                else:
                    # Zombie: the old writer keeps running, cut off from some nodes.
                    for n in rng.sample(NODES, rng.randint(2, 4)):
                        self.net.cut.add((old.name, n))
                        self.net.break_link(old.name, n)
                    self.run.note(f"zombie writer {old.name}")
                    self.run.bump("zombies")
                await asyncio.sleep(rng.uniform(0.0, 0.1))
                # In the background: recovery may wait for nodes the injector restarts.
                self.starting = asyncio.get_running_loop().create_task(self.start_writer())
            elif r >= 0.9:
                self.corrupt()

    # --- the end -----------------------------------------------------------------------
    async def converge(self) -> None:
        run = self.run
        loop = asyncio.get_running_loop()
        self.stop_clients = True
        self.net.drop_p = 0.0
        self.net.cut.clear()
        for w in run.writers:
            if w is not self.writer and not w.crashed:
                w.crash()
        for n in NODES:
            if self.nodes[n] is None:
                self.start_node(n)
        if self.starting is not None:
            await self.starting
        w = self.writer
        assert w is not None
        if w.crashed or w.fenced_flag:
            w = await self.start_writer()
        # The writer learns SCLs only from Append acks: holes that gossip repaired show
        # up with the next Append, so a light workload keeps running until the VDL
        # covers everything allocated (an idle writer would wait for ever).
        assert w.tracker is not None
        t = w.tracker
        deadline = loop.time() + 30.0
        beats = 0
        while t.vdl < t.last_allocated:
            if loop.time() > deadline:
                run.violation(f"converge: final writer VDL {t.vdl} never reached {t.last_allocated}")
                return
            if beats < 100:
                beats += 1
                loop.create_task(self.commit(w, {(1, b"beat"): [beats]}))
            await asyncio.sleep(0.2)
        w.crash()  # stop its traffic; gossip finishes the job
        tails = w._tails
        pgs = range(max(run.pgs, w.placement.count))
        run.stats["pgs_at_end"] = len(pgs)
        for _ in range(20):  # up to 6 virtual seconds of gossip
            await asyncio.sleep(0.3)
            nodes = [x for x in self.nodes.values() if x is not None]
            if all(x.durable_scl.get(pg, 0) == tails.get(pg, 0) for x in nodes for pg in pgs) and not any(
                x.damaged for x in nodes
            ) and all(r.valid() for d in self.disks.values() for log in d.logs.values() for r in log.values()):
                break
        for n in NODES:
            node = self.nodes[n]
            assert node is not None
            await node.flusher.sync()
        for n in NODES:
            node = self.nodes[n]
            assert node is not None
            self.served_invalid += node.served_invalid
            if node.damaged:
                run.violation(f"integrity: {n} still has damaged segments {node.damaged}")
            for pg in pgs:
                if node.durable_scl.get(pg, 0) != tails.get(pg, 0):
                    run.violation(f"converge: {n} pg {pg} SCL {node.durable_scl.get(pg, 0)} != tail {tails.get(pg, 0)} (VDL {w._vdl})")
        for a in run.acked:
            for n in NODES:
                log = self.disks[n].logs
                for lsn, _pg, key, value in a.records:
                    r = next((recs[lsn] for recs in log.values() if lsn in recs), None)
                    if r is None or r.key != key or r.value != value or r.epoch != a.epoch:
                        run.violation(f"durable: {n} lacks record {lsn} of commit {a.lsn} acked by {a.writer}")
                c = log.get(0, {}).get(a.lsn)
                if c is None or c.kind != COMMIT or c.epoch != a.epoch:
                    run.violation(f"durable: {n} lacks COMMIT {a.lsn} acked by {a.writer}")
        if self.served_invalid:
            run.violation(f"integrity: {self.served_invalid} replies carried a damaged record")
        epochs = [x.epoch for x in run.writers if x.recovered_vdl is not None]
        if len(set(epochs)) != len(epochs):
            run.violation(f"epochs: two writers share an epoch: {epochs}")


async def _main(run: Run, rng: random.Random) -> None:
    world = World(run, rng)
    for n in NODES:
        world.start_node(n)
    await world.start_writer()
    world.net.drop_p = rng.choice([0.0, 0.01, 0.03])
    clients = [asyncio.get_running_loop().create_task(world.client(i)) for i in range(rng.randint(1, 3))]
    await world.faults(rng.uniform(0.3, 1.0))
    await world.converge()
    for c in clients:
        c.cancel()


def shutdown(loop: SimLoop) -> None:
    """Cancel every task left (gossip loops, pending requests) and close the loop."""
    for _ in range(5):
        tasks = asyncio.all_tasks(loop)
        if not tasks:
            break
        for t in tasks:
            t.cancel()
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.close()


def run(seed: int) -> Run:
    """Simulate one seeded history; ``Run.violations`` lists every broken invariant."""
    rng = random.Random(seed)
    result = Run(seed=seed, pgs=rng.randint(1, 3))
    # Half the seeds grow the volume (server.placement); drawn aside so ``rng`` is unchanged.
    result.pg_limit = random.Random(seed * 7919 + 17).choice([0, 0, 300, 900])
    loop = SimLoop()
    try:
        loop.run_until_complete(asyncio.wait_for(_main(result, rng), 600.0))
    except Deadlock as e:
        result.violation(f"deadlock: {e}")
    except asyncio.TimeoutError:
        result.violation("liveness: the run did not finish in 600 virtual seconds")
    finally:
        shutdown(loop)
    return result
