"""Read HAR files (HTTP Archive 1.1 and 1.2, as browsers and proxies write them).

The entries are streamed: :mod:`.jsonstream` finds each entry's bytes and msgspec decodes
only the fields corsflow uses into small Structs, so bodies, cookies and initiator stacks
are skipped without ever becoming Python objects, and memory stays bounded by the largest
entry whatever the file's size.

What the producers disagree on, and what this module does about it:

* ``httpVersion`` is free text ("HTTP/1.1", "1.1", "h2", "http/2.0", "h3", "", garbage):
  it is normalised to ``HTTP/1.0``, ``HTTP/1.1``, ``HTTP/2`` or ``HTTP/3``, else None.
* HTTP/2 and HTTP/3 entries list pseudo-headers (``:authority``, ``:method``...) among the
  request headers; they are not header fields and are dropped (also from responses).
* Failed, blocked or unfinished requests have status 0 (Chrome, Firefox, mitmproxy) or -1
  (Charles CONNECT tunnels, Playwright): they get no Response, and ``failure`` is
  ``response._error`` (Chrome, mitmproxy), ``response._failureText`` (Playwright) or a short
  text saying the status. Chrome also records a real status *with* ``_error`` (a response
  that arrived without CORS headers): both are kept.
* Timings use -1 for "does not apply"; any negative phase becomes None.
* Header values that are numbers or booleans become their JSON text and null an empty
  value; a header without a usable name or value is dropped (with a note).
* ``_initiator`` is an object in Chrome's own export but the bare URL in chrome-har and
  WebPageTest files; both land in the hints.
* ``startedDateTime`` comes with ``Z`` or any UTC offset and any number of fractional digits.

Damaged entries (not an object, no request, no method or URL, unreadable start time, a
header list that is not a list of objects, bytes that are not JSON inside the entry: ``NaN``,
a lone surrogate escape, nesting too deep to decode) are skipped and recorded in
:class:`~corsflow.errors.Diagnostics`; the rest of the file is still read. Bytes that are
not UTF-8 (a producer writing a header's Latin-1 bytes as they came) are read as the
characters of the same value, with a note. Numbers no time or status can be (an integer of
thousands of digits, a year before 1970) are unknown.

The file may be compressed (gzip, bzip2, xz, zstd, zlib as mitmproxy's ``.zhar``; see
:mod:`.compressed`) and may be HAR Viewer's JSONP form, ``onInputData({...});``. A file that is not
JSON, not a HAR, or breaks before its first entry raises :class:`~corsflow.errors.IngestError`.
A syntax error or truncation *after* some entries were read does not: those entries stand
(the analysis of a half-saved HAR is still worth having), reading stops, and Diagnostics
records the entry where it stopped and why, with a note giving the byte offset.

``log.creator.name`` is taken from the part of the file before the entries (where every known
producer writes it); a creator written after the entries is not seen.
"""

from __future__ import annotations

import codecs
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, BinaryIO

import msgspec

from ..errors import Diagnostics, IngestError
from ..model import Exchange, Headers, ProducerHints, Response, SourceRef, Timings
from .checks import plausible_time
from .compressed import open_input
from .jsonstream import JsonArrayStream, JsonSyntaxError, NotFound, Undecodable
from .lean import field_read

log = logging.getLogger(__name__)

_ENTRIES = ("log", "entries")
_CREATOR = ("log", "creator")


# -- the fields read (everything else in an entry is skipped by the decoder) --------------------


class _Header(msgspec.Struct, gc=False):
    name: Any = None
    value: Any = None


class _Request(msgspec.Struct, gc=False):
    method: Any = None
    url: Any = None
    httpVersion: Any = None
    headers: list[_Header] | None = None


class _Response(msgspec.Struct, gc=False):
    status: Any = None
    statusText: Any = None
    httpVersion: Any = None
    headers: list[_Header] | None = None
    error: Any = msgspec.field(default=None, name="_error")
    failure_text: Any = msgspec.field(default=None, name="_failureText")
    """Playwright's name for what Chrome's DevTools export calls ``_error``."""


class _Timings(msgspec.Struct, gc=False):
    blocked: Any = None
    dns: Any = None
    connect: Any = None
    ssl: Any = None
    send: Any = None
    wait: Any = None
    receive: Any = None


class _Initiator(msgspec.Struct, gc=False):
    type: Any = None
    url: Any = None


