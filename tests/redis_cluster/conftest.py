"""A local Redis Cluster (3 masters, 3 replicas) for the whole session, started by the tests.

Skipped when ``redis-server`` is not on PATH, except under ``CI=true``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis.conftest import require_redis_server
from tests.redis_cluster.cluster import LocalCluster


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    require_redis_server()
    cluster = LocalCluster(tmp_path_factory.mktemp("redis-cluster")).start()
    yield cluster
    cluster.stop()
