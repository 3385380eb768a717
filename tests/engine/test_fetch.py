"""The Fetch standard's CORS rules in corsflow.engine.fetch, one exact outcome per case.

Anchors are https://fetch.spec.whatwg.org/ section ids; Chromium facts cite
services/network/public/cpp/cors/cors.cc and services/network/cors/preflight_result.cc,
Firefox facts netwerk/protocol/http/nsCORSListenerProxy.cpp.
"""

from __future__ import annotations

import dataclasses

import pytest

from corsflow.engine.fetch import (
    CORS_SAFELISTED_METHODS,
    FORBIDDEN_REQUEST_HEADERS,
    CheckResult,
    cors_check,
    cors_unsafe_request_header_names,
    extract_header_list_values,
    is_cors_safelisted_method,
    is_cors_safelisted_request_header,
    is_forbidden_request_header,
    is_ok_status,
    is_redirect_status,
    is_same_origin,
    is_token,
    mime_essence,
    parse_max_age,
    preflight_check,
    serialize_origin,
)
from corsflow.engine.profiles import CHROMIUM, FIREFOX, PROFILES, WEBKIT, EngineProfile

ORIGIN = "https://app.example"
ALL_PROFILES = [CHROMIUM, FIREFOX, WEBKIT]


def response(*pairs: tuple[str, str]) -> dict[str, tuple[str, ...]]:
    """Response headers as the engine gets them: lower-case name -> every value, in order."""
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name.lower(), []).append(value)
    return {name: tuple(values) for name, values in out.items()}


def acao(*values: str) -> tuple[tuple[str, str], ...]:
    return tuple(("Access-Control-Allow-Origin", v) for v in values)


# --- #ascii-serialisation-of-an-origin, #same-origin ---------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://app.example/path?q=1#frag", "https://app.example"),
        ("https://app.example:443/", "https://app.example"),  # default port is null
        ("http://app.example:80/", "http://app.example"),
        ("http://app.example:0080/", "http://app.example"),  # the port is a number
        ("https://app.example:80/", "https://app.example:80"),  # 80 is not https' default
        ("http://app.example:443/", "http://app.example:443"),
        ("http://app.example:8080/x", "http://app.example:8080"),
        ("HTTPS://App.EXAMPLE/", "https://app.example"),  # scheme and host lower-cased
        ("http://user:secret@app.example/", "http://app.example"),  # no userinfo
        ("http://[::1]:8080/", "http://[::1]:8080"),  # IPv6 keeps its brackets
        ("http://[::1]/", "http://[::1]"),
        ("http://[2001:DB8::1]:443/", "http://[2001:db8::1]:443"),
        ("ws://chat.example:80/socket", "ws://chat.example"),
        ("wss://chat.example:8443/", "wss://chat.example:8443"),
        ("file:///etc/hosts", "null"),  # opaque origins serialise as "null"
        ("data:text/plain,hi", "null"),
        ("about:blank", "null"),
        ("javascript:alert(1)", "null"),
        ("chrome-extension://abcdef/page.html", "null"),
        ("http:///nohost", "null"),
        ("http://app.example:99999/", "null"),  # the URL parser fails: no origin
        ("http://[::1/", "null"),  # unterminated IPv6 literal: the URL parser fails
    ],
)
def test_serialize_origin(url: str, expected: str) -> None:
    assert serialize_origin(url) == expected


@pytest.mark.parametrize(
    ("origin", "url", "expected"),
    [
        ("https://app.example", "https://app.example/api", True),
        ("https://app.example", "https://app.example:443/api", True),
        ("http://app.example", "http://APP.example:80/", True),
        ("https://app.example", "http://app.example/", False),  # scheme differs
        ("https://app.example", "https://api.app.example/", False),  # host differs
        ("https://app.example", "https://app.example:8443/", False),  # port differs
        ("https://app.example:8443", "https://app.example:8443/x", True),
        ("null", "file:///x", False),  # "null" is never the same origin as anything
        ("null", "https://app.example/", False),
        ("https://App.example", "https://app.example/", False),  # Origin is compared as sent
    ],
)
def test_is_same_origin(origin: str, url: str, expected: bool) -> None:
    assert is_same_origin(origin, url) is expected


# --- #cors-safelisted-method, #forbidden-request-header ------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
def test_safelisted_methods(method: str) -> None:
    assert is_cors_safelisted_method(method)


@pytest.mark.parametrize(
    "method", ["get", "Get", "post", "head", "PUT", "PATCH", "DELETE", "OPTIONS", "", " GET"]
)
def test_cors_safelisted_method_is_byte_exact(method: str) -> None:
    assert not is_cors_safelisted_method(method)


def test_safelisted_method_set_is_exactly_the_standards() -> None:
    assert CORS_SAFELISTED_METHODS == {"GET", "HEAD", "POST"}


FORBIDDEN_LIST = [
    "Accept-Charset", "Accept-Encoding", "Access-Control-Request-Headers",
    "Access-Control-Request-Method", "Connection", "Content-Length", "Cookie", "Cookie2",
    "Date", "DNT", "Expect", "Host", "Keep-Alive", "Origin", "Referer", "Set-Cookie", "TE",
    "Trailer", "Transfer-Encoding", "Upgrade", "Via",
]


def test_forbidden_list_is_exactly_the_standards() -> None:
    assert FORBIDDEN_REQUEST_HEADERS == {n.lower() for n in FORBIDDEN_LIST}


@pytest.mark.parametrize("name", FORBIDDEN_LIST + [n.upper() for n in FORBIDDEN_LIST])
def test_forbidden_request_headers(name: str) -> None:
    assert is_forbidden_request_header(name, "anything")


@pytest.mark.parametrize(
    "name",
    ["Proxy-Authorization", "proxy-anything", "PROXY-X", "Sec-Fetch-Mode", "sec-ch-ua",
     "SEC-WHATEVER", "Sec-"],
)
def test_forbidden_prefixes(name: str) -> None:
    # "If name when byte-lowercased starts with `proxy-` or `sec-`"
    assert is_forbidden_request_header(name, "x")


@pytest.mark.parametrize(
    "name",
    ["User-Agent", "Authorization", "X-Requested-With", "Content-Type", "Accept", "Proxy",
     "Secret", "X-Sec-Thing", "Cookies", "Origin-Trial", "Range"],
)
def test_not_forbidden(name: str) -> None:
    # User-Agent left the list; "proxy"/"sec" without the dash are ordinary names.
    assert not is_forbidden_request_header(name, "x")


