"""`toolkit scheduled list|cancel` on every pipe that schedules, through the command line."""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.channels.suite.helpers import envelope
from tests.pipes.conftest import PipeUnderTest
from toolkit.cli import main
from toolkit.envelope import Envelope
from toolkit.pipe_settings import PipeSettings
from toolkit.pipes import open_transport

CHANNEL = "ticket_commands"


def send(pipe: PipeUnderTest, envelopes: list[Envelope]) -> None:
    async def go() -> None:
        transport = open_transport(pipe.url, PipeSettings(prefix=pipe.prefix))
        await transport.send(CHANNEL, envelopes)
        await transport.close()

    asyncio.run(go())


def test_list_and_cancel_what_waits(
    scheduling_pipe: PipeUnderTest, capsys: pytest.CaptureFixture[str]
) -> None:
    pipe = scheduling_pipe
    flags = ["--url", pipe.url, "--prefix", pipe.prefix]
    assert main(["scheduled", "list", CHANNEL, *flags]) == 0
    assert "no scheduled messages on ticket_commands" in capsys.readouterr().out

    due = int((time.time() + 3600) * 1000)
    later = [envelope(deliver_at_ms=due + n) for n in (2, 1)]
    evil = envelope(deliver_at_ms=due + 3, message_id="evil\x1b[2J", key="ticket.\x07create")
    send(pipe, [*later, evil, envelope()])

    assert main(["scheduled", "list", CHANNEL, *flags]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["MESSAGE", "ID", "DUE", "(UTC)", "IN", "ROUTING", "KEY"]
    assert [line.split()[0] for line in lines[1:-1]] == [
        later[1].headers.message_id,
        later[0].headers.message_id,
        "evil\\x1b[2J",
    ]
    assert "ticket.\\x07create" in lines[3] and "\x1b" not in "".join(lines)
    assert lines[-1] == "3 scheduled message(s)"

    assert main(["scheduled", "list", CHANNEL, *flags, "--count", "1", "--json"]) == 0
    (only,) = json.loads(capsys.readouterr().out)
    assert only["message_id"] == later[1].headers.message_id
    assert only["deliver_at_ms"] == due + 1 and only["routing_key"] == "user.registered"

    cancel = ["scheduled", "cancel", CHANNEL, later[0].headers.message_id, "evil\x1b[2J", "nope"]
    assert main([*cancel, *flags]) == 0
    captured = capsys.readouterr()
    assert "cancelled 2 scheduled message(s)" in captured.out
    assert "1 of 3 not waiting" in captured.err
    assert main(["scheduled", "cancel", CHANNEL, later[0].headers.message_id, *flags]) == 1
    assert "cancelled 0" in capsys.readouterr().out
    assert main(["scheduled", "list", CHANNEL, *flags, "--json"]) == 0
    assert [s["message_id"] for s in json.loads(capsys.readouterr().out)] == [
        later[1].headers.message_id
    ]


def test_bad_input_and_unreachable_pipes_exit_2(
    scheduling_pipe: PipeUnderTest, capsys: pytest.CaptureFixture[str]
) -> None:
    pipe = scheduling_pipe
    flags = ["--url", pipe.url, "--prefix", pipe.prefix]
    assert main(["scheduled", "list", CHANNEL, *flags, "--count", "0"]) == 2
    assert "--count must be at least 1" in capsys.readouterr().err
    parts = urlsplit(pipe.url)
    dead = urlunsplit(parts._replace(netloc=parts.netloc.rsplit(":", 1)[0] + ":1"))
    assert main(["scheduled", "list", CHANNEL, "--url", dead, "--prefix", pipe.prefix]) == 2
    err = capsys.readouterr().err
    assert err.startswith("toolkit scheduled:") and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_rabbitmq_refuses_list_and_cancel_in_one_line_exit_2(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """RabbitMQ schedules (TTL wait queues) but cannot read back what waits: both actions
    exit 2 with one line naming the pipe and the doc, without connecting first (the
    URL's port answers nothing), the password hidden."""
    pytest.importorskip("aio_pika")
    url = "amqp://guest:secret@127.0.0.1:1/"
    for action in (["list"], ["cancel", "m1"]):
        assert main(["scheduled", action[0], CHANNEL, *action[1:], "--url", url]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "secret" not in err, err
        assert err.startswith(
            f"toolkit scheduled {action[0]}: channel ticket_commands is on pipe default "
            "(amqp://guest:***@127.0.0.1:1/): RabbitMQ cannot list or cancel scheduled messages"
        ), err
        assert "docs/rabbitmq.md#scheduled-messages" in err
