"""corsflow.engine.infer: reading the author's request back out of what the browser sent."""

from __future__ import annotations

import pytest

from corsflow.engine.infer import (
    RequestView,
    author_headers,
    has_cache_bypass,
    preflight_reasons,
    split_header_names,
    view_request,
)
from corsflow.engine.profiles import CHROMIUM, FIREFOX, WEBKIT, EngineProfile
from corsflow.model import Headers
from tests.factories import exchange, preflight

PAGE = "https://app.example"
API = "https://api.example/v1/items"

# What Chromium adds to a cross-origin fetch() on its own (HTTP/2 capture, DevTools'
# "Disable cache" ticked): none of it is the author's.
BROWSER_ADDED = [
    (":authority", "api.example"), (":method", "PUT"), (":path", "/v1/items"),
    (":scheme", "https"),
    ("accept", "*/*"),
    ("accept-encoding", "gzip, deflate, br, zstd"),
    ("accept-language", "en-US,en;q=0.9"),
    ("cache-control", "no-cache"),
    ("pragma", "no-cache"),
    ("cookie", "session=abc"),
    ("origin", PAGE),
    ("priority", "u=1, i"),
    ("referer", PAGE + "/"),
    ("sec-ch-ua", '"Chromium";v="156", "Not.A/Brand";v="99"'),
    ("sec-ch-ua-mobile", "?0"),
    ("sec-ch-ua-platform", '"Linux"'),
    ("sec-fetch-dest", "empty"),
    ("sec-fetch-mode", "cors"),
    ("sec-fetch-site", "same-site"),
    ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0 Safari/537.36"),
    ("connection", "keep-alive"),
    ("host", "api.example"),
    ("content-length", "17"),
]
AUTHOR = [
    ("X-Requested-With", "XMLHttpRequest"),
    ("Authorization", "Bearer t0k3n"),
    ("Content-Type", "application/json"),
]


def view(method: str, url: str, headers: list[tuple[str, str]] | dict[str, str], *,
         profile: EngineProfile = CHROMIUM, resource_type: str | None = None) -> RequestView:
    ex = exchange(1, method, url, headers, started=1000.0, resource_type=resource_type)
    return view_request(ex, profile)


# --- role classification -------------------------------------------------------------------


def test_preflight_needs_options_origin_and_request_method() -> None:
    ex = preflight(1, API, "PUT", "X-Custom, content-type", origin=PAGE, started=1.0)
    v = view_request(ex, CHROMIUM)
    assert v.preflight and v.cors
    assert v.origin == PAGE
    assert v.requested_method == "PUT"
    assert v.requested_headers == ("x-custom", "content-type")  # lower-cased, in order
    assert v.not_cors_reason is None
    assert v.unsafe_names == () and v.preflight_reasons == ()
    assert v.credentials == "unknown"
    assert "never carries credentials" in v.credentials_evidence


def test_preflight_request_method_is_trimmed_and_headers_may_be_absent() -> None:
    v = view("OPTIONS", API, {"Origin": PAGE, "Access-Control-Request-Method": " DELETE "})
    assert v.preflight and v.requested_method == "DELETE" and v.requested_headers == ()


def test_options_without_request_method_is_an_actual_cors_request() -> None:
    v = view("OPTIONS", API, {"Origin": PAGE})
    assert v.cors and not v.preflight
    assert v.requested_method is None
    assert v.preflight_reasons == ("method OPTIONS",)


def test_options_with_request_method_but_no_origin_is_not_cors() -> None:
    v = view("OPTIONS", API, {"Access-Control-Request-Method": "PUT"})
    assert not v.cors and not v.preflight
    assert v.not_cors_reason == "no Origin header"


def test_no_origin_is_not_cors() -> None:
    v = view("GET", API, {"Accept": "*/*", "X-Custom": "1"})
    assert (v.cors, v.preflight, v.origin) == (False, False, None)
    assert v.not_cors_reason == "no Origin header"
    assert v.unsafe_names == () and v.preflight_reasons == ()


