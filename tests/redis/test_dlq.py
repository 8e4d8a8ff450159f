"""Dead letters keep the original entry byte for byte; `toolkit dlq` shows wire text
escaped, in aligned columns, and says clearly when an id is malformed or nothing happened."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import unicodedata
import uuid
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import generated.ticket_service as ticket_service
from tests.redis.apps import Memory
from tests.redis.server import RedisServer
from toolkit import Rejected, Runner, RunOptions
from toolkit.channels.redis import RedisTransport
from toolkit.channels.redis.entries import split_dead_letter
from toolkit.cli import main
from toolkit.commands._terminal import SafeFormatter, shown

CHANNEL = "ticket_commands"
GROUP = "ticket_service"
BODY = (
    b'{"ticket_id":"0b6c3d5e-2f0a-4c1e-9d3b-5a7e8f9a0b1c","subject":"s","requester_email":"a@b.c"}'
)
#: as another program might write it: no timestamp, fields toolkit does not know (one
#: named like the toolkit's own dead-letter fields, one not UTF-8), one name twice
ORIGINAL = [
    b"message_id", b"php-0001",
    b"routing_key", b"ticket.create",
    b"kind", b"command",
    b"trace", b"\xff\xfe\x00raw",
    b"source_service", b"php_app",
    b"target_service", GROUP.encode(),
    b"dlq_reason", b"the producer's own field",
    b"tag", b"a",
    b"tag", b"b",
    b"body", BODY,
]  # fmt: skip


def run_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


async def consume(transport: RedisTransport, handlers: Memory) -> None:
    await Runner(
        transport, CHANNEL, ticket_service.bind(handlers), RunOptions(until_empty=True)
    ).run()


async def test_dead_letter_keeps_the_original_entry_and_replay_restores_it(
    redis_url: str, prefix: str
) -> None:
    transport = RedisTransport(redis_url, prefix=prefix)
    stream = transport.keys(CHANNEL).stream
    client = redis.asyncio.Redis.from_url(redis_url)

    def refuse(message: Any, meta: Any) -> None:
        raise Rejected("not now")

    try:
        await client.execute_command("XADD", stream, "*", *ORIGINAL)  # type: ignore[no-untyped-call]
        await consume(transport, Memory(refuse))
        [letter] = await transport.dead_letters(CHANNEL)
        dead = transport.keys(CHANNEL).dead
        raw = await transport.redis.execute_command("XRANGE", dead, "-", "+")  # type: ignore[no-untyped-call]
        toolkit, original = split_dead_letter(raw[0][1])
        assert original == ORIGINAL
        assert toolkit["reason"] == letter.reason == "rejected by handler: not now"
        assert toolkit["group"] == GROUP and "timestamp" not in letter.fields
        assert letter.fields["dlq_reason"] == b"the producer's own field"
        assert letter.envelope is not None and letter.envelope.headers.message_id == "php-0001"

        flags = ["--url", redis_url, "--prefix", prefix]
        code, out, _ = await asyncio.to_thread(
            run_cli, "dlq", "show", CHANNEL, letter.dead_letter_id, *flags
        )
        assert code == 0
        assert (
            "  trace: \\xff\\xfe\\x00raw" in out and "  dlq_reason: the producer's own field" in out
        )
        assert "timestamp" not in out

        code, out, _ = await asyncio.to_thread(
            run_cli, "dlq", "replay", CHANNEL, letter.dead_letter_id, *flags
        )
        assert (code, out) == (0, f"replayed 1 dead letter(s) to {CHANNEL}\n")
        entries = await transport.redis.execute_command("XRANGE", stream, "-", "+")  # type: ignore[no-untyped-call]
        assert entries[-1][1] == [*ORIGINAL, b"replay_group", GROUP.encode()]
        handlers = Memory()
        await consume(transport, handlers)
        assert [(d.message_id, d.delivery_count) for d in handlers.deliveries] == [("php-0001", 1)]
    finally:
        await client.aclose()
        await transport.close()


async def test_entry_that_is_no_envelope_is_kept_exactly_and_listed_with_its_id(
    redis_url: str, prefix: str
) -> None:
    transport = RedisTransport(redis_url, prefix=prefix)
    stream = transport.keys(CHANNEL).stream
    written = [b"message_id", b"m-7", b"kind", b"query", b"odd\x00name", b"\x1b[2J", b"body", b"{}"]
    try:
        await transport.redis.execute_command("XADD", stream, "*", *written)  # type: ignore[no-untyped-call]
        await consume(transport, Memory())
        raw = await transport.redis.execute_command("XRANGE", f"{stream}:dead", "-", "+")  # type: ignore[no-untyped-call]
        assert split_dead_letter(raw[0][1])[1] == written
        code, out, _ = await asyncio.to_thread(
            run_cli, "dlq", "list", CHANNEL, "--url", redis_url, "--prefix", prefix
        )
        row = out.splitlines()[1].split()
        assert code == 0 and row[1:3] == ["-", "m-7"]  # no routing key; the message id is there
    finally:
        await transport.close()


def test_dlq_ids_and_exit_codes(redis_url: str, prefix: str) -> None:
    flags = ["--url", redis_url, "--prefix", prefix]
    for action in ("show", "replay", "purge"):
        code, _, err = run_cli("dlq", action, CHANNEL, "not-an-id", *flags)
        assert code == 2 and "not a dead-letter id: 'not-an-id'" in err, (action, err)
        assert "Traceback" not in err
    code, _, err = run_cli("dlq", "show", CHANNEL, "99999999999999999999-0", *flags)
    assert code == 2 and "not a dead-letter id" in err  # past 2**64: Redis would refuse it
    code, _, err = run_cli("dlq", "show", CHANNEL, "1-0", *flags)
    assert code == 1 and f"no dead letter 1-0 on {CHANNEL}" in err
    code, _, err = run_cli("dlq", "replay", CHANNEL, "1-0", *flags)
    assert code == 1 and "1 of 1 not replayed" in err
    code, _, err = run_cli("dlq", "replay", CHANNEL, "--all", *flags)
    assert code == 1 and "nothing replayed" in err


# -- what reaches the terminal ------------------------------------------------------------

NASTY = st.sampled_from(
    ["\x1b]0;owned\x07", "\x1b[2J", "\t", "\r", "\n", "\x00", "\u202e", "\x9b", "中文", "e\u0301"]
)
TEXT = st.lists(st.one_of(st.text(max_size=6), NASTY), max_size=4).map("".join)


def cells(text: str) -> int:
    """Terminal columns, as a terminal counts them (independently of the CLI's helper)."""
    return sum(
        0 if unicodedata.category(c) in ("Mn", "Me") else
        2 if unicodedata.east_asian_width(c) in ("W", "F") else 1
        for c in text
    )  # fmt: skip


def starts(line: str) -> dict[int, int]:
    """Terminal column -> index in ``line`` of the character starting there."""
    out, column = {}, 0
    for index, char in enumerate(line):
        out.setdefault(column, index)
        column += cells(char)
    out.setdefault(column, len(line))
    return out


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    letters=st.lists(
        st.fixed_dictionaries(
            {
                "routing_key": TEXT,
                "message_id": TEXT,
                "group": TEXT,
                "attempts": TEXT,
                "reason": TEXT,
                "detail": TEXT,
                "field": TEXT,
            }
        ),
        min_size=1,
        max_size=3,
    )
)
def test_dlq_output_escapes_wire_text_and_keeps_columns_aligned(
    redis_server: RedisServer, letters: list[dict[str, str]]
) -> None:
    prefix = f"t{uuid.uuid4().hex[:10]}"
    client = redis.Redis(port=redis_server.port)
    dead = f"{prefix}:{{{CHANNEL}}}:dead"
    ids = []
    for letter in letters:
        ids.append(
            client.execute_command(
                "XADD",
                dead,
                "*",
                "dlq_reason",
                letter["reason"],
                "dlq_group",
                letter["group"],
                "dlq_attempts",
                letter["attempts"],
                "dlq_error_message",
                letter["detail"],
                "dlq_traceback",
                letter["detail"] + "\n" + letter["reason"],
                "dlq_original",
                "5",
                "message_id",
                letter["message_id"],
                "routing_key",
                letter["routing_key"],
                "kind",
                "event",
                "source_service",
                letter["field"],
                letter["field"] or "x",
                letter["detail"],
                "body",
                b"\x1b[2J{}",
            ).decode()
        )
    client.close()
    flags = ["--url", redis_server.url, "--prefix", prefix]
    code, out, _ = run_cli("dlq", "list", CHANNEL, *flags)
    assert code == 0
    outputs = [out]
    lines = out.splitlines()[: len(letters) + 1]
    header = lines[0]
    columns = [header.index(name) for name in ("ID", "ROUTING KEY", "MESSAGE ID", "GROUP")]
    tries_end = header.index("TRIES") + len("TRIES")
    for line, dead_id, letter in zip(lines[1:], ids, letters, strict=True):
        at = starts(line)
        values = [dead_id, letter["routing_key"] or "-", letter["message_id"] or "-"]
        for column, value in zip(columns, [*values, letter["group"]], strict=True):
            assert line[at[column] :].startswith(shown(value)), (line, value)
        tries = shown(letter["attempts"])
        ends = [k for k in range(len(line) + 1) if cells(line[:k]) == tries_end]
        assert any(line[:k].endswith(tries) for k in ends), (line, tries)
    for dead_id in ids:
        code, out, _ = run_cli("dlq", "show", CHANNEL, dead_id, *flags)
        assert code == 0
        outputs.append(out)
    for text in outputs:
        assert all(c == "\n" or c.isprintable() for c in text), repr(text)


def test_shown_escapes_what_a_terminal_would_obey_and_nothing_else() -> None:
    assert shown("ticket.create") == "ticket.create"
    assert shown("中文 é") == "中文 é"
    assert shown("\x1b]0;owned\x07") == "\\x1b]0;owned\\x07"
    assert shown("a\tb\r\nc\u202e") == "a\\tb\\r\\nc\\u202e"
    assert shown("C:\\x1b") == "C:\\\\x1b"  # a backslash typed is not an escape shown
    assert shown(b"\xff\xfeok") == "\\xff\\xfeok"
    # toolkit run's log lines: the newlines of a traceback stay, the rest is escaped
    record = logging.LogRecord("t", logging.WARNING, "", 0, "dead-lettered %s", ("\x1b[2J",), None)
    assert SafeFormatter("%(message)s\nnext").format(record) == "dead-lettered \\x1b[2J\nnext"


def test_dlq_help_gives_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["dlq", "--help"])
    assert "Exit status: 0 done; 1 nothing to show or replay" in " ".join(
        capsys.readouterr().out.split()
    )
