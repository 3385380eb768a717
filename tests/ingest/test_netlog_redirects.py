"""Redirects in a NetLog, event by event in the order Chromium 156 logged them (recorded by
tests/browser/scenarios_random.py --capture netlog): the reader must give each hop its own
headers and name the URL of a request whose preflight failed after a redirect."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corsflow.analysis import analyze_paths

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "chromium-session.netlog.json"
PAGE = "http://localhost:39099"
API = "http://127.0.0.1:38001"
BEGIN, END, NONE = 1, 2, 0


class Log:
    """A NetLog written with the sample's constants, one URL_REQUEST source at a time."""

    def __init__(self) -> None:
        self.constants = json.loads(SAMPLE.read_text())["constants"]
        self.types = self.constants["logEventTypes"]
        self.url_request = self.constants["logSourceType"]["URL_REQUEST"]
        self.events: list[dict[str, Any]] = []
        self.t = 1000

    def ev(self, sid: int, name: str, phase: int, **params: Any) -> None:
        self.t += 1
        e: dict[str, Any] = {"phase": phase, "time": str(self.t), "type": self.types[name],
                             "source": {"id": sid, "start_time": "1000",
                                        "type": self.url_request}}
        if params:
            e["params"] = params
        self.events.append(e)

    def cors_begin(self, sid: int, method: str, url: str) -> None:
        self.ev(sid, "CORS_REQUEST", BEGIN, url=url, request_headers={
            "headers": ["Accept: */*"], "line": f"{method} {url[len(API):]} HTTP/1.1\r\n"})

    def hop(self, sid: int, method: str, url: str, status_line: str, *headers: str,
            preflight: str | None = None) -> Iterator[None]:
        """REQUEST_ALIVE and the job of one hop, up to its response's headers; the caller's
        code runs at the yield (before the job ends)."""
        self.ev(sid, "REQUEST_ALIVE", BEGIN, url=url)
        self.ev(sid, "URL_REQUEST_START_JOB", BEGIN, method=method, url=url, initiator=PAGE,
                request_type="other")
        sent = ["Host: 127.0.0.1:38001", "Accept: */*", f"Origin: {PAGE}"]
        if preflight:
            sent.append(f"Access-Control-Request-Method: {preflight}")
        self.ev(sid, "HTTP_TRANSACTION_SEND_REQUEST_HEADERS", NONE, headers=sent,
                line=f"{method} {url[len(API):]} HTTP/1.1\r\n")
        self.ev(sid, "HTTP_TRANSACTION_READ_RESPONSE_HEADERS", NONE,
                headers=[status_line, *headers])
        yield

    def write(self, path: Path) -> Path:
        path.write_text(json.dumps({"constants": self.constants, "events": self.events}))
        return path


def _report(path: Path) -> dict[tuple[str, str], Any]:
    report = analyze_paths([str(path)])
    return {(v.exchange.method, v.exchange.url): v for v in report.exchanges}


def test_a_restarted_hop_keeps_its_headers(tmp_path: Path) -> None:
    # A simple POST answered 302; Chromium begins the GET to /next (REQUEST_ALIVE, its
    # job) before the POST's request is CANCELLED and its REQUEST_ALIVE ends.
    log = Log()
    log.cors_begin(1, "POST", f"{API}/s")
    log.ev(1, "CHECK_CORS_PREFLIGHT_REQUIRED", NONE, preflight_required=False)
    for _ in log.hop(1, "POST", f"{API}/s", "HTTP/1.1 302 Found",
                     f"Access-Control-Allow-Origin: {PAGE}", f"Location: {API}/s/next"):
        log.ev(1, "URL_REQUEST_DELEGATE_RECEIVED_REDIRECT", BEGIN)
        log.ev(1, "CHECK_CORS_PREFLIGHT_REQUIRED", NONE, preflight_required=False)
        log.ev(1, "REQUEST_ALIVE", BEGIN, url=f"{API}/s/next")
        log.ev(1, "URL_REQUEST_START_JOB", BEGIN, method="GET", url=f"{API}/s/next",
               initiator=PAGE, request_type="other")
        log.ev(1, "URL_REQUEST_DELEGATE_RECEIVED_REDIRECT", END)
        log.ev(1, "CANCELLED", NONE)
        log.ev(1, "REQUEST_ALIVE", END)
    log.ev(1, "HTTP_TRANSACTION_SEND_REQUEST_HEADERS", NONE,
           headers=["Host: 127.0.0.1:38001", f"Origin: {PAGE}"], line="GET /s/next HTTP/1.1")
    log.ev(1, "HTTP_TRANSACTION_READ_RESPONSE_HEADERS", NONE, headers=["HTTP/1.1 200 OK"])
    log.ev(1, "URL_REQUEST_START_JOB", END)
    log.ev(1, "CORS_REQUEST", END)
    log.ev(1, "REQUEST_ALIVE", END)
    v = _report(log.write(tmp_path / "restarted.json"))
    first, nxt = v["POST", f"{API}/s"], v["GET", f"{API}/s/next"]
    assert (first.exchange.method, first.exchange.status, first.verdict) == ("POST", 302,
                                                                              "allowed")
    assert (nxt.exchange.method, nxt.exchange.status, nxt.role) == ("GET", 200, "simple")
    assert (nxt.verdict, nxt.cors_error) == ("blocked", "MissingAllowOriginHeader")


