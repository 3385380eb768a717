"""The disagreements random differential runs found (:func:`.scenarios_random.repro_scenarios`),
run again in each real browser: corsflow's report of the pcap agrees with what the browser did,
except where the answer depends on what no capture shows, and there the report says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import missing

from .captures import CaptureUnavailable
from .drivers import DriverUnavailable
from .harness import CHROMIUM
from .scenarios_random import repro_scenarios, run_batch
from .test_capture_reports import lost_segments

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MODE_DEPENDENT = "repro-both-modes-fail"
"""A credentialed PUT whose preflight (403, Allow-Origin ``*``) fails with and without
credentials, for different reasons; with no request after it the capture cannot show the
mode, so corsflow reports the uncredentialed reason and names the other (where they differ:
WebKit checks the status first, so they do not)."""


def _preflight_of(report: dict[str, Any], scenario: str) -> dict[str, Any]:
    return next(e for e in report["exchanges"]
                if f"/s/{scenario}" in e["url"] and e["role"] == "preflight")


@pytest.mark.parametrize("engine", ["chromium", "firefox", "webkit"])
def test_repros_agree_with_the_browser(engine: str, tmp_path: Path, tshark: str) -> None:
    if engine == "chromium" and not Path(CHROMIUM).exists():
        missing(f"{CHROMIUM} is not installed (Debian package 'chromium')")
    try:
        session, report, found = run_batch(engine, repro_scenarios(), tmp_path)
    except (CaptureUnavailable, DriverUnavailable) as e:
        missing(str(e))
        raise
    assert len(session.steps) == sum(len(s.steps) for s in repro_scenarios())
    if found and lost_segments(tshark, tmp_path / "session.pcap"):
        # tcpdump dropped packets (tshark says so, not corsflow): what they carried may be
        # missing or unknown, never called otherwise than the browser did; the report says so.
        assert any("never showed up" in n for n in report["summary"]["notes"])
        found = [f for f in found if not (
            (f.d.field == "present" and f.d.report == "missing from the report")
            or (f.d.field == "verdict" and f.d.report == "unknown"))]
    left = sorted({(f.d.scenario, f.d.field, f.d.chromium, f.d.report) for f in found})
    if engine == "chromium":
        # Chromium reports the credentialed reason; the capture cannot show the mode.
        assert left in ([], [(MODE_DEPENDENT, "cors_error", "PreflightWildcardOriginNotAllowed",
                              "PreflightInvalidStatus")])
    else:
        assert left == []
    pre = _preflight_of(report, MODE_DEPENDENT)
    if pre["verdict"] == "unknown" and lost_segments(tshark, tmp_path / "session.pcap"):
        # Its response was among the packets tcpdump dropped: unknown, and why.
        assert "capture gap" in (pre["unknown_reason"] or "")
        return
    assert (pre["verdict"], pre["credentials"]) == ("blocked", "unknown")
    named = any("PreflightWildcardOriginNotAllowed" in step["detail"] for step in pre["trace"])
    # WebKit checks the status before Allow-Origin: the same reason in both modes.
    assert named == (engine != "webkit")


def test_repros_agree_with_chromiums_netlog(tmp_path: Path) -> None:
    """The same reproductions read from Chromium's own NetLog, whose reader has its own
    ways to get a redirect wrong."""
    if not Path(CHROMIUM).exists():
        missing(f"{CHROMIUM} is not installed (Debian package 'chromium')")
    session, report, found = run_batch("chromium", repro_scenarios(), tmp_path, "netlog")
    assert len(session.steps) == sum(len(s.steps) for s in repro_scenarios())
    left = sorted({(f.d.scenario, f.d.field, f.d.chromium, f.d.report) for f in found})
    assert left in ([], [(MODE_DEPENDENT, "cors_error", "PreflightWildcardOriginNotAllowed",
                          "PreflightInvalidStatus")])
    assert not [f for f in report["findings"] if f["code"] == "ModelDisagreement"]
