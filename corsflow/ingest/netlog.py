"""Read Chromium NetLog files (chrome://net-export, ``--log-net-log``) into exchanges.

A NetLog is one JSON object: ``constants`` (the numbers of every event type, source type,
phase and net error *for the Chromium that wrote it*: they change between versions, so they
are always read from the file), then ``events``, then optional ``polledData``. Chromium's
writer puts each event on a line of its own, so the events are read in large blocks of
whole lines and msgspec decodes a block at a time; ``params`` stay undecoded bytes except
for the few event types used here. A log another tool wrote again (minified, indented) is
read one JSON value at a time instead, whatever its lines. Memory is bounded by the requests
in flight: a request's state is dropped when its source ends.

What becomes an exchange: each ``URL_REQUEST`` source is one request; each
``URL_REQUEST_START_JOB`` on it is one hop (a redirect starts another), with the request
headers of whichever transaction sent it (HTTP/1 ``HTTP_TRANSACTION_SEND_REQUEST_HEADERS``,
HTTP/2 ``..._HTTP2_SEND_REQUEST_HEADERS``, QUIC ``..._QUIC_SEND_REQUEST_HEADERS``) and the
response headers of ``HTTP_TRANSACTION_READ_RESPONSE_HEADERS``. A CORS request whose
preflight failed never starts a job: it becomes an exchange without a response, as
Chrome's own HAR records it.

The browser's CORS decisions (``CHECK_CORS_PREFLIGHT_REQUIRED``, ``CHECK_CORS_PREFLIGHT_CACHE``,
``CORS_PREFLIGHT_URL_REQUEST``, ``CORS_PREFLIGHT_RESULT`` / ``_CACHED_RESULT`` / ``_ERROR``) go
into :class:`~corsflow.model.BrowserDecision` on the exchanges they concern (the request and
its preflight, linked through the source dependency), for the engine to weigh against its
model.

A log whose writer was killed (Chrome crashed or was closed mid-capture) ends without its
closing brackets: every event up to the cut is read, the requests still in flight are given
as far as they got, and Diagnostics says where it stopped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import compress, islice
from operator import attrgetter
from typing import Any, BinaryIO
from urllib.parse import urljoin

import msgspec

from ..errors import Diagnostics, IngestError
from ..model import BrowserDecision, Exchange, Headers, ProducerHints, Response, SourceRef, Timings
from .compressed import open_input
from .corserror import cors_error_name
from .jsonstream import JsonArrayStream, JsonSyntaxError, NotFound, structural_end

log = logging.getLogger(__name__)

BLOCK = 8 << 20
"""Bytes of whole event lines decoded in one msgspec call."""

CAPTURE_MODES = {
    "Default": "cookies and credentials are stripped (their length is kept); no bodies",
    "IncludeSensitive": "cookies and credentials are kept; no bodies",
    "Everything": "cookies, credentials and bodies are kept",
}
"""What each ``--net-log-capture-mode`` hides (``constants.logCaptureMode``)."""


# -- decoding ---------------------------------------------------------------------------------
# The Structs are not tracked by the garbage collector (decoded JSON holds no cycles): a
# block's hundred thousand events would otherwise be traversed by every collection that
# the reader's own allocations set off.


class _Source(msgspec.Struct, gc=False):
    id: int = -1
    type: int = -1


class _Event(msgspec.Struct, gc=False):
    time: Any = None
    type: int = -1
    phase: int = 0
    source: _Source | None = None
    params: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)
    """Left undecoded: most events' parameters are never looked at."""


class _Dependency(msgspec.Struct, gc=False):
    id: Any = None


class _CorsHeaders(msgspec.Struct, gc=False):
    headers: Any = None
    line: Any = None


class _Params(msgspec.Struct, gc=False):
    """The parameters of every event type read here, each optional."""

    url: Any = None
    method: Any = None
    initiator: Any = None
    request_type: Any = None
    network_isolation_key: Any = None
    headers: Any = None
    line: Any = None
    request_headers: _CorsHeaders | None = None
    preflight_required: Any = None
    preflight_required_reason: Any = None
    status: Any = None
    source_dependency: _Dependency | None = None
    cors_error: Any = msgspec.field(default=None, name="cors-error")
    failed_parameter: Any = msgspec.field(default=None, name="failed-parameter")
    error: Any = None
    net_error: Any = None
    location: Any = None
    privacy_mode: Any = None


class _Constants(msgspec.Struct):
    logEventTypes: dict[str, int] | None = None
    logSourceType: dict[str, int] | None = None
    logEventPhase: dict[str, int] | None = None
    netError: dict[str, int] | None = None
    timeTickOffset: Any = None
    logCaptureMode: Any = None
    clientInfo: dict[str, Any] | None = None


