"""What the page asked for, inferred from what the browser put on the wire.

A capture shows the request after the browser added its own headers (User-Agent, Sec-*,
Cookie, DevTools' no-cache pair...) and hides the credentials mode. The Fetch algorithms
need the author's request, so this module reconstructs it and says how sure it is.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache

from ..frozen import quick_init
from ..model import Exchange, Headers
from .events import Credentials
from .fetch import (
    _METHOD_OVERRIDES,  # forbidden or not depending on the value
    cors_unsafe_request_header_names,
    is_cors_safelisted_method,
    is_forbidden_request_header,
    is_same_origin,
    is_token,
    mime_essence,
    serialize_origin,
)
from .profiles import EngineProfile

# Not forbidden, yet added by browsers rather than by pages: counting them would make every
# captured request look non-simple. Chromium computes the same exclusions when it builds a
# preflight's Access-Control-Request-Headers from the author's headers only.
BROWSER_ADDED_HEADERS = frozenset(
    {
        "user-agent", "priority", "x-client-data", "purpose", "upgrade-insecure-requests",
        "if-none-match", "if-modified-since", "x-devtools-emulate-network-conditions-client-id",
        "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-real-ip",
    }
)

PRIVATE_NETWORK_REQUEST = "access-control-request-private-network"
"""What a Private Network Access preflight carries (wicg.github.io/private-network-access)."""

_NOT_CORS_MODES = {"navigate", "no-cors", "same-origin", "websocket", "nested-navigate"}
_NOT_CORS_RESOURCE_TYPES = {"document", "websocket", "iframe", "manifest", "ping", "csp_violation_report"}


@quick_init
@dataclass(frozen=True, slots=True)
class RequestView:
    """The engine's reading of one captured request."""

    origin: str | None
    cors: bool
    """A cross-origin request in CORS mode."""
    not_cors_reason: str | None
    preflight: bool
    """An OPTIONS request carrying Origin and Access-Control-Request-Method."""
    requested_method: str | None
    """On a preflight: Access-Control-Request-Method."""
    requested_headers: tuple[str, ...]
    """On a preflight: Access-Control-Request-Headers, lower-cased, in order."""
    unsafe_names: tuple[str, ...]
    preflight_reasons: tuple[str, ...]
    credentials: Credentials
    credentials_evidence: str
    cache_bypass: bool
    """The request carries the ``Pragma: no-cache`` / ``Cache-Control: no-cache`` pair
    Chromium adds when the HTTP cache is bypassed (DevTools' "Disable cache", hard reload)."""
    private_network: bool = False
    """On a preflight: it carries ``Access-Control-Request-Private-Network: true``, so it is
    (also) a Private Network Access preflight (Chromium before Local Network Access)."""


def split_header_names(value: str | None) -> tuple[str, ...]:
    """Access-Control-Request-Headers as a tuple of lower-case names."""
    if not value:
        return ()
    return tuple(n.strip(" \t").lower() for n in value.split(",") if n.strip(" \t"))


def has_cache_bypass(headers: Headers) -> bool:
    pragma = (headers.get("pragma") or "").lower()
    cache_control = (headers.get("cache-control") or "").lower()
    return "no-cache" in pragma and "no-cache" in cache_control


def is_no_cache_mode_value(value: str) -> bool:
    """``Cache-Control: max-age=0`` is what fetch() adds in cache mode "no-cache" (to the
    request, and in Chromium and Firefox to its preflight: tests/browser mode-no-cache), not
    a header the page set: a page's own Cache-Control would have been listed in the
    preflight's Access-Control-Request-Headers, which the browser's never is."""
    return value.strip().lower() == "max-age=0"


@lru_cache(maxsize=2048)
def _authorable(name: str) -> str | None:
    """The lower-cased name when a page could have set a header so named, whatever its
    value; None when never. Cached: a capture repeats a few dozen names many times."""
    lower = name.lower()
    if not is_token(name) or lower in BROWSER_ADDED_HEADERS:
        return None
    if lower not in _METHOD_OVERRIDES and is_forbidden_request_header(name, ""):
        return None
    return lower


def author_headers(headers: Headers, cache_bypass: bool) -> tuple[tuple[str, str], ...]:
    """The request's headers minus forbidden and browser-added ones."""
    kept = []
    for name, value in headers.items:
        # Pseudo-headers, and lines some tools list as headers (WebPageTest puts the
        # request line there), are not header fields a page could have set.
        lower = _authorable(name)
        if lower is None:
            continue
        if lower in _METHOD_OVERRIDES and is_forbidden_request_header(name, value):
            continue
        if cache_bypass and lower in ("pragma", "cache-control"):
            continue
        if lower == "cache-control" and is_no_cache_mode_value(value) \
                and headers.get("pragma") is None:
            continue  # fetch()'s no-cache mode adds Cache-Control alone

        kept.append((name, value))
    return tuple(kept)