@pytest.mark.parametrize("name", ["X-HTTP-Method", "X-HTTP-Method-Override", "x-method-override"])
@pytest.mark.parametrize(
    ("value", "forbidden"),
    [
        ("CONNECT", True),
        ("trace", True),  # forbidden methods match byte-case-insensitively
        ("Track", True),
        ("GET, TRACE", True),  # "one of the values, parsed, is a forbidden method"
        (" connect ", True),
        ("PUT", False),
        ("DELETE, PATCH", False),
        ("CONNECTX", False),
        ("", False),
    ],
)
def test_method_override_forbidden_only_with_forbidden_method(
    name: str, value: str, forbidden: bool
) -> None:
    assert is_forbidden_request_header(name, value) is forbidden


def test_other_override_like_names_are_not_special() -> None:
    assert not is_forbidden_request_header("X-Override-Method", "CONNECT")


# --- #cors-safelisted-request-header -------------------------------------------------------


UNSAFE_BYTES = [chr(b) for b in range(0x20) if b != 0x09] + list('"():<>?@[\\]{}') + ["\x7f"]


@pytest.mark.parametrize("byte", UNSAFE_BYTES)
def test_accept_with_an_unsafe_byte_is_not_safelisted(byte: str) -> None:
    assert not is_cors_safelisted_request_header("Accept", f"text/html{byte}")


@pytest.mark.parametrize(
    "value",
    ["*/*", "application/json", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8",
     "x\ty", "anything goes!#$%&'*+-.^_`|~", "", "\xe9"],
)
def test_accept_without_unsafe_bytes_is_safelisted(value: str) -> None:
    # Accept has no value grammar beyond the unsafe bytes: even application/json passes.
    assert is_cors_safelisted_request_header("Accept", value)


@pytest.mark.parametrize("name", ["Accept-Language", "Content-Language", "content-language"])
@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("en-US,en;q=0.9", True),
        ("de-DE, fr;q=0.5, *", True),
        ("0123456789 ABCXYZ abcxyz *,-.;=", True),
        ("", True),
        ("en_US", False),  # underscore is outside the charset
        ("en-US\t", False),  # tab is allowed in Accept but not here
        ("en/US", False),
        ("en'", False),
        ("en+", False),
        ("\xe9", False),
        ("en:US", False),
    ],
)
def test_language_headers_charset(name: str, value: str, ok: bool) -> None:
    assert is_cors_safelisted_request_header(name, value) is ok


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("text/plain", True),
        ("application/x-www-form-urlencoded", True),
        ("multipart/form-data", True),
        ("multipart/form-data; boundary=----WebKitFormBoundaryABC123", True),
        ("text/plain;charset=UTF-8", True),  # parameters are ignored
        ("text/plain ; charset=utf-8", True),  # trailing whitespace of the subtype is removed
        ("Text/Plain", True),  # essences compare lower-cased
        ("TEXT/PLAIN;CHARSET=UTF-8", True),
        ("  text/plain  ", True),  # leading/trailing HTTP whitespace is removed
        ("text/plain;", True),
        ("application/json", False),
        ("application/json; charset=utf-8", False),
        ("text/html", False),
        ("text/csv", False),
        ("application/csp-report", False),  # sent by UAs without preflight, not safelisted
        ("text", False),  # no slash: parse failure
        ("/plain", False),  # empty type
        ("text/", False),  # empty subtype
        ("text /plain", False),  # type must be a token
        ("text/ plain", False),  # subtype must be a token
        ("te xt/plain", False),
        ("text/plain/x", False),
        ("", False),
        ('multipart/form-data; boundary="abc"', False),  # '"' is a CORS-unsafe byte
        ("text/plain; charset=(utf-8)", False),  # '(' too
        ("text/plain, application/json", False),  # a list is not one MIME type
    ],
)
def test_content_type(value: str, ok: bool) -> None:
    assert is_cors_safelisted_request_header("Content-Type", value) is ok


@pytest.mark.parametrize(
    ("value", "essence"),
    [
        ("text/plain", "text/plain"),
        ("Text/HTML; charset=x", "text/html"),
        ("application/vnd.api+json", "application/vnd.api+json"),
        ("text", None),
        ("text/", None),
        ("/x", None),
        ("a b/c", None),
        ("", None),
    ],
)
def test_mime_essence(value: str, essence: str | None) -> None:
    # #parse-a-mime-type, reduced to the essence.
    assert mime_essence(value) == essence


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("bytes=500-", True),
        ("bytes=0-99", True),
        ("bytes=0-0", True),
        ("bytes=5-5", True),
        ("bytes=-500", False),  # rangeValue[0] is null: suffix ranges are not safelisted
        ("bytes=0-99,200-299", False),  # multi-range: "parsing a single range" fails
        ("bytes=0-99, 200-299", False),
        ("bytes=100-50", False),  # start greater than end: failure
        ("bytes=-", False),
        ("bytes=", False),
        ("bytes=abc-def", False),
        ("items=0-99", False),
        ("Bytes=0-99", False),  # "If data does not start with `bytes`" is byte-exact
        ("bytes 0-99", False),
        ("bytes=0-99 ", False),
        # "parsing a single range header value given value and false": no whitespace is
        # allowed anywhere (Chromium also refuses any LWS in a safelisted Range).
        ("bytes = 0-99", False),
        ("bytes=0 - 99", False),
        ("bytes=\t0-99", False),
        ("", False),
    ],
)
def test_range(value: str, ok: bool) -> None:
    assert is_cors_safelisted_request_header("Range", value) is ok


@pytest.mark.parametrize(
    "name", ["X-Custom", "Authorization", "X-Requested-With", "Cache-Control", "Pragma",
             "If-None-Match", "Save-Data", "DPR", "User-Agent"]
)
def test_other_names_are_not_safelisted_by_the_standard(name: str) -> None:
    assert not is_cors_safelisted_request_header(name, "1")
    assert not is_cors_safelisted_request_header(name, "1", FIREFOX)
    assert not is_cors_safelisted_request_header(name, "1", WEBKIT)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Accept", "a" * 128),
        ("Accept-Language", "a" * 128),
        ("Content-Language", "a" * 128),
        ("Content-Type", "text/plain;x=" + "a" * (128 - 13)),
    ],
)
def test_value_of_exactly_128_bytes_is_safelisted(name: str, value: str) -> None:
    assert len(value) == 128
    assert is_cors_safelisted_request_header(name, value)
    # "If value's length is greater than 128, then return false": one more byte fails.
    assert not is_cors_safelisted_request_header(name, value + "a")