@pytest.mark.parametrize("mode", ["navigate", "no-cors", "websocket", "same-origin",
                                  "NAVIGATE", "nested-navigate"])
def test_sec_fetch_mode_not_cors(mode: str) -> None:
    v = view("POST", API, {"Origin": PAGE, "Sec-Fetch-Mode": mode, "X-Custom": "1"})
    assert not v.cors
    assert v.not_cors_reason == f"Sec-Fetch-Mode is {mode.lower()!r}"
    assert v.unsafe_names == ()


def test_sec_fetch_mode_cors_is_cors() -> None:
    v = view("POST", API, {"Origin": PAGE, "Sec-Fetch-Mode": "cors"})
    assert v.cors and v.not_cors_reason is None


@pytest.mark.parametrize("resource_type", ["document", "Document", "iframe", "websocket"])
def test_resource_type_not_cors(resource_type: str) -> None:
    v = view("POST", API, {"Origin": PAGE}, resource_type=resource_type)
    assert not v.cors
    assert v.not_cors_reason == f"a {resource_type.lower()} request"


@pytest.mark.parametrize("resource_type", ["fetch", "xhr", None])
def test_resource_type_cors(resource_type: str | None) -> None:
    assert view("POST", API, {"Origin": PAGE}, resource_type=resource_type).cors


def test_websocket_upgrade_is_not_cors() -> None:
    v = view("GET", "wss://api.example/socket", {
        "Origin": PAGE, "Upgrade": "WebSocket", "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"})
    assert not v.cors
    assert "WebSocket" in (v.not_cors_reason or "")


@pytest.mark.parametrize(
    ("origin", "url"),
    [
        (PAGE, PAGE + "/api"),
        (PAGE, "https://app.example:443/api"),
        ("http://localhost:3000", "http://localhost:3000/x"),
        (PAGE, "https://APP.example/api"),
    ],
)
def test_same_origin_is_not_cors(origin: str, url: str) -> None:
    v = view("PUT", url, {"Origin": origin, "Content-Type": "application/json"})
    assert not v.cors
    assert v.not_cors_reason == "same-origin"


@pytest.mark.parametrize(
    "url",
    ["http://app.example/api", "https://app.example:8443/api", "https://api.app.example/",
     "http://localhost:3001/x"],
)
def test_cross_origin_is_cors(url: str) -> None:
    v = view("GET", url, {"Origin": PAGE})
    assert v.cors and not v.preflight


def test_null_origin_is_cross_origin() -> None:
    v = view("GET", API, {"Origin": "null"})
    assert v.cors and v.origin == "null"


# --- author headers --------------------------------------------------------------------------


def test_author_headers_drop_browser_added_ones() -> None:
    headers = Headers.of(BROWSER_ADDED + AUTHOR)
    assert author_headers(headers, cache_bypass=True) == (
        ("accept", "*/*"),
        ("accept-language", "en-US,en;q=0.9"),
        ("X-Requested-With", "XMLHttpRequest"),
        ("Authorization", "Bearer t0k3n"),
        ("Content-Type", "application/json"),
    )


def test_devtools_no_cache_pair_is_the_browsers() -> None:
    headers = Headers.of([("Pragma", "no-cache"), ("Cache-Control", "no-cache")])
    assert has_cache_bypass(headers)
    assert author_headers(headers, cache_bypass=True) == ()


@pytest.mark.parametrize(
    "pairs",
    [
        [("Pragma", "no-cache")],  # one of the pair alone is an author's header
        [("Cache-Control", "no-cache")],
        [("Cache-Control", "max-age=0"), ("Pragma", "no-cache")],
        [("Cache-Control", "no-store")],
    ],
)
def test_cache_headers_without_the_pair_are_the_authors(pairs: list[tuple[str, str]]) -> None:
    headers = Headers.of(pairs)
    assert not has_cache_bypass(headers)
    assert author_headers(headers, cache_bypass=False) == tuple(pairs)
    v = view("GET", API, [("Origin", PAGE)] + pairs)
    assert v.cache_bypass is False
    assert v.unsafe_names == tuple(sorted({n.lower() for n, _ in pairs}))