_TYPE = attrgetter("type")
_BLOCK_DECODER = msgspec.json.Decoder(list[_Event])
_EVENT_DECODER = msgspec.json.Decoder(_Event)
_PARAMS_DECODER = msgspec.json.Decoder(_Params)
_CONSTANTS_DECODER = msgspec.json.Decoder(_Constants)
_TICKS = re.compile(r"-?[0-9]{1,19}")
"""timeTickOffset as Chromium writes it: a signed 64-bit count of milliseconds, in a string."""
_MAX_TICKS = 1e15
"""Milliseconds (about 31,000 years): a larger offset is not a clock's."""


# -- the event types used, by name (their numbers come from the file) ---------------------------

_E = (
    "REQUEST_ALIVE", "URL_REQUEST_START_JOB", "CORS_REQUEST", "CHECK_CORS_PREFLIGHT_REQUIRED",
    "CHECK_CORS_PREFLIGHT_CACHE", "CORS_PREFLIGHT_URL_REQUEST", "CORS_PREFLIGHT_RESULT",
    "CORS_PREFLIGHT_CACHED_RESULT", "CORS_PREFLIGHT_ERROR", "HTTP_TRANSACTION_SEND_REQUEST_HEADERS",
    "HTTP_TRANSACTION_HTTP2_SEND_REQUEST_HEADERS", "HTTP_TRANSACTION_QUIC_SEND_REQUEST_HEADERS",
    "HTTP_TRANSACTION_READ_RESPONSE_HEADERS", "URL_REQUEST_REDIRECTED", "FAILED",
)


@dataclass(frozen=True, slots=True)
class _Numbers:
    """The numbers this file uses for what the reader needs."""

    url_request: int
    begin: int
    end: int
    events: dict[str, int]
    net_errors: dict[int, str]
    tick_offset: float
    """Milliseconds to add to an event's ``time`` to get Unix epoch milliseconds."""
    mode: str | None
    version: str | None


def _numbers(path: str, raw: bytes | None) -> _Numbers:
    if raw is None:
        raise IngestError(path, "not a Chromium NetLog: no 'constants'")
    try:
        c = _CONSTANTS_DECODER.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError) as e:
        raise IngestError(path, f"NetLog constants unreadable: {e}") from None
    sources, types, phases = c.logSourceType or {}, c.logEventTypes or {}, c.logEventPhase or {}
    missing = [n for n, table in (("logSourceType.URL_REQUEST", sources),
                                  ("logEventTypes.URL_REQUEST_START_JOB", types),
                                  ("logEventPhase.PHASE_BEGIN", phases))
               if n.split(".")[1] not in table]
    if missing:
        raise IngestError(path, f"not a Chromium NetLog: constants lack {', '.join(missing)}")
    offset = c.timeTickOffset
    if isinstance(offset, str) and _TICKS.fullmatch(offset):
        offset = int(offset)
    if not isinstance(offset, (int, float)) or isinstance(offset, bool) \
            or not abs(offset) < _MAX_TICKS:  # also false for NaN
        raise IngestError(path, "NetLog constants lack a usable timeTickOffset")
    version = (c.clientInfo or {}).get("version")
    return _Numbers(
        url_request=sources["URL_REQUEST"],
        begin=phases["PHASE_BEGIN"],
        end=phases.get("PHASE_END", -1),
        events={name: types[name] for name in _E if name in types},
        net_errors={v: k for k, v in (c.netError or {}).items() if isinstance(v, int)},
        tick_offset=float(offset),
        mode=c.logCaptureMode if isinstance(c.logCaptureMode, str) else None,
        version=version if isinstance(version, str) else None,
    )


# -- per request state ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Hop:
    """One URL_REQUEST_START_JOB: a request on the wire and its response."""

    id: str
    started: float
    method: str
    url: str
    request_type: str | None
    initiator: str | None = None
    """The origin that started the request (``"not an origin"`` for the browser itself)."""
    partition: str | None = None
    """Its network isolation key: top-level site and frame site (the cache partition)."""
    request_headers: tuple[tuple[str, str], ...] | None = None
    http_version: str | None = None
    status: int | None = None
    reason: str | None = None
    response_headers: tuple[tuple[str, str], ...] = ()
    response_version: str | None = None
    answered: float | None = None
    failure: str | None = None
    decision: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class _Request:
    """One URL_REQUEST source while it is live."""

    sid: int
    begun: float
    cors_url: str | None = None
    cors_method: str | None = None
    cors_headers: object = None
    """The CORS layer's request header lines, parsed only if they are needed."""
    hops: int = 0
    hop: _Hop | None = None
    alive: int = 0
    """REQUEST_ALIVE begun and not ended: 2 while a restarted request's new one has begun
    and the old one's end is still to come."""
    cors_open: bool = False
    """Inside CORS_REQUEST: the request lasts until it ends, across restarts."""
    pending: dict[str, Any] = field(default_factory=dict)
    """Decisions logged before the next hop starts (they concern that hop)."""
    preflights: list[int] = field(default_factory=list)
    preflight_origin: str | None = None
    """The Origin its preflight carried."""
    redirected_to: str | None = None
    """Where the last hop was redirected (its Location, resolved): the URL of a request
    whose preflight then failed, which the log does not name otherwise."""
    redirected_method: str | None = None
    """That request's method: #http-redirect-fetch turns POST into GET on 301 and 302, and
    everything but GET and HEAD on 303."""
    redirected_at: float | None = None
    """When that redirect arrived: when the request to its Location began."""
    parent: int | None = None
    """For a preflight: the source id of the request it was sent for."""
    net_error: str | None = None
    ended_at: float | None = None

    def next_id(self) -> str:
        return f"n{self.sid}" if self.hops == 0 else f"n{self.sid}.{self.hops}"


