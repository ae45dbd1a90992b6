"""The executor's batch paths (engine.executor ``Op.batches``: scan, filter, project, hash
join probe, folded count/sum/avg/min/max) give what the row-at-a-time paths give.

An engine over an in-memory store (engine.memstore.VersionedTables, commits applied at
once), no cluster: tables of a few thousand rows, so inputs cross the batch size and the
aggregate's fold point, with NULLs, negative numbers, int / bigint / numeric / float8 /
text / array values.  Each query is checked against a Python model of its answer, or
against the same query made to take the row-at-a-time path: an aggregate with
``FILTER (WHERE true)`` steps row by row, a join without ORDER BY streams its rows.
"""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import pytest

from engine.database import Database
from engine.executor import BATCH, Aggregate
from engine.memstore import VersionedTables

N = 3 * Aggregate.FOLD_AT // 2 + BATCH + 17  # over a fold and a few batches


class _Store(VersionedTables):
    async def commit(self, txid: int, writes: dict) -> int:
        lsn = self._vdl + 1
        self.apply(lsn, writes)
        if getattr(writes, "dropped", ()):
            self.note_dropped(lsn, writes.dropped)
        self._vdl = lsn
        return lsn


class _Engine:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.db = Database(_Store(), instance_name="i1", role="writer")
        self.loop.run_until_complete(self.db.start())
        self.s = self.db.session("postgres", "postgres")

    def run(self, sql: str) -> list[tuple]:
        """Rows of the last statement (simple query: literals become parameters)."""
        async def go() -> list[tuple]:
            rows: list[tuple] = []
            async for r in self.s.execute(sql):
                rows = list(r.rows or [])
            return rows
        return self.loop.run_until_complete(go())

    def prepared(self, sql: str, params: list) -> list[tuple]:
        p = self.s.prepare(sql, [])
        return list(self.loop.run_until_complete(self.s.execute_prepared(p, params)).rows)

    def close(self) -> None:
        self.loop.run_until_complete(self.s.close())
        self.loop.close()


def _val(rng: random.Random, make, nulls: float = 0.1):
    return None if rng.random() < nulls else make()


@pytest.fixture(scope="module")
def eng():
    e = _Engine()
    rng = random.Random(7)
    e.run("create table t (id int primary key, g int, h bigint, x int, y numeric, f float8, s text, a int[])")
    e.run("create table u (id int primary key, g bigint, w int, k text)")
    e.run("create table e (id int primary key, g int, x int)")  # stays empty
    rows = []
    for i in range(1, N + 1):
        rows.append((i, _val(rng, lambda: rng.randint(-3, 6)), _val(rng, lambda: rng.randint(-5, 5)),
                     _val(rng, lambda: rng.randint(-1000, 1000)),
                     _val(rng, lambda: Decimal(rng.randint(-10**6, 10**6)) / 100),
                     _val(rng, lambda: rng.choice([0.1, 1e16, -1e16, 1.0, -0.0, 2.5])),
                     _val(rng, lambda: rng.choice(["a", "b", "B", "ab ", ""])),
                     _val(rng, lambda: [rng.randint(0, 2), rng.randint(0, 1)])))
    e.t = rows
    for chunk in range(0, N, 500):
        vals = ",".join(
            "(%d,%s,%s,%s,%s,%s,%s,%s)" % (
                r[0], _sql(r[1]), _sql(r[2]), _sql(r[3]), _sql(r[4]),
                "NULL" if r[5] is None else "'%r'::float8" % r[5],
                _sql(r[6]), "NULL" if r[7] is None else "ARRAY[%d,%d]" % tuple(r[7]))
            for r in rows[chunk:chunk + 500])
        e.run(f"insert into t values {vals}")
    # u: several rows per g (a non-unique build key), a NULL key, a key no t row has
    u = [(1, 1, 10, "a"), (2, 1, 11, "b"), (3, 2, 20, None), (4, None, 30, "a"), (5, 6, 60, "ab "),
         (6, 99, 990, "b"), (7, -3, -30, "B")]
    e.u = u
    e.run("insert into u values " + ",".join("(%d,%s,%d,%s)" % (a, _sql(b), c, _sql(d)) for a, b, c, d in u))
    yield e
    e.close()


def _sql(v) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, str):
        return "'" + v.replace("'", "''") + "'"
    return str(v)


def _pg_mod(a: int, b: int) -> int:
    r = abs(a) % abs(b)
    return -r if a < 0 else r


# -- aggregates -----------------------------------------------------------------------------

