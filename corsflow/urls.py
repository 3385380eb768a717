"""URL helpers shared by the findings and the reports: endpoints and path templates."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, urlsplit

from .memo import capture_memo

_ID_SEGMENT = re.compile(
    r"""^(?:
        \d+                                              # 42
      | \d+\.[A-Za-z0-9]{1,5}                              # 123.csv
      | [0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}   # a UUID
      | [0-9a-fA-F]{12,}                                 # hashes, object ids
      | (?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{20,}           # long opaque tokens with digits
      | [a-z]{2,8}_[A-Za-z0-9]{8,}                       # prefixed ids: cus_kEFwJVryKbPgTV
      | (?=[A-Za-z0-9]*[A-Z][A-Za-z0-9]*[A-Z])(?=[A-Za-z0-9]*[a-z])(?=[A-Za-z0-9]*\d)
        [A-Za-z0-9]{10,}                                 # mixed-case opaque ids with digits
      | [a-z0-9]+(?:-[a-z0-9]+){3,}                      # long slugs: how-to-read-a-har
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


@capture_memo(65536)
def path_template(url: str) -> str:
    """The URL's path with id-like segments replaced by ``{id}`` and the query dropped:
    ``https://api.example/items/42?x=1`` -> ``/items/{id}``."""
    path = _split(url).path or "/"
    return "/".join("{id}" if _ID_SEGMENT.match(seg) else seg for seg in path.split("/"))


@capture_memo(65536)
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


_PATTERN_SEGMENT = re.compile(r"\{[^/{}]*\}")


@capture_memo(65536)
def url_matches(pattern: str, url: str) -> bool:
    """Whether ``url`` is covered by a URL pattern of the command line and the changes list.

    A pattern is an optional origin (``https://api.example``) and a path template:
    ``{name}`` stands for any one segment, a trailing ``*`` for any rest; ``*`` alone, or an
    origin alone, covers everything (on that origin). The query never matters.
    """
    pattern = pattern.strip()
    if pattern in ("", "*"):
        return True
    origin, path = _pattern_parts(pattern)
    if origin and origin.lower() != url_origin(url).lower():
        return False
    if not path or path == "*":
        return True
    if _is_plain(path):
        return _url_path_only(url) in (path, path + "/")
    return _path_regex(path).match(_url_path_only(url)) is not None


def exact_endpoint(pattern: str) -> tuple[str, str] | None:
    """``(origin in lower case, path)`` when ``pattern`` is one origin's one path (no
    ``{name}``, no trailing ``*``): it then covers exactly the URLs on that origin whose path
    is that path, or that path and ``/``, as :func:`url_matches` reads it. None otherwise."""
    origin, path = _pattern_parts(pattern.strip())
    if not origin or not path or path == "*" or not _is_plain(path):
        return None
    return origin.lower(), path


def url_origin_and_path(url: str) -> tuple[str, str]:
    """The URL's origin in lower case and its path, as :func:`url_matches` compares them."""
    return url_origin(url).lower(), _url_path_only(url)


def _is_plain(path: str) -> bool:
    """A pattern path that stands for itself alone (no ``{name}``, no trailing ``*``)."""
    return not path.endswith("*") and _PATTERN_SEGMENT.search(path) is None


@capture_memo(65536)
def _url_path_only(url: str) -> str:
    return _split(url).path or "/"


def _pattern_parts(pattern: str) -> tuple[str, str]:
    if "://" in pattern:
        scheme, rest = pattern.split("://", 1)
        host, slash, path = rest.partition("/")
        return f"{scheme}://{host}", slash + path
    return "", pattern


@capture_memo(8192)  # one per templated endpoint a change names: none compiled twice
def _path_regex(path: str) -> re.Pattern[str]:
    rest = path.endswith("*")
    path = path.removesuffix("*")
    out, last = [], 0
    for m in _PATTERN_SEGMENT.finditer(path):
        out.append(re.escape(path[last:m.start()]) + "[^/]+")
        last = m.end()
    out.append(re.escape(path[last:]))
    return re.compile("".join(out) + (".*" if rest else "/?") + "$")