def test_128_limit_counts_bytes_not_characters() -> None:
    # Values hold one character per byte (isomorphic decoding): 128 latin-1 bytes is fine.
    assert is_cors_safelisted_request_header("Accept", "\xe9" * 128)
    assert not is_cors_safelisted_request_header("Accept", "\xe9" * 129)


def test_range_over_128_bytes() -> None:
    value = "bytes=" + "0" * 120 + "-1"
    assert len(value) == 128
    assert is_cors_safelisted_request_header("Range", value)
    assert not is_cors_safelisted_request_header("Range", "bytes=" + "0" * 121 + "-1")


@pytest.mark.parametrize("name", ["ACCEPT", "accept", "AcCePt"])
def test_safelist_names_are_case_insensitive(name: str) -> None:
    assert is_cors_safelisted_request_header(name, "*/*")


# Chromium's cors.cc IsCorsSafelistedHeader safelists client hints, each with a value rule.
@pytest.mark.parametrize(
    ("name", "value", "chromium_ok"),
    [
        ("Save-Data", "on", True),
        ("Save-Data", "ON", True),  # compared lower-cased
        ("Save-Data", "off", False),
        ("Save-Data", "", False),
        ("Device-Memory", "8", True),
        ("Device-Memory", "0.5", True),
        ("Device-Memory", ".5", False),  # 1*DIGIT [ "." 1*DIGIT ]
        ("Device-Memory", "8.", False),
        ("Device-Memory", "8GB", False),
        ("DPR", "2.625", True),
        ("DPR", "1.5.1", False),
        ("Downlink", "10", True),
        ("Downlink", "fast", False),
        ("Width", "1080", True),
        ("Width", "10.5", False),  # 1*DIGIT only
        ("Viewport-Width", "412", True),
        ("Viewport-Width", "", False),
        ("RTT", "150", True),
        ("RTT", "-1", False),
        ("ECT", "4g", True),
        ("ECT", "slow-2g", True),
        ("ECT", "3g", True),
        ("ECT", "5g", False),
        ("ECT", "4G", False),  # compared as sent
        ("Intervention", "<https://www.chromestatus.com/feature/123>; level=\"warning\"", True),
    ],
)
def test_chromium_extra_safelist_value_rules(name: str, value: str, chromium_ok: bool) -> None:
    assert is_cors_safelisted_request_header(name, value, CHROMIUM) is chromium_ok
    # The standard, Firefox and WebKit safelist none of these.
    assert not is_cors_safelisted_request_header(name, value, FIREFOX)
    assert not is_cors_safelisted_request_header(name, value, WEBKIT)
    assert not is_cors_safelisted_request_header(name, value)


def test_chromium_extra_safelist_obeys_128_bytes() -> None:
    assert is_cors_safelisted_request_header("Intervention", "x" * 128, CHROMIUM)
    assert not is_cors_safelisted_request_header("Intervention", "x" * 129, CHROMIUM)


def test_profiles_carry_the_extra_safelist() -> None:
    assert "save-data" in CHROMIUM.extra_safelisted_headers
    assert FIREFOX.extra_safelisted_headers == frozenset()
    assert WEBKIT.extra_safelisted_headers == frozenset()


# --- #cors-unsafe-request-header-names ------------------------------------------------------


def test_unsafe_names_sorted_lowercased_deduplicated() -> None:
    headers = [
        ("X-Zeta", "1"), ("Content-Type", "application/json"), ("x-alpha", "1"),
        ("X-ALPHA", "2"), ("Accept", "*/*"), ("X-Mid", "3"),
    ]
    assert cors_unsafe_request_header_names(headers) == (
        "content-type", "x-alpha", "x-mid", "x-zeta")


def test_unsafe_names_empty_for_safelisted_only() -> None:
    headers = [("Accept", "*/*"), ("Accept-Language", "en"), ("Content-Type", "text/plain"),
               ("Range", "bytes=0-1")]
    assert cors_unsafe_request_header_names(headers) == ()
    assert cors_unsafe_request_header_names([]) == ()


def test_unsafe_names_use_the_profiles_safelist() -> None:
    headers = [("Save-Data", "on"), ("X-Custom", "1")]
    assert cors_unsafe_request_header_names(headers, CHROMIUM) == ("x-custom",)
    assert cors_unsafe_request_header_names(headers, FIREFOX) == ("save-data", "x-custom")


def _safelisted_headers_totalling(total: int) -> list[tuple[str, str]]:
    """Accept headers (each <= 128 bytes, so each safelisted) whose values sum to total."""
    out = []
    while total > 0:
        n = min(128, total)
        out.append(("Accept", "a" * n))
        total -= n
    return out


def test_1024_bytes_of_safelisted_values_stay_safelisted() -> None:
    headers = _safelisted_headers_totalling(1024)
    assert sum(len(v) for _, v in headers) == 1024
    assert cors_unsafe_request_header_names(headers + [("X-A", "1")]) == ("x-a",)


def test_1025_bytes_of_safelisted_values_make_them_all_unsafe() -> None:
    # "If safelistValueSize is greater than 1024, then for each name of
    # potentiallyUnsafeNames, append name to unsafeNames."
    headers = _safelisted_headers_totalling(1024 - 9) + [("Content-Type", "text/plain")]
    assert sum(len(v) for _, v in headers) == 1025
    assert cors_unsafe_request_header_names(headers + [("X-A", "1")]) == (
        "accept", "content-type", "x-a")