_AGGS = "count(*), count(x), sum(x), avg(x), min(x), max(x), sum(h), sum(y), avg(y), min(y), max(y), " \
        "sum(f), avg(f), min(f), max(f), min(s), max(s), count(a), max(a), sum(x % 7), max(h + x)"


def _filtered(aggs: str) -> str:
    """The same aggregates made to step row by row (FILTER keeps them off the fold path)."""
    out = []
    for a in aggs.split(", "):
        out.append(a + " filter (where true)")
    return ", ".join(out)


@pytest.mark.parametrize("group", ["", "g", "g, h", "s", "-g", "a", "g, a", "x is null"])
def test_folded_aggregates_match_stepped(eng, group):
    by = f" group by {group}" if group else ""
    sel = f"{group}, " if group else ""
    order = " order by " + ", ".join(str(i + 1) for i in range(len(group.split(", ")))) if group else ""
    fast = eng.run(f"select {sel}{_AGGS} from t{by}{order}")
    slow = eng.run(f"select {sel}{_filtered(_AGGS)} from t{by}{order}")
    assert fast == slow
    assert len(fast) >= 1


def test_folded_aggregates_match_model(eng):
    groups: dict = {}
    for r in eng.t:
        groups.setdefault(r[1], []).append(r)
    want = []
    for g in sorted(groups, key=lambda v: (v is None, v)):
        rs = groups[g]
        xs = [r[3] for r in rs if r[3] is not None]
        ys = [r[4] for r in rs if r[4] is not None]
        fs = [r[5] for r in rs if r[5] is not None]
        fsum = None
        for v in fs:  # in row order, as PostgreSQL's float8 sum adds
            fsum = v if fsum is None else fsum + v
        want.append((g, len(rs), len(xs), sum(xs) if xs else None, min(xs) if xs else None,
                     max(xs) if xs else None, sum(ys) if ys else None, fsum))
    got = eng.run("select g, count(*), count(x), sum(x), min(x), max(x), sum(y), sum(f) from t group by g order by g")
    assert got == want
    assert all(type(r[3]) is int for r in got if r[3] is not None)  # sum(int4) is bigint
    assert all(type(r[6]) is Decimal for r in got if r[6] is not None)


def test_float_sum_adds_in_row_order(eng):
    # 1e16 + 1.0 rounds back to 1e16: only adding in row order gives 1.0 (a compensated
    # sum would give 2.0); PostgreSQL's seq scan adds in this order too
    eng.run("create table fs (id int primary key, g int, f float8)")
    eng.run("insert into fs values (1, 1, 1e16), (2, 1, 1.0), (3, 1, -1e16), (4, 1, 1.0), (5, 2, null)")
    assert eng.run("select g, sum(f), count(f) from fs group by g order by g") == [(1, 1.0, 4), (2, None, 0)]
    assert eng.run("select sum(f) from fs") == [(1.0,)]


def test_empty_and_all_null_inputs(eng):
    assert eng.run("select count(*), count(x), sum(x), avg(x), min(x), max(x) from e") == [(0, 0, None, None, None, None)]
    assert eng.run("select g, count(*), sum(x) from e group by g") == []
    assert eng.run("select count(*), sum(x), max(x) from t where x is null and id < 0") == [(0, None, None)]
    nulls = sum(1 for r in eng.t if r[3] is None)
    assert eng.run("select count(*), count(x), sum(x), avg(x), max(x) from t where x is null") == [(nulls, 0, None, None, None)]
    assert eng.run("select g, sum(x) from t where x is null and g = 1 group by g") in ([], [(1, None)])


def test_many_groups(eng):
    # more groups than the fold point: folding stays linear and keeps every group
    got = eng.run("select id, count(*), sum(x), max(f) from t group by id order by id")
    assert len(got) == N
    assert got[:3] == [(r[0], 1, r[3], r[5]) for r in eng.t[:3]]
    assert got == eng.run("select id, count(*) filter (where true), sum(x) filter (where true), "
                          "max(f) filter (where true) from t group by id order by id")


# -- hash joins -------------------------------------------------------------------------------

def _join_model(t: list, u: list, kind: str, key) -> list[tuple]:
    out = []
    matched = set()
    for r in t:
        hit = False
        for w in u:
            kl, kr = key(r, w)
            if kl is not None and kr is not None and kl == kr:
                out.append((r[0], w[0]))
                matched.add(w[0])
                hit = True
        if not hit and kind in ("left", "full"):
            out.append((r[0], None))
    if kind in ("right", "full"):
        out += [(None, w[0]) for w in u if w[0] not in matched]
    return sorted(out, key=lambda p: (p[0] is None, p[0] or 0, p[1] is None, p[1] or 0))


