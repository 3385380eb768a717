"""The notebook API on hand-built reports and on real captures run through the engine."""

from __future__ import annotations

import pickle
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

from corsflow import api
from corsflow.analysis import Report
from corsflow.api import CorsAnalysis, load
from corsflow.errors import UsageError
from corsflow.report.html import render_html
from corsflow.report.text import render_csv, render_markdown, render_text

from .test_plots import span_widths

AFTONBLADET = "har/webpagetest-2.17-aftonbladet-cors-preflights.har"


def test_frames_are_built_once(report: Report) -> None:
    cors = CorsAnalysis(report)
    assert cors.exchanges is cors.exchanges
    assert cors.preflights.set_index("id").loc["e1", "request_ids"] == ("e2", "e4")
    assert list(cors.by_origin.index) == ["https://app.example.com", "https://admin.example.org"]
    assert cors.by_endpoint.index[0] == "https://api.example.net/v1/items/{id}"
    assert cors.findings["code"].iloc[0] == "PreflightMissingAllowOriginHeader"
    # Pickling keeps the report, not the caches.
    again = pickle.loads(pickle.dumps(cors))
    assert again.report == report and "exchanges" not in again.__dict__


def test_charts(report: Report) -> None:
    cors = CorsAnalysis(report)
    for fig in (
        cors.timeline(),
        cors.timeline("https://app.example.com"),
        cors.preflight_overhead(),
        cors.verdicts_by_origin(),
    ):
        assert isinstance(fig, Figure)


def test_repr_html_is_a_summary_not_a_wall_of_rows(report: Report, hostile_report: Report) -> None:
    card = CorsAnalysis(report)._repr_html_()
    assert "PreflightMissingAllowOriginHeader" in card and "fix:" in card
    assert "<b>7</b><br><small>cross-origin requests" in card
    assert "/v1/feed" not in card  # exchanges are not listed
    hostile = CorsAnalysis(hostile_report)._repr_html_()
    assert "<script" not in hostile and "&lt;script&gt;" in hostile


def test_explain(report: Report) -> None:
    cors = CorsAnalysis(report)
    text = cors.explain("e10")
    assert "DELETE https://api.example.net/v1/admin/users/" in text
    assert "PreflightMissingAllowOriginHeader" in text and "fix: Answer OPTIONS" in text
    with pytest.raises(UsageError, match="no exchange with id 'e99'"):
        cors.explain("e99")