class _Entry(msgspec.Struct, gc=False):
    startedDateTime: Any = None
    time: Any = None
    request: _Request | None = None
    response: _Response | None = None
    timings: _Timings | None = None
    pageref: Any = None
    serverIPAddress: Any = None
    resource_type: Any = msgspec.field(default=None, name="_resourceType")
    initiator: _Initiator | str | None = msgspec.field(default=None, name="_initiator")
    """An object in Chrome's own export; chrome-har and WebPageTest write the URL alone."""
    from_cache: Any = msgspec.field(default=None, name="_fromCache")


class _Creator(msgspec.Struct):
    name: Any = None


_ENTRY_DECODER = msgspec.json.Decoder(_Entry)


def _latin1_fallback(error: UnicodeError) -> tuple[str, int]:
    assert isinstance(error, UnicodeDecodeError)
    return error.object[error.start : error.end].decode("latin-1"), error.end


codecs.register_error("corsflow-latin1", _latin1_fallback)


class _Skip(Exception):
    """An entry that cannot become an Exchange; the message is the stable skip reason."""


# -- reading --------------------------------------------------------------------------------


def read_har(path: str, diagnostics: Diagnostics, *, lean: bool = False) -> Iterator[Exchange]:
    """Stream the exchanges of the HAR file at ``path``, in file order.

    Raises IngestError when the file cannot be opened, is not JSON, is not a HAR, or breaks
    before its first entry. See the module docstring for what is skipped instead.
    ``lean``: responses keep only the header fields the analysis reads
    (:func:`~corsflow.ingest.lean.response_fields_read`, done as the entries are read).
    """
    fp = open_input(path, diagnostics)
    with fp:
        try:
            _skip_jsonp_prefix(fp)
            yield from _read(path, fp, diagnostics, lean)
        except OSError as e:  # a read that fails half-way (I/O error, network file system)
            raise IngestError(path, f"cannot read: {e.strerror or e}") from None


def _read(path: str, fp: BinaryIO, diagnostics: Diagnostics,
          lean: bool = False) -> Iterator[Exchange]:
    stream = JsonArrayStream(fp)
    try:
        captured = stream.find_array(_ENTRIES, frozenset({_CREATOR}))
    except JsonSyntaxError as e:
        raise IngestError(path, e.message) from None
    except NotFound as e:
        raise IngestError(path, f"not a HAR file: {e}") from None
    mapper = _Mapper(path, _creator_name(captured.get(_CREATOR)), diagnostics, lean)
    index = 0
    try:
        for _offset, value in stream.elements(_ENTRY_DECODER.decode):
            exchange = mapper.exchange(index, value)
            index += 1
            if exchange is not None:
                yield exchange
    except JsonSyntaxError as e:
        if index == 0:
            raise IngestError(path, e.message, "entry 0") from None
        reason = ("file truncated: the entries from here on are missing" if e.truncated
                  else "JSON syntax error: the rest of the file was not read")
        diagnostics.skip(path, f"entry {index}", reason)
        diagnostics.note(f"{path}: reading stopped at entry {index}: {e.message}; "
                         f"the {index} entries before it were read")


_JSONP = re.compile(rb"\s*[A-Za-z_$][\w$.]*\s*\(")


def _skip_jsonp_prefix(fp: BinaryIO) -> None:
    """Step over ``onInputData(`` (HAR Viewer's JSONP form); what follows the object is
    never read, so the closing ``);`` needs nothing."""
    head = fp.read(256)
    m = _JSONP.match(head)
    fp.seek(m.end() if m else 0)


