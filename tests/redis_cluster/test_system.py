"""The example system and the SIGKILL crash test, unchanged, on the local cluster."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.pipes.crash import CHANNEL, kill_consumers_repeatedly
from tests.redis.messages import ticket_create, user_registered
from tests.redis.test_crash import FLAGS, pending
from tests.redis.test_host import (
    Processes,
    processes,  # noqa: F401
)
from tests.redis.test_host import (
    test_a_command_causes_events_that_two_other_services_handle_once as example_system,
)
from tests.redis_cluster.cluster import LocalCluster


def test_the_example_system_on_the_cluster(
    redis_cluster: LocalCluster,
    tmp_path: Path,
    processes: Processes,  # noqa: F811
) -> None:
    example_system(redis_cluster.url, f"x{uuid.uuid4().hex[:8]}", tmp_path, processes)


def test_consumers_killed_mid_batch_lose_nothing_on_the_cluster(
    redis_cluster: LocalCluster, tmp_path: Path
) -> None:
    """`toolkit run ticket_service` (two channels, on two slots) killed 8 times."""
    url, prefix = redis_cluster.url, f"k{uuid.uuid4().hex[:8]}"
    sent = {
        CHANNEL: [ticket_create(i) for i in range(5000)],
        "user_events": [user_registered(i) for i in range(5000)],
    }
    print(
        kill_consumers_repeatedly(
            url, prefix, tmp_path, sent, left=pending(url, prefix, sent), host=True, flags=FLAGS
        )
    )
