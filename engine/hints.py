"""HINTs for an unknown column: the closest column names in scope, as PostgreSQL suggests them.

A candidate is a column of a relation the failing reference could see (this query level and
the enclosing ones).  Its distance is the edit distance between the names, plus, for a
qualified reference, the edit distance between the qualifier and the relation's name; names
differing in more than half the characters, or by more than 3 in all, are not suggested.
One best candidate, or two equally good ones, make a hint; more than two make none.
"""

from __future__ import annotations

from collections.abc import Iterable

_MAX_DISTANCE = 3


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def missing_column_hint(relations: Iterable[tuple[str, list[str]]], name: str, table: str | None) -> str | None:
    """``relations``: (relation name, its column names) in the order the query lists them."""
    best = _MAX_DISTANCE + 1
    first: tuple[str, str] | None = None
    second: tuple[str, str] | None = None
    for rel, cols in relations:
        penalty = levenshtein(table, rel) if table is not None else 0
        if penalty > best:
            continue
        for col in cols:
            d = levenshtein(col, name)
            if d > len(name) // 2:
                continue
            d += penalty
            if d < best:
                best, first, second = d, (rel, col), None
            elif d == best:
                if second is not None:  # three equally good: none is worth suggesting
                    first = second = None
                    best = d - 1
                elif first is not None:
                    second = (rel, col)
                elif best <= _MAX_DISTANCE:
                    first = (rel, col)
    if first is None:
        return None
    if second is None:
        return f'Perhaps you meant to reference the column "{first[0]}.{first[1]}".'
    return (f'Perhaps you meant to reference the column "{first[0]}.{first[1]}" '
            f'or the column "{second[0]}.{second[1]}".')