def test_method_override_kept_unless_forbidden() -> None:
    kept = author_headers(Headers.of([("X-HTTP-Method-Override", "PATCH")]), False)
    assert kept == (("X-HTTP-Method-Override", "PATCH"),)
    assert author_headers(Headers.of([("X-HTTP-Method-Override", "TRACE")]), False) == ()


def test_full_browser_request_view() -> None:
    v = view("PUT", API, BROWSER_ADDED + AUTHOR)
    assert v.cors and not v.preflight
    assert v.cache_bypass is True
    assert v.unsafe_names == ("authorization", "content-type", "x-requested-with")
    assert v.preflight_reasons == (
        "method PUT", "header authorization", "Content-Type application/json",
        "header x-requested-with")
    assert v.credentials == "include"
    assert "Cookie" in v.credentials_evidence


def test_browser_headers_alone_make_a_simple_request() -> None:
    v = view("GET", API, [h for h in BROWSER_ADDED if h[0] not in (":method",)])
    assert v.cors
    assert v.unsafe_names == ()
    assert v.preflight_reasons == ()


def test_no_cookie_means_credentials_unknown() -> None:
    v = view("GET", API, {"Origin": PAGE, "Accept": "*/*"})
    assert v.credentials == "unknown"
    assert "cannot be seen" in v.credentials_evidence


# --- preflight reasons -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "headers", "reasons"),
    [
        ("GET", {"Accept": "application/json"}, ()),
        ("POST", {"Content-Type": "text/plain;charset=UTF-8"}, ()),
        ("POST", {"Content-Type": "application/json; charset=utf-8"},
         ("Content-Type application/json",)),
        ("POST", {"Content-Type": "garbage"}, ("Content-Type 'garbage'",)),
        ("DELETE", {}, ("method DELETE",)),
        ("patch", {}, ("method patch",)),  # not normalised by fetch(): byte-exact
        ("GET", {"X-B": "1", "X-A": "2"}, ("header x-a", "header x-b")),
        ("PUT", {"Range": "bytes=-500"}, ("method PUT", "header range")),
    ],
)
def test_preflight_reasons(method: str, headers: dict[str, str],
                           reasons: tuple[str, ...]) -> None:
    v = view(method, API, {"Origin": PAGE, **headers})
    assert v.preflight_reasons == reasons


def test_preflight_reasons_function_directly() -> None:
    headers = Headers.of([("Content-Type", "Application/JSON")])
    assert preflight_reasons("PUT", ("content-type", "x-a"), headers) == (
        "method PUT", "Content-Type application/json", "header x-a")


@pytest.mark.parametrize(("profile", "unsafe"), [
    (CHROMIUM, ()), (FIREFOX, ("save-data",)), (WEBKIT, ("save-data",))])
def test_unsafe_names_follow_the_profile(profile: EngineProfile, unsafe: tuple[str, ...]) -> None:
    v = view("GET", API, {"Origin": PAGE, "Save-Data": "on"}, profile=profile)
    assert v.unsafe_names == unsafe


def test_split_header_names() -> None:
    assert split_header_names(None) == ()
    assert split_header_names("") == ()
    assert split_header_names("Content-Type,X-A , ,x-b") == ("content-type", "x-a", "x-b")


def test_sec_fetch_mode_cors_outranks_the_tools_resource_type() -> None:
    # The browser's own Sec-Fetch-Mode is the request's mode; a HAR's resource type is a guess.
    v = view("PUT", API, {"Origin": PAGE, "Sec-Fetch-Mode": "cors"}, resource_type="document")
    assert v.cors and v.preflight_reasons == ("method PUT",)


def test_lines_that_are_not_header_fields_are_not_author_headers() -> None:
    # Pseudo-headers, and a request line some tools list among the headers.
    headers = Headers.of([(":path", "/x"), ("GET /v1/items HTTP/1.1", ""), ("X-A", "1"),
                          ("bad name", "1")])
    assert author_headers(headers, cache_bypass=False) == (("X-A", "1"),)
