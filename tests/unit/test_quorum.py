"""The writer's consistency points (server.quorum) from storage acknowledgements."""

from server.quorum import ConsistencyTracker

NODES = ["s1", "s2", "s3", "s4", "s5", "s6"]


def _tracker():
    t = ConsistencyTracker(NODES, pgs=2)
    # 101(pg1) 102(pg0) 103(pg0 COMMIT) 104(pg1) 105(pg0 COMMIT)
    t.track(101, 1, False)
    t.track(102, 0, False)
    t.track(103, 0, True)
    t.track(104, 1, False)
    t.track(105, 0, True)
    return t


def test_vdl_needs_four_of_six():
    t = _tracker()
    for n in NODES[:3]:
        t.ack(n, {0: 105, 1: 104})
    assert t.vdl == 0, "three acks are not a write quorum"
    assert t.ack("s4", {0: 105, 1: 104})
    assert t.vcl == 105 and t.vdl == 105


def test_vdl_is_highest_commit_below_vcl():
    t = _tracker()
    for n in NODES[:4]:
        t.ack(n, {0: 105, 1: 101})  # 104 of pg1 not on a quorum
    assert t.vcl == 103
    assert t.vdl == 103


def test_slowest_two_do_not_matter():
    t = _tracker()
    for n in NODES[2:]:
        t.ack(n, {0: 105, 1: 104})
    assert t.vdl == 105


def test_vdl_never_goes_back_when_a_node_restarts():
    t = _tracker()
    for n in NODES[:4]:
        t.ack(n, {0: 105, 1: 104})
    t.forget_node("s1")
    t.ack("s1", {0: 0, 1: 0})
    assert t.vdl == 105
    t.track(106, 0, True)
    for n in NODES[1:4]:
        t.ack(n, {0: 106, 1: 104})
    assert t.vdl == 105, "only three segments hold 106"
    t.ack("s5", {0: 106, 1: 104})
    assert t.vdl == 106


def test_membership_change_needs_both_quorums():
    """ABCDEF -> ABCDEG: during the transition 4/6 of each set (Aurora's rule)."""
    t = ConsistencyTracker(NODES, pgs=1)
    t.set_quorum_sets([set(NODES), set(NODES[:5]) | {"s7"}])
    t.track(1, 0, True)
    for n in ("s1", "s2", "s3", "s6"):  # 4 of the old set, only 3 of the new one
        t.ack(n, {0: 1})
    assert t.vdl == 0
    t.ack("s7", {0: 1})  # now 4 of the new set too
    assert t.vdl == 1
    t.set_quorum_sets([set(NODES[:5]) | {"s7"}])  # transition done: s6 no longer counts
    t.track(2, 0, True)
    for n in ("s1", "s2", "s3", "s6"):
        t.ack(n, {0: 2})
    assert t.vdl == 1
    t.ack("s4", {0: 2})
    assert t.vdl == 2
