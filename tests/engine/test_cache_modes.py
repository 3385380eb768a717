"""fetch() cache modes and opaque origins as the browsers showed them (tests/browser,
scenarios_engines: mode-*, opaque-origins)."""

from __future__ import annotations

from corsflow.analysis import analyze_exchanges
from corsflow.engine.events import ExchangeVerdict
from corsflow.model import Exchange
from tests.factories import API, PAGE, exchange, preflight, warm_up

URL = API + "/x"
ALLOW = {"Access-Control-Allow-Origin": PAGE, "Access-Control-Allow-Methods": "PUT",
         "Access-Control-Allow-Headers": "x-a", "Access-Control-Max-Age": "600"}


def _put(n: int, t: float, extra: dict[str, str] | None = None) -> Exchange:
    return exchange(n, "PUT", URL, {"Origin": PAGE, "X-A": "1", **(extra or {})}, started=t,
                    response_headers={"Access-Control-Allow-Origin": PAGE})


def _session(engine: str, cc: dict[str, str]) -> dict[str, ExchangeVerdict]:
    xs = [preflight(0, URL, "PUT", "x-a", started=0.0, allow=ALLOW), _put(1, 0.1),
          preflight(2, URL, "PUT", "x-a", started=1.0, allow=ALLOW, request_extra=cc),
          _put(3, 1.1, cc), _put(4, 2.0, cc)]
    if engine == "firefox":
        xs = warm_up(100, -20.0) + xs  # a session past Firefox's fresh-session warm-up
    return {v.exchange.id: v for v in analyze_exchanges(xs, engine).exchanges}


def test_no_cache_mode_header_is_not_the_pages() -> None:
    """Cache-Control: max-age=0 is fetch()'s no-cache mode, not a header needing a grant:
    the last request (no preflight) is a cache hit, allowed."""
    v = _session("webkit", {"Cache-Control": "max-age=0"})
    assert v["e3"].unsafe_headers == ("x-a",)
    assert (v["e4"].cache, v["e4"].verdict) == ("hit", "allowed")


def test_no_cache_mode_preflight_in_chromium_skipped_the_lookup() -> None:
    v = _session("chromium", {"Cache-Control": "max-age=0"})
    assert (v["e2"].redundant, v["e2"].redundant_cause) == (True, "fetch-no-cache")
    # Firefox looks the cache up in no-cache mode: a preflight then was not the mode's doing.
    v = _session("firefox", {"Cache-Control": "max-age=0"})
    assert (v["e2"].redundant, v["e2"].redundant_cause) == (True, "cache-not-used")


def test_no_store_and_reload_preflights_are_bypasses() -> None:
    v = _session("chromium", {"Pragma": "no-cache", "Cache-Control": "no-cache"})
    assert (v["e2"].redundant, v["e2"].redundant_cause) == (True, "devtools-disable-cache")
    assert any("no-store" in s.detail for s in v["e2"].trace)


def test_opaque_origins_share_an_entry_only_in_firefox() -> None:
    allow = {**ALLOW, "Access-Control-Allow-Origin": "null"}
    xs = [preflight(0, URL, "PUT", "x-a", origin="null", started=0.0, allow=allow),
          exchange(1, "PUT", URL, {"Origin": "null", "X-A": "1"}, started=0.1,
                   response_headers={"Access-Control-Allow-Origin": "null"}),
          preflight(2, URL, "PUT", "x-a", origin="null", started=1.0, allow=allow),
          exchange(3, "PUT", URL, {"Origin": "null", "X-A": "1"}, started=1.1,
                   response_headers={"Access-Control-Allow-Origin": "null"})]
    for engine, redundant in (("firefox", True), ("chromium", False), ("webkit", False)):
        # Past Firefox's fresh-session warm-up, as the browser tests' session is.
        session = warm_up(100, -20.0, origin="null") + xs if engine == "firefox" else xs
        v = {x.exchange.id: x for x in analyze_exchanges(session, engine).exchanges}
        assert v["e2"].redundant is redundant, engine


def test_after_a_bypassed_preflight_chromium_may_have_stored_nothing() -> None:
    """Chromium's fetch(cache: 'no-store') stores no result, 'reload' does, and both send the
    same headers (tests/browser mode-no-store, mode-reload): the next preflight may have
    been needed. Firefox stores both, so there it was redundant."""
    bypass = {"Pragma": "no-cache", "Cache-Control": "no-cache"}
    xs = [preflight(0, URL, "PUT", "x-a", started=0.0, allow=ALLOW, request_extra=bypass),
          _put(1, 0.1, bypass),
          preflight(2, URL, "PUT", "x-a", started=1.0, allow=ALLOW), _put(3, 1.1)]
    v = {x.exchange.id: x for x in analyze_exchanges(xs, "chromium").exchanges}
    assert v["e2"].redundant is None
    assert any(s.outcome == "unknown" and "no-store" in s.detail for s in v["e2"].trace)
    v = {x.exchange.id: x for x in analyze_exchanges(warm_up(100, -20.0) + xs,
                                                     "firefox").exchanges}
    assert v["e2"].redundant is True
