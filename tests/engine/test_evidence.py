"""The browser's logged decisions beside the model: what the report takes, what it flags."""

from __future__ import annotations

import dataclasses

from corsflow.analysis import analyze_exchanges
from corsflow.engine.events import ExchangeVerdict
from corsflow.model import BrowserDecision, Exchange, ProducerHints
from tests.factories import API, PAGE, exchange, preflight

URL = API + "/items"
ALLOW = {"Access-Control-Allow-Origin": PAGE, "Access-Control-Allow-Methods": "PUT",
         "Access-Control-Allow-Headers": "x-a", "Access-Control-Max-Age": "600"}


def _with(ex: Exchange, **decision: object) -> Exchange:
    return dataclasses.replace(ex, hints=ProducerHints(browser=BrowserDecision(**decision)))  # type: ignore[arg-type]


def _put(n: int, started: float, **kw: object) -> Exchange:
    return exchange(n, "PUT", URL, {"Origin": PAGE, "X-A": "1"}, started=started,
                    response_headers={"Access-Control-Allow-Origin": PAGE}, **kw)  # type: ignore[arg-type]


def _by_id(exchanges: list[Exchange]) -> tuple[dict[str, ExchangeVerdict], list[str]]:
    report = analyze_exchanges(exchanges)
    codes = [f.message for f in report.findings if f.code == "ModelDisagreement"]
    return {v.exchange.id: v for v in report.exchanges}, codes


def test_agreeing_decisions_raise_nothing_and_are_traced() -> None:
    pf = _with(preflight(1, URL, "PUT", "x-a", started=10.0, allow=ALLOW), request_id="e2",
               preflight_passed=True, cache="miss")
    req = _with(_put(2, 10.1), preflight_required=True, preflight_reason="disallowed_method",
                cache="miss", preflight_id="e1", preflight_passed=True)
    v, disagreements = _by_id([pf, req])
    assert disagreements == []
    assert v["e2"].cache == "miss" and v["e2"].preflight_id == "e1"
    assert v["e2"].verdict == "allowed" and v["e1"].verdict == "allowed"
    step = v["e2"].trace[-1]
    assert step.step.startswith("Chromium's own decision") and "disallowed_method" in step.detail
    assert "not logged" in step.detail  # the response's own check is the model's


def test_a_cache_hit_the_model_did_not_expect_is_reported_and_followed() -> None:
    """The log began after the preflight: the model has nothing cached."""
    req = _with(_put(2, 10.1), preflight_required=True, cache="hit-and-pass",
                preflight_passed=True)
    v, disagreements = _by_id([req])
    assert v["e2"].cache == "hit"
    assert len(disagreements) == 1 and "cache hit" in disagreements[0]
    assert "model says none" in disagreements[0]


def test_the_browsers_corserror_wins_and_both_are_named() -> None:
    # The preflight allows PUT, yet the browser logged a method failure (a log that does
    # not fit its headers): the model, seeing the request blocked, takes it for credentialed.
    pf = _with(preflight(1, URL, "PUT", "x-a", started=10.0, allow=ALLOW), request_id="e2",
               preflight_passed=False, cors_error="MethodDisallowedByPreflightResponse",
               failed_parameter="PUT", cache="miss")
    req = _with(exchange(2, "PUT", URL, {"Origin": PAGE, "X-A": "1"}, started=10.0,
                         status=None, failure="net::ERR_FAILED"),
                preflight_required=True, cache="miss", preflight_id="e1",
                preflight_passed=False, cors_error="MethodDisallowedByPreflightResponse",
                failed_parameter="PUT", sent=False)
    v, disagreements = _by_id([pf, req])
    assert v["e1"].verdict == "blocked"
    assert v["e1"].cors_error == "MethodDisallowedByPreflightResponse"
    assert v["e1"].failed_parameter == "PUT"
    assert v["e2"].verdict == "blocked"
    assert v["e2"].cors_error == "MethodDisallowedByPreflightResponse"
    assert any("OPTIONS" in d and "says cors_error MethodDisallowedByPreflightResponse" in d
               and "model says PreflightInvalidAllowCredentials" in d for d in disagreements)


def test_a_credentials_error_settles_the_mode_without_a_disagreement() -> None:
    allow = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "PUT",
             "Access-Control-Allow-Headers": "x-a"}
    pf = _with(preflight(1, URL, "PUT", "x-a", started=10.0, allow=allow), request_id="e2",
               preflight_passed=False, cors_error="PreflightWildcardOriginNotAllowed")
    v, disagreements = _by_id([pf])
    assert v["e1"].verdict == "blocked" and v["e1"].credentials == "include"
    assert disagreements == []


def test_an_unknown_corserror_number_is_blocked_without_a_name() -> None:
    pf = _with(preflight(1, URL, "PUT", "x-a", started=10.0, allow={}), request_id="e2",
               preflight_passed=False, cors_error_number=4000)
    v, _ = _by_id([pf])
    assert v["e1"].verdict == "blocked" and v["e1"].cors_error is None
    assert "4000" in v["e1"].trace[-1].detail
