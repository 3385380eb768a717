"""read_pcap on synthetic captures: file formats, link layers, TCP and HTTP/1.x edge cases."""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corsflow.errors import Diagnostics, IngestError
from corsflow.ingest import detect_format, open_capture
from corsflow.ingest.pcap import read_pcap
from corsflow.model import Exchange

from .pcap_builder import (
    ACK,
    FIN,
    PSH,
    Conversation,
    Interface,
    Packet,
    ethernet,
    pcap_bytes,
    pcapng_bytes,
)

GET = b"GET /a HTTP/1.1\r\nHost: api.example\r\nOrigin: http://app.example\r\n\r\n"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nAccess-Control-Allow-Origin: *\r\n\r\nhello"


def read(tmp_path: Path, data: bytes, name: str = "c.pcap") -> tuple[list[Exchange], Diagnostics]:
    path = tmp_path / name
    path.write_bytes(data)
    diagnostics = Diagnostics()
    return list(read_pcap(str(path), diagnostics)), diagnostics


def summary(exchanges: list[Exchange]) -> list[tuple[object, ...]]:
    return [(e.method, e.url, e.status, e.failure) for e in exchanges]


def simple(conv: Conversation | None = None, close: bool = True) -> Conversation:
    c = conv or Conversation()
    c.handshake()
    c.client_sends(GET)
    c.server_sends(OK)
    if close:
        c.close()
    return c


# ----------------------------------------------------------------------------- file formats


@pytest.mark.parametrize("nanos", [False, True])
@pytest.mark.parametrize("big_endian", [False, True])
def test_pcap_byte_orders_and_resolutions(tmp_path: Path, nanos: bool, big_endian: bool) -> None:
    c = simple()
    exchanges, diag = read(tmp_path, pcap_bytes(c.packets, nanos=nanos, big_endian=big_endian))
    assert summary(exchanges) == [("GET", "http://api.example/a", 200, None)]
    e = exchanges[0]
    assert e.id == "p4"  # SYN, SYN-ACK, ACK, then the request
    assert e.source.index == 4 and e.source.where == "packet 4" and e.source.format == "pcap"
    assert e.started == pytest.approx(c.packets[3].ts, abs=1e-6)
    assert e.response is not None and e.response.finished == pytest.approx(c.packets[4].ts, abs=1e-6)
    assert e.request_headers.get("origin") == "http://app.example"
    assert e.response.headers.get("Access-Control-Allow-Origin") == "*"
    assert e.timings is not None and e.timings.wait == pytest.approx(1.0, abs=0.01)
    assert diag.skipped_count == 0


def test_pcapng_several_interfaces_link_types_and_resolutions(tmp_path: Path) -> None:
    """dpkt reads only the first interface; every interface has its own link type and clock."""
    a = simple(Conversation(client=("10.0.0.1", 40000)))
    b = simple(Conversation(client=("10.0.0.3", 40001), ts=1700000100.0))
    b.link = "raw"
    for p in b.packets:  # rebuild b's frames as raw IP for interface 1
        p.frame = p.frame[14:14 + struct.unpack("!H", p.frame[16:18])[0]]
        p.interface = 1
    packets = sorted(a.packets + b.packets, key=lambda p: p.ts)
    interfaces = [Interface(1, tsresol=9), Interface(101, tsresol=0x80 | 20, tsoffset=1000)]
    for big_endian in (False, True):
        exchanges, diag = read(tmp_path, pcapng_bytes(packets, interfaces, big_endian=big_endian),
                               "c.pcapng")
        assert sorted(summary(exchanges)) == [("GET", "http://api.example/a", 200, None)] * 2
        assert {e.source.format for e in exchanges} == {"pcapng"}
        starts = sorted(e.started for e in exchanges)
        assert starts[0] == pytest.approx(a.packets[3].ts, abs=1e-6)
        assert starts[1] == pytest.approx(b.packets[3].ts, abs=1e-5)
        assert diag.skipped_count == 0


def test_format_is_taken_from_the_magic_not_the_name(tmp_path: Path) -> None:
    c = simple()
    path = tmp_path / "capture.pcap"  # a pcapng file named .pcap
    path.write_bytes(pcapng_bytes(c.packets, [Interface(1)]))
    assert detect_format(str(path)) == "pcapng"
    fmt, stream = open_capture(str(path), Diagnostics())
    exchanges = list(stream)
    assert fmt == "pcapng" and [e.source.format for e in exchanges] == ["pcapng"]


