"""Every damaged input that broke a reader, kept as a regression case, and the bounds each
reader keeps on time and memory per input byte.

``cases/`` holds small inputs (found by mutation fuzzing: ours in ``test_fuzz.py``, and the
reproducers the fuzzing of issue 9 left); the large ones (a million one-byte segments...)
are built here instead of committed. Each must end in a report or in one line and exit 2,
within a time bound only a hang exceeds; memory is measured with tracemalloc and must stay
within a fixed allowance plus a small multiple of the input's size.
"""

from __future__ import annotations

import gc
import json
import struct
import tracemalloc
from pathlib import Path

import pytest

from corsflow.analysis import analyze_paths
from corsflow.ingest import pcap as pcap_reader
from corsflow.report.json import render_json
from tests.fuzz import mutate
from tests.fuzz.runner import run_cli, verdict
from tests.ingest.pcap_builder import ACK, PSH, SYN, Conversation, Packet, pcap_bytes

CASES = Path(__file__).parent / "cases"
FIXED = 24 * 1024 * 1024
"""Memory any run may use whatever the input (the engine's and renderers' own state)."""
PER_BYTE = 8
"""Peak traced memory allowed per input byte beyond :data:`FIXED`."""


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir()))
def test_case_ends_in_a_report_or_one_line(case: str, tmp_path: Path) -> None:
    path = CASES / case
    runs = [("analyze", "json"), ("policy", "json"), ("whatif", "json")]
    if "html-crash" in case:
        runs.append(("analyze", "html"))
    for command, fmt in runs:
        out = tmp_path / f"{command}.{fmt}"
        run = run_cli(path, fmt, out, command)
        assert verdict(run) is None, (case, command, fmt, verdict(run), run.stderr[-2000:])
        if run.code == 0 and fmt == "json":
            json.loads(run.output)


def _peak(path: Path, warm: Path | None = None) -> tuple[int, dict[str, object]]:
    """Peak traced memory of the whole analysis and the JSON report of ``path`` (after one
    run of ``warm``, by default ``path`` itself: imports and caches are not the input's)."""
    analyze_paths([str(warm or path)], engine="chromium")
    tracemalloc.start()
    try:
        report = json.loads(render_json(analyze_paths([str(path)], engine="chromium")))
        return tracemalloc.get_traced_memory()[1], report
    finally:
        tracemalloc.stop()


def _bounded(path: Path, warm: Path | None = None) -> dict[str, object]:
    size = path.stat().st_size
    peak, report = _peak(path, warm)
    assert peak <= FIXED + PER_BYTE * size, (
        f"{path.name}: {peak / 1e6:.1f} MB traced for {size / 1e6:.2f} MB of input")
    return report


@pytest.mark.parametrize("fmt", mutate.FORMATS)
def test_each_reader_memory_follows_its_input(fmt: str, tmp_path: Path) -> None:
    seed = {"har": mutate.har_seed, "mitm": mutate.mitm_seed, "pcap": mutate.pcap_seed,
            "pcapng": mutate.pcapng_seed, "netlog": mutate.netlog_seed}[fmt]()
    path = tmp_path / f"seed{mutate.SUFFIX[fmt]}"
    path.write_bytes(seed)
    report = _bounded(path)
    assert report["exchanges"]


def _frame(sport: int, dport: int, seq: int, flags: int, payload: bytes = b"",
           client: bytes = b"\x0a\x00\x00\x01") -> bytes:
    """Ethernet, IPv4, TCP by struct: dpkt per packet is too slow for tens of thousands."""
    server = b"\x0a\x00\x00\x02"
    src, dst = (client, server) if dport == 80 else (server, client)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + len(payload), 0, 0, 64, 6, 0, src, dst)
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 0x50, flags, 65535, 0, 0)
    return b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00" + ip + tcp + payload


def _ooo_one_byte_segments(n: int) -> bytes:
    """A response whose body comes as ``n`` one-byte segments, sent last byte first."""
    t = 1_795_312_085.0
    request = b"GET / HTTP/1.1\r\nHost: a\r\nOrigin: http://b\r\n\r\n"
    head = f"HTTP/1.1 200 OK\r\nContent-Length: {n}\r\n\r\n".encode()
    packets = [Packet(t, _frame(40000, 80, 999, SYN)), Packet(t, _frame(80, 40000, 4999, SYN | ACK)),
               Packet(t, _frame(40000, 80, 1000, ACK | PSH, request)),
               Packet(t, _frame(80, 40000, 5000, ACK | PSH, head))]
    base = 5000 + len(head)
    packets += [Packet(t + 1e-3, _frame(80, 40000, base + i, ACK, b"x")) for i in reversed(range(n))]
    return pcap_bytes(packets)


