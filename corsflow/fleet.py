"""Fleets of captures: each file is its own browser session, analysed in parallel, merged.

Teams with one HAR per browser test or per support ticket ask questions across thousands of
them: which endpoints fail CORS in how many sessions, what a Max-Age change would save
across all of them. :func:`analyze_fleet` analyses each file on its own (its own preflight
cache, as a fresh browser profile would have), on local processes or on a Dask cluster, and
merges the results into a :class:`FleetReport`.

A worker sends back a :class:`SessionResult`: counts, per-origin and per-endpoint rows and
findings, never the session's exchanges, so what crosses process boundaries (and what the
merge holds) is bounded by the distinct origins, endpoints and findings, not by traffic.
Results are merged in the order the files were given, so the report is the same whatever
the number of workers or the order they finish in.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from .engine.events import Finding
from .errors import CorsflowError, Diagnostics
from .memo import forget

if TYPE_CHECKING:
    from .analysis import Report
    from .report.tally import Counts

SAMPLE_SESSIONS = 20
"""How many session paths a fleet finding lists (``sessions`` counts them all)."""

COUNT_FIELDS = ("requests", "preflighted", "simple", "preflights", "cache_hits", "redundant",
                "avoidable", "blocked", "unknown", "failed_preflights")
TIME_FIELDS = ("preflight_ms", "request_ms")


@dataclass(frozen=True, slots=True)
class GroupRow:
    """One origin's or endpoint's traffic in one session (the counts of the text report)."""

    key: str
    requests: int
    preflighted: int
    simple: int
    preflights: int
    cache_hits: int
    redundant: int
    avoidable: int
    blocked: int
    unknown: int
    failed_preflights: int
    preflight_ms: float
    request_ms: float


@dataclass(frozen=True, slots=True)
class SessionResult:
    """What one capture file came to, small enough to send between processes."""

    path: str
    size: int
    """The file's size in bytes (for progress over bytes)."""
    format: str | None = None
    engine: str | None = None
    """The browser engine modelled (given, or told by the capture); None if unread."""
    error: str | None = None
    """Why the file could not be read at all (one line); the other fields are then empty."""
    exchanges: int = 0
    skipped: int = 0
    first_started: float | None = None
    total: GroupRow | None = None
    origins: tuple[GroupRow, ...] = ()
    endpoints: tuple[GroupRow, ...] = ()
    findings: tuple[Finding, ...] = ()


def _row(key: str, c: Counts) -> GroupRow:
    return GroupRow(key, *(getattr(c, f) for f in COUNT_FIELDS),
                    *(round(getattr(c, f), 3) for f in TIME_FIELDS))


def summarize_session(path: str, report: Report) -> SessionResult:
    """The fleet's view of one session's report."""
    from .report.tally import tally

    t = tally(report)
    source = report.sources[0] if report.sources else None
    return SessionResult(
        path=path, size=_size(path), format=source.format if source else None,
        engine=report.engine, exchanges=len(report.exchanges),
        skipped=sum(n for _, n in report.skipped_by_reason),
        first_started=t.first_started, total=_row("(all)", t.total),
        origins=tuple(_row(k, c) for k, c in t.origins.items() if c.requests or c.preflights),
        endpoints=tuple(_row(k, c) for k, c in t.endpoints.items()),
        findings=report.findings)


def analyze_session(path: str, engine: str | None = "chromium",
                    redact: bool = True) -> SessionResult:
    """Analyse one file as one browser session; never raises for a bad file (the error is
    in the result), so one damaged capture cannot stop a batch. Runs in worker processes.
    ``engine=None``: the browser the capture shows (a fleet of test runs often holds several).
    ``redact``: secrets out of what the session hands back (:mod:`corsflow.redact`)."""
    logger = logging.getLogger("corsflow")
    level = logger.level
    # The batch counts what was skipped; the caller's own level comes back (a serial batch
    # runs in the caller's process: a notebook's later analyses still warn).
    logger.setLevel(logging.ERROR)
    try:
        return _session(path, engine, redact)
    finally:
        logger.setLevel(level)
        # The next session shares few of this one's URLs: memos filled by thousands of
        # sessions would make a worker far bigger than a single analysis.
        forget()


def _session(path: str, engine: str | None, redact: bool) -> SessionResult:
    from .analysis import analyze_paths

    try:
        report = analyze_paths([path], engine=engine, diagnostics=Diagnostics())
    except CorsflowError as e:
        return SessionResult(path=path, size=_size(path), error=str(e))
    except (MemoryError, RecursionError) as e:
        return SessionResult(path=path, size=_size(path),
                             error=f"{path}: could not be analysed ({type(e).__name__})")
    if redact:
        from .redact import redact_report

        report = redact_report(report)
    return summarize_session(path, report)


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


@dataclass(frozen=True, slots=True)
class FleetFinding:
    """One finding as it recurs across sessions."""

    code: str
    severity: str
    message: str
    hint: str | None
    origin: str | None
    url: str | None
    spec: str | None
    sessions: int
    """How many sessions raised it."""
    exchanges: int
    """How many exchanges it stands for, over all those sessions."""
    saved: int | None
    """Preflights its fix would have saved, over all sessions, where counted."""
    session_paths: tuple[str, ...]
    """The first sessions that raised it (at most :data:`SAMPLE_SESSIONS`)."""


