"""The changes list: root causes grouped by what fixes them, effects from the replay, safe
advice only, and every report format opening with it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import pytest

from corsflow.analysis import analyze_exchanges
from corsflow.changes import NULL_ORIGIN_ADVICE, browser_origin, changes_of, compute_changes
from corsflow.findings import CATALOGUE, make_finding
from corsflow.report.html import render_html
from corsflow.report.json import render_json
from corsflow.report.text import render_markdown, render_text
from tests.factories import exchange, preflight

from . import session
from .session import API, APP, PAY, T0


def test_one_change_per_cause_with_replayed_effects() -> None:
    report = session.report()
    changes = compute_changes(report.exchanges, report.engine)
    by_what = {c.what.split(" `")[0] + " " + c.server: c for c in changes}
    trace = next(c for c in changes if "X-Trace-Id" in c.what)
    assert trace.server == API and trace.endpoints == ("/v2/items/{id}",)
    assert trace.fixes == ("e2", "e4", "e6", "e8")
    assert trace.action == ("add `X-Trace-Id` to Access-Control-Allow-Headers on "
                            f"{API}/v2/items/{{id}}")
    max_age = next(c for c in changes if "Max-Age" in c.what)
    assert max_age.endpoints == ("/v2/search",) and max_age.saves_preflights == 3
    assert max_age.saves_ms == pytest.approx(90.0)
    pay = next(c for c in changes if c.server == PAY)
    assert pay.fixes == ("e18", "e20")
    assert "204" in pay.what and f"Access-Control-Allow-Origin: {APP}" in pay.what
    # Ranked: fixes first.
    assert changes[0].fixes and len(by_what) == len(changes)


def test_never_advises_null_and_says_why() -> None:
    report = session.report()
    changes = compute_changes(report.exchanges, report.engine)
    for c in changes:
        for e in c.edits:
            assert "null" not in e.value
    null = next(c for c in changes if "e21" not in c.fixes and c.note == NULL_ORIGIN_ADVICE)
    assert not null.edits and "sandbox" in null.note
    hint = next(f.hint for f in report.findings if f.code == "MissingAllowOriginHeader")
    assert hint == NULL_ORIGIN_ADVICE


@pytest.mark.parametrize(("value", "origin"), [
    ("https://app.example", "https://app.example"),
    ("https://App.Example:443/path?q", "https://app.example"),
    ("http://bücher.example:8080", "http://xn--bcher-kva.example:8080"),
    ("null", None), ("file:///x", None), ("https://", None), (None, None),
])
def test_origins_as_the_browser_serialises_them(value: str | None, origin: str | None) -> None:
    assert browser_origin(value) == origin


def test_findings_name_templates_not_ids() -> None:
    report = session.report()
    for f in report.findings:
        assert not re.search(r"/items/\d", f.message + (f.hint or "") + (f.url or "")), f
    trace = [f for f in report.findings if f.code == "HeaderDisallowedByPreflightResponse"]
    assert len(trace) == 1 and trace[0].count == 4


def test_severity_downgrades_only_where_the_catalogue_says() -> None:
    assert CATALOGUE["MaxAgeAboveCap"].severity == "info"
    assert make_finding("MaxAgeMissing", "m", (), None, severity="info").severity == "info"
    with pytest.raises(ValueError, match="PerUrlPreflights"):
        make_finding("PerUrlPreflights", "m", (), None, severity="info")
    with pytest.raises(ValueError):
        make_finding("AvoidablePreflight", "m", (), None, severity="error")


def test_every_format_opens_with_the_changes() -> None:
    report = session.report()
    text = render_text(report, color=False)
    head = text.split("▌ ")[1]
    assert head.startswith("What to change")
    assert "add `X-Trace-Id` to Access-Control-Allow-Headers on /v2/items/{id}" in head
    assert "fixes 4 blocked requests" in head and "saves 3 preflights" in head
    md = render_markdown(report)
    assert md.index("## What to change") < md.index("## Findings")
    page = render_html(report, charts=False)
    assert page.index('id="changes"') < page.index('id="findings"')
    data = json.loads(render_json(report))
    first = data["changes"][0]
    assert set(first) >= {"server", "endpoints", "action", "headers", "fixes", "saves",
                          "finding_codes"}
    assert first["fixes"] and first["saves"].keys() == {"preflights", "ms"}
    assert any(h["name"] == "Access-Control-Allow-Headers" for c in data["changes"]
               for h in c["headers"])
    # The 'set' lines replay the change with `corsflow whatif --set`.
    assert any(line.endswith("Access-Control-Allow-Headers: +X-Trace-Id")
               for c in data["changes"] for line in c["set"])


def test_notebook_and_filters() -> None:
    pytest.importorskip("pandas")
    from corsflow.api import CorsAnalysis
    from corsflow.report.select import narrow

    a = CorsAnalysis(session.report())
    frame = a.changes
    assert next(iter(frame["server"])) in (API, PAY) and frame["fixes"].sum() == 6
    only = narrow(a.report, origin=PAY)
    assert {f.url for f in only.findings} == {f"{PAY}/v1/charges"}
    text = render_text(only, color=False)
    assert "/v1/charges" in text and "X-Trace-Id" not in text
    coded = narrow(a.report, codes=["MaxAgeMissing"])
    assert [f.code for f in coded.findings] == ["MaxAgeMissing"]


def test_headers_a_server_leaves_out_are_one_change() -> None:
    """Preflights refused for different headers on one server make one change that adds
    them all (one list to edit, one replay), proven to fix every request they blocked."""
    from corsflow.analysis import analyze_exchanges
    from tests.factories import exchange, preflight

    exchanges = []
    t = 1000.0
    for n, header in enumerate(["X-Trace-Id", "X-Tenant", "X-Trace-Id", "X-Request-Id"]):
        url = f"{API}/v2/items/{n}"
        exchanges.append(preflight(2 * n, url, "PUT", header.lower(), origin=APP, started=t,
                                   allow={"Access-Control-Allow-Origin": APP,
                                          "Access-Control-Allow-Methods": "PUT",
                                          "Access-Control-Allow-Headers": "Content-Type"}))
        exchanges.append(exchange(2 * n + 1, "PUT", url, {"Origin": APP, header: "1"},
                                  started=t + 0.01, status=None, failure="net::ERR_FAILED"))
        t += 1
    report = analyze_exchanges(exchanges)
    (change,) = [c for c in compute_changes(report.exchanges, report.engine)
                 if "Allow-Headers" in c.what]
    assert change.what == ("add `X-Trace-Id`, `X-Tenant`, `X-Request-Id` to "
                           "Access-Control-Allow-Headers")
    assert [e.value for e in change.edits] == ["X-Trace-Id", "X-Tenant", "X-Request-Id"]
    assert change.fixes == ("e1", "e3", "e5", "e7") and not change.breaks


@pytest.mark.parametrize(("url_of", "endpoints"), [
    (lambda i: f"{API}/items/{i % 7}-{i}", 600),  # each URL its own endpoint (no id in it)
    (lambda i: f"{API}/r{i % 150}/items/{i}", 150),  # /r{n}/items/{id}: templated endpoints
])
def test_proving_a_change_that_names_many_endpoints_grows_with_the_session(
        url_of: Callable[[int], str], endpoints: int) -> None:
    # A change lists every endpoint it edits; its replay asks, for each exchange, which of
    # them apply. Trying every endpoint's pattern on every exchange made a long live session
    # take minutes to prove one change: the patterns are looked up segment by segment.
    from corsflow.urls import url_matches

    exchanges = []
    t = T0
    for i in range(600):
        url = url_of(i)
        exchanges.append(preflight(2 * i, url, "PUT", "x-custom", origin=APP, started=t,
                                   allow={"Access-Control-Allow-Origin": APP,
                                          "Access-Control-Allow-Methods": "PUT"},
                                   finished=t + 0.01))
        exchanges.append(exchange(2 * i + 1, "PUT", url, {"Origin": APP, "X-Custom": "1"},
                                  started=t + 0.02, status=None, failure="net::ERR_FAILED"))
        t += 0.5
    report = analyze_exchanges(exchanges)
    url_matches.cache_clear()
    (change,) = changes_of(report)
    assert len(change.endpoints) == endpoints and len(change.fixes) == 600  # proven
    calls = url_matches.cache_info()
    assert calls.hits + calls.misses <= len(exchanges)
