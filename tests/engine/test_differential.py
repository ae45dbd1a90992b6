"""Differential testing: generated queries run on Borealis (the shared cluster) and on a
scratch PostgreSQL 15; their answers must agree.

A small grammar of our own (``Gen``, a fixed seed, so CI is deterministic) writes queries
over two small tables with NULLs: expressions with NULLs, CASE, comparisons, arithmetic on
int / numeric / float, string functions, GROUP BY with aggregates, inner and left joins,
IN / EXISTS subqueries, ORDER BY with LIMIT, DISTINCT and the set-returning functions
unnest and generate_series.  Results compare as multisets unless the query orders every
output column; a query both servers refuse agrees.  The run prints how many queries it
compared and fails on the first mismatch, showing the query and both answers.
"""

from __future__ import annotations

import os
import random
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from scratchpg import scratch_postgres

SEED = int(os.environ.get("BOREALIS_DIFF_SEED", "17"))  # another seed explores further
QUERIES = 1000

T1_ROWS = [(1, 10, "apple", "1.50", 0.5), (2, None, "Banana", "2.25", -1.25), (3, 30, None, None, 3.0),
           (4, 10, "cherry", "-7.125", None), (None, 20, "apple", "0.00", 2.5), (6, -5, "", "100.5", 0.0),
           (7, 0, "date fig", "3", -0.75), (8, None, "Éclair", "2.25", 1e3)]
T2_ROWS = [(1, "one"), (2, "two"), (2, "deux"), (None, "none"), (9, "nine"), (4, None), (3, "three")]


