"""What the engine keeps of an exchange once it is read: its CORS headers only.

A report holds every exchange's verdict, so what a verdict carries must not grow with the
capture's headers. The stripped exchange keeps the request's Origin, what a preflight asked
for and its cache-mode headers, and the response's Access-Control-*, Location and Vary. The
short strings each source decodes again for every exchange are interned and the few header
sets a capture repeats thousands of times are shared.
"""

from __future__ import annotations

import sys

from ..model import NO_HINTS, Exchange, Headers, Response

_NO_HEADERS = Headers()
"""Shared by the many stripped exchanges that keep no header at all (immutable)."""
_KEPT_REQUEST = frozenset({"origin", "access-control-request-method",
                           "access-control-request-headers",
                           # the cache mode's evidence (a preflight's lookup may be skipped)
                           "cache-control", "pragma"})


def cors_headers_only(exchange: Exchange, cors: bool) -> Exchange:
    """The exchange with only its CORS headers: the request's Origin, what a preflight
    asked for and its Cache-Control/Pragma, the response's Access-Control-*, Location and Vary (names lower-cased).
    A request that is not a CORS one keeps its Origin only."""
    if not cors:
        origin = exchange.request_headers.scan("origin")
        request = _shared(tuple(("origin", o) for o in origin)) if origin else _NO_HEADERS
        response = exchange.response
        if response is not None:
            response = _compact_response(response, _NO_HEADERS)
        return _compact(exchange, request, response)
    index = exchange.request_headers.by_name()
    request = _shared(tuple((name, value) for name in _KEPT_REQUEST if name in index
                            for value in index[name]))
    response = exchange.response
    if response is not None:
        kept = tuple((name, value) for name, values in response.headers.index().items()
                     if name.startswith("access-control-") or name in ("location", "vary")
                     for value in values)
        response = _compact_response(response, _shared(kept))
    return _compact(exchange, request, response)


_intern = sys.intern
_SHARED_HEADERS: dict[tuple[tuple[str, str], ...], Headers] = {}
_SHARED_MAX = 4096


def _shared(items: tuple[tuple[str, str], ...]) -> Headers:
    """One immutable Headers per distinct stripped header set (bounded memo)."""
    if not items:
        return _NO_HEADERS
    headers = _SHARED_HEADERS.get(items)
    if headers is None:
        if len(_SHARED_HEADERS) >= _SHARED_MAX:
            _SHARED_HEADERS.clear()
        headers = _SHARED_HEADERS[items] = Headers(items)
    return headers


def _compact_response(response: Response, headers: Headers) -> Response:
    return Response(response.status, headers,
                    None if response.reason is None else _intern(response.reason),
                    None if response.http_version is None else _intern(response.http_version),
                    response.finished)


def _compact(exchange: Exchange, request: Headers, response: Response | None) -> Exchange:
    version = exchange.http_version
    hints = exchange.hints
    return Exchange(exchange.id, _intern(exchange.method), exchange.url, request,
                    exchange.started, exchange.source, response, exchange.failure,
                    exchange.timings, None if version is None else _intern(version),
                    NO_HINTS if hints == NO_HINTS else hints)
