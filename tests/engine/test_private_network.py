"""Private Network Access preflights (Access-Control-Request-Private-Network): Chromium's
check of Access-Control-Allow-Private-Network, its place among the checks, warning mode."""

from __future__ import annotations

from corsflow.analysis import analyze_exchanges
from corsflow.engine.fetch import preflight_check
from corsflow.engine.profiles import get_profile
from tests.factories import API, PAGE, exchange, preflight

ARPN = {"Access-Control-Request-Private-Network": "true"}
GOOD = {"Access-Control-Allow-Origin": PAGE, "Access-Control-Allow-Methods": "PUT",
        "Access-Control-Allow-Headers": "x-custom-header"}
CHROMIUM = get_profile("chromium")


def check(headers: dict[str, str], status: int = 204, private_network: bool = True) -> object:
    got = {k.lower(): (v,) for k, v in headers.items()}
    return preflight_check(status, got, PAGE, "PUT", ("x-custom-header",), False, CHROMIUM,
                           private_network).check


def test_missing_and_invalid_allow_private_network() -> None:
    assert check(GOOD).error == "PreflightMissingAllowPrivateNetwork"  # type: ignore[attr-defined]
    bad = check({**GOOD, "Access-Control-Allow-Private-Network": "TRUE"})
    assert (bad.error, bad.failed_parameter) == (  # type: ignore[attr-defined]
        "PreflightInvalidAllowPrivateNetwork", "TRUE")
    assert check({**GOOD, "Access-Control-Allow-Private-Network": "true"}).ok  # type: ignore[attr-defined]
    # Not a private network preflight: the header is not looked at.
    assert check(GOOD, private_network=False).ok  # type: ignore[attr-defined]


def test_checked_after_the_cors_check_and_status_before_methods() -> None:
    # Chromium's order (preflight_controller.cc): CORS check and status, then the
    # private-network header, then Allow-Methods and Allow-Headers.
    assert check({}).error == "PreflightMissingAllowOriginHeader"  # type: ignore[attr-defined]
    assert check(GOOD, status=500).error == "PreflightInvalidStatus"  # type: ignore[attr-defined]
    no_method = {"Access-Control-Allow-Origin": PAGE}
    assert check(no_method).error == "PreflightMissingAllowPrivateNetwork"  # type: ignore[attr-defined]
    assert check({**no_method, "Access-Control-Allow-Private-Network": "true"}).error == (  # type: ignore[attr-defined]
        "MethodDisallowedByPreflightResponse")


def test_blocked_request_after_a_failing_private_network_preflight() -> None:
    report = analyze_exchanges([
        preflight(0, API + "/dev", "PUT", "x-custom-header", started=1.0, allow=GOOD,
                  request_extra=ARPN),
        exchange(1, "PUT", API + "/dev", {"Origin": PAGE, "X-Custom-Header": "1"},
                 started=1.1, status=None, failure="net::ERR_FAILED")])
    by = {v.exchange.id: v for v in report.exchanges}
    assert (by["e0"].verdict, by["e0"].cors_error) == (
        "blocked", "PreflightMissingAllowPrivateNetwork")
    assert by["e0"].private_network
    finding = next(f for f in report.findings if f.code == "PreflightMissingAllowPrivateNetwork")
    assert finding.severity == "error"
    assert finding.hint and "Access-Control-Allow-Private-Network: true" in finding.hint
    # Never a credentials failure, never advice to loosen Allow-Origin.
    assert not [f for f in report.findings if "Credentials" in f.code or "Wildcard" in f.code]


def test_request_sent_anyway_is_warning_mode_not_an_error() -> None:
    report = analyze_exchanges([
        preflight(0, API + "/dev", "PUT", "x-custom-header", started=1.0, allow=GOOD,
                  request_extra=ARPN),
        exchange(1, "PUT", API + "/dev", {"Origin": PAGE, "X-Custom-Header": "1"},
                 started=1.1, response_headers={"Access-Control-Allow-Origin": PAGE})])
    by = {v.exchange.id: v for v in report.exchanges}
    assert (by["e0"].verdict, by["e1"].verdict) == ("allowed", "allowed")
    assert by["e0"].private_network_warning == "PreflightMissingAllowPrivateNetwork"
    codes = {f.code: f.severity for f in report.findings}
    assert codes.get("PrivateNetworkAccessWarning") == "warning"
    assert "error" not in codes.values() and "ModelDisagreement" not in codes


def test_lone_private_network_preflight_with_wildcard_is_not_a_credentials_error() -> None:
    # A PNA preflight for a no-cors load (an image from a router): the load itself is not a
    # CORS request, so nothing pairs with the preflight. ACAO '*' then fails only for
    # credentialed requests, which the capture cannot tell.
    report = analyze_exchanges([
        preflight(0, API + "/logo.png", "GET", started=1.0, request_extra=ARPN,
                  allow={"Access-Control-Allow-Origin": "*",
                         "Access-Control-Allow-Private-Network": "true"}),
        exchange(1, "GET", API + "/logo.png", {"Sec-Fetch-Mode": "no-cors"}, started=1.1)])
    assert not [f for f in report.findings if f.severity == "error"]
    assert report.exchanges[0].verdict in ("unknown", "allowed")
