"""Fixtures of the engine tests (helpers in sqlconn.py): ``pgdb(words)`` makes a ``Db`` of
connections to the shared cluster with this test's own table names; ``pool`` runs
statements that must block."""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlconn import Db, Names


@pytest.fixture
def pgdb(cluster: Any) -> Iterator[Callable[..., Db]]:
    made: list[Db] = []

    def make(words: str = "") -> Db:
        db = Db(cluster.writer_dsn, cluster.reader_dsn, Names("e" + uuid.uuid4().hex[:8], words))
        made.append(db)
        return db

    yield make
    for db in made:
        db.cleanup()


@pytest.fixture
def pool() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    """Threads for statements that must block on another session's lock."""
    ex = concurrent.futures.ThreadPoolExecutor(4)
    yield ex
    # not waiting: a thread still blocked ends when pgdb's teardown closes its connection
    ex.shutdown(wait=False, cancel_futures=True)



