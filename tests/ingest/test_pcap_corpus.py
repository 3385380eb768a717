"""read_pcap on every real capture of the shared corpus, checked against PROVENANCE.md and
tshark, and on the benchmark generator's captures against their truth files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from corsflow.errors import Diagnostics
from corsflow.ingest.pcap import read_pcap
from corsflow.model import Exchange
from tests.conftest import missing

REPO_ROOT = Path(__file__).resolve().parents[2]
CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "pcap"
GEN_PCAP = REPO_ROOT.parent / "shared" / "perf" / "gen_pcap.py"

# file -> (exchanges, exchanges with a response). Counts from PROVENANCE.md, with what it
# says it undercounts or double counts (duplicated segments, requests split oddly) resolved.
EXPECTED = {
    # 385 request lines at segment starts, 4 of them retransmissions of the same bytes; only
    # the client half was captured.
    "ppp-4k-http-requests-cors-preflights.pcap": (381, 0),
    "ppp-linux-sll-cooked.pcap": (2, 2),
    "ppp-nanosecond-big-endian.pcap": (1, 1),
    "ppp-one-tcp-stream-origin-acao-ooo.pcap": (2, 2),
    "ppp-raw-dlt101-ipv6-http.pcap": (3, 3),
    "ppp-raw-dlt12-four-ipv6-http-streams.pcap": (9, 9),
    "suricata-cross-origin-get-origin-acao.pcap": (1, 1),
    "suricata-linux-sll2-get.pcap": (1, 0),
    "suricata-options-asterisk.pcap": (1, 1),
    "suricata-two-pipelined-requests-one-segment.pcap": (2, 2),
    "zeek-1000-requests-ipv6-one-dropped-response.pcap": (1000, 999),
    "zeek-206-partial-content-retrans-ooo.pcap": (3, 3),
    "zeek-dvwa.pcapng": (3, 3),
    "zeek-keepalive-five-requests.pcap": (5, 5),
    # Transfer-Encoding wins over Content-Length: the "smuggled" GET is a second request.
    "zeek-linktype-ipv4-228-te-cl-desync.pcap": (2, 0),
    # Every frame twice: 6 request lines, 3 requests.
    "zeek-m57-duplicated-packets.pcap": (3, 3),
    # 49 connections; 17 carry a request line with a method token, a target and an HTTP/1
    # version (the rest are fuzzed lines such as "GET/HTTP/1.1" that are not requests).
    "zeek-methods-options-asterisk-bare-lf.pcap": (17, 17),
    "zeek-nflog-http.pcap": (1, 1),
    "zeek-null-loopback-ipv6-connect.pcap": (1, 1),
    "zeek-websocket-upgrade-origin-acao.pcap": (1, 1),
}


def corpus_file(name: str) -> Path:
    path = CORPUS / name
    if not path.exists():
        pytest.skip(f"the shared corpus is not beside the repository ({CORPUS})")
    return path


def read(path: Path) -> tuple[list[Exchange], Diagnostics]:
    diagnostics = Diagnostics()
    return list(read_pcap(str(path), diagnostics)), diagnostics


def test_every_corpus_file_is_listed() -> None:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is not beside the repository ({CORPUS})")
    assert sorted(p.name for p in CORPUS.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_counts(name: str) -> None:
    exchanges, diagnostics = read(corpus_file(name))
    total, answered = EXPECTED[name]
    assert len(exchanges) == total
    assert sum(e.response is not None for e in exchanges) == answered
    assert len({e.id for e in exchanges}) == total
    for e in exchanges:
        assert e.url.startswith("http://") and e.source.index >= 1
        assert (e.response is None) == (e.failure is not None) or e.failure == "capture gap"
    assert diagnostics.skipped_count == 0


def _tshark(path: Path) -> tuple[dict[int, str], dict[int, int]]:
    """Request frames -> method, and request frame -> status of its response, per tshark.

    tshark numbers a message by the frame that completes it; ours is the frame carrying its
    first byte, which is the first of tshark's ``tcp.segment`` list when it has one.
    """
    if shutil.which("tshark") is None:
        missing("tshark is not installed")
    out = subprocess.run(
        ["tshark", "-r", str(path), "-Y", "http.request or http.response", "-T", "fields",
         "-e", "frame.number", "-e", "http.request.method", "-e", "http.request.version",
         "-e", "http.response.code", "-e", "http.request_in", "-e", "tcp.segment"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout
    requests: dict[int, str] = {}
    statuses: dict[int, int] = {}
    first_frame: dict[int, int] = {}
    for line in out.splitlines():
        frame, method, version, code, request_in, segments = (line.split("\t") + [""] * 6)[:6]
        if method and version.startswith("HTTP/1"):
            first = min(int(s) for s in segments.split(",")) if segments else int(frame)
            first_frame[int(frame)] = first
            requests[first] = method.split(",")[0]
        if code and request_in:
            for c, r in zip(code.split(","), request_in.split(",")):
                statuses[int(r)] = int(c)
    return requests, {first_frame.get(r, r): c for r, c in statuses.items()}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_agrees_with_tshark(name: str) -> None:
    path = corpus_file(name)
    requests, statuses = _tshark(path)
    exchanges, _ = read(path)
    first_of_packet = {e.source.index: e for e in exchanges if "." not in e.id}
    # Every request tshark finds, we find, in the same packet, with the same method...
    for frame, method in requests.items():
        assert frame in first_of_packet, frame
        assert first_of_packet[frame].method == method
    # ... answered with the status tshark pairs it with.
    for frame, status in statuses.items():
        if frame in first_of_packet:
            assert first_of_packet[frame].status == status, frame


def test_corpus_details() -> None:
    exchanges, _ = read(corpus_file("ppp-4k-http-requests-cors-preflights.pcap"))
    methods = Counter(e.method for e in exchanges)
    assert methods == {"GET": 213, "POST": 156, "OPTIONS": 7, "HEAD": 5}
    preflights = [e for e in exchanges if "Access-Control-Request-Method" in e.request_headers]
    assert len(preflights) == 7 and all(p.method == "OPTIONS" for p in preflights)
    assert sum("Origin" in e.request_headers for e in exchanges) == 50

    exchanges, _ = read(corpus_file("zeek-1000-requests-ipv6-one-dropped-response.pcap"))
    lost = [e for e in exchanges if e.response is None]
    assert [(e.failure, e.url.startswith("http://")) for e in lost] == [("capture gap", True)]

    exchanges, _ = read(corpus_file("zeek-websocket-upgrade-origin-acao.pcap"))
    (ws,) = exchanges
    assert ws.status == 101 and ws.request_headers.get("Origin") == "http://kaazing.org"
    assert ws.response is not None
    assert len(ws.response.headers.get_all("Access-Control-Allow-Headers")) == 5

    exchanges, _ = read(corpus_file("suricata-two-pipelined-requests-one-segment.pcap"))
    assert [e.url.rsplit("/", 2)[-2] for e in exchanges] == ["bar", "foo"]
    assert exchanges[1].id == exchanges[0].id + ".2"

    exchanges, _ = read(corpus_file("zeek-keepalive-five-requests.pcap"))
    assert len({e.source.index for e in exchanges}) == 5 and all(e.status for e in exchanges)

    exchanges, _ = read(corpus_file("ppp-one-tcp-stream-origin-acao-ooo.pcap"))
    assert all(e.response and e.response.headers.get("Access-Control-Allow-Origin")
               for e in exchanges)

    exchanges, _ = read(corpus_file("zeek-null-loopback-ipv6-connect.pcap"))
    assert [(e.method, e.url, e.status) for e in exchanges] == [
        ("CONNECT", "http://secure.newegg.com:443", 200)]

    exchanges, _ = read(corpus_file("suricata-options-asterisk.pcap"))
    assert [(e.method, e.url.endswith("/*")) for e in exchanges] == [("OPTIONS", True)]

    exchanges, _ = read(corpus_file("ppp-nanosecond-big-endian.pcap"))
    # Nanosecond timestamps keep sub-microsecond digits.
    assert exchanges[0].started != round(exchanges[0].started, 6)


@pytest.mark.parametrize("pcapng", [False, True])
def test_generated_capture_matches_its_truth(tmp_path: Path, pcapng: bool) -> None:
    if not GEN_PCAP.exists():
        pytest.skip(f"the benchmark generator is not beside the repository ({GEN_PCAP})")
    out = tmp_path / "gen.pcap"
    ng = tmp_path / "gen.pcapng"
    subprocess.run([sys.executable, str(GEN_PCAP), "300", str(out), "--pcapng", str(ng)],
                   check=True, capture_output=True, timeout=120, cwd=GEN_PCAP.parent)
    truth = json.loads((tmp_path / "gen.pcap.truth.json").read_text())
    exchanges, diagnostics = read(ng if pcapng else out)
    assert len(exchanges) == truth["http_exchanges"]
    assert Counter(e.method for e in exchanges) == truth["by_method"]
    preflights = [e for e in exchanges if e.method == "OPTIONS"
                  and "Access-Control-Request-Method" in e.request_headers]
    assert len(preflights) == truth["by_kind"]["preflight"]
    assert all(e.response is not None and e.failure is None for e in exchanges)
    assert diagnostics.skipped_count == 0


def test_chromium_session_sample_agrees_with_tshark() -> None:
    """The repository's real Chromium session (samples/README.md): 43 requests on the wire."""
    path = REPO_ROOT / "samples" / "chromium-session.pcap"
    if not path.exists():
        pytest.skip("samples/chromium-session.pcap is not in this checkout")
    requests, statuses = _tshark(path)
    exchanges, diagnostics = read(path)
    assert diagnostics.skipped_count == 0 and diagnostics.notes == []
    assert {e.source.index: e.method for e in exchanges} == requests
    assert {e.source.index: e.status for e in exchanges} == statuses
    preflights = [e for e in exchanges if "Access-Control-Request-Method" in e.request_headers]
    assert len(preflights) == 17


@pytest.mark.parametrize("path", [
    *(pytest.param(CORPUS / name, id=name) for name in sorted(EXPECTED)),
    *(pytest.param(p, id=p.name) for p in sorted((REPO_ROOT / "samples").glob("*.pcap*")))])
def test_lean_reading_leaves_out_what_response_fields_read_does(path: Path) -> None:
    """A reading process's pcap reader builds each response with only the fields the
    analysis reads: the same exchanges and the same diagnostics as leaving them out after."""
    from corsflow.ingest.lean import response_fields_read

    if not path.exists():
        pytest.skip(f"the shared corpus is not beside the repository ({CORPUS})")
    full, lean = Diagnostics(), Diagnostics()
    expected = [response_fields_read(x) for x in read_pcap(str(path), full)]
    got = list(read_pcap(str(path), lean, lean=True))
    assert got == expected
    # Responses come through exactly where the counts above say the capture shows some.
    assert any(x.response is not None for x in got) == (EXPECTED.get(path.name, (0, 1))[1] > 0)
    assert (lean.skipped, lean.skipped_by_reason, lean.notes) == (
        full.skipped, full.skipped_by_reason, full.notes)
