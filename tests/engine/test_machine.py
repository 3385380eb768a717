"""The pairing state machine and the findings it leads to, on hand-built exchanges."""

from __future__ import annotations

from typing import ClassVar

import pytest

from corsflow.analysis import Analysis, analyze_exchanges
from corsflow.engine.machine import MODEL_CONTRADICTED, CorsMachine
from corsflow.engine.profiles import CHROMIUM
from tests.factories import API, PAGE, exchange, preflight, warm_up

GOOD = {
    "Access-Control-Allow-Origin": PAGE,
    "Access-Control-Allow-Methods": "GET, POST, PUT",
    "Access-Control-Allow-Headers": "X-Custom-Header",
}
ACAO = {"Access-Control-Allow-Origin": PAGE}


def put(n: int, t: float, path: str = "/cors", **kw: object) -> object:
    return exchange(n, "PUT", API + path, {"Origin": PAGE, "X-Custom-Header": "v"}, started=t,
                    response_headers=kw.pop("response_headers", ACAO), **kw)  # type: ignore[arg-type]


def by_id(report: object) -> dict[str, object]:
    return {v.exchange.id: v for v in report.exchanges}  # type: ignore[attr-defined]


def codes(report: object) -> list[str]:
    return [f.code for f in report.findings]  # type: ignore[attr-defined]


class TestTheClassicExample:
    """PUT /cors from http://api.bob.com with X-Custom-Header (the MDN / HTML5 Rocks example)."""

    def xs(self, max_age: str = "1728000", origin: str = PAGE) -> list[object]:
        allow = dict(GOOD, **{"Access-Control-Max-Age": max_age,
                              "Access-Control-Allow-Origin": origin})
        return [preflight(0, API + "/cors", "PUT", "x-custom-header", started=10.0, allow=allow),
                put(1, 10.05)]

    @pytest.mark.parametrize("engine", ["chromium", "firefox", "webkit"])
    def test_paired_allowed_and_max_age_above_every_cap(self, engine: str) -> None:
        report = analyze_exchanges(self.xs(), engine)
        v = by_id(report)
        assert (v["e0"].role, v["e0"].verdict, v["e0"].redundant) == ("preflight", "allowed", False)
        assert (v["e1"].role, v["e1"].verdict) == ("preflighted", "allowed")
        assert (v["e1"].preflight_id, v["e1"].cache) == ("e0", "miss")
        assert "MaxAgeAboveCap" in codes(report)
        cap = {"chromium": 7200, "firefox": 86400, "webkit": 600}[engine]
        assert v["e0"].max_age.effective == cap and v["e0"].max_age.clamped

    def test_refused_variant_blocked_on_the_preflight(self) -> None:
        report = analyze_exchanges(self.xs(origin="http://evil.example")[:1])
        v = by_id(report)["e0"]
        assert (v.verdict, v.cors_error) == ("blocked", "PreflightAllowOriginMismatch")
        finding = next(f for f in report.findings if f.code == "PreflightAllowOriginMismatch")
        assert finding.severity == "error" and finding.exchange_ids == ("e0",)
        assert "Access-Control-Allow-Origin: http://api.bob.com" in finding.hint

    @pytest.mark.parametrize("engine,above", [("chromium", True), ("webkit", True),
                                              ("firefox", False)])
    def test_json_post_max_age_86400(self, engine: str, above: bool) -> None:
        allow = {"Access-Control-Allow-Origin": PAGE, "Access-Control-Allow-Headers": "content-type",
                 "Access-Control-Max-Age": "86400"}
        xs = [preflight(0, API + "/items", "POST", "content-type", started=1.0, allow=allow),
              exchange(1, "POST", API + "/items",
                       {"Origin": PAGE, "Content-Type": "application/json"}, started=1.1,
                       response_headers=ACAO)]
        report = analyze_exchanges(xs, engine)
        assert ("MaxAgeAboveCap" in codes(report)) is above
        assert by_id(report)["e1"].preflight_reasons == ("Content-Type application/json",)