def test_not_a_capture_is_one_line_ingest_error(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(b"this is not a capture at all\n")
    with pytest.raises(IngestError) as info:
        list(read_pcap(str(path), Diagnostics()))
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_truncated_file_keeps_what_was_read(tmp_path: Path) -> None:
    first = simple()
    second = simple(Conversation(client=("10.0.0.9", 40009), ts=1700000050.0))
    data = pcap_bytes(first.packets + second.packets)
    exchanges, diag = read(tmp_path, data[:-30])  # the last packet (final ACK) is cut
    assert len(exchanges) == 2
    assert diag.skipped_count == 1
    assert "truncated" in diag.skipped[0].reason
    assert diag.skipped[0].where == f"packet {len(first.packets) + len(second.packets)}"


def test_truncated_pcapng_block(tmp_path: Path) -> None:
    c = simple()
    data = pcapng_bytes(c.packets, [Interface(1)])
    exchanges, diag = read(tmp_path, data[:-10], "c.pcapng")
    assert summary(exchanges) == [("GET", "http://api.example/a", 200, None)]
    assert diag.skipped_count == 1 and "truncated" in diag.skipped[0].reason


def test_corrupt_record_length_stops_with_a_note(tmp_path: Path) -> None:
    c = simple()
    data = bytearray(pcap_bytes(c.packets))
    # Packet 6's record header: the caplen becomes absurd.
    off = 24
    for p in c.packets[:5]:
        off += 16 + len(p.frame)
    struct.pack_into("<I", data, off + 8, 0x7FFFFFFF)
    exchanges, diag = read(tmp_path, bytes(data))
    assert summary(exchanges) == [("GET", "http://api.example/a", 200, None)]
    assert diag.skipped[0].where == "packet 6" and "corrupt" in diag.skipped[0].reason


# ------------------------------------------------------------------------------ link layers


def _relink(conv: Conversation, wrap: Callable[[bytes], bytes]) -> list[Packet]:
    out = []
    for p in conv.packets:
        ip_len = struct.unpack("!H", p.frame[16:18])[0]
        ip = p.frame[14:14 + ip_len]
        out.append(Packet(p.ts, wrap(ip)))
    return out


def _sll(ip: bytes) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 6 + b"\0\0", 0x0800) + ip


def _sll2(ip: bytes) -> bytes:
    return struct.pack("!HHIHBB8s", 0x0800, 0, 1, 1, 0, 6, b"\x02" * 6 + b"\0\0") + ip


LINKS: dict[str, tuple[int, Callable[[bytes], bytes]]] = {
    "ethernet-vlan": (1, lambda ip: ethernet(ip, vlan=42)),
    "sll": (113, _sll),
    "sll2": (276, _sll2),
    "null-little-endian": (0, lambda ip: struct.pack("<I", 2) + ip),
    "null-big-endian": (0, lambda ip: struct.pack(">I", 2) + ip),
    "loop": (108, lambda ip: struct.pack(">I", 2) + ip),
    "raw-101": (101, lambda ip: ip),
    "raw-12": (12, lambda ip: ip),
    "raw-14": (14, lambda ip: ip),
    "ipv4-228": (228, lambda ip: ip),
}


@pytest.mark.parametrize("link", sorted(LINKS))
def test_link_types(tmp_path: Path, link: str) -> None:
    linktype, wrap = LINKS[link]
    exchanges, diag = read(tmp_path, pcap_bytes(_relink(simple(), wrap), linktype))
    assert summary(exchanges) == [("GET", "http://api.example/a", 200, None)]
    assert diag.skipped_count == 0


@pytest.mark.parametrize("linktype,family", [(229, None), (0, 30), (0, 10), (101, None)])
def test_ipv6(tmp_path: Path, linktype: int, family: int | None) -> None:
    c = simple(Conversation(client=("2001:db8::1", 50000), server=("2001:db8::2", 8080)))
    c.packets = _relink6(c)
    header = struct.pack("<I", family) if family else b""  # NULL's host-order family
    packets = [Packet(p.ts, header + p.frame) for p in c.packets]
    exchanges, _ = read(tmp_path, pcap_bytes(packets, linktype))
    assert summary(exchanges) == [("GET", "http://api.example/a", 200, None)]


def _relink6(conv: Conversation) -> list[Packet]:
    out = []
    for p in conv.packets:
        plen = struct.unpack("!H", p.frame[18:20])[0]
        out.append(Packet(p.ts, p.frame[14:14 + 40 + plen]))
    return out


def test_host_missing_uses_the_server_address(tmp_path: Path) -> None:
    c = Conversation(client=("2001:db8::1", 50000), server=("2001:db8::2", 8080))
    c.handshake()
    c.client_sends(b"GET /x HTTP/1.0\r\n\r\n")
    c.server_sends(b"HTTP/1.0 204 No Content\r\n\r\n")
    c.close()
    exchanges, _ = read(tmp_path, pcap_bytes(c.packets))
    assert summary(exchanges) == [("GET", "http://[2001:db8::2]:8080/x", 204, None)]
    assert exchanges[0].http_version == "HTTP/1.0"


def test_unknown_link_type_is_one_counted_skip(tmp_path: Path) -> None:
    c = simple()
    exchanges, diag = read(tmp_path, pcap_bytes(c.packets, linktype=147))
    assert exchanges == []
    assert diag.skipped_by_reason == {"unsupported link type 147 (unknown)": len(c.packets)}
    assert len(diag.skipped) == 1 and diag.skipped[0].where == "packet 1"