def test_1024_rule_with_distinct_chromium_names() -> None:
    # Observed in Chromium 156: these eight headers (1024 bytes, each safelisted) need no
    # preflight; adding `Width: 1` (1025 bytes) makes the browser preflight all of them.
    headers = [
        ("Accept", "a" * 128), ("Accept-Language", "a" * 128), ("Content-Language", "a" * 128),
        ("Content-Type", "text/plain;x=" + "a" * 115), ("Range", "bytes=" + "0" * 120 + "-1"),
        ("Intervention", "i" * 128), ("Device-Memory", "1" * 128), ("DPR", "2" * 128),
    ]
    assert sum(len(v) for _, v in headers) == 1024
    assert cors_unsafe_request_header_names(headers, CHROMIUM) == ()
    assert cors_unsafe_request_header_names(headers + [("Width", "1")], CHROMIUM) == (
        "accept", "accept-language", "content-language", "content-type", "device-memory",
        "dpr", "intervention", "range", "width")


def test_unsafe_values_do_not_count_towards_1024() -> None:
    headers = _safelisted_headers_totalling(1024) + [("X-Big", "b" * 5000)]
    assert cors_unsafe_request_header_names(headers) == ("x-big",)


def test_over_128_makes_only_that_header_unsafe() -> None:
    headers = [("Accept", "a" * 129), ("Accept-Language", "en")]
    assert cors_unsafe_request_header_names(headers) == ("accept",)


# --- #extract-header-list-values (for #method and #field-name) ------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),  # absent: null
        ("", ()),  # present and empty: an empty list, not null
        ("GET", ("GET",)),
        ("GET, PUT,DELETE", ("GET", "PUT", "DELETE")),
        ("  PUT \t,\tPATCH  ", ("PUT", "PATCH")),
        ("PUT,,PATCH", ("PUT", "PATCH")),  # empty list elements are allowed by #rule
        (", ,PUT, ", ("PUT",)),
        (",", ()),
        ("*", ("*",)),
        ("X-Custom, content-type", ("X-Custom", "content-type")),
        ("x-a, x-a", ("x-a", "x-a")),
        ("!#$%&'*+-.^_`|~09azAZ", ("!#$%&'*+-.^_`|~09azAZ",)),
    ],
)
def test_extract_header_list_values(value: str | None, expected: tuple[str, ...] | None) -> None:
    assert extract_header_list_values(value) == expected


@pytest.mark.parametrize(
    ("value", "bad"),
    [
        ("GET, P UT", "P UT"),  # inner whitespace: not a token
        ("x-a, x(b)", "x(b)"),
        ('"PUT"', '"PUT"'),
        ("PUT;q=1", "PUT;q=1"),
        ("x-a, x/b", "x/b"),
        ("x:a", "x:a"),
        ("PUT\n", "PUT\n"),  # a line feed is not a token character, nor HTTP tab-or-space
        ("\xe9", "\xe9"),
    ],
)
def test_extract_header_list_values_fails_on_non_tokens(value: str, bad: str) -> None:
    with pytest.raises(ValueError) as info:
        extract_header_list_values(value)
    assert info.value.args == (bad,)


# --- the CORS-preflight fetch's max-age, per engine ------------------------------------------


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=lambda p: p.name)
def test_max_age_absent_is_5_seconds(profile: EngineProfile) -> None:
    # "If max-age is failure or null, then set max-age to 5."
    m = parse_max_age((), profile)
    assert (m.raw, m.parsed, m.seconds, m.clamped, m.invalid) == (None, None, 5.0, False, False)


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=lambda p: p.name)
def test_max_age_600(profile: EngineProfile) -> None:
    m = parse_max_age(("600",), profile)
    assert (m.raw, m.parsed, m.seconds, m.clamped, m.invalid) == ("600", 600, 600.0, False, False)


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=lambda p: p.name)
def test_max_age_0_is_not_cached(profile: EngineProfile) -> None:
    m = parse_max_age(("0",), profile)
    assert (m.parsed, m.seconds, m.clamped, m.invalid) == (0, 0.0, False, False)


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=lambda p: p.name)
def test_max_age_surrounding_whitespace_is_not_part_of_the_value(profile: EngineProfile) -> None:
    assert parse_max_age((" 600\t",), profile).seconds == 600.0


@pytest.mark.parametrize("profile", [CHROMIUM, WEBKIT], ids=lambda p: p.name)
def test_max_age_negative_chromium_webkit_parse_it_and_do_not_cache(
    profile: EngineProfile,
) -> None:
    # preflight_result.cc: "Negative value doesn't make sense - use 0 instead".
    m = parse_max_age(("-1",), profile)
    assert (m.parsed, m.seconds, m.clamped, m.invalid) == (-1, 0.0, False, False)


def test_max_age_negative_firefox_is_invalid_and_not_cached() -> None:
    # nsCORSListenerProxy AddResultToCache: any non-digit means nothing is cached.
    m = parse_max_age(("-1",), FIREFOX)
    assert (m.parsed, m.seconds, m.clamped, m.invalid) == (None, 0.0, False, True)


def test_max_age_plus_sign() -> None:
    # base::StringToInt64 accepts a leading '+'; Firefox's digit loop does not.
    assert parse_max_age(("+30",), CHROMIUM).seconds == 30.0
    assert parse_max_age(("+30",), FIREFOX).seconds == 0.0
    assert parse_max_age(("+30",), FIREFOX).invalid


def test_max_age_two_headers_chromium_uses_the_default() -> None:
    # Two headers are combined to "600, 600", which StringToInt64 refuses: 5 s.
    m = parse_max_age(("600", "600"), CHROMIUM)
    assert (m.raw, m.parsed, m.seconds, m.invalid) == ("600, 600", None, 5.0, True)
    assert parse_max_age(("600", "600"), WEBKIT).seconds == 5.0


def test_max_age_two_headers_firefox_does_not_cache() -> None:
    m = parse_max_age(("600", "600"), FIREFOX)
    assert (m.raw, m.parsed, m.seconds, m.invalid) == ("600, 600", None, 0.0, True)


@pytest.mark.parametrize("raw", ["abc", "10s", "1.5", "1e3", "600 600", "0x10", "--1", "+"])
def test_max_age_garbage(raw: str) -> None:
    for profile, seconds in ((CHROMIUM, 5.0), (WEBKIT, 5.0), (FIREFOX, 0.0)):
        m = parse_max_age((raw,), profile)
        assert (m.parsed, m.seconds, m.clamped, m.invalid) == (None, seconds, False, True), (
            profile.name)


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=lambda p: p.name)
def test_max_age_empty_value_means_the_default(profile: EngineProfile) -> None:
    # Firefox: "if (headerVal.IsEmpty()) age = PREFLIGHT_DEFAULT_EXPIRY_SECONDS";
    # Chromium/WebKit: an empty string fails to parse, which means the default.
    m = parse_max_age(("",), profile)
    assert (m.parsed, m.seconds, m.clamped) == (None, 5.0, False)


