"""An incremental HTTP/1.x message parser for one direction of a connection.

Fed bytes in order (from TCP reassembly), it reports each message's head as soon as the head
is complete and the message's end when its body, framed by RFC 9112 section 6, is over. Bodies
are skipped by counting, never held. Why not ``dpkt.http``: it needs a whole message in one
buffer and refuses methods it does not know (``PATCH``).

The parser is sans-IO: it calls a :class:`MessageHandler` which decides the body framing of
each head (a response's framing depends on its request: HEAD, CONNECT, 1xx) and pairs
messages. States:

``IDLE``     at a message boundary: the next byte (after stray CRLFs) starts a message;
``HEAD``     collecting a start line and header fields (bounded);
``LENGTH``   skipping a Content-Length body;
``CHUNK_*``  skipping a chunked body: size line, data, CRLF, trailer section;
``CLOSE``    body delimited by the connection's end;
``HUNT``     lost sync (capture gap, garbage): looking for a line that starts a message;
``TUNNEL``   after 101 Switching Protocols or a CONNECT tunnel: nothing more is HTTP/1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from ..frozen import quick_init

IDLE, HEAD, LENGTH, CHUNK_SIZE, CHUNK_DATA, CHUNK_CRLF, TRAILER, CLOSE, HUNT, TUNNEL = range(10)

# Body framings a handler returns for a head.
BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE, BODY_TUNNEL = range(5)

MAX_HEAD = 64 * 1024
"""A head longer than this is not HTTP (or not one we can use): resynchronise."""
_MAX_LINE = 8 * 1024

_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
# Request line (RFC 9112 section 3), leniently: several spaces, bare LF, a version such as
# "HTTP/1." that servers answer with 400 (it is still an exchange on the wire).
_REQUEST_LINE = re.compile(rb"(" + _TOKEN + rb") +(\S+) +(HTTP/1\.\d?) *\r?$")
_STATUS_LINE = re.compile(rb"(HTTP/\d\.\d) +(\d\d\d)(?: (.*?))?\r?$")
_HUNT_REQUEST = re.compile(rb"(?:^|\n)(" + _TOKEN + rb" +\S+ +HTTP/1\.\d?) *\r?\n")
_HUNT_RESPONSE = re.compile(rb"(?:^|\n)(HTTP/\d\.\d +\d\d\d)(?:[ \r\n])")
_TOKEN_BYTES = frozenset(b"!#$%&'*+.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-")


@quick_init
@dataclass(frozen=True, slots=True)
class RequestHead:
    method: str
    target: str
    version: str
    headers: tuple[tuple[str, str], ...]
    ts: float
    """Time of the packet carrying the message's first byte."""
    packet: int
    """Number of that packet."""
    transfer_encoding: str | None = None
    """The Transfer-Encoding values combined, for framing."""
    content_length: str | None = None
    """The Content-Length values combined, for framing."""


@quick_init
@dataclass(frozen=True, slots=True)
class ResponseHead:
    version: str
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    ts: float
    packet: int
    transfer_encoding: str | None = None
    content_length: str | None = None


class MessageHandler(Protocol):
    def on_head(self, head: RequestHead | ResponseHead) -> tuple[int, int]:
        """Return the body framing ``(BODY_*, length)`` for this head."""
        ...

    def on_end(self, ts: float, packet: int) -> None:
        """The message whose head was last reported ended with a byte at ``ts``."""
        ...

    def on_lost(self, head_known: bool, reason: str, ts: float, packet: int,
                partial: RequestHead | ResponseHead | None) -> None:
        """The message in progress cannot be completed (``head_known``: its head was
        reported; ``partial``: the start line and the complete fields of a head that was cut
        off). Also called with ``head_known=False`` when bytes were lost between messages,
        where a whole message may have been."""
        ...


def looks_like_request(data: bytes) -> bool:
    """Does ``data`` begin with an HTTP/1.x request line?"""
    nl = data.find(b"\n", 0, _MAX_LINE)
    return nl > 0 and _REQUEST_LINE.match(data, 0, nl) is not None


def looks_like_response(data: bytes) -> bool:
    """Does ``data`` begin with an HTTP/1.x status line?"""
    if not data.startswith(b"HTTP/1."):
        return False
    nl = data.find(b"\n", 0, _MAX_LINE)
    return nl > 0 and _STATUS_LINE.match(data, 0, nl) is not None


def looks_like_tls(data: bytes) -> bool:
    """A TLS record header: handshake/alert/CCS/application data, version 3.x."""
    return len(data) >= 3 and 20 <= data[0] <= 23 and data[1] == 3 and data[2] <= 4


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def find_request_line(data: bytes) -> int:
    """Index of the first request line in ``data`` that starts a line, or -1."""
    if data.find(b" HTTP/1.") < 0:
        return -1
    m = _HUNT_REQUEST.search(data)
    return -1 if m is None else m.start(1)


def unfinished_start_line(data: bytes) -> bool:
    """``data`` has no end of line yet but could still begin a request or status line."""
    return (
        data.find(b"\n", 0, _MAX_LINE) < 0 and len(data) < _MAX_LINE
        and (data[0] in _TOKEN_BYTES or b"HTTP/".startswith(data[:5]))
    )


