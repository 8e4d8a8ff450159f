"""``toolkit pipes``: the channels' pipes as configured, and --check against real servers."""

from __future__ import annotations

import psycopg

from tests.cli import toolkit_cli


def test_the_table_shows_each_channel_on_its_pipe_without_passwords() -> None:
    done = toolkit_cli(
        "pipes", "--pipe", "mq=amqp://app:secret@mq:5672/", "--bind", "ticket_commands=mq"
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["CHANNEL", "KIND", "CONSUMERS", "PIPE", "URL"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["ticket_commands"][-2:] == ["mq", "amqp://app:***@mq:5672/"]
    assert rows["user_events"][-2:] == ["default", "redis://localhost:6379/0"]
    assert "secret" not in done.stdout


def test_check_connects_to_each_pipe_and_creates_the_postgresql_tables(
    redis_url: str, postgres_url: str, schema: str
) -> None:
    done = toolkit_cli(
        *("pipes", "--check", "--url", redis_url, "--prefix", schema),
        *("--pipe", f"pg={postgres_url}", "--bind", "ticket_commands=pg"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "pipe default: ok (2 channel(s))" in done.stdout
    assert "pipe pg: ok (1 channel(s), its tables created)" in done.stdout
    with psycopg.connect(postgres_url) as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)
        ).fetchone()
    assert found == (1,)


def test_check_fails_with_2_and_names_the_pipe_that_does_not_answer(redis_url: str) -> None:
    done = toolkit_cli(
        *("pipes", "--check", "--url", redis_url),
        *("--bind", "ticket_commands=postgresql://postgres@127.0.0.1:1/test"),
    )
    assert done.returncode == 2
    assert "pipe default: ok" in done.stdout
    assert (
        "pipe pipe_1: FAILED: cannot reach PostgreSQL at postgresql://postgres@127.0.0.1:1/test"
        in done.stdout
    )
