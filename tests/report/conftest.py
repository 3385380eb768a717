"""Reports built by hand from engine events, shaped like what the engine concludes about a
real session: two page origins calling one API, a preflight that authorises a request and
a later cache hit, per-URL preflights, a redundant preflight sent with DevTools' cache
disabled, a blocked DELETE whose preflight got a 404 without CORS headers, a clamped
Max-Age, and a hostile variant whose capture values try to inject markup."""

from __future__ import annotations

import pytest

from corsflow.analysis import Report, SourceInfo
from corsflow.engine.events import ExchangeVerdict, Finding, MaxAge, TraceStep
from corsflow.errors import Skipped
from corsflow.model import Exchange, Headers, Response, SourceRef, Timings

T0 = 1_763_770_000.0  # 2025-11-22 00:06:40 UTC
APP = "https://app.example.com"
ADMIN = "https://admin.example.org"
API = "https://api.example.net"
SOURCE = "captures/session.har"


def _ex(
    n: int,
    method: str,
    url: str,
    at: float,
    headers: list[tuple[str, str]],
    status: int | None,
    response_headers: list[tuple[str, str]] = (),  # type: ignore[assignment]
    total: float | None = 50.0,
    failure: str | None = None,
    source: str = SOURCE,
) -> Exchange:
    response = None if status is None else Response(status, Headers.of(response_headers))
    return Exchange(
        id=f"e{n}",
        method=method,
        url=url,
        request_headers=Headers.of(headers),
        started=T0 + at,
        source=SourceRef(source, "har", n, f"entry {n}"),
        response=response,
        failure=failure,
        timings=Timings(wait=None if total is None else total * 0.8, total=total),
    )


def _preflight_headers(origin: str, method: str, headers: str | None) -> list[tuple[str, str]]:
    h = [("Origin", origin), ("Access-Control-Request-Method", method)]
    if headers:
        h.append(("Access-Control-Request-Headers", headers))
    return h


PASS_TRACE = (
    TraceStep(
        "CORS check: Access-Control-Allow-Origin",
        "pass",
        f"'{APP}' == request origin '{APP}'",
        "#cors-check",
    ),
    TraceStep(
        "CORS-preflight fetch: status", "pass", "204 is an ok status", "#cors-preflight-fetch"
    ),
    TraceStep(
        "CORS-preflight fetch: methods",
        "pass",
        "PUT in Access-Control-Allow-Methods",
        "#cors-preflight-fetch",
    ),
    TraceStep(
        "CORS-preflight fetch: headers",
        "pass",
        "content-type, x-api-key in Access-Control-Allow-Headers",
        "#cors-preflight-fetch",
    ),
)
FAIL_TRACE = (
    TraceStep(
        "CORS check: Access-Control-Allow-Origin",
        "fail",
        "header absent on the preflight response (status 404)",
        "#cors-check",
    ),
)