@dataclass(frozen=True, slots=True)
class FleetReport:
    """Every session of a fleet, and what they add up to."""

    engine: str
    """The engine modelled: the one given, or when each session's capture told its own
    (``detected``), the engine of most sessions."""
    sessions: tuple[SessionResult, ...]
    """In the order the files were given; failed files included, with their error."""
    findings: tuple[FleetFinding, ...]
    """Most severe first, then by the number of sessions."""
    detected: bool = False
    """Each session was modelled as the browser its capture shows (no engine was given)."""

    @property
    def engines(self) -> dict[str, int]:
        """Sessions per engine modelled, most first."""
        counts = Counter(s.engine for s in self.sessions if s.engine is not None)
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    @property
    def failed(self) -> tuple[SessionResult, ...]:
        return tuple(s for s in self.sessions if s.error is not None)

    @property
    def analysed(self) -> tuple[SessionResult, ...]:
        return tuple(s for s in self.sessions if s.error is None)


@dataclass(slots=True)
class _Merging:
    first: Finding
    sessions: int = 0
    exchanges: int = 0
    saved: int | None = None
    paths: list[str] = field(default_factory=list)


def merge_sessions(engine: str | None, results: Iterable[SessionResult]) -> FleetReport:
    """Merge session results (in the order given) into the fleet report (``engine``: the one
    given, None when each session's capture chose its own)."""
    from .findings import SEVERITY_ORDER

    sessions = tuple(results)
    merged: dict[tuple[str, str, str | None, str | None, str], _Merging] = {}
    for s in sessions:
        for f in s.findings:
            key = (f.code, f.severity, f.origin, f.url, f.message)
            m = merged.get(key)
            if m is None:
                m = merged[key] = _Merging(f)
            m.sessions += 1
            m.exchanges += f.count or len(f.exchange_ids)
            if f.saved is not None:
                m.saved = (m.saved or 0) + f.saved
            if len(m.paths) < SAMPLE_SESSIONS:
                m.paths.append(s.path)
    findings = [
        FleetFinding(m.first.code, m.first.severity, m.first.message, m.first.hint,
                     m.first.origin, m.first.url, m.first.spec, m.sessions, m.exchanges,
                     m.saved, tuple(m.paths))
        for m in merged.values()]
    findings.sort(key=lambda f: (SEVERITY_ORDER.get(f.severity, 9), -f.sessions, f.code,
                                 f.origin or "", f.url or "", f.message))
    report = FleetReport(engine or "chromium", sessions, tuple(findings),
                         detected=engine is None)
    if engine is None and report.engines:
        report = replace(report, engine=next(iter(report.engines)))  # that of most sessions
    return report


Progress = Callable[[SessionResult], None]
"""Called once per finished session (in the order they finish)."""


def analyze_fleet(paths: Sequence[str], engine: str | None = "chromium", *,
                  jobs: int | None = None, client: Any = None, progress: Progress | None = None,
                  redact: bool = True) -> FleetReport:
    """Analyse each file as its own session, in parallel, and merge.

    ``engine=None``: each session is modelled as the browser its capture shows (chromium
    when it shows none), told in the analysis's own pass over the file.

    ``jobs``: local worker processes (default: every core; 1 runs in this process).
    ``client``: a ``dask.distributed.Client``; the work then runs on its cluster and
    ``jobs`` is ignored. Either way the report is the same.
    """
    results: dict[int, SessionResult] = {}
    for index, result in _run(list(paths), engine, jobs, client, redact):
        results[index] = result
        if progress is not None:
            progress(result)
    return merge_sessions(engine, (results[i] for i in range(len(paths))))


def _run(paths: list[str], engine: str | None, jobs: int | None,
         client: Any, redact: bool = True) -> Iterator[tuple[int, SessionResult]]:
    if client is not None:
        yield from _run_dask(paths, engine, client, redact)
        return
    workers = jobs or os.cpu_count() or 1
    if workers <= 1 or len(paths) <= 1:
        for i, p in enumerate(paths):
            yield i, analyze_session(p, engine, redact)
        return
    with ProcessPoolExecutor(max_workers=min(workers, len(paths))) as pool:
        # Small chunks keep the workers busy to the end when sessions differ in size.
        chunk = max(1, min(16, len(paths) // (workers * 8)))
        for i, result in enumerate(pool.map(analyze_session, paths, [engine] * len(paths),
                                            [redact] * len(paths), chunksize=chunk)):
            yield i, result


def _run_dask(paths: list[str], engine: str | None, client: Any,
              redact: bool = True) -> Iterator[tuple[int, SessionResult]]:
    from .report.optional import require

    distributed = require("distributed", "Analyses on a Dask cluster")
    # One task per few sessions, not per session: the scheduler's cost per task (tens of
    # milliseconds) would otherwise outweigh a small session's analysis.
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    size = max(1, min(DASK_BATCH, len(paths) // (workers * 4)))
    batches = [paths[i:i + size] for i in range(0, len(paths), size)]
    futures = client.map(analyze_sessions, batches, engine=engine, redact=redact, pure=False)
    start = {f.key: n * size for n, f in enumerate(futures)}
    for future in distributed.as_completed(futures):
        for offset, result in enumerate(future.result()):
            yield start[future.key] + offset, result
        future.release()


DASK_BATCH = 32
"""At most this many sessions per Dask task."""


def analyze_sessions(paths: list[str], engine: str | None = "chromium",
                     redact: bool = True) -> list[SessionResult]:
    """:func:`analyze_session` over a few files: one Dask task."""
    return [analyze_session(p, engine, redact) for p in paths]


def group_fields() -> tuple[str, ...]:
    """The numeric columns of a :class:`GroupRow`, in order."""
    return tuple(f.name for f in fields(GroupRow) if f.name != "key")
