"""One direction of a TCP connection put back in order.

A :class:`Stream` is fed the segments of one direction in capture order and hands its
:class:`StreamSink` the bytes in sequence order, each piece with the time and packet number
of the segment that carried it:

* retransmissions and byte-identical duplicates are dropped (what was delivered stays: the
  first copy of a byte wins, as in most receivers);
* segments ahead of the next expected byte wait in a bounded buffer until the hole fills
  (bounded in bytes and in segments: a million one-byte segments out of order cost no more
  than a few thousand; they are kept in a heap by offset, so draining is O(n log n));
* a hole that will never fill becomes a ``gap(size)`` call: when the peer acknowledged bytes
  the capture never showed (the receiver got them, so no retransmission will come) and they
  still have not shown up a few packets or a second later (capture points do reorder a
  little: an ACK may be captured just before the segment it acknowledges), when the buffer
  bound is exceeded, or when the stream is flushed at close or end of capture;
* sequence numbers are compared modulo 2**32 and kept as unbounded offsets, so wrap-around
  is invisible to the sink.

Theory: positions are offsets from the first byte we synchronised on (``pos``); ``raw`` is the
32-bit sequence number of ``pos``. A segment's offset is ``pos`` plus the signed 32-bit
distance of its sequence number from ``raw``.
"""

from __future__ import annotations

from heapq import heappop, heappush
from typing import Protocol

MAX_PENDING = 512 * 1024
"""Out-of-order bytes held per direction before the hole is declared lost."""
MAX_PENDING_SEGMENTS = 4096
"""Out-of-order segments held per direction before the hole is declared lost (tiny segments
would otherwise cost far more memory than their bytes)."""
ACK_GRACE_PACKETS = 8
ACK_GRACE_SECONDS = 1.0
"""How long bytes the peer acknowledged may still arrive before they count as lost."""

_M = 0xFFFFFFFF


class StreamSink(Protocol):
    """Receives one direction's bytes in order."""

    def data(self, data: bytes, ts: float, packet: int) -> None: ...

    def gap(self, size: int, ts: float, packet: int) -> None: ...