class TestPairing:
    def test_chrome_har_dates_the_request_before_its_preflight(self) -> None:
        # Chrome's HAR gives the actual request an earlier startedDateTime than its preflight.
        xs = [put(1, 10.000), preflight(0, API + "/cors", "PUT", "x-custom-header",
                                        started=10.002, allow=GOOD,
                                        resource_type="preflight", initiator_url=API + "/cors")]
        v = by_id(analyze_exchanges(xs))
        assert (v["e1"].preflight_id, v["e1"].cache, v["e1"].verdict) == ("e0", "miss", "allowed")
        assert v["e0"].verdict == "allowed"

    def test_cache_hit_within_max_age_then_miss_after(self) -> None:
        allow = dict(GOOD, **{"Access-Control-Max-Age": "10"})
        xs = [preflight(0, API + "/cors", "PUT", "x-custom-header", started=0.0, allow=allow),
              put(1, 0.1), put(2, 5.0), put(3, 20.0)]
        v = by_id(analyze_exchanges(xs))
        assert (v["e2"].cache, v["e2"].preflight_id, v["e2"].verdict) == ("hit", "e0", "allowed")
        assert v["e3"].cache is None and v["e3"].verdict == "unknown"
        assert "not in the capture" in v["e3"].unknown_reason

    def test_request_without_preflight_is_unknown_and_reported_once(self) -> None:
        report = analyze_exchanges([put(1, 1.0), put(2, 2.0, path="/other")])
        assert [v.verdict for v in report.exchanges] == ["unknown", "unknown"]
        found = [f for f in report.findings if f.code == "RequestWithoutPreflight"]
        assert len(found) == 1 and found[0].count == 2

    def test_blocked_preflight_blocks_its_recorded_request(self) -> None:
        bad = dict(GOOD, **{"Access-Control-Allow-Methods": "GET"})
        xs = [preflight(0, API + "/cors", "PUT", "x-custom-header", started=1.0, allow=bad),
              put(1, 1.2, status=None, failure="net::ERR_FAILED")]
        report = analyze_exchanges(xs)
        v = by_id(report)
        assert (v["e0"].verdict, v["e0"].cors_error, v["e0"].failed_parameter) == (
            "blocked", "MethodDisallowedByPreflightResponse", "PUT")
        assert (v["e1"].verdict, v["e1"].cors_error, v["e1"].preflight_id) == (
            "blocked", "MethodDisallowedByPreflightResponse", "e0")
        # One finding for the pair, not two.
        assert codes(report).count("MethodDisallowedByPreflightResponse") == 1

    def test_preflight_without_request(self) -> None:
        allow = dict(GOOD, **{"Access-Control-Allow-Credentials": "true"})
        report = analyze_exchanges([
            preflight(0, API + "/cors", "PUT", "x-custom-header", started=1.0, allow=allow)])
        assert by_id(report)["e0"].verdict == "allowed"
        assert "PreflightWithoutRequest" in codes(report)

    def test_lone_preflight_failing_only_when_credentialed_is_unknown(self) -> None:
        # No request follows a preflight that passes only without credentials: a blocked
        # credentialed request fits, and so does a capture that ended right after it. The
        # capture proves no failure, so there is no error finding, and the reason is given.
        report = analyze_exchanges([
            preflight(0, API + "/cors", "PUT", "x-custom-header", started=1.0, allow=GOOD)])
        v = by_id(report)["e0"]
        assert (v.verdict, v.cors_error, v.credentials) == ("unknown", None, "unknown")
        assert v.unknown_reason and "PreflightInvalidAllowCredentials" in v.unknown_reason
        assert not [f for f in report.findings if f.severity == "error"]

    def test_preflight_failing_only_when_credentialed_with_recorded_block(self) -> None:
        # Chrome's HAR lists the blocked request (net::ERR_FAILED, no response): that
        # settles the mode, and the failure is proven.
        report = analyze_exchanges([
            preflight(0, API + "/cors", "PUT", "x-custom-header", started=1.0, allow=GOOD),
            exchange(1, "PUT", API + "/cors", {"Origin": PAGE, "X-Custom-Header": "1"},
                     started=1.1, status=None, failure="net::ERR_FAILED")])
        v = by_id(report)
        assert (v["e0"].verdict, v["e0"].cors_error, v["e0"].credentials) == (
            "blocked", "PreflightInvalidAllowCredentials", "include")
        assert (v["e1"].verdict, v["e1"].cors_error) == (
            "blocked", "PreflightInvalidAllowCredentials")

    def test_simple_request_checked_on_its_own_response(self) -> None:
        xs = [exchange(0, "GET", API + "/a", {"Origin": PAGE}, started=1.0, response_headers={}),
              exchange(1, "GET", API + "/b", {"Origin": PAGE}, started=2.0,
                       response_headers=ACAO)]
        v = by_id(analyze_exchanges(xs))
        assert (v["e0"].role, v["e0"].verdict, v["e0"].cors_error) == (
            "simple", "blocked", "MissingAllowOriginHeader")
        assert (v["e1"].role, v["e1"].verdict) == ("simple", "allowed")

    def test_not_cors(self) -> None:
        xs = [exchange(0, "GET", API + "/", {}, started=1.0),
              exchange(1, "POST", API + "/x", {"Origin": API}, started=2.0),
              exchange(2, "GET", API + "/d", {"Origin": PAGE, "Sec-Fetch-Mode": "navigate"},
                       started=3.0)]
        report = analyze_exchanges(xs)
        assert [(v.role, v.verdict) for v in report.exchanges] == [("other", None)] * 3


class TestCredentials:
    def test_wildcard_with_cookie_is_blocked(self) -> None:
        xs = [exchange(0, "GET", API + "/me", {"Origin": PAGE, "Cookie": "s=1"}, started=1.0,
                       response_headers={"Access-Control-Allow-Origin": "*"})]
        v = by_id(analyze_exchanges(xs))["e0"]
        assert (v.verdict, v.cors_error, v.credentials) == (
            "blocked", "WildcardOriginNotAllowed", "include")

    def test_invisible_credentials_take_the_fetch_default_and_say_so(self) -> None:
        xs = [exchange(0, "GET", API + "/me", {"Origin": PAGE}, started=1.0,
                       response_headers={"Access-Control-Allow-Origin": "*"})]
        v = by_id(analyze_exchanges(xs))["e0"]
        assert (v.verdict, v.credentials) == ("allowed", "unknown")
        assert any("WildcardOriginNotAllowed" in s.detail for s in v.trace)

    def test_recorded_failure_settles_the_credentials_mode(self) -> None:
        xs = [exchange(0, "GET", API + "/me", {"Origin": PAGE}, started=1.0,
                       response_headers={"Access-Control-Allow-Origin": "*"},
                       failure="net::ERR_FAILED")]
        v = by_id(analyze_exchanges(xs))["e0"]
        assert (v.verdict, v.cors_error) == ("blocked", "WildcardOriginNotAllowed")