@pytest.mark.parametrize(
    ("profile", "cap"), [(CHROMIUM, 7200), (FIREFOX, 86400), (WEBKIT, 600)],
    ids=lambda p: getattr(p, "name", str(p)),
)
def test_max_age_cap(profile: EngineProfile, cap: int) -> None:
    assert profile.max_age_cap == cap
    at = parse_max_age((str(cap),), profile)
    assert (at.parsed, at.seconds, at.clamped) == (cap, float(cap), False)
    above = parse_max_age((str(cap + 1),), profile)
    assert (above.parsed, above.seconds, above.clamped, above.invalid) == (
        cap + 1, float(cap), True, False)
    below = parse_max_age((str(cap - 1),), profile)
    assert (below.seconds, below.clamped) == (float(cap - 1), False)


def test_max_age_a_day_per_engine() -> None:
    assert parse_max_age(("86400",), CHROMIUM).seconds == 7200.0
    assert parse_max_age(("86400",), WEBKIT).seconds == 600.0
    assert parse_max_age(("86400",), FIREFOX).seconds == 86400.0
    assert not parse_max_age(("86400",), FIREFOX).clamped


def test_max_age_beyond_64_bits() -> None:
    huge = "9" * 25
    # base::StringToInt64 and WebKit's parseInteger<int64_t> fail on overflow: the default.
    for profile in (CHROMIUM, WEBKIT):
        m = parse_max_age((huge,), profile)
        assert (m.parsed, m.seconds, m.invalid) == (None, 5.0, True), profile.name
    # Firefox's digit loop saturates at its cap.
    m = parse_max_age((huge,), FIREFOX)
    assert (m.seconds, m.clamped, m.invalid) == (86400.0, True, False)
    # The largest int64 itself still parses, and is clamped.
    m = parse_max_age((str(2**63 - 1),), CHROMIUM)
    assert (m.parsed, m.seconds, m.clamped) == (2**63 - 1, 7200.0, True)


def test_max_age_trailing_line_feed_is_not_a_number() -> None:
    assert parse_max_age(("600\n",), CHROMIUM).invalid
    assert parse_max_age(("600\n",), FIREFOX).seconds == 0.0


# --- #cors-check -----------------------------------------------------------------------------


def check(pairs: tuple[tuple[str, str], ...], *, creds: bool = False, preflight: bool = False,
          origin: str = ORIGIN) -> CheckResult:
    return cors_check(response(*pairs), origin, creds, preflight=preflight)


def assert_failed(result: CheckResult, error: str, param: str | None) -> None:
    assert (result.error, result.failed_parameter) == (error, param)
    assert not result.ok
    assert result.trace and result.trace[-1].outcome == "fail"


PREFIXES = [(False, ""), (True, "Preflight")]


@pytest.mark.parametrize(("preflight", "prefix"), PREFIXES)
@pytest.mark.parametrize("creds", [False, True])
def test_missing_allow_origin(preflight: bool, prefix: str, creds: bool) -> None:
    r = check((("Access-Control-Allow-Credentials", "true"),), creds=creds, preflight=preflight)
    assert_failed(r, f"{prefix}MissingAllowOriginHeader", None)
    assert r.trace[-1].spec == "#cors-check"


@pytest.mark.parametrize(("preflight", "prefix"), PREFIXES)
def test_wildcard_without_credentials_passes(preflight: bool, prefix: str) -> None:
    r = check(acao("*"), preflight=preflight)
    assert r.ok and r.error is None and r.failed_parameter is None
    assert r.trace[-1].outcome == "pass"


@pytest.mark.parametrize(("preflight", "prefix"), PREFIXES)
def test_wildcard_with_credentials_fails_even_with_allow_credentials(
    preflight: bool, prefix: str
) -> None:
    r = check(acao("*") + (("Access-Control-Allow-Credentials", "true"),), creds=True,
              preflight=preflight)
    assert_failed(r, f"{prefix}WildcardOriginNotAllowed", None)
    assert r.trace[-1].spec == "#cors-protocol-and-credentials"


@pytest.mark.parametrize(("preflight", "prefix"), PREFIXES)
@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("https://other.example", "AllowOriginMismatch"),
        ("https://app.example/", "AllowOriginMismatch"),  # trailing slash: byte comparison
        ("https://App.Example", "AllowOriginMismatch"),  # case matters
        ("HTTPS://app.example", "AllowOriginMismatch"),
        ("http://app.example", "AllowOriginMismatch"),
        ("https://app.example:443", "AllowOriginMismatch"),  # not the serialised form
        ("https://app.example:8443", "AllowOriginMismatch"),
        ("null", "AllowOriginMismatch"),  # a real value, and not this origin
        ("mailto:someone", "AllowOriginMismatch"),  # GURL: a valid (non-special) URL
        ("https://app.example,https://other.example", "MultipleAllowOriginValues"),
        ("https://app.example https://other.example", "MultipleAllowOriginValues"),
        ("https://app.example,", "MultipleAllowOriginValues"),
        ("invalid.origin", "InvalidAllowOriginValue"),  # no scheme: not a URL
        ("app.example", "InvalidAllowOriginValue"),
        ("**", "InvalidAllowOriginValue"),
        ("http://", "InvalidAllowOriginValue"),  # no host
        ("https://[::1", "InvalidAllowOriginValue"),  # broken IPv6 literal
        ("https://app.example:99999", "InvalidAllowOriginValue"),  # port out of range
        ("http://localhost:" + "9" * 4301, "InvalidAllowOriginValue"),  # past int()'s limit
        ("http://localhost:" + "0" * 4300 + "80", "AllowOriginMismatch"),  # port 80, valid
        ("https://app.example:8x", "InvalidAllowOriginValue"),
        ("1https://app.example", "InvalidAllowOriginValue"),  # a scheme starts with a letter
    ],
)
def test_allow_origin_not_equal(preflight: bool, prefix: str, value: str, error: str) -> None:
    # Chromium names the failure by what the value looks like (cors.cc CheckAccess): a space
    # or comma first, then "null", then whether GURL finds it valid.
    for creds in (False, True):
        r = check(acao(value), creds=creds, preflight=preflight)
        assert_failed(r, prefix + error, value)


