"""corsflow's report of each capture format against what Chromium really did.

The same scenarios are captured as a pcap (tcpdump), mitmproxy flows, mitmproxy's HAR and
Playwright's HAR; ``corsflow analyze --format json`` runs on each and every request is
compared with the browser's truth. A table of all disagreements is printed on failure.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from .compare import (
    Disagreement,
    analyze_json,
    compare_playwright,
    compare_wire,
    format_disagreements,
)
from .conftest import capture_file
from .harness import Session

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _check(items: list[Disagreement]) -> None:
    if items:
        pytest.fail(format_disagreements(items), pytrace=False)


@pytest.mark.capture
def test_pcap_report_matches_chromium(direct_session: Session, tshark: str) -> None:
    path = capture_file(direct_session, "pcap")
    report = analyze_json(path)
    assert report["sources"][0]["format"] == "pcap"
    items = compare_wire("pcap", direct_session, report)
    lost = lost_segments(tshark, path) if items else 0
    if lost:
        # tcpdump dropped packets on a loaded machine (tshark, not corsflow, says so): what
        # they carried may be missing or unknown, but nothing may be called otherwise than
        # the browser did, and the report must say the capture lost bytes.
        assert any("never showed up" in n for n in report["summary"]["notes"])
        items = [d for d in items if not (
            (d.field == "present" and d.report == "missing from the report")
            or (d.field == "verdict" and d.report == "unknown"))]
    _check(items)


def lost_segments(tshark: str, path: Path) -> int:
    """How many places in the capture tshark finds segments that were never captured."""
    out = subprocess.run(
        [tshark, "-r", str(path), "-Y",
         "tcp.analysis.lost_segment or tcp.analysis.ack_lost_segment",
         "-T", "fields", "-e", "frame.number"],
        capture_output=True, text=True, check=True, timeout=120).stdout
    return len(out.split())


@pytest.mark.mitmproxy
def test_flows_report_matches_chromium(proxy_session: Session) -> None:
    path = capture_file(proxy_session, "flows")
    report = analyze_json(path)
    assert report["sources"][0]["format"] == "mitmproxy"
    _check(compare_wire("mitmproxy flows", proxy_session, report))


@pytest.mark.mitmproxy
def test_mitmproxy_har_report_matches_chromium(proxy_session: Session) -> None:
    path = capture_file(proxy_session, "mitm_har")
    report = analyze_json(path)
    assert report["sources"][0]["format"] == "har"
    # mitmproxy's HAR export writes request.method, which mitmproxy upper-cases.
    _check(compare_wire("mitmproxy HAR", proxy_session, report, method_case_lost=True))


def test_playwright_har_omits_preflights(direct_session: Session) -> None:
    """Playwright's HAR has no preflight entries although Chromium sent many; a request
    Chromium blocked is recorded with status -1, no response headers and net::ERR_FAILED."""
    har = json.loads(capture_file(direct_session, "playwright_har").read_text())
    entries = har["log"]["entries"]
    assert har["log"]["creator"]["name"] == "Playwright"
    sent = sum(1 for w in direct_session.wire if w.kind == "preflight")
    assert sent > 20
    assert [e for e in entries if e["request"]["method"] == "OPTIONS"] == []
    api = [e for e in entries if e["request"]["url"].startswith(direct_session.api_origin)]
    hops = sum(max(1, sum(1 for i in t.wire if direct_session.wire[i].kind != "preflight"))
               for t in direct_session.steps)
    assert len(api) == hops
    blocked = {t.url for t in direct_session.steps if t.outcome == "rejected"}
    failed = [e for e in api if e["request"]["url"] in blocked
              and e["response"]["status"] == -1]
    assert failed
    for e in failed:
        assert e["response"]["headers"] == []
        assert e["response"].get("_failureText") == "net::ERR_FAILED"


def test_playwright_har_report_says_unknown(direct_session: Session) -> None:
    """Where the HAR cannot show a preflight, the report must not invent one."""
    report = analyze_json(capture_file(direct_session, "playwright_har"))
    assert report["sources"][0]["format"] == "har"
    _check(compare_playwright("Playwright HAR", direct_session, report))
