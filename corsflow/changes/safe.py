"""Values that are safe to advise: origins as the browser serialises them, never ``null``.

Advice is copied into server configurations, so it must not open more than it fixes: never
``Access-Control-Allow-Origin: null`` (sandboxed iframes, ``data:`` documents and
cross-origin redirects all send ``Origin: null``, so allowing it allows any of them), never
an origin with a path, never two values in one header, never "reflect any origin".
"""

from __future__ import annotations

from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}

NULL_ORIGIN_ADVICE = (
    "requests come from an opaque origin (`Origin: null`: a sandboxed iframe, a data: or "
    "file: document, or a request redirected across origins); do not allow `null`, since "
    "every sandboxed or data: document anywhere sends it too: serve the page from a real "
    "origin (or give the sandbox `allow-same-origin`), request the final URL instead of one "
    "that redirects, then allow that origin")


def browser_origin(value: str | None) -> str | None:
    """``value`` (an Origin header or a URL) as the browser serialises an origin:
    lower-case scheme and host, the host in ASCII (IDNA), the default port dropped, no
    path. None for ``null``, opaque or unparsable origins: never advise those."""
    if value is None:
        return None
    value = value.strip()
    if not value or value == "null":
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
        host = parts.hostname
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    try:
        host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def pretty_header(name: str) -> str:
    """``x-trace-id`` -> ``X-Trace-Id`` (header names are case-insensitive; this is how
    people write them)."""
    return "-".join(p[:1].upper() + p[1:] for p in name.split("-"))
