"""The live analysis in a process of its own: the same results as in one process.

A real child process runs here (``python -m corsflow.live_process``), fed the flows of a
session mitmdump recorded (``samples/chromium-session.flows``) as the addon feeds it; the
addon's use of it inside a real mitmdump is tested in tests/mitm/test_mitm_addon_live.py.
"""

from __future__ import annotations

import io
import logging
import os
import signal
import struct
from pathlib import Path

import msgspec
import pytest
from mitmproxy.io import FlowReader

from corsflow import live_process
from corsflow.analysis import Analysis, Fed
from corsflow.engine.events import Finding
from corsflow.flowmarks import Mark, mark_of
from corsflow.ingest.flowrecord import FlowRecord
from corsflow.ingest.mitm import ConnectionsSeen, exchange_from_flow, record_of, skip_reason
from corsflow.live_process import AnalysisProcess, Failure, ProcessGone, Settled, decoded, serve
from corsflow.model import Exchange

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def flows() -> list[FlowRecord]:
    """The session's HTTP flows, as the addon hands them to the process."""
    with open(SAMPLES / "chromium-session.flows", "rb") as f:
        loaded = [fl for fl in FlowReader(f).stream() if skip_reason(fl) is None]
    return [record_of(fl, n) for n, fl in enumerate(loaded)]  # type: ignore[arg-type]


def exchanges() -> list[Exchange]:
    """The same flows as exchanges, as the addon analysing in its own process makes them."""
    with open(SAMPLES / "chromium-session.flows", "rb") as f:
        loaded = [fl for fl in FlowReader(f).stream() if skip_reason(fl) is None]
    seen = ConnectionsSeen()
    made = [exchange_from_flow(fl, n, connections=seen) for n, fl in enumerate(loaded)]
    return [e for e in made if e is not None]


class Received:
    def __init__(self) -> None:
        self.fed: list[Fed | Settled] = []
        self.aggregates: list[list[Finding]] = []
        self.failures: list[Failure] = []
        self.gone: list[ProcessGone] = []

    def start(self, engine: str = "chromium") -> AnalysisProcess:
        return AnalysisProcess(engine, self.fed.append, self.aggregates.append,
                               self.failures.append, self.gone.append)

    def verdicts(self) -> list[tuple[str, str, str | None, str | None]]:
        return [(v.exchange.id, v.role, v.verdict, v.cors_error)
                for f in self.fed for v in map(decoded, f.verdicts)]

    def marks(self) -> list[Mark]:
        return [m for f in self.fed for m in (
            f.marks if isinstance(f, Settled) else map(mark_of, f.verdicts))]

    def findings(self) -> list[Finding]:
        return [x for f in self.fed for x in f.findings]


def in_one_process(items: list[Exchange], engine: str = "chromium") -> tuple[Received, Analysis]:
    here, analysis = Received(), Analysis(engine, keep_exchanges=False)
    for e in items:
        here.fed.append(analysis.feed(e))
    here.fed.append(analysis.flush())
    return here, analysis


def test_a_flow_crosses_the_pipe_into_the_exchange_the_proxy_would_make() -> None:
    from corsflow.ingest.flowrecord import exchange_of

    records = flows()
    decoded_records = msgspec.msgpack.Decoder(list[FlowRecord]).decode(
        msgspec.msgpack.encode(records))
    seen = ConnectionsSeen()
    there = [exchange_of(r, "live", seen) for r in decoded_records]
    assert there == exchanges()
    # Connection reuse is still told apart after the pipe: set-up time is charged once.
    charged = [e for e in there if e.timings and e.timings.connect is not None]
    assert 0 < len(charged) < len(there)