# -- reading ----------------------------------------------------------------------------------------


def read_netlog(path: str, diagnostics: Diagnostics) -> Iterator[Exchange]:
    """Stream the exchanges of the NetLog at ``path`` (each as its request completes),
    compressed or not (see :mod:`.compressed`)."""
    fp = open_input(path, diagnostics)
    with fp:
        try:
            yield from _read(path, fp, diagnostics)
        except OSError as e:
            raise IngestError(path, f"cannot read: {e.strerror or e}") from None


def _read(path: str, fp: BinaryIO, diagnostics: Diagnostics) -> Iterator[Exchange]:
    stream = JsonArrayStream(fp)
    try:
        captured = stream.find_array(("events",), frozenset({("constants",)}))
    except JsonSyntaxError as e:
        what = "the file ends before its events" if e.truncated else e.message
        raise IngestError(path, f"not a readable NetLog: {what}") from None
    except NotFound as e:
        raise IngestError(path, f"not a Chromium NetLog: {e}") from None
    raw = captured.get(("constants",))
    if raw is None:
        raw = _constants_after(path, stream)
        fp.seek(0)
        stream = JsonArrayStream(fp)
        stream.find_array(("events",))
    numbers = _numbers(path, raw)
    if numbers.mode in CAPTURE_MODES and numbers.mode != "Everything":
        diagnostics.note(f"{path}: NetLog capture mode {numbers.mode}: "
                         f"{CAPTURE_MODES[numbers.mode]}")
    builder = _Builder(path, numbers, diagnostics)
    start = stream.offset
    fp.seek(start)
    if _one_event_a_line(fp.read(_PEEK)):
        fp.seek(start)
        blocks = _blocks(path, fp, start, diagnostics, builder)
    else:
        # Another writer's layout (minified, indented): the events as JSON values, wherever
        # the lines break. The stream is opened again: it read ahead of ``start``.
        fp.seek(0)
        blocks = _values(path, fp, diagnostics, builder)
    handlers = builder.handlers
    wanted = handlers.__contains__
    url_request = numbers.url_request
    out = builder.out
    decode = _PARAMS_DECODER.decode
    for events in blocks:
        builder.events += len(events)
        # Most events are of types never looked at: they are passed over in C.
        for event in compress(events, map(wanted, map(_TYPE, events))):
            source = event.source
            if source is None or source.type != url_request:
                continue
            params = _NO_PARAMS
            if event.params:
                try:
                    params = decode(event.params)
                except (msgspec.DecodeError, UnicodeDecodeError):
                    pass
            handlers[event.type](source.id, event, params)
        if out:
            yield from out
            out.clear()
    if not builder.closed:
        diagnostics.skip(path, f"byte {builder.stopped_at}", "NetLog truncated: the events "
                         "after this point are missing")
        diagnostics.note(f"{path}: the NetLog ends without its closing brackets (the browser "
                         f"was closed or crashed while writing it): read {builder.events} events "
                         f"up to byte {builder.stopped_at}; {builder.live} requests "
                         "in flight there are given as far as they got")
    yield from builder.finish()


def _constants_after(path: str, stream: JsonArrayStream) -> bytes | None:
    """The ``constants`` of a log that puts them after its events (Chromium never does; a
    tool writing the object again may): the events are stepped over to reach them, and read
    in a second pass."""
    skip = msgspec.json.Decoder(msgspec.Raw).decode
    try:
        for _ in stream.elements(skip):
            pass
        return stream.value_after("constants")
    except JsonSyntaxError as e:
        what = "the file ends before its constants" if e.truncated else e.message
        raise IngestError(path, f"not a readable NetLog: {what}") from None


