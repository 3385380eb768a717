"""One TCP connection's HTTP/1.x conversation: roles, parsers, request/response pairing.

A :class:`Conversation` owns both directions' reassembly (:mod:`.tcp`) and, once it knows
which side is the client, one :class:`~.http1.MessageParser` per direction. Which side is the
client is found from content, never from port numbers: the side whose bytes begin with a
request line. Until then every in-order segment is sniffed (a request line, a status line,
a TLS record, the HTTP/2 preface).

Responses are matched to requests in order (HTTP/1.1 pipelining keeps order, RFC 9112
section 9.3.2). An exchange is handed out when its response ends, when its response is
known to be lost (a capture gap, a reset, the end of the capture), or at once for a 101 or a
CONNECT tunnel, after which nothing on the connection is HTTP/1 any more.
"""

from __future__ import annotations

import ipaddress
from collections import deque

from ..model import Exchange, Headers, Response, SourceFormat, SourceRef, Timings
from .http1 import (
    BODY_CHUNKED,
    BODY_CLOSE,
    BODY_LENGTH,
    BODY_NONE,
    BODY_TUNNEL,
    H2_PREFACE,
    TUNNEL,
    MessageParser,
    RequestHead,
    ResponseHead,
    find_request_line,
    looks_like_request,
    looks_like_response,
    looks_like_tls,
    unfinished_start_line,
)
from .lean import fields_read
from .tcp import ACK_GRACE_PACKETS, Stream

NO_RESPONSE = "no response in capture"
RESET = "connection reset"
GAP = "capture gap"

MAX_UNANSWERED = 256
"""Requests waiting for a response on one connection beyond which the oldest is given up."""


class Context:
    """What every conversation of one file shares: where exchanges go, and counters."""

    __slots__ = ("copies", "evicted", "exchanges", "fmt", "h2", "lean", "lost",
                 "lost_connections", "orphans", "out", "path", "tls")

    def __init__(self, path: str, fmt: SourceFormat, lean: bool = False) -> None:
        self.path = path
        self.fmt = fmt
        self.lean = lean
        """Responses keep only the header fields the analysis reads (:mod:`.lean`)."""
        self.out: list[Exchange] = []
        self.tls = 0
        self.h2 = 0
        self.orphans = 0
        self.exchanges = 0
        self.copies = 0
        self.evicted = 0
        """Connections closed early because too many were open at once."""
        self.lost = 0
        self.lost_connections = 0
        """Bytes that never showed up in the capture (it dropped packets), and in how many
        connections."""


class _Pending:
    """A request seen on the wire, waiting for its response."""

    __slots__ = ("end", "end_ts", "head", "id", "incomplete", "response", "start")

    def __init__(self, head: RequestHead, id_: str, start: int | None = None) -> None:
        self.head = head
        self.id = id_
        self.end_ts: float | None = None
        self.response: ResponseHead | None = None
        self.incomplete = False
        """The request's head was cut by a capture gap."""
        self.start = start
        """Where in the client's stream the segment its head began in starts (the head
        starts there or after); None when not known."""
        self.end: int | None = None
        """Where the segment it ended in ends (it ends there or before); None: not known."""


class _Detached:
    """The sink of a closed connection's streams: nothing is delivered any more."""

    __slots__ = ()

    def data(self, data: bytes, ts: float, packet: int) -> None:
        pass

    def gap(self, size: int, ts: float, packet: int) -> None:
        pass


_DETACHED = _Detached()


class Side:
    """One direction: its reassembly and, once roles are known, its parser."""

    __slots__ = ("conv", "counted", "delivered", "ended", "endpoint", "held", "index", "parser",
                 "stream")

    def __init__(self, conv: Conversation, index: int, endpoint: bytes) -> None:
        self.conv = conv
        self.index = index
        self.stream = Stream(self)
        self.parser: MessageParser | None = None
        self.delivered = 0
        self.counted = 0
        """The stream's lost bytes already counted in the context."""
        self.ended = False
        self.endpoint = endpoint
        self.held: list[tuple[bytes, float, int]] = []
        """Bytes that may start a message whose first line is not complete yet."""

    def data(self, data: bytes, ts: float, packet: int) -> None:
        parser = self.parser
        if parser is not None:
            parser.feed(data, ts, packet)
        else:
            self.conv.sniff(self, data, ts, packet)
        self.delivered += len(data)

    def gap(self, size: int, ts: float, packet: int) -> None:
        conv = self.conv
        stream = self.stream
        if stream.holes != self.counted:  # bytes that never showed up (not a snaplen cut)
            if not conv.sides[0].counted and not conv.sides[1].counted:
                conv.ctx.lost_connections += 1
            conv.ctx.lost += stream.holes - self.counted
            self.counted = stream.holes
            if self.index == conv.client and stream.pos is not None:
                conv.client_hole = stream.pos + size
        if self.parser is not None:
            self.parser.gap(size, ts, packet)
        self.delivered += size


