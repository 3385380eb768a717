from __future__ import annotations

import csv
import io
import re
import threading

import pytest

from corsflow.analysis import Report
from corsflow.report.text import CSV_FIELDS, render_csv, render_markdown, render_text, write_text

ANSI = re.compile(r"\x1b\[")


def test_plain_text_has_no_ansi_and_no_trailing_blanks(report: Report) -> None:
    text = render_text(report, color=False, width=100)
    assert not ANSI.search(text)
    assert all(line == line.rstrip() for line in text.splitlines())
    assert all(len(line) <= 100 for line in text.splitlines())


def test_colour_text_has_ansi(report: Report) -> None:
    assert ANSI.search(render_text(report, color=True, width=100))


def test_header_names_source_engine_and_counts(report: Report) -> None:
    head = render_text(report, color=False, width=200).splitlines()[:3]
    assert "chromium engine" in head[0] and "captures/session.har" in head[0]
    assert (
        "13 exchanges: 7 cross-origin requests (6 preflighted, 1 simple), 5 preflights" in head[1]
    )
    assert "1 blocked" in head[1]
    assert head[2] == "findings: 1 error, 2 warnings, 2 info"


def test_failures_come_first_with_reason_step_and_fix(report: Report) -> None:
    text = render_text(report, color=False, width=200)
    # The origin with a failure is shown before the busier origin without one.
    assert text.index("▌ https://admin.example.org") < text.index("▌ https://app.example.com")
    admin = text[
        text.index("▌ https://admin.example.org") : text.index("▌ https://app.example.com")
    ]
    assert admin.index("Failures") < admin.index("Findings") < admin.index("Endpoints")
    assert "blocked: PreflightMissingAllowOriginHeader" in admin
    assert "failed check: CORS check: Access-Control-Allow-Origin: header absent" in admin
    assert "preflight e9 answered 404" in admin
    assert "fix: Answer OPTIONS /v1/admin/users/{id} with 2xx" in admin
    # The clamped Max-Age is reported for the origin that received it.
    assert "86400 clamped to 7200 s" in admin


def test_origin_sections_show_max_age_redundant_and_endpoints(report: Report) -> None:
    text = render_text(report, color=False, width=200)
    app = text[text.index("▌ https://app.example.com") :]
    assert "5 requests · 3 preflights · 1 cache hit · 0 blocked · 2 avoidable" in app
    assert "Max-Age sent: absent (cached 5 s) ×2; 600 s ×1" in app
    assert "MaxAgeMissing" in app and "fix: Send Access-Control-Max-Age: 7200" in app
    assert (
        "e7 https://api.example.net/v1/items/43" in app and "cause: devtools-disable-cache" in app
    )
    assert "https://api.example.net/v1/items/{id}" in app
    assert "4 requests · 3 preflights (335 ms) · 1 cache hit · 2 avoidable" in app


def test_diagnostics_last(report: Report) -> None:
    text = render_text(report, color=False, width=200)
    tail = text[text.index("Diagnostics") :]
    assert "1 × request has no URL  (captures/session.har entry 13)" in tail
    assert "note: Preflights marked Pragma: no-cache" in tail


def test_empty_report(empty: Report) -> None:
    text = render_text(empty, color=False)
    assert "No cross-origin requests in this capture." in text
    assert "findings: none" in text


def test_terminal_escape_sequences_in_capture_are_neutralised(hostile_report: Report) -> None:
    from dataclasses import replace

    v = hostile_report.exchanges[1]
    evil = replace(v, exchange=replace(v.exchange, url="https://x.example/\x1b]0;pwned\x07\x1b[2J"))
    report = replace(hostile_report, exchanges=(hostile_report.exchanges[0], evil))
    for color in (False, True):
        text = render_text(report, color=color, width=120)
        assert "\x07" not in text and "\x1b]0;" not in text and "\x1b[2J" not in text
        assert "\\x1b]0;pwned\\x07" in text


