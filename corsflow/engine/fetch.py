"""The Fetch standard's CORS algorithms, as small pure functions.

Each function names the standard's term and its anchor in https://fetch.spec.whatwg.org/ .
Where browsers deliberately differ from the standard, the difference is a field of the
:class:`~corsflow.engine.profiles.EngineProfile` passed in, never a branch on a browser name.

Header values are ``str`` holding one character per byte (isomorphic decoding), so the
standard's byte rules apply to ``ord(c)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from ..frozen import quick_init
from .events import TraceStep
from .profiles import EngineProfile

SPEC = "https://fetch.spec.whatwg.org/"

# --- origins ---------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


@lru_cache(maxsize=1024)  # urlsplit is slow, and a capture requests the same URLs again
def serialize_origin(url: str) -> str:
    """#ascii-serialisation-of-an-origin of a URL's origin: ``scheme://host[:port]``.

    "If origin's port is non-null, append ':' followed by origin's port": the URL parser
    makes default ports null, so they are omitted. Non-HTTP(S) schemes give ``"null"``.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # an unterminated IPv6 literal, a port out of range: no URL, no origin
        return "null"
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return "null"
    host = parts.hostname  # already lower-cased
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def is_same_origin(request_origin: str, url: str) -> bool:
    """#same-origin between the request's origin (an Origin header value) and its URL."""
    return request_origin != "null" and request_origin == serialize_origin(url)


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})
_PORT = re.compile(r"[0-9]*")
_FORBIDDEN_HOST_CHARS = frozenset(" #/:<>?@[\\]^|")


def is_valid_origin_value(value: str) -> bool:
    """Whether an Access-Control-Allow-Origin value is a valid URL, as GURL judges it.

    Chromium reports kInvalidAllowOriginValue when ``GURL(value).is_valid()`` is false
    (services/network/public/cpp/cors/cors.cc, CheckAccess): no scheme, or a special scheme
    (http, https, ws, wss, ftp) without a usable host or with a bad port. Any other scheme
    followed by anything is a valid URL (``mailto:x``), hence a mismatch, not invalid.
    """
    if not value or any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in value):
        return False
    scheme, colon, rest = value.partition(":")
    if not colon or not _SCHEME.fullmatch(scheme):
        return False
    if scheme.lower() not in _SPECIAL_SCHEMES:
        return True
    # Special schemes: the authority follows any run of slashes, up to a path, query or
    # fragment; userinfo is dropped; an IPv6 literal keeps its brackets.
    authority = re.split(r"[/?#\\]", rest.lstrip("/\\"), maxsplit=1)[0]
    host_port = authority.rpartition("@")[2]
    if host_port.startswith("["):
        host, bracket, port = host_port[1:].partition("]")
        if not bracket or not host or any(c not in "0123456789abcdefABCDEF:." for c in host):
            return False
        if port and not port.startswith(":"):
            return False
        port = port[1:]
    else:
        host, _, port = host_port.partition(":")
        if not host or any(c in _FORBIDDEN_HOST_CHARS for c in host):
            return False
    if not _PORT.fullmatch(port):
        return False
    # Leading zeros are allowed (":080" is port 80); past five digits no value fits, and
    # int() refuses a few thousand of them.
    digits = port.lstrip("0")
    return len(digits) <= 5 and (not digits or int(digits) <= 65535)


# --- which requests need a preflight -------------------------------------------------------

CORS_SAFELISTED_METHODS = frozenset({"GET", "HEAD", "POST"})


def is_cors_safelisted_method(method: str) -> bool:
    """#cors-safelisted-method: "a method that is `GET`, `HEAD`, or `POST`" (byte-exact)."""
    return method in CORS_SAFELISTED_METHODS