@pytest.mark.parametrize(("preflight", "prefix"), PREFIXES)
def test_two_allow_origin_headers_are_multiple_values(preflight: bool, prefix: str) -> None:
    # "get" combines them into "a, b", which never equals an origin, even when both match.
    r = check(acao(ORIGIN, ORIGIN), preflight=preflight)
    assert_failed(r, f"{prefix}MultipleAllowOriginValues", f"{ORIGIN}, {ORIGIN}")
    r = check(acao("*", "*"), preflight=preflight)
    assert_failed(r, f"{prefix}MultipleAllowOriginValues", "*, *")


def test_null_origin_matches_null() -> None:
    # A redirect-tainted or opaque origin serialises as "null", and `null` then matches.
    assert check(acao("null"), origin="null").ok
    assert_failed(check(acao(ORIGIN), origin="null"), "AllowOriginMismatch", ORIGIN)


@pytest.mark.parametrize(("preflight", "prefix"), PREFIXES)
def test_exact_origin_without_credentials_passes(preflight: bool, prefix: str) -> None:
    r = check(acao(ORIGIN), preflight=preflight)
    assert r.ok and r.trace[-1].outcome == "pass"
    # Allow-Credentials is not looked at without credentials.
    assert check(acao(ORIGIN) + (("Access-Control-Allow-Credentials", "nope"),)).ok


@pytest.mark.parametrize(("preflight", "prefix"), PREFIXES)
@pytest.mark.parametrize(
    ("acac", "param"),
    [
        ((), ""),  # absent: Chromium reports the value as ''
        (("True",), "True"),  # byte case-sensitive
        (("TRUE",), "TRUE"),
        (("false",), "false"),
        (("1",), "1"),
        (("true ",), "true "),
        (("true", "true"), "true, true"),  # two headers combine and no longer equal `true`
    ],
)
def test_credentials_need_allow_credentials_true(
    preflight: bool, prefix: str, acac: tuple[str, ...], param: str
) -> None:
    pairs = acao(ORIGIN) + tuple(("Access-Control-Allow-Credentials", v) for v in acac)
    r = check(pairs, creds=True, preflight=preflight)
    assert_failed(r, f"{prefix}InvalidAllowCredentials", param)


@pytest.mark.parametrize(("preflight", "prefix"), PREFIXES)
def test_credentials_with_allow_credentials_true_pass(preflight: bool, prefix: str) -> None:
    r = check(acao(ORIGIN) + (("Access-Control-Allow-Credentials", "true"),), creds=True,
              preflight=preflight)
    assert r.ok and r.failed_parameter is None
    assert [s.outcome for s in r.trace] == ["pass", "pass"]


# --- #ok-status, redirect statuses ---------------------------------------------------------


def test_ok_status() -> None:
    assert [s for s in (199, 200, 204, 299, 300, 304, 401) if is_ok_status(s)] == [200, 204, 299]


def test_redirect_status() -> None:
    assert [s for s in range(300, 400) if is_redirect_status(s)] == [301, 302, 303, 307, 308]


# --- #cors-preflight-fetch-0 -----------------------------------------------------------------


GOOD = acao(ORIGIN)


def pf(
    pairs: tuple[tuple[str, str], ...] = GOOD,
    *,
    status: int = 204,
    method: str = "PUT",
    unsafe: tuple[str, ...] = (),
    creds: bool = False,
    profile: EngineProfile = CHROMIUM,
) -> CheckResult:
    return preflight_check(status, response(*pairs), ORIGIN, method, unsafe, creds,
                           profile).check


def methods(value: str) -> tuple[tuple[str, str], ...]:
    return GOOD + (("Access-Control-Allow-Methods", value),)


def allow_headers(value: str, m: str = "PUT") -> tuple[tuple[str, str], ...]:
    return methods(m) + (("Access-Control-Allow-Headers", value),)


LOCATION = (("Location", "https://api.example/elsewhere"),)


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=lambda p: p.name)
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_preflight_redirect_is_disallowed(profile: EngineProfile, status: int) -> None:
    r = pf(methods("PUT") + LOCATION, status=status, profile=profile)
    assert_failed(r, "PreflightDisallowedRedirect", None)
    # The redirect is reported whatever the Allow-Origin says (Chromium 156: a 308 with a
    # Location and no Allow-Origin is PreflightDisallowedRedirect), except in Firefox, which
    # looks at Allow-Origin first (ESR 153, tests/browser preflight-302-bare).
    bare = "PreflightDisallowedRedirect" if profile.preflight_redirect_before_cors_check \
        else "PreflightMissingAllowOriginHeader"
    assert pf(LOCATION, status=status, profile=profile).error == bare


@pytest.mark.parametrize("location", [(), (("Location", ""),)])
def test_redirect_status_without_location_is_a_non_ok_status(
    location: tuple[tuple[str, str], ...],
) -> None:
    # Observed in Chromium 156: a 302 preflight without a Location (or with an empty one) is
    # no redirect; the Allow-Origin check runs, then the status fails.
    r = pf(methods("PUT") + location, status=302)
    assert r.error == "PreflightInvalidStatus"
    assert [s.outcome for s in r.trace] == ["pass", "fail"]
    assert_failed(pf(location, status=302), "PreflightMissingAllowOriginHeader", None)


def test_300_with_location_is_not_a_redirect() -> None:
    # Chromium 156: 300 Multiple Choices with a Location is PreflightInvalidStatus.
    assert pf(methods("PUT") + LOCATION, status=300).error == "PreflightInvalidStatus"


@pytest.mark.parametrize("status", [401, 403, 404, 405, 500, 300, 304, 100])
def test_chromium_checks_allow_origin_before_status(status: int) -> None:
    # preflight_controller.cc CheckPreflightAccess: CheckAccess first, then the ok status.
    assert_failed(pf((), status=status), "PreflightMissingAllowOriginHeader", None)
    assert_failed(pf(acao("https://other.example"), status=status),
                  "PreflightAllowOriginMismatch", "https://other.example")
    r = pf(methods("PUT"), status=status)
    assert_failed(r, "PreflightInvalidStatus", None)  # Chromium names no parameter
    assert str(status) in r.trace[-1].detail
    assert r.trace[-1].outcome == "fail" and r.trace[-1].spec == "#ok-status"
    # The Allow-Origin step passed before the status failed.
    assert [s.outcome for s in r.trace] == ["pass", "fail"]


