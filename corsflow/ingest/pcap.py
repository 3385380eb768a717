"""Read HTTP/1.x exchanges from pcap and pcapng captures, streaming.

Frames (:mod:`.packets`) become TCP segments, each connection's two directions are put back
in order (:mod:`.tcp`) and parsed as HTTP/1.x (:mod:`.http1`), and requests are paired with
responses (:mod:`.conversation`). Exchanges come out as their responses complete, which is
completion order, not request order. Memory is bounded by the connections that are open and
the messages in flight: a connection's state is dropped when it closes (FIN both ways or RST)
or has been idle for :data:`IDLE_TIMEOUT` seconds of capture time (longer while a request
waits for its response). What remains of a closed
connection is its sequence ranges, so that a second copy of it (pcapng files write the packets
of several interfaces in batches) or late retransmissions are not read as a new connection.

What a capture cannot show is said once in the diagnostics: TLS connections (HTTPS needs a HAR
export or mitmproxy), HTTP/2 cleartext, link types we cannot decode, damaged records.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from ..errors import Diagnostics
from ..model import Exchange
from ..timeorder import LowWater
from .conversation import NO_RESPONSE, RESET, Context, Conversation
from .http1 import HEAD, HUNT
from .packets import ACK, FIN, RST, SYN, CaptureDamage, SegmentDecoder, capture_format, read_records

log = logging.getLogger(__name__)

IDLE_TIMEOUT = 300.0
"""Seconds of capture time after which a silent connection is closed and forgotten."""
IN_FLIGHT_TIMEOUT = 1800.0
"""The same for a connection with a request still waiting for its response (a long poll)."""
MAX_CONNECTIONS = 1 << 15
"""Connections followed at once. Past it the least recently active quarter is closed early
(counted in the diagnostics): a flood of half-open connections (a SYN scan, a million
connections a minute) must not make memory follow the input instead of what is live."""
_SWEEP_EVERY = 1 << 15  # packets between idle sweeps
_LOW_EVERY = 256  # packets between updates of the low water mark
CLOCK_SLACK = 10.0
"""Seconds a packet's time may go back from the latest one's and still count as later:
far more than the jitter of captures written from several queues, far less than the
look-ahead's horizon."""
_RECENT = 1 << 16  # closed connections whose sequence ranges are kept, to spot a second copy