class Stream:
    """Reassembly of one direction. ``pos`` is None until the first SYN or data segment."""

    __slots__ = (
        "ack_target",
        "ack_tick",
        "ack_ts",
        "at",
        "at_ack",
        "at_end",
        "at_packet",
        "fin",
        "holes",
        "isn",
        "last_packet",
        "last_ts",
        "limit",
        "order",
        "origin",
        "pending",
        "pending_bytes",
        "pos",
        "raw",
        "sink",
    )

    def __init__(self, sink: StreamSink, limit: int = MAX_PENDING) -> None:
        self.sink = sink
        self.isn: int | None = None
        self.origin: int | None = None
        """Sequence number of the first byte: after the SYN, or of the first segment seen."""
        self.pos: int | None = None
        self.raw = 0
        self.pending: dict[int, tuple[bytes, float, int, int]] = {}
        self.order: list[int] = []
        """The keys of ``pending`` as a heap: the lowest offset first."""
        self.pending_bytes = 0
        self.fin: int | None = None
        """Offset of the FIN (the first position after the last data byte), once seen."""
        self.limit = limit
        self.last_ts = 0.0
        self.last_packet = 0
        self.ack_target: int | None = None
        """Offset the peer acknowledged beyond what was delivered, while we wait for it."""
        self.ack_ts = 0.0
        self.ack_tick = 0
        self.holes = 0
        """Bytes declared lost because they never showed up (not those a snapshot length
        cut off)."""
        self.at = 0
        self.at_end = 0
        self.at_ack = -1
        self.at_packet = -1
        """While a segment's bytes go to the sink: the offsets of its first byte and after
        its last, its acknowledgment number (-1: none) and its packet."""

    @property
    def finished(self) -> bool:
        """All bytes up to the FIN have been delivered."""
        return self.fin is not None and self.pos is not None and self.pos >= self.fin

    def syn(self, seq: int) -> None:
        """The SYN fixes the initial sequence number: data starts at ``seq + 1``."""
        if self.pos is None:
            self.isn = seq
            self.pos = 0
            self.raw = self.origin = (seq + 1) & _M

    def offset_of(self, seq: int) -> int | None:
        """The stream offset of sequence number ``seq`` (None before the stream began)."""
        return None if self.pos is None else self._offset(seq)

    def _offset(self, seq: int) -> int:
        assert self.pos is not None
        return self.pos + (((seq - self.raw + 0x80000000) & _M) - 0x80000000)

    def segment(self, seq: int, payload: bytes, missing: int, fin: bool, ts: float, packet: int,
                ack: int = -1) -> None:
        """A data and/or FIN segment; ``missing`` bytes after the payload were not captured;
        ``ack``: its acknowledgment number (-1: no ACK flag)."""
        self.last_ts = ts
        self.last_packet = packet
        if self.pos is None:
            if not payload and not missing:
                if fin:  # a FIN with nothing before it that we saw: the stream is empty
                    self.pos = 0
                    self.raw = seq
                    self.fin = 0
                return
            # No SYN seen: the capture started mid-connection; begin at this segment.
            self.pos = 0
            self.raw = self.origin = seq & _M
        start = self._offset(seq)
        length = len(payload) + missing
        end = start + length
        if fin and self.fin is None:
            self.fin = end
        if length == 0:
            return
        pos = self.pos
        if end <= pos:
            return  # retransmission or duplicate of what was delivered
        if start > pos:
            self._hold(start, payload, missing, ts, packet, ack)
            return
        self._deliver(start, payload, missing, ts, packet, ack)
        if self.pending:
            self._drain()

    def _deliver(self, start: int, payload: bytes, missing: int, ts: float, packet: int,
                 ack: int = -1) -> None:
        pos = self.pos
        assert pos is not None
        skip = pos - start
        n = len(payload)
        self.at = start
        self.at_end = start + n
        self.at_ack = ack
        self.at_packet = packet
        if skip < n:
            self.sink.data(payload[skip:] if skip else payload, ts, packet)
            skip = 0
        else:
            skip -= n
        if missing > skip:
            self.sink.gap(missing - skip, ts, packet)
        self.pos = start + n + missing
        self.raw = (self.raw + (self.pos - pos)) & _M

    def _hold(self, start: int, payload: bytes, missing: int, ts: float, packet: int,
              ack: int) -> None:
        pending = self.pending
        old = pending.get(start)
        if old is not None and len(old[0]) >= len(payload):
            return
        if old is None:
            heappush(self.order, start)
        pending[start] = (payload, ts, packet, ack)
        if missing:
            # Keep the cut length: the gap is re-created when the segment is delivered.
            tail = start + len(payload)
            if tail not in pending:
                heappush(self.order, tail)
            pending[tail] = (b"", ts, -missing, -1)
        self.pending_bytes += len(payload) - (len(old[0]) if old else 0)
        if self.pending_bytes > self.limit or len(pending) > MAX_PENDING_SEGMENTS:
            self._skip_to(self.order[0], ts, packet)

    def clear_pending(self) -> None:
        self.pending.clear()
        self.order.clear()
        self.pending_bytes = 0

    def _drain(self) -> None:
        pending = self.pending
        order = self.order
        while order:
            start = order[0]
            pos = self.pos
            assert pos is not None
            if start > pos:
                return
            heappop(order)
            payload, ts, packet, ack = pending.pop(start)
            self.pending_bytes -= len(payload)
            if packet < 0:  # a cut-off tail recorded by _hold
                end = start - packet
                if end > pos:
                    self.sink.gap(end - pos, ts, self.last_packet)
                    self.raw = (self.raw + (end - pos)) & _M
                    self.pos = end
                continue
            if start + len(payload) > pos:
                self._deliver(start, payload, 0, ts, packet, ack)

    def _skip_to(self, target: int, ts: float, packet: int) -> None:
        """Declare the bytes before ``target`` lost and deliver what waits after them."""
        pos = self.pos
        assert pos is not None
        if target > pos:
            self.holes += target - pos
            self.sink.gap(target - pos, ts, packet)
            self.raw = (self.raw + (target - pos)) & _M
            self.pos = target
        self._drain()

    def acked(self, ack: int, ts: float, tick: int) -> None:
        """The peer acknowledged up to ``ack`` (``tick`` counts the connection's packets)."""
        pos = self.pos
        if pos is None:
            return
        d = (ack - self.raw) & _M
        if d == 0 or d >= 0x80000000:
            return
        target = pos + d
        if self.fin is not None and target > self.fin:
            target = self.fin  # the FIN itself takes one sequence number
        if target <= pos:
            return
        if self.ack_target is None:
            self.ack_ts = ts
            self.ack_tick = tick
            self.ack_target = target
        elif target > self.ack_target:
            self.ack_target = target

    def settle(self, ts: float, tick: int, packet: int) -> None:
        """Declare lost the acknowledged bytes that did not show up in time."""
        target = self.ack_target
        if target is None:
            return
        pos = self.pos
        if pos is None or pos >= target:
            self.ack_target = None
            return
        if tick - self.ack_tick < ACK_GRACE_PACKETS and ts - self.ack_ts < ACK_GRACE_SECONDS:
            return
        self.ack_target = None
        while self.pos is not None and self.pos < target:
            nxt = self.order[0] if self.order else target
            self._skip_to(min(nxt, target), ts, packet)

    def flush(self) -> None:
        """End of the connection or capture: deliver whatever waits, with its gaps."""
        if self.ack_target is not None:
            self.settle(self.last_ts, self.ack_tick + ACK_GRACE_PACKETS, self.last_packet)
        while self.order:
            self._skip_to(self.order[0], self.last_ts, self.last_packet)
