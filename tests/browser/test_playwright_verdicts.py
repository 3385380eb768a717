"""Playwright's HAR of a real Chromium session: a preflighted request it recorded with its
response was allowed by its preflight; the report says so instead of ``unknown``."""

from __future__ import annotations

import pytest

from .compare import analyze_json
from .conftest import capture_file
from .harness import Session

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_preflighted_requests_with_a_response_are_not_unknown(direct_session: Session) -> None:
    report = analyze_json(capture_file(direct_session, "playwright_har"))
    api = [ex for ex in report["exchanges"] if ex["url"].startswith(direct_session.api_origin)]
    answered = [ex for ex in api if ex["role"] == "preflighted" and ex["status"] not in (None, -1)]
    assert len(answered) > 20
    assert [ex["id"] for ex in answered if ex["verdict"] == "unknown"] == []
    # Chromium's own verdict for each fetch, in order per URL (some scenarios repeat one).
    outcomes: dict[str, list[str]] = {}
    for t in direct_session.steps:
        outcomes.setdefault(t.url, []).append(t.outcome)
    seen: dict[str, int] = {}
    for ex in api:
        if ex["url"] not in outcomes:
            continue  # a redirect hop: its fetch names the first hop
        n = seen.get(ex["url"], 0)
        seen[ex["url"]] = n + 1
        if ex in answered:
            want = "blocked" if outcomes[ex["url"]][n] == "rejected" else "allowed"
            assert ex["verdict"] == want, ex["id"]
