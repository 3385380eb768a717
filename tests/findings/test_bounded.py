"""Findings stay few and memory flat however varied the traffic: one kind of finding from
endless distinct origins folds into a bounded number of findings that still count them all."""

from __future__ import annotations

from corsflow.analysis import Analysis
from corsflow.engine.events import Finding
from corsflow.findings.aggregate import OTHER_ORIGINS, Aggregator
from corsflow.findings.merge import FindingMerger
from tests.factories import API, exchange, preflight


def _blocked(n: int, origin: str, url: str = f"{API}/items/{{id}}") -> Finding:
    return Finding("PreflightMissingAllowOriginHeader", "error",
                   f"blocked: PUT {url} from {origin}: no Access-Control-Allow-Origin",
                   (f"e{n}",), f"send `Access-Control-Allow-Origin: {origin}`", origin, url)


def test_identical_findings_merge_into_one_that_counts_them() -> None:
    merger = FindingMerger()
    for n in range(300):
        merger.add(_blocked(n, "http://a.example"))
    (only,) = merger.findings()
    assert only.count == 300
    assert only.exchange_ids == tuple(f"e{n}" for n in range(50))


def test_distinct_origins_fold_past_the_bound_per_place() -> None:
    merger = FindingMerger(per_place=20)
    for n in range(10_000):
        merger.add(_blocked(n, f"http://o{n}.example"))
    found = merger.findings()
    assert len(found) == 21
    *kept, folded = found
    assert [f.origin for f in kept] == [f"http://o{n}.example" for n in range(20)]
    assert folded.count == 10_000 - 20
    assert folded.origin is None  # many origins: none named as the finding's
    assert folded.url == f"{API}/items/{{id}}"
    assert "9980 more PreflightMissingAllowOriginHeader request(s)" in folded.message
    assert "from 1000+ origin(s)" in folded.message
    assert folded.hint is not None and folded.hint.startswith("as for the first of them:")
    assert len(folded.exchange_ids) == 50
    assert sum(f.count or len(f.exchange_ids) for f in found) == 10_000


def test_distinct_places_are_bounded_overall() -> None:
    merger = FindingMerger(per_place=2, max_findings=100, max_folds=10)
    for n in range(5_000):
        merger.add(_blocked(n, f"http://o{n}.example", f"http://s{n % 500}.example/x"))
    found = merger.findings()
    assert len(found) <= 100 + 10 + 1
    assert sum(f.count or len(f.exchange_ids) for f in found) == 5_000


def test_one_origin_keeps_its_name_when_folded() -> None:
    merger = FindingMerger(per_place=1)
    merger.add(_blocked(0, "http://a.example", f"{API}/x"))
    first = Finding("PreflightMissingAllowOriginHeader", "error", "other words", ("e1",),
                    None, "http://a.example", f"{API}/x")
    merger.add(first)
    folded = merger.findings()[-1]
    assert folded.origin == "http://a.example"
    assert "from http://a.example" in folded.message
    assert folded.hint is None


def test_aggregator_groups_are_bounded_and_still_count_everything() -> None:
    analysis = Analysis("chromium", keep_exchanges=False)
    analysis.aggregator = Aggregator(analysis.profile, max_groups=50)
    t = 1_000.0
    n = 0
    for k in range(400):
        origin = f"http://o{k}.example"
        # A preflight answered without Max-Age, then its request: MaxAgeMissing per origin.
        allow = {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Methods": "PUT"}
        analysis.feed(preflight(n, f"{API}/items/{k}", "PUT", origin=origin, started=t,
                                allow=allow))
        analysis.feed(exchange(n + 1, "PUT", f"{API}/items/{k}", {"Origin": origin},
                               started=t + 0.01, response_headers={
                                   "Access-Control-Allow-Origin": origin}))
        n += 2
        t += 1.0
    analysis.flush()
    missing = [f for f in analysis.report().findings if f.code == "MaxAgeMissing"]
    assert len(missing) == 51
    assert sum(f.count or 0 for f in missing) == 400
    other = [f for f in missing if f.origin is None]
    assert len(other) == 1 and OTHER_ORIGINS in other[0].message
    assert other[0].count == 350
