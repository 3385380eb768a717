"""The addon in a real mitmdump, between real HTTP clients and a local two-origin server.

The client sends what a browser sends (Origin, Access-Control-Request-Method/-Headers on
preflights, the actual request right after its preflight) through the proxy; the tests read
mitmdump's log, the report the addon writes on exit, the marks and comments it leaves on
the flows, and the flow file ``-w`` saved during the same run.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corsflow.addon import addon_path
from corsflow.analysis import analyze_paths
from corsflow.errors import Diagnostics
from corsflow.ingest.ahead import usable_cores
from corsflow.ingest.mitm import read_flows

from .cors_servers import Origins, start_origins

pytestmark = pytest.mark.mitmproxy

from mitmproxy.io import FlowReader

COLLECTOR = Path(__file__).with_name("flow_collector.py")

# (method, path, kind): the scenario, in order. Flow ids follow it: f0, f1, ...
SCENARIO = [
    ("OPTIONS", "/good", "preflight"),  # f0
    ("PUT", "/good", "actual"),  # f1: paired with f0, cache miss
    ("PUT", "/good", "actual"),  # f2: cache hit on f0 (Max-Age 600)
    ("OPTIONS", "/acao-mismatch", "preflight"),  # f3: fails; the browser sends no request
    ("OPTIONS", "/no-acao-actual", "preflight"),  # f4
    ("PUT", "/no-acao-actual", "actual"),  # f5: its response lacks Allow-Origin
    ("OPTIONS", "/max-age-86400", "preflight"),  # f6: Max-Age above Chromium's cap
    ("PUT", "/max-age-86400", "actual"),  # f7
    ("GET", "/simple-no-acao", "simple"),  # f8: a simple request, no Allow-Origin
    ("GET", "/same-origin.txt", "no-origin"),  # f9: no Origin header: not CORS
]


@pytest.fixture
def origins() -> Iterator[Origins]:
    o = start_origins()
    yield o
    o.close()


def browse(proxy_port: int, o: Origins) -> list[int]:
    """Send the scenario through the proxy on one keep-alive connection, as a browser would."""
    statuses = []
    conn = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=20)
    try:
        for method, path, kind in SCENARIO:
            headers = {"Origin": o.origin_a, "User-Agent": "corsflow-test"}
            body = None
            if kind == "preflight":
                headers["Access-Control-Request-Method"] = "PUT"
                headers["Access-Control-Request-Headers"] = "content-type,x-custom"
            elif kind == "actual":
                headers.update({"X-Custom": "1", "Content-Type": "application/json"})
                body = b'{"n": 1}'
            elif kind == "no-origin":
                del headers["Origin"]
            conn.request(method, o.origin_b + path, body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
    finally:
        conn.close()
    return statuses


def _by_id(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["id"]: e for e in report["exchanges"]}


def _saved(path: Path) -> dict[str, Any]:
    with open(path, "rb") as f:
        return {fl.metadata["corsflow.id"]: fl for fl in FlowReader(f).stream()}


def test_live_session_log_report_marks(start_mitmdump, origins: Origins, tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    collected = tmp_path / "collected.mitm"
    saved = tmp_path / "saved.mitm"
    marked = tmp_path / "marked.mitm"
    m = start_mitmdump([
        "-s", addon_path(), "-s", str(COLLECTOR),
        "--set", f"corsflow_report={report_path}",
        "--set", f"collect_to={collected}",
        "--set", f"corsflow_save={marked}",
        "-w", str(saved),
    ])  # fmt: skip
    statuses = browse(m.port, origins)
    # The failed preflight waits for a request that never comes; once the proxy is idle the
    # addon settles it while mitmdump runs, not only on exit.
    m.wait_for_log("PreflightAllowOriginMismatch")
    log = m.stop()
    assert m.proc.returncode == 0, log
    assert statuses == [204, 200, 200, 204, 204, 200, 204, 200, 200, 200]
    # Every request reached the server: the addon held nothing back.
    assert len(origins.seen) == len(SCENARIO)
    assert "Traceback" not in log and "analysis failed" not in log

    # --- the report written on exit ---
    report = json.loads(report_path.read_text())
    assert report["schema"] == 1 and report["engine"] == "chromium"
    assert report["sources"][0]["format"] == "mitmproxy"
    ex = _by_id(report)
    assert list(ex) == [f"f{i}" for i in range(len(SCENARIO))]
    assert [(e["method"], e["url"]) for e in ex.values()] == [
        (method, origins.origin_b + path) for method, path, _ in SCENARIO
    ]
    assert (ex["f0"]["role"], ex["f0"]["verdict"]) == ("preflight", "allowed")
    assert (ex["f1"]["role"], ex["f1"]["preflight_id"], ex["f1"]["cache"]) == (
        "preflighted",
        "f0",
        "miss",
    )
    assert (ex["f2"]["preflight_id"], ex["f2"]["cache"], ex["f2"]["verdict"]) == (
        "f0",
        "hit",
        "allowed",
    )
    assert (ex["f3"]["verdict"], ex["f3"]["cors_error"]) == (
        "blocked",
        "PreflightAllowOriginMismatch",
    )
    assert (ex["f5"]["verdict"], ex["f5"]["cors_error"]) == ("blocked", "MissingAllowOriginHeader")
    assert ex["f5"]["preflight_id"] == "f4" and ex["f4"]["verdict"] == "allowed"
    assert (ex["f7"]["preflight_id"], ex["f7"]["verdict"]) == ("f6", "allowed")
    assert (ex["f8"]["role"], ex["f8"]["cors_error"]) == ("simple", "MissingAllowOriginHeader")
    assert ex["f9"]["role"] == "other" and ex["f9"]["verdict"] is None
    ids_by_code: dict[str, set[str]] = {}
    for f in report["findings"]:
        ids_by_code.setdefault(f["code"], set()).update(f["exchange_ids"])
    assert ids_by_code["PreflightAllowOriginMismatch"] == {"f3"}
    assert ids_by_code["MaxAgeAboveCap"] == {"f6"}
    assert ids_by_code["MissingAllowOriginHeader"] == {"f5", "f8"}

    # --- one log line per finding: code, method and URL, the fix ---
    b = re.escape(origins.origin_b)
    assert re.search(
        rf"corsflow: error PreflightAllowOriginMismatch OPTIONS {b}/acao-mismatch \[f3\] — fix: "
        rf".*Access-Control-Allow-Origin: {re.escape(origins.origin_a)}",
        log,
    ), log
    assert re.search(
        rf"corsflow: error MissingAllowOriginHeader GET {b}/simple-no-acao \[f8\] — fix:", log
    )
    # A Max-Age above the cap is harmless (the browser clamps it): info, below the log's
    # default level, yet still in the report.
    assert "MaxAgeAboveCap" not in log
    # A request whose preflight passed but whose own response fails is its own finding.
    assert re.search(
        rf"corsflow: error MissingAllowOriginHeader PUT {b}/no-acao-actual \[f5\]", log
    )
    assert "/good [f" not in log  # nothing to say about the good pair

    # --- marks and comments, on the right flows (the collector saved them at exit) ---
    flows = _saved(collected)
    assert flows["f3"].marked == ":no_entry:"
    assert "PreflightAllowOriginMismatch" in flows["f3"].comment and "fix:" in flows["f3"].comment
    assert flows["f5"].marked == ":no_entry:" and "MissingAllowOriginHeader" in flows["f5"].comment
    assert flows["f8"].marked == ":no_entry:"
    # The clamped Max-Age is info (harmless): below the default level, so no mark.
    assert flows["f6"].marked == "" and "MaxAgeAboveCap" not in flows["f6"].comment
    for quiet in ("f0", "f1", "f2", "f4", "f7", "f9"):
        assert flows[quiet].marked == "", quiet
    assert flows["f1"].comment == "corsflow: preflighted, allowed, preflight f0, cache miss"
    assert flows["f2"].comment == "corsflow: preflighted, allowed, preflight f0, cache hit"
    assert flows["f9"].comment == ""  # not a CORS exchange

    # --- corsflow_save: what -w wrote, in its order, but with corsflow's marks ---
    with open(saved, "rb") as f:
        written_by_w = list(FlowReader(f).stream())
    with open(marked, "rb") as f:
        written_marked = list(FlowReader(f).stream())
    assert [fl.id for fl in written_marked] == [fl.id for fl in written_by_w]
    assert written_by_w[3].marked == ""  # -w wrote f3 before its verdict settled
    for fl in written_marked:
        final = flows[fl.metadata["corsflow.id"]]
        assert (fl.marked, fl.comment) == (final.marked, final.comment), fl.metadata
    assert f"corsflow: {len(SCENARIO)} flows saved to {marked}" in log

    # --- the flow file saved by -w in the same run reads back as the same exchanges ---
    d = Diagnostics()
    offline = list(read_flows(str(saved), d))
    assert d.skipped_count == 0
    assert [e.id for e in offline] == list(ex)
    for e in offline:
        live = ex[e.id]
        assert (e.method, e.url, e.status, e.started) == (
            live["method"], live["url"], live["status"], pytest.approx(live["started"])
        )  # fmt: skip
    # ... and the offline analysis of it reaches the live verdicts.
    offline_report = analyze_paths([str(saved)])
    for v in offline_report.exchanges:
        live = ex[v.exchange.id]
        assert (v.role, v.verdict, v.cors_error, v.preflight_id, v.cache) == (
            live["role"], live["verdict"], live["cors_error"], live["preflight_id"], live["cache"]
        )  # fmt: skip


def test_minimum_severity_and_engine_options(
    start_mitmdump, origins: Origins, tmp_path: Path
) -> None:
    report_path = tmp_path / "report.json"
    m = start_mitmdump([
        "-s", addon_path(),
        "--set", "corsflow_min_severity=error",
        "--set", "corsflow_engine=firefox",
        "--set", f"corsflow_report={report_path}",
    ])  # fmt: skip
    browse(m.port, origins)
    log = m.stop()
    assert m.proc.returncode == 0, log
    assert "corsflow: firefox model, findings from error up; proxy at 127.0.0.1:" in log
    assert "PreflightAllowOriginMismatch" in log
    assert "MaxAge" not in log  # a warning: below the minimum severity
    report = json.loads(report_path.read_text())
    assert report["engine"] == "firefox"
    # Firefox caps Max-Age at 86400 s: the value is not above its cap.
    assert "MaxAgeAboveCap" not in {f["code"] for f in report["findings"]}


def test_bad_option_values_stop_mitmdump_with_a_clear_message(
    mitmdump: str, tmp_path: Path
) -> None:
    import subprocess

    for option, expected in (
        ("corsflow_engine=netscape", "corsflow_engine"),
        ("corsflow_mark=:not_an_emoji:", "corsflow_mark"),
        (f"corsflow_report={tmp_path}/missing/dir/r.json", "does not exist"),
    ):
        done = subprocess.run(
            [mitmdump, "-n", "-s", addon_path(), "--set", option],
            check=False, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode != 0
        assert expected in done.stdout + done.stderr
        assert "Traceback" not in done.stdout + done.stderr


def _analysis_processes(pid: int) -> list[int]:
    """The addon's analysis processes among a process's children (from /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        for child in task.read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"corsflow.live_process" in command:
                found.append(int(child))
    return found


def _wait_for_analysis_process(pid: int, timeout: float = 15.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = _analysis_processes(pid)
        if children:
            return children[0]
        time.sleep(0.05)
    raise AssertionError("no analysis process started")


def _essentials(report: dict[str, Any]) -> tuple[object, ...]:
    """What a report concludes, without the times that differ from run to run."""
    exchanges = [(e["id"], e["role"], e["verdict"], e["cors_error"], e["preflight_id"],
                  e["cache"]) for e in report["exchanges"]]
    findings = sorted((f["code"], f["severity"], tuple(f["exchange_ids"]))
                      for f in report["findings"])
    counts = {k: v for k, v in report["summary"].items() if k.startswith("by_")}
    return tuple(exchanges), tuple(findings), json.dumps(counts, sort_keys=True)


@pytest.mark.skipif(usable_cores() < 2, reason="the analysis runs beside the proxy only "
                    "where a second core is free")
def test_the_analysis_beside_the_proxy_agrees_with_one_process(
    start_mitmdump, origins: Origins, tmp_path: Path
) -> None:
    """By default the analysis runs in a process of its own; the log, the report, the marks
    and the comments are those of the analysis in the proxy's own process."""
    seen = {}
    for beside in (True, False):
        report_path = tmp_path / f"report-{beside}.json"
        collected = tmp_path / f"collected-{beside}.mitm"
        m = start_mitmdump([
            "-s", addon_path(), "-s", str(COLLECTOR),
            "--set", f"corsflow_analysis_process={str(beside).lower()}",
            "--set", f"corsflow_report={report_path}",
            "--set", f"collect_to={collected}",
        ], name=f"mitmdump-{beside}")  # fmt: skip
        statuses = browse(m.port, origins)
        m.wait_for_log("PreflightAllowOriginMismatch")
        children = _analysis_processes(m.proc.pid)
        assert len(children) == (1 if beside else 0)
        log = m.stop()
        assert m.proc.returncode == 0 and "Traceback" not in log, log
        for child in children:  # ended with the proxy, and waited for
            assert not Path(f"/proc/{child}").exists()
        lines = sorted(line.split("] ", 1)[-1] for line in log.splitlines()
                       if "corsflow: error" in line or "corsflow: warning" in line)
        flows = {i: (f.marked, f.comment) for i, f in _saved(collected).items()}
        report = json.loads(report_path.read_text())
        seen[beside] = (statuses, lines, flows, _essentials(report))
    for part, (a, b) in enumerate(zip(seen[True], seen[False])):
        assert a == b, part
    assert len(seen[True][1]) == 3 and seen[True][2]["f3"][0] == ":no_entry:"


@pytest.mark.skipif(usable_cores() < 2, reason="the analysis runs beside the proxy only "
                    "where a second core is free")
def test_the_proxy_goes_on_when_its_analysis_process_dies(
    start_mitmdump, origins: Origins, tmp_path: Path
) -> None:
    report_path = tmp_path / "report.json"
    m = start_mitmdump(["-s", addon_path(), "--set", f"corsflow_report={report_path}"])
    os.kill(_wait_for_analysis_process(m.proc.pid), signal.SIGKILL)
    m.wait_for_log("the analysis process stopped")
    statuses = browse(m.port, origins)
    m.wait_for_log("PreflightAllowOriginMismatch")
    log = m.stop()
    assert m.proc.returncode == 0, log
    assert statuses == [204, 200, 200, 204, 204, 200, 204, 200, 200, 200]
    assert "analysing in the proxy from now on" in log
    ex = _by_id(json.loads(report_path.read_text()))
    assert list(ex) == [f"f{i}" for i in range(len(SCENARIO))]  # every flow still analysed
    assert (ex["f1"]["preflight_id"], ex["f1"]["verdict"]) == ("f0", "allowed")


def test_idle_settling_waits_for_cors_requests_in_flight(
    start_mitmdump, origins: Origins, tmp_path: Path
) -> None:
    """A slow actual request is still in flight when the proxy has been idle for a while:
    its preflight must wait for it, not be settled alone."""
    report_path = tmp_path / "report.json"
    m = start_mitmdump(["-s", addon_path(), "--set", f"corsflow_report={report_path}"])
    conn = http.client.HTTPConnection("127.0.0.1", m.port, timeout=20)
    try:
        a, b = origins.origin_a, origins.origin_b
        conn.request("OPTIONS", f"{b}/slow", headers={
            "Origin": a, "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "x-custom"})  # fmt: skip
        conn.getresponse().read()
        conn.request("PUT", f"{b}/slow", body=b"x", headers={"Origin": a, "X-Custom": "1"})
        assert conn.getresponse().read() == b'{"ok": true}'  # after SLOW_SECONDS
    finally:
        conn.close()
    log = m.stop()
    ex = _by_id(json.loads(report_path.read_text()))
    assert (ex["f0"]["role"], ex["f0"]["verdict"]) == ("preflight", "allowed"), log
    assert (ex["f1"]["preflight_id"], ex["f1"]["cache"], ex["f1"]["verdict"]) == (
        "f0", "miss", "allowed",
    )  # fmt: skip


def test_run_live_serves_and_reports(origins: Origins, tmp_path: Path, mitm_confdir: Path) -> None:
    """``run_live`` (behind ``corsflow live``) runs mitmdump in its own process with the addon."""
    import os
    import signal
    import subprocess
    import sys

    from .conftest import REPO_ROOT, Mitmdump, free_port, wait_for_port

    port = free_port()
    report_path = tmp_path / "live.json"
    code = (
        "import logging, sys; from corsflow.addon import run_live; "
        "logging.basicConfig(format='DUPLICATE %(message)s'); "  # as a CLI would
        f"sys.exit(run_live('127.0.0.1', {port}, {str(report_path)!r}, 'webkit', "
        f"['--set', 'confdir={mitm_confdir}']))"
    )
    log_path = tmp_path / "run_live.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT,
            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        )  # fmt: skip
    m = Mitmdump(proc, port, log_path)
    try:
        wait_for_port(port, proc)
        browse(port, origins)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    log = m.log()
    assert proc.returncode == 0, log
    assert "corsflow: webkit model" in log
    assert "client connect" not in log  # run_live keeps mitmdump's own lines out
    assert "PreflightAllowOriginMismatch" in log  # but shows corsflow's
    assert "DUPLICATE" not in log  # once each, by mitmdump
    report = json.loads(report_path.read_text())
    assert report["engine"] == "webkit" and len(report["exchanges"]) == len(SCENARIO)


def test_run_live_returns_mitmdumps_failure(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from .conftest import REPO_ROOT

    code = "import sys; from corsflow.addon import run_live; sys.exit(run_live(engine='netscape'))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
    )  # fmt: skip
    assert done.returncode == 1
    assert "corsflow_engine: 'netscape' is not one of" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_replaying_a_saved_file_through_the_addon(mitmdump: str, tmp_path: Path) -> None:
    """``mitmdump -n -r FILE -s addon``: the addon sees the saved flows as if live."""
    import subprocess

    from .conftest import corpus_file

    source = corpus_file("mitmproxy-flowfmt18-http-and-tcp.mitm")
    report_path = tmp_path / "replay.json"
    done = subprocess.run(
        [mitmdump, "-n", "-r", str(source), "-s", addon_path(),
         "--set", f"corsflow_report={report_path}"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(report_path.read_text())
    offline = list(read_flows(str(source), Diagnostics()))
    # The same exchanges, numbered alike: the tcp flows take numbers 4 and 5 in both. The
    # report redacts URL tokens (a session id here), as every output does by default.
    from corsflow.redact import redact_text

    assert report["redaction"]["applied"] is True
    assert [(e["id"], e["method"], e["url"]) for e in report["exchanges"]] == [
        (e.id, e.method, redact_text(e.url)) for e in offline
    ]
