"""The operations tools see every shard of a sharded channel (toolkit/channels/redis/shards.py):
dead letters listed across shards, shown, replayed to the shard (and band) they came from and
purged; status summed over the shards; groups listed and removed on every shard. Through the
API and through the CLI, whose pipe URL configures the shards (``?shards=channel:N``)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import time
import zlib
from typing import Any

import redis

from tests.redis.messages import ticket_create
from toolkit.channels.base import Delivery
from toolkit.channels.redis import ChannelOptions, RedisTransport
from toolkit.channels.redis.keys import band_name
from toolkit.channels.redis.shards import shard_name
from toolkit.cli import main
from toolkit.envelope import Envelope

CHANNEL = "ticket_commands"
GROUP = "ticket_service"
SHARDS = 4


def key_on(shard: int) -> str:
    """A partition key that picks ``shard``."""
    n = 0
    while zlib.crc32(f"key-{n}".encode()) % SHARDS != shard:
        n += 1
    return f"key-{n}"


def on(shard: int, n: int, priority: int = 0) -> Envelope:
    return ticket_create(n, metadata={"partition_key": key_on(shard)}, priority=priority)


def time_order(dead_letter_id: str) -> tuple[int, int, int]:
    """``<ms>-<seq>[#<shard>]``: by time, then shard."""
    entry, _, shard = dead_letter_id.partition("#")
    ms, _, seq = entry.partition("-")
    return int(ms), int(seq), int(shard or 0)


def sharded(url: str, prefix: str) -> RedisTransport:
    return RedisTransport(url, prefix=prefix, channels={CHANNEL: ChannelOptions(shards=SHARDS)})


def cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def flags(url: str, prefix: str) -> list[str]:
    return ["--url", f"{url}?shards={CHANNEL}:{SHARDS}", "--prefix", prefix]


async def take(sub: Any, n: int) -> list[Delivery]:
    got: list[Delivery] = []
    deadline = time.monotonic() + 5
    while len(got) < n and time.monotonic() < deadline:
        got += await sub.receive(n - len(got), 0.2)
    assert len(got) == n
    return got


async def dead_letter_on_every_shard(transport: RedisTransport) -> dict[str, int]:
    """Two messages per shard (shard 2's second with priority 5, on its band) dead-lettered
    by GROUP: message id -> the shard it was on."""
    sent = {
        (i, j): on(i, 10 * i + j, priority=5 if (i, j) == (2, 1) else 0)
        for i in range(SHARDS)
        for j in range(2)
    }
    await transport.send(CHANNEL, list(sent.values()))
    sub = await transport.subscribe(CHANNEL, GROUP, "worker-a")
    for delivery in await take(sub, len(sent)):
        await sub.reject(delivery, "test: bad")
    await sub.close()
    return {e.headers.message_id: i for (i, _), e in sent.items()}


async def test_dead_letters_of_every_shard_are_listed_shown_replayed_and_purged(
    redis_url: str, prefix: str
) -> None:
    transport = sharded(redis_url, prefix)
    try:
        shard_of = await dead_letter_on_every_shard(transport)
        letters = await transport.dead_letters(CHANNEL)
        assert len(letters) == 8
        assert {d.envelope.headers.message_id for d in letters if d.envelope} == set(shard_of)
        ids = [d.dead_letter_id for d in letters]
        assert len(set(ids)) == 8  # unique across shards, whose entry ids may repeat
        for letter in letters:
            assert letter.envelope is not None and letter.group == GROUP
            shard = shard_of[letter.envelope.headers.message_id]
            suffix = letter.dead_letter_id.partition("#")[2]
            assert suffix == (str(shard) if shard else "")
            assert transport.valid_dead_letter_id(letter.dead_letter_id)
        # merged by time, oldest first; ``count`` takes the oldest
        assert ids == sorted(ids, key=time_order)
        assert [d.dead_letter_id for d in await transport.dead_letters(CHANNEL, count=3)] == ids[:3]

        # each one found on its shard
        for letter in letters:
            found = await transport.dead_letter(CHANNEL, letter.dead_letter_id)
            assert found is not None and found.dead_letter_id == letter.dead_letter_id
            assert found.fields == letter.fields
        # a shard the channel does not have holds none
        assert await transport.dead_letter(CHANNEL, ids[0].partition("#")[0] + "#9") is None

        # Replayed to the shard, and band, that dead-lettered it; only that group handles it.
        by_id = {d.envelope.headers.message_id: d for d in letters if d.envelope}
        plain = next(m for m, s in shard_of.items() if s == 3)
        urgent = next(m for m, d in by_id.items() if d.envelope and d.envelope.headers.priority)
        assert shard_of[urgent] == 2
        replayed = [by_id[plain].dead_letter_id, by_id[urgent].dead_letter_id]
        assert await transport.replay(CHANNEL, replayed) == 2
        with redis.Redis.from_url(redis_url) as client:
            tail = client.xrange(transport.keys(shard_name(CHANNEL, 3)).stream)[-1][1]
            assert tail[b"message_id"] == plain.encode()
            assert tail[b"replay_group"] == GROUP.encode()
            band = transport.keys(band_name(shard_name(CHANNEL, 2), 5)).stream
            assert client.xrange(band)[-1][1][b"message_id"] == urgent.encode()
        sub = await transport.subscribe(CHANNEL, GROUP, "worker-b")
        again = await take(sub, 2)
        assert {(d.message_id, d.delivery_count) for d in again} == {(plain, 1), (urgent, 1)}
        await sub.ack(again)
        await sub.close()
        left = [d.dead_letter_id for d in await transport.dead_letters(CHANNEL)]
        assert left == [i for i in ids if i not in replayed]

        # purged by id on their shards, then the rest on every shard
        assert await transport.purge(CHANNEL, left[:3]) == 3
        assert await transport.purge(CHANNEL, left[:3]) == 0
        assert await transport.purge(CHANNEL) == 3
        assert await transport.dead_letters(CHANNEL) == []
    finally:
        await transport.close()


async def test_dlq_commands_reach_every_shard(redis_url: str, prefix: str) -> None:
    transport = sharded(redis_url, prefix)
    try:
        shard_of = await dead_letter_on_every_shard(transport)
    finally:
        await transport.close()
    args = flags(redis_url, prefix)
    code, out, _ = await asyncio.to_thread(cli, "dlq", "list", CHANNEL, *args)
    rows = [line.split() for line in out.splitlines()[1:-1]]
    assert code == 0 and len(rows) == 8 and out.splitlines()[-1] == "8 dead letter(s)"
    for row in rows:
        shard = shard_of[row[2]]
        assert row[0].partition("#")[2] == (str(shard) if shard else "")
    far = next(row for row in rows if shard_of[row[2]] == 3)
    code, out, _ = await asyncio.to_thread(cli, "dlq", "show", CHANNEL, far[0], *args)
    assert code == 0 and out.startswith(f"dead letter {far[0]} on {CHANNEL}, by group {GROUP}")
    code, out, _ = await asyncio.to_thread(cli, "dlq", "replay", CHANNEL, far[0], *args)
    assert (code, out) == (0, f"replayed 1 dead letter(s) to {CHANNEL}\n")
    code, out, _ = await asyncio.to_thread(cli, "dlq", "purge", CHANNEL, "--all", *args)
    assert (code, out) == (0, f"purged 7 dead letter(s) from {CHANNEL}\n")


async def fill_for_status(url: str, prefix: str) -> None:
    """Three messages per shard, one of shard 1's with priority 5 (on its band). worker-a
    takes every one: on each shard it acks one and dead-letters one; one it keeps for a
    retry (shard 3), the others it keeps in hand. legacy_service reads nothing."""
    transport = sharded(url, prefix)
    sent = [
        on(i, 10 * i + j, priority=5 if (i, j) == (1, 2) else 0) for i in range(4) for j in range(3)
    ]
    await transport.send(CHANNEL, sent)
    legacy = await transport.subscribe(CHANNEL, "legacy_service", "old")
    await legacy.close()
    worker = await transport.subscribe(CHANNEL, GROUP, "worker-a")
    got = await take(worker, 12)
    first: dict[str, list[Delivery]] = {}
    for d in got:
        first.setdefault(d.metadata["partition_key"], []).append(d)
    for i in range(SHARDS):
        mine = first[key_on(i)]
        await worker.ack(mine[:1])
        await worker.reject(mine[1], "test: bad")
        if i == 3:
            await worker.retry_later(mine[2], 3600)
    await transport.close()


async def test_status_sums_every_shard(redis_url: str, prefix: str) -> None:
    await fill_for_status(redis_url, prefix)
    transport = sharded(redis_url, prefix)
    try:
        status = await transport.status(CHANNEL)
    finally:
        await transport.close()
    assert (status.channel, status.length, status.dead_letters) == (CHANNEL, 12, 4)
    legacy, tickets = status.groups
    # (its consumer left on closing)
    assert (legacy.name, legacy.lag, legacy.pending, legacy.consumers) == (
        "legacy_service",
        12,
        0,
        [],
    )
    assert (tickets.name, tickets.lag, tickets.pending, tickets.retrying) == (GROUP, 0, 4, 1)
    assert tickets.oldest_pending_age is not None
    [worker] = tickets.consumers
    assert (worker.name, worker.pending) == ("worker-a", 4)


def test_status_command_sums_every_shard(redis_url: str, prefix: str) -> None:
    asyncio.run(fill_for_status(redis_url, prefix))
    code, out, _ = cli("status", CHANNEL, *flags(redis_url, prefix), "--json")
    assert code == 0
    [doc] = json.loads(out)["channels"]
    assert (doc["length"], doc["dead_letters"]) == (12, 4)
    figures = {g["name"]: (g["lag"], g["pending"], g["retrying"]) for g in doc["groups"]}
    assert figures == {"legacy_service": (12, 0, 0), GROUP: (0, 4, 1)}


async def test_groups_are_listed_and_removed_on_every_shard(redis_url: str, prefix: str) -> None:
    transport = sharded(redis_url, prefix)
    client = redis.Redis.from_url(redis_url)

    def holders(group: str) -> list[str]:
        """The streams of the channel (shards, and their bands) that have ``group``."""
        streams = [transport.keys(shard_name(CHANNEL, i)).stream for i in range(SHARDS)]
        streams.append(transport.keys(band_name(shard_name(CHANNEL, 1), 5)).stream)
        return [s for s in streams if group in {g["name"].decode() for g in client.xinfo_groups(s)}]

    try:
        await transport.send(CHANNEL, [on(i, i, priority=5 if i == 1 else 0) for i in range(4)])
        sub = await transport.subscribe(CHANNEL, "legacy_service", "old")
        await take(sub, 4)
        await sub.close()
        assert len(holders("legacy_service")) == SHARDS + 1
        [info] = await transport.groups(CHANNEL)
        # summed over the shards and their bands (shard 1's message is on its band)
        assert (info.name, info.consumers, info.pending, info.lag) == ("legacy_service", 1, 4, 0)
        code, out, _ = await asyncio.to_thread(
            cli, "groups", "list", CHANNEL, *flags(redis_url, prefix)
        )
        assert code == 0
        assert out.splitlines()[1].split() == [
            CHANNEL,
            "legacy_service",
            "1",
            "4",
            "0",
            "0",
            "retired",
        ]

        code, out, _ = await asyncio.to_thread(
            cli, "groups", "remove", CHANNEL, "legacy_service", *flags(redis_url, prefix)
        )
        assert code == 0 and out.startswith(f"removed group legacy_service from {CHANNEL}")
        assert holders("legacy_service") == []
        assert await transport.groups(CHANNEL) == []
        assert await transport.remove_group(CHANNEL, "legacy_service") is False
    finally:
        client.close()
        await transport.close()