def _creator_name(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        name = msgspec.json.decode(raw, type=_Creator).name
    except (msgspec.DecodeError, UnicodeDecodeError):
        return None
    return name if isinstance(name, str) and name else None


class _Mapper:
    """Turns decoded entries into Exchanges for one file."""

    def __init__(self, path: str, creator: str | None, diagnostics: Diagnostics,
                 lean: bool = False) -> None:
        self.path = path
        self.creator = creator
        self.diagnostics = diagnostics
        self.lean = lean

    def exchange(self, index: int, value: _Entry | Undecodable) -> Exchange | None:
        try:
            if isinstance(value, _Entry):
                return self._convert(index, value)
            if value.bad_utf8:
                self.diagnostics.note(f"{self.path}: bytes that are not UTF-8 were read as "
                                      "Latin-1 (each byte the character of the same value)")
            return self._convert(index, _lenient_entry(value))
        except _Skip as e:
            self.diagnostics.skip(self.path, f"entry {index}", str(e))
            return None

    def _convert(self, index: int, entry: _Entry) -> Exchange:
        request = entry.request
        if request is None:
            raise _Skip("no request object")
        method = request.method
        if method.__class__ is not str or not method:
            raise _Skip("request.method missing or not a string")
        url = request.url
        if url.__class__ is not str or not url:
            raise _Skip("request.url missing or not a string")
        parsed = parse_started(entry.startedDateTime)
        if parsed is None:
            raise _Skip("startedDateTime missing or unparsable")
        started, has_offset = parsed
        if not has_offset:
            self.diagnostics.note(f"{self.path}: startedDateTime without a UTC offset was read "
                                  "as UTC")
        total = _duration(entry.time)
        response, failure = self._response(entry.response, started, total)
        where = f"entry {index}"
        initiator = entry.initiator
        if initiator.__class__ is _Initiator:
            initiator_type, initiator_url = _text(initiator.type), _text(initiator.url)
        else:
            initiator_type, initiator_url = None, _text(initiator)
        return Exchange(
            id=f"e{index}",
            method=method,
            url=url,
            request_headers=self._headers(request.headers),
            started=started,
            source=SourceRef(self.path, "har", index, where),
            response=response,
            failure=failure,
            timings=_timings(entry.timings, total),
            http_version=normalise_http_version(request.httpVersion),
            hints=ProducerHints(
                resource_type=_text(entry.resource_type),
                initiator_type=initiator_type,
                initiator_url=initiator_url,
                from_cache=_from_cache(entry.from_cache),
                page_ref=_text(entry.pageref),
                server_ip=_text(entry.serverIPAddress),
                creator=self.creator,
            ),
        )

    def _response(
        self, r: _Response | None, started: float, total: float | None
    ) -> tuple[Response | None, str | None]:
        if r is None:
            return None, "no response recorded"
        error = _text(r.error) or _text(r.failure_text)
        status = _status(r.status)
        if status is None:
            return None, error or "response status missing or unreadable"
        if status <= 0:
            return None, error or f"status {status} (no response recorded)"
        reason = _text(r.statusText)
        finished = started + total / 1000.0 if total is not None else None
        if finished is not None and not plausible_time(finished):
            finished = None
        return Response(status, self._response_headers(r.headers), reason,
                        normalise_http_version(r.httpVersion), finished), error

    def _response_headers(self, items: list[_Header] | None) -> Headers:
        if not self.lean or not items:
            return self._headers(items)
        # The fields read, and those that are not strings (noted, or coerced, as ever).
        headers = self._headers([h for h in items if (name := h.name).__class__ is not str
                                 or h.value.__class__ is not str or not name
                                 or field_read(name)])
        if all(field_read(name) for name, _ in headers.items):
            return headers
        return Headers(tuple(item for item in headers.items if field_read(item[0])))

    def _headers(self, items: list[_Header] | None) -> Headers:
        if not items:
            return _NO_HEADERS
        # The common case in one comprehension: string names and values. ``n[:1] not in
        # ":"`` is false both for pseudo-headers and for an empty name.
        pairs = tuple([(h.name, h.value) for h in items if h.name.__class__ is str
                       and h.value.__class__ is str and h.name[:1] not in ":"])
        if len(pairs) != len(items) and not _well_formed(items):
            pairs = self._odd_headers(items)
        return Headers(pairs)

    def _odd_headers(self, items: list[_Header]) -> tuple[tuple[str, str], ...]:
        pairs = []
        for h in items:
            name, value = _coerce_header(h.name, h.value)
            if name is None or value is None:
                self.diagnostics.note(f"{self.path}: header fields without a usable name or "
                                      "value were ignored")
                continue
            if not name.startswith(":"):
                pairs.append((name, value))
        return tuple(pairs)


# -- the lenient path for entries the typed decoder refused -----------------------------------


class _LooseRequest(msgspec.Struct):
    method: Any = None
    url: Any = None
    httpVersion: Any = None
    headers: Any = None


class _LooseResponse(msgspec.Struct):
    status: Any = None
    statusText: Any = None
    httpVersion: Any = None
    headers: Any = None
    error: Any = msgspec.field(default=None, name="_error")
    failure_text: Any = msgspec.field(default=None, name="_failureText")


class _LooseEntry(msgspec.Struct):
    """The same fields as :class:`_Entry`, each object-valued one also accepting any other
    JSON value, so that a wrong shape can be named; bodies are still never decoded."""

    startedDateTime: Any = None
    time: Any = None
    request: _LooseRequest | list[Any] | str | float | bool | None = None
    response: _LooseResponse | list[Any] | str | float | bool | None = None
    timings: _Timings | list[Any] | str | float | bool | None = None
    pageref: Any = None
    serverIPAddress: Any = None
    resource_type: Any = msgspec.field(default=None, name="_resourceType")
    initiator: _Initiator | list[Any] | str | float | bool | None = msgspec.field(
        default=None, name="_initiator")
    from_cache: Any = msgspec.field(default=None, name="_fromCache")


_LOOSE_DECODER = msgspec.json.Decoder(_LooseEntry)


def _lenient_entry(value: Undecodable) -> _Entry:
    """Rebuild an entry the typed decoder refused, keeping what can be kept.

    Hints and timings of the wrong shape are dropped; a request, response or header list of
    the wrong shape makes the entry unusable (``_Skip``).
    """
    if value.invalid:
        raise _Skip("entry is not valid JSON")
    raw = value.raw
    if value.bad_utf8:
        # A producer that wrote a header value's bytes as they came (Latin-1, say) instead
        # of as UTF-8: each byte that is not UTF-8 becomes the code point of the same value,
        # the isomorphic decode the Fetch standard applies to header bytes.
        raw = raw.decode("utf-8", "corsflow-latin1").encode("utf-8")
        try:
            return _ENTRY_DECODER.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
            pass
    try:
        loose = _LOOSE_DECODER.decode(raw)
    except msgspec.ValidationError as e:
        if "out of range" not in str(e):
            raise _Skip("entry is not an object") from None
        try:  # a number no float or int can hold: unknown, like any value of the wrong type
            loose = _LOOSE_DECODER.decode(_HUGE_NUMBER.sub(_null_if_number, raw))
        except msgspec.ValidationError:
            raise _Skip("entry is not an object") from None
        except (msgspec.DecodeError, RecursionError):
            raise _Skip("entry is not valid JSON") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise _Skip("entry is not valid JSON") from None
    request, response = loose.request, loose.response
    if not isinstance(request, _LooseRequest):
        raise _Skip("no request object")
    if response is not None and not isinstance(response, _LooseResponse):
        raise _Skip("response is not an object")
    request_headers = _header_list(request.headers)
    if request_headers is None:
        raise _Skip("request.headers is not a list of objects")
    typed_response = None
    if response is not None:
        response_headers = _header_list(response.headers)
        if response_headers is None:
            raise _Skip("response.headers is not a list of objects")
        typed_response = _Response(response.status, response.statusText, response.httpVersion,
                                   response_headers, response.error, response.failure_text)
    initiator = loose.initiator
    return _Entry(
        startedDateTime=loose.startedDateTime,
        time=loose.time,
        request=_Request(request.method, request.url, request.httpVersion, request_headers),
        response=typed_response,
        timings=loose.timings if isinstance(loose.timings, _Timings) else None,
        pageref=loose.pageref,
        serverIPAddress=loose.serverIPAddress,
        resource_type=loose.resource_type,
        initiator=initiator if isinstance(initiator, (_Initiator, str)) else None,
        from_cache=loose.from_cache,
    )


# Strings (left as they are) or numbers beyond any float or int64: 19+ digits, or an
# exponent of 3+ digits.
_HUGE_NUMBER = re.compile(
    rb'"(?:[^"\\]++|\\.)*+"|-?(?:[0-9]{19,}(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?'
    rb'|[0-9]+(?:\.[0-9]+)?[eE][+-]?[0-9]{3,})')


def _null_if_number(m: re.Match[bytes]) -> bytes:
    text = m.group()
    return text if text[:1] == b'"' else b"null"


def _header_list(headers: object) -> list[_Header] | None:
    """A list of header objects as ``_Header``s (missing: empty); None when it is not one."""
    if headers is None:
        return []
    if not isinstance(headers, list) or not all(isinstance(h, dict) for h in headers):
        return None
    return [_Header(h.get("name"), h.get("value")) for h in headers]


# -- field conversions ------------------------------------------------------------------------


def _text(value: object) -> str | None:
    return value if value.__class__ is str and value else None


def _from_cache(value: object) -> str | None:
    if isinstance(value, str):
        return value or None
    return "true" if value is True else None


_NO_HEADERS = Headers()


def _well_formed(items: list[_Header]) -> bool:
    """True when every header has a non-empty string name and a string value."""
    return all(h.name.__class__ is str and h.name and h.value.__class__ is str for h in items)


def _coerce_header(name: object, value: object) -> tuple[str | None, str | None]:
    """A header whose name or value is not a string: keep it when the meaning is clear."""
    if not isinstance(name, str) or not name:
        return None, None
    if value is None:
        return name, ""
    if isinstance(value, bool):
        return name, "true" if value else "false"
    if isinstance(value, (int, float)):
        return name, json.dumps(value)
    if isinstance(value, str):
        return name, value
    return None, None


_STATUS_TEXT = re.compile(r"\s*(-?[0-9]{1,4})\s*")


def _status(value: object) -> int | None:
    """The status as an int; None when it is not one a response can have (HAR's 0 and -1
    for "no response" are kept, the caller reads them)."""
    status: int
    if value.__class__ is int:
        status = value
    elif isinstance(value, bool):
        return None
    elif isinstance(value, float) and value.is_integer():
        status = int(value)
    elif isinstance(value, str) and (m := _STATUS_TEXT.fullmatch(value)):
        status = int(m.group(1))
    else:
        return None
    return status if -1 <= status <= 999 else None


_MAX_DURATION = 1e12
"""Milliseconds (about 31 years): longer is not a duration a capture can hold."""


def _duration(value: object) -> float | None:
    """A HAR duration in ms; -1 ("does not apply"), other negatives and absurd values (an
    integer of 400 digits, infinity) are unknown."""
    # Exact class checks: fast, and they leave out bool (an int subclass).
    if value.__class__ is float:
        return value if 0 <= value <= _MAX_DURATION else None  # also false for NaN
    if value.__class__ is int:
        return float(value) if 0 <= value <= _MAX_DURATION else None
    return None


def _timings(t: _Timings | None, total: float | None) -> Timings | None:
    if t is None:
        return Timings(total=total) if total is not None else None
    return Timings(
        blocked=_duration(t.blocked),
        dns=_duration(t.dns),
        connect=_duration(t.connect),
        ssl=_duration(t.ssl),
        send=_duration(t.send),
        wait=_duration(t.wait),
        receive=_duration(t.receive),
        total=total,
    )


def parse_started(value: object) -> tuple[float, bool] | None:
    """``startedDateTime`` as (epoch seconds, whether it had a UTC offset); None if unreadable.

    ISO 8601 with ``Z`` or any offset, any number of fractional digits (microseconds are the
    precision kept). A time without an offset is read as UTC; the flag lets the caller say so.
    """
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        # Python 3.11+ reads Z, offsets with or without a colon and fractions of any length.
        dt = datetime.fromisoformat(value.strip())
        has_offset = dt.tzinfo is not None
        started = (dt if has_offset else dt.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError):
        return None
    if not plausible_time(started):
        return None
    return started, has_offset


_VERSION = re.compile(r"(?:http/)?(\d)(?:\.(\d))?")
_ALPN = re.compile(r"h([23])(?:[-c]\d*)?")


_VERSIONS: dict[str, str | None] = {}


def normalise_http_version(value: object) -> str | None:
    """``HTTP/1.0``, ``HTTP/1.1``, ``HTTP/2`` or ``HTTP/3`` from the loose forms HARs use."""
    if value.__class__ is not str:
        return None
    try:
        return _VERSIONS[value]
    except KeyError:
        pass
    version = _normalise_http_version(value)
    if len(_VERSIONS) < 64:  # a file of ever-new garbage versions must not grow it
        _VERSIONS[value] = version
    return version


def _normalise_http_version(value: str) -> str | None:
    text = value.strip().lower()
    m = _VERSION.fullmatch(text)
    if m:
        major, minor = m.group(1), m.group(2)
        if major == "1":
            return f"HTTP/1.{minor or '1'}" if (minor or "1") in ("0", "1") else None
        if major in ("2", "3") and minor in (None, "0"):
            return f"HTTP/{major}"
        return None
    m = _ALPN.fullmatch(text)
    if m:
        return f"HTTP/{m.group(1)}"
    return None
