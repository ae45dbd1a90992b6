"""Growth: does a statement's time grow linearly with the rows it touches?

Each statement runs at n, 2n, 4n and 8n rows (fresh tables per size).  The figure is the
time ratio per doubling, (t(8n) / t(n)) ** (1/3): about 2 for a linear statement, about 4
for a quadratic one (target: <= 2.3); the report also lists each doubling's own ratio and
the worst one is in the JSON.  Small n keeps the whole section to seconds per system, which
also makes the cheap queries' ratios noisy on a busy machine: queries run READ_REPEATS
times per size and the best time counts.

Tables per size:

    g0  (id int primary key, f float8, a int, b text)      n rows, loaded before timing
    g2  like g0, UNIQUE (f) and an index on (a, b)         target of the INSERT ... SELECT
"""

from __future__ import annotations

import time

import asyncpg

# (name, label, SQL); run in this order on the tables of one size
STATEMENTS: tuple[tuple[str, str, str], ...] = (
    ("insert_select", "INSERT ... SELECT into unique + 2-column indexes", "insert into g2 select * from g0"),
    ("create_index", "CREATE INDEX on (a, b)", "create index g0_ab on g0 (a, b)"),
    ("create_unique_index", "CREATE UNIQUE INDEX on a float column", "create unique index g0_f on g0 (f)"),
    ("update_where", "UPDATE ... WHERE a % 2 = 0 (half the rows)", "update g0 set b = b || 'x' where a % 2 = 0"),
    ("join", "join on the primary key", "select count(*) from g0 join g2 on g2.id = g0.id"),
    ("order_limit", "ORDER BY ... LIMIT 10", "select id from g0 order by f desc limit 10"),
    ("full_scan", "full scan with an aggregate", "select count(*), sum(a) from g0 where b <> ''"),
    ("delete_where", "DELETE ... WHERE a % 2 = 1 (half the rows)", "delete from g2 where a % 2 = 1"),
)
DOUBLINGS = 3
READ_REPEATS = 3  # queries (no side effects) run this often per size; the best time counts
TARGET = 2.3


def sizes(base: int) -> list[int]:
    return [base << k for k in range(DOUBLINGS + 1)]


async def _load(conn: asyncpg.Connection, n: int) -> None:
    await conn.execute("drop table if exists g2")
    await conn.execute("drop table if exists g0")
    await conn.execute("create table g0 (id int primary key, f float8, a int, b text)")
    await conn.execute("create table g2 (id int primary key, f float8, a int, b text, unique (f))")
    await conn.execute("create index g2_ab on g2 (a, b)")
    data = "".join(f"{i}\t{i * 1.5 + 0.25}\t{i % 1000}\trow-{i}\n" for i in range(n)).encode()

    async def source():
        yield data

    await conn.copy_to_table("g0", source=source(), columns=["id", "f", "a", "b"])


async def run(dsn: str, base: int, timeout: float) -> dict:
    """{statement: {"seconds": [per size], "ratios": [per doubling], "worst_ratio", "mean_ratio"}, "sizes": [...]}"""
    conn = await asyncpg.connect(dsn)
    secs: dict[str, list[float]] = {name: [] for name, _, _ in STATEMENTS}
    try:
        for n in sizes(base):
            await _load(conn, n)
            for name, _, sql in STATEMENTS:
                best = float("inf")
                for _ in range(READ_REPEATS if sql.startswith("select") else 1):  # best of: less noise
                    t0 = time.perf_counter()
                    await conn.execute(sql, timeout=timeout)
                    best = min(best, time.perf_counter() - t0)
                secs[name].append(best)
            if await conn.fetchval("select count(*) from g2") != sum(1 for i in range(n) if i % 2 == 0):
                raise RuntimeError(f"wrong row count in g2 after the DELETE at n={n}")
        await conn.execute("drop table if exists g2")
        await conn.execute("drop table if exists g0")
    finally:
        await conn.close()
    out: dict = {"sizes": sizes(base)}
    for name, ts in secs.items():
        ratios = [round(b / a, 2) if a > 0 else None for a, b in zip(ts, ts[1:])]
        out[name] = {"seconds": [round(t, 4) for t in ts], "ratios": ratios,
                     "worst_ratio": max((r for r in ratios if r is not None), default=None),
                     "mean_ratio": round((ts[-1] / ts[0]) ** (1 / DOUBLINGS), 2) if ts[0] > 0 else None}
    return out


def markdown(details: dict) -> list[str]:
    """Lines for the report: each statement's time per size and ratio per doubling, per system."""
    runs = {s: (details.get(s) or {}).get("growth") for s in ("postgresql", "borealis")}
    runs = {s: r["detail"] for s, r in runs.items() if r and "detail" in r}
    if not runs:
        return []
    some = next(iter(runs.values()))
    lines = ["", f"Growth (rows {', '.join(f'{n:,}' for n in some['sizes'])}; ms per size, then the ratio of each "
             f"doubling; target <= {TARGET} per doubling):", "",
             "| statement | system | ms per size | ratio per doubling | mean |", "|---|---|---|---|---:|"]
    for name, label, _ in STATEMENTS:
        for system, d in runs.items():
            g = d[name]
            ms = " / ".join(f"{t * 1000:.1f}" for t in g["seconds"])
            rs = " / ".join("-" if r is None else f"{r:.2f}" for r in g["ratios"])
            flag = " ⚠" if (g["mean_ratio"] or 0) > TARGET else ""
            lines.append(f"| {label} | {system} | {ms} | {rs} | {g['mean_ratio']}{flag} |")
    return lines
