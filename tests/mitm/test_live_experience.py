"""The everyday live session: warnings while the proxy runs, the summary on exit, the live
report page in a real Chromium, and `corsflow live --browser` intercepting HTTPS."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from corsflow.addon import addon_path

from .conftest import REPO_ROOT, free_port, wait_for_port
from .cors_servers import Origins, start_origins
from .test_mitm_addon_live import browse

pytestmark = pytest.mark.mitmproxy

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


@pytest.fixture
def origins() -> Iterator[Origins]:
    o = start_origins()
    yield o
    o.close()


def test_many_flow_warnings_are_logged_live_and_a_summary_on_exit(
        start_mitmdump, origins: Origins, tmp_path: Path) -> None:
    report = tmp_path / "live.json"
    m = start_mitmdump(["-s", addon_path(), "--set", f"corsflow_report={report}"])
    browse(m.port, origins)
    # MaxAgeAboveCap comes from one preflight; MaxAgeMissing-style findings need many flows:
    # the scenario's Max-Age 86400 is logged while mitmdump still runs.
    m.wait_for_log("MaxAgeAboveCap", timeout=20)
    m.wait_for_log("HTTPS")  # the start-up hint
    log = m.stop()
    assert m.proc.returncode == 0, log
    summary = [ln for ln in log.splitlines() if "cross-origin request(s)" in ln]
    assert len(summary) == 1, log
    doc = json.loads(report.read_text())
    requests = sum(1 for e in doc["exchanges"] if e["role"] in ("preflighted", "simple"))
    assert f"corsflow: {requests} cross-origin request(s)" in summary[0]
    assert "to change:" in log and "MissingAllowOriginHeader" in log
    assert f"report written to {report}" in log


def test_live_page_shows_new_findings_without_a_reload(
        start_mitmdump, origins: Origins, chromium: str, tmp_path: Path) -> None:
    from playwright import sync_api

    web = free_port()
    m = start_mitmdump(["-s", addon_path(), "--set", f"corsflow_web_port={web}"])
    m.wait_for_log(f"live report at http://127.0.0.1:{web}/")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            page.goto(f"http://127.0.0.1:{web}/")
            assert "PreflightAllowOriginMismatch" not in page.content()
            page.evaluate("window.corsflowMarker = 'still the same page'")
            browse(m.port, origins)
            # Polled from here: the page's CSP (rightly) forbids the eval a JS predicate needs.
            deadline = time.monotonic() + 20
            while "PreflightAllowOriginMismatch" not in page.inner_text("body"):
                assert time.monotonic() < deadline, page.inner_text("body")
                time.sleep(0.25)
            # The same document: the content changed in place, nothing reloaded it.
            assert page.evaluate("window.corsflowMarker") == "still the same page"
            assert "MissingAllowOriginHeader" in page.inner_text("body")
            # The page's policy let its one script run and nothing else (no CSP errors).
            assert not [e for e in errors if "Content Security Policy" in e], errors
        finally:
            browser.close()
    log = m.stop()
    assert m.proc.returncode == 0, log


def test_live_browser_intercepts_https_and_stops_with_the_browser(
        chromium: str, tmp_path: Path, mitm_confdir: Path) -> None:
    tls = start_origins(tls_dir=tmp_path)
    try:
        api = tls.origin_b
        script = (f"fetch('{api}/good', {{method: 'PUT', headers: {{'X-Custom': '1'}}, "
                  "body: 'x'}).then(r => r.text()).then(t => document.title = 'done')")
        url = f"{tls.origin_a}/page.html?script={quote(script)}"
        port, report = free_port(), tmp_path / "live.json"
        log_path = tmp_path / "live.log"
        with open(log_path, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "corsflow", "live", "--listen-port", str(port),
                 "--browser", chromium, "--url", url, "--report", str(report),
                 "--browser-arg=--headless=new", "--browser-arg=--no-sandbox",
                 "--browser-arg=--disable-gpu",
                 "--", "--set", "ssl_insecure=true", "--set", f"confdir={mitm_confdir}"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, start_new_session=True)
        try:
            wait_for_port(port, proc)
            deadline = time.monotonic() + 40
            while not any((s.method, s.path) == ("PUT", "/good") for s in tls.seen):
                assert time.monotonic() < deadline, log_path.read_text()
                assert proc.poll() is None, log_path.read_text()
                time.sleep(0.2)
            started = re.search(r"started \S+ \(pid (\d+)\)", log_path.read_text())
            assert started, log_path.read_text()
            # Closing the browser ends the session: the proxy stops and writes its report.
            os.kill(int(started.group(1)), signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log_path.read_text()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    finally:
        tls.close()
    log = log_path.read_text()
    assert "the browser closed" in log and "Traceback" not in log
    doc = json.loads(report.read_text())
    by = {(e["method"], e["url"]): e for e in doc["exchanges"]}
    preflight, put = by[("OPTIONS", f"{api}/good")], by[("PUT", f"{api}/good")]
    assert api.startswith("https://")
    assert (preflight["role"], preflight["verdict"]) == ("preflight", "allowed")
    assert (put["role"], put["verdict"], put["preflight_id"]) == (
        "preflighted", "allowed", preflight["id"])
