"""``toolkit scaffold``: create, re-run unchanged, complete after a schema change, type-check."""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from mypy import api as mypy_api

from codegen.build import load_system
from codegen.generate import generate_files, write_files
from codegen.usercode.scaffold import ScaffoldError, scaffold
from toolkit.cli import main

REPO = Path(__file__).resolve().parent.parent
#: A copy of the example system's schemas, so that changes to the example do not move these tests.
SCHEMAS = REPO / "tests/fixtures_scaffold/schemas"

#: A hand-edited implementation: a real body, comments, odd formatting, an orphan.
HAND_EDITED = '''\
"""Ticket handlers, written by hand."""

from toolkit import Delivery

from contracts.ticket_service import (
    CreateTicket,
    NewCustomer,  # the support desk's own view
)

TICKETS: list[str] = []


class TicketService:
    """Hand-written."""

    def on_ticket_create(self, message: CreateTicket, meta: Delivery) -> None:
        # keep this comment
        TICKETS.append( message.subject )   # and this odd spacing

    def on_user_registered(self, message: NewCustomer, meta: Delivery) -> None: pass
    def on_ticket_reopen(self, message: CreateTicket, meta: Delivery) -> None:
        pass
'''

NEW_COMMAND = """
[commands."ticket.close"]
class = "CloseTicket"
description = "Close a ticket."
fields.ticket_id = "uuid"
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with the example schemas, generated into package ``contracts``; cwd is its root."""
    shutil.copytree(SCHEMAS, tmp_path / "schemas")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.toolkit]\nschemas = "schemas"\noutput = "contracts"\n', encoding="utf-8"
    )
    _generate(tmp_path)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _generate(root: Path) -> None:
    write_files(generate_files(root / "schemas", "contracts"), root / "contracts")


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_creates_a_module_with_one_method_per_consumed_key(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(
        ["scaffold", "ticket_service", "--into", "app/ticket_handlers.py"], capsys
    )
    assert (code, err) == (0, "")
    assert out.splitlines()[:4] == [
        "created app/ticket_handlers.py: class TicketService with 3 handlers of ticket_service",
        "  on_ticket_create  (command ticket.create)",
        "  on_user_billing_changed  (event user.billing.changed)",
        "  on_user_registered  (event user.registered)",
    ]
    assert 'implementations = { ticket_service = "app/ticket_handlers.py:TicketService" }' in out
    text = (project / "app/ticket_handlers.py").read_text(encoding="utf-8")
    assert "from toolkit import Delivery\n" in text
    assert (
        "from contracts.ticket_service import CreateTicket, CustomerPlanChanged, NewCustomer\n"
        in text
    )
    assert "class TicketService:\n" in text
    assert (
        "    def on_ticket_create(self, message: CreateTicket, meta: Delivery) -> None:\n" in text
    )
    assert "        # TODO: handle ticket.create." in text
    assert '        raise NotImplementedError("ticket_service: ticket.create")\n' in text


def test_second_run_changes_nothing(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = project / "app/ticket_handlers.py"
    assert main(["scaffold", "ticket_service", "--into", str(target)]) == 0
    first = target.read_bytes()
    capsys.readouterr()
    code, out, _ = _run(["scaffold", "ticket_service", "--into", str(target)], capsys)
    assert code == 0
    assert target.read_bytes() == first
    assert "is up to date: TicketService has all 3 handlers of ticket_service" in out
    assert _run(["scaffold", "ticket_service", "--into", str(target), "--check"], capsys)[0] == 0


def test_schema_change_adds_method_and_import_and_keeps_hand_edits(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = project / "app/ticket_handlers.py"
    target.parent.mkdir()
    target.write_text(HAND_EDITED, encoding="utf-8")
    with (project / "schemas/ticket_service.toml").open("a", encoding="utf-8") as schema:
        schema.write(NEW_COMMAND)
    _generate(project)

    code, out, err = _run(["scaffold", "ticket_service", "--into", str(target)], capsys)
    assert code == 0
    text = target.read_text(encoding="utf-8")
    lines = text.splitlines()
    close_line = lines.index(
        "    def on_ticket_close(self, message: CloseTicket, meta: Delivery) -> None:"
    )
    assert f"app/ticket_handlers.py:{close_line + 1}: added TicketService.on_ticket_close" in out
    assert "added TicketService.on_user_billing_changed (user.billing.changed)" in out
    assert (
        "added import: from contracts.ticket_service import CloseTicket, CustomerPlanChanged" in out
    )
    # The orphan is reported with its line in the new text, and kept.
    reopen = lines.index(
        "    def on_ticket_reopen(self, message: CreateTicket, meta: Delivery) -> None:"
    )
    assert f"app/ticket_handlers.py:{reopen + 1}: note: TicketService.on_ticket_reopen" in err
    # Nothing that was there changed: the diff only adds lines.
    diff = list(difflib.ndiff(HAND_EDITED.splitlines(), lines))
    assert [d for d in diff if d.startswith("- ")] == []
    added = [d[2:] for d in diff if d.startswith("+ ")]
    assert "    CloseTicket," in added and "    CustomerPlanChanged," in added
    assert "        TICKETS.append( message.subject )   # and this odd spacing" in lines
    assert (
        "    def on_user_registered(self, message: NewCustomer, meta: Delivery) -> None: pass"
        in lines
    )
    assert text.index("on_ticket_reopen") < text.index("def on_ticket_close")

    # And again: byte for byte the same.
    before = target.read_bytes()
    code, out, _ = _run(["scaffold", "ticket_service", "--into", str(target)], capsys)
    assert (code, target.read_bytes()) == (0, before)
    assert "is up to date" in out


def test_check_flag_reports_without_writing(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = project / "handlers.py"
    target.write_text(HAND_EDITED, encoding="utf-8")
    code, out, err = _run(["scaffold", "ticket_service", "--into", str(target), "--check"], capsys)
    assert code == 1
    assert "+    def on_user_billing_changed(" in out
    assert "handlers.py lacks handlers of ticket_service" in err
    assert target.read_text(encoding="utf-8") == HAND_EDITED


def test_uses_configured_implementation(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with (project / "pyproject.toml").open("a", encoding="utf-8") as pyproject:
        pyproject.write('implementations = { billing_service = "src/billing.py:Billing" }\n')
    code, out, _ = _run(["scaffold", "billing_service"], capsys)
    assert code == 0
    assert out.startswith("created src/billing.py: class Billing with 2 handlers")
    assert "add to pyproject.toml" not in out
    assert "class Billing:\n" in (project / "src/billing.py").read_text(encoding="utf-8")


def test_adds_the_class_to_a_module_without_it(project: Path) -> None:
    system = load_system(project / "schemas", "contracts")
    existing = '"""Other code."""\n\nimport os\n\nHOME = os.environ.get("HOME")\n'
    result = scaffold(system, "billing_service", existing, class_name="Billing")
    assert result.created_class
    assert result.text.startswith(
        '"""Other code."""\n\nimport os\n\nfrom toolkit import Delivery\n\n'
        "from contracts.billing_service import InvoiceAccountUpdate, TicketForBilling\n\n"
        'HOME = os.environ.get("HOME")\n\n\nclass Billing:\n'
    )
    assert not scaffold(system, "billing_service", result.text, class_name="Billing").changed


def test_service_without_handlers_is_refused(project: Path) -> None:
    """It has no handler Protocol (generated code has none for a service consuming nothing)."""
    system = load_system(project / "schemas", "contracts")
    with pytest.raises(ScaffoldError, match="user_service consumes nothing"):
        scaffold(system, "user_service", None)


def test_bad_input_exits_2_with_file_and_line(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(["scaffold", "nobody", "--into", "x.py"], capsys)
    assert code == 2
    assert "no service 'nobody' in the schemas; known services: billing_service," in err
    broken = project / "broken.py"
    broken.write_text("class TicketService:\n    def on_x(self\n", encoding="utf-8")
    code, _, err = _run(["scaffold", "ticket_service", "--into", str(broken)], capsys)
    assert code == 2
    assert err.startswith("broken.py:")
    assert "cannot parse the module" in err and "Traceback" not in err
    code, _, err = _run(["scaffold", "ticket_service"], capsys)
    assert code == 2
    assert "no file for ticket_service: pass --into" in err


def test_name_taken_by_a_function_is_an_error(project: Path) -> None:
    system = load_system(project / "schemas", "contracts")
    with pytest.raises(ScaffoldError, match="not as a top-level class"):
        scaffold(system, "ticket_service", "def TicketService() -> None:\n    pass\n")


@pytest.fixture
def importable(project: Path) -> Iterator[Path]:
    sys.path.insert(0, str(project))
    try:
        yield project
    finally:
        sys.path.remove(str(project))
        for name in list(sys.modules):
            if name.split(".")[0] in {"app", "contracts"}:
                del sys.modules[name]


def _scaffold_all(project: Path) -> None:
    (project / "app").mkdir(exist_ok=True)
    (project / "app/__init__.py").write_text("", encoding="utf-8")
    # user_service consumes nothing: it has no handlers to scaffold.
    for service in ("billing_service", "ticket_service"):
        assert main(["scaffold", service, "--into", f"app/{service}.py"]) == 0
    (project / "app/wire.py").write_text(
        "from contracts import billing_service, ticket_service\n"
        "from toolkit import Dispatcher\n\n"
        "from app.billing_service import BillingService\n"
        "from app.ticket_service import TicketService\n\n"
        "DISPATCHERS: list[Dispatcher] = [\n"
        "    billing_service.bind(BillingService()),\n"
        "    ticket_service.bind(TicketService()),\n"
        "]\n",
        encoding="utf-8",
    )


def test_scaffolded_modules_pass_mypy_strict_against_generated_code(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _scaffold_all(project)
    # The editable install uses an import hook mypy cannot follow: point it at the repo.
    monkeypatch.setenv("MYPYPATH", str(REPO))
    stdout, stderr, status = mypy_api.run(
        [
            "--strict",
            "--no-incremental",
            # Type-check app/ against toolkit and the generated package without
            # reporting their own errors (they have their own checks).
            "--follow-imports",
            "silent",
            "--cache-dir",
            os.devnull,
            "--config-file",
            str(project / "pyproject.toml"),
            "app",
        ]
    )
    assert status == 0, stdout + stderr
    assert "Success: no issues found in 4 source files" in stdout


def test_scaffolded_class_satisfies_the_protocol_at_runtime(
    importable: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _scaffold_all(importable)
    from app.ticket_service import TicketService  # type: ignore[import-not-found]
    from app.wire import DISPATCHERS  # type: ignore[import-not-found]

    assert [d.service for d in DISPATCHERS] == ["billing_service", "ticket_service"]
    assert sorted(DISPATCHERS[1].routes) == [
        "ticket.create",
        "user.billing.changed",
        "user.registered",
    ]
    with pytest.raises(NotImplementedError, match=r"ticket_service: ticket\.create"):
        TicketService().on_ticket_create(None, None)


def test_scaffolded_module_is_ruff_clean(project: Path) -> None:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    _scaffold_all(project)
    files = [f"app/{s}.py" for s in ("billing_service", "ticket_service")]
    # --isolated: ruff's defaults (line length 88), as in a fresh user project.
    for args in (["check", "--select", "E,F,W,I,UP,B"], ["format", "--check"]):
        done = subprocess.run(
            [ruff, *args, "--isolated", *files], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_runtime_does_not_import_libcst() -> None:
    code = (
        "import sys, toolkit, toolkit.cli, toolkit.testing, toolkit.commands.scaffold\n"
        "toolkit.cli.build_parser()\n"
        "assert 'libcst' not in sys.modules, 'libcst imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert done.returncode == 0, done.stderr


def test_crlf_and_tabs_are_kept(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = project / "handlers.py"
    original = (
        b"from contracts.ticket_service import CreateTicket\r\n\r\n\r\n"
        b"class TicketService:\r\n\tdef on_ticket_create(self, message: CreateTicket, meta):\r\n"
        b"\t\tpass\r\n"
    )
    target.write_bytes(original)
    assert main(["scaffold", "ticket_service", "--into", str(target)]) == 0
    data = target.read_bytes()
    assert data.startswith(
        b"from toolkit import Delivery\r\n\r\nfrom contracts.ticket_service import"
    )
    assert data.count(b"\n") == data.count(b"\r\n")
    assert (
        b"\r\n\tdef on_user_registered(self, message: NewCustomer, meta: Delivery) -> None:\r\n"
        in data
    )
    assert b"\r\n\t\tpass\r\n" in data
    assert main(["scaffold", "ticket_service", "--into", str(target)]) == 0
    assert target.read_bytes() == data


def test_docs_show_the_real_scaffold_output() -> None:
    docs = (REPO / "docs/scaffolding.md").read_text(encoding="utf-8")
    block = docs.split("`app/ticket_handlers.py`:\n\n<!-- fmt: off -->\n```python\n", 1)[1]
    shown = block.split("```\n", 1)[0]
    system = load_system(SCHEMAS, "generated")
    assert shown == scaffold(system, "ticket_service", None).text


def test_the_default_class_name_is_never_the_protocol_name(tmp_path: Path) -> None:
    """`orders` generates the Protocol OrdersHandlers: the scaffolded class must not shadow it."""
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "orders.toml").write_text(
        '[service]\nname = "orders"\n\n[channels.orders_in]\nkind = "queue"\ncommands = true\n\n'
        '[commands."order.place"]\nclass = "PlaceOrder"\nfields.order_id = "uuid"\n',
        encoding="utf-8",
    )
    system = load_system(schemas, "generated")
    protocol = f"{system.services[0].class_prefix}Handlers"
    assert protocol == "OrdersHandlers"
    result = scaffold(system, "orders", None)
    assert result.class_name == "OrdersService"
    assert "class OrdersService:\n" in result.text
    assert scaffold(system, "orders", None, class_name="Orders").class_name == "Orders"
    with pytest.raises(ScaffoldError, match="'PlaceOrder' is also the name of a class"):
        scaffold(system, "orders", None, class_name="PlaceOrder")