def _seed(folder: Path) -> Path:
    path = folder / "seed.pcap"
    path.write_bytes(mutate.pcap_seed())
    return path


def test_a_flood_of_one_byte_segments_out_of_order(tmp_path: Path) -> None:
    path = tmp_path / "ooo.pcap"
    path.write_bytes(_ooo_one_byte_segments(10_000))
    report = _bounded(path, _seed(tmp_path))
    exchanges = report["exchanges"]
    assert isinstance(exchanges, list) and [e["status"] for e in exchanges] == [200]


def test_a_header_line_without_colon_of_60_kb(tmp_path: Path) -> None:
    conv = Conversation()
    conv.handshake()
    conv.client_sends(b"GET / HTTP/1.1\r\nHost: a\r\n" + b"x" * 60_000 + b"\r\n\r\n")
    conv.server_sends(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    conv.close()
    path = tmp_path / "nocolon.pcap"
    path.write_bytes(pcap_bytes(conv.packets))
    report = _bounded(path, _seed(tmp_path))
    exchanges = report["exchanges"]
    assert isinstance(exchanges, list) and [e["status"] for e in exchanges] == [200]


def _syn_flood(n: int) -> bytes:
    """``n`` connections that never get past their SYN, from as many client addresses."""
    return pcap_bytes([
        Packet(1_795_312_085.0 + i * 1e-4,
               _frame(1024 + (i & 0xFFF), 80, i, SYN, client=bytes([10, 1, i >> 8 & 0xFF, i & 0xFF])))
        for i in range(n)])


def test_half_open_connections_are_bounded_and_counted(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory follows what is live: four times the connections, about the same peak, with
    the cycle collector off (a closed connection is freed when the reader forgets it, not
    whenever the collector happens to run: its thresholds belong to whoever embeds us)."""
    monkeypatch.setattr(pcap_reader, "MAX_CONNECTIONS", 100)
    monkeypatch.setattr(pcap_reader, "_RECENT", 200)  # closed connections' ranges: bounded too
    peaks = []
    for n in (1_000, 4_000):
        path = tmp_path / f"syn{n}.pcap"
        path.write_bytes(_syn_flood(n))
        gc.collect()
        gc.disable()
        try:
            peak, _ = _peak(path, _seed(tmp_path))
        finally:
            gc.enable()
        peaks.append(peak)
    assert peaks[1] < peaks[0] * 1.5, peaks
    report = analyze_paths([str(path)], engine="chromium")
    notes = " ".join(report.notes)
    assert "closed early to bound memory" in notes, notes


def _records(data: bytes, ng: bool) -> list[int]:
    """Offsets of the packet records (pcap) or blocks (pcapng) of a little-endian capture."""
    offsets = []
    pos = 0 if ng else 24
    while pos + 12 <= len(data):
        offsets.append(pos)
        if ng:
            pos += struct.unpack_from("<I", data, pos + 4)[0]
        else:
            pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    return offsets


@pytest.mark.parametrize("ng", [False, True], ids=["pcap", "pcapng"])
def test_one_damaged_record_header_does_not_lose_the_rest(ng: bool, tmp_path: Path) -> None:
    how = mutate.Capture(ng=ng)
    data = bytearray(mutate.build_capture(mutate.http_session(), how))
    offsets = _records(bytes(data), ng)
    target = offsets[6 if ng else 3]  # a packet of the first request
    struct.pack_into("<I", data, target + (4 if ng else 8), 0x7FFFFFF1)  # an absurd length
    path = tmp_path / ("d.pcapng" if ng else "d.pcap")
    path.write_bytes(bytes(data))
    report = analyze_paths([str(path)], engine="chromium")
    urls = [v.exchange.url for v in report.exchanges]
    assert "http://api.example/old" in urls and "http://api.example/api/items" in urls, urls
    assert any("skipped to the next good" in s.reason for s in report.skipped), report.skipped