class TestCacheBehaviour:
    allow: ClassVar[dict[str, str]] = dict(GOOD, **{"Access-Control-Max-Age": "600"})

    def test_redundant_preflight_with_devtools_cache_disabled(self) -> None:
        nocache = {"Pragma": "no-cache", "Cache-Control": "no-cache"}
        xs = [preflight(0, API + "/cors", "PUT", "x-custom-header", started=0.0,
                        allow=self.allow),
              put(1, 0.1),
              preflight(2, API + "/cors", "PUT", "x-custom-header", started=5.0,
                        allow=self.allow, request_extra=nocache),
              put(3, 5.1)]
        report = analyze_exchanges(xs)
        v = by_id(report)
        assert v["e0"].redundant is False
        assert (v["e2"].redundant, v["e2"].redundant_cause) == (True, "devtools-disable-cache")
        f = next(f for f in report.findings if f.code == "RedundantPreflight")
        assert f.exchange_ids == ("e2",) and f.severity == "info"

    def test_per_url_cache_key(self) -> None:
        xs = []
        for i in range(4):
            xs.append(preflight(2 * i, API + f"/items/{i}", "PUT", "x-custom-header",
                                started=float(i), allow=self.allow))
            xs.append(put(2 * i + 1, i + 0.1, path=f"/items/{i}"))
        report = analyze_exchanges(xs)
        assert not any(v.redundant for v in report.exchanges)
        per_url = next(f for f in report.findings if f.code == "PerUrlPreflights")
        assert per_url.count == 4 and "/items/{id}" in per_url.message

    @pytest.mark.parametrize("engine,second", [("chromium", None), ("webkit", None),
                                               ("firefox", "hit")])
    def test_replace_or_merge(self, engine: str, second: str | None) -> None:
        """Two header sets on one URL: replacing engines lose the first; merging keep both."""
        a = dict(self.allow, **{"Access-Control-Allow-Headers": "x-a"})
        b = dict(self.allow, **{"Access-Control-Allow-Headers": "x-b"})
        xs = [preflight(0, API + "/r", "PUT", "x-a", started=0.0, allow=a),
              exchange(1, "PUT", API + "/r", {"Origin": PAGE, "X-A": "1"}, started=0.1,
                       response_headers=ACAO),
              preflight(2, API + "/r", "PUT", "x-b", started=1.0, allow=b),
              exchange(3, "PUT", API + "/r", {"Origin": PAGE, "X-B": "1"}, started=1.1,
                       response_headers=ACAO),
              exchange(4, "PUT", API + "/r", {"Origin": PAGE, "X-A": "1"}, started=2.0,
                       response_headers=ACAO)]
        v = by_id(analyze_exchanges(xs, engine))
        assert v["e4"].cache == second

    def test_max_age_missing_counts_the_preflights_it_cost(self) -> None:
        allow = dict(GOOD)  # no Max-Age: 5 s
        xs = []
        for i in range(3):
            xs.append(preflight(2 * i, API + "/poll", "PUT", "x-custom-header",
                                started=10.0 * i, allow=allow))
            xs.append(put(2 * i + 1, 10.0 * i + 0.1, path="/poll"))
        report = analyze_exchanges(xs)
        f = next(f for f in report.findings if f.code == "MaxAgeMissing")
        assert f.count == 3 and f.saved == 2 and f.severity == "warning"

    def test_max_age_disabled_on_repeats(self) -> None:
        allow = dict(GOOD, **{"Access-Control-Max-Age": "0"})
        xs = [preflight(0, API + "/z", "PUT", "x-custom-header", started=0.0, allow=allow),
              put(1, 0.1, path="/z"),
              preflight(2, API + "/z", "PUT", "x-custom-header", started=1.0, allow=allow),
              put(3, 1.1, path="/z")]
        report = analyze_exchanges(xs)
        f = next(f for f in report.findings if f.code == "MaxAgeDisabled")
        assert f.saved == 1

    def test_authorization_under_wildcard_repreflights_on_chromium(self) -> None:
        allow = {"Access-Control-Allow-Origin": PAGE, "Access-Control-Allow-Headers": "*",
                 "Access-Control-Max-Age": "600"}
        xs = [preflight(0, API + "/me", "GET", "authorization", started=0.0, allow=allow),
              exchange(1, "GET", API + "/me", {"Origin": PAGE, "Authorization": "Bearer x"},
                       started=0.1, response_headers=ACAO),
              exchange(2, "GET", API + "/me", {"Origin": PAGE, "Authorization": "Bearer x"},
                       started=1.0, response_headers=ACAO)]
        chromium = analyze_exchanges(xs, "chromium")
        webkit = analyze_exchanges(xs, "webkit")
        assert by_id(chromium)["e2"].cache is None  # Chromium's cache never uses '*' for it
        assert by_id(webkit)["e2"].cache == "hit"
        assert "AuthorizationWildcardRepreflight" in codes(chromium)
        assert "AuthorizationWildcardRepreflight" not in codes(webkit)


