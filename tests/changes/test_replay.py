"""The what-if replay: with no change it is the analysis; with a change it moves exactly the
requests the change concerns, through the engine's preflight cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from corsflow.analysis import Report, analyze_paths
from corsflow.whatif import ChangeSet, parse_set, what_if
from tests.conftest import REPO_ROOT

from . import session
from .session import API, APP, PAY

SAMPLES = REPO_ROOT / "samples"


def _counts(report: Report) -> dict[str, int]:
    """The analysis' own counts, the way the what-if counts page requests."""
    referenced = {v.preflight_id for v in report.exchanges
                  if v.role in ("preflighted", "simple") and v.cache == "miss"}
    return {
        "preflights": sum(v.role == "preflight" for v in report.exchanges),
        "cache_hits": sum(v.cache == "hit" for v in report.exchanges),
        "blocked": sum(v.verdict == "blocked" for v in report.exchanges
                       if v.role in ("preflighted", "simple"))
        + sum(v.verdict == "blocked" for v in report.exchanges
              if v.role == "preflight" and v.exchange.id not in referenced),
    }


@pytest.mark.parametrize("name", ["chromium-session.har", "chromium-session.flows",
                                  "chromium-session.pcap", "loopback-cors.pcap"])
def test_no_change_reproduces_the_analysis(name: str) -> None:
    report = analyze_paths([str(SAMPLES / name)])
    result = what_if(report, []).combined
    # Every server was replayed through the cache, and nothing moved.
    assert result.replayed_servers == {r.server for r in result.requests}
    assert result.after == result.before
    before, after = result.totals()[""]
    assert after.as_dict() == before.as_dict()
    counts = _counts(report)
    assert (after.preflights, after.cache_hits, after.blocked) == (
        counts["preflights"], counts["cache_hits"], counts["blocked"])


def test_a_header_added_fixes_exactly_its_requests() -> None:
    report = session.report()
    change = ChangeSet((parse_set(f"{API}/v2/items/{{id}}: Access-Control-Allow-Headers: "
                                  "+X-Trace-Id"),))
    result = what_if(report, [change]).combined
    assert result.fixes == ("e2", "e4", "e6", "e8")
    assert result.breaks == ()
    before, after = result.totals("server")[API]
    # /v2/items/101 is asked twice: the second finds the first result cached.
    assert (before.preflights, after.preflights) == (8, 7)
    assert (before.cache_hits, after.cache_hits) == (0, 1)
    assert (before.blocked, after.blocked) == (5, 1)  # the Origin: null GET stays blocked
    assert result.totals("server")[PAY][0].as_dict() == result.totals("server")[PAY][1].as_dict()
    # The fixed requests were never answered in the capture: their outcome is predicted.
    assert result.predicted == 4


def test_max_age_saves_preflights_and_their_time() -> None:
    report = session.report()
    result = what_if(report, [ChangeSet((parse_set(f"{API}/v2/search: "
                                                   "Access-Control-Max-Age: 7200"),))]).combined
    before, after = result.totals()[""]
    assert before.preflights - after.preflights == 3
    assert before.preflight_ms - after.preflight_ms == pytest.approx(90.0)
    assert after.cache_hits == 3 and result.fixes == ()


def test_a_change_that_breaks_is_reported() -> None:
    report = session.report()
    result = what_if(report, [ChangeSet((parse_set(
        f"{API}/v2/search: Access-Control-Allow-Origin: https://other.example"),))]).combined
    assert len(result.breaks) == 4 and result.fixes == ()


def test_each_change_alone_and_together() -> None:
    report = session.report()
    a = ChangeSet((parse_set(f"{API}/v2/search: Access-Control-Max-Age: 7200"),), label="a")
    b = ChangeSet((parse_set(f"{API}/v2/items/{{id}}: Access-Control-Allow-Headers: +X-Trace-Id"),),
                  label="b")
    w = what_if(report, [a, b])
    assert [r.changes.label for r in w.each] == ["a", "b"]
    assert set(w.combined.fixes) == set(w.each[1].fixes)
    saved = {r.changes.label: r.totals()[""][0].preflights - r.totals()[""][1].preflights
             for r in w.each}
    combined = w.combined.totals()[""]
    assert combined[0].preflights - combined[1].preflights == saved["a"] + saved["b"]


def test_whatif_cli_formats(tmp_path: Path) -> None:
    import json

    from corsflow.cli import main

    har = str(SAMPLES / "chromium-session.har")
    out = tmp_path / "w.json"
    assert main(["whatif", har, "--format", "json", "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["totals"]["before"] == data["totals"]["after"]
    assert data["fixes"] == [] and data["breaks"] == []
    for fmt in ("text", "markdown", "html"):
        path = tmp_path / f"w.{fmt}"
        assert main(["whatif", har, "--set", "*: Access-Control-Max-Age: 7200",
                     "--format", fmt, "-o", str(path)]) == 0
        assert "preflight" in path.read_text()
    assert APP  # the session's page origin is what the changes are about


def test_a_fresh_firefox_session_saves_only_what_its_cache_would_have_used() -> None:
    """Max-Age 600 instead of the default 5 s, on four requests 6 s apart: Chromium would
    have preflighted once. A fresh Firefox session uses no result stored before one URL's
    third preflight (tests/browser FIREFOX-FACTS.md): the capture shows that third one at
    12 s, so only the last request would have been spared its preflight."""
    from corsflow.analysis import analyze_exchanges
    from tests.factories import PAGE, exchange, preflight

    url = "http://bar.other/x"
    allow = {"Access-Control-Allow-Origin": PAGE, "Access-Control-Allow-Methods": "PUT",
             "Access-Control-Allow-Headers": "x-a"}
    xs = []
    for k in range(4):
        t = 6.0 * k
        xs.append(preflight(2 * k, url, "PUT", "x-a", started=t, allow=allow, finished=t + 0.05))
        xs.append(exchange(2 * k + 1, "PUT", url, {"Origin": PAGE, "X-A": "1"}, started=t + 0.1,
                           finished=t + 0.15,
                           response_headers={"Access-Control-Allow-Origin": PAGE}))
    change = ChangeSet((parse_set("http://bar.other/x: Access-Control-Max-Age: 600"),))
    saved = {}
    for engine in ("chromium", "firefox", "webkit"):
        result = what_if(analyze_exchanges(xs, engine), [change]).combined
        before, after = result.totals()[""]
        saved[engine] = before.preflights - after.preflights
    assert saved == {"chromium": 3, "firefox": 1, "webkit": 3}