def test_write_text_to_a_pipe_is_plain(report: Report, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    stream = io.StringIO()
    write_text(report, stream)
    assert stream.getvalue() == render_text(report, color=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    stream = io.StringIO()
    write_text(report, stream)
    assert ANSI.search(stream.getvalue())


def test_markdown_shape(report: Report) -> None:
    text = render_markdown(report)
    assert text.startswith("# CORS report\n")
    for heading in ("## Findings", "## Failures", "## Origins", "## Endpoints", "## Diagnostics"):
        assert f"\n{heading}\n" in text
    findings = text[text.index("## Findings") : text.index("## Failures")]
    rows = [line for line in findings.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(report.findings)  # header + one per finding
    assert all(row.count(" | ") == 5 for row in rows)  # six columns each, no stray pipes
    assert rows[1].startswith("| error | PreflightMissingAllowOriginHeader |")
    assert "{id}" in text and "\\_" not in "".join(rows[1:2])


def _md_html(text: str) -> str:
    """The Markdown as a CommonMark renderer with GFM tables shows it."""
    from markdown_it import MarkdownIt

    return str(MarkdownIt("commonmark").enable("table").render(text))


def test_markdown_escapes_capture_values(hostile_report: Report) -> None:
    html = _md_html(render_markdown(hostile_report))
    # Captured text is shown, never rendered: no element from it, no link or image.
    assert "<script" not in html and "<img" not in html and "<a " not in html
    assert "&lt;script&gt;" in html
    table = html[html.index("<table>") : html.index("</table>")]
    rows = table.split("<tr>")[1:]
    assert len(rows) == 2
    # A pipe in a capture value stays inside its cell: six cells per row.
    assert all(row.count("<td") + row.count("<th") == 6 for row in rows)


def test_csv_one_row_per_exchange_with_contract_fields(report: Report) -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(report))))
    assert len(rows) == len(report.exchanges)
    assert tuple(rows[0].keys()) == CSV_FIELDS
    for name in (
        "id",
        "method",
        "url",
        "origin",
        "started",
        "status",
        "role",
        "verdict",
        "cors_error",
        "preflight_id",
        "cache",
        "redundant",
    ):
        assert name in CSV_FIELDS
    by_id = {r["id"]: r for r in rows}
    assert [r["id"] for r in rows] == [v.exchange.id for v in report.exchanges]
    assert by_id["e4"]["preflight_id"] == "e1" and by_id["e4"]["cache"] == "hit"
    assert by_id["e7"]["redundant"] == "true" and by_id["e1"]["redundant"] == "false"
    assert (
        by_id["e10"]["status"] == ""
        and by_id["e10"]["cors_error"] == "PreflightMissingAllowOriginHeader"
    )
    assert float(by_id["e2"]["started"]) == report.get("e2").exchange.started  # type: ignore[union-attr]
    assert by_id["e2"]["endpoint"] == "https://api.example.net/v1/items/{id}"


def test_csv_neutralises_formulas(hostile_report: Report) -> None:
    from dataclasses import replace

    v = hostile_report.exchanges[1]
    evil = replace(
        v, origin='=HYPERLINK("http://x")', exchange=replace(v.exchange, method="+SUM(A1)")
    )
    report = replace(hostile_report, exchanges=(evil,))
    row = next(csv.DictReader(io.StringIO(render_csv(report))))
    assert row["origin"] == '\'=HYPERLINK("http://x")'
    assert row["method"] == "'+SUM(A1)"


def test_write_text_to_a_terminal_is_coloured_and_fits_its_width(
    report: Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    pty = pytest.importorskip("pty")
    import fcntl
    import os
    import struct
    import termios

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 72, 0, 0))
    chunks: list[bytes] = []

    def drain() -> None:  # read while writing, so a full pty buffer cannot block the writer
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO once the terminal side is closed
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    with os.fdopen(slave, "w", encoding="utf-8") as terminal:
        write_text(report, terminal)
    reader.join(timeout=10)
    os.close(master)
    plain = render_text(report, color=False, width=72)
    shown = b"".join(chunks).decode("utf-8").replace("\r\n", "\n")
    assert ANSI.search(shown)
    stripped = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    assert max(len(line) for line in stripped.splitlines()) <= 72
    assert [line.rstrip() for line in stripped.splitlines()] == plain.splitlines()


def test_markdown_stays_short_on_many_endpoints(report: Report) -> None:
    from dataclasses import replace

    simple = report.get("e3")
    assert simple is not None
    many = tuple(
        replace(
            simple,
            exchange=replace(
                simple.exchange,
                id=f"x{i}",
                url=f"https://api.example.net/v1/feed-{chr(97 + i % 26)}{chr(97 + i // 26)}",
            ),
        )
        for i in range(60)
    )
    text = render_markdown(replace(report, exchanges=report.exchanges + many))
    endpoints = text[text.index("## Endpoints") :]
    assert len([line for line in endpoints.splitlines() if line.startswith("| ` https://")]) == 50
    assert "… and 14 more endpoints (the CSV or JSON report has them all)." in endpoints
