"""The commands' pipe flags: mistakes in the bindings are one clear line and exit 2."""

from __future__ import annotations

import pytest

from tests.cli import toolkit_cli


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            [
                "run",
                "ticket_service",
                "--app",
                "tests.redis.apps:Recorder",
                "--bind",
                "x=kafka://h",
            ],
            "pipe URL 'kafka://h' has scheme kafka://; pipes serve redis://",
        ),
        (
            ["run", "ticket_service", "--app", "m:o", "--bind", "ticket_comands=other"],
            "channel 'ticket_comands' is bound to pipe 'other', which has no URL",
        ),
        (
            [
                "run",
                "ticket_service",
                "--app",
                "tests.redis.apps:Recorder",
                "--pipe",
                "o=redis://h",
                "--bind",
                "ticket_comands=o",
            ],
            "pipe bindings name channels the service map does not have: ticket_comands",
        ),
        (
            [
                "dlq",
                "list",
                "ticket_commands",
                "--pipe",
                "r=amqp://u:secret@h/",
                "--bind",
                "ticket_commands=nowhere",
            ],
            "channel 'ticket_commands' is bound to pipe 'nowhere', which has no URL (pipes: ",
        ),
        (
            ["groups", "list", "ticket_commands", "--bind", "ticket_commands=postgresql://u@h/db"],
            "consumer groups are Redis's, and 'ticket_commands' is carried by postgresql://u@h/db",
        ),
        (
            ["dlq", "show", "ticket_commands", "not-an-id"],
            "not a dead-letter id: 'not-an-id' (ids look like 1795817879034-0",
        ),
    ],
)
def test_binding_mistakes_exit_2_with_one_line(args: list[str], message: str) -> None:
    done = toolkit_cli(*args)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert "secret" not in done.stderr


def test_an_unreachable_pipe_is_named() -> None:
    done = toolkit_cli(
        "run",
        "ticket_service",
        "--app",
        "tests.redis.apps:Memory",
        "--url",
        "redis://127.0.0.1:1/0",
    )
    assert done.returncode == 2
    assert "cannot reach Redis at redis://127.0.0.1:1/0" in done.stderr
    assert "Traceback" not in done.stderr
