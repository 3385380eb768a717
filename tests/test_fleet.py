"""Fleets: each capture its own session, analysed in parallel; the same answer whatever the
workers (in-process, local processes, a real Dask LocalCluster), damaged files counted."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from corsflow.analysis import analyze_paths
from corsflow.api import load_fleet
from corsflow.fleet import analyze_fleet, analyze_session

from .conftest import SAMPLES

SESSIONS = ("chromium-session.har", "chromium-session.pcap", "loopback-cors.pcap",
            "chromium-playwright.har")


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Twelve sessions (each sample three times over) and one damaged file."""
    d = tmp_path_factory.mktemp("fleet")
    for copy in range(3):
        for name in SESSIONS:
            stem, suffix = name.rsplit(".", 1)
            shutil.copy(SAMPLES / name, d / f"{stem}-{copy}.{suffix}")
    (d / "sub").mkdir()
    (d / "sub" / "damaged.har").write_bytes(b'{"log": {"entries": [ {"request": 7')
    (d / "notes.txt").write_text("not a capture")  # not a capture suffix: not taken
    return d


def _paths(d: Path) -> list[str]:
    return sorted(str(p) for p in d.rglob("*") if p.suffix in (".har", ".pcap"))


def test_each_file_is_its_own_session_and_the_damaged_one_is_named(fleet_dir: Path) -> None:
    report = analyze_fleet(_paths(fleet_dir), jobs=1)
    assert len(report.sessions) == 13
    [failed] = report.failed
    assert failed.path.endswith("damaged.har") and failed.error
    assert "damaged.har" in failed.error
    # A session analysed alone and inside the fleet are the same.
    alone = analyze_session(str(SAMPLES / "chromium-session.har"))
    inside = next(s for s in report.sessions if s.path.endswith("chromium-session-0.har"))
    assert (inside.total, inside.findings) == (alone.total, alone.findings)


def test_findings_count_the_sessions_that_raise_them(fleet_dir: Path) -> None:
    report = analyze_fleet(_paths(fleet_dir), jobs=1)
    single = analyze_paths([str(SAMPLES / "chromium-session.har")])
    codes = {f.code for f in single.findings}
    assert codes
    for code in codes:
        fleet = [f for f in report.findings if f.code == code]
        assert fleet, code
        # Every copy of that session raised it: at least 3 sessions, never more than exist.
        assert max(f.sessions for f in fleet) >= 3
        assert all(f.sessions <= 12 for f in fleet)
    per_session = sum(f.count or len(f.exchange_ids) for f in single.findings
                      if f.code == "MaxAgeMissing")
    fleet_count = sum(f.exchanges for f in report.findings if f.code == "MaxAgeMissing"
                      and any("chromium-session-" in p and p.endswith(".har")
                              for p in f.session_paths))
    assert fleet_count >= 3 * per_session > 0


@pytest.mark.slow
def test_same_report_with_1_2_and_4_workers_and_a_local_cluster(fleet_dir: Path) -> None:
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    paths = _paths(fleet_dir)
    serial = analyze_fleet(paths, jobs=1)
    assert analyze_fleet(paths, jobs=2) == serial
    assert analyze_fleet(paths, jobs=4) == serial
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert analyze_fleet(paths, client=client) == serial
        # The notebook API's Dask frames: one partition per readable session, rows on the
        # cluster, totals that agree with the in-memory frames.
        fleet = load_fleet(fleet_dir, client=client)
        exchanges = fleet.dask_exchanges()
        assert exchanges.npartitions == 12
        assert len(exchanges.compute()) == sum(s.exchanges for s in serial.analysed)
        _, totals = fleet.dask_by("endpoints")
        got = totals.compute().sort_index()
        want = fleet.by_endpoint.sort_index()
        assert list(got.index) == list(want.index)
        for col in ("preflights", "requests", "blocked", "sessions"):
            assert got[col].tolist() == want[col].tolist(), col


def test_pandas_frames_add_the_sessions_up(fleet_dir: Path) -> None:
    pytest.importorskip("pandas")
    fleet = load_fleet(fleet_dir, jobs=1)
    assert len(fleet.sessions) == 13
    assert fleet.sessions["error"].notna().sum() == 1
    single = load_fleet(SAMPLES / "chromium-session.har", jobs=1)
    one = single.by_endpoint
    three = fleet.by_endpoint.loc[one.index]
    # The HAR's endpoints appear in its three copies (the pcap of the same session adds more).
    assert (three["preflights"] >= 3 * one["preflights"]).all()
    assert (three["sessions"] >= 3).all()
    assert set(fleet.findings["code"]) >= set(single.findings["code"])


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corsflow", *args], check=False,
                          capture_output=True,
                          text=True, timeout=300)