def test_ipv4_fragments_are_skipped_and_counted(tmp_path: Path) -> None:
    c = simple()
    frame = bytearray(c.packets[3].frame)
    struct.pack_into("!H", frame, 14 + 6, 0x2000)  # more fragments
    c.packets[3].frame = bytes(frame)
    exchanges, diag = read(tmp_path, pcap_bytes(c.packets))
    assert diag.skipped_by_reason == {"IPv4 fragment (not reassembled)": 1}
    # The request was in the fragment: the response has nothing to pair with.
    assert exchanges == []


def test_nflog(tmp_path: Path) -> None:
    def nflog(ip: bytes) -> bytes:
        prefix = struct.pack("<HH", 8, 10) + b"test"  # NFULA_PREFIX
        payload = struct.pack("<HH", 4 + len(ip), 9) + ip + b"\0" * (-len(ip) % 4)
        return bytes([2, 0, 0, 0]) + prefix + payload

    exchanges, _ = read(tmp_path, pcap_bytes(_relink(simple(), nflog), 239))
    assert summary(exchanges) == [("GET", "http://api.example/a", 200, None)]


# ------------------------------------------------------------------------------ TCP


def test_mid_stream_start_without_syn(tmp_path: Path) -> None:
    c = Conversation()
    c.client_sends(b"ody of an earlier request that we missed")
    c.server_sends(b"ne, the end of an earlier response\r\n")
    c.client_sends(GET)
    c.server_sends(OK)
    exchanges, _ = read(tmp_path, pcap_bytes(c.packets))
    assert summary(exchanges) == [("GET", "http://api.example/a", 200, None)]
    assert exchanges[0].id == "p3"


