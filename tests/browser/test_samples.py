"""The committed sample captures against what Chromium decided when they were recorded.

No browser needed: ``samples/chromium-session.truth.json`` holds the truth of the two
recording sessions (``record_samples.py``), so every ``make test`` checks corsflow's
reports of the four sample files against the real browser's decisions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .compare import (
    REPO_ROOT,
    analyze_json,
    compare_playwright,
    compare_wire,
    format_disagreements,
)
from .harness import Session
from .record_samples import FILES, SAMPLE_SCENARIOS, TRUTH

SAMPLES = REPO_ROOT / "samples"
LIMIT = 300 * 1024


def _truth(mode: str) -> Session:
    return Session.from_json(json.loads((SAMPLES / TRUTH).read_text())[mode])


def test_samples_are_small_and_complete() -> None:
    for name in [*FILES.values(), TRUTH, "README.md"]:
        path = SAMPLES / name
        assert path.is_file(), path
        assert 0 < path.stat().st_size < LIMIT, (name, path.stat().st_size)
    for mode in ("direct", "proxy"):
        truth = _truth(mode)
        assert {t.scenario for t in truth.steps} == set(SAMPLE_SCENARIOS)
        # what the demo is for: successes, failures, a cache hit, a redundant preflight
        assert any(t.outcome == "resolved" for t in truth.steps)
        assert any(t.cors_error for t in truth.steps)
        assert any(t.cache == "hit" for t in truth.steps)
        assert any(w.redundant for w in truth.wire)


@pytest.mark.parametrize(("name", "mode"), [
    ("pcap", "direct"), ("flows", "proxy"), ("mitm_har", "proxy"),
])
def test_sample_report_matches_chromium(name: str, mode: str) -> None:
    report = analyze_json(SAMPLES / FILES[name])
    items = compare_wire(f"samples/{FILES[name]}", _truth(mode), report,
                         method_case_lost=name == "mitm_har")
    if items:
        pytest.fail(format_disagreements(items), pytrace=False)


def test_playwright_sample_report_says_unknown() -> None:
    report = analyze_json(SAMPLES / FILES["playwright_har"])
    items = compare_playwright(f"samples/{FILES['playwright_har']}", _truth("direct"), report)
    if items:
        pytest.fail(format_disagreements(items), pytrace=False)


def test_truth_file_round_trips(tmp_path: Path) -> None:
    data = json.loads((SAMPLES / TRUTH).read_text())
    again = Session.from_json(data["proxy"]).to_json(headers=False)
    assert again == data["proxy"]
