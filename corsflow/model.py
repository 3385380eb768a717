"""The normalised data every ingest produces and the engine consumes.

An :class:`Exchange` is one HTTP request and its response (or the absence of one) as a
capture recorded it. Every source format (HAR, pcap, mitmproxy flows) is turned into the
same shape, so the engine never knows where an exchange came from. Unknowns stay ``None``:
a capture that does not show a value must not be given an invented one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Literal

from .frozen import quick_init

SourceFormat = Literal["har", "pcap", "pcapng", "mitmproxy", "netlog"]


@quick_init
@dataclass(frozen=True, slots=True)
class Headers:
    """An immutable, ordered multi-map of header fields.

    Names keep the case they had in the capture (HTTP/2 captures use lower case, HTTP/1
    keeps the wire's case) but compare case-insensitively; repeated fields are kept in order.
    Values are ``str``: text from byte sources is decoded as ISO-8859-1 ("isomorphic
    decode" in the Fetch standard), so every byte survives and the safelist byte rules apply.
    """

    items: tuple[tuple[str, str], ...] = ()
    _by_name: dict[str, tuple[str, ...]] | None = field(
        default=None, init=False, repr=False, compare=False, hash=False)
    """Lower-case name -> values, built on first look-up (the engine looks up several
    names in every request)."""

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> Headers:
        return cls(tuple((str(n), str(v)) for n, v in pairs))

    def by_name(self) -> dict[str, tuple[str, ...]]:
        """Lower-case name -> values (the Fetch standard compares names case-insensitively)."""
        index = self._by_name
        if index is None:
            index = self.index()
            object.__setattr__(self, "_by_name", index)
        return index

    def index(self) -> dict[str, tuple[str, ...]]:
        """:meth:`by_name` without keeping it: for headers held long after one look-up."""
        if self._by_name is not None:
            return self._by_name
        items = self.items
        # The fast path, all in C (zip of one iterable makes the 1-tuples); it loses values
        # only when a name repeats, which the length tells.
        index: dict[str, tuple[str, ...]] = dict(zip(
            map(str.lower, map(itemgetter(0), items)), zip(map(itemgetter(1), items))))
        if len(index) != len(items):
            index = {}
            for n, v in items:
                k = n.lower()
                seen = index.get(k)
                index[k] = (v,) if seen is None else (*seen, v)
        return index

    def scan(self, name: str) -> tuple[str, ...]:
        """Every value of the lower-case ``name``, without building the index: cheaper for
        one look-up in headers that will not be looked up again."""
        if self._by_name is not None:
            return self._by_name.get(name, ())
        items = self.items
        # The presence test runs in C (map, `in`): most look-ups find nothing.
        if name not in map(str.lower, map(itemgetter(0), items)):
            return ()
        return tuple(v for n, v in items if n.lower() == name)

    def get_all(self, name: str) -> tuple[str, ...]:
        """Every value of ``name``, in order."""
        return self.by_name().get(name.lower(), ())

    def get(self, name: str) -> str | None:
        """The Fetch standard's *get*: values of ``name`` combined with ``", "``, or None.

        https://fetch.spec.whatwg.org/#concept-header-list-get
        """
        values = self.get_all(name)
        if not values:
            return None
        return ", ".join(values)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self.by_name()

    def names(self) -> frozenset[str]:
        """The lower-cased names present."""
        return frozenset(self.by_name())

    def without_pseudo(self) -> Headers:
        """Drop HTTP/2 and HTTP/3 pseudo-header fields (``:authority``, ``:path``, ...)."""
        return Headers(tuple((n, v) for n, v in self.items if not n.startswith(":")))

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@quick_init
@dataclass(frozen=True, slots=True)
class Timings:
    """Phases of the exchange in milliseconds, as the source reports them; None when unknown.

    HAR's -1 ("does not apply") becomes None. ``total`` is the whole exchange's duration.
    """

    blocked: float | None = None
    dns: float | None = None
    connect: float | None = None
    ssl: float | None = None
    send: float | None = None
    wait: float | None = None
    receive: float | None = None
    total: float | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class SourceRef:
    """Where an exchange was read from, precise enough to find it again."""

    path: str
    """The file, as the user named it (or ``"live"`` for the mitmproxy addon)."""
    format: SourceFormat
    index: int
    """HAR entry index (0-based), pcap packet number of the request's first byte (1-based,
    as Wireshark counts), or flow number in a mitmproxy file (0-based)."""
    where: str
    """The location in words, for messages: ``"entry 12"``, ``"packet 345"``, ``"flow 3"``."""


@quick_init
@dataclass(frozen=True, slots=True)
class Response:
    """The response as captured. Status 0 / failed exchanges have no Response at all."""

    status: int
    headers: Headers
    reason: str | None = None
    http_version: str | None = None
    finished: float | None = None
    """Time the last byte of the response arrived (epoch seconds), when known."""


@dataclass(frozen=True, slots=True)
class BrowserDecision:
    """What the browser itself logged about an exchange's CORS handling (Chromium's NetLog).

    Evidence, not a model: each field is what the log says, None where it says nothing.
    The engine runs its own model beside it; every difference is reported.
    """

    preflight_required: bool | None = None
    """``CHECK_CORS_PREFLIGHT_REQUIRED`` on an actual request."""
    preflight_reason: str | None = None
    """Its ``preflight_required_reason`` (``"disallowed_method"``, ``"disallowed_header"``...)."""
    cache: str | None = None
    """``CHECK_CORS_PREFLIGHT_CACHE`` status: ``hit-and-pass``, ``hit-and-fail``, ``miss``,
    ``stale``."""
    preflight_id: str | None = None
    """On an actual request: the exchange id of the preflight sent for it
    (``CORS_PREFLIGHT_URL_REQUEST``)."""
    request_id: str | None = None
    """On a preflight: the exchange id of the request it was sent for."""
    preflight_passed: bool | None = None
    """``CORS_PREFLIGHT_RESULT`` or ``CORS_PREFLIGHT_CACHED_RESULT`` (True),
    ``CORS_PREFLIGHT_ERROR`` (False), on the request and on its preflight."""
    cors_error: str | None = None
    """The ``Network.CorsError`` name of ``CORS_PREFLIGHT_ERROR``'s number, when known."""
    cors_error_number: int | None = None
    """The number as logged (kept when the name is unknown to this version of corsflow)."""
    failed_parameter: str | None = None
    """The method or header the failed check was about, when logged."""
    sent: bool = True
    """False for a request the browser never sent (its preflight failed)."""