FORBIDDEN_REQUEST_HEADERS = frozenset(
    {
        "accept-charset", "accept-encoding", "access-control-request-headers",
        "access-control-request-method", "connection", "content-length", "cookie",
        "cookie2", "date", "dnt", "expect", "host", "keep-alive", "origin", "referer",
        "set-cookie", "te", "trailer", "transfer-encoding", "upgrade", "via",
    }
)
_METHOD_OVERRIDES = frozenset({"x-http-method", "x-http-method-override", "x-method-override"})
_FORBIDDEN_METHODS = frozenset({"CONNECT", "TRACE", "TRACK"})


def is_forbidden_request_header(name: str, value: str) -> bool:
    """#forbidden-request-header: set by the user agent, never by the page's author.

    "If name is a byte-case-insensitive match for one of [the list]", "If name when
    byte-lowercased starts with `proxy-` or `sec-`", and the method-override headers when
    "one of the values, parsed, is a forbidden method".
    """
    lower = name.lower()
    if lower in FORBIDDEN_REQUEST_HEADERS or lower.startswith(("proxy-", "sec-")):
        return True
    if lower in _METHOD_OVERRIDES:
        return any(v.strip().upper() in _FORBIDDEN_METHODS for v in value.split(","))
    return False


def _is_unsafe_byte(c: str) -> bool:
    """#cors-unsafe-request-header-byte."""
    b = ord(c)
    return (b < 0x20 and b != 0x09) or c in '"():<>?@[\\]{}' or b == 0x7F


# The same rules as regular expressions: one C-level scan of a value instead of a Python
# call per character (tests pin them to _is_unsafe_byte and _LANGUAGE_OK).
_UNSAFE_BYTE = re.compile('[\x00-\x08\x0a-\x1f"():<>?@\\[\\\\\\]{}\x7f]')
_LANGUAGE_OK = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz *,-.;=")
_LANGUAGE_VALUE = re.compile(r"[0-9A-Za-z *,\-.;=]*")
_SAFELISTED_ESSENCES = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_RANGE = re.compile(r"bytes=([0-9]*)-([0-9]*)")


def is_token(value: str) -> bool:
    """An HTTP token (RFC 9110 ``token``): what header names and methods are made of."""
    return bool(_TOKEN.fullmatch(value))


def mime_essence(value: str) -> str | None:
    """#parse-a-mime-type, reduced to what the safelist needs: the essence, or None on failure.

    "type ... If type is the empty string or does not solely contain HTTP token code
    points, then return failure"; likewise for the subtype. Parameters are ignored.
    """
    value = value.strip(" \t\r\n")
    slash = value.find("/")
    if slash <= 0:
        return None
    mime_type = value[:slash]
    subtype = value[slash + 1 :].split(";", 1)[0].rstrip(" \t\r\n")
    if not _TOKEN.fullmatch(mime_type) or not subtype or not _TOKEN.fullmatch(subtype):
        return None
    return f"{mime_type}/{subtype}".lower()


def _byte_length(value: str) -> int:
    try:
        return len(value.encode("latin-1"))
    except UnicodeEncodeError:
        return len(value.encode("utf-8"))


_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_INTEGER = re.compile(r"[0-9]+")
_ECT_VALUES = frozenset({"slow-2g", "2g", "3g", "4g"})
# Value rules of the names an engine safelists beyond the standard, keyed by name (Chromium's
# services/network/public/cpp/cors/cors.cc IsCorsSafelistedHeader; `intervention` and the
# forbidden sec-ch-* names take any value). A name without a rule here takes any value.
_EXTRA_VALUE_RULES: dict[str, Callable[[str], bool]] = {
    **dict.fromkeys(("device-memory", "dpr", "downlink"),
                    lambda v: _DECIMAL.fullmatch(v) is not None),  # 1*DIGIT [ "." 1*DIGIT ]
    **dict.fromkeys(("width", "viewport-width", "rtt"),
                    lambda v: _INTEGER.fullmatch(v) is not None),  # 1*DIGIT
    "ect": lambda v: v in _ECT_VALUES,  # kWebEffectiveConnectionTypeMapping, case-sensitive
    "save-data": lambda v: v.lower() == "on",
}


