"""The addon inside mitmproxy's own test harness: commands, option checks, failure isolation.

Flows here are built with mitmproxy's test helpers and fed through the addon's hooks, as
mitmproxy would; the real proxy runs in test_mitm_addon_live.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from corsflow.addon import CorsflowAddon, addon_path
from corsflow.ingest.ahead import usable_cores
from corsflow.live_browser import BrowserLauncher
from corsflow.live_web import LivePage

pytestmark = pytest.mark.mitmproxy

from mitmproxy import exceptions, http
from mitmproxy.test import taddons, tflow, tutils

A = "https://app.test"
B = "https://api.test"
T0 = 1_700_000_000.0


def flow(method: str, url: str, t: float, headers: dict[str, str], status: int = 200,
         response_headers: dict[str, str] | None = None) -> http.HTTPFlow:  # fmt: skip
    f = tflow.tflow(resp=True)
    f.request = tutils.treq(method=method.encode(), headers=http.Headers())
    f.request.url = url
    for name, value in headers.items():
        f.request.headers[name] = value
    f.request.timestamp_start, f.request.timestamp_end = t, t + 0.001
    f.response = tutils.tresp(status_code=status, headers=http.Headers(), content=b"")
    for name, value in (response_headers or {}).items():
        f.response.headers[name] = value
    f.response.timestamp_start, f.response.timestamp_end = t + 0.01, t + 0.02
    return f


def preflight(url: str, t: float, acao: str | None) -> http.HTTPFlow:
    allow = {"Access-Control-Allow-Methods": "PUT", "Access-Control-Allow-Headers": "x-custom"}
    if acao is not None:
        allow["Access-Control-Allow-Origin"] = acao
    return flow(
        "OPTIONS", url, t,
        {"Origin": A, "Access-Control-Request-Method": "PUT",
         "Access-Control-Request-Headers": "x-custom"},
        204, allow,
    )  # fmt: skip


def put(url: str, t: float) -> http.HTTPFlow:
    return flow("PUT", url, t, {"Origin": A, "X-Custom": "1"}, 200,
                {"Access-Control-Allow-Origin": A})  # fmt: skip


@pytest.fixture
def tctx():
    addon = CorsflowAddon()
    with taddons.context(addon) as tctx:
        tctx.configure(addon)
        yield tctx, addon


def test_the_script_file_exports_the_addon() -> None:
    with taddons.context() as tctx:
        module = tctx.script(addon_path())
    loaded, page, browser = module.addons
    assert isinstance(loaded, CorsflowAddon)
    # The live page reads that same analysis; the browser launcher stays idle unless asked.
    assert isinstance(page, LivePage) and page.analysis is loaded
    assert isinstance(browser, BrowserLauncher)


def test_a_later_flow_settles_and_marks_an_earlier_one(tctx, caplog) -> None:
    _, addon = tctx
    bad = preflight(f"{B}/x", T0, acao="https://evil.test")
    addon.response(bad)
    assert bad.marked == "" and bad.comment == ""  # not settled yet: the engine waits
    later = flow("GET", "https://other.test/", T0 + 60, {})
    with caplog.at_level(logging.INFO, logger="corsflow"):
        addon.response(later)  # capture time moves on: the preflight is settled
    assert bad.marked == ":no_entry:"
    assert "PreflightAllowOriginMismatch" in bad.comment and "fix:" in bad.comment
    assert later.marked == "" and later.comment == ""
    assert bad.metadata["corsflow.id"] == "f0" and later.metadata["corsflow.id"] == "f1"
    assert any("PreflightAllowOriginMismatch OPTIONS https://api.test/x [f0]" in r.getMessage()
               for r in caplog.records)  # fmt: skip


def test_flows_are_held_weakly_for_their_marks(tctx) -> None:
    """A flow waiting for its verdict is marked when the proxy still holds it (mitmweb's
    view, a saver); one the proxy has let go (mitmdump keeps none) is not kept alive for it."""
    import gc

    _, addon = tctx
    shown = preflight(f"{B}/a", T0, acao="https://evil.test")
    addon.response(shown)
    addon.response(preflight(f"{B}/b", T0 + 0.1, acao="https://evil.test"))  # let go
    gc.collect()
    assert len(addon._pending) == 2  # both verdicts are still awaited
    assert addon._pending.get("f0") is shown and addon._pending.get("f1") is None
    addon.response(flow("GET", "https://other.test/", T0 + 60, {}))  # settles both
    assert shown.marked == ":no_entry:" and "PreflightAllowOriginMismatch" in shown.comment
    assert "f0" not in addon._pending and "f1" not in addon._pending
    report = addon.report()
    assert report is not None and len(report.exchanges) == 3


@pytest.mark.parametrize(("name", "in_flight"), [
    ("Origin", True), ("origin", True), ("ORIGIN", True),  # HTTP/1 as sent, HTTP/2, odd case
    ("Origin-Trial", False), ("X-Origin", False),
])
def test_a_cors_request_is_in_flight_until_it_finishes(tctx, name: str, in_flight: bool) -> None:
    """A request with an Origin may still pair with a preflight: idle settling waits for it."""
    _, addon = tctx
    f = flow("PUT", f"{B}/z", T0, {name: A})
    f.response = None
    addon.requestheaders(f)
    assert (f.id in addon._in_flight) is in_flight
    f.response = put(f"{B}/z", T0).response
    addon.response(f)
    assert f.id not in addon._in_flight


def test_each_flow_is_fed_once(tctx) -> None:
    _, addon = tctx
    f = put(f"{B}/y", T0)
    addon.response(f)
    addon.error(f)  # a second hook for the same flow must not count it twice
    assert addon._fed == 1 and f.metadata["corsflow.id"] == "f0"


def test_report_explain_and_clear_commands(tctx, tmp_path: Path, caplog) -> None:
    t, addon = tctx
    flows = [preflight(f"{B}/items", T0, acao=A), put(f"{B}/items", T0 + 0.05)]
    for f in flows:
        addon.response(f)
    out = tmp_path / "now.json"
    t.command(addon.write_report, str(out))
    report = json.loads(out.read_text())
    assert [(e["id"], e["role"], e["verdict"]) for e in report["exchanges"]] == [
        ("f0", "preflight", "allowed"), ("f1", "preflighted", "allowed"),
    ]  # fmt: skip
    assert report["exchanges"][1]["preflight_id"] == "f0"
    html = tmp_path / "now.html"
    t.command(addon.write_report, str(html))
    assert html.read_text().lstrip().lower().startswith("<!doctype html")

    with caplog.at_level(logging.INFO, logger="corsflow"):
        addon.explain(flows)  # what `corsflow.explain @all` runs
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert f"f1  PUT {B}/items" in text and "preflight: f0 (cache miss)" in text

    t.command(addon.clear)
    out2 = tmp_path / "cleared.json"
    t.command(addon.write_report, str(out2))
    assert json.loads(out2.read_text())["exchanges"] == []


def test_report_command_reports_an_unwritable_path(tctx, tmp_path: Path) -> None:
    t, addon = tctx
    with pytest.raises(exceptions.CommandError, match="cannot write"):
        t.command(addon.write_report, str(tmp_path / "no" / "such" / "dir.json"))


def test_an_analysis_failure_never_touches_the_flow(tctx, caplog, monkeypatch) -> None:
    _, addon = tctx

    def broken(exchange):
        raise RuntimeError("engine bug")

    monkeypatch.setattr(addon._analysis, "feed", broken)
    flows = [put(f"{B}/z{i}", T0 + i) for i in range(12)]
    before = [(f.request.copy(), f.response.copy()) for f in flows]
    with caplog.at_level(logging.INFO, logger="corsflow"):
        for f in flows:
            addon.response(f)  # must not raise
    for f, (req, resp) in zip(flows, before, strict=True):
        assert f.request.data == req.data and f.response.data == resp.data
        assert f.marked == "" and f.comment == ""
    failures = [r for r in caplog.records if "analysis failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].exc_info is not None  # once, with the traceback
    assert any("same analysis failure 10 times" in r.getMessage() for r in caplog.records)


def test_an_idle_proxy_has_what_is_open_settled_once_per_new_flow(tctx, monkeypatch) -> None:
    """A flow the analysis failed on never settles: the idle proxy does not ask again and
    again for it, only once new flows come."""
    import time

    _, addon = tctx
    real = addon._analysis.feed

    def broken_once(exchange):
        if exchange.id == "f0":
            raise RuntimeError("engine bug")
        return real(exchange)

    monkeypatch.setattr(addon._analysis, "feed", broken_once)
    flushes = []
    flush = addon._flush
    monkeypatch.setattr(addon, "_flush", lambda **kw: (flushes.append(kw), flush(**kw)))
    addon.response(put(f"{B}/a", T0))  # f0: fails, never settles
    addon._last_feed = time.monotonic() - 10  # idle for a while
    addon._tick()
    addon._tick()
    assert len(flushes) == 1
    addon.response(put(f"{B}/b", T0 + 1))  # a new flow, then idle again
    addon._last_feed = time.monotonic() - 10
    addon._tick()
    addon._tick()
    assert len(flushes) == 2 and addon.settled == 1


def test_options_are_checked_while_running(tctx) -> None:
    t, addon = tctx

    async def start() -> None:
        addon.running()  # mitmproxy calls it inside its event loop

    asyncio.run(start())
    with pytest.raises(exceptions.OptionsError, match="corsflow_engine"):
        t.configure(addon, corsflow_engine="netscape")
    with pytest.raises(exceptions.OptionsError, match="corsflow_mark"):
        t.configure(addon, corsflow_mark="not a marker")
    t.configure(addon, corsflow_engine="webkit")
    assert addon.report().engine == "webkit"


def test_someone_elses_mark_is_kept(tctx) -> None:
    _, addon = tctx
    bad = preflight(f"{B}/kept", T0, acao="https://evil.test")
    bad.marked = ":star:"
    addon.response(bad)
    addon.response(flow("GET", "https://other.test/", T0 + 60, {}))
    assert bad.marked == ":star:" and "PreflightAllowOriginMismatch" in bad.comment


class _Updates:
    """Records the flows mitmproxy is told to redraw."""

    def __init__(self) -> None:
        self.flows: list[list[http.HTTPFlow]] = []

    def update(self, flows) -> None:
        self.flows.append(list(flows))


def test_flows_marked_late_are_announced_in_one_update() -> None:
    addon, updates = CorsflowAddon(), _Updates()
    with taddons.context(addon, updates) as t:
        t.configure(addon)
        bad = [preflight(f"{B}/u{i}", T0 + i * 0.01, acao="https://evil.test") for i in range(3)]
        for f in bad:
            addon.response(f)
        addon.response(flow("GET", "https://other.test/", T0 + 60, {}))
        assert all(f.marked == ":no_entry:" for f in bad)
        assert updates.flows == []  # not one update per flow...
        addon._announce()  # ...but one per tick of the addon's timer
        assert [sorted(f.id for f in batch) for batch in updates.flows] == [
            sorted(f.id for f in bad)
        ]


def test_the_report_lists_the_recent_exchanges_and_findings_cover_all() -> None:
    addon = CorsflowAddon()
    with taddons.context(addon) as t:
        t.configure(addon, corsflow_report_exchanges=2)
        for i in range(3):
            addon.response(preflight(f"{B}/k{i}", T0 + i * 0.01, acao="https://evil.test"))
        report = addon.report()
    assert report is not None
    assert [v.exchange.id for v in report.exchanges] == ["f1", "f2"]  # the last two
    assert any("last 2 of 3 exchanges" in note for note in report.notes)
    ids = {i for f in report.findings if f.code == "PreflightAllowOriginMismatch"
           for i in f.exchange_ids}  # fmt: skip
    assert ids == {"f0", "f1", "f2"}


def test_state_stays_bounded_over_a_long_session() -> None:
    """Thousands of flows over many minutes of capture time: what the addon and the
    analysis hold stays bounded by the options and the engine's window, not the session."""
    addon = CorsflowAddon()
    with taddons.context(addon) as t:
        t.configure(addon, corsflow_report_exchanges=100)
        for i in range(1500):
            t_i = T0 + i * 0.5
            addon.response(preflight(f"{B}/items/{i}", t_i, acao=A))
            addon.response(put(f"{B}/items/{i}", t_i + 0.01))
            if i % 100 == 0:
                assert len(addon._recent) <= 100
                assert len(addon._pending) <= 20  # only what the engine's window still holds
                assert addon._analysis.machine.live_state <= 1100  # bounded cache + window
        report = addon.report()
    assert report is not None and len(report.exchanges) == 100
    assert addon._analysis._verdicts == []  # the analysis keeps no exchange itself
    assert addon._fed == 3000 and addon._analysis.settled == 3000


