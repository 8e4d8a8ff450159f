"""`toolkit dlq list|show|replay|purge` on every pipe, through the command line."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import generated.ticket_service as ticket_service
from tests.pipes.conftest import PipeUnderTest
from tests.redis.apps import Memory
from tests.redis.messages import ticket_create
from toolkit import RetryPolicy, Runner, RunOptions
from toolkit.cli import main
from toolkit.pipe_settings import PipeSettings
from toolkit.pipes import open_transport

CHANNEL = "ticket_commands"


def test_dlq_commands_list_show_replay_and_purge(
    pipe: PipeUnderTest, capsys: pytest.CaptureFixture[str]
) -> None:
    sent = [ticket_create(i) for i in range(4)] + [ticket_create(9, routing_key="ticket.close")]

    async def make_dead_letters() -> None:
        transport = open_transport(pipe.url, PipeSettings(prefix=pipe.prefix))

        def broken(message: Any, meta: Any) -> None:
            raise KeyError("no such queue")

        await transport.send(CHANNEL, sent)
        runner = Runner(
            transport,
            CHANNEL,
            ticket_service.bind(Memory(broken)),
            RunOptions(until_empty=True, retry=RetryPolicy(attempts=1)),
        )
        await runner.run()
        await transport.close()

    asyncio.run(make_dead_letters())
    flags = ["--url", pipe.url, "--prefix", pipe.prefix]
    assert main(["dlq", "list", CHANNEL, *flags]) == 0
    out = capsys.readouterr().out
    assert "5 dead letter(s)" in out and "handler raised KeyError" in out
    assert "declares no command 'ticket.close'" in out

    assert (
        main(["dlq", "list", CHANNEL, *flags, "--routing-key", "ticket.create", "--count", "2"])
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "2 dead letter(s)"
    first_id = lines[1].split()[0]

    assert main(["dlq", "show", CHANNEL, first_id, *flags]) == 0
    out = capsys.readouterr().out
    assert "error_type: builtins.KeyError" in out and "attempts: 1" in out
    assert f"message_id: {sent[0].headers.message_id}" in out and "Traceback" in out

    assert main(["dlq", "replay", CHANNEL, *flags]) == 2  # refuses without a selection
    capsys.readouterr()
    assert main(["dlq", "replay", CHANNEL, first_id, *flags]) == 0
    assert "replayed 1 dead letter(s)" in capsys.readouterr().out

    async def replayed() -> list[Any]:
        transport = open_transport(pipe.url, PipeSettings(prefix=pipe.prefix))
        handlers = Memory()
        runner = Runner(
            transport, CHANNEL, ticket_service.bind(handlers), RunOptions(until_empty=True)
        )
        await runner.run()
        await transport.close()
        return handlers.deliveries

    deliveries = asyncio.run(replayed())
    assert [(d.message_id, d.delivery_count) for d in deliveries] == [
        (sent[0].headers.message_id, 1)
    ]

    assert main(["dlq", "purge", CHANNEL, *flags, "--routing-key", "ticket.close"]) == 0
    assert "purged 1 dead letter(s)" in capsys.readouterr().out
    assert main(["dlq", "purge", CHANNEL, *flags, "--all"]) == 0
    assert "purged 3 dead letter(s)" in capsys.readouterr().out
    assert main(["dlq", "list", CHANNEL, *flags]) == 0
    assert "no dead letters" in capsys.readouterr().out