def is_cors_safelisted_request_header(
    name: str, value: str, profile: EngineProfile | None = None
) -> bool:
    """#cors-safelisted-request-header.

    "If value's length is greater than 128, then return false", then per name: Accept,
    Accept-Language, Content-Language, Content-Type and Range have value rules; every other
    name is not safelisted, except where the engine profile safelists more (Chromium's
    client hints, ``save-data``), each with its own value rule.
    """
    if _byte_length(value) > 128:
        return False
    lower = name.lower()
    if lower == "accept":
        return _UNSAFE_BYTE.search(value) is None
    if lower in ("accept-language", "content-language"):
        return _LANGUAGE_VALUE.fullmatch(value) is not None
    if lower == "content-type":
        if _UNSAFE_BYTE.search(value) is not None:
            return False
        return mime_essence(value) in _SAFELISTED_ESSENCES
    if lower == "range":
        # "Let rangeValue be the result of parsing a single range header value ...
        # If rangeValue is failure, then return false. If rangeValue[0] is null, then
        # return false" (suffix ranges such as bytes=-500 are not safelisted). The parse is
        # "given value and false": allowWhitespace is false, so no whitespace anywhere
        # (Chromium's IsCorsSafelistedHeader likewise refuses any LWS in a Range value).
        # WebKit compares the unit case-insensitively (scenario range-uppercase).
        m = _RANGE.fullmatch(value.lower() if profile is not None
                             and profile.range_unit_case_insensitive else value)
        return bool(m and m.group(1) and (not m.group(2) or int(m.group(1)) <= int(m.group(2))))
    if profile is None or lower not in profile.extra_safelisted_headers:
        return False
    rule = _EXTRA_VALUE_RULES.get(lower)
    return rule is None or rule(value)


def cors_unsafe_request_header_names(
    headers: Iterable[tuple[str, str]], profile: EngineProfile | None = None
) -> tuple[str, ...]:
    """#cors-unsafe-request-header-names: the sorted, lower-cased, de-duplicated names.

    "If safelistValueSize is greater than 1024, then for each name of potentiallyUnsafeNames,
    append name to unsafeNames." Author headers only: forbidden ones must be removed first.
    """
    unsafe: set[str] = set()
    potentially: set[str] = set()
    size = 0
    for name, value in headers:
        if is_cors_safelisted_request_header(name, value, profile):
            potentially.add(name.lower())
            size += _byte_length(value)
        else:
            unsafe.add(name.lower())
    if size > 1024:
        unsafe |= potentially
    return tuple(sorted(unsafe))


# --- parsing the preflight response ---------------------------------------------------------


def extract_header_list_values(value: str | None) -> tuple[str, ...] | None:
    """#extract-header-list-values for ``#method`` / ``#field-name`` (Allow-Methods/-Headers).

    Returns None when the header is absent ("null") and raises ValueError when an item is not
    a token ("If parsing failed, then return failure"). Empty list elements are allowed.
    """
    if value is None:
        return None
    items = []
    for raw in value.split(","):
        item = raw.strip(" \t")
        if not item:
            continue
        if not _TOKEN.fullmatch(item):
            raise ValueError(item)
        items.append(item)
    return tuple(items)


@quick_init
@dataclass(frozen=True, slots=True)
class ParsedMaxAge:
    raw: str | None
    parsed: int | None
    seconds: float
    """Seconds to cache, after the default and the cap; 0 means not cached."""
    clamped: bool
    invalid: bool