class TestBoundedState:
    def test_state_stays_bounded_over_a_long_stream(self) -> None:
        machine = CorsMachine(CHROMIUM)
        allow = dict(GOOD, **{"Access-Control-Max-Age": "5"})
        peak = 0
        for i in range(3000):
            t = i * 2.0
            machine.feed(preflight(2 * i, API + f"/items/{i}", "PUT", "x-custom-header",
                                   started=t, allow=allow))
            machine.feed(put(2 * i + 1, t + 0.1, path=f"/items/{i}"))  # type: ignore[arg-type]
            peak = max(peak, machine.live_state)
        assert peak < 200

    def test_live_analysis_without_keeping_exchanges(self) -> None:
        analysis = Analysis("chromium", keep_exchanges=False)
        for i in range(50):
            analysis.feed(exchange(i, "GET", API + "/x", {"Origin": PAGE}, started=float(i),
                                   response_headers={}))
        analysis.flush()
        report = analysis.report()
        assert report.exchanges == () and analysis.settled == 50
        # 50 identical failures are one finding that counts them.
        [missing] = [f for f in report.findings if f.code == "MissingAllowOriginHeader"]
        assert missing.count == 50 and len(missing.exchange_ids) == 50


def test_insufficient_hit_erases_even_when_the_new_preflight_fails() -> None:
    """Chromium 156, scenario cache-erase-on-insufficient: X-A, X-B (refused), X-A: the third
    request needs a new preflight, because the lookup for X-B erased X-A's entry."""
    ok = dict(GOOD, **{"Access-Control-Allow-Headers": "x-a", "Access-Control-Max-Age": "600"})
    xs = [preflight(0, API + "/e", "PUT", "x-a", started=0.0, allow=ok),
          exchange(1, "PUT", API + "/e", {"Origin": PAGE, "X-A": "1"}, started=0.1,
                   response_headers=ACAO),
          preflight(2, API + "/e", "PUT", "x-b", started=1.0, allow=ok),
          exchange(3, "PUT", API + "/e", {"Origin": PAGE, "X-A": "1"}, started=2.0,
                   response_headers=ACAO)]
    v = by_id(analyze_exchanges(xs))
    assert v["e2"].cors_error == "HeaderDisallowedByPreflightResponse"
    assert v["e3"].cache is None  # no cached result left: its preflight is missing


def test_redirect_with_credentials_in_location() -> None:
    xs = [exchange(0, "GET", API + "/r", {"Origin": PAGE}, started=1.0, status=302,
                   response_headers={"Access-Control-Allow-Origin": PAGE,
                                     "Location": "http://user:secret@bar.other/t"})]
    report = analyze_exchanges(xs)
    v = by_id(report)["e0"]
    assert (v.verdict, v.cors_error) == ("blocked", "RedirectContainsCredentials")
    assert "RedirectContainsCredentials" in codes(report)


def test_actual_response_failure_after_a_good_preflight_is_its_own_finding() -> None:
    xs = [preflight(0, API + "/cors", "PUT", "x-custom-header", started=1.0,
                    allow=dict(GOOD, **{"Access-Control-Allow-Credentials": "true"})),
          put(1, 1.1, response_headers={})]
    report = analyze_exchanges(xs)
    v = by_id(report)["e1"]
    assert (v.verdict, v.cors_error, v.preflight_id) == ("blocked", "MissingAllowOriginHeader", "e0")
    [f] = [f for f in report.findings if f.code == "MissingAllowOriginHeader"]
    assert f.exchange_ids == ("e1",) and "Access-Control-Allow-Origin" in f.hint


def test_playwright_style_blocked_request_without_origin() -> None:
    """Playwright's HAR records a request Chromium blocked with status -1, no response and no
    Origin header; the Referer still names the page."""
    xs = [exchange(0, "PUT", API + "/x", {"Referer": PAGE + "/", "X-A": "1"}, started=1.0,
                   status=None, failure="net::ERR_FAILED", resource_type="fetch")]
    report = analyze_exchanges(xs)
    v = by_id(report)["e0"]
    assert (v.role, v.verdict, v.cors_error, v.origin) == ("preflighted", "blocked", None, PAGE)
    assert [f.code for f in report.findings if f.severity == "error"] == ["RequestBlocked"]
    assert any("preflight that is not in the capture" in n for n in report.notes)


def test_a_preflight_sent_after_the_request_was_answered_is_not_its_own() -> None:
    allow = dict(GOOD, **{"Access-Control-Max-Age": "1"})
    xs = [preflight(0, API + "/m", "PUT", "x-custom-header", started=0.0, allow=allow,
                    finished=0.01),
          put(1, 0.02, path="/m", finished=0.03),
          put(2, 1.5, path="/m", finished=1.51),  # expired, and its preflight is not captured
          preflight(3, API + "/m", "PUT", "x-custom-header", started=2.0, allow=allow,
                    finished=2.01),
          put(4, 2.02, path="/m", finished=2.03)]
    v = by_id(analyze_exchanges(xs))
    assert (v["e2"].cache, v["e2"].preflight_id) == (None, None)
    assert (v["e4"].cache, v["e4"].preflight_id) == ("miss", "e3")


def test_replace_headers_carries_every_other_field() -> None:
    import dataclasses

    from corsflow.model import Headers

    x = exchange(7, "PUT", API + "/a", {"Origin": PAGE, "X-A": "1"}, started=3.0,
                 failure="f", total_ms=5.0, resource_type="fetch", initiator_url="u")
    y = x.replace_headers(Headers(), None)
    for f in dataclasses.fields(x):
        if f.name not in ("request_headers", "response"):
            assert getattr(y, f.name) == getattr(x, f.name), f.name


