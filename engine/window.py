"""Window functions: ``WindowAgg`` operator and the planning of ``fn(...) OVER (...)``.

The operator materialises its input, and for every window clause sorts the rows by
(partition keys, order keys), splits partitions, and computes one value per row, appended
after the input columns (input row + one slot per window call, in call order).  The select
list is then compiled with a hook that maps each ``exp.Window`` node to its slot.

Frames: ROWS / RANGE / GROUPS with UNBOUNDED / n PRECEDING / CURRENT ROW / n FOLLOWING
(RANGE offsets on one numeric or date/time order key).  Default frame: RANGE UNBOUNDED
PRECEDING .. CURRENT ROW with ORDER BY (peers included), the whole partition without.
Aggregates over a frame that starts at UNBOUNDED PRECEDING and only grows are computed
incrementally; other frames are recomputed per row.
"""

from __future__ import annotations

import functools
from typing import Any, Iterator

from sqlglot import exp

from engine import errors
from engine import types as T
from engine.aggregates import agg_final, agg_init, agg_spec, agg_step, is_agg_node
from engine.executor import Op
from engine.expr import CExpr, Compiler

_RANKING = {"RowNumber": "row_number", "Rank": "rank", "DenseRank": "dense_rank", "PercentRank": "percent_rank",
            "CumeDist": "cume_dist", "Ntile": "ntile", "Lag": "lag", "Lead": "lead", "FirstValue": "first_value",
            "LastValue": "last_value", "NthValue": "nth_value"}
_RANK_NAMES = set(_RANKING.values())


class WinSpec:
    __slots__ = ("kind", "args", "agg", "part", "order", "frame", "type")

    def __init__(self, kind: str, args: list, agg: Any, part: list, order: list, frame: tuple, type_: int):
        self.kind, self.args, self.agg, self.part, self.order, self.frame, self.type = (
            kind, args, agg, part, order, frame, type_)


def window_nodes(items: list[exp.Expression]) -> list[exp.Window]:
    out: list[exp.Window] = []
    for e in items:
        for n in e.walk():
            if isinstance(n, exp.Window) and not _in_subquery(n, e) and n not in out:
                out.append(n)
    return out


def _in_subquery(node: exp.Expression, root: exp.Expression) -> bool:
    if node is root:
        return False
    p = node.parent
    while p is not None and p is not root:
        if isinstance(p, (exp.Select, exp.Subquery)):
            return True
        p = p.parent
    return False


def _resolve_named(w: exp.Window, sel: exp.Select) -> exp.Window:
    """``OVER w`` / ``OVER (w ORDER BY ..)``: merge the WINDOW clause definition."""
    alias = w.args.get("alias")
    if alias is None:
        return w
    for d in sel.args.get("windows") or []:
        if d.name == alias.name:
            merged = w.copy()
            for k in ("partition_by", "order", "spec"):
                if merged.args.get(k) is None and d.args.get(k) is not None:
                    merged.set(k, d.args[k].copy())
            merged.set("alias", None)
            return merged
    raise errors.SqlError(f'window "{alias.name}" does not exist', sqlstate="42704")


def plan_windows(cp: Compiler, sel: exp.Select, nodes: list[exp.Window]) -> tuple[list, Any]:
    """Compile window calls with ``cp`` (row = input row); returns (specs, hook).  The hook
    reads window values from the end of the row (the input width may still grow while the
    select list compiles: aggregates are added to the grouped row lazily)."""
    specs: list[WinSpec] = []
    for w in nodes:
        specs.append(_spec(cp, _resolve_named(w, sel)))

    def hook(node: exp.Expression) -> CExpr | None:
        if isinstance(node, exp.Window):
            for i, w in enumerate(nodes):
                if w is node or w == node:
                    return CExpr(lambda r, c, k=i - len(nodes): r[k], specs[i].type)
        return None

    return specs, hook


def _spec(cp: Compiler, w: exp.Window) -> WinSpec:
    fn = w.this
    part = [cp.compile(p).fn for p in (w.args.get("partition_by") or [])]
    order = []
    o = w.args.get("order")
    order_types = []
    for x in (o.expressions if o is not None else []):
        c = cp.compile(x.this)
        order.append((c.fn, bool(x.args.get("desc")), x.args.get("nulls_first")))
        order_types.append(c.type)
    frame = _frame(cp, w.args.get("spec"), bool(order))
    cls = type(fn).__name__
    kind = _RANKING.get(cls) or (str(fn.this).lower() if isinstance(fn, exp.Anonymous) else None)
    if kind in _RANK_NAMES:
        args: list[CExpr] = []
        if isinstance(fn, exp.Anonymous):
            args = [cp.compile(a) for a in fn.expressions]
        else:
            for k in ("this", "offset", "default"):
                v = fn.args.get(k)
                if isinstance(v, exp.Expression):
                    args.append(cp.compile(v))
        t = {"row_number": T.INT8, "rank": T.INT8, "dense_rank": T.INT8, "percent_rank": T.FLOAT8,
             "cume_dist": T.FLOAT8, "ntile": T.INT4}.get(kind)
        if t is None:
            t = args[0].type if args else T.TEXT
            if kind in ("lag", "lead") and len(args) > 2:
                args[2] = cp.coerce(args[2], t)
            if t == T.UNKNOWN:
                t = T.TEXT
        if kind == "nth_value" and len(args) > 1:
            args[1] = cp.coerce(args[1], T.INT4)
        return WinSpec(kind, [a.fn for a in args], None, part, order, frame, t)
    if is_agg_node(fn):
        spec = agg_spec(fn, cp)
        return WinSpec("agg", [], spec, part, order, frame, spec.type)
    raise errors.SqlError(f"function {fn.sql('postgres')} is not a window function", sqlstate="42809")