class _Requests:
    """Handler of the client's parser."""

    __slots__ = ("conv",)

    def __init__(self, conv: Conversation) -> None:
        self.conv = conv

    def on_head(self, head: RequestHead | ResponseHead) -> tuple[int, int]:
        assert isinstance(head, RequestHead)
        self.conv.request(head)
        return request_framing(head)

    def on_end(self, ts: float, packet: int) -> None:
        conv = self.conv
        current = conv.current
        if current is not None:
            current.end_ts = ts
            assert conv.client is not None
            stream = conv.sides[conv.client].stream
            if stream.at_packet == packet:
                current.end = stream.at_end
            conv.current = None

    def on_lost(self, head_known: bool, reason: str, ts: float, packet: int,
                partial: RequestHead | ResponseHead | None) -> None:
        # A request whose body was cut still waits for its response. One whose head was cut
        # is kept with what it shows, so that its response (if any) still pairs with it.
        self.conv.current = None
        if isinstance(partial, RequestHead) and reason in (GAP, NO_RESPONSE, RESET):
            self.conv.request(partial)
            self.conv.queue[-1].incomplete = True
            self.conv.current = None


class _Responses:
    """Handler of the server's parser: pairs each final response with the oldest request."""

    __slots__ = ("after_gap", "answering", "conv", "interim")

    def __init__(self, conv: Conversation) -> None:
        self.conv = conv
        self.answering: _Pending | None = None
        self.interim = False
        self.after_gap = 0
        """Responses were lost (1: the oldest waiting request was taken as answered in
        them; 2: not even that is known, requests may have been lost too): the next
        response's acknowledgment number tells which waiting requests they answered."""

    def on_head(self, head: RequestHead | ResponseHead) -> tuple[int, int]:
        assert isinstance(head, ResponseHead)
        conv = self.conv
        conv.catch_up(head.ts, head.packet)
        status = head.status
        self.interim = 100 <= status < 200 and status != 101
        if self.interim:
            return BODY_NONE, 0  # 100 Continue, 103 Early Hints: the final response follows
        acked = conv.acked_at(head.packet)
        foreign = False
        if self.after_gap:
            foreign = self._lost_before(acked, self.after_gap == 2)
            self.after_gap = 0
        req = conv.queue[0] if conv.queue and not foreign else None
        if req is not None and req.start is not None and acked is not None \
                and acked <= req.start:
            # The server sent this before it had the oldest waiting request's first byte:
            # the answer to a request the capture lost, not to that one.
            req = None
        if req is None:
            conv.ctx.orphans += 1
            self.answering = None
            return response_framing(head, None)
        req.response = head
        self.answering = req
        if req.start is not None and req.start > conv.answered:
            conv.answered = req.start
        framing = response_framing(head, req.head.method)
        if framing[0] == BODY_TUNNEL:
            if status == 101 and any(
                n.lower() == "upgrade" and "h2c" in v.lower() for n, v in req.head.headers
            ):
                conv.ctx.h2 += 1
            conv.queue.popleft()
            self.answering = None
            conv.emit(req, head, head.ts, None)
            conv.tunnel()
        return framing

    def on_end(self, ts: float, packet: int) -> None:
        if self.interim:
            self.interim = False
            return
        req = self.answering
        self.answering = None
        conv = self.conv
        if req is not None and conv.queue and conv.queue[0] is req:
            conv.queue.popleft()
            conv.emit(req, req.response, ts, None)

    def on_lost(self, head_known: bool, reason: str, ts: float, packet: int,
                partial: RequestHead | ResponseHead | None) -> None:
        # A cut response head is not used: its missing fields (Access-Control-*) would be
        # taken for absent ones.
        conv = self.conv
        req = self.answering
        self.answering = None
        if head_known and req is not None and conv.queue and conv.queue[0] is req:
            # The head was read: the response is known even though its end is not.
            conv.queue.popleft()
            conv.emit(req, req.response, None, None)
        elif not head_known:
            unsure = reason == GAP and conv.client_unsure()
            if conv.queue and conv.queue[0].response is None and not unsure:
                # Bytes were lost where the oldest request's response was due.
                conv.emit(conv.queue.popleft(), None, None, reason)
            if reason == GAP:
                # They may have held more answers (or, when requests were lost too, answers
                # to those): the next response's acknowledgment number tells.
                self.after_gap = 2 if unsure else 1

    def _lost_before(self, acked: int | None, deferred: bool) -> bool:
        """After responses were lost: the waiting requests the server had answered before
        the one now answered, as lost. Without pipelining (browsers do not pipeline) the
        client sends a request only once the previous response arrived, so a request
        the server had received before this response had its own answered before it.
        True: this response answers a request the capture lost. ``deferred``: the oldest
        waiting request was not taken as answered in the lost bytes yet; with no
        acknowledgment number to tell, it is now, as without one it always was."""
        conv = self.conv
        queue = conv.queue
        if acked is None:
            if deferred and queue and queue[0].response is None:
                conv.emit(queue.popleft(), None, None, GAP)
            return False
        while len(queue) > 1 and queue[1].start is not None and queue[1].start < acked:
            conv.emit(queue.popleft(), None, None, GAP)
        if queue and queue[0].end is not None and queue[0].end < acked and (
                len(queue) == 1 or (queue[1].start is not None and queue[1].start >= acked)):
            # The server had bytes sent after the oldest request, none of them a request
            # the capture shows: a request it lost, whose answer this is; the oldest's own
            # answer was in the lost bytes.
            conv.emit(queue.popleft(), None, None, GAP)
            return True
        return False


