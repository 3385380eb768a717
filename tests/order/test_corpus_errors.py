"""Real captures by other tools: every error corsflow reports on them is one the capture
proves. The files with CORS traffic, each with the errors it really has."""

from __future__ import annotations

from pathlib import Path

import pytest

from corsflow.analysis import analyze_paths

from .verdicts import errors

PROVEN = {
    "har/webpagetest-2.17-aftonbladet-cors-preflights.har": {},
    # Its one preflight was answered 503 without Access-Control-Allow-Origin: whatever the
    # credentials mode, Chromium refuses it (Allow-Origin is checked before the status).
    "har/webpagetest-2.17-nytimes-preflight-503.har": {"PreflightMissingAllowOriginHeader": 1},
    "har/chrome-har-0.2.3-verizon-preflights-lowercase.har": {},
    "har/chrome-har-capturer-0.10-cnn-preflight.har": {},
    "har/fiddler-5-post-with-origin.har": {},
    "har/firefox-77-post-with-origin.har": {},
    "har/charles-3.9-cross-origin-xhr-base64.har": {},
    "pcap/ppp-4k-http-requests-cors-preflights.pcap": {},
    "pcap/suricata-cross-origin-get-origin-acao.pcap": {},
    "pcap/ppp-one-tcp-stream-origin-acao-ooo.pcap": {},
    "pcap/zeek-websocket-upgrade-origin-acao.pcap": {},
    "mitm/mitmproxy2swagger-flowfmt18-api-acao.mitm": {},
}


@pytest.mark.parametrize("name", sorted(PROVEN))
def test_only_proven_errors(corpus: Path, name: str) -> None:
    report = analyze_paths([str(corpus / name)])
    got: dict[str, int] = {}
    for (code, _), n in errors(report).items():
        got[code] = got.get(code, 0) + n
    assert got == PROVEN[name]
    # Every unknown verdict says why.
    assert all(v.unknown_reason for v in report.exchanges if v.verdict == "unknown")
