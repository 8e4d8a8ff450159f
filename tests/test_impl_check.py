"""Implementation drift: missing, orphan and signature problems, read with libcst, never imported."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from codegen.build import load_system
from codegen.usercode.impl_check import (
    ImplConfigError,
    ImplementationSpec,
    ImplProblem,
    check_implementation,
    check_implementations,
    check_source,
    parse_spec,
)
from codegen.usercode.scaffold import scaffold
from toolkit.config import Config, load_config
from toolkit.testing.drift import assert_handlers_match, implementation_problems

REPO = Path(__file__).resolve().parent.parent
FIXTURE = "tests/fixtures_scaffold/drifted_ticket_handlers.py"
#: A copy of the example system's schemas, so that changes to the example do not move these tests.
SCHEMAS = REPO / "tests/fixtures_scaffold/schemas"
SYSTEM = load_system(SCHEMAS)
TICKET = next(s for s in SYSTEM.services if s.name == "ticket_service")


def _config(root: Path, implementations: dict[str, str], **changes: object) -> Config:
    values: dict[str, object] = {
        "root": root,
        "schemas": SCHEMAS,
        "output": root / "generated",
        "package": "generated",
        "implementations": implementations,
        "snapshot": None,
        "redis_url": None,
        "pyproject": None,
    }
    values.update(changes)
    return Config(**values)  # type: ignore[arg-type]


def _line(text: str, marker: str) -> int:
    """1-based number of the only line holding ``marker``."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if marker in line]
    assert len(found) == 1, (marker, found)
    return found[0]


def test_drifted_fixture_reports_each_problem_at_its_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(REPO)
    text = (REPO / FIXTURE).read_text(encoding="utf-8")
    problems = check_implementations(_config(REPO, {"ticket_service": f"{FIXTURE}:TicketService"}))
    # Reading it did not import it (importing it raises SystemExit).
    assert "drifted_ticket_handlers" not in " ".join(sys.modules)
    got = [(p.file, p.line, p.service, p.kind) for p in problems]
    assert got == [
        (FIXTURE, _line(text, "class TicketService:"), "ticket_service", "missing"),
        (FIXTURE, _line(text, "def on_ticket_create"), "ticket_service", "signature"),
        (FIXTURE, _line(text, "def on_user_registered"), "ticket_service", "signature"),
        (FIXTURE, _line(text, "def on_ticket_archive"), "ticket_service", "orphan"),
    ]
    missing, wrong_class, too_few, orphan = problems
    assert missing.message == (
        "TicketService has no on_user_billing_changed(self, message: CustomerPlanChanged, "
        "meta: Delivery) for event 'user.billing.changed'; "
        f"`toolkit scaffold ticket_service --into {FIXTURE}` adds it"
    )
    assert wrong_class.message == (
        "TicketService.on_ticket_create (command 'ticket.create'): message is annotated "
        "NewCustomer, but 'ticket.create' delivers CreateTicket"
    )
    assert "takes 1 argument (msg), but the dispatcher passes 2" in too_few.message
    assert orphan.message.startswith(
        "TicketService.on_ticket_archive handles no routing key ticket_service consumes "
        "(ticket.create, user.billing.changed, user.registered)"
    )
    assert str(orphan) == f"{FIXTURE}:{orphan.line}: ticket_service: orphan: {orphan.message}"


def test_scaffolded_module_has_no_problems() -> None:
    text = scaffold(SYSTEM, "ticket_service", None).text
    assert check_source(TICKET, text, "TicketService", "h.py") == []


HAND_WRITTEN = """\
from typing import Any

import msgspec

import generated.ticket_service as ts
from generated.ticket_service import CustomerPlanChanged as PlanChange
from toolkit import Delivery as Meta


class Base:
    def on_ticket_create(self, message: ts.CreateTicket, meta: Meta) -> None:
        pass


class TicketService(Base):
    async def on_user_registered(self, message: "ts.NewCustomer", meta: Any) -> None:
        pass

    @staticmethod
    def on_user_billing_changed(
        message: PlanChange, meta: Meta, *, retries: int = 3
    ) -> None:
        pass

    def on_helper(self, *args: object) -> None:
        pass

    def helper(self, message: msgspec.Struct) -> None:
        pass
"""


def test_aliases_attributes_strings_async_static_and_bases_are_understood() -> None:
    problems = check_source(TICKET, HAND_WRITTEN, "TicketService", "h.py")
    assert [(p.kind, p.line) for p in problems] == [("orphan", _line(HAND_WRITTEN, "on_helper"))]


@pytest.mark.parametrize(
    ("method", "kind_of_problem"),
    [
        ("def on_ticket_create(self) -> None:", "takes 0 arguments (nothing)"),
        ("def on_ticket_create() -> None:", "takes no self parameter"),
        (
            "def on_ticket_create(self, message, meta, extra) -> None:",
            "has extra required parameter 'extra'",
        ),
        (
            "def on_ticket_create(self, message, meta, *, flag: bool) -> None:",
            "has required keyword-only parameter 'flag'",
        ),
        (
            "def on_ticket_create(self, message: CreateTicket, meta: dict) -> None:",
            "meta is annotated dict, but the delivery's metadata is a Delivery",
        ),
        (
            "def on_ticket_create(self, message: CreateTicket | None, meta) -> None:",
            "message is annotated CreateTicket | None, but 'ticket.create' delivers",
        ),
    ],
)
def test_signature_problems(method: str, kind_of_problem: str) -> None:
    source = f"class TicketService:\n    {method}\n        pass\n"
    problems = [
        p for p in check_source(TICKET, source, "TicketService", "h.py") if p.kind == "signature"
    ]
    assert len(problems) == 1
    assert kind_of_problem in problems[0].message
    assert problems[0].line == 2