class TestWhatRealBrowsersShowed:
    """Sessions where random differential runs against Chromium, Firefox and WebKit found
    the pairing or the credentials inference wrong (tests/browser/scenarios_random.py)."""

    def test_a_simple_request_does_not_take_a_preflight_that_failed_in_both_modes(self) -> None:
        # fetch 0: GET with an unsafe Accept-Language (preflighted; no Allow-Origin: blocked,
        # so no GET follows it); fetch 1: a plain GET, which needs no preflight.
        url = API + "/data"
        xs = [preflight(0, url, "GET", "accept-language", started=1.0, status=200),
              exchange(1, "GET", url, {"Origin": PAGE, "Accept-Language": "en"}, started=1.2,
                       response_headers=ACAO)]
        v = by_id(analyze_exchanges(xs))
        assert (v["e1"].role, v["e1"].verdict, v["e1"].preflight_id) == ("simple", "allowed",
                                                                          None)
        assert (v["e0"].verdict, v["e0"].cors_error) == ("blocked",
                                                         "PreflightMissingAllowOriginHeader")

    def test_a_simple_request_racing_a_preflighted_one_takes_no_preflight(self) -> None:
        # Two GETs started together: one with Range (safelisted), one with an unsafe
        # Accept-Language. Only the second was preflighted; the first went out beside it.
        url = API + "/data"
        allow = {**ACAO, "Access-Control-Allow-Headers": "accept-language"}
        xs = [preflight(0, url, "GET", "accept-language", started=1.0, allow=allow,
                        finished=1.01),
              exchange(1, "GET", url, {"Origin": PAGE, "Range": "bytes=0-"}, started=1.011,
                       response_headers=ACAO),
              exchange(2, "GET", url, {"Origin": PAGE, "Accept-Language": "en{"},
                       started=1.012, response_headers=ACAO)]
        v = by_id(analyze_exchanges(xs))
        assert (v["e1"].role, v["e1"].preflight_id) == ("simple", None)
        assert (v["e2"].role, v["e2"].preflight_id, v["e2"].cache) == ("preflighted", "e0",
                                                                       "miss")

    def test_the_request_takes_the_preflight_answered_last_before_it(self) -> None:
        # fetch 0: PUT credentialed, its preflight lacks Allow-Credentials: blocked, no PUT;
        # fetch 1: the same PUT uncredentialed, a new preflight passes and the PUT is sent.
        xs = [preflight(0, API + "/cors", "PUT", "x-custom-header", started=1.0, allow=GOOD,
                        finished=1.01),
              preflight(1, API + "/cors", "PUT", "x-custom-header", started=1.5, allow=GOOD,
                        finished=1.51),
              put(2, 1.52)]
        v = by_id(analyze_exchanges(xs))
        assert v["e2"].preflight_id == "e1"
        assert v["e1"].verdict == "allowed"
        # The one no request followed passes only without credentials: not proven blocked.
        assert v["e0"].verdict == "unknown"

    def test_a_preflight_sent_while_an_uncredentialed_result_was_cached_was_credentialed(
            self) -> None:
        # PUT omit: preflight (Max-Age 600, no Allow-Credentials) and PUT. PUT include: the
        # cached result does not serve it, a new preflight goes out and fails.
        allow = {**GOOD, "Access-Control-Max-Age": "600"}
        xs = [preflight(0, API + "/cors", "PUT", "x-custom-header", started=1.0, allow=allow),
              put(1, 1.1, response_headers=ACAO),
              preflight(2, API + "/cors", "PUT", "x-custom-header", started=2.0, allow=allow)]
        v = by_id(analyze_exchanges(xs))["e2"]
        assert (v.verdict, v.cors_error, v.redundant, v.credentials) == (
            "blocked", "PreflightInvalidAllowCredentials", False, "include")

    def test_a_hit_on_a_result_of_unknown_mode_does_not_claim_omit(self) -> None:
        # Credentialed PUTs whose responses lack Allow-Credentials: the capture cannot show
        # the mode, so the hit on the first one's result proves nothing about it either.
        allow = {**GOOD, "Access-Control-Allow-Credentials": "true",
                 "Access-Control-Max-Age": "600"}
        xs = [preflight(0, API + "/cors", "PUT", "x-custom-header", started=1.0, allow=allow),
              put(1, 1.1), put(2, 2.0)]
        v = by_id(analyze_exchanges(xs))["e2"]
        assert (v.cache, v.preflight_id, v.credentials) == ("hit", "e0", "unknown")
        assert not any("inferred 'omit'" in step.detail for step in v.trace)

    def test_a_hit_on_a_known_uncredentialed_result_is_omit(self) -> None:
        # The counterpart: the first PUT's response fails only with credentials and was
        # let through, so its result was uncredentialed, and so is every hit on it.
        allow = {**GOOD, "Access-Control-Max-Age": "600", "Access-Control-Allow-Origin": "*"}
        xs = [preflight(0, API + "/cors", "PUT", "x-custom-header", started=1.0, allow=allow),
              put(1, 1.1, response_headers={"Access-Control-Allow-Origin": "*"}),
              put(2, 2.0, response_headers={"Access-Control-Allow-Origin": "*"})]
        v = by_id(analyze_exchanges(xs))
        assert v["e1"].credentials == "omit"
        assert (v["e2"].cache, v["e2"].credentials) == ("hit", "omit")

    def test_a_lone_preflight_failing_differently_per_mode_names_both(self) -> None:
        # 403 with Allow-Origin *: without credentials the status fails, with them the
        # wildcard does; nothing in the capture tells the mode.
        xs = [preflight(0, API + "/cors", "PUT", "x-custom-header", started=1.0, status=403,
                        allow={**GOOD, "Access-Control-Allow-Origin": "*"})]
        v = by_id(analyze_exchanges(xs))["e0"]
        assert v.verdict == "blocked" and v.credentials == "unknown"
        step = next(s for s in v.trace if s.step == "Credentials mode")
        assert "PreflightWildcardOriginNotAllowed" in step.detail
        assert v.cors_error == "PreflightInvalidStatus"


