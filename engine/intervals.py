"""Interval arithmetic helpers (intervals are ``datetime.timedelta`` values)."""

from __future__ import annotations

import datetime as _dt
from typing import Any


def add_interval(ts: Any, step: _dt.timedelta, times: int = 1) -> Any:
    """``ts + step * times`` (exact: multiplies the step rather than accumulating)."""
    return ts + step * times


def interval_is_zero(iv: _dt.timedelta) -> bool:
    return iv == _dt.timedelta(0)


def interval_sign(iv: _dt.timedelta) -> int:
    return (iv > _dt.timedelta(0)) - (iv < _dt.timedelta(0))