class Gen:
    """Random SQL over t1(a int, b int, c text, d numeric, e float8) and t2(a int, x text)."""

    def __init__(self, rnd: random.Random, t1: str, t2: str) -> None:
        self.r, self.t1, self.t2 = rnd, t1, t2

    def pick(self, *xs: Any) -> Any:
        return self.r.choice(xs)

    def int_expr(self, depth: int = 0) -> str:
        r = self.r.random()
        if depth > 1 or r < 0.35:
            return self.pick("t1.a", "t1.b", "t1.a", "t1.b", str(self.r.randint(-3, 12)), "NULL::int")
        k = self.r.randint(0, 8)
        x, y = self.int_expr(depth + 1), self.int_expr(depth + 1)
        return [f"({x} + {y})", f"({x} - {y})", f"({x} * {y})", f"abs({x})", f"({x} % 3)", f"coalesce({x}, {y})",
                f"nullif({x}, {y})", f"CASE WHEN {self.pred(depth + 1)} THEN {x} ELSE {y} END",
                f"length({self.text_expr(depth + 1)})"][k]

    def num_expr(self) -> str:
        return self.pick("t1.d", "(t1.d + t1.a)", "(t1.d * 2)", "round(t1.d, 1)", "(t1.d - 0.5)", "abs(t1.d)",
                         "coalesce(t1.d, 0)", "(t1.a::numeric / 4)")

    def float_expr(self) -> str:
        return self.pick("t1.e", "(t1.e * 2.5::float8)", "(t1.a + t1.e)", "abs(t1.e)", "(t1.e - t1.b)")

    def text_expr(self, depth: int = 0) -> str:
        if depth > 1 or self.r.random() < 0.4:
            return self.pick("t1.c", "t1.c", "'apple'", "NULL::text", "'x y'")
        x = self.text_expr(depth + 1)
        return self.pick(f"upper({x})", f"lower({x})", f"({x} || 'z')", f"substr({x}, 2)", f"substr({x}, 2, 3)",
                         f"coalesce({x}, 'none')", f"replace({x}, 'a', 'A')", f"trim({x})", f"left({x}, 2)",
                         f"reverse({x})", f"concat({x}, t1.a)", f"CASE WHEN t1.a > 3 THEN {x} END")

    def pred(self, depth: int = 0) -> str:
        k = self.r.randint(0, 11 if depth < 2 else 6)
        cmp = self.pick("=", "<>", "<", "<=", ">", ">=")
        if k == 0:
            return f"{self.int_expr(depth + 1)} {cmp} {self.int_expr(depth + 1)}"
        if k == 1:
            return f"{self.text_expr(depth + 1)} {cmp} {self.text_expr(depth + 1)}"
        if k == 2:
            return f"{self.pick(self.int_expr(depth + 1), self.text_expr(depth + 1), 't1.d')} IS {self.pick('', 'NOT ')}NULL"
        if k == 3:
            return f"t1.a BETWEEN {self.r.randint(-1, 4)} AND {self.r.randint(3, 9)}"
        if k == 4:
            return f"t1.b IN ({', '.join(self.pick('10', '20', '0', 'NULL', '-5') for _ in range(3))})"
        if k == 5:
            return f"t1.c LIKE '{self.pick('a%', '%e%', '_a%', '%')}'"
        if k == 6:
            return f"{self.num_expr()} {cmp} {self.pick('2', '0.5', 't1.e')}"
        if k == 7:
            return f"({self.pred(depth + 1)} {self.pick('AND', 'OR')} {self.pred(depth + 1)})"
        if k == 8:
            return f"NOT ({self.pred(depth + 1)})"
        if k == 9:
            return f"t1.a {self.pick('IN', 'NOT IN')} (SELECT t2.a FROM {self.t2} t2 WHERE t2.x {cmp} 'o')"
        if k == 10:
            return f"{self.pick('', 'NOT ')}EXISTS (SELECT 1 FROM {self.t2} t2 WHERE t2.a = t1.a)"
        return f"t1.b {cmp} {self.pick('ANY', 'ALL')} (SELECT t2.a * 10 FROM {self.t2} t2 WHERE t2.a IS NOT NULL)"

    def any_expr(self) -> str:
        k = self.r.randint(0, 5)
        return [self.int_expr, self.num_expr, self.float_expr, self.text_expr, self.text_expr,
                lambda: f"({self.pred()})"][k]()

    def where(self) -> str:
        return f" WHERE {self.pred()}" if self.r.random() < 0.7 else ""

    def query(self) -> tuple[str, bool]:
        """A query and whether its rows come in a defined order."""
        k = self.r.randint(0, 9)
        t1, t2 = self.t1, self.t2
        if k <= 2:
            cols = ", ".join(self.any_expr() for _ in range(self.r.randint(1, 3)))
            return f"SELECT {cols} FROM {t1} t1{self.where()}", False
        if k == 3:
            cols = ", ".join(self.pick(self.int_expr(), self.text_expr(), "t1.d") for _ in range(self.r.randint(1, 2)))
            return f"SELECT DISTINCT {cols} FROM {t1} t1{self.where()}", False
        if k == 4:
            g = self.pick("t1.b", "t1.c", "(t1.a % 2)", "t1.d", "(t1.b IS NULL)", "upper(t1.c)")
            aggs = ", ".join(self.pick("count(*)", "count(t1.a)", "sum(t1.a)", "sum(t1.d)", "min(t1.c)", "max(t1.e)",
                                       "avg(t1.a)", "min(t1.d)", "max(t1.b)", "count(DISTINCT t1.b)",
                                       "string_agg(t1.c, ',' ORDER BY t1.c)", "bool_and(t1.a > 2)",
                                       f"sum({self.int_expr()})") for _ in range(self.r.randint(1, 3)))
            having = f" HAVING count(*) {self.pick('>', '>=')} {self.r.randint(0, 2)}" if self.r.random() < 0.3 else ""
            return f"SELECT {g}, {aggs} FROM {t1} t1{self.where()} GROUP BY {g}{having}", False
        if k == 5:
            join = self.pick("JOIN", "LEFT JOIN")
            on = self.pick("t1.a = t2.a", "t1.a = t2.a AND t2.x <> 'two'", "t1.b = t2.a * 10")
            cols = ", ".join(self.pick("t1.a", "t2.x", "t2.a", self.int_expr(), "upper(t2.x)",
                                       "coalesce(t2.x, t1.c)") for _ in range(self.r.randint(1, 3)))
            return f"SELECT {cols} FROM {t1} t1 {join} {t2} t2 ON {on}{self.where()}", False
        if k == 6:
            cols = [self.pick(self.int_expr(), self.text_expr(), "t1.d", "t1.e") for _ in range(self.r.randint(1, 2))]
            order = ", ".join(f"{i + 1} {self.pick('ASC', 'DESC')} NULLS {self.pick('FIRST', 'LAST')}"
                              for i in range(len(cols)))
            # every output column is ordered, but rows equal on all of them may come either way: fine
            return (f"SELECT {', '.join(cols)} FROM {t1} t1{self.where()} ORDER BY {order} "
                    f"LIMIT {self.r.randint(0, 6)}"), True
        if k == 7:
            return self.pick(
                f"SELECT t1.a, unnest(ARRAY[t1.a, t1.b]) FROM {t1} t1{self.where()}",
                f"SELECT * FROM unnest(ARRAY[1, 2, NULL], ARRAY['x', 'y']) AS u(n, s)",
                f"SELECT * FROM unnest(ARRAY['a', 'b'], ARRAY[1, 2])",
                f"SELECT u.* FROM unnest(ARRAY[3, 1, 2]) WITH ORDINALITY u",
                f"SELECT unnest(ARRAY[t1.c, 'k']), unnest(ARRAY[t1.b, 1, 2]) FROM {t1} t1{self.where()}",
            ), False
        if k == 8:
            lo, hi = self.r.randint(-2, 3), self.r.randint(0, 8)
            return self.pick(
                f"SELECT g, g * 2 FROM generate_series({lo}, {hi}) g WHERE g % 2 = 0",
                f"SELECT g FROM generate_series({hi}, {lo}, -{self.r.randint(1, 3)}) g",
                f"SELECT t1.a, generate_series(1, 2) FROM {t1} t1{self.where()}",
                f"SELECT g, t1.c FROM generate_series({lo}, {hi}) g JOIN {t1} t1 ON t1.a = g",
            ), False
        return (f"SELECT t1.a, (SELECT max(t2.x) FROM {t2} t2 WHERE t2.a = t1.a) FROM {t1} t1{self.where()}",
                False)