def test_options_changed_while_running_apply_to_the_next_flows() -> None:
    # The addon copies the options it reads for every flow; a change must reach the copy.
    addon = CorsflowAddon()
    with taddons.context(addon) as t:
        t.configure(addon)
        first = preflight(f"{B}/a", T0, acao="https://evil.test/?access_token=s3cret")
        addon.response(first)
        addon.report()  # settles it: marked now
        t.configure(addon, corsflow_mark=":skull:", corsflow_redact=False)
        second = preflight(f"{B}/b", T0 + 5, acao="https://evil.test/?access_token=s3cret")
        addon.response(second)
        addon.report()
        t.configure(addon, corsflow_min_severity="error", corsflow_mark=":x:")
        third = preflight(f"{B}/c", T0 + 10, acao="https://evil.test/")  # an error still
        addon.response(third)
        addon.report()
    assert (first.marked, second.marked, third.marked) == (":no_entry:", ":skull:", ":x:")
    assert "s3cret" not in first.comment and "s3cret" in second.comment


def test_live_runs_hide_asyncio_tracebacks_of_cancelled_connections_only(caplog) -> None:
    # What asyncio logs when mitmproxy cancels an open client connection at shutdown.
    from corsflow.addon import _CancelledCallbacks

    quiet = _CancelledCallbacks()
    logging.getLogger("asyncio").addFilter(quiet)
    loop = asyncio.new_event_loop()
    try:
        with caplog.at_level(logging.ERROR, logger="asyncio"):
            for exc in (asyncio.CancelledError(), RuntimeError("a real failure")):
                loop.call_exception_handler({"message": "Exception in callback cb()",
                                             "exception": exc})
    finally:
        loop.close()
        logging.getLogger("asyncio").removeFilter(quiet)
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [RuntimeError]