def test_to_html_writes_the_page(report: Report, tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    page = CorsAnalysis(report).to_html(out)
    assert out.read_text(encoding="utf-8") == page and page.startswith("<!DOCTYPE html>")


def test_load_expands_patterns_and_rejects_what_is_not_there(tmp_path: Path) -> None:
    (tmp_path / "a.har").write_text("{}")
    (tmp_path / "b.har").write_text("{}")
    (tmp_path / "sub").mkdir()
    assert api._expand(str(tmp_path / "*.har")) == [
        str(tmp_path / "a.har"),
        str(tmp_path / "b.har"),
    ]
    assert api._expand([tmp_path / "b.har", tmp_path / "a.har"]) == [
        str(tmp_path / "b.har"),
        str(tmp_path / "a.har"),
    ]
    with pytest.raises(UsageError, match="matches no file"):
        load(str(tmp_path / "*.pcap"))
    with pytest.raises(UsageError, match="is a directory"):
        load(tmp_path / "sub")
    with pytest.raises(UsageError, match="no capture files"):
        load([])


def test_load_models_the_browser_the_capture_shows(tmp_path: Path) -> None:
    import json

    ua = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"
    har = tmp_path / "firefox.har"
    har.write_text(json.dumps({"log": {"entries": [{
        "startedDateTime": "2026-01-01T00:00:00.000Z", "time": 5,
        "request": {"method": "GET", "url": "https://api.example/items", "httpVersion": "HTTP/1.1",
                    "headers": [{"name": "Origin", "value": "https://app.example"},
                                {"name": "User-Agent", "value": ua}]},
        "response": {"status": 200, "statusText": "", "httpVersion": "HTTP/1.1",
                     "headers": [{"name": "Access-Control-Allow-Origin",
                                  "value": "https://app.example"}]},
        "timings": {"send": 1, "wait": 3, "receive": 1}}]}}))
    detected = load(har).report
    assert detected.engine == "firefox"
    assert detected.notes[0].startswith("engine firefox, detected from the capture")
    given = load(har, engine="webkit").report
    assert given.engine == "webkit"
    assert not any(n.startswith("engine ") for n in given.notes)


# --------------------------------------------------------------------------- real captures


@pytest.fixture
def aftonbladet(corpus: Path) -> CorsAnalysis:
    return load(corpus / AFTONBLADET)


def test_real_capture_frames(aftonbladet: CorsAnalysis) -> None:
    pf = aftonbladet.preflights.set_index("id")
    # Three CORS preflights in the WebPageTest capture, each paired with the POST after it.
    assert list(pf.index) == ["e103", "e128", "e210"]
    assert (
        pf.loc["e103", "request_ids"] == ("e114",) and pf.loc["e103", "requested_method"] == "POST"
    )
    assert (
        pf.loc["e128", "max_age_sent"] == "604800" and pf.loc["e128", "max_age_effective"] == 7200.0
    )
    assert pf.loc["e103", "max_age_problem"] == "missing"
    assert bool(pf.loc["e210", "redundant"])
    assert (pf["cost_ms"] > 0).all()
    ex = aftonbladet.exchanges
    assert len(ex) == 212 and ex["time"].is_monotonic_increasing
    assert ex["time"].iloc[0].year == 2015 and str(ex["time"].dt.tz) == "UTC"
    assert (ex["role"] == "other").sum() == 197
    by_origin = aftonbladet.by_origin
    assert list(by_origin.index) == ["http://www.aftonbladet.se"]
    assert by_origin.loc["http://www.aftonbladet.se", "preflights"] == 3
    assert by_origin.loc["http://www.aftonbladet.se", "preflight_ms"] == pytest.approx(
        pf["cost_ms"].sum()
    )
    ep = aftonbladet.by_endpoint
    assert ep.loc["https://cis.schibsted.com/api/v1/identify", "preflights"] == 1
    assert isinstance(aftonbladet.findings["severity"].dtype, pd.CategoricalDtype)


def test_real_capture_renderers(aftonbladet: CorsAnalysis, tmp_path: Path) -> None:
    report = aftonbladet.report
    text = render_text(report, color=False, width=100)
    assert "▌ http://www.aftonbladet.se" in text and "3 preflights" in text
    assert "604800 clamped to 7200 s" in text
    assert render_markdown(report).count("\n| warning |") >= 1
    assert render_csv(report).count("\n") == len(report.exchanges) + 1
    page = render_html(report)
    assert "cis.schibsted.com/api/v1/identify" in page and page.count("data:image/png;base64,") == 3
    fig = aftonbladet.timeline()
    assert span_widths(fig.axes[0]) == [5.0, 7200.0, 7200.0]


def test_several_files_and_a_pattern(corpus: Path) -> None:
    cors = load([corpus / AFTONBLADET, corpus / "har/webpagetest-2.17-nytimes-preflight-503.har"])
    assert len(cors.report.sources) == 2
    ids = cors.exchanges["id"]
    assert ids.str.startswith("1:").any() and ids.str.startswith("2:").any()
    by_pattern = load(str(corpus / "har" / "webpagetest-2.17-*.har"))
    assert len(by_pattern.report.sources) == 2


def test_real_failed_preflight_without_its_request_is_a_failure(corpus: Path) -> None:
    # WebPageTest recorded the 503 preflight but not the POST the browser then never sent.
    cors = load(corpus / "har/webpagetest-2.17-nytimes-preflight-503.har")
    text = render_text(cors.report, color=False, width=200)
    failures = text[text.index("  Failures") : text.index("  Endpoints")]
    assert "✗ e174 OPTIONS http://int-promos.nytimes.com/hp-watching/serves" in failures
    assert "blocked: PreflightMissingAllowOriginHeader" in failures
    assert "preflight answered 503; the request it was sent for is not in the capture" in failures
    assert "fix: send `Access-Control-Allow-Origin: http://www.nytimes.com`" in failures
    assert "0 blocked, 1 failed preflight, " in text.splitlines()[1]
    assert cors.by_origin.loc["http://www.nytimes.com", "failed_preflights"] == 1
    page = render_html(cors.report)
    failures_at = page.index("<p><b>Failures</b></p>")
    assert page.find("<code>e174</code>", failures_at) > failures_at  # its decision, in details


# --------------------------------------------------------------------------- the recorded sample

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "chromium-session.har"


@pytest.fixture
def sample() -> CorsAnalysis:
    if not SAMPLE.is_file():
        pytest.skip("samples/chromium-session.har is not recorded yet")
    return load(SAMPLE)


def _row(frame: pd.DataFrame, template: str) -> pd.Series:
    rows = frame[frame["path_template"] == template]
    assert len(rows) >= 1, template
    return rows.iloc[0]


def test_sample_session_preflights(sample: CorsAnalysis) -> None:
    pf = sample.preflights
    # `nocache-control`: one preflight (Max-Age 600) served four PUTs, three from the cache.
    control = _row(pf, "/s/nocache-control")
    assert control["request_count"] == 4 and control["cache_hits"] == 3
    # `wildcard-cache`: the second X-A request reused the first preflight.
    assert _row(pf, "/s/wildcard-cache")["request_ids"] == tuple(
        sample.exchanges.query("path_template == '/s/wildcard-cache' and role == 'preflighted'")[
            "id"
        ]
    )
    # `maxage-absent`: no Max-Age, so Chromium caches 5 s.
    assert set(pf.loc[pf["path_template"] == "/s/maxage-absent", "max_age_effective"]) == {5.0}
    # `nocache`: with DevTools' cache disabled the second and third preflights are redundant.
    nocache = pf[pf["path_template"] == "/s/nocache"]
    assert nocache["redundant"].tolist() == [False, True, True]
    assert nocache["avoidable"].tolist() == [False, True, True]
    # Failed preflights stood for no request: the browser never sent them.
    failed = pf[pf["verdict"] == "blocked"]
    assert set(failed["path_template"]) == {
        "/s/preflight-404-bare",
        "/s/method-not-allowed",
        "/s/header-not-allowed",
    }
    assert (failed["request_count"] == 0).all()


def test_sample_session_failures_in_every_format(sample: CorsAnalysis, tmp_path: Path) -> None:
    report = sample.report
    errors = dict(
        zip(sample.exchanges["path_template"], sample.exchanges["cors_error"], strict=False)
    )
    text = render_text(report, color=False, width=200)
    failures = text[text.index("  Failures") : text.index("  Findings")]
    for template in (
        "/s/no-acao",
        "/s/acao-mismatch",
        "/s/preflight-404-bare",
        "/s/method-not-allowed",
        "/s/header-not-allowed",
    ):
        assert template in failures
        assert f"blocked: {errors[template]}" in failures
    assert "blocked: MethodDisallowedByPreflightResponse (PUT)" in failures
    assert "blocked: HeaderDisallowedByPreflightResponse (x-a)" in failures
    markdown = render_markdown(report)
    assert markdown.count("\n- **") == failures.count("✗")
    verdicts = sample.verdicts_by_origin().axes[0]
    blocked_labels = [
        label for label in verdicts.get_legend_handles_labels()[1] if label.startswith("blocked")
    ]
    # Failed preflights stand for the requests the browser then never sent.
    assert blocked_labels == [
        "blocked: AllowOriginMismatch",
        "blocked: HeaderDisallowedByPreflightResponse",
        "blocked: MethodDisallowedByPreflightResponse",
        "blocked: MissingAllowOriginHeader",
        "blocked: PreflightMissingAllowOriginHeader",
    ]
    assert sum(p.get_width() for p in verdicts.patches) == 25 + 3