@pytest.mark.parametrize("kind", ["inner", "left", "right", "full"])
def test_join_on_int_bigint_column_with_nulls(eng, kind):
    # t.g int, u.g bigint (int keys of two widths), NULL keys on both sides, a build key
    # with several rows, a build key no probe row has
    want = _join_model(eng.t, eng.u, kind, lambda r, w: (r[1], w[1]))
    sql = f"select t.id, u.id from t {kind} join u on t.g = u.g"
    ordered = eng.run(sql + " order by 1, 2")  # Sort pulls batches
    assert ordered == want
    streamed = eng.run(sql)  # row by row
    assert sorted(streamed, key=lambda p: (p[0] is None, p[0] or 0, p[1] is None, p[1] or 0)) == want
    counted = eng.run(f"select count(*), count(t.id), count(u.id) from t {kind} join u on t.g = u.g")
    assert counted == [(len(want), sum(1 for a, _ in want if a is not None), sum(1 for _, b in want if b is not None))]


@pytest.mark.parametrize("kind", ["inner", "left"])
def test_join_on_expression_keys_and_residual(eng, kind):
    # an expression of each side as a key (negative operands: PostgreSQL's % keeps the
    # dividend's sign), a column key beside it, and a residual condition
    def key(r, w):
        if r[1] is None or w[1] is None or r[3] is None:
            return None, None
        return (r[1], _pg_mod(r[3], 4)), (w[1], _pg_mod(w[2], 4))

    want = _join_model(eng.t, eng.u, kind, key)
    sql = f"select t.id, u.id from t {kind} join u on t.g = u.g and t.x % 4 = u.w % 4"
    assert eng.run(sql + " order by 1, 2") == want
    got = eng.prepared(sql.replace("% 4", "% $1") + " order by 1, 2", [4])
    assert got == want
    res = eng.run("select t.id, u.id from t join u on t.g = u.g and t.x > u.w order by 1, 2")
    assert res == sorted((r[0], w[0]) for r in eng.t for w in eng.u
                         if r[1] is not None and r[1] == w[1] and r[3] is not None and r[3] > w[2])


def test_join_unique_build_key_under_aggregate(eng):
    # the analytic query's shape: two hash joins (unique build keys) under GROUP BY
    eng.run("create table br (bid int primary key, bb int)")
    eng.run("create table te (tid int primary key, bid int, tb int)")
    eng.run("insert into br select i, i * 10 from generate_series(-3, 6) i")
    eng.run("insert into te select i, i % 7 - 3, i from generate_series(1, 40) i")
    got = eng.prepared(
        "select br.bid, te.tid, count(*), sum(t.x), max(te.tb) from t join br on br.bid = t.g "
        "join te on te.bid = t.g and te.tid % $1 = t.id % $1 group by br.bid, te.tid order by br.bid, te.tid", [5])
    want: dict = {}
    tellers = [(i, _pg_mod(i, 7) - 3, i) for i in range(1, 41)]
    for r in eng.t:
        if r[1] is None or not -3 <= r[1] <= 6:
            continue
        for tid, bid, tb in tellers:
            if bid == r[1] and tid % 5 == r[0] % 5:
                c, s, m = want.get((bid, tid), (0, None, None))
                x = r[3]
                want[(bid, tid)] = (c + 1, s if x is None else (x if s is None else s + x), tb)
    assert got == [(b, t_, c, s, m) for (b, t_), (c, s, m) in sorted(want.items())]


def test_text_join_and_projection_of_columns(eng):
    got = eng.run("select u.k, t.s, t.id from t join u on t.s = u.k order by t.id, u.k")
    want = sorted(((w[3], r[6], r[0]) for r in eng.t for w in eng.u
                   if r[6] is not None and w[3] is not None and r[6] == w[3]), key=lambda p: (p[2], p[0]))
    assert got == want
    # plain columns projected (itemgetter) in both paths
    assert eng.run("select s, id from t where id <= 5 order by id") == [(r[6], r[0]) for r in eng.t[:5]]
    assert eng.run("select s, id from t where id <= 5") == [(r[6], r[0]) for r in eng.t[:5]]


def test_limit_evaluates_only_the_rows_it_returns(eng):
    # LIMIT pulls row by row: a volatile select list is not evaluated for a whole batch
    eng.run("create sequence sq")
    assert eng.run("select nextval('sq') from t limit 2") == [(1,), (2,)]
    assert eng.run("select currval('sq')") == [(2,)]
    # a Sort reads everything, as in PostgreSQL
    assert eng.run("select nextval('sq') from t order by 1 limit 1") == [(3,)]
    assert eng.run("select currval('sq')") == [(N + 2,)]