@quick_init
@dataclass(frozen=True, slots=True)
class ProducerHints:
    """What the capturing tool itself said about the exchange, beyond HTTP.

    Chrome's HAR marks a preflight with ``_resourceType: "preflight"`` and an ``_initiator``
    naming the actual request's URL; those are the strongest pairing evidence there is.
    """

    resource_type: str | None = None
    """Chrome ``_resourceType`` (``"preflight"``, ``"fetch"``, ``"xhr"``, ``"document"``...)."""
    initiator_type: str | None = None
    """Chrome ``_initiator.type`` (``"preflight"``, ``"script"``, ``"parser"``...)."""
    initiator_url: str | None = None
    """Chrome ``_initiator.url``; on a preflight, the URL of the request it was sent for."""
    from_cache: str | None = None
    """Chrome ``_fromCache`` (``"memory"``/``"disk"``): no network request was made."""
    page_ref: str | None = None
    """HAR ``pageref``: approximates the top-level site (the cache partition)."""
    server_ip: str | None = None
    creator: str | None = None
    """The tool that wrote the capture (HAR ``log.creator.name``), e.g. ``"Playwright"``."""
    browser: BrowserDecision | None = None
    """The browser's own CORS decisions, where the capture logged them (NetLog)."""


NO_HINTS = ProducerHints()
"""The hints of every exchange whose source says nothing beyond HTTP (immutable, shared)."""


@quick_init
@dataclass(frozen=True, slots=True)
class Exchange:
    """One HTTP request and its response, or the recorded failure, from one capture."""

    id: str
    """Unique within one analysis and stable for the same input (derived from the source
    position, e.g. ``"e12"`` for HAR entry 12, ``"p345"`` for pcap packet 345)."""
    method: str
    """Exactly as on the wire / in the file (case preserved: ``patch`` is not ``PATCH``)."""
    url: str
    """Absolute URL."""
    request_headers: Headers
    started: float
    """Request start, seconds since the Unix epoch."""
    source: SourceRef
    response: Response | None = None
    """None when no response was captured or the browser recorded a failure."""
    failure: str | None = None
    """The failure the source recorded (HAR ``_error`` such as ``net::ERR_FAILED``, a
    mitmproxy flow error, a pcap gap), verbatim."""
    timings: Timings | None = None
    http_version: str | None = None
    hints: ProducerHints = NO_HINTS

    @property
    def status(self) -> int | None:
        return self.response.status if self.response is not None else None

    def replace_headers(self, request_headers: Headers, response: Response | None) -> Exchange:
        """A copy with other request headers and response: ``dataclasses.replace`` costs more
        than the whole analysis of an exchange, and this runs once per exchange."""
        return Exchange(self.id, self.method, self.url, request_headers, self.started,
                        self.source, response, self.failure, self.timings, self.http_version,
                        self.hints)
