"""Putting one stream in time order: the look-ahead, the on-disk sort, and the second pass."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from corsflow import timeorder
from corsflow.analysis import analyze_paths
from corsflow.timeorder import OutOfOrder, nearly_sorted, spilled_sort
from tests.conftest import SAMPLES
from tests.factories import exchange

from .verdicts import errors, load_har, verdicts, write_har

times = st.lists(st.floats(min_value=0, max_value=1e4, allow_nan=False), max_size=60)


def stream(starts: list[float]) -> list:  # type: ignore[type-arg]
    return [exchange(i, "GET", f"http://a.example/{i}", started=t)
            for i, t in enumerate(starts)]


def in_order(xs: list) -> list[tuple[float, str]]:  # type: ignore[type-arg]
    return sorted((x.started, int(x.id[1:])) for x in xs)


@given(times)
def test_spilled_sort_sorts_any_stream_stably(starts: list[float]) -> None:
    xs = stream(starts)
    out = list(spilled_sort(xs, run_size=7))  # several runs on disk
    assert [(x.started, int(x.id[1:])) for x in out] == in_order(xs)
    assert out == sorted(xs, key=lambda x: (x.started, int(x.id[1:])))  # survive pickling


@given(times, st.integers(min_value=1, max_value=10))
def test_nearly_sorted_sorts_or_says_it_cannot(starts: list[float], capacity: int) -> None:
    xs = stream(starts)
    # It holds the `capacity` latest exchanges seen: one that more than `capacity` earlier
    # exchanges start after cannot be put in its place any more.
    too_far = any(sum(1 for earlier in starts[:j] if earlier > t) > capacity
                  for j, t in enumerate(starts))
    try:
        out = list(nearly_sorted(xs, "x.har", capacity, horizon=float("inf")))
    except OutOfOrder as e:
        assert e.path == "x.har" and too_far
        return
    assert not too_far
    assert [(x.started, int(x.id[1:])) for x in out] == in_order(xs)


@given(times, st.floats(min_value=0, max_value=1e4))
def test_the_horizon_lets_exchanges_go_early_and_says_when_that_was_too_early(
        starts: list[float], horizon: float) -> None:
    xs = stream(starts)
    # Only an exchange starting more than `horizon` seconds before one listed ahead of it can
    # find its place already passed.
    late = any(t < max(starts[:j]) - horizon for j, t in enumerate(starts) if j)
    try:
        out = list(nearly_sorted(xs, "x.har", capacity=100, horizon=horizon))
    except OutOfOrder:
        assert late
        return
    assert [(x.started, int(x.id[1:])) for x in out] == in_order(xs)


def test_a_capture_spread_over_time_flows_before_the_look_ahead_fills() -> None:
    given_out: list[int] = []

    def listed():  # type: ignore[no-untyped-def]
        for x in stream([i * 100.0 for i in range(50)]):
            given_out.append(int(x.id[1:]))
            yield x

    out = nearly_sorted(listed(), "x.har", capacity=1000, horizon=300.0)
    first = next(out)
    # Exchange 0 goes once one 300 s later is read (the 5th, at 400 s), not after all 50.
    assert int(first.id[1:]) == 0 and len(given_out) == 5
    assert [int(x.id[1:]) for x in out] == list(range(1, 50))


def test_nearly_sorted_tells_only_disorder_beyond_the_engine_window() -> None:
    told: list[str] = []
    list(nearly_sorted(stream([1.0, 0.5, 2.0, 3.0]), "a", noticed=told.append))
    assert told == []
    list(nearly_sorted(stream([10.0, 1.0, 12.0]), "b", noticed=told.append))
    assert told == ["b"]


def test_a_file_out_of_order_beyond_the_look_ahead_is_read_again_and_sorted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    doc = load_har(SAMPLES / "chromium-session.har")
    entries = doc["log"]["entries"]
    baseline = analyze_paths([str(SAMPLES / "chromium-session.har")])
    reversed_har = write_har(tmp_path / "reversed.har", doc, entries[::-1])
    # A look-ahead of 3 cannot sort 43 reversed entries: the second pass sorts on disk.
    monkeypatch.setattr(timeorder, "LOOK_AHEAD", 3)
    monkeypatch.setattr(timeorder.nearly_sorted, "__defaults__",
                        (3, None, timeorder.HORIZON, None))
    monkeypatch.setattr(timeorder.spilled_sort, "__defaults__", (5,))
    report = analyze_paths([str(reversed_har)])
    assert verdicts(report) == verdicts(baseline)
    assert errors(report) == errors(baseline)
    assert any("out of time order" in n for n in report.notes)
    assert "reading it again" in caplog.text
    assert report.sources[0].exchanges == len(entries)


def test_shuffled_har_entries_give_the_errors_of_the_sorted_file(tmp_path: Path) -> None:
    # The case: a HAR whose entries are not sorted gave 14 errors instead of 6.
    doc = load_har(SAMPLES / "chromium-session.har")
    entries = list(doc["log"]["entries"])
    random.Random(1).shuffle(entries)
    report = analyze_paths([str(write_har(tmp_path / "shuffled.har", doc, entries))])
    baseline = analyze_paths([str(SAMPLES / "chromium-session.har")])
    assert sum(errors(report).values()) == sum(errors(baseline).values()) == 6
    assert verdicts(report) == verdicts(baseline)


# --- a pcap's reader tells how early what is still to come started ----------------------


def _pcaps(corpus_dir: Path | None) -> list[Path]:
    found = sorted(SAMPLES.glob("*.pcap"))
    if corpus_dir is not None and corpus_dir.is_dir():
        found += sorted(p for p in corpus_dir.iterdir() if p.suffix in (".pcap", ".pcapng"))
    return found


def _released(path: Path) -> tuple[list[str], int | None]:
    """The ids in the order the look-ahead gives them with the reader's low water mark, and
    how many exchanges the reader had given when the first came out."""
    from corsflow.errors import Diagnostics
    from corsflow.ingest.pcap import read_pcap
    from corsflow.timeorder import LowWater

    low = LowWater()
    given = 0

    def counted():  # type: ignore[no-untyped-def]
        nonlocal given
        for x in read_pcap(str(path), Diagnostics(), low):
            given += 1
            yield x

    out, first = [], None
    for x in nearly_sorted(counted(), str(path), low_water=low):
        if first is None:
            first = given
        out.append(x.id)
    return out, first


def _sorted_ids(path: Path) -> list[str]:
    from corsflow.errors import Diagnostics
    from corsflow.ingest.pcap import read_pcap

    xs = list(read_pcap(str(path), Diagnostics()))
    return [x.id for _, _, x in sorted((x.started, i, x) for i, x in enumerate(xs))]


def test_the_low_water_mark_gives_each_capture_in_time_order_in_one_pass() -> None:
    """Never early: the order of a full sort, and no second pass, on every capture."""
    from tests.conftest import CORPUS

    paths = _pcaps(CORPUS / "pcap")
    assert len(paths) >= 2
    for path in paths:
        assert _released(path)[0] == _sorted_ids(path), path.name


def test_the_low_water_mark_lets_exchanges_go_before_the_capture_is_read(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from corsflow.ingest import pcap

    # The sample is small and short: look more often, and trust its clock to the second.
    monkeypatch.setattr(pcap, "_LOW_EVERY", 8)
    monkeypatch.setattr(pcap, "CLOCK_SLACK", 0.0)
    path = SAMPLES / "chromium-session.pcap"
    ids, first = _released(path)
    assert ids == _sorted_ids(path)
    assert first is not None and first < len(ids) // 2
    # Without it, a capture of less than the horizon's 300 s waits for the whole file.
    from corsflow.errors import Diagnostics

    given = 0

    def counted():  # type: ignore[no-untyped-def]
        nonlocal given
        for x in pcap.read_pcap(str(path), Diagnostics()):
            given += 1
            yield x

    next(nearly_sorted(counted(), str(path)))
    assert given == len(ids)