def preflight_reasons(method: str, unsafe: tuple[str, ...], headers: Headers) -> tuple[str, ...]:
    """Why a request needs a preflight, one phrase per cause."""
    reasons = []
    if not is_cors_safelisted_method(method):
        reasons.append(f"method {method}")
    for name in unsafe:
        if name == "content-type":
            value = headers.get("content-type") or ""
            reasons.append(f"Content-Type {mime_essence(value) or repr(value)}")
        else:
            reasons.append(f"header {name}")
    return tuple(reasons)


def _origin_from_referer(exchange: Exchange) -> str | None:
    """The page's origin for a failed script fetch recorded without its Origin header.

    Playwright's HAR records a request Chromium blocked with the renderer's headers only (no
    Origin); its Referer (the page, or its origin under the default referrer policy) still
    tells where it came from. Only failed fetch/XHR requests qualify: a successful one would
    show the Origin it was sent with.
    """
    if not exchange.failure or exchange.response is not None:
        return None
    kind = (exchange.hints.resource_type or "").lower()
    mode = (exchange.request_headers.get("sec-fetch-mode") or "").lower()
    if kind not in ("fetch", "xhr") and mode != "cors":
        return None
    referer = exchange.request_headers.get("referer")
    if not referer:
        return None
    origin = serialize_origin(referer)
    if origin == "null" or origin == serialize_origin(exchange.url):
        return None
    return origin


def view_request(exchange: Exchange, profile: EngineProfile) -> RequestView:
    """Classify one captured request and reconstruct what its author asked for."""
    headers = exchange.request_headers
    if not headers.scan("origin") and (not exchange.failure or exchange.response is not None):
        # Most exchanges of a capture carry no Origin (and _origin_from_referer needs a
        # failure): settle them without indexing every header.
        bypass = bool(headers.scan("pragma")) and has_cache_bypass(headers)
        return RequestView(None, False, "no Origin header", False, None, (), (), (),
                           "unknown", "", bypass)
    origin = headers.get("origin")
    if origin is not None:
        origin = sys.intern(origin)  # kept by the verdict; a capture has a handful of origins
    bypass = has_cache_bypass(headers)
    acrm = headers.get("access-control-request-method")

    def not_cors(reason: str) -> RequestView:
        return RequestView(origin, False, reason, False, None, (), (), (), "unknown", "", bypass)

    origin_note = ""
    if origin is None:
        origin = _origin_from_referer(exchange)
        if origin is None:
            return not_cors("no Origin header")
        origin_note = (" (the capture leaves out Origin: taken from Referer, as the browser "
                       "failed a cross-origin fetch)")
    if exchange.method.upper() == "OPTIONS" and acrm is not None:
        return RequestView(
            origin, True, None, True, acrm.strip(" \t"),
            split_header_names(headers.get("access-control-request-headers")),
            (), (), "unknown", "a preflight never carries credentials", bypass,
            (headers.get(PRIVATE_NETWORK_REQUEST) or "").strip(" \t") == "true",
        )
    mode = (headers.get("sec-fetch-mode") or "").lower()
    if mode in _NOT_CORS_MODES:
        return not_cors(f"Sec-Fetch-Mode is {mode!r}")
    resource_type = (exchange.hints.resource_type or "").lower()
    if mode != "cors" and resource_type in _NOT_CORS_RESOURCE_TYPES:
        # Sec-Fetch-Mode, where the browser sent it, is the request's mode itself; the
        # capturing tool's resource type is only a fallback.
        return not_cors(f"a {resource_type} request")
    if (headers.get("upgrade") or "").lower() == "websocket":
        return not_cors("a WebSocket handshake (the server checks Origin itself)")
    if is_same_origin(origin, exchange.url):
        return not_cors("same-origin")

    authored = author_headers(headers, bypass)
    unsafe = cors_unsafe_request_header_names(authored, profile)
    if "cookie" in headers:
        credentials: Credentials = "include"
        evidence = "the request carries a Cookie header, so its credentials mode is 'include'"
    else:
        credentials = "unknown"
        evidence = "no Cookie header: the credentials mode cannot be seen"
    evidence += origin_note
    return RequestView(
        origin, True, None, False, None, (), unsafe,
        preflight_reasons(exchange.method, unsafe, headers), credentials, evidence, bypass,
    )
