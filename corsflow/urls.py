"""URL helpers shared by the findings and the reports: endpoints and path templates."""

from __future__ import annotations

import re
from collections.abc import Sequence
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


@capture_memo(4096)
def _split(url: str) -> SplitResult:
    """urlsplit that never raises: a malformed URL (``http://[::1/x``) from a capture is
    grouped as written instead of stopping the analysis. Remembered: the origin, the path
    and the template of one URL are each asked for, often one after the other."""
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


class PatternIndex:
    """Which of many URL patterns cover a URL, as :func:`url_matches` reads each, found
    without trying them all: a change names every endpoint it edits (hundreds in a long
    session) and a replay asks for every exchange.

    A pattern's path is matched segment by segment (``{name}`` stands for one non-empty
    segment, and a segment never holds ``/``), so the patterns of each origin form a tree of
    segments: literal ones are looked up, templated ones tried at their place only. Patterns
    ending in ``*`` are tried one by one.
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)
        self.everywhere: list[int] = []
        """Patterns that cover every URL (``*``) or every URL of an origin (by origin)."""
        self.whole_origin: dict[str, list[int]] = {}
        self.trees: dict[str | None, _Segment] = {}
        """Origin in lower case (None: patterns without one) -> its tree of path segments."""
        self.tried: list[int] = []
        for i, pattern in enumerate(self.patterns):
            pattern = pattern.strip()
            if pattern in ("", "*"):
                self.everywhere.append(i)
                continue
            origin, path = _pattern_parts(pattern)
            key = origin.lower() if origin else None
            if not path or path == "*":
                if key is None:
                    self.everywhere.append(i)
                else:
                    self.whole_origin.setdefault(key, []).append(i)
            elif path.endswith("*"):
                self.tried.append(i)
            else:
                node = self.trees.setdefault(key, _Segment())
                for segment in path.split("/"):
                    node = node.child(segment)
                node.ends.append(i)

    def matching(self, url: str) -> list[int]:
        """The indexes of the patterns that cover ``url``, in order."""
        path = _url_path_only(url)
        if "\n" in path:  # "$" in a pattern's expression allows a final newline: ask each
            return [i for i, p in enumerate(self.patterns) if url_matches(p, url)]
        origin = url_origin(url).lower()
        hits = [*self.everywhere, *self.whole_origin.get(origin, ())]
        hits += (i for i in self.tried if url_matches(self.patterns[i], url))
        segments = path.split("/")
        for key in (origin, None):
            tree = self.trees.get(key)
            if tree is not None:
                hits += tree.ends_of(segments)
        hits.sort()
        return hits


class _Segment:
    """One segment of the patterns' paths: the patterns that end here, and what follows."""

    __slots__ = ("ends", "literal", "templated")

    def __init__(self) -> None:
        self.ends: list[int] = []
        self.literal: dict[str, _Segment] = {}
        self.templated: list[tuple[re.Pattern[str], _Segment]] = []

    def child(self, segment: str) -> _Segment:
        if _PATTERN_SEGMENT.search(segment) is None:
            return self.literal.setdefault(segment, _Segment())
        regex = _path_regex_body(segment)
        for known, node in self.templated:
            if known.pattern == regex:
                return node
        node = _Segment()
        self.templated.append((re.compile(regex), node))
        return node

    def ends_of(self, segments: list[str]) -> list[int]:
        """The patterns that end where ``segments`` do; or one segment earlier when the last
        is empty (a trailing ``/`` is allowed, as ``/?`` allows it)."""
        nodes = [self]
        last = len(segments) - 1
        found: list[int] = []
        for n, segment in enumerate(segments):
            if n == last and segment == "":
                for node in nodes:
                    found += node.ends
            step = []
            for node in nodes:
                child = node.literal.get(segment)
                if child is not None:
                    step.append(child)
                for regex, child in node.templated:
                    if regex.fullmatch(segment):
                        step.append(child)
            nodes = step
            if not nodes:
                return found
        for node in nodes:
            found += node.ends
        return found


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


@capture_memo(8192)  # each pattern compiled once, however many a report filters by
def _path_regex(path: str) -> re.Pattern[str]:
    rest = path.endswith("*")
    body = _path_regex_body(path.removesuffix("*"))
    return re.compile(body + (".*" if rest else "/?") + "$")


def _path_regex_body(path: str) -> str:
    """The path with each ``{name}`` as one non-empty segment's worth of characters."""
    out, last = [], 0
    for m in _PATTERN_SEGMENT.finditer(path):
        out.append(re.escape(path[last:m.start()]) + "[^/]+")
        last = m.end()
    out.append(re.escape(path[last:]))
    return "".join(out)