@pytest.mark.parametrize("status", [401, 404, 500])
def test_webkit_checks_status_first(status: int) -> None:
    # WebKitGTK 2.50, tests/browser preflight-404-bare: "Preflight response is not
    # successful"; Firefox ESR 153 names the missing Allow-Origin instead, as Chromium does.
    r = pf((), status=status, profile=WEBKIT)
    assert r.error == "PreflightInvalidStatus"
    assert [s.outcome for s in r.trace] == ["fail"]
    assert pf(methods("PUT"), status=status, profile=WEBKIT).error == "PreflightInvalidStatus"
    assert pf((), status=status, profile=FIREFOX).error == "PreflightMissingAllowOriginHeader"


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=lambda p: p.name)
@pytest.mark.parametrize("status", [200, 204, 299])
def test_ok_preflight_passes(profile: EngineProfile, status: int) -> None:
    out = preflight_check(status, response(*methods("PUT, DELETE")), ORIGIN, "PUT", (), False,
                          profile)
    assert out.check.ok
    assert out.methods == ("PUT", "DELETE")
    assert out.headers is None


def test_preflight_uses_the_actual_requests_credentials_mode() -> None:
    star = acao("*") + (("Access-Control-Allow-Methods", "PUT"),)
    assert pf(star).ok
    assert_failed(pf(star, creds=True), "PreflightWildcardOriginNotAllowed", None)
    assert_failed(pf(methods("PUT"), creds=True), "PreflightInvalidAllowCredentials", "")
    creds_ok = methods("PUT") + (("Access-Control-Allow-Credentials", "true"),)
    assert pf(creds_ok, creds=True).ok


@pytest.mark.parametrize("value", ["PUT, GET(", "PUT;", "P UT", "PUT, \"DELETE\"", "PUT/x"])
def test_invalid_allow_methods(value: str) -> None:
    r = pf(methods(value))
    assert_failed(r, "InvalidAllowMethodsPreflightResponse", None)  # as Chromium: none
    assert value in r.trace[-1].detail
    assert r.trace[-1].spec == "#extract-header-list-values"


@pytest.mark.parametrize("value", ["x-a, x b", "x-a;", "x(a)", "x-a, @"])
def test_invalid_allow_headers(value: str) -> None:
    r = pf(allow_headers(value), unsafe=("x-a",))
    assert_failed(r, "InvalidAllowHeadersPreflightResponse", None)  # as Chromium: none
    assert value in r.trace[-1].detail


def test_invalid_allow_headers_even_for_a_safelisted_request() -> None:
    # Both lists are parsed before anything is compared (PreflightResult::Parse).
    assert pf(allow_headers("x(a)"), method="GET").error == "InvalidAllowHeadersPreflightResponse"


def test_allow_methods_parse_error_wins_over_allow_headers() -> None:
    pairs = GOOD + (("Access-Control-Allow-Methods", "P UT"),
                    ("Access-Control-Allow-Headers", "x b"))
    assert pf(pairs).error == "InvalidAllowMethodsPreflightResponse"


def test_two_allow_methods_headers_are_combined() -> None:
    pairs = GOOD + (("Access-Control-Allow-Methods", "GET"),
                    ("Access-Control-Allow-Methods", "PUT"))
    out = preflight_check(204, response(*pairs), ORIGIN, "PUT", (), False, CHROMIUM)
    assert out.check.ok and out.methods == ("GET", "PUT")


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=lambda p: p.name)
@pytest.mark.parametrize(
    ("acam", "method", "creds", "ok"),
    [
        ("GET, POST", "PUT", False, False),
        ("PUT", "PUT", False, True),
        ("GET, PUT, DELETE", "DELETE", False, True),
        (None, "DELETE", False, False),  # absent Allow-Methods allows only safelisted ones
        ("", "DELETE", False, False),
        ("*", "DELETE", False, True),  # '*' is a wildcard without credentials
        ("*", "DELETE", True, False),  # and literal with them
        ("*, DELETE", "DELETE", True, True),
        ("put", "PUT", False, False),  # items are compared byte-exactly
        ("PUTX", "PUT", False, False),
    ],
)
def test_method_allowed(profile: EngineProfile, acam: str | None, method: str, creds: bool,
                        ok: bool) -> None:
    pairs = GOOD if acam is None else methods(acam)
    if creds:
        pairs += (("Access-Control-Allow-Credentials", "true"),)
    r = pf(pairs, method=method, creds=creds, profile=profile)
    if ok:
        assert r.ok
    else:
        assert_failed(r, "MethodDisallowedByPreflightResponse", method)


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=lambda p: p.name)
@pytest.mark.parametrize("method", ["GET", "HEAD", "POST"])
def test_safelisted_methods_always_pass(profile: EngineProfile, method: str) -> None:
    assert pf(GOOD, method=method, profile=profile).ok
    assert pf(methods("PUT"), method=method, profile=profile).ok


def test_method_upper_casing_follows_the_profile() -> None:
    # preflight_result.cc EnsureAllowedCrossOriginMethod keeps a legacy mode that upper-cases
    # the request method before comparing (crbug.com/1228178); the profile says which applies.
    legacy = dataclasses.replace(CHROMIUM, method_uppercased_before_compare=True)
    exact = dataclasses.replace(CHROMIUM, method_uppercased_before_compare=False)
    assert pf(methods("PATCH"), method="patch", profile=legacy).ok
    assert_failed(pf(methods("PATCH"), method="patch", profile=exact),
                  "MethodDisallowedByPreflightResponse", "patch")
    assert pf(methods("patch"), method="patch", profile=exact).ok
    # Upper-casing the request does not lower-case the list.
    assert_failed(pf(methods("patch"), method="patch", profile=legacy),
                  "MethodDisallowedByPreflightResponse", "patch")


def test_firefox_compares_methods_exactly() -> None:
    assert not FIREFOX.method_uppercased_before_compare
    assert_failed(pf(methods("PATCH"), method="patch", profile=FIREFOX),
                  "MethodDisallowedByPreflightResponse", "patch")
    assert pf(methods("patch"), method="patch", profile=FIREFOX).ok