@pytest.mark.parametrize(("status", "allow", "error", "shown"), [
    (403, GOOD, "PreflightInvalidStatus", "403"),
    (204, {**GOOD, "Access-Control-Allow-Methods": "PUT, (bad)"},
     "InvalidAllowMethodsPreflightResponse", "'PUT, (bad)'"),
    (204, {**GOOD, "Access-Control-Allow-Headers": "x b"},
     "InvalidAllowHeadersPreflightResponse", "'x b'"),
])
def test_errors_chromium_names_no_parameter_for_still_show_the_value(
        status: int, allow: dict[str, str], error: str, shown: str) -> None:
    """The report keeps Chromium's (absent) failed parameter; the message and the hint
    still name what the preflight got."""
    xs = [preflight(0, API + "/cors", "PUT", "x-custom-header", started=1.0, status=status,
                    allow=allow)]
    report = analyze_exchanges(xs)
    v = by_id(report)["e0"]
    assert (v.cors_error, v.failed_parameter) == (error, None)
    finding = next(f for f in report.findings if f.code == error)
    assert shown in finding.message and shown.strip("'") in finding.hint


def test_a_credentialed_preflight_erases_the_result_it_found_insufficient() -> None:
    # GET omit (preflighted, Max-Age 600), GET include: its preflight fails without
    # Allow-Credentials, and its lookup erased the uncredentialed result (Chromium), so the
    # next GET omit needs a preflight again: not a redundant one.
    url = API + "/data"
    allow = {**ACAO, "Access-Control-Allow-Headers": "x-a", "Access-Control-Max-Age": "600"}
    get = {"Origin": PAGE, "X-A": "1"}
    xs = [preflight(0, url, "GET", "x-a", started=1.0, allow=allow),
          exchange(1, "GET", url, get, started=1.1, response_headers=ACAO),
          preflight(2, url, "GET", "x-a", started=2.0, allow=allow),
          preflight(3, url, "GET", "x-a", started=3.0, allow=allow),
          exchange(4, "GET", url, get, started=3.1, response_headers=ACAO)]
    v = by_id(analyze_exchanges(xs))
    assert (v["e2"].verdict, v["e2"].credentials) == ("blocked", "include")
    assert (v["e3"].verdict, v["e3"].redundant) == ("allowed", False)
    assert v["e4"].preflight_id == "e3"


def _refused_on_two_urls(engine: str) -> dict[str, object]:
    """GET /1 and GET /2 with X-A (results cached 600 s, no Allow-Credentials), then a
    credentialed GET /2 whose preflight is refused, then GET /1 and GET /2 again (the
    browser scenario refused-preflight-clears)."""
    allow = {**ACAO, "Access-Control-Allow-Headers": "x-a", "Access-Control-Max-Age": "600"}
    get = {"Origin": PAGE, "X-A": "1"}
    one, two = API + "/1", API + "/2"
    xs = [preflight(0, one, "GET", "x-a", started=1.0, allow=allow),
          exchange(1, "GET", one, get, started=1.1, response_headers=ACAO),
          preflight(2, two, "GET", "x-a", started=2.0, allow=allow),
          exchange(3, "GET", two, get, started=2.1, response_headers=ACAO),
          preflight(4, two, "GET", "x-a", started=3.0, allow=allow),
          exchange(5, "GET", one, get, started=4.0, response_headers=ACAO),
          preflight(6, two, "GET", "x-a", started=5.0, allow=allow),
          exchange(7, "GET", two, get, started=5.1, response_headers=ACAO)]
    # A fresh Firefox session may ignore its first results: begin past its warm-up.
    return by_id(analyze_exchanges((warm_up(100, -20.0) if engine == "firefox" else []) + xs,
                                   engine))


@pytest.mark.parametrize("engine", ["chromium", "firefox", "webkit"])
def test_a_refused_credentialed_preflight_leaves_no_result_for_its_url(engine: str) -> None:
    # Chromium: the credentialed lookup erased it; Firefox: the failure dropped the URL's
    # results; WebKit: a preflight refused by its CORS check drops its URL's result.
    v = _refused_on_two_urls(engine)
    assert (v["e4"].verdict, v["e4"].cors_error) == ("blocked",
                                                     "PreflightInvalidAllowCredentials")
    assert (v["e5"].cache, v["e5"].preflight_id) == ("hit", "e0")  # /1 kept its result
    assert (v["e6"].redundant, v["e7"].preflight_id) == (False, "e6")


