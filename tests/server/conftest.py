"""Fixtures for the pg-wire front end tests: a server with FakeSessions (see pgwire_fake)."""

from __future__ import annotations

from typing import Any

import pytest

from pgwire_fake import ServerThread


@pytest.fixture
def pg() -> Any:
    srv = ServerThread()
    yield srv
    srv.stop()


@pytest.fixture
def pg_scram() -> Any:
    srv = ServerThread(password="s3cret")
    yield srv
    srv.stop()