def _preflight_without_max_age(url: str, t: float) -> http.HTTPFlow:
    return flow("OPTIONS", url, t,
                {"Origin": A, "Access-Control-Request-Method": "PUT",
                 "Access-Control-Request-Headers": "x-custom"},
                204, {"Access-Control-Allow-Origin": A, "Access-Control-Allow-Methods": "PUT",
                      "Access-Control-Allow-Headers": "x-custom"})  # fmt: skip


@pytest.mark.parametrize("beside", [True, False])
def test_findings_over_many_flows_mark_them_beside_the_proxy_or_in_it(beside: bool) -> None:
    """A missing Max-Age is a finding only many preflights show: it reaches the flows the
    same way whether the analysis runs in a process of its own or in the proxy's."""
    if beside and usable_cores() < 2:
        pytest.skip("the analysis runs beside the proxy only where a second core is free")
    addon = CorsflowAddon()
    flows = [_preflight_without_max_age(f"{B}/items/{i % 3}", T0 + i) for i in range(12)]
    flows += [put(f"{B}/items/{i % 3}", T0 + i + 0.01) for i in range(12)]
    flows.sort(key=lambda f: f.request.timestamp_start)
    with taddons.context(addon) as t:
        t.configure(addon, corsflow_min_severity="info",
                    corsflow_analysis_process=beside)

        async def session() -> None:
            addon.running()
            assert (addon._process is not None) == beside
            for f in flows:
                addon.response(f)
            addon.report()  # settles what is open
            addon._aggregate(now=True)

        try:
            asyncio.run(session())
        finally:
            addon.done()
    assert addon._process is None  # ended with the proxy
    marked = [f for f in flows if "MaxAgeMissing" in f.comment]
    assert {f.request.method for f in marked} == {"OPTIONS"} and len(marked) >= 3
    assert all(f.marked == ":hourglass:" for f in marked)