def test_cli_batch_json_names_each_session_and_the_unreadable_one(fleet_dir: Path) -> None:
    done = _cli("analyze", str(fleet_dir), "--batch", "--jobs", "2", "--format", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    assert doc["schema"] == 1 and doc["fleet"] is True
    assert len(doc["sessions"]) == 13
    assert doc["summary"]["failed"] == 1
    assert [s["path"] for s in doc["sessions"] if s["error"]] == [
        str(fleet_dir / "sub" / "damaged.har")]
    assert all(f["sessions"] >= 1 for f in doc["findings"])


def test_cli_check_batch_fails_on_errors_and_names_sessions(fleet_dir: Path) -> None:
    done = _cli("check", str(fleet_dir), "--batch", "--jobs", "2")
    assert done.returncode == 1
    assert "session(s)" in done.stderr and "unreadable" in done.stderr
    assert "Traceback" not in done.stderr


FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"


def _firefox_session(path: Path) -> Path:
    """A Firefox session: a preflight with Max-Age a day (Firefox keeps it a day, Chromium
    two hours) and its POST."""
    page, url = "https://app.example", "https://api.example/items"

    def entry(method: str, started: str, req: dict[str, str], status: int,
              resp: dict[str, str]) -> dict[str, object]:
        return {"startedDateTime": started, "time": 5,
                "request": {"method": method, "url": url, "httpVersion": "HTTP/1.1",
                            "headers": [{"name": k, "value": v}
                                        for k, v in {**req, "User-Agent": FIREFOX_UA}.items()]},
                "response": {"status": status, "statusText": "", "httpVersion": "HTTP/1.1",
                             "headers": [{"name": k, "value": v} for k, v in resp.items()]},
                "timings": {"send": 1, "wait": 3, "receive": 1}}

    path.write_text(json.dumps({"log": {"entries": [
        entry("OPTIONS", "2026-01-01T00:00:00.000Z",
              {"Origin": page, "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type"}, 204,
              {"Access-Control-Allow-Origin": page, "Access-Control-Allow-Headers": "Content-Type",
               "Access-Control-Max-Age": "86400"}),
        entry("POST", "2026-01-01T00:00:00.100Z",
              {"Origin": page, "Content-Type": "application/json"}, 201,
              {"Access-Control-Allow-Origin": page}),
    ]}}))
    return path


def test_without_an_engine_each_session_is_the_browser_its_capture_shows(
        tmp_path: Path) -> None:
    # One test suite's runs in two browsers: each session modelled as its own browser, so
    # Chromium's two-hour cap is not reported against the Firefox run.
    firefox = _firefox_session(tmp_path / "firefox-run.har")
    chromium = tmp_path / "chromium-run.har"
    shutil.copy(SAMPLES / "chromium-session.har", chromium)
    done = _cli("analyze", str(tmp_path), "--batch", "--jobs", "2", "--format", "json")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    engines = {s["path"]: s["engine"] for s in doc["sessions"]}
    assert engines == {str(chromium): "chromium", str(firefox): "firefox"}
    assert doc["summary"]["engines"] == {"chromium": 1, "firefox": 1}
    assert doc["summary"]["engine_detected"] is True
    capped = [f for f in doc["findings"] if f["code"] == "MaxAgeAboveCap"]
    assert all(str(firefox) not in f["session_paths"] for f in capped)
    assert "engines detected per session: chromium 1, firefox 1" in _cli(
        "analyze", str(tmp_path), "--batch", "--jobs", "1").stdout

    given = json.loads(_cli("analyze", str(tmp_path), "--batch", "--jobs", "2",
                            "--engine", "chromium", "--format", "json").stdout)
    assert {s["engine"] for s in given["sessions"]} == {"chromium"}
    assert given["engine"] == "chromium" and given["summary"]["engine_detected"] is False
    assert any(str(firefox) in f["session_paths"] for f in given["findings"]
               if f["code"] == "MaxAgeAboveCap")
    assert analyze_fleet([str(firefox), str(chromium)], None, jobs=2) == analyze_fleet(
        [str(firefox), str(chromium)], None, jobs=1)


def test_a_worker_keeps_no_memo_of_the_sessions_it_analysed() -> None:
    # A worker analyses thousands of sessions in turn; the URL memos one analysis fills
    # must not pile up across them.
    from corsflow.urls import path_template, url_origin

    analyze_paths([str(SAMPLES / "chromium-session.har")])
    assert url_origin.cache_info().currsize > 0 and path_template.cache_info().currsize > 0
    result = analyze_session(str(SAMPLES / "chromium-session.har"))
    assert result.error is None and result.exchanges > 0
    assert url_origin.cache_info().currsize == 0 and path_template.cache_info().currsize == 0


def test_a_serial_batch_leaves_the_callers_log_level_alone(fleet_dir: Path) -> None:
    """A batch quiets corsflow's warnings while it runs (it counts what was skipped); run in
    the caller's process (one job), it must give the caller its level back."""
    import logging

    logger = logging.getLogger("corsflow")
    before = logger.level
    logger.setLevel(logging.INFO)
    try:
        analyze_fleet(_paths(fleet_dir)[:2], jobs=1)
        assert logger.level == logging.INFO
    finally:
        logger.setLevel(before)