def parse_partial_head(raw: bytes, is_request: bool, ts: float, packet: int
                       ) -> RequestHead | ResponseHead | None:
    """What a head cut off by lost bytes shows: its start line and its complete lines."""
    nl = raw.rfind(b"\n")
    if nl < 0:
        return None
    return parse_head(raw[: nl + 1], is_request, ts, packet)


# Anchored at line starts: unanchored, a long line without a colon is rescanned from each of
# its characters (quadratic: a 60 kB line took minutes).
_FIELD = re.compile(r"^([^:\r\n]+):[ \t]*([^\r\n]*)\r?\n", re.MULTILINE)
# RFC 9112 section 7.1: chunk-size = 1*HEXDIG. Python's int(x, 16) also takes signs, "0x" and
# underscores; a negative size made the parser step backwards forever. More than 16 digits
# is no size a capture can hold.
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")



def parse_head(raw: bytes, is_request: bool, ts: float, packet: int) -> RequestHead | ResponseHead | None:
    """Parse a head (start line and fields, up to the empty line or the end of ``raw``)."""
    text = raw.decode("latin-1")
    nl = text.find("\n")
    if nl < 0:
        nl = len(text)
    m = (_REQUEST_LINE if is_request else _STATUS_LINE).match(raw, 0, nl)
    if m is None:
        return None
    rest = text[nl + 1 :]
    # What the fast path cannot handle: obs-fold lines, whitespace to strip before a colon or
    # at the end of a value. Substring tests: a regex alternation costs more than the parse.
    if (rest[:1] in (" ", "\t") or "\n " in rest or "\n\t" in rest or " \n" in rest
            or "\t\n" in rest or " \r\n" in rest or "\t\r\n" in rest or " :" in rest
            or "\t:" in rest):
        headers = _fields_folded(rest)
    else:
        # One C-level pass; lines without a colon are not fields and are passed over.
        headers = tuple(_FIELD.findall(rest))
    low = rest.lower()
    te = _combined(headers, "transfer-encoding") if "transfer-encoding" in low else None
    cl = _combined(headers, "content-length") if "content-length" in low else None
    if is_request:
        method, target, version = (g.decode("latin-1") for g in m.groups())
        return RequestHead(method, target, version, headers, ts, packet, te, cl)
    version, status, reason = m.groups()
    return ResponseHead(
        version.decode("latin-1"), int(status), (reason or b"").decode("latin-1"),
        headers, ts, packet, te, cl,
    )


def _fields_folded(rest: str) -> tuple[tuple[str, str], ...]:
    """Header fields line by line, joining obs-fold continuation lines (RFC 9112 section 5.2)."""
    headers: list[tuple[str, str]] = []
    for line in rest.split("\n"):
        line = line.removesuffix("\r")
        if not line:
            break
        if line[0] in " \t":
            if headers:
                name, value = headers[-1]
                headers[-1] = (name, f"{value} {line.strip()}")
            continue
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.rstrip(), value.strip(" \t")))
    return tuple(headers)


