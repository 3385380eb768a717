"""Endpoints: URLs folded into templates, so ``/items/1`` and ``/items/2`` count together.

Chromium keys its preflight cache by the full URL, so an API addressed by ids in its paths
pays one preflight per id. Reports group by *endpoint* (scheme, host and path template) to
make that visible: every path segment that looks like an identifier (a number, a UUID, a
hash, a long token mixing letters and digits) becomes ``{id}``, and the query is dropped.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

ID = "{id}"

_NUMBER = re.compile(r"[0-9][0-9_.,:-]*")
_UUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}")
_HEX = re.compile(r"[0-9a-fA-F]{12,}")
_TOKEN = re.compile(r"[A-Za-z0-9_~=+-]{16,}")
# A short extension after an identifier is kept: "/export/123.csv" -> "/export/{id}.csv".
_EXTENSION = re.compile(r"^(?P<stem>.+?)(?P<ext>\.[A-Za-z][A-Za-z0-9]{0,5})$")


def is_identifier(segment: str) -> bool:
    """Whether a path segment names one resource among many rather than a route."""
    if not segment:
        return False
    if _NUMBER.fullmatch(segment) or _UUID.fullmatch(segment) or _HEX.fullmatch(segment):
        return True
    # Long tokens (base64url ids, slugs with hashes) always carry digits; words do not.
    return bool(_TOKEN.fullmatch(segment)) and any(c.isdigit() for c in segment) and any(
        c.isalpha() for c in segment
    )


def _template_segment(segment: str) -> str:
    if is_identifier(segment):
        return ID
    m = _EXTENSION.match(segment)
    if m and is_identifier(m["stem"]):
        return ID + m["ext"]
    return segment


def path_template(url: str) -> str:
    """The URL's path with identifier segments replaced by ``{id}``; query and fragment dropped.

    >>> path_template("https://api.example/v1/items/42/comments?page=2")
    '/v1/items/{id}/comments'
    """
    try:
        path = urlsplit(url).path
    except ValueError:
        # A malformed URL in a capture still deserves a row; keep what precedes the query.
        path = url.split("?", 1)[0].split("#", 1)[0]
    if not path:
        return "/"
    return "/".join(_template_segment(s) for s in path.split("/"))


def host_of(url: str) -> str:
    """``host[:port]`` of the URL as written (lower-cased), or ``""`` when it has none."""
    try:
        return urlsplit(url).netloc.rsplit("@", 1)[-1].lower()
    except ValueError:
        return ""


def path_of(url: str) -> str:
    """The URL's path (no query), ``/`` when empty."""
    try:
        return urlsplit(url).path or "/"
    except ValueError:
        return url.split("?", 1)[0]


def endpoint(url: str) -> str:
    """``scheme://host[:port]`` followed by the path template: what the report groups by."""
    try:
        parts = urlsplit(url)
        base = f"{parts.scheme.lower()}://{host_of(url)}" if parts.scheme else host_of(url)
    except ValueError:
        base = ""
    return base + path_template(url)
