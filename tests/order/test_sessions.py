"""Which files make one session: the plan, and what the analysis does with it."""

from __future__ import annotations

import itertools
from pathlib import Path

from corsflow.analysis import analyze_paths
from corsflow.cli import main
from corsflow.sessions import FileScan, plan_sessions
from tests.conftest import SAMPLES

from .verdicts import load_har, verdicts, write_har

T0 = 1_700_000_000.0


def scan(path: str, first: float, last: float, agents: tuple[str, ...] = ("Chrome",),
         number: int = 0) -> FileScan:
    return FileScan(path, number, "har", T0 + first, T0 + last, 10, frozenset(agents), True)


def paths(plan: object) -> list[list[str]]:
    return [[s.path for s in group] for group in plan.sessions]  # type: ignore[attr-defined]


def test_pieces_of_one_capture_are_one_session_in_any_order() -> None:
    pieces = [scan("a", 0, 600), scan("b", 600, 1200), scan("c", 1201, 1800)]
    for order in itertools.permutations(pieces):
        plan = plan_sessions(list(order), 7200)
        assert paths(plan) == [["a", "b", "c"]] and plan.notes == ()


def test_hourly_rotation_stays_one_session_however_long() -> None:
    hours = [scan(f"h{i}", i * 3600, i * 3600 + 3500) for i in range(8)]
    assert len(plan_sessions(hours, 7200).sessions) == 1


def test_other_browsers_overlap_and_long_gaps_make_separate_sessions() -> None:
    plan = plan_sessions([
        scan("chrome", 0, 600),
        scan("firefox", 700, 900, agents=("Firefox",)),
        scan("other-machine", 300, 500),            # overlaps 'chrome' for 200 s
        scan("tomorrow", 86400, 87000),
    ], 7200)
    assert paths(plan) == [["chrome"], ["other-machine"], ["firefox"], ["tomorrow"]]
    text = " ".join(plan.notes)
    assert "another browser" in text and "overlap in time" in text and "h after" in text


def test_a_file_without_user_agents_joins_by_time() -> None:
    plan = plan_sessions([scan("ua", 0, 100), scan("none", 100, 200, agents=())], 7200)
    assert paths(plan) == [["ua", "none"]]


def test_same_session_in_two_formats_is_analysed_apart_and_said_so(tmp_path: Path) -> None:
    # The pcap and Playwright's HAR recorded the same traffic: merged, each request would
    # appear twice and pair across files. Apart, each reads as it does alone.
    pcap, har = str(SAMPLES / "chromium-session.pcap"), str(SAMPLES / "chromium-playwright.har")
    report = analyze_paths([har, pcap])
    assert sorted(s.paths for s in report.sessions) == [(har,), (pcap,)]
    assert any("overlap in time" in n for n in report.notes)
    alone = {**verdicts(analyze_paths([pcap])), **verdicts(analyze_paths([har]))}
    assert verdicts(report) == alone
    forced = analyze_paths([har, pcap], one_session=True)
    assert len(forced.sessions) == 1 and verdicts(forced) != alone


def test_cli_one_session_flag_and_order_free_ids(tmp_path: Path, capsys: object) -> None:
    doc = load_har(SAMPLES / "chromium-session.har")
    entries = doc["log"]["entries"]
    a = write_har(tmp_path / "a.har", doc, entries[:20])
    b = write_har(tmp_path / "b.har", doc, entries[20:])
    import json
    outs = []
    for args in ([str(b), str(a)], [str(a), str(b)], ["--one-session", str(b), str(a)]):
        assert main(["analyze", *args, "--format", "json"]) == 0
        outs.append(json.loads(capsys.readouterr().out))  # type: ignore[attr-defined]
    ids = [[(e["id"], e["verdict"], e["cors_error"]) for e in o["exchanges"]] for o in outs]
    assert ids[0] == ids[1] == ids[2]
    assert outs[0]["sessions"] == [{"number": 1, "paths": [str(a), str(b)]}]
    assert [s["path"] for s in outs[0]["sources"]] == [str(a), str(b)]


def test_files_are_opened_when_the_merge_reaches_them() -> None:
    """A week of hourly captures is read one file after another, not all at once."""
    from collections.abc import Iterator

    from corsflow.analysis import merge_by_time
    from corsflow.model import Exchange
    from tests.factories import exchange

    opened: list[int] = []
    emitted: list[float] = []

    def source(n: int, starts: list[float]):  # type: ignore[no-untyped-def]
        def open_stream() -> Iterator[tuple[int, Exchange]]:
            opened.append(n)
            # What was emitted before this file opened all started no later than its first.
            assert all(t <= starts[0] for t in emitted)
            return iter([(0, exchange(i, "GET", f"http://a/{n}/{i}", started=t))
                         for i, t in enumerate(starts)])
        return (starts[0], n, open_stream)

    sources = [source(3, [30.0, 31.0]), source(1, [10.0, 11.0, 12.0]),
               source(2, [12.0, 12.5, 20.0])]
    for _, x in merge_by_time(sources):
        emitted.append(x.started)
        if x.started < 12.0:
            assert opened == [1]
    assert opened == [1, 2, 3]
    assert emitted == sorted(emitted) and len(emitted) == 8


def test_notebook_load_is_order_free(tmp_path: Path) -> None:
    import corsflow

    doc = load_har(SAMPLES / "chromium-session.har")
    entries = doc["log"]["entries"]
    a = write_har(tmp_path / "a.har", doc, entries[:25])
    b = write_har(tmp_path / "b.har", doc, entries[25:])
    one = corsflow.load([b, a]).report
    other = corsflow.load(str(tmp_path / "*.har")).report
    assert [(v.exchange.id, v.verdict) for v in one.exchanges] == [
        (v.exchange.id, v.verdict) for v in other.exchanges]
    assert verdicts(one) == verdicts(analyze_paths([str(SAMPLES / "chromium-session.har")]))
