"""Shared fixtures.

``cluster``       one running cluster for the whole session (writer + 1 reader, 6 storage
                  nodes, endpoints); tests must leave it running and healthy.
``make_cluster``  a factory for tests that break things: ``make_cluster(readers=2)`` starts
                  a fresh cluster in the test's tmp dir; it is torn down after the test.
Both stop every process at the end, assert none survives, and fail on tracebacks in logs.
Each cluster gets its own key-encryption key (tests/cluster.py); the default KEK, for
clusters made otherwise, lives in a temporary XDG_CONFIG_HOME.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator

import pytest

from cluster import ClusterHandle, start_cluster

# Clusters that tests create without a key-encryption key of their own get the default one
# (storage.atrest): made here, never in the user's ~/.config.
os.environ["XDG_CONFIG_HOME"] = _config_home = tempfile.mkdtemp(prefix="borealis-test-config-")
atexit.register(shutil.rmtree, _config_home, True)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHandle]:
    handle = start_cluster(tmp_path_factory.mktemp("cluster"), readers=1)
    yield handle
    handle.teardown()


@pytest.fixture
def make_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ClusterHandle]]:
    made: list[ClusterHandle] = []

    def make(**kw) -> ClusterHandle:
        handle = start_cluster(tmp_path_factory.mktemp("cluster"), **kw)
        made.append(handle)
        return handle

    yield make
    errors = []
    for handle in made:
        try:
            handle.teardown()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)
