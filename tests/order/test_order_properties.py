"""Order never changes a verdict: files named in any order, pieces of a capture, entries of a
HAR listed in any order, and captures of several formats together."""

from __future__ import annotations

import itertools
import random
import tempfile
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corsflow.analysis import Report, analyze_paths
from tests.conftest import CORPUS, SAMPLES

from .verdicts import errors, load_har, verdicts, write_har

SESSION_HAR = SAMPLES / "chromium-session.har"
quick = settings(max_examples=20, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@cache
def baseline(path: Path) -> Report:
    return analyze_paths([str(path)])


def pieces(draw: st.DrawFn, n: int) -> list[tuple[int, int]]:
    """1 to 4 contiguous pieces of n entries."""
    k = draw(st.integers(min_value=1, max_value=min(4, n)))
    cuts = sorted(draw(st.lists(st.integers(min_value=1, max_value=n - 1), min_size=k - 1,
                                max_size=k - 1, unique=True))) if n > 1 else []
    bounds = [0, *cuts, n]
    return list(itertools.pairwise(bounds))


@st.composite
def split_and_shuffled(draw: st.DrawFn, n: int) -> tuple[list[tuple[int, int]], int, list[int]]:
    parts = pieces(draw, n)
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    order = draw(st.permutations(range(len(parts))))
    return parts, seed, list(order)


def write_pieces(source: Path, folder: Path, parts: list[tuple[int, int]], seed: int,
                 order: list[int]) -> list[str]:
    doc = load_har(source)
    entries = doc["log"]["entries"]
    rng = random.Random(seed)
    names = []
    for number, (lo, hi) in enumerate(parts):
        chunk = list(entries[lo:hi])
        rng.shuffle(chunk)  # entries inside each piece in any order
        names.append(str(write_har(folder / f"piece{number}.har", doc, chunk)))
    return [names[i] for i in order]  # the pieces named in any order


@quick
@given(split_and_shuffled(len(load_har(SESSION_HAR)["log"]["entries"])))
def test_pieces_and_entries_in_any_order_give_the_same_verdicts(
        case: tuple[list[tuple[int, int]], int, list[int]]) -> None:
    parts, seed, order = case
    with tempfile.TemporaryDirectory() as folder:
        report = analyze_paths(write_pieces(SESSION_HAR, Path(folder), parts, seed, order))
    assert verdicts(report) == verdicts(baseline(SESSION_HAR))
    assert errors(report) == errors(baseline(SESSION_HAR))
    assert len(report.sessions) == 1


@settings(max_examples=8, deadline=None)
@given(st.permutations([SAMPLES / "chromium-session.pcap", SAMPLES / "chromium-playwright.har",
                        SAMPLES / "loopback-cors.pcap", SESSION_HAR]),
       st.booleans())
def test_files_of_several_formats_in_any_order_give_the_same_verdicts(
        files: list[Path], one_session: bool) -> None:
    report = analyze_paths([str(f) for f in files], one_session=one_session)
    first = analyze_paths(sorted(str(f) for f in files), one_session=one_session)
    assert verdicts(report) == verdicts(first)
    assert errors(report) == errors(first)
    assert [s.paths for s in report.sessions] == [s.paths for s in first.sessions]
    assert report.notes == first.notes


def corpus_hars() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return [p for p in sorted((CORPUS / "har").glob("*.har"))
            if p.stat().st_size < 2_000_000 and p.name != "invalid-not-json.har"
            and p.name != "chrome-devtools-empty-no-entries.har"]


@pytest.mark.parametrize("path", corpus_hars(), ids=lambda p: p.name)
def test_corpus_har_shuffled_and_split_keeps_its_verdicts(corpus: Path, path: Path) -> None:
    """Real captures by other tools: their entries shuffled and the file cut in two pieces
    named in reverse order give what the file itself gives."""
    doc = load_har(path)
    entries = doc["log"]["entries"]
    if len(entries) < 2:
        pytest.skip(f"{path.name} has fewer than two entries")
    rng = random.Random(path.name)
    # Cut where time allows: the pieces of one capture do not overlap in time.
    ordered = sorted(entries, key=lambda e: e["startedDateTime"])
    cut = len(ordered) // 2
    with tempfile.TemporaryDirectory() as folder:
        first, second = list(ordered[:cut]), list(ordered[cut:])
        rng.shuffle(first)
        rng.shuffle(second)
        a = write_har(Path(folder) / "a.har", doc, first)
        b = write_har(Path(folder) / "b.har", doc, second)
        report = analyze_paths([str(b), str(a)])
    whole = analyze_paths([str(path)])
    if len(report.sessions) > 1:
        pytest.skip(f"{path.name}: its halves are separate sessions ({report.notes[0]})")
    assert verdicts(report) == verdicts(whole)
    assert errors(report) == errors(whole)
