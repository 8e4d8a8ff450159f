"""The consumer on in-memory channels: retries with backoff and finishing when empty."""

from __future__ import annotations

import msgspec

from toolkit import (
    Consumer,
    Delivery,
    Dispatcher,
    Envelope,
    Headers,
    InMemoryTransport,
    Route,
    new_message_id,
)
from toolkit.retry import RetryPolicy


class Job(msgspec.Struct):
    n: int


def job(n: int) -> Envelope:
    message_id = new_message_id()
    return Envelope(
        Headers(message_id, "job.run", "event", "tests", 0, correlation_id=message_id),
        msgspec.json.encode(Job(n)),
    )


async def test_until_empty_waits_for_scheduled_retries_and_then_dead_letters() -> None:
    transport = InMemoryTransport()
    attempts: list[int] = []

    def flaky(message: Job, meta: Delivery) -> None:
        attempts.append(meta.delivery_count)
        if message.n == 1 or meta.delivery_count < 2:
            raise RuntimeError(f"attempt {meta.delivery_count}")

    consumer = Consumer(
        transport,
        "jobs",
        Dispatcher("worker", [Route("job.run", "event", Job, flaky)]),
        retry=RetryPolicy(attempts=3, base=0.02, jitter=0),
        block_timeout=0.05,
    )
    await consumer.subscription()
    await transport.send("jobs", [job(0), job(1)])
    stats = await consumer.run(until_empty=True, time_limit=10)
    # job 0 fails once then succeeds; job 1 fails three times and is dead-lettered
    assert sorted(attempts) == [1, 1, 2, 2, 3]
    assert (stats.handled, stats.retried, stats.failed) == (1, 3, 1)
    [dead] = await transport.dead_letters("jobs")
    assert dead.reason.startswith("handler raised RuntimeError: attempt 3")
    assert transport.pending("jobs", "worker") == []
