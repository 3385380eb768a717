"""TCP reassembly of one direction: order, duplicates, overlaps, gaps, wrap-around."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from corsflow.ingest.tcp import ACK_GRACE_PACKETS, Stream


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, bytes | int]] = []

    def data(self, data: bytes, ts: float, packet: int) -> None:
        self.events.append(("data", bytes(data)))

    def gap(self, size: int, ts: float, packet: int) -> None:
        self.events.append(("gap", size))

    def stream(self) -> bytes:
        """The bytes with each gap as that many '?'."""
        return b"".join(v if isinstance(v, bytes) else b"?" * v for _, v in self.events)


def feed(stream: Stream, isn: int, pieces: list[tuple[int, bytes]]) -> None:
    for n, (off, data) in enumerate(pieces, 1):
        stream.segment((isn + 1 + off) & 0xFFFFFFFF, data, 0, False, float(n), n)


def test_in_order_and_out_of_order() -> None:
    r = Recorder()
    s = Stream(r)
    s.syn(100)
    feed(s, 100, [(0, b"abc"), (6, b"ghi"), (3, b"def")])
    assert r.stream() == b"abcdefghi"
    assert s.pending == {} and s.pending_bytes == 0


def test_duplicates_retransmissions_and_overlaps_first_copy_wins() -> None:
    r = Recorder()
    s = Stream(r)
    s.syn(0)
    feed(s, 0, [(0, b"abcd"), (0, b"abcd"), (2, b"XXef"), (1, b"Y"), (6, b"gh")])
    assert r.stream() == b"abcdefgh"


def test_gap_is_delivered_at_flush() -> None:
    r = Recorder()
    s = Stream(r)
    s.syn(0)
    feed(s, 0, [(0, b"ab"), (5, b"fg")])
    assert r.stream() == b"ab"
    s.flush()
    assert r.events == [("data", b"ab"), ("gap", 3), ("data", b"fg")]


def test_acknowledged_unseen_bytes_become_a_gap_after_a_grace() -> None:
    r = Recorder()
    s = Stream(r)
    s.syn(0)
    feed(s, 0, [(0, b"ab")])
    s.acked(1 + 10, 1.0, 1)  # the receiver has 10 bytes; we have 2
    s.settle(1.0, 1, 1)
    assert r.stream() == b"ab"  # a reordered segment may still come
    feed(s, 0, [(2, b"cd")])
    s.settle(1.1, ACK_GRACE_PACKETS + 1, 9)
    assert r.events == [("data", b"ab"), ("data", b"cd"), ("gap", 6)]


def test_late_segment_within_the_grace_is_not_a_gap() -> None:
    r = Recorder()
    s = Stream(r)
    s.syn(0)
    feed(s, 0, [(0, b"ab")])
    s.acked(1 + 4, 1.0, 1)
    feed(s, 0, [(2, b"cd")])
    s.settle(5.0, 100, 9)
    assert r.stream() == b"abcd" and s.ack_target is None


def test_pending_bound_declares_the_hole_lost() -> None:
    r = Recorder()
    s = Stream(r, limit=10)
    s.syn(0)
    feed(s, 0, [(0, b"a"), (5, b"123456"), (11, b"7890ab")])
    assert r.events == [("data", b"a"), ("gap", 4), ("data", b"123456"), ("data", b"7890ab")]


def test_cut_segment_reports_missing_bytes() -> None:
    r = Recorder()
    s = Stream(r)
    s.syn(0)
    s.segment(1, b"abc", 5, False, 1.0, 1)
    s.segment(9, b"z", 0, False, 2.0, 2)
    assert r.events == [("data", b"abc"), ("gap", 5), ("data", b"z")]


def test_cut_segment_held_out_of_order_keeps_its_missing_tail() -> None:
    r = Recorder()
    s = Stream(r)
    s.syn(0)
    s.segment(4, b"def", 2, False, 1.0, 1)
    s.segment(9, b"z", 0, False, 1.0, 2)
    s.segment(1, b"abc", 0, False, 2.0, 3)
    assert r.stream() == b"abcdef??z"


def test_wrap_around() -> None:
    r = Recorder()
    s = Stream(r)
    isn = 0xFFFFFFFF - 3
    s.syn(isn)
    feed(s, isn, [(0, b"abc"), (6, b"ghi"), (3, b"def"), (9, b"jkl")])
    assert r.stream() == b"abcdefghijkl"


def test_fin_marks_the_end() -> None:
    r = Recorder()
    s = Stream(r)
    s.syn(0)
    s.segment(4, b"de", 0, True, 1.0, 1)
    assert not s.finished
    s.segment(1, b"abc", 0, False, 1.0, 2)
    assert s.finished and r.stream() == b"abcde"


def test_no_syn_starts_at_the_first_segment() -> None:
    r = Recorder()
    s = Stream(r)
    s.segment(5000, b"xyz", 0, False, 1.0, 1)
    s.segment(4990, b"old", 0, False, 1.0, 2)  # before the start: an old retransmission
    s.segment(5003, b"!", 0, False, 1.0, 3)
    assert r.stream() == b"xyz!"


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=300),
    cuts=st.lists(st.integers(min_value=1, max_value=299), max_size=30),
    isn=st.integers(min_value=0, max_value=0xFFFFFFFF),
    order=st.randoms(use_true_random=False),
    dups=st.integers(min_value=0, max_value=10),
)
def test_any_segmentation_permutation_and_duplication_gives_the_same_bytes(
    data: bytes, cuts: list[int], isn: int, order: object, dups: int,
) -> None:
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    pieces = [(a, data[a:b]) for a, b in itertools.pairwise(bounds)]
    shuffled = pieces + [pieces[i % len(pieces)] for i in range(dups)]
    order.shuffle(shuffled)  # type: ignore[attr-defined]
    r = Recorder()
    s = Stream(r)
    s.syn(isn)
    feed(s, isn, shuffled)
    s.flush()
    assert r.stream() == data