def read_pcap(path: str, diagnostics: Diagnostics,
              low_water: LowWater | None = None, *, lean: bool = False) -> Iterator[Exchange]:
    """Yield the HTTP/1.x exchanges in the pcap or pcapng file ``path``.

    Raises :class:`~corsflow.errors.IngestError` when the file is no capture; damage inside a
    capture is counted in ``diagnostics`` and reading goes on (or stops at a truncation).
    ``low_water``, when given, is kept up to date with how early an exchange still to come
    can have started (:func:`_low_water`): what lets its exchanges, which come in completion
    order, be put in time order as they come. ``lean``: responses keep only the header
    fields the analysis reads (:func:`~corsflow.ingest.lean.response_fields_read`).
    """
    fmt = capture_format(path)
    ctx = Context(path, fmt, lean)
    out = ctx.out
    table: dict[bytes, tuple[Conversation, int]] = {}
    recent: dict[bytes, tuple[int, int]] = {}
    decoder = SegmentDecoder()
    decode = decoder.decode_record
    damage: list[CaptureDamage] = []
    ts = 0.0
    last_packet = 0
    next_sweep = _SWEEP_EVERY
    next_low = _LOW_EVERY if low_water is not None else -1
    for record in read_records(path, damage):
        seg = decode(record)
        if seg is None:
            continue
        last_packet = number = record[0]
        ts = record[1]
        src, dst, seqno, ackno, flags, payload, missing = seg
        key = src + dst
        entry = table.get(key)
        if entry is None:
            if not (payload or missing or flags & SYN):
                # Late ACKs, FINs and resets of a connection already closed (or never seen)
                # must not bring it back: its state would linger until the idle sweep.
                continue
            if len(table) >= 2 * MAX_CONNECTIONS:
                ctx.evicted += _evict(table, recent)
                if out:
                    yield from out
                    out.clear()
            conv = Conversation(ctx, src, dst)
            conv.first_ts = ts
            table[key] = (conv, 0)
            table[dst + src] = (conv, 1)
            d = 0
            closed = recent.get(key)
            if closed is not None and _within(closed, seqno + 1 if flags & SYN else seqno):
                # Bytes of a connection already read and closed: the same traffic captured
                # again on another interface (pcapng writers put interfaces' packets in
                # batches), or late retransmissions. Not a new connection.
                conv.ignored = True
                ctx.copies += 1
        else:
            conv, d = entry
            if flags & SYN and not flags & ACK and _is_new_connection(conv, d, seqno):
                # The port pair is reused by a new connection: finish the old one first.
                conv.close(NO_RESPONSE)
                conv = Conversation(ctx, src, dst)
                conv.first_ts = ts
                table[key] = (conv, 0)
                table[dst + src] = (conv, 1)
                d = 0
        conv.last_ts = ts
        conv.ticks += 1
        if conv.ignored:
            # Not HTTP/1 (TLS, HTTP/2, another protocol): only its end matters. Forgotten at a
            # FIN in each direction or a reset; forgotten earlier, its last bytes would look
            # like a new connection.
            if flags & FIN:
                conv.fins |= 1 << d
            if flags & RST or conv.fins == 3:
                conv.close(NO_RESPONSE)
                _forget(table, key, dst + src, recent)
            continue
        stream = conv.sides[d].stream
        other = conv.sides[1 - d].stream
        if flags & SYN:
            stream.syn(seqno)
            if not flags & ACK:
                conv.syn_client = d
        # Stream.acked's common case inlined (this runs for every pure ACK): only an ACK
        # beyond what was delivered, by 1 to 2**31 - 1, needs a look.
        if (flags & ACK and other.pos is not None
                and ((ackno - other.raw) & 0xFFFFFFFF) - 1 < 0x7FFFFFFF):
            other.acked(ackno, ts, conv.ticks)
        if payload or missing or flags & FIN:
            # The acknowledgment number goes along: pairing checks a response against the
            # request it would answer by it.
            stream.segment(seqno + 1 if flags & SYN else seqno, payload, missing,
                           bool(flags & FIN), ts, number, ackno if flags & ACK else -1)
        if other.ack_target is not None:
            other.settle(ts, conv.ticks, number)
        if stream.ack_target is not None:
            stream.settle(ts, conv.ticks, number)
        if flags & RST:
            conv.close(RESET)
            _forget(table, key, dst + src, recent)
        elif stream.fin is not None or other.fin is not None:
            for side in conv.sides:
                if side.stream.finished:
                    conv.side_finished(side)
            if conv.sides[0].ended and conv.sides[1].ended:
                conv.close(NO_RESPONSE)
                _forget(table, key, dst + src, recent)
        if out:
            yield from out
            out.clear()
        if number >= next_sweep:
            next_sweep = number + _SWEEP_EVERY
            _sweep(table, ts, recent)
            if out:
                yield from out
                out.clear()
        if 0 <= next_low <= number:
            # Only here, with nothing given out yet waiting: what is still to come is in
            # the connections' state or in packets not read yet.
            assert low_water is not None
            # Spaced by the connections it walks (twice each in the table): one visit of a
            # connection per eight packets read (four times as often, it cost 4 % of the
            # reading); the exchanges it lets go wait a few thousand packets more at most.
            next_low = number + max(_LOW_EVERY, 4 * len(table))
            low_water.low = _low_water(table, ts)
    # End of capture: whatever is still open ends here.
    seen: set[int] = set()
    for conv, _ in table.values():
        if id(conv) not in seen:
            seen.add(id(conv))
            conv.close(NO_RESPONSE)
    table.clear()
    if out:
        yield from out
        out.clear()
    _report(path, diagnostics, decoder, damage, ctx, last_packet)


def _is_new_connection(conv: Conversation, d: int, seq: int) -> bool:
    """A SYN on a known port pair opens a new connection unless it repeats the first SYN."""
    stream = conv.sides[d].stream
    return stream.pos is not None and stream.isn != seq


def _forget(table: dict[bytes, tuple[Conversation, int]], key: bytes, reverse: bytes,
            recent: dict[bytes, tuple[int, int]]) -> None:
    """Drop a closed connection's state, remembering the sequence range of each direction."""
    entry = table.pop(key, None)
    table.pop(reverse, None)
    if entry is None:
        return
    conv = entry[0]
    for side in conv.sides:
        stream = side.stream
        if stream.origin is not None:
            peer = conv.sides[1 - side.index]
            recent[side.endpoint + peer.endpoint] = (stream.origin, stream.raw)
    while len(recent) > _RECENT:
        del recent[next(iter(recent))]  # the oldest (dicts keep insertion order)


def _within(seen: tuple[int, int], seq: int) -> bool:
    """Is ``seq`` in the range ``seen`` = [first, next expected), modulo 2**32? (Bytes from
    the next expected one on continue the connection: an idle one resumes, for example.)"""
    first, end = seen
    return (seq - first) & 0xFFFFFFFF < (end - first) & 0xFFFFFFFF