def request_framing(head: RequestHead) -> tuple[int, int]:
    """RFC 9112 section 6.3, rules 4-6 for requests: chunked, Content-Length, or no body."""
    te = head.transfer_encoding
    if te is not None:
        return (BODY_CHUNKED, 0) if te.lower().rstrip().endswith("chunked") else (BODY_CLOSE, 0)
    length = _content_length(head.content_length)
    if length:
        return BODY_LENGTH, length
    return BODY_NONE, 0


def response_framing(head: ResponseHead, method: str | None) -> tuple[int, int]:
    """RFC 9112 section 6.3 for responses (``method`` of the request when known)."""
    status = head.status
    if status == 101:
        return BODY_TUNNEL, 0
    # Methods are case-sensitive (RFC 9110 section 9.1): "head" is not HEAD.
    if method == "CONNECT" and 200 <= status < 300:
        return BODY_TUNNEL, 0
    if method == "HEAD":
        return BODY_NONE, 0
    if status < 200 or status in (204, 304):
        return BODY_NONE, 0
    te = head.transfer_encoding
    if te is not None:
        return (BODY_CHUNKED, 0) if te.lower().rstrip().endswith("chunked") else (BODY_CLOSE, 0)
    length = _content_length(head.content_length)
    if length is not None:
        return BODY_LENGTH, length
    return BODY_CLOSE, 0


def _content_length(value: str | None) -> int | None:
    if value is None:
        return None
    # Repeated equal values ("5, 5") are allowed (RFC 9110 section 8.6).
    parts = {p.strip() for p in value.split(",")}
    if len(parts) != 1:
        return None
    text = parts.pop().lstrip("0") or "0"
    # 1*DIGIT; past 18 digits no capture holds the body (and int() refuses 4,301 digits).
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None


def endpoint_text(endpoint: bytes) -> str:
    """``ip:port`` for a packed endpoint (IPv6 in brackets)."""
    ip, port = endpoint[:-2], int.from_bytes(endpoint[-2:], "big")
    if len(ip) == 4:
        return f"{ipaddress.IPv4Address(ip)}:{port}"
    return f"[{ipaddress.IPv6Address(ip)}]:{port}"


def request_url(head: RequestHead, server: bytes) -> str:
    """The absolute URL of a request (RFC 9112 section 3.3), scheme http: a pcap shows no TLS
    we could read, so whatever it shows in the clear is http, whatever the port."""
    target = head.target
    lower = target[:8].lower()
    if lower.startswith(("http://", "https://")):
        return target  # absolute-form, as proxies receive it
    host = None
    for n, v in head.headers:
        if n.lower() == "host":
            host = v.strip()
            break
    authority = host or endpoint_text(server).removesuffix(":80")
    if head.method == "CONNECT" and not target.startswith("/"):
        return f"http://{target}"  # authority-form
    if target == "*":
        return f"http://{authority}/*"  # asterisk-form (OPTIONS *): keep it visible
    if not target.startswith("/"):
        target = "/" + target
    return f"http://{authority}{target}"


