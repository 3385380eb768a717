"""A fresh Firefox session's preflight cache starts working only after a few preflights
(by the result of one URL's third at the latest), and a result stored before it started is
never used (tests/browser FIREFOX-FACTS.md, fresh-session). A capture cannot show whether
its session was fresh, so Firefox's model calls no preflight redundant, and infers no
credentials mode, on the strength of a result stored before that bound."""

from __future__ import annotations

from dataclasses import replace

import pytest

from corsflow.analysis import analyze_exchanges
from corsflow.engine.events import ExchangeVerdict
from corsflow.engine.profiles import PROFILES
from corsflow.model import Exchange
from tests.factories import API, PAGE, exchange, preflight, warm_up

ALLOW = {"Access-Control-Allow-Origin": PAGE, "Access-Control-Allow-Methods": "PUT",
         "Access-Control-Allow-Headers": "x-a", "Access-Control-Max-Age": "600"}


def _url(k: int) -> str:
    return f"{API}/x/{k}"


def _fetches(plan: list[tuple[int, bool]], start: float = 0.0) -> list[Exchange]:
    """Each (URL number, preflight sent?) a PUT 0.5 s after the last; ids e0, e1... in order."""
    out: list[Exchange] = []
    for i, (k, sent) in enumerate(plan):
        t = start + 0.5 * i
        if sent:
            out.append(preflight(len(out), _url(k), "PUT", "x-a", started=t, allow=ALLOW,
                                 finished=t + 0.05))
        out.append(exchange(len(out), "PUT", _url(k), {"Origin": PAGE, "X-A": "1"},
                            started=t + 0.1, finished=t + 0.15,
                            response_headers={"Access-Control-Allow-Origin": PAGE}))
    return out


def _verdicts(xs: list[Exchange], engine: str) -> list[ExchangeVerdict]:
    return sorted(analyze_exchanges(xs, engine).exchanges, key=lambda v: v.exchange.started)


def _redundancy(xs: list[Exchange], engine: str) -> list[bool | None]:
    return [v.redundant for v in _verdicts(xs, engine) if v.role == "preflight"]


# Firefox ESR 153 in a fresh session (tests/browser: the browser's own sequences).
SAME_URL = [(1, True), (1, True), (1, True), (1, False)]
"""miss, miss, miss, hit."""
TWO_URLS = [(1, True), (1, True), (2, True), (1, True), (2, True), (2, False), (1, False),
            (3, True), (3, False)]
"""URL 2's result stored before URL 1's third preflight never hits; URL 3's, after, does."""


def test_the_profile_says_three() -> None:
    assert PROFILES["firefox"].fresh_session_preflights == 3
    assert PROFILES["chromium"].fresh_session_preflights == 0
    assert PROFILES["webkit"].fresh_session_preflights == 0


def test_a_fresh_firefox_sessions_repeats_are_not_called_redundant() -> None:
    xs = _fetches(SAME_URL)
    assert _redundancy(xs, "firefox") == [False, None, None]
    # Chromium and WebKit use their results at once: there the repeats were redundant.
    assert _redundancy(xs, "chromium") == [False, True, True]
    assert _redundancy(xs, "webkit") == [False, True, True]
    second = [v for v in _verdicts(xs, "firefox") if v.role == "preflight"][1]
    assert any(s.outcome == "unknown" and "fresh firefox session" in s.detail
               for s in second.trace)
    hit = _verdicts(xs, "firefox")[-1]
    assert (hit.cache, hit.verdict) == ("hit", "allowed")


def test_results_stored_before_the_warm_up_ends_stay_unproven() -> None:
    verdicts = _verdicts(_fetches(TWO_URLS), "firefox")
    preflights = {v.exchange.id: v.redundant for v in verdicts if v.role == "preflight"}
    # e0 URL 1, e2 URL 1 (covered by e0), e4 URL 2, e6 URL 1's third (covered by e2),
    # e8 URL 2 again (covered by e4, stored before e6), e12 URL 3.
    assert preflights == {"e0": False, "e2": None, "e4": False, "e6": None, "e8": None,
                          "e12": False}
    hits = [v.exchange.url for v in verdicts if v.cache == "hit"]
    assert hits == [_url(2), _url(1), _url(3)]


def test_a_cache_that_started_sooner_shows_in_the_hit() -> None:
    """Firefox's cache can start before the bound (two preflights each of two URLs on two
    origins, then a hit): the hit proves its result counted, the earlier ones still not."""
    other = "http://baz.other"
    xs = _fetches([(5, True), (5, True), (1, True), (1, True), (1, False), (5, True),
                   (5, False)])
    # URL 5 on a second API origin
    xs = [replace(x, url=x.url.replace(API, other)) if x.url == _url(5) else x for x in xs]
    verdicts = _verdicts(xs, "firefox")
    assert [v.redundant for v in verdicts if v.role == "preflight"] == [
        False, None, False, None, None]
    assert [v.cache for v in verdicts if v.role != "preflight"][-3:] == ["hit", "miss", "hit"]


def test_past_the_warm_up_a_repeat_is_redundant_again() -> None:
    xs = warm_up(100, -20.0) + _fetches([(1, True), (1, True)])
    assert _redundancy(xs, "firefox")[-2:] == [False, True]


def test_a_hit_in_the_capture_shows_the_session_was_not_fresh() -> None:
    """A request sent without a preflight used the result it followed: that result, and
    every later one, counted; a preflight they covered was redundant."""
    xs = _fetches([(1, True), (1, False), (2, True), (1, True), (2, True)])
    assert _redundancy(xs, "firefox") == [False, False, True, True]


@pytest.mark.parametrize("fresh", [True, False])
def test_no_credentials_mode_is_inferred_from_an_early_result(fresh: bool) -> None:
    """A preflight sent while an uncredentialed result covered its request says the request
    was credentialed (Firefox keys results by credentials mode), unless that result may be
    one a fresh session never uses."""
    allow = {**ALLOW, "Access-Control-Allow-Credentials": "true"}
    xs = [preflight(0, _url(1), "PUT", "x-a", started=0.0, allow=allow),
          exchange(1, "PUT", _url(1), {"Origin": PAGE, "X-A": "1"}, started=0.1,
                   response_headers={"Access-Control-Allow-Origin": PAGE}),
          preflight(2, _url(1), "PUT", "x-a", started=1.0, allow=allow),
          exchange(3, "PUT", _url(1), {"Origin": PAGE, "X-A": "1"}, started=1.1,
                   response_headers={"Access-Control-Allow-Origin": PAGE,
                                     "Access-Control-Allow-Credentials": "true"})]
    if not fresh:
        xs = warm_up(100, -20.0) + xs
    request = {v.exchange.id: v for v in _verdicts(xs, "firefox")}["e3"]
    assert request.credentials == ("unknown" if fresh else "include")
