"""matplotlib charts of a report, each readable at a glance (title, labelled axes, units).

Every function returns a :class:`matplotlib.figure.Figure` built with the object API, so
nothing here touches pyplot's global state, picks a GUI backend or calls ``show()``: the
figure renders in a notebook, saves to a file, or embeds in the HTML report. Functions that
need a single Axes accept ``ax=`` to draw on the caller's.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC
from typing import TYPE_CHECKING, Any

from ..analysis import Report
from ..engine.events import ExchangeVerdict
from ..urls import endpoint
from .optional import require
from .tally import CORS_ROLES, REQUEST_ROLES, duration_ms, failures, origin_label, tally

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

MAX_ORIGINS = 6
MAX_LANES = 20
MAX_BARS = 15

# Colours that stay apart for colour-blind readers (Okabe-Ito), one meaning each.
PREFLIGHT = "#0072B2"
MISS = "#56B4E9"
HIT = "#009E73"
SIMPLE = "#999999"
BLOCKED = "#D55E00"
REDUNDANT = "#F0E442"
SPAN_OK = "#009E73"
SPAN_SHORT = "#E69F00"
SPAN_CLAMPED = "#CC79A7"
UNKNOWN = "#BBBBBB"
# Blocked segments: warm and purple hues, each far enough from its neighbours to tell apart.
ERROR_SHADES = ("#D55E00", "#CC79A7", "#8C2D04", "#E69F00", "#7F3C8D", "#B2182B", "#F4A582")


def _figure(width: float, height: float) -> Figure:
    require("matplotlib", "charts")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _axes(ax: Axes | None, width: float, height: float) -> tuple[Figure, Axes]:
    if ax is not None:
        fig = ax.get_figure()
        assert fig is not None
        return fig, ax  # type: ignore[return-value]
    fig = _figure(width, height)
    return fig, fig.add_subplot()


def _shorten(label: str, limit: int = 60) -> str:
    """A capture value fit for a chart label: both ends of a long one kept (the route's start
    and the id at its end), and ``$`` escaped so matplotlib never reads it as mathtext."""
    if len(label) > limit:
        head = (limit - 1) * 2 // 5
        label = label[:head] + "…" + label[-(limit - 1 - head) :]
    return label.replace("$", r"\$")


def _empty(ax: Axes, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])


# --------------------------------------------------------------------------- timeline


def _span_colour(v: ExchangeVerdict) -> str:
    m = v.max_age
    if m is None or m.problem is None:
        return SPAN_OK
    return SPAN_CLAMPED if m.problem == "above-cap" else SPAN_SHORT


def _lane(url: str) -> str:
    """A timeline row: the URL without scheme and host, since the cache is keyed per URL."""
    rest = url.split("://", 1)[-1]
    return "/" + rest.split("/", 1)[1] if "/" in rest else "/"


Span = tuple[float, float, float, str]
"""A cache lifetime on the timeline: (row, start s, length s, colour)."""


def _draw_origin_timeline(
    ax: Axes, verdicts: list[ExchangeVerdict], t0: float, origin: str
) -> list[Span]:
    lanes_all = Counter(_lane(v.exchange.url) for v in verdicts)
    lanes = [lane for lane, _ in lanes_all.most_common(MAX_LANES)]
    y_of = {lane: i for i, lane in enumerate(sorted(lanes, reverse=True))}
    points: defaultdict[str, tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    spans: list[Span] = []
    for v in verdicts:
        lane = _lane(v.exchange.url)
        if lane not in y_of:
            continue
        y = y_of[lane]
        x = v.exchange.started - t0
        if v.role == "preflight":
            kind = (
                "blocked preflight"
                if v.verdict == "blocked"
                else ("redundant preflight" if v.redundant else "preflight")
            )
            points[kind][0].append(x)
            points[kind][1].append(y + 0.18)
            effective = v.max_age.effective if v.max_age is not None else 0.0
            if effective > 0 and v.verdict != "blocked":
                # The cache lifetime this preflight bought: requests inside it need no preflight.
                spans.append((y + 0.18, x, effective, _span_colour(v)))
        else:
            if v.verdict == "blocked":
                kind = "blocked request"
            elif v.role == "simple":
                kind = "simple request"
            else:
                kind = "cache hit" if v.cache == "hit" else "cache miss (preflight sent)"
            points[kind][0].append(x)
            points[kind][1].append(y - 0.18)
    styles: dict[str, dict[str, Any]] = {
        "preflight": {"marker": "D", "color": PREFLIGHT, "s": 30},
        "redundant preflight": {"marker": "D", "color": REDUNDANT, "s": 44, "edgecolors": "black"},
        "blocked preflight": {"marker": "D", "color": BLOCKED, "s": 40, "edgecolors": "black"},
        "cache miss (preflight sent)": {"marker": "o", "color": MISS, "s": 28},
        "cache hit": {"marker": "o", "color": HIT, "s": 28},
        "simple request": {"marker": ".", "color": SIMPLE, "s": 30},
        "blocked request": {"marker": "X", "color": BLOCKED, "s": 60},
    }
    # One collection per row and colour: a capture with thousands of preflights stays fast.
    grouped: defaultdict[tuple[float, str], list[tuple[float, float]]] = defaultdict(list)
    for row, start, width, colour in spans:
        grouped[(row, colour)].append((start, width))
    for (row, colour), ranges in grouped.items():
        ax.broken_barh(
            ranges,
            (row - 0.11, 0.22),
            facecolors=colour,
            edgecolors=colour,
            alpha=0.35,
            linewidth=0.8,
            gid="cache-span",
        )
    for kind, style in styles.items():
        if kind in points:
            xs, ys = points[kind]
            ax.scatter(xs, ys, label=kind, zorder=3, **style)
    ax.set_yticks(range(len(y_of)), [_shorten(lane, 36) for lane in y_of], fontsize=8)
    ax.set_ylim(-0.6, len(y_of) - 0.4)
    hidden = len(lanes_all) - len(lanes)
    title = f"Origin {_shorten(origin, 70)}" + (
        f" (busiest {len(lanes)} of {len(lanes_all)} URLs)" if hidden else ""
    )
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_ylabel("URL (cache key)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    return spans


def timeline(report: Report, origin: str | None = None, *, ax: Axes | None = None) -> Figure:
    """Preflights and requests over time, one panel per page origin, one row per path.

    Diamonds are preflights (orange: redundant, red: failed), each followed by a bar as long
    as the cache lifetime it bought (its effective Max-Age; orange when Max-Age was missing or
    invalid, pink when clamped). Circles are requests: light blue when a preflight was sent
    for them, green when a cached result was used, grey when simple, red crosses when blocked.
    ``origin`` restricts the chart to one page origin; ``ax`` draws a single origin there.
    """
    cors = [v for v in report.exchanges if v.role in CORS_ROLES]
    by_origin: dict[str, list[ExchangeVerdict]] = {}
    for v in cors:
        by_origin.setdefault(origin_label(v.origin), []).append(v)
    if origin is not None:
        by_origin = {origin: by_origin.get(origin, [])}
    names = sorted(by_origin, key=lambda o: -len(by_origin[o]))[:MAX_ORIGINS]
    t0 = min((v.exchange.started for v in cors), default=0.0)
    if ax is not None and len(names) > 1:
        raise ValueError("timeline(ax=...) draws one origin: pass origin= as well")
    lanes = [len({_lane(v.exchange.url) for v in by_origin[n]}) for n in names] or [1]
    if ax is None:
        fig = _figure(11, 1.3 + sum(1.0 + 0.35 * min(n, MAX_LANES) for n in lanes))
        axes = list(fig.subplots(max(len(names), 1), 1, sharex=True, squeeze=False)[:, 0])
    else:
        fig, axes = _axes(ax, 11, 4)[0], [ax]
    if not names or not any(by_origin[n] for n in names):
        _empty(
            axes[0],
            _shorten("no cross-origin requests" + (f" from {origin}" if origin else ""), 90),
        )
        axes[0].set_title("CORS timeline", fontsize=10, loc="left")
    spans: dict[int, list[Span]] = {}
    for i, (a, name) in enumerate(zip(axes, names)):
        if by_origin[name]:
            spans[i] = _draw_origin_timeline(a, by_origin[name], t0, name)
        else:
            _empty(a, _shorten(f"no cross-origin requests from {name}", 90))
    shown = [v for n in names for v in by_origin[n]]
    if shown:
        # Frame the activity, not the longest cache lifetime: a 7200 s span would squash a
        # 30 s session into one pixel. Spans running past the frame are labelled instead.
        last = max(v.exchange.started for v in shown) - t0
        pad = max(last * 0.08, 1.0)
        right = last + pad
        for i, a in enumerate(axes):
            a.set_xlim(-pad, right)
            beyond: dict[float, Span] = {}  # per row, the latest span running past the frame
            for span in spans.get(i, []):
                if span[1] + span[2] > right:
                    beyond[span[0]] = span
            for y, _start, width, _colour in beyond.values():
                a.annotate(
                    f"cached {width:g} s →",
                    (right, y + 0.11),
                    xytext=(-2, 1),
                    textcoords="offset points",
                    ha="right",
                    va="bottom",
                    fontsize=7,
                    color="#444444",
                )
    from datetime import datetime

    xlabel = "seconds since the first cross-origin request"
    if cors:
        xlabel += datetime.fromtimestamp(t0, tz=UTC).strftime(" (%Y-%m-%d %H:%M:%S UTC)")
    axes[-1].set_xlabel(xlabel)
    if len(axes) > 1:
        fig.align_ylabels(axes)
    handles: dict[str, Any] = {}
    for a in axes:
        for h, label in zip(*a.get_legend_handles_labels()):
            handles.setdefault(label, h)
    if handles:
        from matplotlib.patches import Patch

        handles["preflight cache lifetime (Max-Age)"] = Patch(color=SPAN_OK, alpha=0.35)
        handles["lifetime: Max-Age missing/invalid"] = Patch(color=SPAN_SHORT, alpha=0.35)
        handles["lifetime: Max-Age clamped"] = Patch(color=SPAN_CLAMPED, alpha=0.35)
        axes[0].legend(
            handles.values(),
            handles.keys(),
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
            frameon=False,
        )
    if ax is None:
        fig.suptitle("CORS timeline: preflights, cache lifetimes and requests", fontsize=12)
    return fig


# --------------------------------------------------------------------------- overhead


def preflight_overhead(report: Report, *, ax: Axes | None = None, top: int = MAX_BARS) -> Figure:
    """Preflight time per endpoint, split into avoidable (highlighted) and the rest.

    Each bar is labelled with the number of preflights (and how many were avoidable). When the
    capture has no timings the bars count preflights instead of milliseconds.
    """
    t = tally(report)
    rows: dict[str, list[float]] = {}  # endpoint -> [ms, avoidable ms, count, avoidable count]
    timed = False
    for v in report.exchanges:
        if v.role != "preflight":
            continue
        ms = duration_ms(v)
        timed = timed or ms is not None
        row = rows.setdefault(endpoint(v.exchange.url), [0.0, 0.0, 0, 0])
        saved = v.exchange.id in t.avoidable
        row[0] += ms or 0.0
        row[1] += (ms or 0.0) if saved else 0.0
        row[2] += 1
        row[3] += saved
    return _overhead_bars(rows, timed, ax=ax, top=top, title="Preflight overhead by endpoint",
                          empty="no preflights in this capture")


def fleet_preflight_overhead(by_endpoint: Any, *, ax: Axes | None = None,
                             top: int = MAX_BARS) -> Figure:
    """:func:`preflight_overhead` over a fleet, from its ``by_endpoint`` frame: preflight time
    per endpoint summed over every session, avoidable preflights highlighted by count."""
    rows = {str(name): [float(r.preflight_ms), 0.0, int(r.preflights), int(r.avoidable)]
            for name, r in by_endpoint.iterrows() if r.preflights}
    timed = any(r[0] for r in rows.values())
    return _overhead_bars(rows, timed, ax=ax, top=top,
                          title="Preflight overhead by endpoint, all sessions",
                          empty="no preflights in these sessions")


def _overhead_bars(rows: dict[str, list[float]], timed: bool, *, ax: Axes | None, top: int,
                   title: str, empty: str) -> Figure:
    """Horizontal bars per endpoint: ``rows`` maps it to [ms, avoidable ms, count, avoidable
    count]; time when the capture has timings, else counts."""
    key = 0 if timed else 2
    ordered = sorted(rows.items(), key=lambda kv: (-kv[1][key], kv[0]))[:top]
    fig, ax = _axes(ax, 10, 1.5 + 0.42 * max(len(ordered), 1))
    ax.set_title(f"{title} (top {len(ordered)} of {len(rows)})" if len(rows) > len(ordered)
                 else title)
    ax.set_xlabel(
        "time spent in preflights (ms)" if timed else "preflights (count; no timings in capture)"
    )
    ax.set_ylabel("endpoint")
    if not ordered:
        _empty(ax, empty)
        return fig
    labels = [_shorten(name) for name, _ in ordered][::-1]
    total = [r[key] for _, r in ordered][::-1]
    avoidable = [r[key + 1] for _, r in ordered][::-1]
    needed = [a - b for a, b in zip(total, avoidable)]
    y = range(len(labels))
    ax.barh(y, needed, color=PREFLIGHT, label="needed")
    ax.barh(
        y,
        avoidable,
        left=needed,
        color=REDUNDANT,
        hatch="//",
        edgecolor="white",
        label="avoidable (redundant, client-chosen\nheaders, short Max-Age)",
    )
    for i, (_, r) in enumerate(ordered[::-1]):
        note = f" {int(r[2])} preflight{'s' if r[2] != 1 else ''}"
        if r[3]:
            note += f", {int(r[3])} avoidable"
        ax.text(total[i], i, note, va="center", fontsize=8)
    ax.set_yticks(list(y), labels, fontsize=8)
    ax.set_xlim(0, max(total) * 1.35 or 1)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return fig




# --------------------------------------------------------------------------- verdicts


def verdicts_by_origin(report: Report, *, ax: Axes | None = None) -> Figure:
    """Cross-origin requests per page origin: allowed, unknown, and blocked split by CorsError.

    A failed preflight whose request is not in the capture (the browser never sends it)
    stands for that request."""
    t = tally(report)
    counts: dict[str, Counter[str]] = {}
    for v in failures(t, report.exchanges) + [
        v for v in report.exchanges if v.role in REQUEST_ROLES and v.verdict != "blocked"
    ]:
        label: str = v.verdict or "unknown"
        if v.verdict == "blocked":
            label = _shorten(f"blocked: {v.cors_error or 'reason not known'}", 70)
        counts.setdefault(origin_label(v.origin), Counter())[label] += 1
    origins = sorted(counts, key=lambda o: sum(counts[o].values()))[-MAX_BARS:]
    fig, ax = _axes(ax, 10, 1.6 + 0.45 * max(len(origins), 1))
    ax.set_title("Verdicts by origin (blocked requests by CorsError)")
    ax.set_xlabel("cross-origin requests (count)")
    ax.set_ylabel("page origin")
    if not origins:
        _empty(ax, "no cross-origin requests in this capture")
        return fig
    errors = sorted({k for c in counts.values() for k in c if k.startswith("blocked")})
    series = ["allowed", "unknown", *errors]
    colours = {"allowed": HIT, "unknown": UNKNOWN}
    colours.update({e: ERROR_SHADES[i % len(ERROR_SHADES)] for i, e in enumerate(errors)})
    left = [0] * len(origins)
    y = range(len(origins))
    for name in series:
        values = [counts[o][name] for o in origins]
        if not any(values):
            continue
        ax.barh(y, values, left=left, color=colours[name], label=name)
        left = [a + b for a, b in zip(left, values)]
    ax.set_yticks(list(y), [_shorten(o, 50) for o in origins], fontsize=8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.grid(axis="x", alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)  # type: ignore[call-arg]
    return fig
