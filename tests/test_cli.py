"""The command line: exit statuses, clear errors, no tracebacks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.cli import CASES, ROOT
from tests.cli import toolkit_cli as run


def test_schema_errors_exit_2_with_every_error_and_no_traceback(tmp_path: Path) -> None:
    shutil.copytree(CASES / "err_views" / "schemas", tmp_path / "schemas")
    result = run("generate", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr == (CASES / "err_views" / "expected_error.txt").read_text()
    assert not (tmp_path / "generated").exists()


def test_generate_check_on_bad_schemas_also_exits_2(tmp_path: Path) -> None:
    shutil.copytree(CASES / "err_syntax" / "schemas", tmp_path / "schemas")
    result = run("generate", "--check", cwd=tmp_path)
    assert result.returncode == 2 and "TOML syntax error" in result.stderr


def test_missing_schema_folder_is_a_clear_error(tmp_path: Path) -> None:
    result = run("generate", cwd=tmp_path)
    assert result.returncode == 2
    assert "schemas: error: schema folder does not exist" in result.stderr


def test_folders_come_from_flags_or_pyproject(tmp_path: Path) -> None:
    shutil.copytree(CASES / "all_types" / "schemas", tmp_path / "contracts")
    (tmp_path / "pyproject.toml").write_text(
        '[tool.toolkit]\nschemas = "contracts"\noutput = "src/bus_code"\n'
    )
    assert run("generate", cwd=tmp_path).returncode == 0
    assert (tmp_path / "src" / "bus_code" / "a" / "messages.py").is_file()
    assert run("generate", "--schemas", "contracts", "--out", "other", cwd=tmp_path).returncode == 0
    assert (tmp_path / "other" / "service_map.py").is_file()


def test_bad_pyproject_settings_are_reported(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.toolkit]\nschema = 'typo'\n")
    result = run("generate", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        "[tool.toolkit]" in result.stderr
        and "schema" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_demo_runs_the_example_in_memory_and_prints_each_hop() -> None:
    result = run("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert (
        "user_service --command ticket.create--> [ticket_commands] --> ticket_service.on_ticket_create(CreateTicket("
        in out
    )
    assert (
        "user_service --event user.registered--> [user_events] --> ticket_service.on_user_registered(NewCustomer("
        in out
    )
    assert "--> billing_service.on_user_billing_changed(InvoiceAccountUpdate(" in out
    assert "5 messages handled" in out


def test_schema_json_matches_the_committed_copy_and_validates_the_example() -> None:
    result = run("schema-json")
    assert result.returncode == 0
    committed = (ROOT / "docs" / "toolkit-schema.json").read_text()
    assert result.stdout == committed, "run `toolkit schema-json -o docs/toolkit-schema.json`"
    schema = json.loads(committed)
    assert set(schema["$defs"]["SchemaFile"]["properties"]) == {
        "service",
        "channels",
        "types",
        "commands",
        "events",
        "subscribes",
        "sends",
    }


def test_importing_the_runtime_does_not_import_codegen_jinja_or_libcst() -> None:
    code = (
        "import sys, toolkit, toolkit.testing, toolkit.pytest_plugin, generated.ticket_service;"
        "bad = [m for m in ('jinja2', 'libcst', 'codegen') if m in sys.modules];"
        "print(bad)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_verbose_flag_is_accepted_after_the_subcommand() -> None:
    from toolkit.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["-v", "generate"]).verbose == 1
    assert parser.parse_args(["generate", "-v"]).verbose == 1
    assert parser.parse_args(["generate"]).verbose == 0
    argv = ["run", "ticket_commands", "--service", "ticket_service", "--app", "m:o", "-vv"]
    assert parser.parse_args(argv).verbose == 2
    done = run("generate", "--check", "-v")
    assert done.returncode == 0, done.stderr


def test_stdout_closed_early_ends_quietly(tmp_path: Path) -> None:
    """`toolkit scaffold … | head -1`: the reader is gone before the output is written."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "toolkit",
            "scaffold",
            "ticket_service",
            "--into",
            str(tmp_path / "h.py"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read().decode()
    assert process.wait(30) == 141
    assert stderr == ""