@pytest.mark.parametrize("engine", ["chromium", "firefox", "webkit"])
def test_results_and_report_are_those_of_one_process(engine: str) -> None:
    items = exchanges()
    here, analysis = in_one_process(items, engine)
    there = Received()
    process = there.start(engine)
    try:
        for flow in flows():
            process.feed(flow)  # no event loop: batches go when full and before each request
        process.flush()
        assert there.verdicts() == here.verdicts()
        assert len(there.verdicts()) == len(items)
        # Each verdict's mark: what the proxy shows of it without decoding it.
        assert there.marks() == here.marks()
        assert [(m.id, m.blocked) for m in there.marks()] == [
            (v.exchange.id, v.verdict == "blocked") for f in there.fed
            for v in map(decoded, f.verdicts)]
        assert any(m.blocked for m in there.marks()) and any(m.line for m in there.marks())
        assert there.findings() == here.findings()
        assert process.settled == len(items)
        process.ask_aggregate()  # answered by the next request at the latest
        assert process.state()["settled"] == len(items)
        assert there.aggregates == [[*analysis.aggregator.findings(),
                                     *analysis.security.findings()]]
        analysis.add_source("live", "mitmproxy", len(items), 0)
        report = process.report(len(items))
        assert report.findings == analysis.report().findings and report.engine == engine
        assert report.sources[0].exchanges == len(items)
        assert process.state()["verdicts"] == 0  # the child keeps no exchange either
    finally:
        process.close()
    assert there.failures == [] and there.gone == []


def test_a_flow_msgpack_cannot_carry_is_told_and_the_rest_of_its_batch_still_goes() -> None:
    records = flows()[:3]
    # mitmproxy keeps a Host it could not decode as UTF-8 with surrogates for the bytes.
    bad = msgspec.structs.replace(records[1], host="bad\udcff.example")
    there = Received()
    process = there.start()
    try:
        for flow in (records[0], bad, records[2]):
            process.feed(flow)
        process.flush()
        assert sorted(m.id for m in there.marks()) == [f"f{records[0].n}", f"f{records[2].n}"]
        assert [f.kind for f in there.failures] == ["UnicodeEncodeError"]
        assert there.failures[0].message.startswith(f"flow {bad.n}: ")
        assert process.settled == 3  # the dropped flow too: nothing keeps waiting for it
    finally:
        process.close()
    assert there.gone == []


def test_settle_soon_does_not_wait_and_its_answer_is_not_taken_for_a_later_one() -> None:
    import select

    records = flows()
    there = Received()
    process = there.start()
    try:
        for flow in records:
            process.feed(flow)
        process.settle_soon()
        process.settle_soon()  # asked once until answered
        assert process._unanswered == 1
        # A request made now gets its own answer, not the flush's (b"" is no state).
        assert process.state()["settled"] == len(records)
        assert process._unanswered == 0
        while process.settled < len(records):  # the results came on the way (or come now)
            select.select([process._out], [], [], 5)
            process._pump()
        assert sorted(m.id for m in there.marks()) == sorted(f"f{r.n}" for r in records)
    finally:
        process.close()
    assert there.failures == [] and there.gone == []


def test_restart_forgets_and_drops_what_was_on_its_way() -> None:
    there = Received()
    process = there.start()
    try:
        for flow in flows()[:5]:
            process.feed(flow)
        process.restart("firefox")
        assert process.settled == 0 and process.state()["settled"] == 0
        assert process.report(0).engine == "firefox"
    finally:
        process.close()


def test_a_dead_process_is_told_not_waited_for() -> None:
    there = Received()
    process = there.start()
    try:
        os.kill(process._proc.pid, signal.SIGKILL)
        process._proc.wait()
        with pytest.raises(ProcessGone):
            process.feed(flows()[0])
            process.flush()
    finally:
        process.close()


def _frames(data: bytes) -> list[tuple[int, bytes]]:
    head, out, pos = struct.Struct("<BI"), [], 0
    while pos < len(data):
        tag, size = head.unpack_from(data, pos)
        out.append((tag, data[pos + head.size:pos + head.size + size]))
        pos += head.size + size
    return out


def test_an_exchange_the_analysis_fails_on_is_reported_and_the_rest_analysed(monkeypatch) -> None:
    items = exchanges()
    real = Analysis.feed

    def feed(self: Analysis, exchange: Exchange, *args: object, **kw: object) -> Fed:
        if exchange.id == items[1].id:
            raise ValueError("a bug")
        return real(self, exchange, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Analysis, "feed", feed)
    head = struct.Struct("<BI")
    batch = msgspec.msgpack.encode(flows())
    inp = io.BytesIO(head.pack(live_process.FEED, len(batch)) + batch
                     + head.pack(live_process.FLUSH, 0))
    out = io.BytesIO()
    serve("chromium", inp, out, forward_logs=False)
    frames = _frames(out.getvalue())
    failed = [p for t, p in frames if t == live_process.FAILED]
    assert len(failed) == 1
    kind, where, message, text = msgspec.msgpack.decode(failed[0])
    assert (kind, message) == ("ValueError", "a bug") and where.startswith("corsflow/")
    assert "Traceback" in text
    settled = [decoded(v).exchange.id for t, p in frames if t == live_process.RESULTS
               for v in live_process._decode_results(p)[1]]
    assert sorted(settled) == sorted(e.id for e in items if e.id != items[1].id)
    assert frames[-1] == (live_process.REPLY, b"")

    # ... and the proxy's side hands the failure on as it came.
    there = Received()
    process = there.start()
    try:
        process._read += out.getvalue()
        assert process._pump() == b""  # the flush's answer, after everything before it
        assert [(f.kind, f.message) for f in there.failures] == [("ValueError", "a bug")]
        assert there.failures[0].text == text
        assert sorted(decoded(v).exchange.id for f in there.fed for v in f.verdicts) \
            == sorted(settled)
    finally:
        process.close()