_DIGITS = re.compile(r"[0-9]+")
_SIGNED = re.compile(r"[+-]?[0-9]+")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def parse_int64(text: str) -> int | None:
    """A signed 64-bit integer in ASCII digits, or None (Chromium's base::StringToInt64,
    WebKit's parseInteger<int64_t>: no blanks, failure on overflow)."""
    if _SIGNED.fullmatch(text) is None:
        return None
    # int() refuses more than 4,300 digits: leading zeros go first, and a run of more than
    # 19 digits is past any 64-bit integer anyway.
    digits = text.lstrip("+-").lstrip("0")
    if len(digits) > 19:
        return None
    value = -int(digits or "0") if text[0] == "-" else int(digits or "0")
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def _parse_max_age_value(text: str, profile: EngineProfile) -> int | None:
    """The integer the engine reads from a non-empty Max-Age, or None when it fails.

    Engines that accept a sign parse a signed 64-bit integer (Chromium base::StringToInt64,
    WebKit parseInteger<int64_t>), which fails on overflow; Firefox reads digits only and
    saturates at its cap, so any run of digits is a number there.
    """
    if profile.max_age_accepts_sign:
        return parse_int64(text)
    if _DIGITS.fullmatch(text) is None:
        return None
    digits = text.lstrip("0") or "0"
    return _INT64_MAX if len(digits) > 19 else min(int(digits), _INT64_MAX)


def parse_max_age(values: tuple[str, ...], profile: EngineProfile) -> ParsedMaxAge:
    """The CORS-preflight fetch's max-age step, as the engine profile reads it.

    "Let max-age be the result of extracting header list values given
    `Access-Control-Max-Age` ... If max-age is failure or null, then set max-age to 5.
    If max-age is greater than an imposed limit on max-age, then set max-age to the imposed
    limit." Repeated headers are combined first, so two headers make a failure.
    """
    if not values:
        return ParsedMaxAge(None, None, float(profile.max_age_default), False, False)
    raw = ", ".join(values)
    text = raw.strip(" \t")
    if not text:
        # Present but empty: every engine uses the default. Firefox's AddResultToCache says
        # "if (headerVal.IsEmpty()) age = PREFLIGHT_DEFAULT_EXPIRY_SECONDS"; elsewhere the
        # empty string fails to parse, which means the default too.
        return ParsedMaxAge(raw, None, float(profile.max_age_default), False, True)
    value = _parse_max_age_value(text, profile)
    if value is None:
        seconds = float(profile.max_age_default) if profile.invalid_max_age_uses_default else 0.0
        return ParsedMaxAge(raw, None, seconds, False, True)
    if value <= 0:
        return ParsedMaxAge(raw, value, 0.0, False, False)
    if value > profile.max_age_cap:
        return ParsedMaxAge(raw, value, float(profile.max_age_cap), True, False)
    return ParsedMaxAge(raw, value, float(value), False, False)


# --- the CORS check ------------------------------------------------------------------------------


