"""The mitmproxy addon: security findings logged while the proxy runs, and secrets kept out
of its log lines, flow comments and report files unless ``corsflow_redact`` is off."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from mitmproxy import http
from mitmproxy.test import taddons, tflow, tutils

from corsflow.addon import CorsflowAddon

pytestmark = pytest.mark.mitmproxy

API = "https://api.test/me?access_token=SECRETTOKEN"
FOREIGN = ("https://evil.attacker.test", "https://www.unrelated.test", "https://x.third.test")


def _echoed(origin: str, t: float) -> http.HTTPFlow:
    f = tflow.tflow(resp=True)
    f.request = tutils.treq(method=b"GET", headers=http.Headers())
    f.request.url = API
    f.request.headers["Origin"] = origin
    f.request.headers["Cookie"] = "sid=COOKIESECRET"
    f.request.timestamp_start, f.request.timestamp_end = t, t + 0.001
    f.response = tutils.tresp(status_code=200, headers=http.Headers(), content=b"")
    f.response.headers["Access-Control-Allow-Origin"] = origin
    f.response.headers["Access-Control-Allow-Credentials"] = "true"
    f.response.timestamp_start, f.response.timestamp_end = t + 0.01, t + 0.02
    return f


@pytest.mark.parametrize("redact", [True, False])
def test_reflection_logged_live_and_secrets_kept_out(redact: bool, tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    addon = CorsflowAddon()
    with taddons.context(addon) as tctx:
        tctx.configure(addon, corsflow_redact=redact)
        flows = [_echoed(o, 1_700_000_000.0 + i) for i, o in enumerate(FOREIGN)]
        with caplog.at_level(logging.INFO, logger="corsflow"):
            for f in flows:
                addon.response(f)
            addon._flush()
            addon._aggregate(now=True)
        out = tmp_path / "live.json"
        tctx.command(addon.write_report, str(out))
    logs = "\n".join(r.getMessage() for r in caplog.records)
    report = out.read_text()
    assert "OriginReflected" in logs and "OriginReflected" in report
    codes = {f["code"]: f for f in json.loads(report)["findings"]}
    assert codes["OriginReflected"]["category"] == "security"
    shown = logs + report + "".join(f.comment for f in flows)
    assert ("SECRETTOKEN" in shown) is not redact
    assert "COOKIESECRET" not in logs  # header values are never logged at all