def test_a_flow_of_unexpected_types_is_reported_and_the_rest_of_its_batch_analysed() -> None:
    records = flows()[:3]
    rows = msgspec.msgpack.decode(msgspec.msgpack.encode(records))
    port = FlowRecord.__struct_fields__.index("port")
    rows[1][port] = "eighty"  # not what record_of sends: a port is an int
    batch = msgspec.msgpack.encode(rows)
    head = struct.Struct("<BI")
    out = io.BytesIO()
    serve("chromium", io.BytesIO(head.pack(live_process.FEED, len(batch)) + batch
                                 + head.pack(live_process.FLUSH, 0)), out, forward_logs=False)
    frames = _frames(out.getvalue())
    failed = [msgspec.msgpack.decode(p) for t, p in frames if t == live_process.FAILED]
    assert [(kind, where.startswith("corsflow/")) for kind, where, _, _ in failed] == [
        ("ValidationError", True)]
    assert "Expected `int`, got `str`" in failed[0][2]
    settled = [decoded(v).exchange.id for t, p in frames if t == live_process.RESULTS
               for v in live_process._decode_results(p)[1]]
    assert sorted(settled) == [f"f{records[0].n}", f"f{records[2].n}"]


def test_what_the_child_logs_is_logged_by_the_proxy(monkeypatch, caplog) -> None:
    items = exchanges()[:3]
    real = Analysis.feed

    def feed(self: Analysis, exchange: Exchange, *args: object, **kw: object) -> Fed:
        logging.getLogger("corsflow.engine.machine").warning("about %s", exchange.id)
        return real(self, exchange, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(Analysis, "feed", feed)
    head = struct.Struct("<BI")
    batch = msgspec.msgpack.encode(flows()[:3])
    out = io.BytesIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        serve("chromium", io.BytesIO(head.pack(live_process.FEED, len(batch)) + batch), out)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    logged = [p for t, p in _frames(out.getvalue()) if t == live_process.LOGGED]
    assert [msgspec.msgpack.decode(p) for p in logged] == [
        ["corsflow.engine.machine", logging.WARNING, f"about {e.id}"] for e in items]

    # ... and the proxy's side logs each under the child's logger name.
    there = Received()
    process = there.start()
    try:
        process._read += out.getvalue()
        with caplog.at_level(logging.WARNING):
            assert process._pump() is None
        records = [(r.name, r.getMessage()) for r in caplog.records]
        assert records == [("corsflow.engine.machine", f"about {e.id}") for e in items]
    finally:
        process.close()


def test_a_frame_is_handled_once_even_when_its_callback_raises() -> None:
    items = exchanges()[:2]
    here, _ = in_one_process(items)
    settled = [v for f in here.fed for v in f.verdicts]
    head = struct.Struct("<BI")
    frames = b"".join(
        head.pack(live_process.RESULTS, len(p)) + p
        for p in (msgspec.msgpack.encode(([mark_of(v)], [v], [])) for v in settled))
    calls: list[Settled] = []

    def on_results(fed: Settled) -> None:
        calls.append(fed)
        if len(calls) == 1:
            raise RuntimeError("the proxy's side failed")

    there = Received()
    process = AnalysisProcess("chromium", on_results, there.aggregates.append,
                              there.failures.append, there.gone.append)
    try:
        process._read += frames
        with pytest.raises(RuntimeError):
            process._pump()
        assert process._pump() is None
        assert [f.marks[0].id for f in calls] == [v.exchange.id for v in settled]
        assert [decoded(f.verdicts[0]) for f in calls] == settled
    finally:
        process.close()