def test_webkit_keeps_the_result_when_the_refusal_comes_from_allow_headers() -> None:
    # Allow-Headers '*' covers X-A only without credentials: the credentialed preflight is
    # refused by the header check, which in WebKit leaves the uncredentialed result; the
    # next uncredentialed GET goes on it, not on the refused preflight.
    allow = {**ACAO, "Access-Control-Allow-Credentials": "true",
             "Access-Control-Allow-Headers": "*", "Access-Control-Max-Age": "600"}
    get = {"Origin": PAGE, "X-A": "1"}
    url = API + "/data"
    xs = [preflight(0, url, "GET", "x-a", started=1.0, allow=allow),
          exchange(1, "GET", url, get, started=1.1, response_headers=ACAO),
          preflight(2, url, "GET", "x-a", started=2.0, allow=allow),
          exchange(3, "GET", url, get, started=2.1, response_headers=ACAO)]
    v = by_id(analyze_exchanges(xs, "webkit"))
    assert (v["e2"].verdict, v["e2"].cors_error) == ("blocked",
                                                     "HeaderDisallowedByPreflightResponse")
    assert (v["e3"].cache, v["e3"].preflight_id, v["e3"].verdict) == ("hit", "e0", "allowed")


def test_a_failure_drops_results_once_not_again_when_it_settles() -> None:
    # Firefox: the refused credentialed preflight e2 dropped the URL's result when it came;
    # the result stored after it (e3) must survive e2's verdict, settled 30 s later.
    allow = {**ACAO, "Access-Control-Allow-Headers": "x-a", "Access-Control-Max-Age": "600"}
    get = {"Origin": PAGE, "X-A": "1"}
    url = API + "/data"
    xs = [preflight(0, url, "GET", "x-a", started=1.0, allow=allow),
          exchange(1, "GET", url, get, started=1.1, response_headers=ACAO),
          preflight(2, url, "GET", "x-a", started=2.0, allow=allow),
          preflight(3, url, "GET", "x-a", started=3.0, allow=allow),
          exchange(4, "GET", url, get, started=3.1, response_headers=ACAO),
          exchange(5, "GET", url, get, started=60.0, response_headers=ACAO)]
    v = by_id(analyze_exchanges(warm_up(100, -20.0) + xs, "firefox"))
    assert v["e2"].verdict == "blocked"
    assert (v["e5"].cache, v["e5"].preflight_id) == ("hit", "e3")


def test_a_sent_request_goes_on_the_cache_not_on_a_refused_preflight() -> None:
    # WebKit keeps a result when a preflight asking for more is refused by Allow-Headers
    # (cache-erase-on-insufficient): the next request asking for less went on that result,
    # not on the refused preflight, whose own request the browser blocked.
    allow = {**ACAO, "Access-Control-Allow-Methods": "PUT", "Access-Control-Allow-Headers": "x-a",
             "Access-Control-Max-Age": "600"}
    url = API + "/data"
    xs = [preflight(0, url, "PUT", "x-a", started=1.0, allow=allow),
          exchange(1, "PUT", url, {"Origin": PAGE, "X-A": "1"}, started=1.1,
                   response_headers=ACAO),
          preflight(2, url, "PUT", "x-a, x-b", started=2.0, allow=allow),
          exchange(3, "PUT", url, {"Origin": PAGE, "X-A": "1"}, started=2.5,
                   response_headers=ACAO)]
    v = by_id(analyze_exchanges(xs, "webkit"))
    assert (v["e2"].verdict, v["e2"].cors_error) == ("blocked",
                                                     "HeaderDisallowedByPreflightResponse")
    assert (v["e3"].cache, v["e3"].preflight_id, v["e3"].verdict) == ("hit", "e0", "allowed")
    # Chromium erased that result when it looked the wider request up: nothing covers the
    # PUT, so it went on the refused preflight, which the model cannot explain: said so.
    c = by_id(analyze_exchanges(xs, "chromium"))["e3"]
    assert (c.preflight_id, c.verdict, c.unknown_reason) == ("e2", "unknown",
                                                             MODEL_CONTRADICTED)


def _on(source: str, ex: object, **browser: object) -> object:
    """``ex`` as read from a ``source`` capture, with what the browser logged about it."""
    from dataclasses import replace

    from corsflow.model import BrowserDecision, ProducerHints, SourceRef

    e = ex  # type: ignore[assignment]
    hints = ProducerHints(browser=BrowserDecision(**browser)) if browser else e.hints  # type: ignore[attr-defined]
    return replace(e, source=SourceRef(f"t.{source}", source, 0, "0"),  # type: ignore[type-var]
                   hints=hints)


def test_on_the_wire_a_request_never_takes_a_preflight_sent_after_it() -> None:
    # A PUT the cache covers goes out at once; a credentialed PUT started beside it misses
    # and sends a preflight a moment later. Only a HAR dates a request before its preflight.
    allow = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "PUT",
             "Access-Control-Allow-Headers": "*", "Access-Control-Max-Age": "600"}
    star = {"Access-Control-Allow-Origin": "*"}
    xs = [preflight(0, API + "/cors", "PUT", "x-custom-header", started=1.0, allow=allow),
          put(1, 1.1, response_headers=star),
          put(2, 5.0, response_headers=star, finished=5.05),
          preflight(3, API + "/cors", "PUT", "x-custom-header", started=5.001, allow=allow)]
    v = by_id(analyze_exchanges([_on("pcap", x) for x in xs]))
    assert (v["e2"].cache, v["e2"].preflight_id) == ("hit", "e0")


