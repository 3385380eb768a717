"""The live addon's report opens with the changes too (it renders with the same code)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from tests.conftest import missing

pytestmark = pytest.mark.mitmproxy

A = "https://app.test"
B = "https://api.test"
T0 = 1_700_000_000.0


def test_addon_report_lists_the_change_that_fixes_a_blocked_header(tmp_path: Path) -> None:
    if importlib.util.find_spec("mitmproxy") is None:
        missing("mitmproxy is not installed (pip install 'corsflow[mitmproxy]')")
    from mitmproxy import http
    from mitmproxy.test import taddons, tflow, tutils

    from corsflow.addon import CorsflowAddon

    def flow(method: str, url: str, t: float, headers: dict[str, str],
             response_headers: dict[str, str], status: int = 204) -> http.HTTPFlow:
        f = tflow.tflow(resp=True)
        f.request = tutils.treq(method=method.encode(), headers=http.Headers())
        f.request.url = url
        for name, value in headers.items():
            f.request.headers[name] = value
        f.request.timestamp_start, f.request.timestamp_end = t, t + 0.001
        f.response = tutils.tresp(status_code=status, headers=http.Headers(), content=b"")
        for name, value in response_headers.items():
            f.response.headers[name] = value
        f.response.timestamp_start, f.response.timestamp_end = t + 0.01, t + 0.02
        return f

    addon = CorsflowAddon()
    with taddons.context(addon) as tctx:
        tctx.configure(addon)
        for n, item in enumerate((11, 22, 33)):
            addon.response(flow(
                "OPTIONS", f"{B}/items/{item}", T0 + n,
                {"Origin": A, "Access-Control-Request-Method": "PUT",
                 "Access-Control-Request-Headers": "x-trace-id"},
                {"Access-Control-Allow-Origin": A, "Access-Control-Allow-Methods": "PUT",
                 "Access-Control-Allow-Headers": "content-type"}))
        out = tmp_path / "live.json"
        tctx.command(addon.write_report, str(out))
    report = json.loads(out.read_text())
    (change,) = report["changes"]
    assert change["server"] == B and change["endpoints"] == ["/items/{id}"]
    assert change["action"] == f"add `X-Trace-Id` to Access-Control-Allow-Headers on {B}/items/{{id}}"
    assert len(change["fixes"]) == 3
    (finding,) = report["findings"]
    assert finding["url"] == f"{B}/items/{{id}}" and finding["count"] == 3