def _frame(cp: Compiler, spec: exp.Expression | None, has_order: bool) -> tuple:
    """(mode, start_kind, start_off, end_kind, end_off); kinds: up cp cr cf uf (unbounded
    preceding, n preceding, current row, n following, unbounded following)."""
    if spec is None:
        return ("range", "up", None, "cr" if has_order else "uf", None)
    mode = str(spec.args.get("kind") or "range").lower()

    def bound(v: Any, side: Any) -> tuple[str, Any]:
        side = str(side or "").lower()
        if isinstance(v, str):
            if v.upper() == "UNBOUNDED":
                return ("up" if side == "preceding" else "uf"), None
            return "cr", None
        if v is None:
            return "cr", None
        c = cp.compile(v)
        return ("cp" if side == "preceding" else "cf"), c.fn

    sk, so = bound(spec.args.get("start"), spec.args.get("start_side"))
    end = spec.args.get("end")
    ek, eo = bound(end, spec.args.get("end_side")) if end is not None else ("cr", None)
    return (mode, sk, so, ek, eo)


def _cmp_key(order: list) -> Any:
    def cmp(a: tuple, b: tuple) -> int:
        for i, (_, desc, nulls_first) in enumerate(order):
            x, y = a[i], b[i]
            if x == y:
                continue
            nf = nulls_first if nulls_first is not None else desc
            if x is None:
                return -1 if nf else 1
            if y is None:
                return 1 if nf else -1
            try:
                r = -1 if x < y else 1
            except TypeError as e:
                raise errors.DatatypeMismatch(f"could not compare values: {e}") from None
            return -r if desc else r
        return 0

    return functools.cmp_to_key(cmp)


