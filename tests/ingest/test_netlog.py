"""The NetLog reader on the real Chromium NetLog in samples/, and on damaged copies of it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corsflow.analysis import analyze_paths
from corsflow.errors import Diagnostics, IngestError
from corsflow.ingest import detect_format
from corsflow.ingest.corserror import SINCE_156, STABLE, cors_error_name
from corsflow.ingest.netlog import read_netlog

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "chromium-session.netlog.json"


def _api(report_exchanges: tuple) -> list:  # type: ignore[type-arg]
    return [v for v in report_exchanges if "127.0.0.1" in v.exchange.url]


def _rows(path: Path) -> list[tuple[object, ...]]:
    report = analyze_paths([str(path)])
    return [(v.exchange.id, v.exchange.method, v.exchange.url, v.exchange.status, v.role,
             v.verdict, v.cors_error, v.preflight_id, v.cache) for v in _api(report.exchanges)]


def _parts(path: Path) -> tuple[dict, list[dict]]:  # type: ignore[type-arg]
    data = json.loads(path.read_text())
    return data["constants"], data["events"]


def _write(path: Path, constants: dict, events: list[dict], *,  # type: ignore[type-arg]
           close: bool = True) -> Path:
    lines = ",\n".join(json.dumps(e, separators=(",", ":")) for e in events)
    text = json.dumps({"constants": constants}, separators=(",", ":"))[:-1] + ',\n"events": [\n'
    path.write_text(text + lines + ("]\n}\n" if close else ",\n"))
    return path


def test_sample_is_detected_and_read() -> None:
    assert SAMPLE.stat().st_size < 300 * 1024  # samples stay small
    assert b"/tmp/" not in SAMPLE.read_bytes()  # no paths of the recording machine
    assert detect_format(str(SAMPLE)) == "netlog"
    report = analyze_paths([str(SAMPLE)])
    assert report.sources[0].format == "netlog"
    api = _api(report.exchanges)
    by_role: dict[str, int] = {}
    for v in api:
        by_role[v.role] = by_role.get(v.role, 0) + 1
    assert by_role["preflight"] >= 5 and by_role["preflighted"] >= 6
    blocked = {v.cors_error for v in api if v.verdict == "blocked"}
    assert {"MissingAllowOriginHeader", "PreflightMissingAllowOriginHeader",
            "MethodDisallowedByPreflightResponse"} <= blocked
    assert [v for v in api if v.cache == "hit"], "maxage-600 is served from the cache"
    assert not [f for f in report.findings if f.code == "ModelDisagreement"]
    # Redirect hops are exchanges of their own, each with its own preflight.
    hops = [v for v in api if "preflighted-redirect-307" in v.exchange.url
            and v.role == "preflighted"]
    assert [v.exchange.status for v in hops] == [307, 200]
    assert hops[0].preflight_id != hops[1].preflight_id


def test_event_numbers_come_from_the_file(tmp_path: Path) -> None:
    """Another Chromium numbers its event and source types otherwise: same exchanges."""
    constants, events = _parts(SAMPLE)
    shift = {v: v + 1000 for v in constants["logEventTypes"].values()}
    constants["logEventTypes"] = {k: shift[v] for k, v in constants["logEventTypes"].items()}
    sources = {v: v + 77 for v in constants["logSourceType"].values()}
    constants["logSourceType"] = {k: sources[v] for k, v in constants["logSourceType"].items()}
    for e in events:
        e["type"] = shift[e["type"]]
        e["source"]["type"] = sources[e["source"]["type"]]
    moved = _write(tmp_path / "renumbered.json", constants, events)
    assert _rows(moved) == _rows(SAMPLE)


def test_capture_mode_is_said(tmp_path: Path) -> None:
    constants, events = _parts(SAMPLE)
    constants["logCaptureMode"] = "Default"
    report = analyze_paths([str(_write(tmp_path / "default.json", constants, events))])
    assert any("capture mode Default" in n and "stripped" in n for n in report.notes)


def test_unknown_cors_error_number_is_not_guessed(tmp_path: Path) -> None:
    constants, events = _parts(SAMPLE)
    error = constants["logEventTypes"]["CORS_PREFLIGHT_ERROR"]
    changed = 0
    for e in events:
        if e["type"] == error:
            e["params"]["cors-error"] = 4000
            changed += 1
    assert changed
    report = analyze_paths([str(_write(tmp_path / "new-error.json", constants, events))])
    notes = " ".join(report.notes)
    assert "CorsError number 4000" in notes
    blocked = [v for v in _api(report.exchanges) if v.exchange.failure == "net::ERR_FAILED"
               and v.exchange.response is None]
    assert blocked
    for v in blocked:
        assert v.verdict == "blocked"
        assert any("4000" in s.detail for s in v.trace)


def test_cors_error_numbers_by_version() -> None:
    assert cors_error_name(12, "156.0.8078.114") == "PreflightMissingAllowOriginHeader"
    assert cors_error_name(19, "156.0.8078.114") == "MethodDisallowedByPreflightResponse"
    assert cors_error_name(19, "120.0.1") is None  # numbered otherwise before 156
    assert cors_error_name(12, None) == STABLE[12]
    assert cors_error_name(len(SINCE_156), "160.0") is None
    assert cors_error_name("12", "156") is None


def test_a_cut_compressed_log_reads_up_to_the_cut(tmp_path: Path) -> None:
    import gzip

    packed = gzip.compress(SAMPLE.read_bytes())
    path = tmp_path / "cut.json.gz"
    path.write_bytes(packed[: len(packed) * 2 // 3])
    diagnostics = Diagnostics()
    exchanges = list(read_netlog(str(path), diagnostics))
    full = {e.id for e in read_netlog(str(SAMPLE), Diagnostics())}
    assert exchanges and {e.id.split(".")[0] for e in exchanges} <= full
    assert any("gzip data is damaged" in n for n in diagnostics.notes)
    assert any("ends without its closing brackets" in n for n in diagnostics.notes)


def test_damaged_event_is_skipped(tmp_path: Path) -> None:
    text = SAMPLE.read_text().split("\n")
    text[40] = '{"params":{"broken": tru'  # one event line, damaged
    path = tmp_path / "damaged.json"
    path.write_text("\n".join(text))
    diagnostics = Diagnostics()
    assert list(read_netlog(str(path), diagnostics))
    assert diagnostics.skipped_by_reason == {"NetLog event unreadable": 1}


def test_not_a_netlog(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text('{"constants": {"logEventTypes": {}}, "events": []}')
    assert detect_format(str(path)) == "netlog"
    with pytest.raises(IngestError, match="not a Chromium NetLog: constants lack"):
        list(read_netlog(str(path), Diagnostics()))
    path.write_text('{"constants": {"logEventTy')
    with pytest.raises(IngestError, match="x.json: not a readable NetLog"):
        list(read_netlog(str(path), Diagnostics()))
    path.write_text('{"events": [{"time": "1", "type": 2}], "polledData": {}}')
    assert detect_format(str(path)) == "netlog"
    with pytest.raises(IngestError, match="x.json: not a Chromium NetLog: no 'constants'$"):
        list(read_netlog(str(path), Diagnostics()))
    path.write_text('{"events": [{"time": "1", "type": 2}], "constants": {"logEv')
    with pytest.raises(IngestError, match="x.json: not a readable NetLog: the file ends "
                       "before its constants"):
        list(read_netlog(str(path), Diagnostics()))


GENERATOR = Path(__file__).resolve().parents[2] / "benchmarks" / "gen_netlog.py"
PERF = Path(__file__).resolve().parents[3] / "shared" / "perf"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:  # type: ignore[type-arg]
    if not (PERF / "model.py").is_file():
        pytest.skip(f"the shared traffic model is not beside the repository ({PERF})")
    import subprocess
    import sys

    path = tmp_path_factory.mktemp("gen") / "netlog.json"
    subprocess.run([sys.executable, str(GENERATOR), "700", str(path), "--perf", str(PERF)],
                   check=True, capture_output=True)
    return path, json.loads(Path(str(path) + ".truth.json").read_text())


@pytest.mark.slow
def test_generated_log_reads_as_its_truth(generated: tuple[Path, dict]) -> None:  # type: ignore[type-arg]
    path, truth = generated
    report = analyze_paths([str(path)])
    kinds = truth["by_kind"]
    roles: dict[tuple[str, str | None, str | None], int] = {}
    for v in report.exchanges:
        key = (v.role, v.verdict, v.cache)
        roles[key] = roles.get(key, 0) + 1
    assert len(report.exchanges) == truth["exchanges"]
    assert roles.get(("preflighted", "allowed", "hit"), 0) == kinds.get("cors-actual-cache-hit", 0)
    blocked = kinds.get("cors-blocked", 0)
    assert roles.get(("preflighted", "blocked", "miss"), 0) == blocked
    assert roles.get(("preflight", "blocked", None), 0) == kinds.get("preflight-failed", 0)
    assert sum(n for (role, _, _), n in roles.items() if role == "preflight") == kinds["preflight"]
    assert not [f for f in report.findings if f.code == "ModelDisagreement"]


@pytest.mark.slow
def test_state_is_bounded_by_the_requests_in_flight(generated: tuple[Path, dict],  # type: ignore[type-arg]
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from corsflow.ingest import netlog

    builders: list[netlog._Builder] = []
    init = netlog._Builder.__init__

    def keep(self: netlog._Builder, *args: object) -> None:
        init(self, *args)  # type: ignore[arg-type]
        builders.append(self)

    monkeypatch.setattr(netlog._Builder, "__init__", keep)
    most = 0
    count = 0
    for _ in read_netlog(str(generated[0]), Diagnostics()):
        b = builders[0]
        most = max(most, len(b.requests) + len(b.parked) + len(b.outcome)
                   + len(b.preflight_parent))
        count += 1
    assert count == generated[1]["exchanges"]
    assert most <= 40, most  # a burst's requests, not the log's


def test_damage_anywhere_is_never_a_traceback(tmp_path: Path) -> None:
    """Bytes flipped, lines dropped or doubled, values of the wrong type: an IngestError
    naming the file, or exchanges and counted skips; nothing else."""
    import random

    rng = random.Random(11)
    data = SAMPLE.read_bytes()
    lines = data.split(b"\n")
    path = tmp_path / "damaged.json"
    for n in range(60):
        kind = n % 4
        if kind == 0:
            buf = bytearray(data)
            for _ in range(rng.randint(1, 20)):
                buf[rng.randrange(len(buf))] = rng.randrange(256)
            damaged = bytes(buf)
        elif kind == 1:
            cut = list(lines)
            for _ in range(rng.randint(1, 30)):
                del cut[rng.randrange(2, len(cut))]
            damaged = b"\n".join(cut)
        elif kind == 2:
            cut = list(lines)
            for _ in range(rng.randint(1, 30)):
                k = rng.randrange(2, len(cut))
                cut.insert(k, cut[rng.randrange(2, len(cut))])
            damaged = b"\n".join(cut)
        else:
            text = data.decode()
            for old, new in (('"id":', '"id":"x",'[:6]), ('"phase":1', '"phase":"1"'),
                             ('"headers":[', '"headers":[1,null,'), ('"status":"', '"status":7,"x":"')):
                if rng.random() < 0.5:
                    text = text.replace(old, new, rng.randint(1, 50))
            damaged = text.encode()
        path.write_bytes(damaged)
        try:
            report = analyze_paths([str(path)])
        except IngestError as e:
            assert str(e).startswith(str(path)), e
            continue
        assert report.sources[0].format == "netlog"


@pytest.mark.parametrize("offset", ["9" * 4400, 10 ** 400, "\u00b2", 1e300])
def test_an_absurd_clock_offset_is_one_line(tmp_path: Path, offset: object) -> None:
    constants, events = _parts(SAMPLE)
    constants["timeTickOffset"] = offset
    path = _write(tmp_path / "offset.json", constants, events)
    with pytest.raises(IngestError, match="timeTickOffset"):
        list(read_netlog(str(path), Diagnostics()))


@pytest.mark.parametrize("version", ["\u00b2.0", "9" * 4400 + ".0"])
def test_an_absurd_chromium_version_reads_as_unknown(version: str) -> None:
    assert cors_error_name(3, version) == cors_error_name(3, None)


def _relaid(layout: str) -> bytes:
    """The sample written in another layout than Chromium's one event a line."""
    data = SAMPLE.read_bytes()
    if layout == "chromium":
        return data
    if layout == "minified":
        return json.dumps(json.loads(data), separators=(",", ":")).encode()
    if layout == "indented":
        return json.dumps(json.loads(data), indent=2).encode()
    if layout == "crlf":
        return data.replace(b"\n", b"\r\n")
    events_end = data.rindex(b'],\n"polledData"')
    if layout == "closed on the last event's line, no polledData":
        return data[:events_end] + b"]}\n"
    if layout == "polledData on the last event's line":
        return data[:events_end] + b'],"polledData":{"x":[1]}}'
    if layout.startswith("events first"):
        # Key order is the writer's: the constants after the events, read in a second pass.
        parsed = json.loads(data)
        if layout == "events first, minified":
            return json.dumps({"events": parsed["events"], "polledData": parsed["polledData"],
                               "constants": parsed["constants"]}, separators=(",", ":")).encode()
        lines = data[data.index(b'"events"'):events_end]
        return (b"{" + lines + b'],\n"constants": ' + json.dumps(parsed["constants"]).encode()
                + b"}\n")
    raise AssertionError(layout)


