"""docs/compatibility.md shows the real errors of the tests/cases/compat_* corpus.

The corpus (tests/test_cases.py) pins each case's exact error text; this test
pins that the doc quotes it verbatim, so neither drifts from the generator.
After a wording change: ``pytest tests/test_cases.py --update-cases``, then
paste the new expected_error.txt texts into the doc.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from codegen.contracts.compat import COMPAT_RULES

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "compatibility.md"
CASES = sorted((ROOT / "tests" / "cases").glob("compat_*"))


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_doc_quotes_the_case_error(case: Path) -> None:
    expected = (case / "expected_error.txt").read_text()
    assert f"```text\n{expected}```" in DOC.read_text(), (
        f"docs/compatibility.md does not quote {case.name}"
    )


def test_every_rule_has_a_section_and_an_example() -> None:
    text = DOC.read_text()
    quoted = {int(n) for n in re.findall(r": rule (\d+) \(", text)}
    for number, title in COMPAT_RULES.items():
        assert f"### Rule {number}: " in text
        assert number in quoted, f"no example error for rule {number} ({title})"


def test_every_case_is_named_after_the_rule_it_breaks() -> None:
    for case in CASES:
        if case.name.endswith("_nested"):  # problems inside a struct carry their own rules
            continue
        number = int(case.name.split("_")[1])
        assert f"rule {number} (" in (case / "expected_error.txt").read_text(), case.name