_PEEK = 1 << 20
"""Bytes looked at to tell Chromium's layout of the events from another."""


def _one_event_a_line(head: bytes) -> bool:
    """Whether the events start as Chromium writes them: each one a line of its own (the
    first line after ``[`` decodes as an event, its comma aside)."""
    lines = head.lstrip(b" \t\r").split(b"\n", 2)
    if len(lines) < 2 or lines[0].strip():
        return False  # "[" is followed by more than blanks on its line
    first = lines[1].strip()
    if first.endswith(b","):
        first = first[:-1]
    elif first.endswith(b"]"):
        first = first[:-1]  # the only event
    try:
        _EVENT_DECODER.decode(first)
    except (msgspec.DecodeError, UnicodeDecodeError):
        return False
    return True


def _values(path: str, fp: BinaryIO, diagnostics: Diagnostics,
            builder: _Builder) -> Iterator[list[_Event]]:
    """The events of any JSON layout, one value at a time (the slower path), in lists."""
    stream = JsonArrayStream(fp)
    stream.find_array(("events",), frozenset())
    events: list[_Event] = []
    try:
        for offset, value in stream.elements(_EVENT_DECODER.decode):
            builder.stopped_at = offset
            if isinstance(value, _Event):
                events.append(value)
                if len(events) >= _VALUES_AT_ONCE:
                    yield events
                    events = []
            else:
                diagnostics.skip(path, f"byte {offset}", "NetLog event unreadable")
        builder.closed = True
    except JsonSyntaxError as e:
        if not e.truncated:
            diagnostics.skip(path, f"byte {e.offset}", f"NetLog unreadable from here: {e.detail}")
            builder.closed = True  # said above: not a cut
    yield events


_VALUES_AT_ONCE = 4096


def _blocks(path: str, fp: BinaryIO, start: int, diagnostics: Diagnostics,
            builder: _Builder) -> Iterator[list[_Event]]:
    """The events, a block of whole lines at a time, each block decoded by one msgspec call.

    Chromium writes one event a line, each followed by a comma: a block becomes a JSON array
    by putting ``[`` before it and turning its last comma into ``]``, in place (no copy).
    """
    rest = b""
    offset = start
    while True:
        chunk = fp.read(BLOCK)
        if not chunk:
            builder.stopped_at = offset
            if rest.strip():
                # A last line without its newline: whole only if the array closes in it.
                yield _lines(path, rest, offset, diagnostics, builder, last=True)
            return
        buf = bytearray(b"[")
        buf += rest
        buf += chunk
        cut = buf.rfind(b"\n")
        if cut < 0:
            rest = bytes(buf[1:])
            continue
        rest = bytes(buf[cut + 1:])
        end = cut
        while end > 1 and buf[end - 1] in _WS:
            end -= 1
        events = _decode_block(buf, end)
        if events is None:
            # The array ends in this block ("}],"), or a line is damaged.
            close = -1
            for closing in (b"}],\n", b"}]\n", b"}]}"):  # then polledData, nothing, or "}"
                close = buf.find(closing)
                if close >= 0:
                    break
            events = _decode_block(buf, close + 2) if close > 0 else None
            if events is not None:
                builder.closed = True
                yield events
                return
            yield _lines(path, bytes(buf[1:cut + 1]), offset, diagnostics, builder)
            if builder.closed:
                return
        else:
            yield events
        offset += cut


def _decode_block(buf: bytearray, end: int) -> list[_Event] | None:
    """``buf[:end]`` (``[`` and whole event lines) as events; None if it is not just that."""
    if end <= 1:
        return []
    last = buf[end - 1]
    if last == _COMMA:
        buf[end - 1] = _CLOSE
    elif last != _CLOSE:
        return None
    try:
        with memoryview(buf) as view:
            return _BLOCK_DECODER.decode(view[:end])
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    finally:
        buf[end - 1] = last


_WS = frozenset(b" \t\r\n")
_COMMA, _CLOSE = ord(","), ord("]")


def _lines(path: str, block: bytes, offset: int, diagnostics: Diagnostics,
           builder: _Builder, last: bool = False) -> list[_Event]:
    """The slow path: one line at a time (a damaged line, a cut file, another layout)."""
    events = []
    for line in block.split(b"\n"):
        here, offset = offset, offset + len(line) + 1
        text = line.strip()
        if not text:
            continue
        end = False
        if text.endswith(b","):
            text = text[:-1].rstrip()
        if text.startswith(b"]"):
            builder.closed = True
            break
        if text.endswith(b"]"):
            text, end = text[:-1].rstrip(), True
        try:
            try:
                events.append(_EVENT_DECODER.decode(text))
            except (msgspec.DecodeError, UnicodeDecodeError):
                # The array may close on this line, after the event: "}]}" (no polledData),
                # '}],"polledData": {...}}' (all on one line).
                stop = structural_end(text, 0) if text.startswith(b"{") else None
                if stop is None or not text[stop:].lstrip().startswith(b"]"):
                    raise
                events.append(_EVENT_DECODER.decode(text[:stop]))
                end = True
        except (msgspec.DecodeError, UnicodeDecodeError):
            if last and not end:
                builder.stopped_at = here
                break  # the cut: the writer stopped inside this event
            diagnostics.skip(path, f"byte {here}", "NetLog event unreadable")
        if end:
            builder.closed = True
            break
    return events


