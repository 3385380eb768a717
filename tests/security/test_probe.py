"""``corsflow probe`` against the flawed Flask API on 127.0.0.1: it sends one request per
origin named, to the URL named only, and the passive review judges the answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corsflow.cli import main

from .flawed_app import SEEN, serve

FOREIGN = ("https://evil.attacker.test", "https://www.unrelated.test", "https://x.third.test")


def test_probe_finds_reflection(capsys: pytest.CaptureFixture[str]) -> None:
    with serve() as port:
        args = ["probe", f"http://127.0.0.1:{port}/api/reflect"]
        for o in FOREIGN:
            args += ["--origin", o]
        before = len(SEEN)
        assert main(args) == 0
        # Exactly what was asked: one GET per origin, to the path named.
        assert SEEN[before:] == [("GET", "/api/reflect", o) for o in FOREIGN]
    out = capsys.readouterr().out
    assert out.count(": GET -> 200, echoed") == 3
    assert "error OriginReflected" in out
    assert "access-control-allow-credentials: true" in out


def test_probe_preflight_and_a_right_server(capsys: pytest.CaptureFixture[str]) -> None:
    with serve() as port:
        url = f"http://127.0.0.1:{port}/api/good"
        args = ["probe", url, "--preflight", "PUT", "--request-header", "X-Custom"]
        for o in (*FOREIGN, "http://app.example.test"):
            args += ["--origin", o]
        assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count(": OPTIONS -> 204, not allowed") == 3
    assert "http://app.example.test: OPTIONS -> 204, echoed" in out
    assert "nothing found" in out


def test_probe_sends_nothing_unless_asked(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["probe", "http://127.0.0.1:9/x"])  # no --origin: argparse refuses
    assert main(["probe", "ftp://127.0.0.1/x", "--origin", "https://a.test"]) == 2
    assert main(["probe", "http://u:p@127.0.0.1:9/x", "--origin", "https://a.test"]) == 2
    err = capsys.readouterr().err
    assert "http:// or https://" in err and "no credentials in the URL" in err


def test_probe_replays_a_captured_preflight(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    with serve() as port:
        url = f"http://127.0.0.1:{port}/api/creds-star"
        entry = {"startedDateTime": "2024-01-01T00:00:00.000Z", "time": 5,
                 "request": {"method": "OPTIONS", "url": url, "httpVersion": "HTTP/1.1",
                             "headers": [{"name": "Origin", "value": "https://app.example.test"},
                                         {"name": "Access-Control-Request-Method",
                                          "value": "PUT"},
                                         {"name": "Access-Control-Request-Headers",
                                          "value": "x-custom"}]},
                 "response": {"status": 204, "statusText": "", "httpVersion": "HTTP/1.1",
                              "headers": []}, "timings": {"wait": 5}}
        har = tmp_path / "captured.har"
        har.write_text(json.dumps({"log": {"version": "1.2", "entries": [entry]}}))
        before = len(SEEN)
        assert main(["probe", url, "--replay", str(har), "--id", "e0",
                     "--origin", "http://app.example.test"]) == 0
        assert SEEN[before:] == [("OPTIONS", "/api/creds-star", "http://app.example.test")]
        other = f"http://localhost:{port}/api/creds-star"
        assert main(["probe", other, "--replay", str(har), "--id", "e0",
                     "--origin", "http://app.example.test"]) == 2
        assert len(SEEN) == before + 1  # refused: nothing sent
    out, err = capsys.readouterr()
    assert "OPTIONS -> 204, echoed" in out
    assert "access-control-allow-methods: *" in out
    assert "WildcardIgnoredWithCredentials" in out
    assert "name the URL on that server" in err
