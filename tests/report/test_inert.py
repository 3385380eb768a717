"""Captured text is data in every output: no terminal control, no live Markdown, no formula.

The capture puts the same hostile payload into every captured field the reports show:
ANSI colour, a window-title OSC, a one-byte C1 CSI that clears the screen, a forged line,
bidi overrides, and Markdown that would link, embed an image and mention someone.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from pathlib import Path

import pytest

from corsflow.analysis import analyze_paths
from corsflow.cli import main
from corsflow.report.inert import csv_cell, md_code, visible
from corsflow.report.text import render_markdown, render_text

TERM = "\x1b[31mRED\x1b[0m\x1b]0;TITLE\x07\x9b2J\u202e\r\nFAKE LINE"
MD = "[click](https://evil.example/) ![x](https://evil.example/p.png) @octocat <b>b</b> *e*"
PAYLOAD = TERM + " " + MD
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture(scope="module")
def hostile_har(tmp_path_factory: pytest.TempPathFactory) -> Path:
    def entry(n: int, method: str, url: str, req: list[tuple[str, str]], status: int,
              resp: list[tuple[str, str]]) -> dict[str, object]:
        return {"startedDateTime": f"2024-01-01T00:00:0{n}.000Z", "time": 10,
                "request": {"method": method, "url": url, "httpVersion": "HTTP/1.1",
                            "headers": [{"name": k, "value": v} for k, v in req]},
                "response": {"status": status, "statusText": PAYLOAD, "httpVersion": "HTTP/1.1",
                             "headers": [{"name": k, "value": v} for k, v in resp]},
                "timings": {"send": 1, "wait": 5, "receive": 4}}

    origin = "http://page.example" + PAYLOAD
    entries = [
        entry(0, "OPTIONS", "http://api.example/i" + PAYLOAD,
              [("Origin", origin), ("Access-Control-Request-Method", "PUT" + PAYLOAD),
               ("Access-Control-Request-Headers", "x-a" + PAYLOAD)],
              204, [("Access-Control-Allow-Origin", "http://other" + PAYLOAD),
                    ("Access-Control-Allow-Methods", "PUT" + PAYLOAD),
                    ("Access-Control-Max-Age", PAYLOAD)]),
        entry(1, "GET", "http://api.example/g" + PAYLOAD, [("Origin", origin)],
              200, [("Access-Control-Allow-Origin", "=HYPERLINK(\"https://evil\")" + PAYLOAD)]),
        entry(2, "GET", "http://api.example/h", [("Origin", "=cmd|' /C calc'!A0")],
              200, [("Access-Control-Allow-Origin", "*")]),
    ]
    path = tmp_path_factory.mktemp("inert") / "hostile.har"
    path.write_text(json.dumps({"log": {"version": "1.2", "creator": {"name": PAYLOAD},
                                        "entries": entries}}))
    return path


def _terminal_safe(text: str) -> None:
    assert RAW_CONTROL.search(text) is None, repr(RAW_CONTROL.search(text))
    assert not [ln for ln in text.splitlines() if ln.lstrip().startswith("FAKE LINE")]


@pytest.mark.parametrize("color", [False, True])
def test_text_report(hostile_har: Path, color: bool) -> None:
    text = render_text(analyze_paths([str(hostile_har)]), color=color, width=120)
    if color:  # the report's own colours are there; the capture's are not
        text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    _terminal_safe(text)
    assert "\\x1b]0;TITLE\\x07\\x9b2J\\u202e\\r\\nFAKE LINE" in text


def test_check_stderr_and_explain(hostile_har: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(hostile_har), "--fail-on", "warning"]) == 1
    err = capsys.readouterr().err
    _terminal_safe(err)
    assert err.count("corsflow check: ") >= 2
    assert main(["explain", str(hostile_har), "--url", "api.example"]) == 0
    out = capsys.readouterr().out
    _terminal_safe(out)
    assert "\\x1b[31mRED" in out


def test_markdown_renders_captured_text_as_text(hostile_har: Path) -> None:
    from markdown_it import MarkdownIt

    text = render_markdown(analyze_paths([str(hostile_har)]))
    _terminal_safe(text)
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert "<a " not in html and "<img" not in html and "<b>" not in html and "<em>" not in html
    # Every mention, link and image text from the capture sits inside a code element, where
    # no renderer (GitHub's mentions and autolinks included) turns it into anything.
    outside = re.sub(r"<code>.*?</code>", "", html, flags=re.DOTALL)
    assert "@octocat" not in outside and "evil.example" not in outside
    assert html.count("@octocat") >= 3
    # One list item per failure: the capture's newline forged none.
    failures = html[html.index("<h2>Failures</h2>"):html.index("<h2>Origins</h2>")]
    assert failures.count("<li>") == failures.count("</li>")
    assert "FAKE LINE" not in re.sub(r"<code>.*?</code>", "", failures, flags=re.DOTALL)


def test_csv_cells_are_no_formulas(hostile_har: Path) -> None:
    from corsflow.report.text import render_csv

    text = render_csv(analyze_paths([str(hostile_har)]))
    _terminal_safe(text)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 3  # no captured newline split a row
    for row in rows:
        for value in row.values():
            assert not value.lstrip(" ").startswith(("=", "+", "-", "@")), value
    assert rows[2]["origin"] == "'=cmd|' /C calc'!A0"
    assert rows[1]["failed_parameter"].startswith("'=HYPERLINK(")


def test_addon_log_line(caplog: pytest.LogCaptureFixture) -> None:
    pytest.importorskip("mitmproxy")
    from corsflow.addon import _finding_line, _log_finding
    from corsflow.engine.events import Finding

    f = Finding("AllowOriginMismatch", "error", "blocked: GET " + PAYLOAD, ("e1",),
                hint="send " + PAYLOAD, url="https://api.example/x?access_token=SECRET")
    with caplog.at_level(logging.INFO, logger="corsflow.addon"):
        _log_finding(f, {})
    (record,) = caplog.records
    line = record.getMessage()
    assert RAW_CONTROL.search(line) is None and "\n" not in line and "SECRET" not in line
    assert "\n" not in _finding_line(f) and RAW_CONTROL.search(_finding_line(f)) is None


@pytest.mark.parametrize("value, shown", [
    ("a\x1bb", "a\\x1bb"), ("l1\nl2", "l1\\nl2"), ("\x9b2J", "\\x9b2J"), ("\u202egnp", "\\u202egnp"),
    ("plain ✓ text", "plain ✓ text"),
])
def test_visible(value: str, shown: str) -> None:
    assert visible(value) == shown


def test_md_code_fences_backticks() -> None:
    assert md_code("a`b") == "`` a`b ``"
    assert md_code("x|y") == "` x\\|y `"
    assert md_code("x|y", in_table=False) == "` x|y `"
    assert md_code("") == ""


@pytest.mark.parametrize("value, cell", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@SUM(A1)", "'@SUM(A1)"),
    ("  =1", "'  =1"), ("\uff1d1", "'\uff1d1"), ("https://a.example", "https://a.example"),
    (None, ""), (True, "true"),
])
def test_csv_cell(value: object, cell: str) -> None:
    assert csv_cell(value) == cell
