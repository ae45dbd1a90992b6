"""Bitwise operators on integers: ``&``, ``|``, ``#`` (xor), ``~``, ``<<``, ``>>``.

The result has the type of the (wider) integer operand, like PostgreSQL's int2/int4/int8
operators; shifts keep the left operand's type and wrap like C on that width.  Registered
by node class name into ``engine.functions`` (sqlglot's BitwiseAnd etc.).
"""

from __future__ import annotations

from typing import Any, Callable

from sqlglot import exp

from engine import errors
from engine import types as T
from engine.expr import CExpr, Compiler

_BITS = {T.INT2: 16, T.INT4: 32, T.INT8: 64}


def _wrap(v: int, oid: int) -> int:
    """Two's complement of ``v`` on the type's width (shifts overflow silently in PG)."""
    bits = _BITS[oid]
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >= 1 << (bits - 1) else v


def _operand(cp: Compiler, e: exp.Expression) -> CExpr:
    c = cp.compile(e)
    if c.type == T.UNKNOWN or (c.param is not None and c.type not in _BITS):
        c = cp.coerce(c, T.INT4)
    if c.type not in _BITS:
        raise errors.UndefinedFunction(
            f"operator does not exist: {T.TYPE_NAMES.get(c.type, c.type)}",
            hint="No operator matches the given name and argument types. You might need to add explicit type casts.")
    return c


def _binary(op: Callable[[int, int, int], int], shift: bool = False) -> Callable[[Compiler, exp.Expression], CExpr]:
    def h(cp: Compiler, node: exp.Expression) -> CExpr:
        a, b = _operand(cp, node.this), _operand(cp, node.expression)
        t = a.type if shift else max(a.type, b.type, key=lambda o: _BITS[o])
        fa, fb = a.fn, b.fn

        def run(r: Any, c: Any) -> Any:
            x, y = fa(r, c), fb(r, c)
            if x is None or y is None:
                return None
            return _wrap(op(int(x), int(y), _BITS[t]), t)

        return CExpr(run, t)

    return h


def _not(cp: Compiler, node: exp.Expression) -> CExpr:
    a = _operand(cp, node.this)
    f = a.fn
    return CExpr(lambda r, c: None if (v := f(r, c)) is None else ~int(v), a.type)


def _shift(x: int, n: int, bits: int) -> int:
    """``x << n`` (``n`` < 0: arithmetic right shift); the count is taken modulo the width."""
    return x << (n % bits) if n >= 0 else x >> (-n % bits)


HANDLERS: dict[str, Callable[[Compiler, exp.Expression], CExpr]] = {
    "BitwiseAnd": _binary(lambda x, y, b: x & y), "BitwiseOr": _binary(lambda x, y, b: x | y),
    "BitwiseXor": _binary(lambda x, y, b: x ^ y), "BitwiseNot": _not,
    "BitwiseLeftShift": _binary(_shift, shift=True),
    "BitwiseRightShift": _binary(lambda x, n, b: _shift(x, -n, b), shift=True),
}