@quick_init
@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of a check: ``error`` is a ``Network.CorsError`` name, None on success."""

    error: str | None
    failed_parameter: str | None
    trace: tuple[TraceStep, ...]

    @property
    def ok(self) -> bool:
        return self.error is None


def cors_check(
    response_headers_get: dict[str, tuple[str, ...]],
    origin: str,
    credentials_include: bool,
    *,
    preflight: bool = False,
) -> CheckResult:
    """#cors-check on a response's headers (given as lower-case name -> values).

    Chromium names the failure by what the Allow-Origin value looks like when it does not
    equal the origin (services/network/public/cpp/cors/cors.cc): several values, an invalid
    URL, or a mismatch. On a preflight response the names get the ``Preflight`` prefix.
    """
    prefix = "Preflight" if preflight else ""
    what = "preflight response" if preflight else "response"
    trace: list[TraceStep] = []
    values = response_headers_get.get("access-control-allow-origin", ())
    # "Let origin be the result of getting `Access-Control-Allow-Origin` from response's
    # header list. If origin is null, then return failure."
    if not values:
        trace.append(TraceStep(
            "CORS check: Access-Control-Allow-Origin present", "fail",
            f"the {what} has no Access-Control-Allow-Origin header", "#cors-check"))
        return CheckResult(f"{prefix}MissingAllowOriginHeader", None, tuple(trace))
    allow_origin = ", ".join(values)
    # "If request's credentials mode is not "include" and origin is `*`, then return success."
    if allow_origin == "*":
        if credentials_include:
            trace.append(TraceStep(
                "CORS check: wildcard Allow-Origin", "fail",
                "Access-Control-Allow-Origin is '*' but the request's credentials mode is "
                "'include'", "#cors-protocol-and-credentials"))
            return CheckResult(f"{prefix}WildcardOriginNotAllowed", None, tuple(trace))
        trace.append(TraceStep(
            "CORS check: wildcard Allow-Origin", "pass",
            "Access-Control-Allow-Origin is '*' and the request is not credentialed",
            "#cors-check"))
        return CheckResult(None, None, tuple(trace))
    # "If the result of byte-serializing a request origin with request is not origin, then
    # return failure."
    if allow_origin != origin:
        if len(values) > 1 or any(c in allow_origin for c in " ,"):
            error = "MultipleAllowOriginValues"
        elif allow_origin != "null" and not is_valid_origin_value(allow_origin):
            error = "InvalidAllowOriginValue"
        else:
            error = "AllowOriginMismatch"
        trace.append(TraceStep(
            "CORS check: Access-Control-Allow-Origin equals the request's origin", "fail",
            f"{allow_origin!r} != {origin!r}", "#cors-check"))
        return CheckResult(prefix + error, allow_origin, tuple(trace))
    trace.append(TraceStep(
        "CORS check: Access-Control-Allow-Origin equals the request's origin", "pass",
        f"{allow_origin!r}", "#cors-check"))
    # "If request's credentials mode is not "include", then return success."
    if not credentials_include:
        return CheckResult(None, None, tuple(trace))
    # "Let credentials be the result of getting `Access-Control-Allow-Credentials` ...
    # If credentials is `true`, then return success."
    acac = ", ".join(response_headers_get.get("access-control-allow-credentials", ()))
    if acac != "true":
        trace.append(TraceStep(
            "CORS check: Access-Control-Allow-Credentials is 'true'", "fail",
            f"credentials mode is 'include' and Access-Control-Allow-Credentials is "
            f"{acac!r}" if acac else "credentials mode is 'include' and "
            "Access-Control-Allow-Credentials is absent", "#cors-check"))
        return CheckResult(f"{prefix}InvalidAllowCredentials", acac, tuple(trace))
    trace.append(TraceStep(
        "CORS check: Access-Control-Allow-Credentials is 'true'", "pass", "'true'", "#cors-check"))
    return CheckResult(None, None, tuple(trace))


def is_ok_status(status: int) -> bool:
    """#ok-status: "any status in the range 200 to 299, inclusive"."""
    return 200 <= status <= 299


def is_redirect_status(status: int) -> bool:
    """#redirect-status: 301, 302, 303, 307 or 308."""
    return status in (301, 302, 303, 307, 308)


# --- the CORS-preflight fetch's checks ------------------------------------------------------------


@quick_init
@dataclass(frozen=True, slots=True)
class PreflightOutcome:
    """What a preflight response grants, and whether it authorises the requested method and
    headers."""

    check: CheckResult
    methods: tuple[str, ...] | None
    """Allow-Methods as parsed (None: absent or unparsable)."""
    headers: tuple[str, ...] | None
    max_age: ParsedMaxAge


