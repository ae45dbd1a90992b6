"""Deterministic simulation of the volume's quorum, recovery and repair logic.

``python -m storage.sim --seed N`` replays one seeded history (see ``storage.sim.world``
for what a run does and which invariants it checks).  Modules: ``loop`` (virtual-time
asyncio loop), ``net`` (simulated connections with delays, reorders, breaks, partitions),
``node`` (storage node over the real ``Segment`` and an in-memory disk with torn-write
crashes), ``world`` (scenario, real writer volume + recovery + gossip, invariant checks).
"""