def test_retransmission_duplicates_and_overlap(tmp_path: Path) -> None:
    c = Conversation()
    c.handshake()
    body = b"x" * 3000
    head = b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3000\r\n\r\n"
    data = head + body
    segs = [(0, 1000), (1000, 2200), (500, 1500), (0, 1000), (2200, len(data))]  # overlap, dup
    base = c.cseq
    for a, b in segs:
        c.packet(True, ACK | PSH, data[a:b], seq=base + a)
    c.cseq = base + len(data)
    c.server_sends(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
    c.packets.append(c.packets[-1])  # a byte-identical duplicate frame
    c.close()
    exchanges, _ = read(tmp_path, pcap_bytes(c.packets))
    assert summary(exchanges) == [("POST", "http://h/p", 201, None)]


def test_sequence_number_wrap_around(tmp_path: Path) -> None:
    c = Conversation(cseq=0xFFFFFFFF - 20, sseq=0xFFFFFFFF - 3)
    c.handshake()
    c.client_sends(GET, mss=7)
    c.server_sends(OK + b"", mss=5)
    c.client_sends(GET.replace(b"/a", b"/b"), mss=9)
    c.server_sends(OK, mss=11)
    c.close()
    exchanges, _ = read(tmp_path, pcap_bytes(c.packets))
    assert [e.url for e in exchanges] == ["http://api.example/a", "http://api.example/b"]
    assert all(e.status == 200 for e in exchanges)
    # The request line was split over segments: the id is still the packet of its first byte.
    assert exchanges[0].id == "p4"


def test_lost_response_head_is_a_capture_gap_and_parsing_resynchronises(tmp_path: Path) -> None:
    c = Conversation()
    c.handshake()
    c.client_sends(GET)
    lost = c.server_sends(OK)
    c.client_sends(GET.replace(b"/a", b"/b"))
    c.server_sends(OK)
    c.close()
    c.packets.remove(lost[0])
    exchanges, _ = read(tmp_path, pcap_bytes(c.packets))
    assert summary(exchanges) == [
        ("GET", "http://api.example/a", None, "capture gap"),
        ("GET", "http://api.example/b", 200, None),
    ]


def test_gap_acknowledged_by_the_peer_is_declared_before_the_end(tmp_path: Path) -> None:
    """The client ACKs bytes the capture lost: the gap is known without waiting for EOF."""
    c = Conversation()
    c.handshake()
    c.client_sends(GET)
    lost = c.server_sends(OK)
    for _ in range(10):
        c.packet(True, ACK)  # the client acknowledges the lost response
    c.packets.remove(lost[0])
    other = simple(Conversation(client=("10.0.0.4", 40004), ts=c.ts + 1))
    exchanges, _ = read(tmp_path, pcap_bytes(c.packets + other.packets))
    # Known while reading: before the later connection's exchange, not at the end of capture.
    assert [(e.url, e.status, e.failure) for e in exchanges] == [
        ("http://api.example/a", None, "capture gap"), ("http://api.example/a", 200, None)]
    assert exchanges[0].source.index == 4


def _get(path: str) -> bytes:
    return GET.replace(b"/a", path.encode())


def _status(code: int) -> bytes:
    return OK.replace(b"200 OK", f"{code} OK".encode())


def test_a_request_and_its_response_both_lost_do_not_shift_the_pairing(
        tmp_path: Path) -> None:
    """The capture lost one request and its response (a capture that dropped packets):
    every later response still goes with its own request, whatever order the reader
    declares the two holes in."""
    for acks in (0, 10):
        c = Conversation()
        c.handshake()
        c.client_sends(_get("/a"))
        c.server_sends(_status(200))
        lost = c.client_sends(_get("/b")) + c.server_sends(_status(201))
        for _ in range(acks):  # the peers acknowledge what the capture lost
            c.packet(True, ACK)
            c.packet(False, ACK)
        c.client_sends(_get("/c"))
        c.server_sends(_status(202))
        c.client_sends(_get("/d"))
        c.server_sends(_status(203))
        c.close()
        for p in lost:
            c.packets.remove(p)
        exchanges, diagnostics = read(tmp_path, pcap_bytes(c.packets))
        assert [(e.url.rsplit("/", 1)[1], e.status) for e in exchanges] == [
            ("a", 200), ("c", 202), ("d", 203)], acks
        lost = len(_get("/b")) + len(_status(201))
        assert any(f"{lost} byte(s) in 1 connection(s) never showed up" in n
                   for n in diagnostics.notes), diagnostics.notes


def test_a_response_sent_before_its_request_arrived_is_not_that_requests(
        tmp_path: Path) -> None:
    """A pipelined request the capture lost (/b) and its response captured: the server sent
    that response before it had /c (its ACK says so), so it is not /c's."""
    c = Conversation()
    c.handshake()
    lost = c.client_sends(_get("/b"))
    after_b = c.cseq
    c.client_sends(_get("/c"))
    for _ in range(10):  # the server acknowledges /b alone: the hole is declared lost
        c.packet(False, ACK, ack=after_b)
    c.packet(False, ACK | PSH, _status(201), ack=after_b)  # /b's response
    c.sseq += len(_status(201))
    c.server_sends(_status(202))
    c.close()
    for p in lost:
        c.packets.remove(p)
    exchanges, diagnostics = read(tmp_path, pcap_bytes(c.packets))
    assert [(e.url.rsplit("/", 1)[1], e.status) for e in exchanges] == [("c", 202)]
    assert any("1 response(s) whose request is not in the capture" in n
               for n in diagnostics.notes)


def test_gap_inside_a_body_of_known_length_is_harmless(tmp_path: Path) -> None:
    c = Conversation()
    c.handshake()
    c.client_sends(GET)
    body = b"b" * 5000
    segs = c.server_sends(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + body)
    c.client_sends(GET.replace(b"/a", b"/b"))
    c.server_sends(OK)
    c.close()
    c.packets.remove(segs[1])  # a middle segment of the body
    exchanges, _ = read(tmp_path, pcap_bytes(c.packets))
    assert summary(exchanges) == [
        ("GET", "http://api.example/a", 200, None),
        ("GET", "http://api.example/b", 200, None),
    ]


def test_snaplen_cut_body_is_a_harmless_gap(tmp_path: Path) -> None:
    c = Conversation()
    c.handshake()
    c.client_sends(GET)
    segs = c.server_sends(b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + b"z" * 2000)
    c.client_sends(GET.replace(b"/a", b"/b"))
    c.server_sends(OK)
    c.close()
    for p in segs:
        p.wire_len = len(p.frame)
        p.frame = p.frame[:200]
    exchanges, diag = read(tmp_path, pcap_bytes(c.packets, snaplen=200))
    assert [e.status for e in exchanges] == [200, 200]
    assert any("snapshot length" in n for n in diag.notes)


def test_reset_leaves_a_request_without_response(tmp_path: Path) -> None:
    c = Conversation()
    c.handshake()
    c.client_sends(GET)
    c.reset(from_client=False)
    exchanges, _ = read(tmp_path, pcap_bytes(c.packets))
    assert summary(exchanges) == [("GET", "http://api.example/a", None, "connection reset")]


def test_no_response_at_end_of_capture(tmp_path: Path) -> None:
    c = Conversation()
    c.handshake()
    c.client_sends(GET)
    exchanges, _ = read(tmp_path, pcap_bytes(c.packets))
    assert summary(exchanges) == [("GET", "http://api.example/a", None, "no response in capture")]


def test_port_reuse_starts_a_new_connection(tmp_path: Path) -> None:
    first = simple(close=False)
    again = Conversation(cseq=777777, sseq=888888, ts=first.ts + 1)
    simple(again)
    exchanges, _ = read(tmp_path, pcap_bytes(first.packets + again.packets))
    assert [e.status for e in exchanges] == [200, 200]


def test_idle_connections_are_dropped_in_capture_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corsflow.ingest import pcap as pcap_module

    c = Conversation()
    c.handshake()
    c.client_sends(GET)  # never answered
    later = simple(Conversation(client=("10.0.0.5", 40005), ts=c.ts + 10_000))
    monkeypatch.setattr(pcap_module, "_SWEEP_EVERY", 2)
    exchanges, _ = read(tmp_path, pcap_bytes(c.packets + later.packets))
    # The idle one is flushed by the sweep, before the later exchange completes.
    assert summary(exchanges) == [
        ("GET", "http://api.example/a", None, "no response in capture"),
        ("GET", "http://api.example/a", 200, None),
    ]


# ------------------------------------------------------------------------------ HTTP


def _exchange(tmp_path: Path, client: bytes, server: bytes, mss: int = 1460) -> list[Exchange]:
    c = Conversation()
    c.handshake()
    c.client_sends(client, mss)
    c.server_sends(server, mss)
    c.close()
    return read(tmp_path, pcap_bytes(c.packets))[0]


def test_pipelined_requests_in_one_segment_get_numbered_ids(tmp_path: Path) -> None:
    reqs = b"".join(GET.replace(b"/a", b"/%d" % i) for i in range(3))
    resps = b"".join(OK for _ in range(3))
    exchanges = _exchange(tmp_path, reqs, resps)
    assert [e.id for e in exchanges] == ["p4", "p4.2", "p4.3"]
    assert [e.url for e in exchanges] == [f"http://api.example/{i}" for i in range(3)]


def test_chunked_response_with_trailers(tmp_path: Path) -> None:
    resp = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n0\r\nX-Trailer: t\r\n\r\n") + OK
    exchanges = _exchange(tmp_path, GET + GET.replace(b"/a", b"/b"), resp, mss=7)
    assert [(e.url, e.status) for e in exchanges] == [
        ("http://api.example/a", 200), ("http://api.example/b", 200)]


def test_expect_100_continue(tmp_path: Path) -> None:
    c = Conversation()
    c.handshake()
    c.client_sends(b"PUT /u HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
    c.server_sends(b"HTTP/1.1 100 Continue\r\n\r\n")
    c.client_sends(b"data")
    c.server_sends(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n")
    c.close()
    exchanges, _ = read(tmp_path, pcap_bytes(c.packets))
    assert summary(exchanges) == [("PUT", "http://h/u", 204, None)]
    t = exchanges[0].timings
    assert t is not None and t.send is not None and t.send > 0


def test_head_304_and_204_have_no_body(tmp_path: Path) -> None:
    reqs = (b"HEAD /h HTTP/1.1\r\nHost: h\r\n\r\n"
            b"GET /c HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"x\"\r\n\r\n"
            b"DELETE /d HTTP/1.1\r\nHost: h\r\n\r\n"
            b"GET /e HTTP/1.1\r\nHost: h\r\n\r\n")
    resps = (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
             b"HTTP/1.1 304 Not Modified\r\nContent-Length: 1000\r\n\r\n"
             b"HTTP/1.1 204 No Content\r\n\r\n" + OK)
    exchanges = _exchange(tmp_path, reqs, resps)
    assert [(e.method, e.status) for e in exchanges] == [
        ("HEAD", 200), ("GET", 304), ("DELETE", 204), ("GET", 200)]


def test_body_until_close(tmp_path: Path) -> None:
    c = Conversation()
    c.handshake()
    c.client_sends(b"GET /old HTTP/1.0\r\nHost: h\r\n\r\n")
    c.server_sends(b"HTTP/1.0 200 OK\r\n\r\n" + b"HTTP/1.1 200 fake\r\n\r\n" * 100)
    last = c.server_sends(b"the end")
    c.close()
    exchanges, _ = read(tmp_path, pcap_bytes(c.packets))
    assert summary(exchanges) == [("GET", "http://h/old", 200, None)]
    resp = exchanges[0].response
    assert resp is not None and resp.finished == pytest.approx(last[0].ts, abs=1e-6)


def test_upgrade_stops_parsing(tmp_path: Path) -> None:
    req = b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    resp = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
    c = Conversation()
    c.handshake()
    c.client_sends(req)
    c.server_sends(resp)
    c.client_sends(b"\x81\x05GET / HTTP/1.1\r\nHost: h\r\n\r\n")  # frames that look like HTTP
    c.server_sends(b"\x81\x05" + OK)
    c.close()
    exchanges, _ = read(tmp_path, pcap_bytes(c.packets))
    assert summary(exchanges) == [("GET", "http://h/ws", 101, None)]


def test_connect_tunnel_and_tls_note(tmp_path: Path) -> None:
    c = Conversation(server=("10.0.0.2", 3128))
    c.handshake()
    c.client_sends(b"CONNECT secure.example:443 HTTP/1.1\r\nHost: secure.example:443\r\n\r\n")
    c.server_sends(b"HTTP/1.1 200 Connection Established\r\n\r\n")
    c.client_sends(b"\x16\x03\x01\x00\x05hello" + b"GET / HTTP/1.1\r\n\r\n")
    c.close()
    tls = Conversation(client=("10.0.0.7", 40007), server=("10.0.0.2", 443), ts=c.ts + 1)
    tls.handshake()
    tls.client_sends(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"r" * 100)
    tls.close()
    exchanges, diag = read(tmp_path, pcap_bytes(c.packets + tls.packets))
    assert summary(exchanges) == [("CONNECT", "http://secure.example:443", 200, None)]
    assert any("1 TLS connection" in n and "HAR" in n for n in diag.notes)


def test_http2_prior_knowledge_and_h2c_are_noted(tmp_path: Path) -> None:
    h2 = Conversation()
    h2.handshake()
    h2.client_sends(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    h2.close()
    up = Conversation(client=("10.0.0.8", 40008), ts=h2.ts + 1)
    up.handshake()
    up.client_sends(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                    b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
    up.server_sends(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
                    b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
    up.close()
    exchanges, diag = read(tmp_path, pcap_bytes(h2.packets + up.packets))
    assert summary(exchanges) == [("GET", "http://h/", 101, None)]
    assert any("2 HTTP/2 cleartext" in n for n in diag.notes)


def test_odd_methods_absolute_form_and_asterisk(tmp_path: Path) -> None:
    reqs = (b"patch /l HTTP/1.1\nHost: h\n\n"
            b"CCM_POST /c HTTP/1.1\r\nHost: h\r\n\r\n"
            b"GET http://proxy.example:8080/abs?q=1 HTTP/1.1\r\nHost: h\r\n\r\n"
            b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n")
    exchanges = _exchange(tmp_path, reqs, OK * 4)
    assert [(e.method, e.url) for e in exchanges] == [
        ("patch", "http://h/l"), ("CCM_POST", "http://h/c"),
        ("GET", "http://proxy.example:8080/abs?q=1"), ("OPTIONS", "http://h/*")]


def test_port_443_without_tls_stays_http(tmp_path: Path) -> None:
    c = simple(Conversation(server=("10.0.0.2", 443)))
    exchanges, _ = read(tmp_path, pcap_bytes(c.packets))
    assert exchanges[0].url == "http://api.example/a"


def test_headers_keep_wire_case_order_and_latin1(tmp_path: Path) -> None:
    req = (b"GET / HTTP/1.1\r\nhost: h\r\nX-B: 1\r\nx-a: caf\xe9\r\nX-B: 2\r\n"
           b"X-Fold: a\r\n  b\r\n\r\n")
    exchanges = _exchange(tmp_path, req, OK)
    assert exchanges[0].request_headers.items == (
        ("host", "h"), ("X-B", "1"), ("x-a", "café"), ("X-B", "2"), ("X-Fold", "a b"))


# ------------------------------------------------------------------------------ properties

CLIENT = (b"OPTIONS /api HTTP/1.1\r\nHost: api.example\r\nOrigin: http://app.example\r\n"
          b"Access-Control-Request-Method: PATCH\r\n\r\n"
          b"patch /api HTTP/1.1\r\nHost: api.example\r\nContent-Length: 11\r\n\r\n{\"a\": true}"
          b"GET /c HTTP/1.1\r\nHost: api.example\r\n\r\n")
SERVER = (b"HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Methods: PATCH\r\n"
          b"Access-Control-Max-Age: 600\r\n\r\n"
          b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
          b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
WANT = [("OPTIONS", "http://api.example/api", 204, None),
        ("patch", "http://api.example/api", 200, None),
        ("GET", "http://api.example/c", 200, None)]


def _segments(c: Conversation, from_client: bool, data: bytes, cuts: list[int]) -> list[Packet]:
    bounds = sorted({0, len(data), *(x % len(data) for x in cuts)})
    base = c.cseq if from_client else c.sseq
    out = [c.packet(from_client, PSH, data[a:b], seq=base + a, ack=0) for a, b in itertools.pairwise(bounds)]
    if from_client:
        c.cseq += len(data)
    else:
        c.sseq += len(data)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    client_cuts=st.lists(st.integers(min_value=1, max_value=10_000), max_size=25),
    server_cuts=st.lists(st.integers(min_value=1, max_value=10_000), max_size=25),
    order=st.randoms(use_true_random=False),
    dups=st.lists(st.integers(min_value=0, max_value=100), max_size=5),
)
def test_any_segmentation_and_permutation_gives_the_same_exchanges(
    tmp_path: Path, client_cuts: list[int], server_cuts: list[int], order: object, dups: list[int],
) -> None:
    c = Conversation()
    c.handshake()
    setup = list(c.packets)
    client = _segments(c, True, CLIENT, client_cuts)
    server = _segments(c, False, SERVER, server_cuts)
    # Reorder and duplicate within each direction; the requests all precede the responses.
    for side in (client, server):
        side.extend(side[d % len(side)] for d in dups)
        order.shuffle(side)  # type: ignore[attr-defined]
    c.packets = setup + client + server
    c.close()
    exchanges, diag = read(tmp_path, pcap_bytes(c.packets))
    assert sorted(summary(exchanges), key=str) == sorted(WANT, key=str)
    assert diag.skipped_count == 0


def test_tls_connection_is_counted_once_however_it_closes(tmp_path: Path) -> None:
    c = Conversation(server=("10.0.0.2", 443))
    c.handshake()
    c.client_sends(b"\x16\x03\x01\x00\x10" + b"h" * 16)
    c.server_sends(b"\x16\x03\x03\x00\x10" + b"s" * 16)
    c.packet(True, FIN | ACK)  # the client closes first ...
    c.cseq += 1
    c.server_sends(b"\x15\x03\x03\x00\x02\x01\x00")  # ... the server's close_notify follows
    c.packet(False, FIN | ACK)
    c.packet(True, ACK, seq=c.cseq)
    exchanges, diag = read(tmp_path, pcap_bytes(c.packets))
    assert exchanges == []
    assert [n for n in diag.notes if "TLS" in n] == [
        (f"{tmp_path / 'c.pcap'}: 1 TLS connection(s) cannot be read: HTTPS in a packet capture "
        "is encrypted; export a HAR from the browser or capture with mitmproxy instead")]


def test_ipv6_extension_headers(tmp_path: Path) -> None:
    c = simple(Conversation(client=("2001:db8::1", 50000), server=("2001:db8::2", 80)))
    packets = []
    for p in _relink6(c):
        ip = p.frame
        # Insert a hop-by-hop options header (8 bytes of padding options) after the fixed header.
        hop = bytes([ip[6], 0, 1, 4, 0, 0, 0, 0])
        plen = struct.unpack("!H", ip[4:6])[0] + len(hop)
        packets.append(Packet(p.ts, ip[:4] + struct.pack("!HB", plen, 0) + ip[7:40] + hop + ip[40:]))
    exchanges, diag = read(tmp_path, pcap_bytes(packets, 229))
    assert summary(exchanges) == [("GET", "http://api.example/a", 200, None)]
    assert diag.skipped_count == 0


def _fuzz_base() -> tuple[bytes, bytes]:
    c = Conversation()
    c.handshake()
    c.client_sends(CLIENT, mss=40)
    c.server_sends(SERVER, mss=50)
    c.close()
    return pcap_bytes(c.packets), pcapng_bytes(c.packets, [Interface(1, tsresol=9)])


FUZZ_PCAP, FUZZ_PCAPNG = _fuzz_base()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ng=st.booleans(),
    flips=st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0, max_value=255)),
                   max_size=12),
    cut=st.integers(min_value=0),
)
def test_damaged_captures_never_raise(tmp_path: Path, ng: bool, flips: list[tuple[int, int]],
                                      cut: int) -> None:
    data = bytearray(FUZZ_PCAPNG if ng else FUZZ_PCAP)
    for where, value in flips:
        where = 4 + where % (len(data) - 4)  # keep the magic: damage inside a capture
        data[where] = value
    data = data[: len(data) - cut % (len(data) // 2)]
    path = tmp_path / "fuzz.cap"
    path.write_bytes(bytes(data))
    diagnostics = Diagnostics()
    try:
        exchanges = list(read_pcap(str(path), diagnostics))
    except IngestError as error:  # a header so damaged that the file is no capture any more
        assert "\n" not in str(error)
        return
    for e in exchanges:
        assert e.id.startswith("p") and e.url.startswith("http://")


def test_responses_without_their_request_are_noted(tmp_path: Path) -> None:
    c = Conversation()
    c.server_sends(OK)  # the capture starts after the request went out
    c.client_sends(GET)
    c.server_sends(OK)
    exchanges, diag = read(tmp_path, pcap_bytes(c.packets))
    assert summary(exchanges) == [("GET", "http://api.example/a", 200, None)]
    assert any("1 response(s) whose request is not in the capture" in n for n in diag.notes)


def test_one_direction_capture_does_not_hold_every_request(tmp_path: Path) -> None:
    from corsflow.ingest.conversation import MAX_UNANSWERED

    c = Conversation()
    c.handshake()
    for i in range(MAX_UNANSWERED + 5):
        c.client_sends(GET.replace(b"/a", b"/%d" % i))
    other = simple(Conversation(client=("10.0.0.4", 40004), ts=c.ts + 1))
    exchanges, _ = read(tmp_path, pcap_bytes(c.packets + other.packets))
    # The 5 oldest are given up while reading, before the other connection's exchange; the
    # rest wait for the end of the capture.
    assert [(e.url, e.failure) for e in exchanges[:6]] == [
        *((f"http://api.example/{i}", "no response in capture") for i in range(5)),
        ("http://api.example/a", None)]
    assert len(exchanges) == MAX_UNANSWERED + 6


@pytest.mark.parametrize("copy_from", [0, 4])
def test_a_connection_captured_again_on_a_second_interface_is_read_once(
    tmp_path: Path, copy_from: int
) -> None:
    """pcapng writers put each interface's packets in batches: a connection seen on lo and on
    any comes twice, the second copy after the first has closed (from its SYN, or from the
    middle when the batch boundary fell inside it)."""
    c = simple()
    first = c.packets
    second = [Packet(p.ts, _sll(p.frame[14:14 + struct.unpack("!H", p.frame[16:18])[0]]),
                     interface=1) for p in first[copy_from:]]
    data = pcapng_bytes(first + second, [Interface(1), Interface(113)])
    exchanges, diag = read(tmp_path, data, "c.pcapng")
    assert summary(exchanges) == [("GET", "http://api.example/a", 200, None)]
    assert any("1 connection(s) reappeared after they closed" in n for n in diag.notes)


def test_a_new_connection_on_the_same_ports_is_not_a_copy(tmp_path: Path) -> None:
    first = simple()
    again = simple(Conversation(cseq=first.cseq + 100_000, sseq=first.sseq + 100_000,
                                ts=first.ts + 1))
    exchanges, diag = read(tmp_path, pcap_bytes(first.packets + again.packets))
    assert [e.status for e in exchanges] == [200, 200]
    assert not any("reappeared" in n for n in diag.notes)


def test_a_connection_resumed_after_the_idle_timeout_is_still_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corsflow.ingest import pcap as pcap_module

    monkeypatch.setattr(pcap_module, "_SWEEP_EVERY", 1)
    c = simple(close=False)
    c.ts += pcap_module.IDLE_TIMEOUT * 2  # a long keep-alive: the state is dropped meanwhile
    other = simple(Conversation(client=("10.0.0.6", 40006), ts=c.ts))
    c.packets += other.packets
    c.ts = other.ts
    c.client_sends(GET.replace(b"/a", b"/later"))
    c.server_sends(OK)
    c.close()
    exchanges, diag = read(tmp_path, pcap_bytes(c.packets))
    assert sorted(e.url for e in exchanges) == [
        "http://api.example/a", "http://api.example/a", "http://api.example/later"]
    assert all(e.status == 200 for e in exchanges)
    assert not any("reappeared" in n for n in diag.notes)


def test_a_long_poll_outlives_the_idle_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corsflow.ingest import pcap as pcap_module

    monkeypatch.setattr(pcap_module, "_SWEEP_EVERY", 1)
    c = Conversation()
    c.handshake()
    c.client_sends(GET)
    c.ts += pcap_module.IDLE_TIMEOUT * 2  # the server answers ten minutes later ...
    other = simple(Conversation(client=("10.0.0.6", 40006), ts=c.ts))  # ... sweeps run meanwhile
    c.packets += other.packets
    c.ts = other.ts
    c.server_sends(OK)
    c.close()
    exchanges, _ = read(tmp_path, pcap_bytes(c.packets))
    assert sorted(summary(exchanges)) == [("GET", "http://api.example/a", 200, None)] * 2


def _keep_alive_session(n: int) -> tuple[Conversation, list[int]]:
    """``n`` requests on one connection, each answered before the next is sent (as browsers
    do), with the peers' ACKs; /k is answered with status 210 + k. Returns the conversation
    and the indices of its data packets."""
    c = Conversation()
    c.handshake()
    data: list[int] = []
    for k in range(n):
        data.append(len(c.packets))
        c.client_sends(_get(f"/{k}"))
        c.packet(False, ACK)
        data.append(len(c.packets))
        c.server_sends(_status(210 + k))  # 2xx codes with a body (204 has none)
        c.packet(True, ACK)
    c.close()
    return c, data


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_dropped_packets_never_pair_a_response_with_another_request(
        tmp_path: Path, data: st.DataObject) -> None:
    """Whatever data packets a capture drops, each exchange read has its own response or
    none: never another request's (which would give it another request's verdict)."""
    c, indices = _keep_alive_session(8)
    # Data packets and the peers' ACKs alike (an ACK tells the reader that bytes were lost).
    dropped = data.draw(st.sets(st.integers(3, len(c.packets) - 1), max_size=12))
    packets = [p for i, p in enumerate(c.packets) if i not in dropped]
    exchanges, _ = read(tmp_path, pcap_bytes(packets))
    for e in exchanges:
        k = int(e.url.rsplit("/", 1)[1])
        assert e.status in (None, 210 + k), (sorted(dropped), e.url, e.status)
    # What no drop touched is read in full.
    intact = {k for k in range(8) if indices[2 * k] not in dropped
              and indices[2 * k + 1] not in dropped}
    assert intact <= {int(e.url.rsplit("/", 1)[1]) for e in exchanges if e.status}
