"""Playwright's HAR: no preflights, a blocked request as status -1 with no response."""

from __future__ import annotations

import dataclasses

from corsflow.analysis import analyze_exchanges
from corsflow.model import Exchange, ProducerHints
from tests.factories import API, PAGE, exchange

ALLOW = {"Access-Control-Allow-Origin": PAGE}


def _pw(ex: Exchange, creator: str | None = "Playwright") -> Exchange:
    return dataclasses.replace(ex, hints=ProducerHints(resource_type="fetch", creator=creator))


def test_a_preflighted_request_with_its_response_was_allowed() -> None:
    sent = _pw(exchange(0, "PUT", API + "/x", {"Origin": PAGE, "X-A": "1"}, started=1.0,
                        response_headers=ALLOW))
    [v] = analyze_exchanges([sent]).exchanges
    assert (v.role, v.verdict, v.preflight_id, v.cache) == ("preflighted", "allowed", None, None)
    assert any("Playwright" in s.detail for s in v.trace)


def test_its_own_response_still_decides() -> None:
    bad = _pw(exchange(0, "PUT", API + "/x", {"Origin": PAGE, "X-A": "1"}, started=1.0,
                       response_headers={}))
    [v] = analyze_exchanges([bad]).exchanges
    assert (v.verdict, v.cors_error) == ("blocked", "MissingAllowOriginHeader")


def test_other_producers_still_say_unknown() -> None:
    sent = _pw(exchange(0, "PUT", API + "/x", {"Origin": PAGE, "X-A": "1"}, started=1.0,
                        response_headers=ALLOW), creator="WebInspector")
    [v] = analyze_exchanges([sent]).exchanges
    assert v.verdict == "unknown" and "preflight" in (v.unknown_reason or "")