def _low_water(table: dict[bytes, tuple[Conversation, int]], now: float) -> float:
    """How early an exchange still to come can have started, the packet at ``now`` read.

    It starts at a request head: one in a connection's queue (its time known), one being
    parsed (since its first bytes), or one in bytes not delivered yet. Those come in packets
    not read yet (taken as no earlier than ``now``, less :data:`CLOCK_SLACK`), or in
    out-of-order bytes a connection holds, or, on a connection whose roles are not known yet
    or whose parser hunts for a request line, in bytes since its first packet."""
    low = now
    for conv, d in table.values():
        if d or conv.ignored:  # each connection is listed once per direction
            continue
        client = conv.client
        if client is None:
            low = min(low, conv.first_ts)
            continue
        for pending in conv.queue:
            low = min(low, pending.head.ts)
        side = conv.sides[client]
        parser = side.parser
        if parser is None or parser.state == HUNT or side.stream.order or side.held:
            low = min(low, conv.first_ts)
        elif parser.state == HEAD:
            low = min(low, parser.head_ts)
    return low - CLOCK_SLACK


def _sweep(table: dict[bytes, tuple[Conversation, int]], now: float,
           recent: dict[bytes, tuple[int, int]]) -> None:
    """Close connections that have been silent too long at capture time ``now``."""
    idle, in_flight = now - IDLE_TIMEOUT, now - IN_FLIGHT_TIMEOUT
    stale = [conv for conv, d in table.values()
             if d == 0 and conv.last_ts < (in_flight if conv.queue else idle)]
    for conv in stale:
        conv.close(NO_RESPONSE)
        a, b = conv.sides[0].endpoint, conv.sides[1].endpoint
        _forget(table, a + b, b + a, recent)


def _evict(table: dict[bytes, tuple[Conversation, int]],
           recent: dict[bytes, tuple[int, int]]) -> int:
    """Close the least recently active quarter of the connections; return how many."""
    convs = sorted((conv for conv, d in table.values() if d == 0), key=lambda c: c.last_ts)
    victims = convs[: max(1, len(convs) // 4)]
    for conv in victims:
        conv.close(NO_RESPONSE)
        a, b = conv.sides[0].endpoint, conv.sides[1].endpoint
        _forget(table, a + b, b + a, recent)
    return len(victims)


def _report(path: str, diagnostics: Diagnostics, decoder: SegmentDecoder,
            damage: list[CaptureDamage], ctx: Context, packets: int) -> None:
    for reason, count in decoder.skipped.items():
        first = decoder.first_skip[reason]
        diagnostics.skip(path, f"packet {first}", reason)
        if count > 1:
            # One record in full, the rest counted: a million fragments are not a million rows.
            diagnostics.skipped_by_reason[reason] += count - 1
            diagnostics.note(f"{path}: {count} packets skipped: {reason} (first: packet {first})")
    for d in damage:
        diagnostics.skip(path, f"packet {d.packet}", d.reason)
        diagnostics.skipped_by_reason[d.reason] += d.count - 1
    if decoder.cut:
        diagnostics.note(
            f"{path}: {decoder.cut} packets were cut short by the capture's snapshot length;"
            " exchanges whose headers were cut are incomplete"
        )
    if ctx.tls:
        diagnostics.note(
            f"{path}: {ctx.tls} TLS connection(s) cannot be read: HTTPS in a packet capture is "
            "encrypted; export a HAR from the browser or capture with mitmproxy instead"
        )
    if ctx.h2:
        diagnostics.note(
            f"{path}: {ctx.h2} HTTP/2 cleartext connection(s) (prior knowledge or h2c upgrade) "
            "are not read: only HTTP/1.x is decoded from packet captures"
        )
    if ctx.evicted:
        diagnostics.note(
            f"{path}: {ctx.evicted} connection(s) were closed early to bound memory (more than "
            f"{MAX_CONNECTIONS} open at once, the least recently active first); requests on "
            "them that were still waiting are reported without a response"
        )
    if ctx.copies:
        diagnostics.note(
            f"{path}: {ctx.copies} connection(s) reappeared after they closed (the same "
            "traffic captured on a second interface, or late retransmissions): read once"
        )
    if ctx.lost:
        diagnostics.note(
            f"{path}: {ctx.lost:,} byte(s) in {ctx.lost_connections} connection(s) never showed "
            "up (the capture dropped packets; tcpdump says how many at its end): exchanges "
            "there may be missing, or unknown where their request or response was lost"
        )
    if ctx.orphans:
        diagnostics.note(
            f"{path}: {ctx.orphans} response(s) whose request is not in the capture were left out"
            " (the capture started after the request, or lost it)"
        )
    log.debug("%s: %d packets, %d exchanges", path, packets, ctx.exchanges)