class _Splits(dict[str, tuple[str, ...]]):
    """Header line -> ``line.split(": ", 1)``, each distinct line split once: most lines
    repeat from one request to the next (server, content-type, the CORS headers). Emptied
    when full, so memory stays bounded whatever the log."""

    odd = False
    """Set once a line without ": " was split (never unset): until then every split is a
    pair, and the check for the others is skipped."""

    def __missing__(self, line: str) -> tuple[str, ...]:
        if len(self) >= _SPLITS_KEPT:
            self.clear()
        parts = self[line] = tuple(line.split(": ", 1))
        if len(parts) != 2:
            self.odd = True
        return parts


_SPLITS_KEPT = 20_000


def _header_list(lines: object, splits: _Splits, first: int = 0) -> tuple[tuple[str, str], ...]:
    """``"Name: value"`` lines from ``first`` on as pairs; HTTP/2 and HTTP/3 pseudo-headers
    (``":path: /x"``) are left out, as they are not header fields."""
    if not isinstance(lines, list):
        return ()
    n = len(lines)
    # Chromium lists the pseudo-headers first; the rest is looked up in C.
    while first < n and isinstance(lines[first], str) and lines[first][:1] == ":":
        first += 1
    try:
        pairs = tuple(map(splits.__getitem__, islice(lines, first, None) if first else lines))
        if not splits.odd:
            return pairs  # type: ignore[return-value] # each of two
    except (AttributeError, TypeError):  # a line that is not a string
        pairs = tuple(tuple(line.split(": ", 1)) for line in lines[first:]
                      if isinstance(line, str))
    if sum(map(len, pairs)) == 2 * len(pairs):
        return pairs  # type: ignore[return-value] # each of two, as the sum tells
    # "Name:" with an empty value has no ": " (and a pseudo-header out of place).
    return tuple(pair for pair in map(_pair, pairs) if pair is not None)


def _pair(parts: tuple[str, ...]) -> tuple[str, str] | None:
    if parts[0][:1] == ":":
        return None
    if len(parts) == 2:
        return parts[0], parts[1]
    name, sep, value = parts[0].partition(":")
    return (name, value.strip()) if sep and name else None


_REDIRECTS = frozenset({301, 302, 303, 307, 308})

_STATUS_LINE = re.compile(r"(HTTP/\d(?:\.\d)?)\s+(\d{3})(?:\s+(.*))?")


