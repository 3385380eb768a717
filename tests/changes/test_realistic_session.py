"""The 4,050-entry session of an SPA and its APIs (``../shared/perf/gen_har.py 4050``): the
text report's first screen names each server change with its effect, and no finding names
a raw id."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from corsflow.analysis import Report, analyze_paths
from corsflow.changes import changes_of
from corsflow.report.text import render_text
from corsflow.whatif import what_if
from tests.conftest import SHARED

pytestmark = pytest.mark.slow

GENERATOR = SHARED / "perf" / "gen_har.py"
FIRST_SCREEN = 40
RAW_ID = re.compile(r"/\d{3,}(?:[/?]|$)|[0-9a-f]{8}-[0-9a-f]{4}-|/[a-z]{2,8}_[A-Za-z0-9]{8,}")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    if not GENERATOR.is_file():
        pytest.skip(f"the shared workload generator is not beside the checkout ({GENERATOR.name})")
    path = tmp_path_factory.mktemp("spa") / "spa-4050.har"
    subprocess.run([sys.executable, str(GENERATOR), "4050", str(path)], check=True,
                   cwd=GENERATOR.parent, capture_output=True)
    return analyze_paths([str(path)])


def test_first_screen_names_each_change_with_its_effect(report: Report) -> None:
    changes = changes_of(report)
    servers = {c.server for c in changes}
    assert {"https://api.acme-corp.example", "https://api.payflow.example"} <= servers
    screen = "\n".join(render_text(report, color=False, width=100).splitlines()[:FIRST_SCREEN])
    flat = " ".join(screen.split())
    for c in changes:
        assert " ".join(c.short.split()) in flat, c.short
        assert c.effect.split(";")[0] in flat, c.effect
    trace = next(c for c in changes if "X-Trace-Id" in c.what)
    assert len(trace.fixes) == 5 and "/v2/items/{id}" in trace.endpoints
    assert any("Max-Age" in c.what and c.saves_preflights > 40 for c in changes)


def test_findings_are_grouped_by_template(report: Report) -> None:
    for f in report.findings:
        text = " ".join((f.message, f.hint or "", f.url or ""))
        assert not RAW_ID.search(text), text
    codes = [f.code for f in report.findings]
    # One per (server, endpoint template, cause): not one per uploaded part or item id.
    assert codes.count("MaxAgeAboveCap") <= 3
    assert codes.count("HeaderDisallowedByPreflightResponse") == 3
    assert len(report.findings) < 25


def test_whatif_without_change_is_the_analysis(report: Report) -> None:
    result = what_if(report, []).combined
    assert result.after == result.before
    total = result.totals()[""][1]
    assert (total.preflights, total.cache_hits) == (
        sum(v.role == "preflight" for v in report.exchanges),
        sum(v.cache == "hit" for v in report.exchanges))


def test_text_all_lists_everything(report: Report, tmp_path: Path) -> None:
    short = render_text(report, color=False)
    full = render_text(report, color=False, show_all=True)
    assert "more findings (--all lists them)" in short or len(report.findings) <= 8
    assert "more findings" not in full and len(full) >= len(short)