def _ms(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b < a:
        return None
    return round((b - a) * 1000.0, 3)


class Conversation:
    """The HTTP/1.x state of one TCP connection."""

    __slots__ = (
        "answered",
        "client",
        "client_hole",
        "closed",
        "ctx",
        "current",
        "fins",
        "first_ts",
        "ignored",
        "last_ts",
        "queue",
        "req_k",
        "req_packet",
        "sides",
        "syn_client",
        "ticks",
    )

    def __init__(self, ctx: Context, first_src: bytes, first_dst: bytes) -> None:
        self.ctx = ctx
        self.sides = (Side(self, 0, first_src), Side(self, 1, first_dst))
        self.client: int | None = None
        self.syn_client: int | None = None
        self.queue: deque[_Pending] = deque()
        self.current: _Pending | None = None
        self.ignored = False
        self.first_ts = float("-inf")
        """When its first packet was captured (set by the reader): none of its bytes is
        older (-inf: unknown)."""
        self.last_ts = 0.0
        self.closed = False
        self.req_packet = 0
        self.req_k = 0
        self.ticks = 0
        """Packets seen on this connection."""
        self.fins = 0
        """Bit d set: direction d sent a FIN (followed only for connections not parsed)."""
        self.client_hole = -1
        """Where in the client's stream its latest hole ends (-1: none)."""
        self.answered = -1
        """Where the latest request a captured response answered starts: a hole after it
        may have held requests whose answers a lost stretch of responses held."""

    # ---------------------------------------------------------------- roles

    def sniff(self, side: Side, data: bytes, ts: float, packet: int) -> None:
        """In-order bytes before the roles are known: find out what this connection is."""
        if self.ignored:
            return
        piece = (data, ts, packet)
        if side.held:
            # A first line split over segments; if the two do not make a start line together,
            # the new segment may still begin one on its own.
            pieces = side.held + [piece]
            side.held = []
            first = side.delivered == sum(len(p[0]) for p in pieces[:-1])
            if self._classify(side, pieces, first):
                return
            first = False
        else:
            first = side.delivered == 0
        self._classify(side, [piece], first)

    def _classify(self, side: Side, pieces: list[tuple[bytes, float, int]], first: bool) -> bool:
        data = b"".join(p[0] for p in pieces) if len(pieces) > 1 else pieces[0][0]
        ts, packet = pieces[-1][1], pieces[-1][2]
        if unfinished_start_line(data):
            side.held = pieces  # the first line is not complete yet
            return True
        if first and data.startswith(H2_PREFACE[: min(len(data), len(H2_PREFACE))]):
            self.ctx.h2 += 1
            self.ignored = True
        elif looks_like_request(data):
            self._start(side.index, pieces, ts, packet)
        elif looks_like_response(data):
            self._start(1 - side.index, [], ts, packet)
            parser = side.parser
            assert parser is not None
            for piece in pieces:
                parser.feed(*piece)
        elif first and looks_like_tls(data):
            self.ctx.tls += 1
            self.ignored = True
        elif first and self.syn_client is not None:
            self.ignored = True  # the connection's first bytes are some other protocol
        elif (start := find_request_line(data)) >= 0:
            # Mid-connection: a request begins inside this segment, after a line end.
            self._start(side.index, [(data[start:], ts, packet)], ts, packet)
        else:
            return False
        return True

    def _start(self, client: int, pieces: list[tuple[bytes, float, int]], ts: float,
               packet: int) -> None:
        self.client = client
        c, s = self.sides[client], self.sides[1 - client]
        if c.stream.holes and c.stream.pos is not None:  # lost before roles were known
            self.client_hole = c.stream.pos
        responses = _Responses(self)
        if s.stream.holes:  # responses lost before the roles were known
            responses.after_gap = 2
        c.parser = MessageParser(_Requests(self), True, synced=bool(pieces) or c.delivered == 0)
        # The server's parser is in sync if nothing of its direction went by unread.
        s.parser = MessageParser(responses, False, synced=s.delivered == 0)
        for piece in pieces:
            c.parser.feed(*piece)

    # -------------------------------------------------------------- pairing

    def catch_up(self, ts: float, packet: int) -> None:
        """A response begins: when the server acknowledged client bytes the capture lost
        while later ones wait behind the hole, deliver those first (the hole is declared
        lost now rather than after the usual grace): they hold the requests this response
        may answer, and without them it would be paired with an older one."""
        assert self.client is not None
        stream = self.sides[self.client].stream
        if stream.ack_target is not None and stream.order:
            stream.settle(ts, stream.ack_tick + ACK_GRACE_PACKETS, packet)

    def acked_at(self, packet: int) -> int | None:
        """How much of the client's stream the server had received when it sent packet
        ``packet`` (the offset of the first byte it had not), when that is the segment
        being delivered and it carries an ACK; else None."""
        assert self.client is not None
        server = self.sides[1 - self.client].stream
        if server.at_packet != packet or server.at_ack < 0:
            return None
        acked = self.sides[self.client].stream.offset_of(server.at_ack)
        # Before the client's first byte: a number no real peer sends (a damaged or made-up
        # capture), or bytes from before the capture began; either way no help here.
        return acked if acked is not None and acked >= 0 else None

    def client_unsure(self) -> bool:
        """Requests may be missing: the client's stream lost bytes after the latest request
        a response answered, or holds bytes behind a hole not declared yet."""
        assert self.client is not None
        stream = self.sides[self.client].stream
        return (self.client_hole > self.answered or bool(stream.order)
                or stream.ack_target is not None)

    def request(self, head: RequestHead) -> None:
        if head.packet == self.req_packet:
            self.req_k += 1
            id_ = f"p{head.packet}.{self.req_k}"
        else:
            self.req_packet = head.packet
            self.req_k = 1
            id_ = f"p{head.packet}"
        assert self.client is not None
        stream = self.sides[self.client].stream
        # The head starts in the segment being delivered, at its first byte or after.
        start = stream.at if stream.at_packet == head.packet else None
        pending = _Pending(head, id_, start)
        queue = self.queue
        queue.append(pending)
        self.current = pending
        if len(queue) > MAX_UNANSWERED and queue[0].response is None:
            # No server keeps this many requests waiting: the capture does not show this
            # connection's responses (one direction only). Do not hold them all until its end.
            self.emit(queue.popleft(), None, None, NO_RESPONSE)

    def emit(self, req: _Pending, resp: ResponseHead | None, finished: float | None,
             failure: str | None) -> None:
        head = req.head
        ctx = self.ctx
        assert self.client is not None
        if req.incomplete:
            failure = GAP
        server = self.sides[1 - self.client].endpoint
        response = None
        if resp is not None:
            response = Response(resp.status, Headers(
                fields_read(resp.headers) if ctx.lean else resp.headers), resp.reason,
                resp.version, finished)
        end = req.end_ts
        timings = Timings(
            send=_ms(head.ts, end),
            wait=_ms(end, resp.ts) if resp is not None else None,
            receive=_ms(resp.ts, finished) if resp is not None else None,
            total=_ms(head.ts, finished),
        )
        ctx.exchanges += 1
        ctx.out.append(Exchange(
            id=req.id,
            method=head.method,
            url=request_url(head, server),
            request_headers=Headers(head.headers),
            started=head.ts,
            source=SourceRef(ctx.path, ctx.fmt, head.packet, f"packet {head.packet}"),
            response=response,
            failure=failure,
            timings=timings,
            http_version=head.version,
        ))

    def tunnel(self) -> None:
        """101 or a CONNECT tunnel: what follows on both directions is not HTTP/1."""
        for side in self.sides:
            if side.parser is not None:
                side.parser.state = TUNNEL
        for req in self.queue:  # requests pipelined behind an upgrade are never answered
            self.emit(req, None, None, NO_RESPONSE)
        self.queue.clear()
        self.ignored = True

    # ------------------------------------------------------------ lifecycle

    def side_finished(self, side: Side) -> None:
        """All bytes of a direction up to its FIN were delivered."""
        if side.ended:
            return
        side.ended = True
        if side.parser is not None:
            side.parser.eof(side.stream.last_ts, side.stream.last_packet, NO_RESPONSE)

    def close(self, reason: str) -> None:
        """The connection is over (FIN both ways, RST, idle, end of capture)."""
        if self.closed:
            return
        self.closed = True
        if not self.ignored:
            for side in self.sides:
                side.stream.flush()
            if self.client is not None:
                server = self.sides[1 - self.client]
                client = self.sides[self.client]
                for side in (server, client):
                    if side.parser is not None and not side.ended:
                        side.ended = True
                        side.parser.eof(side.stream.last_ts, side.stream.last_packet, reason)
            for req in self.queue:
                self.emit(req, None, None, reason)
            self.queue.clear()
        # Each side points back at the connection, its stream at the side, its parser's
        # handler at the connection: cycles, which only the cycle collector frees, whenever
        # it next runs. Broken here, a closed connection's memory goes the moment the reader
        # forgets it, so a flood of connections stays bounded by what is open. What stays
        # (the sides' endpoints and sequence ranges) is what the reader remembers it by.
        for side in self.sides:
            side.stream.clear_pending()
            side.stream.sink = _DETACHED
            side.parser = None
            del side.conv
