"""A real Chromium through mitmdump with the addon: the browser's own preflight and request.

The page on origin A fetches origin B with a custom header, so Chromium sends a preflight
first; the report the addon writes on exit must show both, paired.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from corsflow.addon import addon_path

from .cors_servers import Origins, start_origins

pytestmark = [pytest.mark.mitmproxy, pytest.mark.browser]

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]  # fmt: skip


@pytest.fixture
def origins() -> Iterator[Origins]:
    o = start_origins()
    yield o
    o.close()


def test_chromium_preflight_and_request_are_paired(
    start_mitmdump, origins: Origins, chromium: str, tmp_path: Path
) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    report_path = tmp_path / "report.json"
    m = start_mitmdump(["-s", addon_path(), "--set", f"corsflow_report={report_path}"])
    api = origins.origin_b
    script = (
        f"fetch('{api}/good', {{method: 'PUT', headers: {{'X-Custom': '1'}}, body: 'x'}})"
        ".then(r => r.text()).then(t => document.title = 'done ' + t)"
        ".catch(e => document.title = 'failed ' + e)"
    )
    page_url = f"{origins.origin_a}/page.html?script={quote(script)}"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=[
                *CHROMIUM_ARGS,
                f"--proxy-server=http://127.0.0.1:{m.port}",
                "--proxy-bypass-list=<-loopback>",  # proxy 127.0.0.1 too
            ],
        )
        try:
            page = browser.new_page()
            page.goto(page_url)
            page.wait_for_function("document.title.startsWith('done') || "
                                   "document.title.startsWith('failed')", timeout=20000)  # fmt: skip
            title = page.title()
        finally:
            browser.close()
    log = m.stop()
    assert m.proc.returncode == 0, log
    assert title.startswith("done"), title

    # The server saw Chromium's preflight, then the PUT.
    seen = [(s.method, s.path) for s in origins.seen if s.path == "/good"]
    assert seen == [("OPTIONS", "/good"), ("PUT", "/good")]

    report = json.loads(report_path.read_text())
    by_url = {(e["method"], e["url"]): e for e in report["exchanges"]}
    pf = by_url[("OPTIONS", f"{api}/good")]
    put = by_url[("PUT", f"{api}/good")]
    assert (pf["role"], pf["verdict"], pf["origin"]) == ("preflight", "allowed", origins.origin_a)
    assert (put["role"], put["verdict"]) == ("preflighted", "allowed")
    assert (put["preflight_id"], put["cache"]) == (pf["id"], "miss")
    page = by_url[("GET", page_url)]
    assert page["role"] == "other"  # the navigation is not a CORS request
