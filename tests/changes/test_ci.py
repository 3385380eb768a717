"""`corsflow check` for CI: baseline, ignored codes, severities; SARIF, JUnit and GitHub
annotations; `explain --format json`."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from corsflow.analysis import Report
from corsflow.cli import main
from corsflow.engine.events import Finding
from corsflow.report.ci import fingerprint, render_github, select
from corsflow.report.json import render_json

from . import session

HAR = "session.har"


@pytest.fixture
def capture(tmp_path: Path) -> str:
    """The test session written as a HAR file (the CLI reads files)."""
    entries = []
    for ex in session.build():
        response = ex.response
        entries.append({
            "startedDateTime": _iso(ex.started),
            "time": ex.timings.total if ex.timings and ex.timings.total else 1,
            "request": {"method": ex.method, "url": ex.url, "httpVersion": "HTTP/1.1",
                        "headers": [{"name": n, "value": v} for n, v in ex.request_headers],
                        "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0},
            "response": {"status": response.status if response else 0,
                         "statusText": "", "httpVersion": "HTTP/1.1",
                         "headers": [{"name": n, "value": v} for n, v in
                                     (response.headers if response else ())],
                         "cookies": [], "content": {"size": 0, "mimeType": ""},
                         "redirectURL": "", "headersSize": -1, "bodySize": 0,
                         **({"_error": ex.failure} if ex.failure else {})},
            "cache": {}, "timings": {"send": 0, "wait": 1, "receive": 0},
        })
    path = tmp_path / HAR
    path.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": "test"},
                                        "entries": entries}}))
    return str(path)


def _iso(t: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(t, datetime.UTC).isoformat().replace("+00:00", "Z")


def test_check_sarif(capture: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "check.sarif"
    assert main(["check", capture, "--format", "sarif", "-o", str(out)]) == 1
    log = json.loads(out.read_text())
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    run = log["runs"][0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    for result in run["results"]:
        assert rules[result["ruleIndex"]] == result["ruleId"]
        assert result["level"] in ("error", "warning", "note")
        assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == capture
        assert result["partialFingerprints"]["corsflowFinding/v1"]
    assert "HeaderDisallowedByPreflightResponse" in rules
    assert "check failed" in capsys.readouterr().err


def test_check_junit_and_github(capture: str, tmp_path: Path) -> None:
    out = tmp_path / "check.xml"
    assert main(["check", capture, "--format", "junit", "-o", str(out)]) == 1
    root = ET.parse(out).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    failures = suite.findall("testcase/failure")
    assert int(suite.get("failures", "0")) == len(failures) == 3  # the three errors
    gh = tmp_path / "gh.txt"
    assert main(["check", capture, "--format", "github", "-o", str(gh)]) == 1
    lines = gh.read_text().splitlines()
    assert sum(line.startswith("::error ") for line in lines) == 3
    assert all("\n" not in line and "::" in line[2:] for line in lines)


def test_github_annotations_escape_captured_text() -> None:
    report = session.report()
    evil = Finding("RequestBlocked", "error", "50% done\n::error::injected", ("e1",),
                   origin="https://a.example", url="https://a.example/x,y:z")
    out = render_github(report, select([evil]))
    assert out.count("\n") == 1 and "%0A::error::injected" in out and "50%25" in out


def test_baseline_ignore_and_min_severity(capture: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "baseline.json"
    assert main(["analyze", capture, "--format", "json", "-o", str(baseline)]) == 0
    # Nothing is new against its own report.
    assert main(["check", capture, "--baseline", str(baseline), "--fail-on", "warning"]) == 0
    assert "0 new finding(s) at level warning or above (4 more in the baseline)" in \
        capsys.readouterr().err
    # A baseline without one of the findings: that one fails.
    data = json.loads(baseline.read_text())
    data["findings"] = [f for f in data["findings"] if f["code"] != "PreflightMissingAllowOriginHeader"]
    baseline.write_text(json.dumps(data))
    assert main(["check", capture, "--baseline", str(baseline)]) == 1
    err = capsys.readouterr().err
    assert "PreflightMissingAllowOriginHeader" in err and "HeaderDisallowed" not in err
    # Ignoring the error codes passes at level error; warnings still fail at warning.
    ignore = ["--ignore", "HeaderDisallowedByPreflightResponse", "--ignore",
              "PreflightMissingAllowOriginHeader", "--ignore", "MissingAllowOriginHeader"]
    assert main(["check", capture, *ignore]) == 0
    assert main(["check", capture, *ignore, "--fail-on", "warning"]) == 1
    assert main(["check", capture, "--ignore", "NoSuchCode"]) == 2
    assert main(["check", capture, "--baseline", str(tmp_path / "missing.json")]) == 2
    out = tmp_path / "min.sarif"
    main(["check", capture, "--min-severity", "warning", "--format", "sarif", "-o", str(out)])
    levels = {r["level"] for r in json.loads(out.read_text())["runs"][0]["results"]}
    assert "note" not in levels and levels


def test_fingerprints_ignore_counts() -> None:
    assert fingerprint("A", "o", "u", "4 preflights were repeated") == \
        fingerprint("A", "o", "u", "12 preflights were repeated")
    assert fingerprint("A", "o", "u", "x") != fingerprint("B", "o", "u", "x")


def test_explain_json(capture: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["explain", capture, "--id", "e2", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    (item,) = data["exchanges"]
    assert item["exchange"]["id"] == "e2" and item["exchange"]["verdict"] == "blocked"
    assert item["exchange"]["trace"]
    assert any(f["code"] == "HeaderDisallowedByPreflightResponse" for f in item["findings"])
    assert item["changes"] and "X-Trace-Id" in item["changes"][0]["action"]
    assert main(["explain", capture, "--id", "nope", "--format", "json"]) == 2


def test_analyze_all_and_filters(capture: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", capture, "--code", "MaxAgeMissing"]) == 0
    out = capsys.readouterr().out
    assert "MaxAgeMissing" in out and "HeaderDisallowedByPreflightResponse  " not in out
    assert main(["analyze", capture, "--all", "--url", "/v2/search"]) == 0
    out = capsys.readouterr().out
    assert "/v2/search" in out and "/v1/charges" not in out


def test_json_report_changes_roundtrip(capture: str) -> None:
    report: Report = session.report()
    data = json.loads(render_json(report))
    assert data["schema"] == 1 and isinstance(data["changes"], list)