def _combined(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    """Every value of ``name`` joined with ", " (RFC 9110 section 5.3), or None."""
    values = [v for n, v in headers if n.lower() == name]
    return ", ".join(values) if values else None


class MessageParser:
    """Parses one direction's messages (all requests or all responses).

    ``synced=False`` starts in HUNT: for a connection whose start the capture did not show.
    """

    __slots__ = (
        "buf",
        "handler",
        "head_known",
        "head_packet",
        "head_ts",
        "is_request",
        "last_packet",
        "last_ts",
        "remaining",
        "scan",
        "state",
    )

    def __init__(self, handler: MessageHandler, is_request: bool, synced: bool = True) -> None:
        self.handler = handler
        self.is_request = is_request
        self.state = IDLE if synced else HUNT
        self.buf = bytearray()
        self.scan = 0
        self.remaining = 0
        self.head_ts = 0.0
        self.head_packet = 0
        self.head_known = False
        self.last_ts = 0.0
        self.last_packet = 0

    def feed(self, data: bytes, ts: float, packet: int) -> None:
        """The next bytes of the stream, carried by packet ``packet`` at ``ts``."""
        self.last_ts = ts
        self.last_packet = packet
        i = 0
        n = len(data)
        while i < n:
            state = self.state
            if state == LENGTH or state == CHUNK_DATA:
                take = n - i
                rem = self.remaining
                if take < rem:
                    self.remaining = rem - take
                    return
                i += rem
                self.remaining = 0
                if state == LENGTH:
                    self._end(ts, packet)
                else:
                    self.state = CHUNK_CRLF
            elif state == IDLE:
                while i < n and data[i] in b"\r\n":
                    i += 1
                if i == n:
                    return
                first = data[i]
                if (first != 0x48 if not self.is_request else first not in _TOKEN_BYTES):  # "H"
                    self._lose(False, "unparsable data", ts, packet)
                    continue
                self.state = HEAD
                self.head_ts = ts
                self.head_packet = packet
                self.buf.clear()
                self.scan = 0
            elif state == HEAD:
                i = self._head(data, i, ts, packet)
            elif state == CHUNK_SIZE or state == TRAILER or state == CHUNK_CRLF:
                i = self._line(data, i, ts, packet)
            elif state == CLOSE:
                return
            elif state == HUNT:
                i = self._hunt(data, i)
            else:  # TUNNEL
                return

    def _head(self, data: bytes, i: int, ts: float, packet: int) -> int:
        buf = self.buf
        before = len(buf)
        buf += data[i:] if i else data
        scan = max(self.scan - 3, 0)
        a = buf.find(b"\n\r\n", scan)
        b = buf.find(b"\n\n", scan, a + 2 if a >= 0 else len(buf))
        if b >= 0 and (a < 0 or b < a):
            end = b + 2
        elif a >= 0:
            end = a + 3
        else:
            if len(buf) > MAX_HEAD:
                self._lose(False, "message head too long or not HTTP", ts, packet)
                return len(data)
            self.scan = len(buf)
            return len(data)
        head = parse_head(bytes(buf[:end]), self.is_request, self.head_ts, self.head_packet)
        consumed = i + (end - before)
        buf.clear()
        if head is None:
            self._lose(False, "unparsable message head", ts, packet)
            return consumed
        self.head_known = True
        mode, length = self.handler.on_head(head)
        if mode == BODY_NONE or (mode == BODY_LENGTH and length == 0):
            self._end(ts, packet)
        elif mode == BODY_LENGTH:
            self.state = LENGTH
            self.remaining = length
        elif mode == BODY_CHUNKED:
            self.state = CHUNK_SIZE
        elif mode == BODY_CLOSE:
            self.state = CLOSE
        else:
            self.state = TUNNEL
        return consumed

    def _line(self, data: bytes, i: int, ts: float, packet: int) -> int:
        """Chunk-size lines, the CRLF after chunk data, trailer fields."""
        nl = data.find(b"\n", i)
        buf = self.buf
        if nl < 0:
            buf += data[i:]
            if len(buf) > _MAX_LINE:
                self._lose(True, "malformed chunked body", ts, packet)
            return len(data)
        if buf:
            buf += data[i:nl]
            line = bytes(buf).rstrip(b"\r")
            buf.clear()
        else:
            line = data[i:nl].rstrip(b"\r")
        state = self.state
        if state == CHUNK_CRLF:
            self.state = CHUNK_SIZE
            if line:
                self._lose(True, "malformed chunked body", ts, packet)
        elif state == CHUNK_SIZE:
            size_text = line.split(b";", 1)[0].strip(b" \t")
            if _CHUNK_SIZE.fullmatch(size_text) is None:
                self._lose(True, "malformed chunked body", ts, packet)
                return nl + 1
            size = int(size_text, 16)
            if size == 0:
                self.state = TRAILER
            else:
                self.state = CHUNK_DATA
                self.remaining = size
        elif not line:  # TRAILER: the empty line ends the message
            self._end(ts, packet)
        return nl + 1

    def _hunt(self, data: bytes, i: int) -> int:
        """Skip to the next line that starts a message; return its index (or the end)."""
        if self.is_request:
            if data.find(b" HTTP/1.", i) < 0:
                return len(data)
            m = _HUNT_REQUEST.search(data, i)
        else:
            # A cheap C-speed test first: bodies are large and rarely contain a status line.
            if data.find(b"HTTP/1.", i) < 0:
                return len(data)
            m = _HUNT_RESPONSE.search(data, i)
        if m is None:
            return len(data)
        self.state = IDLE
        return m.start(1)

    def _end(self, ts: float, packet: int) -> None:
        self.state = IDLE
        self.head_known = False
        self.handler.on_end(ts, packet)

    def _lose(self, head_known: bool, reason: str, ts: float, packet: int) -> None:
        partial = None
        if self.state == HEAD and self.buf:
            partial = parse_partial_head(bytes(self.buf[:MAX_HEAD]), self.is_request,
                                         self.head_ts, self.head_packet)
        self.state = HUNT
        self.buf.clear()
        self.head_known = False
        self.handler.on_lost(head_known, reason, ts, packet, partial)

    def gap(self, size: int, ts: float, packet: int) -> None:
        """``size`` bytes of the stream were not captured."""
        state = self.state
        if state in (LENGTH, CHUNK_DATA) and size <= self.remaining:
            # A hole inside a body of known length changes nothing about the framing.
            self.remaining -= size
            if self.remaining == 0:
                if state == LENGTH:
                    self._end(ts, packet)
                else:
                    self.state = CHUNK_CRLF
            return
        if state in (CLOSE, TUNNEL):
            return
        if state == HUNT:
            return
        self._lose(self.head_known, "capture gap", ts, packet)

    def eof(self, ts: float, packet: int, reason: str) -> None:
        """The stream ended (FIN, RST, end of capture, idle timeout)."""
        state = self.state
        if state == CLOSE:
            self._end(self.last_ts or ts, self.last_packet or packet)
        elif state in (IDLE, HUNT, TUNNEL):
            return
        else:
            self._lose(self.head_known, reason, ts, packet)
        self.state = TUNNEL  # nothing more will come