@pytest.mark.parametrize("layout", ["minified", "indented", "crlf",
                                    "closed on the last event's line, no polledData",
                                    "polledData on the last event's line",
                                    "events first", "events first, minified"])
def test_any_json_layout_reads_like_chromiums(tmp_path: Path, layout: str) -> None:
    # A log re-saved by another tool (jq -c, an editor, json.tool) is the same log.
    path = tmp_path / "relaid.json"
    path.write_bytes(_relaid(layout))
    diagnostics = Diagnostics()
    assert list(read_netlog(str(path), diagnostics))
    assert not diagnostics.skipped and not diagnostics.notes
    assert _rows(path) == _rows(SAMPLE)


@pytest.mark.parametrize("layout", ["chromium", "minified", "indented"])
@pytest.mark.parametrize("fraction", [0.1, 0.35, 0.6, 0.85, 0.999])
def test_cut_anywhere_reads_up_to_the_cut(tmp_path: Path, layout: str, fraction: float) -> None:
    data = _relaid(layout)
    start, end = data.index(b'"events"'), data.rindex(b'"polledData"')
    path = tmp_path / "cut.json"
    path.write_bytes(data[: start + int((end - start) * fraction)])
    diagnostics = Diagnostics()
    exchanges = list(read_netlog(str(path), diagnostics))
    assert any("ends without its closing brackets" in n for n in diagnostics.notes)
    truncated = "NetLog truncated: the events after this point are missing"
    assert list(diagnostics.skipped_by_reason) == [truncated]
    full = {e.id for e in read_netlog(str(SAMPLE), Diagnostics())}
    assert exchanges and {e.id.split(".")[0] for e in exchanges} <= full
