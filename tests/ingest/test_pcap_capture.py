"""read_pcap on real loopback traffic recorded with tcpdump, and on the recorded sample."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import dpkt  # type: ignore[import-untyped]
import pytest

from corsflow.errors import Diagnostics
from corsflow.ingest.packets import read_records
from corsflow.ingest.pcap import read_pcap
from corsflow.model import Exchange

from .loopback import ORIGIN, record

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMPLE = REPO_ROOT / "samples" / "loopback-cors.pcap"

# What tests/ingest/loopback.py's clients send, in order, and the server's answers.
TRAFFIC = [
    ("OPTIONS", "/api/items/1", 204), ("PUT", "/api/items/1", 200),
    ("OPTIONS", "/api/items/2", 204), ("PATCH", "/api/items/2", 200),
    ("GET", "/api/simple", 200), ("HEAD", "/api/head", 200), ("GET", "/cached", 304),
    ("GET", "/stream", 200), ("POST", "/api/upload", 201), ("GET", "/page?q=1", 200),
    ("GET", "/p/1", 200), ("patch", "/p/2", 200), ("GET", "/p/3", 200),
]


def _path(e: Exchange) -> str:
    parts = urlsplit(e.url)
    return parts.path + ("?" + parts.query if parts.query else "")


def _first_payloads(path: Path) -> dict[int, bytes]:
    """TCP payload of every packet, by number, read with dpkt (an independent reader)."""
    out = {}
    with open(path, "rb") as f:
        for n, (_ts, buf) in enumerate(dpkt.pcap.Reader(f), 1):
            ip = dpkt.ethernet.Ethernet(buf).data
            if isinstance(ip, (dpkt.ip.IP, dpkt.ip6.IP6)) and isinstance(ip.data, dpkt.tcp.TCP):
                out[n] = bytes(ip.data.data)
    return out


def check(path: Path, log: list[tuple[str, str, int]]) -> list[Exchange]:
    diagnostics = Diagnostics()
    exchanges = list(read_pcap(str(path), diagnostics))
    assert diagnostics.skipped_count == 0
    assert sorted((e.method, _path(e), e.status) for e in exchanges) == sorted(log)
    assert all(e.failure is None for e in exchanges)
    payloads = _first_payloads(path)
    for e in exchanges:
        # The id names the packet that carries the request's first byte.
        if "." not in e.id:
            assert payloads[e.source.index].startswith(f"{e.method} {_path(e)} ".encode())
    preflights = [e for e in exchanges if "Access-Control-Request-Method" in e.request_headers]
    assert len(preflights) == 2
    for p in preflights:
        assert p.response is not None
        assert p.response.headers.get("Access-Control-Allow-Origin") == ORIGIN
        assert p.response.headers.get("Access-Control-Max-Age") == "600"
    pipelined = [e.id for e in exchanges if e.url.startswith("http://localhost/p/")]
    assert pipelined[1:] == [pipelined[0] + ".2", pipelined[0] + ".3"]
    for e in exchanges:
        assert e.timings is not None and e.timings.total is not None and e.timings.total >= 0
        assert e.response is not None and e.response.finished is not None
        assert e.response.finished >= e.started
    return exchanges


@pytest.mark.capture
def test_recorded_loopback_traffic(tmp_path: Path) -> None:
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is not installed")
    out = tmp_path / "lo.pcap"
    log = record(out)
    assert sorted(log) == sorted(TRAFFIC)
    check(out, log)


@pytest.mark.capture
def test_same_traffic_on_two_interfaces_of_a_pcapng(tmp_path: Path) -> None:
    """dumpcap on lo and any: two interfaces, two link types, every packet twice."""
    if shutil.which("dumpcap") is None:
        pytest.skip("dumpcap (Wireshark's capture tool) is not installed")
    out = tmp_path / "two.pcapng"
    log = record(out, tool="dumpcap")
    diagnostics = Diagnostics()
    exchanges = list(read_pcap(str(out), diagnostics))
    assert sorted((e.method, _path(e), e.status) for e in exchanges) == sorted(log)
    assert all(e.source.format == "pcapng" and e.failure is None for e in exchanges)
    assert diagnostics.skipped_count == 0
    # The file really has two interfaces of different link types.
    linktypes = {lt for _n, _ts, lt, _data, _wire in read_records(str(out))}
    assert linktypes == {1, 113}


def test_recorded_sample() -> None:
    assert SAMPLE.stat().st_size < 100_000
    check(SAMPLE, TRAFFIC)


def test_recorded_sample_through_the_whole_analysis() -> None:
    from corsflow.analysis import analyze_paths

    report = analyze_paths([str(SAMPLE)])
    verdicts = {v.exchange.id: v for v in report.exchanges}
    assert len(verdicts) == len(TRAFFIC)
    preflights = [v for v in verdicts.values() if v.role == "preflight"]
    assert [(v.exchange.method, v.max_age.parsed if v.max_age else None) for v in preflights] == [
        ("OPTIONS", 600), ("OPTIONS", 600)]
    # Each preflighted request is paired with the OPTIONS sent for it, in the same capture.
    paired = {v.exchange.method: v.preflight_id for v in verdicts.values() if v.preflight_id}
    assert set(paired) == {"PUT", "PATCH"}
    for method, preflight_id in paired.items():
        pf = verdicts[preflight_id].exchange
        assert pf.request_headers.get("Access-Control-Request-Method") == method
