from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from corsflow.analysis import Report, analyze_paths
from corsflow.report.html import render_html

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "chromium-session.har"


class _Collector(HTMLParser):
    """Every tag, attribute and text node of a page, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Collector:
    c = _Collector()
    c.feed(page)
    return c


def test_self_contained(report: Report) -> None:
    page = render_html(report)
    parsed = _parse(page)
    assert "script" not in parsed.tags and "link" not in parsed.tags and "iframe" not in parsed.tags
    sources = [v for k, v in parsed.attrs if k in ("src", "href") and v is not None]
    assert all(
        s.startswith(("data:image/png;base64,", "#", "https://fetch.spec.whatwg.org/"))
        for s in sources
    )
    assert sum(s.startswith("data:image/png;base64,") for s in sources) == 3  # the three charts
    assert "@import" not in page and "url(" not in page
    assert "default-src 'none'" in page  # a CSP forbids loading anything should escaping ever fail


def test_summary_findings_traces_and_origins(report: Report) -> None:
    page = render_html(report)
    text = " ".join(_parse(page).text)
    for finding in report.findings:
        assert finding.code in text
        if finding.hint:
            assert finding.hint in text
    assert "header absent on the preflight response (status 404)" in text  # a trace step
    assert page.count("<details>") >= len(report.findings)
    assert "https://admin.example.org" in text and "https://api.example.net/v1/items/{id}" in text
    assert "devtools-disable-cache" in text
    assert "request has no URL" in text
    # Findings are ordered most severe first.
    assert text.index("PreflightMissingAllowOriginHeader") < text.index("RedundantPreflight")


def test_capture_values_are_escaped(hostile_report: Report) -> None:
    page = render_html(hostile_report)
    parsed = _parse(page)
    assert parsed.tags.count("script") == 0
    # The only <img> elements are the charts, and no attribute carries an event handler.
    assert parsed.tags.count("img") == 3
    assert all(k not in ("onerror", "onload") for k, _ in parsed.attrs)
    assert not re.search(r"<script", page, re.IGNORECASE)
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#x27;&quot;&amp;" in page
    text = "".join(parsed.text)
    assert '<script>alert("x")</script>\'"&' in text  # shown to the reader, as text
    assert 'https://evil.example"><script>alert(3)</script>' in text


def test_empty_report(empty: Report) -> None:
    text = " ".join(_parse(render_html(empty)).text)
    assert "No findings" in text and "No cross-origin requests in this capture." in text


def _open(browser: object, path: Path, shot: Path) -> tuple[list[str], list[str]]:
    """Load a page; return the console problems and the requests it made; screenshot it."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
    problems: list[str] = []
    requests: list[str] = []
    page.on(
        "console", lambda m: problems.append(m.text) if m.type in ("error", "warning") else None
    )
    page.on("pageerror", lambda err: problems.append(str(err)))
    page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("request", lambda req: requests.append(req.url))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    # The three charts decoded and laid out; nothing scriptable got in.
    widths = page.eval_on_selector_all("figure img", "els => els.map(e => e.naturalWidth)")
    assert len(widths) == 3 and all(w > 300 for w in widths), widths
    assert page.evaluate("document.querySelectorAll('script').length") == 0
    page.eval_on_selector_all("details", "els => els.forEach(e => e.open = true)")
    # Readable at 1280 px: nothing pushes the page wider than the window.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    return problems, requests


@pytest.mark.browser
def test_renders_in_chromium_without_errors_or_requests(
    report: Report, hostile_report: Report, tmp_path: Path, chromium: str
) -> None:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        try:
            pages = [("report", report), ("hostile", hostile_report)]
            if SAMPLE.is_file():
                pages.append(("sample", analyze_paths([str(SAMPLE)])))
            for name, r in pages:
                path = tmp_path / f"{name}.html"
                path.write_text(render_html(r), encoding="utf-8")
                shot = tmp_path / f"{name}.png"
                problems, requests = _open(browser, path, shot)
                assert problems == [], problems
                assert requests == [path.as_uri()], requests
                image = Image.open(shot).convert("L")
                lo, hi = image.getextrema()
                assert hi - lo > 100  # not a blank page
                assert sum(1 for n in image.histogram() if n) > 20  # text, charts, shading
        finally:
            browser.close()