def preflight_check(
    status: int,
    response_headers_get: dict[str, tuple[str, ...]],
    origin: str,
    method: str,
    unsafe_names: tuple[str, ...],
    credentials_include: bool,
    profile: EngineProfile,
    private_network: bool = False,
) -> PreflightOutcome:
    """#cors-preflight-fetch-0, steps after the response arrives, in the engine's order.

    "If a CORS check for request and response returns success and response's status is an
    ok status, then:" parse Allow-Methods and Allow-Headers, check the method, check each
    CORS-unsafe header name, then compute max-age. Chromium runs the CORS check before the
    status check, so a 401 without CORS headers is reported as a missing Allow-Origin.
    """
    trace: list[TraceStep] = []
    max_age = parse_max_age(response_headers_get.get("access-control-max-age", ()), profile)

    def done(error: str | None, param: str | None = None,
             methods: tuple[str, ...] | None = None,
             headers: tuple[str, ...] | None = None) -> PreflightOutcome:
        return PreflightOutcome(CheckResult(error, param, tuple(trace)), methods, headers, max_age)

    # A preflight is fetched with redirect mode "manual" through HTTP-network-or-cache fetch:
    # "If response's status is not an ok status" covers redirects; Chromium names them apart.
    # A redirect status is a redirect only with a Location to follow (Chromium 156: a 302
    # without Location, or with an empty one, is an ordinary non-ok response).
    location = any(v.strip(" \t") for v in response_headers_get.get("location", ()))
    redirected = is_redirect_status(status) and location

    def redirect_step() -> PreflightOutcome:
        trace.append(TraceStep("CORS-preflight fetch: no redirect", "fail",
                               f"the preflight was answered with a redirect ({status})",
                               "#cors-preflight-fetch-0"))
        return done("PreflightDisallowedRedirect")

    if redirected and profile.preflight_redirect_before_cors_check:
        return redirect_step()

    def status_step() -> PreflightOutcome | None:
        if is_ok_status(status):
            trace.append(TraceStep("CORS-preflight fetch: ok status", "pass", f"status {status}",
                                   "#ok-status"))
            return None
        trace.append(TraceStep("CORS-preflight fetch: ok status", "fail",
                               f"status {status} is not in 200-299", "#ok-status"))
        # Chromium names no failed parameter for these three (CorsErrorStatus without one);
        # the trace keeps the value.
        return done("PreflightInvalidStatus")

    if profile.preflight_status_before_cors_check and (failed := status_step()) is not None:
        return failed
    check = cors_check(response_headers_get, origin, credentials_include, preflight=True)
    trace.extend(check.trace)
    if not check.ok:
        return done(check.error, check.failed_parameter)
    if redirected:  # Firefox: Allow-Origin first (profiles.preflight_redirect_before_cors_check)
        return redirect_step()
    if not profile.preflight_status_before_cors_check and (failed := status_step()) is not None:
        return failed
    if private_network and (failed := _private_network_step(response_headers_get, trace,
                                                            done)) is not None:
        return failed

    # "Let methods be the result of extracting header list values given
    # `Access-Control-Allow-Methods` ... If either methods or headerNames is failure,
    # return a network error."
    acam = response_headers_get.get("access-control-allow-methods", ())
    try:
        methods = extract_header_list_values(", ".join(acam) if acam else None)
    except ValueError:
        trace.append(TraceStep("Parse Access-Control-Allow-Methods", "fail",
                               f"{', '.join(acam)!r} is not a list of tokens",
                               "#extract-header-list-values"))
        return done("InvalidAllowMethodsPreflightResponse")
    acah = response_headers_get.get("access-control-allow-headers", ())
    try:
        header_names = extract_header_list_values(", ".join(acah) if acah else None)
    except ValueError:
        trace.append(TraceStep("Parse Access-Control-Allow-Headers", "fail",
                               f"{', '.join(acah)!r} is not a list of tokens",
                               "#extract-header-list-values"))
        return done("InvalidAllowHeadersPreflightResponse", None, methods)

    # "If request's method is not in methods, request's method is not a CORS-safelisted
    # method, and request's credentials mode is "include" or methods does not contain `*`,
    # then return a network error."
    allowed_methods = methods or ()
    compared = method.upper() if profile.method_uppercased_before_compare else method
    if is_cors_safelisted_method(method) or compared in allowed_methods:
        trace.append(TraceStep("Method allowed", "pass",
                               f"{method} is safelisted" if is_cors_safelisted_method(method)
                               else f"{method} is in Allow-Methods {list(allowed_methods)}",
                               "#cors-preflight-fetch-0"))
    elif "*" in allowed_methods and not credentials_include:
        trace.append(TraceStep("Method allowed", "pass",
                               f"Allow-Methods '*' covers {method} (not credentialed)",
                               "#cors-preflight-fetch-0"))
    else:
        why = (" ('*' is literal for credentialed requests)"
               if "*" in allowed_methods else "")
        trace.append(TraceStep("Method allowed", "fail",
                               f"{method} is not in Allow-Methods "
                               f"{list(allowed_methods)}{why}", "#cors-preflight-fetch-0"))
        return done("MethodDisallowedByPreflightResponse", method, methods, header_names)

    # "For each unsafeName in the CORS-unsafe request-header names with request's header
    # list, if unsafeName is not a byte-case-insensitive match for an item in headerNames
    # and request's credentials mode is "include" or headerNames does not contain `*`,
    # return a network error." The standard also refuses `*` for `Authorization`; the
    # profile says whether the engine follows that in its preflight check.
    allowed_lower = {h.lower() for h in header_names or ()}
    star = "*" in allowed_lower and not credentials_include
    for name in unsafe_names:
        if name in allowed_lower:
            continue
        if star and (name != "authorization" or profile.wildcard_covers_authorization_in_check):
            continue
        why = ""
        if name == "authorization" and star:
            why = " ('*' never covers Authorization)"
        elif "*" in allowed_lower:
            why = " ('*' is literal for credentialed requests)"
        trace.append(TraceStep("Request headers allowed", "fail",
                               f"{name} is not in Allow-Headers "
                               f"{list(header_names or ())}{why}", "#cors-preflight-fetch-0"))
        return done("HeaderDisallowedByPreflightResponse", name, methods, header_names)
    if unsafe_names:
        trace.append(TraceStep("Request headers allowed", "pass",
                               f"{list(unsafe_names)} covered by Allow-Headers "
                               f"{list(header_names or ())}", "#cors-preflight-fetch-0"))
    trace.append(TraceStep("Max-Age", "info",
                           f"{max_age.raw!r} -> cached for {max_age.seconds:g} s"
                           if max_age.raw is not None
                           else f"absent -> default {max_age.seconds:g} s",
                           "#cors-preflight-fetch-0"))
    return done(None, None, methods, header_names)


