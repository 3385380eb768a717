"""JSON and CSV reports written as verdicts settle: the same bytes as an in-memory report,
with memory that follows what is live."""

from __future__ import annotations

from pathlib import Path

import pytest

from corsflow.analysis import Analysis, analyze_paths
from corsflow.cli import main
from corsflow.engine.events import ExchangeVerdict
from corsflow.report.json import render_json
from corsflow.report.text import render_csv
from corsflow.streamed import streamed_report
from tests.conftest import CORPUS, SAMPLES
from tests.factories import API, PAGE, exchange, preflight

CASES = [
    [SAMPLES / "chromium-session.har"],
    [SAMPLES / "chromium-session.pcap"],
    # Two sessions, merged by time and analysed apart.
    [SAMPLES / "chromium-session.pcap", SAMPLES / "chromium-playwright.har",
     SAMPLES / "chromium-session.har"],
    # Real captures: many exchanges starting at the same millisecond; a preflight 503.
    [CORPUS / "har" / "webpagetest-17.12-expressen-odd-httpversion.har"],
    [CORPUS / "har" / "webpagetest-2.17-nytimes-preflight-503.har"],
]


@pytest.mark.parametrize("paths", CASES, ids=lambda ps: "+".join(p.name for p in ps))
def test_streamed_reports_are_the_in_memory_ones(paths: list[Path]) -> None:
    if not all(p.exists() for p in paths):
        pytest.skip("the shared corpus is not beside the repository")
    names = [str(p) for p in paths]
    kept = analyze_paths(names)
    for fmt, render in (("json", render_json), ("csv", render_csv)):
        report, chunks = streamed_report(names, fmt)
        assert b"".join(chunks).decode() == render(kept)
        assert report.exchanges == () and report.counts is not None
        assert report.counts.exchanges == len(kept.exchanges)


def test_cli_json_and_csv_are_the_library_reports(tmp_path: Path) -> None:
    # The CLI spools inputs of STREAM_ABOVE bytes and more; whichever way, the bytes are the
    # library's report (the streamed one is compared with it above).
    har = str(SAMPLES / "chromium-session.har")
    out = tmp_path / "r.json"
    fixed = ["--engine", "chromium", "--no-redact"]
    assert main(["analyze", har, "--format", "json", "-o", str(out), *fixed]) == 0
    assert out.read_text(encoding="utf-8") == render_json(analyze_paths([har]))
    assert main(["analyze", har, "--format", "csv", "-o", str(tmp_path / "r.csv"), *fixed]) == 0
    assert (tmp_path / "r.csv").read_text(encoding="utf-8") == render_csv(analyze_paths([har]))


def test_verdicts_held_stay_bounded_by_what_is_live() -> None:
    """6,000 exchanges over half an hour of capture time, a preflighted request each second and
    an unanswered preflight now and then: the sink gets every verdict in time order and the
    analysis holds only those an unsettled exchange still precedes."""
    written: list[ExchangeVerdict] = []
    analysis = Analysis("chromium", sink=written.append)
    held = 0
    allow = {"Access-Control-Allow-Origin": PAGE, "Access-Control-Allow-Methods": "PUT",
             "Access-Control-Allow-Headers": "x-a", "Access-Control-Max-Age": "0"}
    n = 0
    for second in range(2000):
        t = 1_700_000_000.0 + second
        url = f"{API}/items/{second % 50}"
        batch = [preflight(n, url, "PUT", "x-a", started=t, allow=allow),
                 exchange(n + 1, "PUT", url, {"Origin": PAGE, "X-A": "1"}, started=t + 0.01,
                          response_headers={"Access-Control-Allow-Origin": PAGE}),
                 exchange(n + 2, "GET", f"{API}/ping", {"Origin": PAGE}, started=t + 0.5,
                          response_headers={"Access-Control-Allow-Origin": "*"})]
        if second % 100 == 0:  # a preflight with no request: waits 30 s to settle
            batch.append(preflight(n + 3, f"{API}/lost", "DELETE", started=t + 0.7,
                                   allow=allow))
        for x in batch:
            analysis.feed(x)
            held = max(held, analysis.held_verdicts)
        n += 4
    analysis.flush()
    report = analysis.report()
    assert analysis.held_verdicts == 0 and report.exchanges == ()
    assert len(written) == report.counts.exchanges == 2000 * 3 + 20  # type: ignore[union-attr]
    starts = [(v.exchange.started, v.exchange.id) for v in written]
    assert starts == sorted(starts)
    # A waiting preflight holds back what settled after it: ~30 s of traffic, not 6,000.
    assert held < 200
