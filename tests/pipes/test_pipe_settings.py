"""Binding channels to pipes: configuration, environment and flags, and their mistakes."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from toolkit.pipe_settings import (
    DEFAULT_URL,
    BindingError,
    Bindings,
    UnknownScheme,
    bindings_from,
    pipe_module,
    redact,
)

RABBIT = "amqp://guest:secret@localhost:5672/"
PG = "postgresql://postgres@localhost/test"


def test_without_any_setting_every_channel_is_on_the_local_redis() -> None:
    bindings = bindings_from(environ={})
    assert bindings.url_of("ticket_commands") == DEFAULT_URL
    assert bindings.pipe_of("anything") == "default"


def test_configuration_binds_channels_to_named_pipes_and_the_rest_to_the_default() -> None:
    bindings = bindings_from(
        pipes={"default": "redis://cache:6379/1", "rabbit": RABBIT, "pg": PG},
        channels={"ticket_commands": "rabbit", "ticket_events": "pg"},
        environ={},
    )
    assert bindings.url_of("ticket_commands") == RABBIT
    assert bindings.url_of("ticket_events") == PG
    assert bindings.url_of("user_events") == "redis://cache:6379/1"


def test_the_environment_overrides_the_configuration_and_the_flags_override_both() -> None:
    environ = {
        "TOOLKIT_PIPE_RABBIT": "amqp://other/",
        "TOOLKIT_CHANNEL_TICKET_EVENTS": "rabbit",
        "REDIS_URL": "redis://from-env:6379/0",
    }
    bindings = bindings_from(
        pipes={"rabbit": RABBIT}, channels={"ticket_events": "default"}, environ=environ
    )
    assert bindings.url_of("ticket_events") == "amqp://other/"
    assert bindings.url_of("user_events") == "redis://from-env:6379/0"  # REDIS_URL: the default
    flagged = bindings_from(
        pipes={"rabbit": RABBIT},
        environ=environ,
        url="redis://flag:6379/0",
        pipe_args=["pg=" + PG],
        bind_args=["ticket_events=pg"],
    )
    assert flagged.url_of("ticket_events") == PG
    assert flagged.url_of("user_events") == "redis://flag:6379/0"


def test_redis_url_and_a_configured_default_keep_their_old_order() -> None:
    # --url, then REDIS_URL, then [tool.toolkit] redis_url: as before pipes existed
    assert bindings_from(redis_url="redis://cfg/0", environ={}).url_of("c") == "redis://cfg/0"
    env = {"REDIS_URL": "redis://env/0"}
    assert bindings_from(redis_url="redis://cfg/0", environ=env).url_of("c") == "redis://env/0"
    # a default pipe given in [tool.toolkit.pipes] wins over REDIS_URL
    named = bindings_from(pipes={"default": PG}, environ=env)
    assert named.url_of("c") == PG


def test_a_channel_may_be_bound_to_a_url_directly() -> None:
    bindings = bindings_from(
        channels={"a": RABBIT, "b": RABBIT, "c": PG}, pipes={"rabbit": RABBIT}, environ={}
    )
    assert bindings.pipe_of("a") == bindings.pipe_of("b") == "rabbit"  # one pipe, one connection
    assert bindings.url_of("c") == PG


def test_the_default_pipe_can_be_another_one() -> None:
    bindings = bindings_from(pipes={"pg": PG}, default_pipe="pg", environ={})
    assert bindings.url_of("anything") == PG
    env = bindings_from(pipes={"pg": PG}, environ={"TOOLKIT_DEFAULT_PIPE": "pg"})
    assert env.url_of("anything") == PG


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channels": {"a": "rabbit"}}, "channel 'a' is bound to pipe 'rabbit', which has no URL"),
        ({"pipes": {"x": "kafka://broker:9092"}}, "has scheme kafka://; pipes serve redis://"),
        ({"pipes": {"x": "localhost:6379"}}, "has scheme localhost://"),
        ({"pipes": {"x": "//localhost"}}, "has no scheme"),
        ({"pipes": {"bad-name": PG}}, "pipe name 'bad-name' must start with a letter"),
        ({"bind_args": ["ticket_events"]}, "--bind must look like NAME=VALUE"),
        ({"pipe_args": ["=amqp://x/"]}, "--pipe must look like NAME=VALUE"),
        ({"default_pipe": "pg"}, None),  # the default pipe gets the default URL
    ],
)
def test_mistakes_are_named_with_how_to_fix_them(kwargs: dict, message: str | None) -> None:
    if message is None:
        assert bindings_from(environ={}, **kwargs).url_of("c") == DEFAULT_URL
        return
    with pytest.raises(BindingError, match=message.replace("(", r"\(")):
        bindings_from(environ={}, **kwargs)


def test_unknown_channels_in_the_bindings_are_refused_against_the_service_map() -> None:
    bindings = Bindings(pipes={"default": DEFAULT_URL, "pg": PG}, channels={"tickt_events": "pg"})
    with pytest.raises(BindingError, match="does not have: tickt_events"):
        bindings.check_channels(["ticket_events", "ticket_commands"])
    bindings.check_channels(["tickt_events"])


def test_a_password_never_shows_in_descriptions_and_errors() -> None:
    bindings = Bindings(pipes={"default": DEFAULT_URL, "rabbit": RABBIT}, channels={"a": "rabbit"})
    assert "secret" not in bindings.describe(["a", "b"])
    assert bindings.describe(["a"]) == "amqp://guest:***@localhost:5672/"
    assert bindings.describe(["a", "b"]) == (
        f"{DEFAULT_URL} (b), amqp://guest:***@localhost:5672/ (a)"
    )
    with pytest.raises(UnknownScheme) as caught:
        bindings_from(pipes={"x": "kafka://user:secret@host/"}, environ={})
    assert "secret" not in str(caught.value)


def test_each_scheme_opens_its_own_package() -> None:
    assert pipe_module("rediss://h/0") == "toolkit.channels.redis.pipe"
    assert pipe_module("AMQP://h/") == "toolkit.channels.rabbitmq.pipe"
    assert pipe_module("postgres://h/db") == "toolkit.channels.postgres.pipe"


names = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=12).filter(
    lambda s: s[0].isalpha()
)


@given(
    pipes=st.dictionaries(names, st.sampled_from([DEFAULT_URL, RABBIT, PG]), max_size=4),
    channels=st.lists(st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True), max_size=6),
    data=st.data(),
)
def test_every_channel_lands_on_the_pipe_the_latest_source_names(
    pipes: dict[str, str], channels: list[str], data: st.DataObject
) -> None:
    """Configuration, then environment, then flags: whatever mix, the last word wins."""
    names_ = sorted(pipes) + ["default"]
    config = {c: data.draw(st.sampled_from(names_)) for c in channels}
    env_bound = {
        c: data.draw(st.sampled_from(names_)) for c in channels if data.draw(st.booleans())
    }
    flag_bound = {
        c: data.draw(st.sampled_from(names_)) for c in channels if data.draw(st.booleans())
    }
    environ = {f"TOOLKIT_CHANNEL_{c.upper()}": p for c, p in env_bound.items()}
    bindings = bindings_from(
        pipes=pipes,
        channels=config,
        environ=environ,
        bind_args=[f"{c}={p}" for c, p in flag_bound.items()],
    )
    for channel in channels:
        expected = flag_bound.get(channel, env_bound.get(channel, config[channel]))
        assert bindings.pipe_of(channel) == expected
        assert bindings.url_of(channel) == bindings.pipes[expected]
    assert redact(RABBIT) == "amqp://guest:***@localhost:5672/"