def build_report() -> Report:
    """The realistic report most report tests render."""
    allow = [
        ("Access-Control-Allow-Origin", APP),
        ("Access-Control-Allow-Methods", "GET, PUT"),
        ("Access-Control-Allow-Headers", "content-type, x-api-key"),
    ]
    item42 = f"{API}/v1/items/42"
    item43 = f"{API}/v1/items/43"
    admin_user = f"{API}/v1/admin/users/7f3c2a10-5b1e-4c2d-9a8f-0e1d2c3b4a59"
    v = [
        ExchangeVerdict(_ex(0, "GET", f"{APP}/", 0.0, [], 200, total=300.0), "other", None, None),
        ExchangeVerdict(
            _ex(
                1,
                "OPTIONS",
                item42,
                1.0,
                _preflight_headers(APP, "PUT", "content-type,x-api-key"),
                204,
                allow + [("Access-Control-Max-Age", "600")],
                total=120.0,
            ),
            "preflight",
            APP,
            "allowed",
            redundant=False,
            max_age=MaxAge("600", 600, 600.0, False),
            trace=PASS_TRACE,
        ),
        ExchangeVerdict(
            _ex(
                2,
                "PUT",
                item42,
                1.13,
                [("Origin", APP), ("Content-Type", "application/json"), ("X-Api-Key", "k")],
                200,
                [("Access-Control-Allow-Origin", APP)],
                total=80.0,
            ),
            "preflighted",
            APP,
            "allowed",
            preflight_id="e1",
            cache="miss",
            credentials="omit",
            unsafe_headers=("content-type", "x-api-key"),
            preflight_reasons=("method PUT", "header x-api-key", "Content-Type application/json"),
        ),
        ExchangeVerdict(
            _ex(
                3,
                "GET",
                f"{API}/v1/feed?page=2",
                2.0,
                [("Origin", APP)],
                200,
                [("Access-Control-Allow-Origin", "*")],
                total=60.0,
            ),
            "simple",
            APP,
            "allowed",
            credentials="omit",
        ),
        ExchangeVerdict(
            _ex(
                4,
                "PUT",
                item42,
                12.0,
                [("Origin", APP), ("Content-Type", "application/json"), ("X-Api-Key", "k")],
                200,
                [("Access-Control-Allow-Origin", APP)],
                total=75.0,
            ),
            "preflighted",
            APP,
            "allowed",
            preflight_id="e1",
            cache="hit",
            credentials="omit",
            unsafe_headers=("content-type", "x-api-key"),
            preflight_reasons=("method PUT", "header x-api-key", "Content-Type application/json"),
        ),
        ExchangeVerdict(
            _ex(
                5,
                "OPTIONS",
                item43,
                13.0,
                _preflight_headers(APP, "PUT", "content-type,x-api-key"),
                204,
                allow,
                total=110.0,
            ),
            "preflight",
            APP,
            "allowed",
            redundant=False,
            max_age=MaxAge(None, None, 5.0, False, "missing"),
            trace=PASS_TRACE,
        ),
        ExchangeVerdict(
            _ex(
                6,
                "PUT",
                item43,
                13.12,
                [("Origin", APP), ("Content-Type", "application/json")],
                200,
                [("Access-Control-Allow-Origin", APP)],
                total=70.0,
            ),
            "preflighted",
            APP,
            "allowed",
            preflight_id="e5",
            cache="miss",
            credentials="omit",
            unsafe_headers=("content-type",),
            preflight_reasons=("method PUT",),
        ),
        ExchangeVerdict(
            _ex(
                7,
                "OPTIONS",
                item43,
                15.0,
                _preflight_headers(APP, "PUT", "content-type") + [("Pragma", "no-cache")],
                204,
                allow,
                total=105.0,
            ),
            "preflight",
            APP,
            "allowed",
            redundant=True,
            redundant_cause="devtools-disable-cache",
            max_age=MaxAge(None, None, 5.0, False, "missing"),
            trace=PASS_TRACE,
        ),
        ExchangeVerdict(
            _ex(
                8,
                "PUT",
                item43,
                15.11,
                [("Origin", APP), ("Content-Type", "application/json")],
                200,
                [("Access-Control-Allow-Origin", APP)],
                total=65.0,
            ),
            "preflighted",
            APP,
            "allowed",
            preflight_id="e7",
            cache="miss",
            credentials="omit",
            unsafe_headers=("content-type",),
            preflight_reasons=("method PUT",),
        ),
        ExchangeVerdict(
            _ex(
                9,
                "OPTIONS",
                admin_user,
                20.0,
                _preflight_headers(ADMIN, "DELETE", None),
                404,
                [("Content-Type", "text/html")],
                total=140.0,
            ),
            "preflight",
            ADMIN,
            "blocked",
            cors_error="PreflightMissingAllowOriginHeader",
            redundant=False,
            max_age=MaxAge(None, None, 0.0, False, "missing"),
            trace=FAIL_TRACE,
        ),
        ExchangeVerdict(
            _ex(
                10,
                "DELETE",
                admin_user,
                20.14,
                [("Origin", ADMIN)],
                None,
                total=None,
                failure="net::ERR_FAILED",
            ),
            "preflighted",
            ADMIN,
            "blocked",
            cors_error="PreflightMissingAllowOriginHeader",
            preflight_id="e9",
            cache="miss",
            credentials="include",
            preflight_reasons=("method DELETE",),
            trace=FAIL_TRACE,
        ),
        ExchangeVerdict(
            _ex(
                11,
                "OPTIONS",
                f"{API}/v1/admin/audit",
                25.0,
                _preflight_headers(ADMIN, "POST", "content-type"),
                204,
                [
                    ("Access-Control-Allow-Origin", ADMIN),
                    ("Access-Control-Allow-Credentials", "true"),
                    ("Access-Control-Allow-Methods", "POST"),
                    ("Access-Control-Allow-Headers", "content-type"),
                    ("Access-Control-Max-Age", "86400"),
                ],
                total=90.0,
            ),
            "preflight",
            ADMIN,
            "allowed",
            redundant=False,
            max_age=MaxAge("86400", 86400, 7200.0, True, "above-cap"),
            trace=PASS_TRACE,
        ),
        ExchangeVerdict(
            _ex(
                12,
                "POST",
                f"{API}/v1/admin/audit",
                25.1,
                [("Origin", ADMIN), ("Content-Type", "application/json")],
                201,
                [
                    ("Access-Control-Allow-Origin", ADMIN),
                    ("Access-Control-Allow-Credentials", "true"),
                ],
                total=85.0,
            ),
            "preflighted",
            ADMIN,
            "allowed",
            preflight_id="e11",
            cache="miss",
            credentials="include",
            unsafe_headers=("content-type",),
            preflight_reasons=("Content-Type application/json",),
        ),
    ]
    findings = (
        Finding(
            "PreflightMissingAllowOriginHeader",
            "error",
            "DELETE /v1/admin/users/{id} from https://admin.example.org was blocked: the preflight "
            "response (404) has no Access-Control-Allow-Origin",
            ("e9", "e10"),
            hint="Answer OPTIONS /v1/admin/users/{id} with 2xx and Access-Control-Allow-Origin: "
            "https://admin.example.org, Access-Control-Allow-Methods: DELETE",
            origin=ADMIN,
            url=admin_user,
            spec="https://fetch.spec.whatwg.org/#cors-check",
            count=1,
        ),
        Finding(
            "RedundantPreflight",
            "warning",
            "A preflight was sent although a cached result covered the request",
            ("e7",),
            hint="The preflight carries Pragma: no-cache: DevTools' 'Disable cache' was on",
            origin=APP,
            url=item43,
            count=1,
        ),
        Finding(
            "MaxAgeMissing",
            "warning",
            "Preflight responses for /v1/items/{id} send no Access-Control-Max-Age (cached 5 s)",
            ("e5", "e7"),
            hint="Send Access-Control-Max-Age: 7200 on OPTIONS /v1/items/{id}",
            origin=APP,
            url=item43,
            count=2,
        ),
        Finding(
            "AvoidablePreflight",
            "info",
            "Another preflight for /v1/items/{id} (a different item): Chromium caches "
            "preflights per URL",
            ("e5",),
            hint="Address items in the query or body, or accept one preflight per item",
            origin=APP,
            url=item43,
            count=1,
        ),
        Finding(
            "MaxAgeAboveCap",
            "info",
            "Access-Control-Max-Age 86400 is above Chromium's cap; it is used as 7200 s",
            ("e11",),
            origin=ADMIN,
            url=f"{API}/v1/admin/audit",
            count=1,
        ),
    )
    return Report(
        engine="chromium",
        sources=(SourceInfo(SOURCE, "har", exchanges=13, skipped=1),),
        exchanges=tuple(v),
        findings=findings,
        skipped=(Skipped(SOURCE, "entry 13", "request has no URL"),),
        skipped_by_reason=(("request has no URL", 1),),
        notes=("Preflights marked Pragma: no-cache suggest DevTools' 'Disable cache' was on",),
    )


