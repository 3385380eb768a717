"""URL helpers shared by the findings and the reports: endpoints and path templates."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import SplitResult, urlsplit

_ID_SEGMENT = re.compile(
    r"""^(?:
        \d+                                              # 42
      | \d+\.[A-Za-z0-9]{1,5}                              # 123.csv
      | [0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}   # a UUID
      | [0-9a-fA-F]{12,}                                 # hashes, object ids
      | (?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,}           # long opaque tokens with digits
    )$""",
    re.VERBOSE,
)


def _split(url: str) -> SplitResult:
    """urlsplit that never raises: a malformed URL (``http://[::1/x``) from a capture is
    grouped as written instead of stopping the analysis."""
    try:
        return urlsplit(url)
    except ValueError:
        return SplitResult("", "", url, "", "")


@lru_cache(maxsize=65536)
def path_template(url: str) -> str:
    """The URL's path with id-like segments replaced by ``{id}`` and the query dropped:
    ``https://api.example/items/42?x=1`` -> ``/items/{id}``."""
    path = _split(url).path or "/"
    return "/".join("{id}" if _ID_SEGMENT.match(seg) else seg for seg in path.split("/"))


@lru_cache(maxsize=65536)
def url_origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, as written (for grouping, not for CORS checks)."""
    parts = _split(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme else ""


def endpoint(url: str) -> str:
    """Where a request goes, without the ids: ``https://api.example/items/{id}``."""
    return url_origin(url) + path_template(url)


def url_path(url: str) -> str:
    """The path and query of a URL, for messages."""
    parts = _split(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
