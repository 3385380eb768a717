from __future__ import annotations

import io

import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from corsflow.analysis import Report
from corsflow.report.plots import preflight_overhead, timeline, verdicts_by_origin


def _png(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=50)
    return out.getvalue()


def span_widths(ax: Axes) -> list[float]:
    """The lengths in seconds of the cache-lifetime spans drawn on a timeline Axes."""
    return sorted(
        round(path.get_extents().width, 6)
        for c in ax.collections
        if c.get_gid() == "cache-span"
        for path in c.get_paths()
    )


def _labelled(ax: object) -> bool:
    return (
        bool(ax.get_title() or ax.get_title(loc="left"))
        and bool(ax.get_xlabel())
        and bool(ax.get_ylabel())
    )  # type: ignore[attr-defined]


def test_timeline_per_origin_with_cache_spans(report: Report) -> None:
    fig = timeline(report)
    assert isinstance(fig, Figure) and fig.get_suptitle()
    axes = fig.axes
    assert [a.get_title(loc="left") for a in axes] == [
        "Origin https://app.example.com",
        "Origin https://admin.example.org",
    ]
    assert (
        axes[-1].get_xlabel().startswith("seconds since the first cross-origin request (2025-11-22")
    )
    assert all(a.get_ylabel() for a in axes)
    # One span per preflight that was cached: app e1 (600 s), e5 and e7 (5 s); admin e11
    # (7200 s); the failed e9 caches nothing.
    assert span_widths(axes[0]) == [5.0, 5.0, 600.0]
    assert span_widths(axes[1]) == [7200.0]
    # Failures are marked, and cache hits are told from misses.
    labels = {t for a in axes for t in a.get_legend_handles_labels()[1]}
    assert {
        "blocked request",
        "blocked preflight",
        "cache hit",
        "cache miss (preflight sent)",
        "redundant preflight",
        "preflight",
        "simple request",
    } <= labels
    # The 7200 s span runs past the frame and says so.
    assert any("cached 7200 s" in t.get_text() for t in axes[1].texts)
    assert _png(fig)[:4] == b"\x89PNG"


def test_timeline_one_origin_on_a_given_axes(report: Report) -> None:
    fig = Figure()
    ax = fig.add_subplot()
    assert timeline(report, "https://app.example.com", ax=ax) is fig
    assert ax.get_title(loc="left") == "Origin https://app.example.com" and _labelled(ax)
    with pytest.raises(ValueError):
        timeline(report, ax=ax)


def test_preflight_overhead(report: Report) -> None:
    fig = preflight_overhead(report)
    (ax,) = fig.axes
    assert _labelled(ax) and ax.get_xlabel() == "time spent in preflights (ms)"
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "https://api.example.net/v1/admin/audit",
        "https://api.example.net/v1/admin/users/{id}",
        "https://api.example.net/v1/items/{id}",
    ]
    # Two stacked bars per endpoint: needed, then avoidable (highlighted).
    assert len(ax.patches) == 6
    widths = {
        (round(p.get_y() + p.get_height() / 2), p.get_facecolor()): p.get_width()
        for p in ax.patches
    }
    top = [w for (y, _), w in widths.items() if y == 2]
    assert sorted(top) == [120.0, 215.0]  # /v1/items/{id}: e1 needed; e5 + e7 avoidable
    assert any("3 preflights, 2 avoidable" in t.get_text() for t in ax.texts)


def test_verdicts_by_origin(report: Report) -> None:
    fig = verdicts_by_origin(report)
    (ax,) = fig.axes
    assert _labelled(ax)
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["allowed", "blocked: PreflightMissingAllowOriginHeader"]
    assert sum(p.get_width() for p in ax.patches) == 7  # the seven cross-origin requests


def test_charts_of_an_empty_report_still_have_titles_and_labels(empty: Report) -> None:
    for draw in (timeline, preflight_overhead, verdicts_by_origin):
        fig = draw(empty)
        assert _labelled(fig.axes[0]) or fig.get_suptitle()
        assert _png(fig)[:4] == b"\x89PNG"


def test_hostile_labels_render_literally(hostile_report: Report) -> None:
    # "$...$" in a URL or Origin would be mathtext; it must render as text, not fail.
    for draw in (timeline, preflight_overhead, verdicts_by_origin):
        assert _png(draw(hostile_report))[:4] == b"\x89PNG"