def test_accepted_signatures() -> None:
    source = (
        "class TicketService:\n"
        "    def on_ticket_create(self, msg, delivery, /, extra=1, *rest, **kw): ...\n"
        "    def on_user_registered(self, *args: object) -> None: ...\n"
        "    on_user_billing_changed = print\n"
    )
    assert check_source(TICKET, source, "TicketService", "h.py") == []


def test_bad_settings_are_config_errors_with_the_pyproject_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    (tmp_path / "app").mkdir()
    (tmp_path / "app/handlers.py").write_text("class TicketService:\n    pass\n", "utf-8")
    (tmp_path / "app/broken.py").write_text("def (\n", "utf-8")
    (tmp_path / "pyproject.toml").write_text(
        "[tool.toolkit]\n"
        "[tool.toolkit.implementations]\n"
        'nobody = "app/handlers.py:X"\n'
        'ticket_service = "app/handlers.py:Missing"\n'
        'billing_service = "app/broken.py:B"\n'
        'user_service = "app/handlers.py:not a name"\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ImplConfigError) as caught:
        check_implementations(load_config())
    assert str(caught.value).splitlines() == [
        "app/broken.py:2: error: cannot parse the module (column 1): expected NAME",
        "pyproject.toml:3: tool.toolkit.implementations.nobody: error: no service 'nobody' "
        "in schemas",
        "    fix: known services: billing_service, ticket_service, user_service",
        "app/handlers.py: error: no top-level class Missing (classes in the module: TicketService)",
        "    fix: run `toolkit scaffold ticket_service --into app/handlers.py`, or point the "
        "setting at the right class",
        "pyproject.toml:6: tool.toolkit.implementations.user_service: error: "
        "'app/handlers.py:not a name' is not 'path/to/module.py:ClassName'",
        '    fix: write e.g. user_service = "app/user_service_handlers.py:UserService"',
    ]


def test_spec_forms(tmp_path: Path) -> None:
    (tmp_path / "src/app").mkdir(parents=True)
    (tmp_path / "src/app/handlers.py").write_text("", "utf-8")
    assert parse_spec("ticket_service", "app/h.py:Impl", tmp_path) == ImplementationSpec(
        "ticket_service", tmp_path / "app/h.py", "Impl"
    )
    assert parse_spec("ticket_service", "app/h.py", tmp_path).class_name == "TicketService"
    assert parse_spec("ticket_service", "app.handlers:Impl", tmp_path).path == (
        tmp_path / "src/app/handlers.py"
    )
    with pytest.raises(ImplConfigError, match=r"module 'app\.nothere' not found"):
        parse_spec("ticket_service", "app.nothere:Impl", tmp_path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    spec = ImplementationSpec("ticket_service", tmp_path / "nope.py", "TicketService")
    with pytest.raises(ImplConfigError, match="cannot read the implementation of ticket_service"):
        check_implementation(TICKET, spec)


def test_nothing_configured_is_nothing_to_check(tmp_path: Path) -> None:
    assert check_implementations(_config(tmp_path, {})) == []


# -- toolkit.testing.drift -------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    (tmp_path / "app").mkdir()
    (tmp_path / "app/ticket.py").write_text(scaffold(SYSTEM, "ticket_service", None).text, "utf-8")
    shutil.copy(REPO / FIXTURE, tmp_path / "app/drifted.py")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.toolkit]\nimplementations = { ticket_service = "app/ticket.py:TicketService" }\n',
        encoding="utf-8",
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_assert_handlers_match_passes_for_a_matching_implementation(project: Path) -> None:
    assert_handlers_match()
    assert_handlers_match("ticket_service")
    assert_handlers_match("ticket_service", project)
    assert_handlers_match("ticket_service", project / "pyproject.toml")
    assert_handlers_match(None, load_config(project))


def test_assert_handlers_match_lists_every_problem(project: Path) -> None:
    with pytest.raises(AssertionError) as caught:
        assert_handlers_match("ticket_service", "app/drifted.py:TicketService")
    lines = str(caught.value).splitlines()
    assert len(lines) == 5
    assert lines[0].startswith("app/drifted.py:14: ticket_service: missing: ")
    assert lines[-1] == "4 handler problems; `toolkit scaffold SERVICE` adds missing handlers"


def test_implementation_problems(project: Path) -> None:
    problems = implementation_problems("ticket_service", str(project / "app/drifted.py"))
    assert all(isinstance(p, ImplProblem) for p in problems)
    assert [p.kind for p in problems] == ["missing", "signature", "signature", "orphan"]
    with pytest.raises(LookupError, match="no implementation configured for 'billing_service'"):
        implementation_problems("billing_service")
    with pytest.raises(ValueError, match="given without the service"):
        implementation_problems(None, "app/drifted.py")