EVIL = '<script>alert("x")</script>\'"&|`*'
EVIL_URL = (
    "https://api.example.net/q/<script>alert(1)</script>/$x^{$?a=\"'&b=<img src=x onerror=alert(2)>"
)


def build_hostile_report() -> Report:
    """Capture values that are markup: a page must show them, never run them."""
    origin = 'https://evil.example"><script>alert(3)</script>$\\frac{$'
    pf = ExchangeVerdict(
        _ex(
            0,
            "OPTIONS",
            EVIL_URL,
            0.0,
            _preflight_headers(origin, "PUT", EVIL),
            200,
            [("Access-Control-Allow-Origin", EVIL)],
            total=30.0,
        ),
        "preflight",
        origin,
        "blocked",
        cors_error="PreflightAllowOriginMismatch",
        failed_parameter=EVIL,
        redundant=False,
        max_age=MaxAge(EVIL, None, 5.0, False, "invalid"),
        trace=(
            TraceStep(
                "CORS check: Access-Control-Allow-Origin",
                "fail",
                f"{EVIL!r} != request origin {origin!r}",
                "#cors-check",
            ),
        ),
    )
    req = ExchangeVerdict(
        _ex(
            1,
            EVIL,
            EVIL_URL,
            0.1,
            [("Origin", origin), ("X-Evil", EVIL)],
            None,
            total=None,
            failure=EVIL,
        ),
        "preflighted",
        origin,
        "blocked",
        cors_error="PreflightAllowOriginMismatch",
        failed_parameter=EVIL,
        preflight_id="e0",
        cache="miss",
        unsafe_headers=("x-evil",),
        preflight_reasons=(f"header {EVIL}",),
        trace=pf.trace,
    )
    return Report(
        engine="chromium",
        sources=(SourceInfo(f"caps/{EVIL}.har", "har", 2, 0),),
        exchanges=(pf, req),
        findings=(
            Finding(
                "PreflightAllowOriginMismatch",
                "error",
                f"blocked: {EVIL}",
                ("e0", "e1"),
                hint=f"Send Access-Control-Allow-Origin: {EVIL}",
                origin=origin,
                url=EVIL_URL,
            ),
        ),
        skipped=(Skipped(f"caps/{EVIL}.har", f"entry {EVIL}", EVIL),),
        skipped_by_reason=((EVIL, 1),),
        notes=(EVIL,),
    )


def empty_report() -> Report:
    return Report(
        engine="firefox", sources=(SourceInfo("empty.har", "har"),), exchanges=(), findings=()
    )


@pytest.fixture
def report() -> Report:
    return build_report()


@pytest.fixture
def hostile_report() -> Report:
    return build_hostile_report()


@pytest.fixture
def empty() -> Report:
    return empty_report()
