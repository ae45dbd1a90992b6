"""Secondary indexes: lookups through the index (own writes included), unique indexes."""

from __future__ import annotations

import time

from engine import errors
from tests.engine.conftest import new_db, one, run


def test_index_lookup_and_unique(arun):
    async def body():
        db = await new_db()
        s = db.session("u", "postgres", {})
        await run(s, "create table ix (id int, a int, b text)")
        await run(s, "insert into ix select g, g % 10, 'v' || g from generate_series(1, 3000) g")
        await run(s, "create index ix_a on ix(a)")
        await run(s, "create unique index ix_b on ix(b)")
        assert (await one(s, "select count(*) from ix where a = 3")).rows == [(300,)]
        t0 = time.perf_counter()
        for i in range(200):
            r = await one(s, f"select id from ix where b = 'v{i + 1}'")
            assert r.rows == [(i + 1,)]
        per = (time.perf_counter() - t0) / 200
        assert per < 0.002, f"index lookup too slow: {per * 1e6:.0f} us (a scan?)"
        try:
            await run(s, "insert into ix values (5000, 1, 'v77')")
        except errors.SqlError as e:
            assert e.sqlstate == "23505"
        else:
            raise AssertionError("duplicate accepted")
        await run(s, "update ix set a = 42 where b = 'v78'")
        assert (await one(s, "select id, a from ix where a = 42")).rows == [(78, 42)]
        try:
            await run(s, "create unique index ix_a2 on ix(a)")
        except errors.SqlError as e:
            assert e.sqlstate == "23505"
        else:
            raise AssertionError("unique index over duplicates accepted")
        await run(s, "begin")
        await run(s, "insert into ix values (6000, 99, 'new')")
        assert (await one(s, "select id from ix where a = 99")).rows == [(6000,)]  # own uncommitted write
        await run(s, "rollback")
        assert (await one(s, "select id from ix where a = 99")).rows == []

    arun(body())
