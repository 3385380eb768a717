"""Reading saved mitmproxy flow files: the real corpus, damaged files, the field mapping."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path

import pytest

from corsflow.errors import Diagnostics, IngestError
from corsflow.ingest import detect_format, open_capture
from corsflow.ingest.mitm import exchange_from_flow, read_flows

from .conftest import CORPUS_MITM, corpus_file

pytestmark = pytest.mark.mitmproxy

from mitmproxy.io import FlowWriter, tnetstring
from mitmproxy.test import tflow


def _read(path: Path) -> tuple[list, Diagnostics]:
    d = Diagnostics()
    return list(read_flows(str(path), d)), d


def _corpus() -> list[Path]:
    if not CORPUS_MITM.is_dir():
        return []
    return sorted(CORPUS_MITM.glob("*.mitm"))


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: p.name)
def test_every_corpus_file_reads_without_error(path: Path) -> None:
    assert detect_format(str(path)) == "mitmproxy"
    d = Diagnostics()
    fmt, stream = open_capture(str(path), d)
    exchanges = list(stream)
    assert fmt == "mitmproxy"
    assert exchanges, "every corpus file holds at least one HTTP flow"
    for ex in exchanges:
        assert ex.url.startswith(("http://", "https://"))
        assert ex.source.format == "mitmproxy" and ex.source.path == str(path)
        assert ex.id == f"f{ex.source.index}" and ex.source.where == f"flow {ex.source.index}"
        assert all(not name.startswith(":") for name, _ in ex.request_headers)
    ids = [ex.id for ex in exchanges]
    assert len(set(ids)) == len(ids)


def test_corpus_is_present_for_the_parametrised_test() -> None:
    if not _corpus():
        pytest.skip(f"the shared corpus is not beside the repository ({CORPUS_MITM})")
    assert len(_corpus()) >= 15


def test_http_and_tcp_flows_skip_the_tcp_ones() -> None:
    exchanges, d = _read(corpus_file("mitmproxy-flowfmt18-http-and-tcp.mitm"))
    assert len(exchanges) == 5
    assert d.skipped_by_reason == {"tcp flow (not HTTP)": 2}
    # Flow numbers count every flow, so the HTTP flow after the two tcp ones is f6.
    assert [ex.id for ex in exchanges] == ["f0", "f1", "f2", "f3", "f6"]
    assert [w.where for w in d.skipped] == ["flow 4", "flow 5"]
    assert {ex.http_version for ex in exchanges} == {"HTTP/2.0"}
    first = exchanges[0]
    assert first.method == "POST"
    assert first.url.startswith("https://jnn-pa.googleapis.com/$rpc/")
    # HTTP/2 header names are lower case and in capture order.
    assert first.request_headers.items[0] == ("content-length", "1020")
    assert first.response is not None and first.response.status == 200
    assert first.response.reason is None  # HTTP/2 has no reason phrase


def test_error_log_keeps_the_failed_flow_without_response() -> None:
    exchanges, d = _read(corpus_file("mitmproxy-flowfmt18-error-log.mitm"))
    assert d.skipped_count == 0
    failed, answered = exchanges
    assert failed.url == "http://163.com/" and failed.response is None
    assert failed.failure is not None and "Connect call failed" in failed.failure
    assert answered.method == "POST" and answered.status == 405
    assert answered.response is not None
    assert answered.response.headers.get("access-control-allow-origin") is not None
    assert answered.failure is None


def test_old_separate_websocket_flows_are_skipped() -> None:
    exchanges, d = _read(corpus_file("mitmproxy-flowfmt7-websocket.mitm"))
    assert len(exchanges) == 3
    assert d.skipped_count == 3
    for ex in exchanges:  # the upgrades are ordinary exchanges
        assert ex.status == 101 and ex.request_headers.get("Origin") is not None
        assert (ex.request_headers.get("Upgrade") or "").lower() == "websocket"


def test_websocket_flows_of_the_current_format_are_exchanges() -> None:
    exchanges, d = _read(corpus_file("mitmproxy-flowfmt20-websocket.mitm"))
    assert d.skipped_count == 0
    assert [ex.status for ex in exchanges] == [101, 101, 101]


def test_the_0_10_format_is_read_although_mitmproxy_refuses_it() -> None:
    path = corpus_file("mitmproxy-0.10.1-dumpfile-unsupported.mitm")
    from mitmproxy.exceptions import FlowReadException
    from mitmproxy.io import FlowReader

    with open(path, "rb") as f, pytest.raises(FlowReadException):
        list(FlowReader(f).stream())
    exchanges, d = _read(path)
    (ex,) = exchanges
    assert (ex.method, ex.url, ex.status, ex.http_version) == (
        "GET", "http://example.com/", 200, "HTTP/1.1",
    )  # fmt: skip
    assert ex.request_headers.get("x-requested-with") == "com.android.browser"
    assert ex.response is not None and ex.response.reason == "OK"
    assert ex.started == pytest.approx(1468014849.988708)
    assert any("0.10" in note for note in d.notes)


def test_http3_flow_keeps_its_scheme_and_host() -> None:
    (ex,), _ = _read(corpus_file("mitmproxy-flowfmt20-http3-quic.mitm"))
    assert ex.url == "https://cloudflare-quic.com/"
    assert ex.http_version == "HTTP/3"


def test_pseudo_headers_of_old_http2_flows_are_dropped() -> None:
    (ex,), _ = _read(corpus_file("mitmproxy-flowfmt7-origin.mitm"))
    assert ex.request_headers.get("origin") is not None
    assert ":authority" not in ex.request_headers


def test_timings_charge_connection_setup_to_the_first_flow_only() -> None:
    exchanges, _ = _read(corpus_file("mitmproxy-flowfmt11.mitm"))
    first = exchanges[0]
    assert first.timings is not None
    assert first.timings.connect == pytest.approx(114.698, abs=0.01)
    assert first.timings.ssl is None  # plain http
    assert first.timings.total == pytest.approx(
        sum(
            x
            for x in (
                first.timings.connect,
                first.timings.send,
                first.timings.wait,
                first.timings.receive,
            )
            if x is not None
        )
    )
    # The same flow seen twice on one connection: only the first pays the setup.
    from corsflow.ingest.mitm import ConnectionsSeen

    path = corpus_file("mitmproxy-flowfmt11.mitm")
    from mitmproxy.io import FlowReader

    with open(path, "rb") as f:
        flow = next(iter(FlowReader(f).stream()))
    seen = ConnectionsSeen()
    a = exchange_from_flow(flow, 0, "x", connections=seen)
    b = exchange_from_flow(flow, 1, "x", connections=seen)
    assert a is not None and b is not None and a.timings and b.timings
    assert a.timings.connect is not None and b.timings.connect is None


def _records(path: Path) -> list[dict]:
    out = []
    with open(path, "rb") as f:
        while f.peek(1):
            out.append(tnetstring.load(f))
    return out


def _dump(records: list, path: Path) -> Path:
    buf = io.BytesIO()
    for r in records:
        tnetstring.dump(r, buf)
    path.write_bytes(buf.getvalue())
    return path


def test_truncated_file_keeps_the_flows_before_the_cut(tmp_path: Path) -> None:
    data = corpus_file("mitmproxy2swagger-flowfmt18-api-acao.mitm").read_bytes()
    records = _records(corpus_file("mitmproxy2swagger-flowfmt18-api-acao.mitm"))
    two = len(tnetstring.dumps(records[0])) + len(tnetstring.dumps(records[1]))
    cut = tmp_path / "cut.mitm"
    cut.write_bytes(data[: two + 100])  # two whole flows and the start of the third
    exchanges, d = _read(cut)
    assert [ex.id for ex in exchanges] == ["f0", "f1"]
    assert d.skipped_count == 1
    assert d.skipped[0].where.startswith("flow 2")
    assert "truncated" in d.skipped[0].reason


def test_a_damaged_record_is_skipped_and_the_rest_read(tmp_path: Path) -> None:
    records = _records(corpus_file("mitmproxy2swagger-flowfmt18-api-acao.mitm"))
    del records[1]["request"]["method"]
    records[2]["version"] = 999  # written by a mitmproxy from the future
    exchanges, d = _read(_dump(records, tmp_path / "damaged.mitm"))
    assert [ex.id for ex in exchanges] == ["f0", "f3"]
    assert [s.where for s in d.skipped] == ["flow 1", "flow 2"]
    assert "cannot load" in d.skipped[0].reason
    assert "newer" in d.skipped[1].reason


def test_garbage_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mitm"
    bad.write_bytes(b"12:hello world!")
    with pytest.raises(IngestError) as e:
        list(read_flows(str(bad), Diagnostics()))
    message = str(e.value)
    assert "\n" not in message and str(bad) in message and "flow 0" in message


def test_a_file_from_a_newer_mitmproxy_is_refused_with_the_reason(tmp_path: Path) -> None:
    records = _records(corpus_file("mitmproxy-flowfmt21-corrupted-gzip.mitm"))
    records[0]["version"] = 999
    with pytest.raises(IngestError, match="newer than mitmproxy"):
        list(read_flows(str(_dump(records, tmp_path / "new.mitm")), Diagnostics()))


def test_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="cannot open"):
        list(read_flows(str(tmp_path / "nope.mitm"), Diagnostics()))


def test_written_flows_round_trip_field_by_field(tmp_path: Path) -> None:
    flow = tflow.tflow(resp=True)
    flow.request.headers["Origin"] = "http://a.test"
    flow.request.headers.add("X-Twice", "1")
    flow.request.headers.add("X-Twice", "2")
    flow.request.headers[b"X-Latin"] = b"caf\xe9"
    err = tflow.tflow(err=True)
    tcp = tflow.ttcpflow()
    path = tmp_path / "w.mitm"
    with open(path, "wb") as f:
        writer = FlowWriter(f)
        for fl in (flow, tcp, err):
            writer.add(fl)
    exchanges, d = _read(path)
    assert [ex.id for ex in exchanges] == ["f0", "f2"]
    assert d.skipped_by_reason == {"tcp flow (not HTTP)": 1}
    ex, failed = exchanges
    assert ex.method == flow.request.method and ex.url == flow.request.url
    assert ex.request_headers.get_all("x-twice") == ("1", "2")
    assert ex.request_headers.get("x-latin") == "caf\xe9"  # isomorphic decode
    assert ex.started == flow.request.timestamp_start
    assert ex.response is not None and flow.response is not None
    assert ex.response.status == flow.response.status_code
    assert ex.response.finished == flow.response.timestamp_end
    assert failed.response is None and failed.failure == err.error.msg
    # The flow in memory (the live addon's view) and read back from the file agree.
    live = exchange_from_flow(flow, 0, str(path))
    assert live is not None
    assert replace(live, timings=None) == replace(ex, timings=None)


def test_urls_match_mitmproxys_own_on_the_corpus() -> None:
    from mitmproxy import http
    from mitmproxy.io import FlowReader

    from corsflow.ingest.mitm import url_of

    checked = 0
    for path in _corpus():
        if "0.10" in path.name:
            continue  # mitmproxy cannot read it
        with open(path, "rb") as f:
            for fl in FlowReader(f).stream():
                if isinstance(fl, http.HTTPFlow) and fl.request.method != "CONNECT":
                    assert url_of(fl.request.data) == fl.request.url
                    checked += 1
    if not checked:
        pytest.skip("the shared corpus is not beside the repository")


@pytest.mark.parametrize(
    ("scheme", "host", "port", "path", "url"),
    [
        ("http", "::1", 8080, b"/x", "http://[::1]:8080/x"),  # mitmproxy: http://::1:8080/x
        ("https", "api.test", 443, b"/a?b=c%20d", "https://api.test/a?b=c%20d"),
        ("http", "api.test", 443, b"/", "http://api.test:443/"),
        ("http", "api.test", 80, b"/caf\xc3\xa9 x", "http://api.test/caf%C3%A9%20x"),
        ("http", "api.test", 80, b"*", "http://api.test"),  # OPTIONS *
        ("https", "bücher.example", 443, b"/", "https://xn--bcher-kva.example/"),
    ],
)
def test_url_of_always_gives_a_valid_url(scheme, host, port, path, url) -> None:
    from corsflow.ingest.mitm import url_of

    f = tflow.tflow()
    f.request.scheme, f.request.host, f.request.port = scheme, host, port
    f.request.data.path = path
    assert url_of(f.request.data) == url


def test_damage_anywhere_gives_exchanges_or_one_clear_error(tmp_path: Path) -> None:
    """Flip, cut or insert bytes anywhere in a real flow file: the reader either yields what
    it could read (counting what it skipped) or raises one IngestError, never anything else."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    data = corpus_file("mitmproxy2swagger-flowfmt18-api-acao.mitm").read_bytes()
    path = tmp_path / "damaged.mitm"

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        st.integers(0, len(data) - 1),
        st.sampled_from(["flip", "cut", "insert"]),
        st.binary(min_size=1, max_size=8),
    )
    def check(at: int, how: str, junk: bytes) -> None:
        if how == "flip":
            damaged = data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]
        elif how == "cut":
            damaged = data[:at]
        else:
            damaged = data[:at] + junk + data[at:]
        path.write_bytes(damaged)
        d = Diagnostics()
        try:
            exchanges = list(read_flows(str(path), d))
        except IngestError as e:
            assert "\n" not in str(e) and str(path) in str(e)
            return
        assert len(exchanges) + d.skipped_count >= 1 or not damaged.strip()
        assert len({ex.id for ex in exchanges}) == len(exchanges)

    check()