def _norm(v: Any) -> Any:
    if v is None:
        return ("null",)
    if isinstance(v, float):
        return ("num", float(f"{v:.10g}"))
    if isinstance(v, Decimal):
        return ("num", float(v)) if abs(v) > 10**15 else ("num", v.normalize() if v == v else v)
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, int):
        return ("num", v)
    return ("val", str(v))


def _answer(conn: psycopg.Connection, sql: str) -> tuple[str, Any]:
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            rows = [tuple(_norm(v) for v in r) for r in cur.fetchall()]
        return "rows", rows
    except psycopg.Error as e:
        return "error", e.sqlstate


def _setup(conn: psycopg.Connection, t1: str, t2: str) -> None:
    with conn.cursor() as cur:
        cur.execute(f"CREATE TABLE {t1} (a int, b int, c text, d numeric, e float8)")
        cur.execute(f"CREATE TABLE {t2} (a int, x text)")
        cur.executemany(f"INSERT INTO {t1} VALUES (%s, %s, %s, %s::numeric, %s)", T1_ROWS)
        cur.executemany(f"INSERT INTO {t2} VALUES (%s, %s)", T2_ROWS)


def test_generated_queries_agree_with_postgres(cluster):
    tag = "dt" + uuid.uuid4().hex[:6]
    t1, t2 = f"{tag}_t1", f"{tag}_t2"
    with scratch_postgres() as (sock, port):
        pg = psycopg.connect(host=str(sock), port=port, user="postgres", dbname="postgres", autocommit=True)
        bo = psycopg.connect(cluster.writer_dsn, autocommit=True)
        try:
            _setup(pg, t1, t2)
            _setup(bo, t1, t2)
            gen = Gen(random.Random(SEED), t1, t2)
            compared = refused = 0
            for _ in range(QUERIES):
                sql, ordered = gen.query()
                want, got = _answer(pg, sql), _answer(bo, sql)
                if want[0] == "rows" and got[0] == "rows" and not ordered:
                    same = Counter(want[1]) == Counter(got[1])
                elif want[0] == "error" and got[0] == "error":
                    same = True
                    refused += 1  # both refuse (the SQLSTATEs may differ: no wrong answer either way)
                else:
                    same = want == got
                if not same:
                    pytest.fail(f"after {compared} agreeing queries, a mismatch:\n{sql}\n"
                                f"PostgreSQL: {want}\nBorealis:   {got}")
                compared += 1
            print(f"differential: {compared} queries compared with PostgreSQL 15, all agree "
                  f"({refused} refused by both)")
            assert refused < compared // 4  # the grammar mostly writes queries that run
        finally:
            with bo.cursor() as cur:
                cur.execute(f"DROP TABLE IF EXISTS {t1}")
                cur.execute(f"DROP TABLE IF EXISTS {t2}")
            bo.close()
            pg.close()
