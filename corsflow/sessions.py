"""Which capture files make one browsing session, and which are separate ones.

Several files given together are, by default, one session merged by time: pieces of one
capture, or a capture rotated every hour. Files that clearly are not one session are
analysed apart, each with its own browser state (preflight cache, preflights awaiting
their request), because merging them would invent cache hits and pairings:

- recorded by different browsers (no User-Agent in common);
- overlapping in time: two machines recording at once, or two recordings of the same
  traffic (a HAR and a pcap of one session), whose exchanges would pair across files;
- far apart: the later file starts after anything the earlier one cached has expired.

The plan is a function of the files' content (never of the order they were named in): files
are considered by start time, then path.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import UTC, datetime

from .errors import Diagnostics
from .ingest import open_capture
from .model import SourceFormat
from .timeorder import LOOK_AHEAD

OVERLAP = 2.0
"""Seconds two files may overlap and still be pieces of one capture (a request in flight
when one piece ended), the engine's reorder window."""

GAP = 3600.0
"""Seconds between files that always make separate sessions (the engine's cache lifetime
counts too, when longer)."""

_MAX_AGENTS = 8


@dataclass(frozen=True, slots=True)
class FileScan:
    """What a first, quick pass over one file tells about it."""

    path: str
    number: int
    """The file's number in the analysis (its rank by path: ids are ``"2:e14"``)."""
    format: SourceFormat
    first: float | None
    last: float | None
    """Start times of its earliest and latest exchange (None: no exchange)."""
    count: int
    agents: frozenset[str]
    """The User-Agent values of its requests (a few at most)."""
    ordered: bool
    """Its exchanges are listed in time order, within the look-ahead."""


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """Files grouped into sessions, and why groups are apart (one line each)."""

    sessions: tuple[tuple[FileScan, ...], ...]
    notes: tuple[str, ...]


def scan_file(path: str, number: int, capacity: int = LOOK_AHEAD) -> FileScan:
    """Read a file once for its time span, its browsers and whether it is in time order."""
    fmt, stream = open_capture(path, Diagnostics(keep=0))
    first = last = None
    count = 0
    agents: set[str] = set()
    heap: list[float] = []
    released = float("-inf")
    ordered = True
    for exchange in stream:
        t = exchange.started
        count += 1
        first = t if first is None or t < first else first
        last = t if last is None or t > last else last
        if len(agents) < _MAX_AGENTS:
            agents.update(exchange.request_headers.scan("user-agent"))
        if ordered:
            if t < released:
                ordered = False
            elif len(heap) < capacity:
                heapq.heappush(heap, t)
            else:
                released = heapq.heappushpop(heap, t)
    return FileScan(path, number, fmt, first, last, count, frozenset(agents), ordered)


def _when(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _apart(scan: FileScan, other: FileScan) -> str | None:
    """Why ``scan`` (starting no earlier than ``other``) is not of ``other``'s session."""
    assert scan.first is not None and scan.last is not None
    assert other.first is not None and other.last is not None
    if scan.agents and other.agents and not scan.agents & other.agents:
        return (f"{scan.path} was recorded by another browser than {other.path} "
                "(no User-Agent in common)")
    overlap = min(scan.last, other.last) - max(scan.first, other.first)
    if overlap > OVERLAP:
        return (f"{scan.path} and {other.path} overlap in time for {overlap:.0f} s "
                f"(from {_when(max(scan.first, other.first))}): two machines recording at "
                "once, or two recordings of the same traffic")
    return None


def _after(scan: FileScan, group: list[FileScan], gap: float) -> str | None:
    """Why ``scan`` starts too long after everything in ``group`` to share its session."""
    assert scan.first is not None
    latest = max(group, key=lambda s: s.last or 0.0)
    assert latest.last is not None
    if scan.first - latest.last > gap:
        hours = (scan.first - latest.last) / 3600
        return (f"{scan.path} starts {hours:.1f} h after {latest.path} ends: nothing the "
                "browser cached can carry over")
    return None


def plan_sessions(scans: list[FileScan], cache_lifetime: float = 0.0) -> SessionPlan:
    """Group files into sessions: each file joins the first session (by start time) that
    none of the rules above separates it from, else starts a new one."""
    gap = max(GAP, cache_lifetime)
    timed = sorted((s for s in scans if s.first is not None),
                   key=lambda s: (s.first, s.last, s.path, s.number))
    empty = [s for s in scans if s.first is None]
    groups: list[list[FileScan]] = []
    notes: list[str] = []
    for scan in timed:
        reasons = []
        for group in groups:
            why = next((w for other in group if (w := _apart(scan, other))), None) \
                or _after(scan, group, gap)
            if why is None:
                group.append(scan)
                break
            reasons.append(why)
        else:
            groups.append([scan])
        if reasons:
            notes.append(f"{reasons[0]}: analysed as separate sessions "
                         "(--one-session to force one)")
    if empty:
        if groups:
            groups[0].extend(empty)
        else:
            groups.append(empty)
    return SessionPlan(tuple(tuple(g) for g in groups), tuple(notes))