def test_a_netlog_pairs_as_the_browser_linked() -> None:
    # Two identical preflights in flight together; Chromium's log links each request to
    # its own, which timing alone would pair the other way round.
    xs = [preflight(0, API + "/cors", "PUT", "x-custom-header", started=1.0, allow=GOOD,
                    finished=1.02),
          preflight(1, API + "/cors", "PUT", "x-custom-header", started=1.001, allow=GOOD,
                    finished=1.03),
          put(2, 1.031), put(3, 1.032)]
    xs = [_on("netlog", xs[0]), _on("netlog", xs[1]),
          _on("netlog", xs[2], preflight_id="e0", cache="miss"),
          _on("netlog", xs[3], preflight_id="e1", cache="miss")]
    v = by_id(analyze_exchanges(xs))
    assert (v["e2"].preflight_id, v["e3"].preflight_id) == ("e0", "e1")
    assert not [f for f in analyze_exchanges(xs).findings if f.code == "ModelDisagreement"]


@pytest.mark.parametrize("engine", ["chromium", "firefox"])
def test_a_request_that_found_the_result_before_a_sibling_erased_it_is_a_hit(
        engine: str) -> None:
    # Two PUTs started together on a cached URL: one asks for X-A (covered), one for X-A and
    # X-B (not: Chromium's lookup erases the result, Firefox drops it when the preflight
    # is refused). That preflight reaches the wire 3 ms before the covered PUT, which had
    # found the result already (a pcap: the PUT went out before that preflight's answer).
    allow = {**ACAO, "Access-Control-Allow-Methods": "PUT", "Access-Control-Allow-Headers": "x-a",
             "Access-Control-Max-Age": "600"}
    url = API + "/data"
    put_a = {"Origin": PAGE, "X-A": "1"}
    xs = [preflight(0, url, "PUT", "x-a", started=1.0, allow=allow),
          exchange(1, "PUT", url, put_a, started=1.1, response_headers=ACAO),
          preflight(2, url, "PUT", "x-a, x-b", started=5.0, allow=allow, finished=5.01),
          exchange(3, "PUT", url, put_a, started=5.003, response_headers=ACAO),
          # Long after: the result is gone, a new preflight is needed.
          preflight(4, url, "PUT", "x-a", started=9.0, allow=allow, finished=9.01),
          exchange(5, "PUT", url, put_a, started=9.1, response_headers=ACAO)]
    warm = warm_up(100, -20.0) if engine == "firefox" else []
    v = by_id(analyze_exchanges([_on("pcap", x) for x in warm + xs], engine))
    assert (v["e3"].cache, v["e3"].preflight_id, v["e3"].verdict) == ("hit", "e0", "allowed")
    assert (v["e4"].redundant, v["e5"].preflight_id) == (False, "e4")


@pytest.mark.parametrize(("first_answered", "second"), [
    # Started together: the first PUT is still waiting for its answer when the second
    # fetch's preflight goes out, 5 ms after the first's result was stored, having looked
    # the cache up before that; the second PUT follows its preflight. That preflight was
    # neither credentialed (as the cache alone would say) nor surely redundant.
    (1.05, ("allowed", "omit", None)),
    # One after the other: the first PUT was answered before the second fetch's preflight
    # went out, so that fetch looked the cache up after the store: its preflight was
    # credentialed (no request follows it), fails without Allow-Credentials, was needed.
    (1.007, ("blocked", "include", False)),
])
def test_a_preflight_sent_just_after_a_result_was_stored(
        first_answered: float, second: tuple[str, str, bool | None]) -> None:
    allow = {**GOOD, "Access-Control-Max-Age": "600"}
    xs = [preflight(0, API + "/cors", "PUT", "x-custom-header", started=1.0, allow=allow,
                    finished=1.004),
          put(1, 1.005, finished=first_answered),
          preflight(2, API + "/cors", "PUT", "x-custom-header", started=1.009, allow=allow,
                    finished=1.012)]
    if second[0] == "allowed":
        xs.append(put(3, 1.013, finished=1.06))
    v = by_id(analyze_exchanges([_on("pcap", x) for x in xs]))["e2"]
    assert (v.verdict, v.credentials, v.redundant) == second
    assert any("ms before this preflight was sent" in s.detail for s in v.trace) == (
        second[2] is None)


def test_a_racing_sibling_may_have_erased_the_result_first() -> None:
    # A result is cached; then an uncredentialed and a credentialed PUT start together. In
    # Chromium the credentialed lookup erases the uncredentialed result, so the other PUT's
    # preflight may have found nothing: the two identical preflights 1 ms apart prove
    # neither redundancy nor credentials.
    allow = {**GOOD, "Access-Control-Max-Age": "600"}
    xs = [preflight(0, API + "/cors", "PUT", "x-custom-header", started=1.0, allow=allow,
                    finished=1.004),
          put(1, 1.005, finished=1.01),
          preflight(2, API + "/cors", "PUT", "x-custom-header", started=3.0, allow=allow,
                    finished=3.004),
          preflight(3, API + "/cors", "PUT", "x-custom-header", started=3.001, allow=allow,
                    finished=3.005),
          put(4, 3.006, finished=3.05)]
    v = by_id(analyze_exchanges([_on("pcap", x) for x in xs]))
    assert [v[i].redundant for i in ("e2", "e3")] == [None, None]
    assert any("within 100 ms of it" in s.detail for s in v["e2"].trace)
    assert v["e4"].verdict == "allowed" and v["e4"].cache == "miss"
