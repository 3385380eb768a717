"""The README tells the truth about the catalogue and the commands."""

from __future__ import annotations

from corsflow.findings import CATALOGUE
from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_opens_with_the_two_commands() -> None:
    block = README.split("```")[1]
    assert "make demo" in block and "make test" in block


def test_every_finding_code_is_documented_with_its_severity() -> None:
    for rule in CATALOGUE.values():
        assert f"| `{rule.code}` | {rule.severity_cell} | {rule.title} | {rule.severity_why} |" \
            in README, rule.code