def test_chromium_156_compares_methods_exactly() -> None:
    # Observed: fetch(url, {method: 'patch'}) against Allow-Methods: PATCH fails with
    # MethodDisallowedByPreflightResponse (failedParameter 'patch'); against `patch` it passes.
    assert not CHROMIUM.method_uppercased_before_compare
    assert_failed(pf(methods("PATCH"), method="patch"), "MethodDisallowedByPreflightResponse",
                  "patch")
    assert pf(methods("patch"), method="patch").ok


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=lambda p: p.name)
def test_header_not_allowed_names_the_header(profile: EngineProfile) -> None:
    assert_failed(pf(methods("PUT"), unsafe=("x-custom",), profile=profile),
                  "HeaderDisallowedByPreflightResponse", "x-custom")
    assert_failed(pf(allow_headers("x-other"), unsafe=("x-custom",), profile=profile),
                  "HeaderDisallowedByPreflightResponse", "x-custom")


def test_first_missing_header_in_sorted_order_is_reported() -> None:
    # The engine's deterministic choice. Chromium 156 names one of the missing headers in
    # the order of its own header map, which is neither sorted nor the author's order (with
    # x-a, x-b, x-c sent and x-b allowed it names x-c), and a capture cannot show that order.
    r = pf(allow_headers("x-b"), unsafe=("x-a", "x-b", "x-c"))
    assert_failed(r, "HeaderDisallowedByPreflightResponse", "x-a")
    r = pf(allow_headers("x-a"), unsafe=("x-a", "x-b", "x-c"))
    assert_failed(r, "HeaderDisallowedByPreflightResponse", "x-b")


def test_allow_headers_compare_case_insensitively() -> None:
    out = preflight_check(204, response(*allow_headers("X-Custom, Content-Type")), ORIGIN, "PUT",
                          ("content-type", "x-custom"), False, CHROMIUM)
    assert out.check.ok
    assert out.headers == ("X-Custom", "Content-Type")


def test_method_is_checked_before_headers() -> None:
    r = pf(allow_headers("x-a", m="GET"), method="PUT", unsafe=("x-b",))
    assert_failed(r, "MethodDisallowedByPreflightResponse", "PUT")


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=lambda p: p.name)
def test_wildcard_headers_without_credentials(profile: EngineProfile) -> None:
    assert pf(allow_headers("*"), unsafe=("x-a", "x-b", "content-type"), profile=profile).ok


@pytest.mark.parametrize("profile", ALL_PROFILES, ids=lambda p: p.name)
def test_wildcard_headers_are_literal_with_credentials(profile: EngineProfile) -> None:
    pairs = allow_headers("*") + (("Access-Control-Allow-Credentials", "true"),)
    r = pf(pairs, unsafe=("x-a",), creds=True, profile=profile)
    assert_failed(r, "HeaderDisallowedByPreflightResponse", "x-a")
    assert "literal" in r.trace[-1].detail
    pairs = allow_headers("*, x-a") + (("Access-Control-Allow-Credentials", "true"),)
    assert pf(pairs, unsafe=("x-a",), creds=True, profile=profile).ok


def test_wildcard_and_authorization_follows_the_profile() -> None:
    # Chromium 156's preflight check lets '*' cover Authorization (its cache does not).
    assert CHROMIUM.wildcard_covers_authorization_in_check
    assert pf(allow_headers("*"), unsafe=("authorization", "x-a")).ok
    strict = dataclasses.replace(CHROMIUM, wildcard_covers_authorization_in_check=False)
    r = pf(allow_headers("*"), unsafe=("authorization", "x-a"), profile=strict)
    assert_failed(r, "HeaderDisallowedByPreflightResponse", "authorization")
    assert "never covers Authorization" in r.trace[-1].detail
    # Listing it explicitly always works.
    assert pf(allow_headers("*, Authorization"), unsafe=("authorization",), profile=strict).ok
    # Other headers are still covered by '*' under the strict profile.
    assert pf(allow_headers("*"), unsafe=("x-a",), profile=strict).ok


def test_max_age_is_in_the_outcome() -> None:
    pairs = methods("PUT") + (("Access-Control-Max-Age", "86400"),)
    out = preflight_check(204, response(*pairs), ORIGIN, "PUT", (), False, CHROMIUM)
    assert out.check.ok
    assert (out.max_age.raw, out.max_age.parsed, out.max_age.seconds, out.max_age.clamped) == (
        "86400", 86400, 7200.0, True)
    assert out.check.trace[-1].step == "Max-Age"
    out = preflight_check(204, response(*pairs), ORIGIN, "PUT", (), False, FIREFOX)
    assert (out.max_age.seconds, out.max_age.clamped) == (86400.0, False)
    out = preflight_check(204, response(*methods("PUT")), ORIGIN, "PUT", (), False, WEBKIT)
    assert (out.max_age.raw, out.max_age.seconds) == (None, 5.0)


def test_profiles_registry() -> None:
    assert set(PROFILES) == {"chromium", "firefox", "webkit"}
    assert PROFILES["chromium"] is CHROMIUM


@pytest.mark.parametrize(
    ("value", "ok"),
    [("X-Custom", True), ("!#$%&'*+-.^_`|~09azAZ", True), ("*", True), ("", False),
     ("x y", False), ("x-a\n", False), (":authority", False), ("GET /x HTTP/1.1", False),
     ("x(a)", False), ("\xe9", False)],
)
def test_is_token(value: str, ok: bool) -> None:
    assert is_token(value) is ok


def test_value_scans_match_the_byte_rules_for_every_latin1_byte() -> None:
    """The regular expressions the safelist uses for speed say exactly what the per-byte
    rules say, for every byte an isomorphic-decoded value can hold (and beyond)."""
    from corsflow.engine.fetch import (
        _LANGUAGE_OK,
        _LANGUAGE_VALUE,
        _UNSAFE_BYTE,
        _is_unsafe_byte,
    )

    for code in range(0x180):
        c = chr(code)
        for value in (c, f"a{c}b", f"{c}{c}"):
            assert (_UNSAFE_BYTE.search(value) is not None) == any(map(_is_unsafe_byte, value))
            assert (_LANGUAGE_VALUE.fullmatch(value) is not None) == all(
                ch in _LANGUAGE_OK for ch in value)
    assert _LANGUAGE_VALUE.fullmatch("") is not None
    assert _LANGUAGE_VALUE.fullmatch("en\n") is None