class _Builder:
    """Turns the events of one NetLog into exchanges, holding only what is live."""

    def __init__(self, path: str, numbers: _Numbers, diagnostics: Diagnostics) -> None:
        self.path = path
        self.n = numbers
        self.diagnostics = diagnostics
        self.requests: dict[int, _Request] = {}
        self.preflight_parent: dict[int, int] = {}
        """Preflight source id -> its request's, logged before the preflight's first event."""
        self.outcome: dict[int, BrowserDecision] = {}
        """Preflight source id -> the outcome its request logged, until the preflight ends."""
        self.parked: dict[int, Exchange] = {}
        """Preflights that ended before their request logged the outcome."""
        self.closed = False
        self.stopped_at = 0
        self.events = 0
        self.out: list[Exchange] = []
        """Exchanges completed by the events fed so far, for the caller to take."""
        self.splits = _Splits()
        self.tick_offset = numbers.tick_offset
        self.status_lines: dict[str, tuple[int, str | None, str]] = {}
        """Status line -> status, reason, version: a log has a few dozen distinct ones."""
        self.hints: dict[tuple[str | None, str | None, str | None], ProducerHints] = {}
        """The hints of hops without a browser decision, shared (a few distinct ones)."""
        e = numbers.events
        self.handlers = {
            e.get(name, -1000 - i): getattr(self, "_on_" + name.lower())
            for i, name in enumerate(_E)
        }

    @property
    def live(self) -> int:
        return len(self.requests)

    def _time(self, event: _Event) -> float:
        try:
            return (int(event.time) + self.tick_offset) / 1000.0
        except (TypeError, ValueError, OverflowError):  # not a number; past any float
            return 0.0

    def finish(self) -> Iterator[Exchange]:
        """End of the log: what is still in flight, as far as it got."""
        for sid in list(self.requests):
            self._end(sid, None, cut=True)
            yield from self.out
            self.out.clear()

    # -- one handler per event type ---------------------------------------------------------------

    def _get(self, sid: int, event: _Event) -> _Request:
        r = self.requests.get(sid)
        if r is None:
            r = self.requests[sid] = _Request(sid, self._time(event))
            parent = self.preflight_parent.pop(sid, None)
            r.parent = parent
        return r

    def _on_request_alive(self, sid: int, event: _Event, p: _Params) -> None:
        if event.phase == self.n.begin:
            self._get(sid, event).alive += 1
        elif event.phase == self.n.end:
            r = self.requests.get(sid)
            if r is not None and r.alive > 1:
                # Chromium 156 restarts a redirected request by beginning the new one (and
                # its job) before the old one is CANCELLED and ends: this end is the old
                # one's, and the new hop goes on.
                r.alive -= 1
                return
            if r is not None and r.cors_open:
                # The CORS layer restarts the request after a redirect that needs a new
                # preflight: the same source goes on, with a new REQUEST_ALIVE.
                r.alive = 0
                r.net_error = self._net_error(p.net_error) or r.net_error
                if r.hop is not None:
                    self._emit_hop(r, r.hop)
                    r.hop = None
                return
            self._end(sid, event, net_error=p.net_error)

    def _on_cors_request(self, sid: int, event: _Event, p: _Params) -> None:
        r = self._get(sid, event)
        if event.phase == self.n.begin:
            r.cors_open = True
            r.cors_url = p.url if isinstance(p.url, str) else None
            rh = p.request_headers
            if rh is not None:
                r.cors_headers = rh.headers
                if isinstance(rh.line, str):
                    r.cors_method = rh.line.split(" ", 1)[0] or None
        elif event.phase == self.n.end:
            r.cors_open = False
            if r.alive == 0:
                self._end(sid, event, net_error=p.net_error)

    def _on_check_cors_preflight_required(self, sid: int, event: _Event, p: _Params) -> None:
        r = self._get(sid, event)
        if isinstance(p.preflight_required, bool):
            r.pending["preflight_required"] = p.preflight_required
        if isinstance(p.preflight_required_reason, str):
            r.pending["preflight_reason"] = p.preflight_required_reason

    def _on_check_cors_preflight_cache(self, sid: int, event: _Event, p: _Params) -> None:
        if isinstance(p.status, str):
            self._get(sid, event).pending["cache"] = p.status

    def _on_cors_preflight_url_request(self, sid: int, event: _Event, p: _Params) -> None:
        dep = p.source_dependency
        if dep is None or dep.id.__class__ is not int:
            return
        r = self._get(sid, event)
        r.pending["preflight_id"] = f"n{dep.id}"
        r.preflights.append(dep.id)
        if dep.id in self.requests:
            self.requests[dep.id].parent = sid
        else:
            self.preflight_parent[dep.id] = sid

    def _on_cors_preflight_result(self, sid: int, event: _Event, p: _Params) -> None:
        # The preflight's response passed and its result was made (and cached); the method
        # and header checks against it come after, and may still log CORS_PREFLIGHT_ERROR.
        self._get(sid, event).pending["preflight_result"] = True

    def _on_cors_preflight_cached_result(self, sid: int, event: _Event, p: _Params) -> None:
        self._get(sid, event).pending["preflight_result"] = True

    def _on_cors_preflight_error(self, sid: int, event: _Event, p: _Params) -> None:
        r = self._get(sid, event)
        r.pending["preflight_passed"] = False
        number = p.cors_error if p.cors_error.__class__ is int else None
        r.pending["cors_error_number"] = number
        name = cors_error_name(number, self.n.version)
        r.pending["cors_error"] = name
        if isinstance(p.failed_parameter, str) and p.failed_parameter:
            r.pending["failed_parameter"] = p.failed_parameter
        if number is not None and name is None:
            self.diagnostics.note(f"{self.path}: CorsError number {number} has no name this "
                                  f"corsflow can vouch for in Chromium {self.n.version or '(version not logged)'}: "
                                  "reported by number, the model's check stands beside it")
        if isinstance(p.error, str):
            r.net_error = p.error if p.error.startswith("net::") else "net::" + p.error
        self._outcome(r)

    def _on_url_request_start_job(self, sid: int, event: _Event, p: _Params) -> None:
        if event.phase != self.n.begin:
            return
        r = self._get(sid, event)
        if r.hop is not None:
            self._emit_hop(r, r.hop)
        if r.pending.pop("preflight_result", False):
            # Sent after its preflight's result: every check of the preflight passed.
            r.pending["preflight_passed"] = True
            self._outcome(r)
        method = p.method if isinstance(p.method, str) and p.method else (r.cors_method or "GET")
        url = p.url if isinstance(p.url, str) else (r.cors_url or "")
        r.hop = _Hop(r.next_id(), self._time(event), method, url, _text(p.request_type),
                     _text(p.initiator), _text(p.network_isolation_key), decision=r.pending)
        r.pending = {}
        r.hops += 1

    def _send_headers(self, sid: int, event: _Event, p: _Params, version: str | None) -> None:
        r = self.requests.get(sid)
        if r is None or r.hop is None:
            return
        r.hop.request_headers = _header_list(p.headers, self.splits)
        if version is None and isinstance(p.line, str):
            parts = p.line.split()
            version = parts[-1] if parts and parts[-1].startswith("HTTP/") else None
        r.hop.http_version = version
        if r.parent is not None:
            parent = self.requests.get(r.parent)
            origin = next((v for n, v in r.hop.request_headers if n.lower() == "origin"), None)
            if parent is not None and origin is not None:
                parent.preflight_origin = origin

    def _on_http_transaction_send_request_headers(self, sid: int, event: _Event, p: _Params) -> None:
        self._send_headers(sid, event, p, None)

    def _on_http_transaction_http2_send_request_headers(self, sid: int, event: _Event,
                                                        p: _Params) -> None:
        self._send_headers(sid, event, p, "HTTP/2")

    def _on_http_transaction_quic_send_request_headers(self, sid: int, event: _Event,
                                                       p: _Params) -> None:
        self._send_headers(sid, event, p, "HTTP/3")

    def _on_http_transaction_read_response_headers(self, sid: int, event: _Event, p: _Params) -> None:
        r = self.requests.get(sid)
        if r is None or r.hop is None or not isinstance(p.headers, list) or not p.headers:
            return
        hop = r.hop
        first = p.headers[0]
        status = self.status_lines.get(first) if isinstance(first, str) else None
        if status is None:
            m = _STATUS_LINE.match(first) if isinstance(first, str) else None
            if m is None:
                self.diagnostics.skip(self.path, f"request {hop.id}", "response status line "
                                      "unreadable")
                return
            status = (int(m.group(2)), m.group(3) or None, m.group(1))
            if len(self.status_lines) < 1000:
                self.status_lines[first] = status
        hop.status, hop.reason, hop.response_version = status
        hop.response_headers = _header_list(p.headers, self.splits, 1)
        hop.answered = self._time(event)
        if hop.status in _REDIRECTS:
            location = next((v for n, v in hop.response_headers if n.lower() == "location"),
                            None)
            if location:
                self._redirected(r, hop, location)

    def _redirected(self, r: _Request, hop: _Hop, location: str) -> None:
        try:
            r.redirected_to = urljoin(hop.url, location.strip())
        except ValueError:  # an unparsable Location ("http://[::1"): nothing to follow
            return
        method = hop.method
        if (hop.status in (301, 302) and method == "POST") or (
                hop.status == 303 and method not in ("GET", "HEAD")):
            method = "GET"
        r.redirected_method = method
        r.redirected_at = hop.answered

    def _on_url_request_redirected(self, sid: int, event: _Event, p: _Params) -> None:
        r = self.requests.get(sid)
        if r is not None and r.hop is not None and isinstance(p.location, str):
            self._redirected(r, r.hop, p.location)  # the next URL_REQUEST_START_JOB starts it

    def _on_failed(self, sid: int, event: _Event, p: _Params) -> None:
        r = self.requests.get(sid)
        if r is not None:
            r.net_error = self._net_error(p.net_error) or r.net_error

    # -- assembling ----------------------------------------------------------------------------------

    def _net_error(self, number: object) -> str | None:
        if number.__class__ is not int or number == 0:
            return None
        assert isinstance(number, int)
        name = self.n.net_errors.get(number)
        return f"net::{name}" if name else f"net error {number}"

    def _end(self, sid: int, event: _Event | None, *,
             net_error: object = None, cut: bool = False) -> None:
        r = self.requests.pop(sid, None)
        if r is None:
            return
        r.net_error = self._net_error(net_error) or r.net_error
        r.ended_at = self._time(event) if event is not None else None
        if r.hop is not None:
            if cut and r.hop.status is None:
                r.hop.failure = "the NetLog ends before the response"
            self._emit_hop(r, r.hop)
            r.hop = None
        if r.cors_url is not None and r.pending.get("preflight_passed") is False:
            self.out.append(self._unsent(r))
        for psid in r.preflights:
            parked = self.parked.pop(psid, None)
            if parked is not None:
                self.out.append(parked)
            if cut:
                self.outcome.pop(psid, None)

    def _outcome(self, r: _Request) -> None:
        """The request logged its preflight's outcome: attach it to that preflight."""
        if not r.preflights:
            return
        psid = r.preflights[-1]
        decision = BrowserDecision(
            request_id=r.next_id(), preflight_passed=r.pending.get("preflight_passed"),
            cache=r.pending.get("cache"),
            cors_error=r.pending.get("cors_error"),
            cors_error_number=r.pending.get("cors_error_number"),
            failed_parameter=r.pending.get("failed_parameter"))
        parked = self.parked.pop(psid, None)
        if parked is None:
            self.outcome[psid] = decision
        else:
            self.out.append(_with_decision(parked, decision))

    def _emit_hop(self, r: _Request, hop: _Hop) -> None:
        headers = hop.request_headers
        if headers is None:
            # Never reached the network (served from cache, failed before sending): the
            # headers the CORS layer saw are the best the log has.
            headers = _header_list(r.cors_headers, self.splits)
        response = None
        if hop.status is not None:
            response = Response(hop.status, Headers(hop.response_headers), hop.reason,
                                hop.http_version or hop.response_version,
                                hop.answered if r.ended_at is None else r.ended_at)
        failure = hop.failure or (r.net_error if r.hop is hop else None)
        if response is not None and failure == "net::ERR_ABORTED":
            failure = None  # the page stopped reading the body: not a failed exchange
        total = None
        end = r.ended_at if r.ended_at is not None else hop.answered
        if end is not None:
            total = (end - hop.started) * 1000.0
            if not total > 0.0:
                total = 0.0
        if r.parent is not None:  # as Chrome's HAR marks a preflight
            hints = ProducerHints("preflight", "preflight", hop.url, page_ref=hop.partition,
                                  browser=_decision(hop.decision), creator=CREATOR)
        elif hop.decision:
            hints = ProducerHints(
                "document" if hop.request_type in ("main frame", "sub frame") else None,
                hop.request_type, hop.initiator, page_ref=hop.partition,
                browser=_decision(hop.decision), creator=CREATOR)
        else:
            key = (hop.request_type, hop.initiator, hop.partition)
            shared = self.hints.get(key)
            if shared is None:
                shared = ProducerHints(
                    "document" if hop.request_type in ("main frame", "sub frame") else None,
                    hop.request_type, hop.initiator, page_ref=hop.partition, creator=CREATOR)
                if len(self.hints) < 1000:
                    self.hints[key] = shared
            hints = shared
        ex = Exchange(hop.id, hop.method, hop.url, Headers(headers), hop.started,
                      SourceRef(self.path, "netlog", r.sid, f"source {r.sid}"), response,
                      failure, None if total is None else Timings(total=total),
                      hop.http_version, hints)
        if r.parent is not None:
            decision = self.outcome.pop(r.sid, None)
            if decision is not None:
                ex = _with_decision(ex, decision)
            elif r.parent in self.requests:
                self.parked[r.sid] = ex  # its outcome is logged on the request, later
                return
        self.out.append(ex)

    def _unsent(self, r: _Request) -> Exchange:
        """A CORS request the browser never sent because its preflight failed."""
        headers = list(_header_list(r.cors_headers, self.splits))
        if r.preflight_origin is not None and not any(n.lower() == "origin" for n, _ in headers):
            # The request's Origin is what its preflight carried (#cors-preflight-fetch):
            # the CORS layer logs the headers before the network layer adds it.
            headers.append(("Origin", r.preflight_origin))
        pending = {k: v for k, v in r.pending.items() if k != "preflight_result"}
        decision = _decision({**pending, "sent": False})
        return Exchange(
            id=r.next_id(), method=r.redirected_method or r.cors_method or "GET",
            url=r.redirected_to or r.cors_url or "",
            request_headers=Headers(tuple(headers)), started=r.redirected_at or r.begun,
            source=SourceRef(self.path, "netlog", r.sid, f"source {r.sid}"),
            response=None, failure=r.net_error or "net::ERR_FAILED",
            hints=ProducerHints(browser=decision, creator=CREATOR))


def _with_decision(ex: Exchange, decision: BrowserDecision) -> Exchange:
    hints = ex.hints
    return Exchange(ex.id, ex.method, ex.url, ex.request_headers, ex.started, ex.source,
                    ex.response, ex.failure, ex.timings, ex.http_version,
                    ProducerHints(hints.resource_type, hints.initiator_type, hints.initiator_url,
                                  page_ref=hints.page_ref, browser=decision, creator=CREATOR))


_NO_PARAMS = _Params()


def _decision(d: dict[str, Any]) -> BrowserDecision | None:
    if not d:
        return None
    return BrowserDecision(**d)


CREATOR = "Chromium NetLog"


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
