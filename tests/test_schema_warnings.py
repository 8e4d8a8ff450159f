"""Schema warnings: subscriptions that receive nothing, events received and skipped unread.

Printed by ``toolkit generate`` (and ``--check``) and ``toolkit check``,
exit 0; under ``--strict``, exit 2 and nothing written.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from codegen.build import load_system
from codegen.errors import SchemaErrors
from toolkit.cli import main

ROOT = Path(__file__).resolve().parent.parent

PUBLISHER = """
[service]
name = "users"

[events."user.registered"]
class = "Registered"
fields.user_id = "int"

[events."user.deleted"]
class = "Deleted"
fields.user_id = "int"

[events."user.renamed"]
class = "Renamed"
fields.user_id = "int"
"""

SUBSCRIBER = """
[service]
name = "mail"

[channels.mail_in]
kind = "queue"
subscribe = ["user.*", "usr.*"]

[channels.mail_audit]
kind = "stream"
subscribe = ["user.registered"]
include_publishers = ["mail"]

[channels.mail_renames]
kind = "stream"
subscribe = ["user.renamed"]

[subscribes."user.registered"]
class = "NewUser"
fields.user_id = "int"
"""

WARNINGS = """\
schemas/mail.toml:7: channels.mail_in.subscribe[0]: warning: mail receives events 'user.deleted', 'user.renamed' on channel 'mail_in' through 'user.*' but declares no [subscribes] table for them: they are acknowledged and skipped unread
    fix: add a [subscribes."KEY"] table for each (e.g. [subscribes."user.deleted"]), or replace 'user.*' by the keys mail handles ("user.registered")
schemas/mail.toml:7: channels.mail_in.subscribe[1]: warning: subscription key 'usr.*' matches no event any service publishes
    fix: check its spelling, or remove it; published events: user.deleted, user.registered, user.renamed
schemas/mail.toml:11: channels.mail_audit.subscribe[0]: warning: subscription key 'user.registered' receives nothing: include_publishers leaves out every event it matches: 'user.registered' (from users)
    fix: change include_publishers, or remove the subscription key
schemas/mail.toml:16: channels.mail_renames.subscribe[0]: warning: mail receives event 'user.renamed' on channel 'mail_renames' but declares no [subscribes] table for it: it is acknowledged and skipped unread
    fix: add [subscribes."user.renamed"] to handle it, or remove the subscription key
4 warnings in schema files"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas/users.toml").write_text(PUBLISHER, encoding="utf-8")
    (tmp_path / "schemas/mail.toml").write_text(SUBSCRIBER, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_generate_prints_every_warning_and_generates(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(["generate"], capsys)
    assert (code, err) == (0, WARNINGS + "\n")
    assert "created: generated/mail/handlers.py" in out
    code, out, err = _run(["generate", "--check"], capsys)
    assert (code, err) == (0, WARNINGS + "\n")
    assert out.startswith("generated is up to date")


def test_strict_makes_warnings_fail_with_exit_2_and_writes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failed = WARNINGS + " (--strict: they fail the run)\n"
    assert _run(["generate", "--strict"], capsys) == (2, "", failed)
    assert not (project / "generated").exists()
    assert _run(["generate", "--check", "--strict"], capsys) == (2, "", failed)
    assert main(["generate"]) == 0
    capsys.readouterr()
    code, out, err = _run(["check", "--against", "generated", "--strict"], capsys)
    assert (code, out, err) == (2, "", failed)
    code, out, err = _run(["check", "--against", "generated"], capsys)
    assert (code, err) == (0, WARNINGS + "\n")
    assert "no changes" in out


def test_a_system_with_errors_reports_no_warnings(project: Path) -> None:
    mail = project / "schemas/mail.toml"
    mail.write_text(mail.read_text(encoding="utf-8") + 'fields.age = "itn"\n', encoding="utf-8")
    with pytest.raises(SchemaErrors) as caught:
        load_system(Path("schemas"))
    assert [d.severity for d in caught.value.diagnostics] == ["error"]


def test_handled_keys_and_the_example_systems_give_no_warnings(project: Path) -> None:
    mail = project / "schemas/mail.toml"
    text = mail.read_text(encoding="utf-8").replace('"user.*", "usr.*"', '"user.registered"')
    text = text.replace('include_publishers = ["mail"]', 'include_publishers = ["users"]')
    text = text.replace(
        'subscribe = ["user.registered"]\ninclude', 'subscribe = ["user.de*"]\ninclude'
    )
    text += '[subscribes."user.deleted"]\nclass = "Gone"\n'
    text += '[subscribes."user.renamed"]\nclass = "Renamed"\n'
    mail.write_text(text, encoding="utf-8")
    assert load_system(Path("schemas")).warnings == ()
    for schemas in (ROOT / "schemas", ROOT / "docs/examples/quickstart/schemas"):
        assert load_system(schemas).warnings == (), schemas


def test_a_stream_shared_by_two_services_warns_only_the_one_that_skips(project: Path) -> None:
    (project / "schemas/mail.toml").write_text(
        SUBSCRIBER.split("[channels.mail_audit]")[0]
        .replace('"user.*", "usr.*"', '"user.*"')
        .replace('kind = "queue"', 'kind = "stream"')
        + '[subscribes."user.registered"]\nclass = "NewUser"\nfields.user_id = "int"\n'
        + '[subscribes."user.deleted"]\nclass = "Gone"\nfields.user_id = "int"\n'
        + '[subscribes."user.renamed"]\nclass = "Renamed"\nfields.user_id = "int"\n',
        encoding="utf-8",
    )
    (project / "schemas/stats.toml").write_text(
        '[service]\nname = "stats"\n\n[channels.mail_in]\nkind = "stream"\n'
        'subscribe = ["user.*"]\n\n[subscribes."user.registered"]\nclass = "Counted"\n',
        encoding="utf-8",
    )
    warnings = load_system(Path("schemas")).warnings
    assert [(d.file, d.path, d.severity) for d in warnings] == [
        ("schemas/stats.toml", "channels.mail_in.subscribe[0]", "warning")
    ]
    assert "'user.deleted', 'user.renamed'" in warnings[0].message


def test_an_event_reaching_its_subscriber_through_two_channels_is_a_warning(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each channel's consumer would handle it: handled twice."""
    (project / "schemas/mail.toml").write_text(
        '[service]\nname = "mail"\n\n'
        '[channels.mail_in]\nkind = "queue"\nsubscribe = ["user.registered"]\n\n'
        '[channels.mail_all]\nkind = "stream"\nsubscribe = ["user.*"]\n'
        'exclude_publishers = ["mail"]\n\n'
        '[subscribes."user.registered"]\nclass = "NewUser"\nfields.user_id = "int"\n'
        '[subscribes."user.deleted"]\nclass = "Gone"\nfields.user_id = "int"\n'
        '[subscribes."user.renamed"]\nclass = "Renamed"\nfields.user_id = "int"\n',
        encoding="utf-8",
    )
    warning = (
        'schemas/mail.toml:13: subscribes."user.registered": warning: mail receives event '
        "'user.registered' from users on channels 'mail_all' and 'mail_in': the consumer of "
        "each handles it, so it is handled 2 times\n"
        "    fix: subscribe to it on one channel only (remove or narrow the subscription key "
        "of the others)\n"
        "1 warning in schema files"
    )
    assert _run(["generate"], capsys)[::2] == (0, warning + "\n")
    assert _run(["generate", "--strict"], capsys)[::2] == (
        2,
        warning + " (--strict: they fail the run)\n",
    )
