"""The incremental HTTP/1.x parser: framing, odd syntax, and any split of the bytes."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from corsflow.ingest.conversation import request_framing, response_framing
from corsflow.ingest.http1 import (
    BODY_CHUNKED,
    BODY_CLOSE,
    BODY_LENGTH,
    BODY_NONE,
    BODY_TUNNEL,
    MessageParser,
    RequestHead,
    ResponseHead,
    looks_like_request,
    looks_like_response,
    looks_like_tls,
    parse_head,
)


class Recorder:
    """Records events; frames requests by their own headers, responses as told."""

    def __init__(self, response_mode: tuple[int, int] | None = None) -> None:
        self.events: list[tuple[object, ...]] = []
        self.response_mode = response_mode

    def on_head(self, head: RequestHead | ResponseHead) -> tuple[int, int]:
        if isinstance(head, RequestHead):
            self.events.append(("head", head.method, head.target, head.headers))
            return request_framing(head)
        self.events.append(("head", head.status, head.reason, head.headers))
        return self.response_mode or response_framing(head, "GET")

    def on_end(self, ts: float, packet: int) -> None:
        self.events.append(("end", packet))

    def on_lost(self, head_known: bool, reason: str, ts: float, packet: int,
                partial: RequestHead | ResponseHead | None) -> None:
        self.events.append(("lost", head_known, reason,
                            partial.headers if partial is not None else None))


def run(data: bytes, splits: list[int], is_request: bool = True) -> list[tuple[object, ...]]:
    """Feed ``data`` cut at ``splits``; each piece is its own packet (numbered from 1)."""
    rec = Recorder()
    parser = MessageParser(rec, is_request)
    bounds = [0, *sorted({s for s in splits if 0 < s < len(data)}), len(data)]
    for n, (a, b) in enumerate(itertools.pairwise(bounds), 1):
        parser.feed(data[a:b], float(n), n)
    # Packet numbers depend on the split; compare the structure.
    return [e if e[0] != "end" else ("end",) for e in rec.events]


PIPELINE = (
    b"POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
    b"PUT /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    b"3\r\nabc\r\n10;name=value\r\n0123456789abcdef\r\n0\r\nX-Checksum: 1\r\nX-More: 2\r\n\r\n"
    b"\r\n"  # a stray CRLF between messages (RFC 9112 section 2.2)
    b"patch /c HTTP/1.1\nHost: h\nX-Fold: one\n two\n\n"
    b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"
)
EXPECTED = [
    ("head", "POST", "/a", (("Host", "h"), ("Content-Length", "5"))),
    ("end",),
    ("head", "PUT", "/b", (("Host", "h"), ("Transfer-Encoding", "gzip, chunked"))),
    ("end",),
    ("head", "patch", "/c", (("Host", "h"), ("X-Fold", "one two"))),
    ("end",),
    ("head", "OPTIONS", "*", (("Host", "h"),)),
    ("end",),
]


def test_pipelined_requests_in_one_piece() -> None:
    assert run(PIPELINE, []) == EXPECTED


def test_split_at_every_byte_boundary() -> None:
    for cut in range(1, len(PIPELINE)):
        assert run(PIPELINE, [cut]) == EXPECTED, cut


def test_one_byte_at_a_time() -> None:
    assert run(PIPELINE, list(range(len(PIPELINE)))) == EXPECTED


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(PIPELINE) - 1), max_size=40))
def test_any_segmentation(splits: list[int]) -> None:
    assert run(PIPELINE, splits) == EXPECTED


def test_end_is_reported_with_the_packet_of_the_last_byte() -> None:
    rec = Recorder()
    parser = MessageParser(rec, True)
    parser.feed(b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab", 1.0, 1)
    parser.feed(b"cd", 2.0, 2)
    assert rec.events[-1] == ("end", 2)


def test_chunked_response_with_trailers_split_everywhere() -> None:
    resp = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"4\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n"
            b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n")
    expected = [
        ("head", 200, "OK", (("Transfer-Encoding", "chunked"),)),
        ("end",),
        ("head", 304, "Not Modified", (("ETag", "x"),)),
        ("end",),
    ]
    for cut in range(1, len(resp)):
        assert run(resp, [cut], is_request=False) == expected, cut


def test_body_to_close_ends_at_eof() -> None:
    rec = Recorder()
    parser = MessageParser(rec, False)
    parser.feed(b"HTTP/1.0 200 OK\r\n\r\nbody", 1.0, 1)
    parser.feed(b"HTTP/1.1 200 not a new message", 2.0, 2)
    assert rec.events[-1][0] == "head"
    parser.eof(3.0, 3, "no response in capture")
    assert rec.events[-1] == ("end", 2)


def test_gap_in_a_head_reports_the_partial_head_and_resynchronises() -> None:
    rec = Recorder()
    parser = MessageParser(rec, True)
    parser.feed(b"GET /a HTTP/1.1\r\nHost: h\r\nOrigin: http://o\r\nX-Cut: par", 1.0, 1)
    parser.gap(100, 2.0, 2)
    parser.feed(b"tial rest of a head\r\n\r\n", 3.0, 3)
    parser.feed(b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n", 4.0, 4)
    assert rec.events == [
        ("lost", False, "capture gap", (("Host", "h"), ("Origin", "http://o"))),
        ("head", "GET", "/b", (("Host", "h"),)),
        ("end", 4),
    ]


def test_gap_inside_a_known_length_body_is_absorbed() -> None:
    rec = Recorder()
    parser = MessageParser(rec, True)
    parser.feed(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab", 1.0, 1)
    parser.gap(6, 2.0, 2)
    parser.feed(b"cdGET /n HTTP/1.1\r\n\r\n", 3.0, 3)
    assert [e[0] for e in rec.events] == ["head", "end", "head", "end"]


def test_garbage_between_messages_resynchronises_at_a_line_start() -> None:
    rec = Recorder()
    parser = MessageParser(rec, False)
    parser.feed(b"\x00\x01garbage\r\nmore HTTP/1.1 200 inside a line\r\n", 1.0, 1)
    parser.feed(b"HTTP/1.1 204 No Content\r\n\r\n", 2.0, 2)
    assert rec.events[0][:3] == ("lost", False, "unparsable data")
    assert rec.events[1:] == [("head", 204, "No Content", ()), ("end", 2)]


def test_too_long_head_is_not_http() -> None:
    rec = Recorder()
    parser = MessageParser(rec, True)
    parser.feed(b"GET / HTTP/1.1\r\n" + b"X: " + b"a" * 70000, 1.0, 1)
    assert rec.events[0][:3] == ("lost", False, "message head too long or not HTTP")


def test_start_lines() -> None:
    assert looks_like_request(b"GET / HTTP/1.1\r\n")
    assert looks_like_request(b"CCM_POST / HTTP/1.\n")
    assert looks_like_request(b"OPTIONS * HTTP/1.1\n")
    assert not looks_like_request(b"OPTIONS HTTP/1.1\n")
    assert not looks_like_request(b"GET/HTTP/1.1\n")
    assert not looks_like_request(b"PRI * HTTP/2.0\r\n")
    assert not looks_like_request(b"GET / HTTP/1.1")  # no end of line yet
    assert looks_like_response(b"HTTP/1.1 200 OK\r\n")
    assert looks_like_response(b"HTTP/1.0 404\r\n")
    assert not looks_like_response(b"HTTP/1.1 20 OK\r\n")
    assert looks_like_tls(b"\x16\x03\x01\x02\x00")
    assert not looks_like_tls(b"GET")


def test_parse_head_latin1_and_wire_case() -> None:
    head = parse_head(b"HTTP/1.1 200 Ok\r\nACCESS-control-allow-ORIGIN: *\r\nX: \xff\r\n\r\n",
                      False, 1.0, 7)
    assert isinstance(head, ResponseHead)
    assert head.headers == (("ACCESS-control-allow-ORIGIN", "*"), ("X", "\xff"))
    assert head.packet == 7


def test_framing_rules() -> None:
    def raw(start: bytes, headers: tuple[tuple[str, str], ...]) -> bytes:
        fields = b"".join(f"{n}: {v}\r\n".encode() for n, v in headers)
        return start + b"\r\n" + fields + b"\r\n"

    def req(*headers: tuple[str, str]) -> RequestHead:
        head = parse_head(raw(b"POST / HTTP/1.1", headers), True, 0.0, 1)
        assert isinstance(head, RequestHead)
        return head

    def resp(status: int, *headers: tuple[str, str]) -> ResponseHead:
        head = parse_head(raw(b"HTTP/1.1 %d X" % status, headers), False, 0.0, 1)
        assert isinstance(head, ResponseHead)
        return head

    assert request_framing(req()) == (BODY_NONE, 0)
    assert request_framing(req(("Content-Length", "12"))) == (BODY_LENGTH, 12)
    # Transfer-Encoding wins over Content-Length (RFC 9112 section 6.3, rule 3).
    assert request_framing(req(("Content-Length", "50"), ("Transfer-Encoding", "chunked"))) == (
        BODY_CHUNKED, 0)
    assert response_framing(resp(200, ("Content-Length", "3")), "HEAD") == (BODY_NONE, 0)
    assert response_framing(resp(204), "GET") == (BODY_NONE, 0)
    assert response_framing(resp(304, ("Content-Length", "9")), "GET") == (BODY_NONE, 0)
    assert response_framing(resp(101), "GET") == (BODY_TUNNEL, 0)
    assert response_framing(resp(200), "CONNECT") == (BODY_TUNNEL, 0)
    assert response_framing(resp(407, ("Content-Length", "2")), "CONNECT") == (BODY_LENGTH, 2)
    assert response_framing(resp(200), "GET") == (BODY_CLOSE, 0)
    assert response_framing(resp(200, ("Content-Length", "5, 5")), "GET") == (BODY_LENGTH, 5)
    assert response_framing(resp(200, ("Content-Length", "5, 6")), "GET") == (BODY_CLOSE, 0)
    assert response_framing(resp(200, ("Transfer-Encoding", "gzip")), "GET") == (BODY_CLOSE, 0)


def test_methods_are_case_sensitive_for_framing() -> None:
    head = parse_head(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 4\r\n\r\n", False, 0.0, 1)
    assert isinstance(head, ResponseHead)
    assert response_framing(head, "HEAD") == (BODY_NONE, 0)
    assert response_framing(head, "head") == (BODY_LENGTH, 4)  # an unknown method, with a body