def _private_network_step(
    response_headers_get: dict[str, tuple[str, ...]], trace: list[TraceStep],
    done: Callable[[str | None, str | None], PreflightOutcome],
) -> PreflightOutcome | None:
    """Private Network Access, #cors-preflight step 4 (wicg.github.io/private-network-access):
    a preflight that asked `Access-Control-Request-Private-Network: true` needs
    `Access-Control-Allow-Private-Network: true` in its response. Chromium checks it after
    the CORS check and the status, before Allow-Methods and Allow-Headers
    (services/network/cors/preflight_controller.cc, CheckAllowPrivateNetworkHeader), and
    compares the value byte for byte with `true`."""
    values = response_headers_get.get("access-control-allow-private-network", ())
    if not values:
        trace.append(TraceStep("Private Network Access: Access-Control-Allow-Private-Network",
                               "fail", "the preflight asked for private network access and "
                               "the response has no Access-Control-Allow-Private-Network",
                               "#cors-preflight"))
        return done("PreflightMissingAllowPrivateNetwork", None)
    value = ", ".join(values)
    if value != "true":
        trace.append(TraceStep("Private Network Access: Access-Control-Allow-Private-Network",
                               "fail", f"{value!r} is not 'true'", "#cors-preflight"))
        return done("PreflightInvalidAllowPrivateNetwork", value)
    trace.append(TraceStep("Private Network Access: Access-Control-Allow-Private-Network",
                           "pass", "'true'", "#cors-preflight"))
    return None
