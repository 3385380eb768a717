"""The command line, run as users run it: a real process, its stdout, stderr and exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, SAMPLES

SESSION_HAR = SAMPLES / "chromium-session.har"

CONTRACT_EXCHANGE = {
    "id": str, "method": str, "url": str, "origin": (str, type(None)), "started": (int, float),
    "status": (int, type(None)), "role": str, "verdict": (str, type(None)),
    "cors_error": (str, type(None)), "preflight_id": (str, type(None)),
    "cache": (str, type(None)), "redundant": (bool, type(None)),
}
CONTRACT_FINDING = {"code": str, "severity": str, "message": str, "exchange_ids": list}


def corsflow(*args: str, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corsflow", *args], check=False,
                          capture_output=True, text=True, cwd=cwd, timeout=120)


def test_analyze_json_follows_the_contract() -> None:
    run = corsflow("analyze", str(SESSION_HAR), "--format", "json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["schema"] == 1 and report["engine"] == "chromium"
    assert report["sources"] == [{"path": str(SESSION_HAR), "format": "har",
                                  "exchanges": len(report["exchanges"]), "skipped": 0}]
    ids = set()
    starts = []
    for ex in report["exchanges"]:
        for field, kind in CONTRACT_EXCHANGE.items():
            assert isinstance(ex[field], kind), (field, ex)
        assert ex["role"] in ("preflight", "preflighted", "simple", "other")
        assert ex["verdict"] in (None, "allowed", "blocked", "unknown")
        assert (ex["verdict"] is None) == (ex["role"] == "other")
        assert ex["cache"] in (None, "hit", "miss")
        if ex["verdict"] == "blocked":
            assert ex["cors_error"]
        ids.add(ex["id"])
        starts.append(ex["started"])
    assert len(ids) == len(report["exchanges"]) and starts == sorted(starts)
    for ex in report["exchanges"]:
        if ex["preflight_id"] is not None:
            assert ex["preflight_id"] in ids and ex["role"] == "preflighted"
    for f in report["findings"]:
        for field, kind in CONTRACT_FINDING.items():
            assert isinstance(f[field], kind), (field, f)
        assert f["severity"] in ("error", "warning", "info")
        assert set(f["exchange_ids"]) <= ids
        assert "\n" not in f["message"]


def test_same_input_same_ids() -> None:
    first = json.loads(corsflow("analyze", str(SESSION_HAR), "--format", "json").stdout)
    second = json.loads(corsflow("analyze", str(SESSION_HAR), "--format", "json").stdout)
    assert [e["id"] for e in first["exchanges"]] == [e["id"] for e in second["exchanges"]]


def test_several_inputs_keep_ids_unique() -> None:
    run = corsflow("analyze", str(SESSION_HAR), str(SESSION_HAR), "--format", "json")
    report = json.loads(run.stdout)
    ids = [e["id"] for e in report["exchanges"]]
    assert len(ids) == len(set(ids)) and {i.split(":")[0] for i in ids} == {"1", "2"}


def test_check_fails_on_errors_and_passes_on_clean_input(tmp_path: Path) -> None:
    run = corsflow("check", str(SESSION_HAR), "--fail-on", "error")
    assert run.returncode == 1
    assert "check failed" in run.stderr
    clean = tmp_path / "clean.har"
    clean.write_text(json.dumps({"log": {"version": "1.2", "entries": [{
        "startedDateTime": "2026-01-01T00:00:00Z", "time": 10,
        "request": {"method": "GET", "url": "https://api.example/x", "httpVersion": "HTTP/1.1",
                    "headers": [{"name": "Origin", "value": "https://app.example"}]},
        "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1",
                     "headers": [{"name": "Access-Control-Allow-Origin", "value": "*"}]},
        "timings": {"send": 1, "wait": 8, "receive": 1}}]}}))
    run = corsflow("check", str(clean), "--fail-on", "warning")
    assert run.returncode == 0, run.stderr
    assert "check passed" in run.stderr


def test_explain_prints_the_decision_trace() -> None:
    report = json.loads(corsflow("analyze", str(SESSION_HAR), "--format", "json").stdout)
    blocked = next(e for e in report["exchanges"] if e["verdict"] == "blocked")
    run = corsflow("explain", str(SESSION_HAR), "--id", blocked["id"])
    assert run.returncode == 0, run.stderr
    assert blocked["cors_error"] in run.stdout
    assert "FAIL" in run.stdout and "decision:" in run.stdout
    run = corsflow("explain", str(SESSION_HAR), "--id", "nope")
    assert run.returncode == 2 and "no exchange with id 'nope'" in run.stderr


@pytest.mark.parametrize("content,expected", [
    (b"", "the file is empty"),
    (b"hello world, not a capture", "not a HAR, NetLog, pcap, pcapng or mitmproxy flow file"),
    (b'{"log": {"entries": [{"request": ', "x.har"),
])
def test_bad_input_is_one_line_exit_2(tmp_path: Path, content: bytes, expected: str) -> None:
    bad = tmp_path / "x.har"
    bad.write_bytes(content)
    run = corsflow("analyze", str(bad))
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in run.stderr


def test_missing_file(tmp_path: Path) -> None:
    run = corsflow("analyze", str(tmp_path / "absent.har"))
    assert run.returncode == 2 and "cannot open" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_corpus_invalid_har(corpus: Path) -> None:
    run = corsflow("analyze", str(corpus / "har" / "invalid-not-json.har"))
    assert run.returncode == 2 and "invalid-not-json.har" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_every_output_format_renders() -> None:
    for fmt, marker in (("text", "chromium"), ("markdown", "#"), ("csv", "id,"),
                        ("html", "<html")):
        run = corsflow("analyze", str(SESSION_HAR), "--format", fmt)
        assert run.returncode == 0, (fmt, run.stderr)
        assert marker in run.stdout, fmt


def _entry(method: str, url: str, started: str, req: dict[str, str], status: int,
           resp: dict[str, str]) -> dict[str, object]:
    return {"startedDateTime": started, "time": 5,
            "request": {"method": method, "url": url, "httpVersion": "HTTP/1.1",
                        "headers": [{"name": k, "value": v} for k, v in req.items()]},
            "response": {"status": status, "statusText": "", "httpVersion": "HTTP/1.1",
                         "headers": [{"name": k, "value": v} for k, v in resp.items()]},
            "timings": {"send": 1, "wait": 3, "receive": 1}}


def test_engine_choice_changes_the_cap(tmp_path: Path) -> None:
    page, url = "https://app.example", "https://api.example/items"
    har = tmp_path / "post.har"
    har.write_text(json.dumps({"log": {"entries": [
        _entry("OPTIONS", url, "2026-01-01T00:00:00.000Z",
               {"Origin": page, "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type"}, 204,
               {"Access-Control-Allow-Origin": page, "Access-Control-Allow-Headers": "Content-Type",
                "Access-Control-Max-Age": "86400"}),
        _entry("POST", url, "2026-01-01T00:00:00.100Z",
               {"Origin": page, "Content-Type": "application/json"}, 201,
               {"Access-Control-Allow-Origin": page}),
    ]}}))
    seen = {}
    for engine in ("chromium", "firefox", "webkit"):
        report = json.loads(corsflow("analyze", str(har), "--format", "json",
                                     "--engine", engine).stdout)
        assert report["engine"] == engine
        preflight, post = report["exchanges"]
        assert (post["preflight_id"], post["verdict"]) == (preflight["id"], "allowed")
        codes = {f["code"] for f in report["findings"]}
        seen[engine] = (preflight["max_age"]["effective"], "MaxAgeAboveCap" in codes)
    assert seen == {"chromium": (7200.0, True), "firefox": (86400.0, False),
                    "webkit": (600.0, True)}


FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:140.0) Gecko/20100101 Firefox/140.0"


def _firefox_har(tmp_path: Path, n: int) -> Path:
    """``n`` Firefox GETs one second apart, the second entry damaged (no request)."""
    page, url = "https://app.example", "https://api.example/items"
    entries: list[object] = [
        _entry("GET", f"{url}?{i}", f"2026-01-01T00:{i // 60:02}:{i % 60:02}.000Z",
               {"Origin": page, "User-Agent": FIREFOX_UA}, 200,
               {"Access-Control-Allow-Origin": page})
        for i in range(n)]
    entries[1] = {"startedDateTime": "2026-01-01T00:00:01.000Z", "time": 1}
    har = tmp_path / "firefox.har"
    har.write_text(json.dumps({"log": {"entries": entries}}))
    return har


def test_the_engine_is_told_by_the_capture_read_once(tmp_path: Path) -> None:
    # More entries than the sample that decides the engine: the ones held while it was
    # chosen are analysed like the rest, and the damaged one is reported once, not once
    # for the look at the start and again for the analysis.
    har = _firefox_har(tmp_path, 700)
    run = corsflow("analyze", str(har), "--format", "json")
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["engine"] == "firefox"
    assert len(report["exchanges"]) == 699
    assert [e["url"].rsplit("?", 1)[1] for e in report["exchanges"]] == [
        str(i) for i in range(700) if i != 1]
    assert report["sources"][0]["skipped"] == 1
    assert run.stderr.count("skipped:") == 1, run.stderr
    text = corsflow("analyze", str(har)).stdout
    assert "note: engine firefox, detected from the capture: User-Agent of all requests" in text


def test_an_engine_the_capture_contradicts_is_warned_of_once(tmp_path: Path) -> None:
    har = _firefox_har(tmp_path, 3)
    run = corsflow("analyze", str(har), "--format", "json", "--engine", "webkit")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["engine"] == "webkit"
    assert run.stderr.count("--engine webkit, but the capture was made by firefox") == 1
    assert "note: engine" not in corsflow("analyze", str(har), "--engine", "webkit").stdout


def test_a_streamed_report_models_the_engine_the_capture_shows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    # Large inputs get their report written as verdicts settle, so the engine is chosen from
    # a look at the start of the file before the analysis; the same choice and warning.
    from corsflow import cli

    monkeypatch.setattr(cli, "STREAM_ABOVE", 0)
    har = _firefox_har(tmp_path, 3)
    assert cli.main(["analyze", str(har), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["engine"] == "firefox"
    assert cli.main(["analyze", str(har), "--format", "json", "--engine", "webkit"]) == 0
    assert json.loads(capsys.readouterr().out)["engine"] == "webkit"
    warned = [r for r in caplog.records
              if r.getMessage().startswith("--engine webkit, but the capture was made by firefox")]
    assert len(warned) == 1


def test_report_written_to_a_file_has_no_colour_codes(tmp_path: Path) -> None:
    out = tmp_path / "report.txt"
    run = corsflow("analyze", str(SESSION_HAR), "-o", str(out))
    assert run.returncode == 0 and run.stdout == ""
    assert "\x1b[" not in out.read_text() and "chromium" in out.read_text()


def _large_har(path: Path) -> None:
    """A HAR over the progress threshold: a few entries with large (ignored) bodies."""
    body = "x" * (1024 * 1024)
    entries = [dict(_entry("GET", f"https://api.example/{i}", "2026-01-01T00:00:00Z",
                           {"Origin": "https://app.example"}, 200,
                           {"Access-Control-Allow-Origin": "*"}),
                    response={"status": 200, "statusText": "", "httpVersion": "HTTP/1.1",
                              "headers": [], "content": {"size": len(body), "text": body}})
               for i in range(22)]
    path.write_text(json.dumps({"log": {"entries": entries}}))


def test_progress_on_a_terminal_only(tmp_path: Path) -> None:
    import os
    import pty

    har = tmp_path / "large.har"
    _large_har(har)
    piped = corsflow("analyze", str(har), "-o", str(tmp_path / "a.txt"))
    assert piped.returncode == 0 and piped.stderr == ""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "corsflow", "analyze", str(har), "-o",
                             str(tmp_path / "b.txt")], stdin=follower, stdout=follower,
                            stderr=follower, cwd=REPO_ROOT)
    os.close(follower)
    seen = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    assert proc.wait(timeout=60) == 0
    assert b"large.har: 22 exchanges" in seen


@pytest.mark.parametrize("args", [
    ("-q", "--engine", "firefox", "--format", "json", "analyze", "{har}"),
    ("analyze", "{har}", "-q", "--engine", "firefox", "--format", "json"),
    ("--format", "json", "analyze", "{har}", "--engine", "firefox", "-q"),
])
def test_global_options_before_or_after_the_command(args: tuple[str, ...]) -> None:
    run = corsflow(*(a.format(har=SESSION_HAR) for a in args))
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["engine"] == "firefox"


def test_a_format_the_command_does_not_take_is_refused_in_either_place() -> None:
    for args in (("--format", "none", "analyze", str(SESSION_HAR)),
                 ("analyze", str(SESSION_HAR), "--format", "none")):
        run = corsflow(*args)
        assert run.returncode == 2 and "invalid choice" in run.stderr, run.stderr
        assert "Traceback" not in run.stderr


def test_every_option_help_says_its_default() -> None:
    for command in ("analyze", "check", "live"):
        run = corsflow(command, "--help")
        assert run.returncode == 0
        text = " ".join(run.stdout.split())
        for option in ("--engine", "--format", "--report", "--browser", "--web", "--jobs"):
            if f"{option} " in text or f"{option}=" in text:
                block = text.split(option, 2)[-1][:400]
                assert "default" in block, (command, option, block)


def test_live_refuses_a_report_name_it_would_not_honour(tmp_path: Path) -> None:
    run = corsflow("live", "--report", str(tmp_path / "cors.txt"))
    assert run.returncode == 2
    assert run.stderr.strip().endswith("give a name ending in one of them"), run.stderr
    assert not (tmp_path / "cors.txt").exists()


def test_main_in_process_gives_back_the_collectors_settings(capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI tunes the cycle collector for itself; a caller (a notebook, a test run) keeps
    its own settings and sees nothing of the CLI's frozen start-up heap afterwards."""
    import gc

    from corsflow.cli import main

    before = gc.get_threshold()
    assert main(["analyze", str(SAMPLES / "chromium-session.har"), "--format", "json"]) in (0, 1)
    assert json.loads(capsys.readouterr().out)["exchanges"]
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_full_disk_is_told_in_one_line_not_as_a_bug() -> None:
    with open("/dev/full", "w") as full:
        run = subprocess.run([sys.executable, "-m", "corsflow", "analyze", str(SESSION_HAR)],
                             stdout=full, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT,
                             timeout=120, check=False)
    assert run.returncode == 2
    assert run.stderr == ("corsflow: error: standard output: cannot write: No space left on "
                          "device\n")


def test_a_reader_that_goes_away_is_not_an_error() -> None:
    proc = subprocess.Popen([sys.executable, "-m", "corsflow", "analyze", str(SESSION_HAR),
                             "--format", "json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=REPO_ROOT)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.read(10) == b'{"schema":'
    proc.stdout.close()  # like `| head -c 10`
    assert proc.wait(timeout=120) == 0
    assert proc.stderr.read() == b""


def test_the_command_still_runs_what_waits_for_exit() -> None:
    # The command skips freeing its heap at exit, not the exit handlers (logging's, pools').
    code = ("import atexit, sys\n"
            "atexit.register(lambda: print('handler ran', file=sys.stderr))\n"
            "sys.argv = ['corsflow', 'analyze', sys.argv[1], '--format', 'json']\n"
            "from corsflow.cli import command\n"
            "command()\n")
    run = subprocess.run([sys.executable, "-c", code, str(SESSION_HAR)], capture_output=True,
                         text=True, cwd=REPO_ROOT, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stderr == "handler ran\n"
    assert json.loads(run.stdout)["schema"] == 1
