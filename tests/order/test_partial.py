"""Partial captures: where the capture does not show what decides a verdict, the verdict is
unknown with the reason and no error is raised."""

from __future__ import annotations

from pathlib import Path

import dpkt

from corsflow.analysis import analyze_exchanges, analyze_paths
from tests.conftest import SAMPLES
from tests.factories import API, PAGE, exchange, preflight

from .verdicts import errors, load_har, verdicts, write_har

GOOD = {"Access-Control-Allow-Origin": PAGE, "Access-Control-Allow-Methods": "PUT",
        "Access-Control-Allow-Headers": "x-custom-header"}
WILDCARD = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "PUT",
            "Access-Control-Allow-Headers": "x-custom-header",
            "Access-Control-Allow-Credentials": "true"}


def client_to_server_only(source: Path, target: Path) -> int:
    """Copy the packets a client sent to a server (not the answers): a one-directional
    capture, as a filter on the destination port or a mirror port of one direction gives."""
    with source.open("rb") as f:
        packets = list(dpkt.pcap.Reader(f))
    servers = set()
    for _, buf in packets:
        tcp = dpkt.ethernet.Ethernet(buf).data.data
        if isinstance(tcp, dpkt.tcp.TCP) and bytes(tcp.data).startswith(b"HTTP/1."):
            servers.add(tcp.sport)
    kept = 0
    with target.open("wb") as f:
        writer = dpkt.pcap.Writer(f)
        for ts, buf in packets:
            tcp = dpkt.ethernet.Ethernet(buf).data.data
            if isinstance(tcp, dpkt.tcp.TCP) and tcp.dport in servers:
                writer.writepkt(buf, ts)
                kept += 1
    return kept


def test_one_directional_pcap_pairs_preflights_and_raises_no_error(tmp_path: Path) -> None:
    full = analyze_paths([str(SAMPLES / "chromium-session.pcap")])
    half = tmp_path / "c2s.pcap"
    assert client_to_server_only(SAMPLES / "chromium-session.pcap", half) > 0
    report = analyze_paths([str(half)])
    assert not errors(report)
    want = {k: v for k, v in verdicts(full).items() if v[0] == "preflighted" and v[4] == "miss"}
    assert want, "the sample has requests sent after a preflight"
    got = verdicts(report)
    for key, (_, _, _, preflight_key, _, _) in want.items():
        # Each request that followed a preflight is still paired with it...
        assert got[key][3] == preflight_key, key
    # ...and nothing is allowed or blocked without a response to show it.
    assert {v[1] for v in got.values() if v[0] != "other"} == {"unknown"}
    assert all(v.unknown_reason for v in report.exchanges if v.verdict == "unknown")


def test_capture_ending_right_after_passing_preflights_raises_no_error(tmp_path: Path) -> None:
    """The issue's partial capture: cut right after a preflight that passes only without
    credentials (ACAO '*' with credentials allowed, the wildcard scenario)."""
    doc = load_har(SAMPLES / "chromium-session.har")
    entries = doc["log"]["entries"]
    cut = 0
    for i, e in enumerate(entries):
        response = {h["name"].lower(): h["value"] for h in e["response"]["headers"]}
        if e["request"]["method"] == "OPTIONS" and response.get(
                "access-control-allow-origin") == "*":
            cut = i + 1
            break
    assert cut, "the sample has a wildcard preflight"
    report = analyze_paths([str(write_har(tmp_path / "cut.har", doc, entries[:cut]))])
    whole = analyze_paths([str(SAMPLES / "chromium-session.har")])
    last = report.exchanges[-1]
    assert last.role == "preflight" and last.verdict in ("unknown", "allowed")
    assert errors(report) <= errors(whole)  # no error the whole capture does not have


def test_lone_wildcard_preflight_is_not_a_wildcard_error() -> None:
    report = analyze_exchanges([
        preflight(0, API + "/w", "PUT", "x-custom-header", started=1.0, allow=WILDCARD)])
    v = report.exchanges[0]
    assert v.verdict == "unknown" and v.cors_error is None
    assert v.unknown_reason and "PreflightWildcardOriginNotAllowed" in v.unknown_reason
    assert not [f for f in report.findings if f.severity == "error"]


def test_preflight_without_response_then_request_without_response_are_paired() -> None:
    report = analyze_exchanges([
        preflight(0, API + "/p", "PUT", "x-custom-header", started=1.0, status=204),
        exchange(1, "PUT", API + "/p", {"Origin": PAGE, "X-Custom-Header": "1"},
                 started=1.2, status=None),
    ][::-1])
    by = {v.exchange.id: v for v in report.exchanges}
    assert by["e1"].preflight_id == "e0"


def test_lone_preflight_failing_in_every_mode_is_still_an_error() -> None:
    # Missing Allow-Origin fails whatever the credentials mode: the capture proves it.
    report = analyze_exchanges([
        preflight(0, API + "/x", "PUT", "x-custom-header", started=1.0, allow={})])
    assert report.exchanges[0].verdict == "blocked"
    assert [f.code for f in report.findings if f.severity == "error"] == [
        "PreflightMissingAllowOriginHeader"]


def test_request_listed_before_its_preflight_is_paired() -> None:
    a = preflight(0, API + "/y", "PUT", "x-custom-header", started=5.0, allow=GOOD)
    b = exchange(1, "PUT", API + "/y", {"Origin": PAGE, "X-Custom-Header": "1"}, started=5.1,
                 response_headers={"Access-Control-Allow-Origin": PAGE})
    report = analyze_exchanges([b, a])
    by = {v.exchange.id: v for v in report.exchanges}
    assert (by["e0"].verdict, by["e1"].verdict, by["e1"].preflight_id) == (
        "allowed", "allowed", "e0")
