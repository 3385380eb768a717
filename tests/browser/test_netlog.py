"""corsflow's report of Chromium's own NetLog against what Chromium reported over DevTools.

The direct session (every scenario, plain HTTP/1.1) runs with ``--log-net-log``, so its
NetLog costs no extra browser run. A second, smaller session serves a subset of scenarios
over HTTPS and HTTP/2 (hypercorn, a throwaway certificate the browser is told to accept):
traffic no pcap can read, and a smaller one over HTTP/3 (QUIC). In each, every request the server received must be in the
report with Chromium's role, verdict, CorsError, preflight and cache use, every request the
browser blocked at its preflight must be reported blocked with the CorsError DevTools gave,
and the model must not disagree with the browser's logged decisions.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import missing

from .compare import Disagreement, _s, _short, analyze_json, compare_wire, format_disagreements
from .conftest import _need_browser, capture_file
from .harness import Captures, Session, run_session
from .scenarios import all_scenarios

pytestmark = [pytest.mark.browser, pytest.mark.slow]

H2_SCENARIOS = (
    "simple-get", "json-post", "credentials-ok", "redirect-ok", "no-acao", "acao-mismatch",
    "multiple-acao", "preflight-no-acao", "preflight-404-cors", "preflight-302",
    "method-not-allowed", "header-not-allowed", "invalid-acah", "lowercase-patch",
    "preflighted-redirect-307", "maxage-600",
)
"""Over HTTPS + HTTP/2: one of each kind of outcome, and one cache hit."""

H3_SCENARIOS = ("simple-get", "json-post", "no-acao", "preflight-no-acao", "method-not-allowed",
                "preflighted-redirect-307")
"""Over HTTP/3 (QUIC): a smaller set, the same kinds."""


def _tls_session(tmp_path_factory: pytest.TempPathFactory, names: tuple[str, ...],
                 quic: bool) -> Session:
    _need_browser()
    for module, package in (("hypercorn", "'hypercorn>=0.16,<0.18'"), ("aioquic", "aioquic")):
        if importlib.util.find_spec(module) is None:
            missing(f"{module} is not installed (pip install {package})")
    from .h2server import TwoOriginsH2

    d = tmp_path_factory.mktemp("netlog-h3" if quic else "netlog-h2")
    scenarios = [s for s in all_scenarios() if s.name in names]
    assert len(scenarios) == len(names)
    return run_session("direct", Captures(netlog=d / "session.netlog.json", workdir=d),
                       scenarios, servers=functools.partial(TwoOriginsH2, workdir=d, quic=quic))


@pytest.fixture(scope="module")
def h2_session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    return _tls_session(tmp_path_factory, H2_SCENARIOS, quic=False)


@pytest.fixture(scope="module")
def h3_session(tmp_path_factory: pytest.TempPathFactory) -> Session:
    return _tls_session(tmp_path_factory, H3_SCENARIOS, quic=True)


def _sent_with(path: Path, event: str) -> int:
    data = json.loads(path.read_text())
    number = data["constants"]["logEventTypes"][event]
    return sum(1 for e in data["events"] if e["type"] == number)


def compare_netlog(capture: str, session: Session, report: dict[str, Any]
                   ) -> list[Disagreement]:
    """The wire comparison, plus the requests Chromium blocked before sending them."""
    unsent = [e for e in report["exchanges"] if e["status"] is None
              and e.get("failure") == "net::ERR_FAILED" and e["role"] != "preflight"]
    ids = {e["id"] for e in unsent}
    wired = {**report, "exchanges": [e for e in report["exchanges"] if e["id"] not in ids]}
    out = compare_wire(capture, session, wired)
    # A fetch refused at a preflight: the unsent request is the one that preflight asked
    # for (after a redirect, the target's URL and the method the redirect left).
    blocked_first = {}
    for t in session.steps:
        last = session.wire[t.wire[-1]] if t.wire else None
        if t.outcome == "rejected" and (last is None or last.kind == "preflight"):
            method = (last.header("Access-Control-Request-Method") if last else None) or t.method
            blocked_first[method, last.url if last else t.url] = t
    seen = set()
    for e in unsent:
        t = blocked_first.get((e["method"], e["url"]))
        if t is None:
            out.append(Disagreement(capture, "-", 0, e["id"], f"{e['method']} {_short(e['url'])}",
                                    "present", "not blocked at a preflight", "unsent, blocked"))
            continue
        seen.add((e["method"], e["url"]))
        for name, want, got in (("verdict", "blocked", e["verdict"]),
                                ("cors_error", t.cors_error, e["cors_error"]),
                                ("failed_parameter", t.failed_parameter, e["failed_parameter"])):
            if want != got and not (name == "failed_parameter" and want is None):
                out.append(Disagreement(capture, t.scenario, t.step, e["id"],
                                        f"{t.method} {_short(t.url)}", name, _s(want), _s(got)))
    for key, t in blocked_first.items():
        if key not in seen and t.sent_preflight:
            out.append(Disagreement(capture, t.scenario, t.step, "-", f"{t.method} "
                                    f"{_short(t.url)}", "present", "blocked at its preflight",
                                    "missing from the report"))
    disagreements = [f for f in report["findings"] if f["code"] == "ModelDisagreement"]
    for f in disagreements:
        out.append(Disagreement(capture, "-", 0, ",".join(f["exchange_ids"]), "-",
                                "ModelDisagreement", "none", f["message"]))
    return out


def _check(items: list[Disagreement]) -> None:
    if items:
        pytest.fail(format_disagreements(items), pytrace=False)


def test_netlog_report_matches_chromium(direct_session: Session) -> None:
    path = capture_file(direct_session, "netlog")
    report = analyze_json(path)
    assert report["sources"][0]["format"] == "netlog"
    _check(compare_netlog("NetLog (HTTP/1.1)", direct_session, report))


def test_netlog_https_http2_matches_chromium(h2_session: Session) -> None:
    path = capture_file(h2_session, "netlog")
    report = analyze_json(path)
    assert report["sources"][0]["format"] == "netlog"
    api = [e for e in report["exchanges"] if e["url"].startswith(h2_session.api_origin)]
    assert api and h2_session.api_origin.startswith("https://")
    # Every request to the API really went over HTTP/2.
    assert _sent_with(path, "HTTP_TRANSACTION_HTTP2_SEND_REQUEST_HEADERS") >= len(h2_session.wire)
    _check(compare_netlog("NetLog (HTTPS, HTTP/2)", h2_session, report))


def test_netlog_http3_matches_chromium(h3_session: Session) -> None:
    path = capture_file(h3_session, "netlog")
    report = analyze_json(path)
    # Every request to the API really went over QUIC.
    assert _sent_with(path, "HTTP_TRANSACTION_QUIC_SEND_REQUEST_HEADERS") >= len(h3_session.wire)
    _check(compare_netlog("NetLog (HTTP/3)", h3_session, report))


def test_netlog_cut_short_is_read_up_to_the_cut(direct_session: Session, tmp_path: Path) -> None:
    """A NetLog whose writer was killed: no closing brackets, the last event half written."""
    data = capture_file(direct_session, "netlog").read_bytes()
    events_at = data.index(b'"events"')
    cut = events_at + (len(data) - events_at) * 2 // 3
    cut = data.index(b'"type"', cut)  # inside an event
    path = tmp_path / "killed.netlog.json"
    path.write_bytes(data[:cut])
    full = analyze_json(capture_file(direct_session, "netlog"))
    report = analyze_json(path)
    notes = " ".join(report["summary"].get("notes", []))
    assert "ends without its closing brackets" in notes and "up to byte" in notes
    assert 0 < len(report["exchanges"]) < len(full["exchanges"])
    # What was read before the cut is what the whole log says about those requests.
    whole = {e["id"]: e for e in full["exchanges"]}
    done = [e for e in report["exchanges"] if e["status"] is not None]
    assert done
    for e in done[: len(done) // 2]:
        assert whole[e["id"]]["status"] == e["status"], e["id"]
