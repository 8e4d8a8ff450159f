"""Where handlers run: synchronous ones in worker threads keep the event loop free."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.channels.suite.helpers import Running, wait_for
from tests.test_consumer import Job, job
from toolkit import Consumer, Delivery, Dispatcher, InMemoryTransport, Route
from toolkit.dispatcher import in_thread
from toolkit.workers import Workers


def jobs(service: str, handler: Callable[[Job, Delivery], None]) -> Dispatcher:
    return Dispatcher(service, [Route("job.run", "event", Job, handler)])


class Calls:
    """Per handler call: (start, end, thread id, job number), appended by the handler."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, float, int, int]] = []
        self._lock = threading.Lock()

    def handler(self, seconds: float) -> Callable[[Job, Delivery], None]:
        def handle(message: Job, meta: Delivery) -> None:
            start = time.monotonic()
            time.sleep(seconds)
            with self._lock:
                self.calls.append((start, time.monotonic(), threading.get_ident(), message.n))

        return handle

    def most_at_once(self) -> int:
        """The largest number of calls that were running at one moment."""
        return max(sum(1 for s, e, *_ in self.calls if s <= start < e) for start, *_ in self.calls)


async def test_sync_handlers_overlap_in_worker_threads_with_concurrency_four() -> None:
    transport = InMemoryTransport()
    record = Calls()
    consumer = Consumer(
        transport, "jobs", jobs("svc", record.handler(0.2)), concurrency=4, block_timeout=0.1
    )
    assert consumer.workers.threads  # the default with concurrency > 1
    await transport.send("jobs", [job(i) for i in range(8)])
    async with Running(consumer):
        await wait_for(lambda: consumer.stats.handled == 8)
    loop_thread = threading.get_ident()
    threads = {thread for _, _, thread, _ in record.calls}
    assert loop_thread not in threads
    # Bounded by concurrency, and more than one at a time.
    assert 2 <= len(threads) <= 4
    assert 2 <= record.most_at_once() <= 4


async def test_the_loop_serves_another_channel_while_a_sync_handler_blocks() -> None:
    transport = InMemoryTransport()
    slow, fast = Calls(), Calls()
    blocked = Consumer(
        transport, "slow", jobs("a", slow.handler(0.5)), concurrency=2, block_timeout=0.1
    )
    other = Consumer(transport, "fast", jobs("b", fast.handler(0.0)), block_timeout=0.1)
    await transport.send("slow", [job(0)])
    await transport.send("fast", [job(i) for i in range(5)])
    async with Running(blocked), Running(other):
        await wait_for(lambda: blocked.stats.handled == 1 and other.stats.handled == 5)
    [(_, slow_end, _, _)] = slow.calls
    # The other channel's messages were handled while the slow handler still ran.
    assert max(end for _, end, _, _ in fast.calls) < slow_end


async def test_threads_with_concurrency_one_keep_delivery_order() -> None:
    transport = InMemoryTransport()
    record = Calls()
    consumer = Consumer(
        transport,
        "jobs",
        jobs("svc", record.handler(0.0)),
        sync_handlers="thread",
        block_timeout=0.1,
    )
    await transport.send("jobs", [job(i) for i in range(30)])
    async with Running(consumer):
        await wait_for(lambda: consumer.stats.handled == 30)
    assert [n for *_, n in record.calls] == list(range(30))
    assert threading.get_ident() not in {thread for _, _, thread, _ in record.calls}


async def test_inline_keeps_sync_handlers_on_the_loop_thread() -> None:
    transport = InMemoryTransport()
    record = Calls()
    dispatcher = jobs("svc", record.handler(0.0))
    consumer = Consumer(
        transport, "jobs", dispatcher, concurrency=4, sync_handlers="inline", block_timeout=0.1
    )
    assert not Workers(dispatcher, 1, "auto", "jobs").threads  # the default with concurrency 1
    await transport.send("jobs", [job(i) for i in range(4)])
    async with Running(consumer):
        await wait_for(lambda: consumer.stats.handled == 4)
    assert {thread for _, _, thread, _ in record.calls} == {threading.get_ident()}


async def test_a_failing_handler_in_a_thread_is_a_failure_of_its_message_alone() -> None:
    transport = InMemoryTransport()

    def handle(message: Job, meta: Delivery) -> None:
        if message.n == 1:
            raise ValueError("no")

    consumer = Consumer(
        transport, "jobs", jobs("svc", handle), sync_handlers="thread", block_timeout=0.1
    )
    await transport.send("jobs", [job(i) for i in range(3)])
    async with Running(consumer):
        await wait_for(lambda: consumer.stats.processed == 3)
    assert (consumer.stats.handled, consumer.stats.failed) == (2, 1)
    [letter] = await transport.dead_letters("jobs")
    assert letter.reason.startswith("handler raised ValueError: no")


async def test_a_context_variable_set_around_the_call_is_seen_in_the_thread() -> None:
    current: contextvars.ContextVar[str] = contextvars.ContextVar("current", default="")
    seen: list[tuple[str, int]] = []

    def handler(message: object, meta: object) -> None:
        seen.append((current.get(), threading.get_ident()))

    with ThreadPoolExecutor(1) as pool:
        token = current.set("in hand")
        try:
            await in_thread(pool, handler, None, None)  # type: ignore[arg-type]
        finally:
            current.reset(token)
    assert seen[0][0] == "in hand" and seen[0][1] != threading.get_ident()


def test_sync_handlers_must_be_a_known_mode() -> None:
    with pytest.raises(ValueError, match="sync_handlers must be one of auto, inline, thread"):
        Consumer(InMemoryTransport(), "jobs", jobs("svc", print), sync_handlers="threads")  # type: ignore[arg-type]


async def test_closing_the_consumer_lets_its_threads_go() -> None:
    transport = InMemoryTransport()
    consumer = Consumer(
        transport, "jobs", jobs("svc", Calls().handler(0.0)), concurrency=2, block_timeout=0.1
    )
    await transport.send("jobs", [job(0), job(1)])
    async with Running(consumer):  # closes the consumer on the way out
        await wait_for(lambda: consumer.stats.handled == 2)

    def workers_alive() -> bool:
        return any(t.name.startswith("toolkit-jobs") for t in threading.enumerate())

    await wait_for(lambda: not workers_alive(), timeout=5)