@pytest.mark.parametrize(("method", "status", "then"), [
    ("PUT", 302, "PUT"), ("POST", 302, "GET"), ("POST", 307, "POST"), ("DELETE", 303, "GET")])
def test_a_request_refused_after_a_redirect_is_named_by_its_location(
        tmp_path: Path, method: str, status: int, then: str) -> None:
    # The request's preflight passes, it is redirected to /next (a relative Location), the
    # preflight for /next fails; no URL_REQUEST_REDIRECTED names the new URL or method.
    log = Log()
    log.cors_begin(1, method, f"{API}/s")
    log.ev(1, "CHECK_CORS_PREFLIGHT_REQUIRED", NONE, preflight_required=True,
           preflight_required_reason="disallowed_method")
    log.ev(1, "CORS_PREFLIGHT_URL_REQUEST", NONE, source_dependency={"id": 2, "type": 1})
    for _ in log.hop(2, "OPTIONS", f"{API}/s", "HTTP/1.1 200 OK",
                     f"Access-Control-Allow-Origin: {PAGE}",
                     f"Access-Control-Allow-Methods: {method}", preflight=method):
        pass
    log.ev(2, "URL_REQUEST_START_JOB", END)
    log.ev(2, "REQUEST_ALIVE", END)
    log.ev(1, "CORS_PREFLIGHT_RESULT", NONE)
    for _ in log.hop(1, method, f"{API}/s", f"HTTP/1.1 {status} Moved",
                     f"Access-Control-Allow-Origin: {PAGE}", "Location: /s/next"):
        log.ev(1, "URL_REQUEST_DELEGATE_RECEIVED_REDIRECT", BEGIN)
        log.ev(1, "CHECK_CORS_PREFLIGHT_REQUIRED", NONE, preflight_required=True,
               preflight_required_reason="disallowed_method")
        log.ev(1, "CORS_PREFLIGHT_URL_REQUEST", NONE, source_dependency={"id": 3, "type": 1})
        for _ in log.hop(3, "OPTIONS", f"{API}/s/next", "HTTP/1.1 200 OK", preflight=then):
            log.ev(1, "URL_REQUEST_DELEGATE_RECEIVED_REDIRECT", END)
            log.ev(1, "CANCELLED", NONE)
            log.ev(1, "REQUEST_ALIVE", END)
        log.ev(3, "URL_REQUEST_START_JOB", END)
        log.ev(3, "REQUEST_ALIVE", END)
    log.ev(1, "CORS_PREFLIGHT_ERROR", NONE, **{"cors-error": 12, "error": "ERR_FAILED"})
    log.ev(1, "CORS_REQUEST", END)
    v = _report(log.write(tmp_path / "refused.json"))
    refused = [x for x in v.values() if x.exchange.response is None]
    assert [(x.exchange.method, x.exchange.url) for x in refused] == [(then, f"{API}/s/next")]
    assert (refused[0].verdict, refused[0].cors_error) == ("blocked",
                                                           "PreflightMissingAllowOriginHeader")
    assert v[method, f"{API}/s"].verdict == "allowed"