class WindowAgg(Op):
    def __init__(self, child: Op, specs: list[WinSpec]) -> None:
        self.child, self.specs = child, specs

    def rows(self, ctx: Any) -> Iterator[tuple]:
        rows = list(self.child.rows(ctx))
        n = len(rows)
        out: list[list] = [[] for _ in range(n)]
        for spec in self.specs:
            pk = [tuple(f(r, ctx) for f in spec.part) for r in rows]
            ok = [tuple(f(r, ctx) for f, _, _ in spec.order) for r in rows]
            groups: dict[tuple, list[int]] = {}
            for i in range(n):
                groups.setdefault(pk[i], []).append(i)
            okey = _cmp_key(spec.order) if spec.order else None
            vals: list = [None] * n
            for part in groups.values():
                if okey is not None:
                    part.sort(key=lambda i: okey(ok[i]))
                self._partition(spec, [rows[i] for i in part], [ok[i] for i in part], part, vals, ctx)
            for i in range(n):
                out[i].append(vals[i])
        for r, extra in zip(rows, out):
            yield r + tuple(extra)

    def _partition(self, spec: WinSpec, prow: list, pok: list, pidx: list, vals: list, ctx: Any) -> None:
        m = len(prow)
        # peer groups (rows equal on the order keys)
        peer_start = [0] * m
        peer_end = [0] * m
        i = 0
        while i < m:
            j = i + 1
            while j < m and pok[j] == pok[i]:
                j += 1
            for k in range(i, j):
                peer_start[k], peer_end[k] = i, j
            i = j
        kind = spec.kind
        if kind == "row_number":
            for k in range(m):
                vals[pidx[k]] = k + 1
            return
        if kind in ("rank", "percent_rank", "cume_dist", "dense_rank"):
            dense = 0
            last = -1
            for k in range(m):
                if peer_start[k] != last:
                    dense += 1
                    last = peer_start[k]
                if kind == "rank":
                    v: Any = peer_start[k] + 1
                elif kind == "dense_rank":
                    v = dense
                elif kind == "percent_rank":
                    v = peer_start[k] / (m - 1) if m > 1 else 0.0
                else:
                    v = peer_end[k] / m
                vals[pidx[k]] = v
            return
        if kind == "ntile":
            for k in range(m):
                nb = spec.args[0](prow[k], ctx)
                if nb is None or nb <= 0:
                    raise errors.SqlError("argument of ntile must be greater than zero", sqlstate="22014")
                q, rmd = divmod(m, nb)
                big = (q + 1) * rmd
                vals[pidx[k]] = k // (q + 1) + 1 if k < big else rmd + (k - big) // q + 1 if q else k + 1
            return
        if kind in ("lag", "lead"):
            for k in range(m):
                off = spec.args[1](prow[k], ctx) if len(spec.args) > 1 else 1
                if off is None:
                    vals[pidx[k]] = None
                    continue
                j = k - off if kind == "lag" else k + off
                if 0 <= j < m:
                    vals[pidx[k]] = spec.args[0](prow[j], ctx)
                else:
                    vals[pidx[k]] = spec.args[2](prow[k], ctx) if len(spec.args) > 2 else None
            return
        mode, sk, so, ek, eo = spec.frame
        if kind == "agg" and sk == "up" and ek in ("cr", "uf") and (mode != "rows" or ek == "uf" or True):
            self._running_agg(spec, prow, peer_end, pidx, vals, ctx, mode, ek)
            return
        for k in range(m):
            lo, hi = self._bounds(spec, k, m, prow, pok, peer_start, peer_end, ctx)
            if kind == "agg":
                st = agg_init(spec.agg)
                for j in range(lo, hi):
                    agg_step(spec.agg, st, prow[j], ctx)
                vals[pidx[k]] = agg_final(spec.agg, st)
            elif kind == "first_value":
                vals[pidx[k]] = spec.args[0](prow[lo], ctx) if lo < hi else None
            elif kind == "last_value":
                vals[pidx[k]] = spec.args[0](prow[hi - 1], ctx) if lo < hi else None
            elif kind == "nth_value":
                nth = spec.args[1](prow[k], ctx)
                if nth is not None and nth <= 0:
                    raise errors.SqlError("argument of nth_value must be greater than zero", sqlstate="22016")
                j = lo + nth - 1 if nth is not None else hi
                vals[pidx[k]] = spec.args[0](prow[j], ctx) if j < hi else None

    def _running_agg(self, spec: WinSpec, prow: list, peer_end: list, pidx: list, vals: list, ctx: Any,
                     mode: str, ek: str) -> None:
        m = len(prow)
        if ek == "uf":
            st = agg_init(spec.agg)
            for r in prow:
                agg_step(spec.agg, st, r, ctx)
            v = agg_final(spec.agg, st)
            for k in range(m):
                vals[pidx[k]] = v
            return
        if spec.agg.order or spec.agg.kind in ("array_agg", "json_agg", "jsonb_agg", "json_object_agg",
                                               "jsonb_object_agg"):
            for k in range(m):  # state is mutable/ordered: recompute
                hi = k + 1 if mode == "rows" else peer_end[k]
                st = agg_init(spec.agg)
                for j in range(hi):
                    agg_step(spec.agg, st, prow[j], ctx)
                vals[pidx[k]] = agg_final(spec.agg, st)
            return
        st = agg_init(spec.agg)
        done = 0
        for k in range(m):
            hi = k + 1 if mode == "rows" else peer_end[k]
            while done < hi:
                agg_step(spec.agg, st, prow[done], ctx)
                done += 1
            vals[pidx[k]] = agg_final(spec.agg, list(st))

    def _bounds(self, spec: WinSpec, k: int, m: int, prow: list, pok: list, peer_start: list, peer_end: list,
                ctx: Any) -> tuple[int, int]:
        mode, sk, so, ek, eo = spec.frame

        def pos(kind: str, off: Any, is_start: bool) -> int:
            if kind == "up":
                return 0
            if kind == "uf":
                return m
            if kind == "cr":
                if mode == "rows":
                    return k if is_start else k + 1
                return peer_start[k] if is_start else peer_end[k]
            n = off(prow[k], ctx)
            if n is None or n < 0:
                raise errors.SqlError("frame starting offset must not be negative" if is_start else
                                      "frame ending offset must not be negative", sqlstate="22013")
            sign = -1 if kind == "cp" else 1
            if mode == "rows":
                j = k + sign * n
                return max(0, min(m, j if is_start else j + 1))
            if mode == "groups":
                starts = sorted(set(peer_start))
                g = starts.index(peer_start[k]) + sign * n
                if g < 0:
                    return 0
                if g >= len(starts):
                    return m
                return starts[g] if is_start else peer_end[starts[g]]
            # RANGE with an offset: compare the (single) order key
            if not spec.order:
                return 0 if is_start else m
            desc = spec.order[0][1]
            cur = pok[k][0]
            if cur is None:
                return peer_start[k] if is_start else peer_end[k]
            target = cur + sign * n * (-1 if desc else 1)
            if is_start:
                for j in range(m):
                    v = pok[j][0]
                    if v is not None and ((v >= target) if not desc else (v <= target)):
                        return j
                return m
            for j in range(m - 1, -1, -1):
                v = pok[j][0]
                if v is not None and ((v <= target) if not desc else (v >= target)):
                    return j + 1
            return 0

        return pos(sk, so, True), pos(ek, eo, False)


def _hashable(k: tuple) -> tuple:
    return tuple((0, "") if v is None else (1, v) for v in k)
