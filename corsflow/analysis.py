"""One analysis: exchanges in, a :class:`Report` out. The one library every surface uses.

The CLI, the mitmproxy addon and the notebook API are thin shells over this module:
:class:`Analysis` is fed exchanges one at a time (from files or live flows) and can produce a
:class:`Report` at any moment; :func:`analyze_paths` runs it over capture files.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Protocol

from .counts import ExchangeCounts
from .engine.detect import Detection, detect_engine
from .engine.events import ExchangeVerdict, Finding
from .engine.machine import CorsMachine
from .engine.normalize import normalize
from .engine.profiles import EngineProfile, get_profile
from .errors import CorsflowError, Diagnostics, Skipped
from .findings import Aggregator, findings_for, sort_findings
from .findings.browser import weigh_browser_decisions
from .findings.merge import FindingMerger
from .findings.security import SecurityReview
from .frozen import quick_init
from .ingest import detect_format, open_capture
from .ingest.ahead import read_ahead as read_in_child
from .ingest.ahead import started, worth_reading_ahead
from .model import Exchange, SourceFormat
from .reading import lean_reading, ordered
from .sessions import plan_sessions, scan_file
from .timeorder import OutOfOrder

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """One input of the analysis."""

    path: str
    format: SourceFormat
    exchanges: int = 0
    skipped: int = 0


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """Files analysed together as one browsing session (one browser state)."""

    number: int
    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Report:
    """Everything the engine concluded about a set of captures."""

    engine: str
    sources: tuple[SourceInfo, ...]
    exchanges: tuple[ExchangeVerdict, ...]
    """In capture order (time of the request)."""
    findings: tuple[Finding, ...]
    """Most severe first."""
    skipped: tuple[Skipped, ...] = ()
    skipped_by_reason: tuple[tuple[str, int], ...] = ()
    notes: tuple[str, ...] = ()
    sessions: tuple[SessionInfo, ...] = ()
    """With several files: how they were grouped (one session unless they clearly are not)."""
    counts: ExchangeCounts | None = None
    """When the verdicts were written out as they settled (``exchanges`` is then empty):
    the counts over all of them, for the summary."""
    redacted: int | None = None
    """How many secret values outputs had replaced (:func:`corsflow.redact.redact_report`);
    None: not redacted."""
    _index: dict[str, ExchangeVerdict] = field(default_factory=dict, repr=False, compare=False)

    def get(self, exchange_id: str) -> ExchangeVerdict | None:
        """The verdict of one exchange by its id."""
        if not self._index and self.exchanges:
            self._index.update((v.exchange.id, v) for v in self.exchanges)
        return self._index.get(exchange_id)


@quick_init
@dataclass(frozen=True, slots=True)
class Fed:
    """What feeding one exchange settled: verdicts whose evidence is now complete, and the
    findings they raise at once (CORS failures, redundant preflights, Max-Age problems).
    Aggregate findings (per-URL preflights, avoidable preflights) come with the report."""

    verdicts: tuple[ExchangeVerdict, ...] = ()
    findings: tuple[Finding, ...] = ()


class Analysis:
    """Feed exchanges (from any source, in capture order) and take a :class:`Report`.

    It keeps the settled verdicts (the report lists every exchange) and the engine's bounded
    state. ``keep_exchanges=False`` (the live addon's long sessions) keeps only findings and
    counts, so memory stays bounded by what is live. ``sink`` receives every verdict in
    time order as soon as no earlier one can still come (a report written as verdicts
    settle); the verdicts are then not kept.

    Exchanges of separate sessions are fed with their session's number: each session has
    its own browser state (preflight cache, preflights awaiting their request).
    """

    def __init__(self, engine: str | EngineProfile = "chromium", *,
                 keep_exchanges: bool = True, keep_all_headers: bool = False,
                 diagnostics: Diagnostics | None = None,
                 sink: Callable[[ExchangeVerdict], None] | None = None) -> None:
        self.profile = engine if isinstance(engine, EngineProfile) else get_profile(engine)
        self.machine = CorsMachine(self.profile, cors_headers_only=not keep_all_headers)
        self._machines: dict[int, CorsMachine] = {0: self.machine}
        self.sink = sink
        self._out: list[tuple[float, str, int, ExchangeVerdict]] = []
        self._out_seq = 0
        self.counts = ExchangeCounts()
        self.aggregator = Aggregator(self.profile)
        self.security = SecurityReview()
        self.diagnostics = diagnostics if diagnostics is not None else Diagnostics()
        self.keep_exchanges = keep_exchanges and sink is None
        self.keep_all_headers = keep_all_headers
        self._verdicts: list[ExchangeVerdict] = []
        self._findings = FindingMerger()
        self._sources: dict[str, SourceInfo] = {}
        self._sessions: list[SessionInfo] = []
        self._notes: list[str] = []
        self.settled = 0
        self._browser_evidence = False
        """Some exchange carried the browser's own decisions (NetLog): weigh them."""

    def feed(self, exchange: Exchange, session: int = 0, *, normalized: bool = False) -> Fed:
        """Add one exchange (of the given session); returns what it settled (possibly
        earlier exchanges). ``normalized``: the caller already passed it through
        :func:`~corsflow.engine.normalize.normalize`."""
        machine = self._machines.get(session)
        if machine is None:
            machine = self._machines[session] = CorsMachine(
                self.profile, cors_headers_only=not self.keep_all_headers)
        # Before the engine keeps only the CORS headers; as HTTP delivered them, like the engine.
        if not normalized:
            exchange = normalize(exchange)
        self.security.observe(exchange)
        if exchange.hints.browser is not None:
            self._browser_evidence = True
        return self._take(machine.feed(exchange, normalized=True))

    def flush(self) -> Fed:
        """Settle everything still pending (end of input, or a live report on demand).

        The engine is then restarted empty except for its preflight cache, so later
        exchanges can still be fed."""
        verdicts = []
        for machine in self._machines.values():
            verdicts.extend(machine.close())
        return self._take(verdicts)

    def _take(self, verdicts: list[ExchangeVerdict]) -> Fed:
        findings: list[Finding] = []
        if self._browser_evidence:
            verdicts = weigh_browser_decisions(verdicts, self.profile, findings)
        for v in verdicts:
            findings.extend(findings_for(v, self.profile))
            self.aggregator.add(v)
            self.counts.add(v)
        self.settled += len(verdicts)
        if self.keep_exchanges:
            self._verdicts.extend(verdicts)
        for f in findings:
            self._findings.add(f)
        if self.sink is not None:
            self._write_out(verdicts)
        return Fed(tuple(verdicts), tuple(findings))

    @property
    def held_verdicts(self) -> int:
        """Verdicts held in memory: all of them when kept, else those waiting for earlier
        ones to settle before the sink gets them (for bounds tests)."""
        return len(self._verdicts) + len(self._out)

    def _write_out(self, verdicts: list[ExchangeVerdict]) -> None:
        """Hand settled verdicts to the sink in time order, each once nothing earlier can
        still settle."""
        out = self._out
        for v in verdicts:
            # The order report() gives them: by start, then id.
            self._out_seq += 1
            heapq.heappush(out, (v.exchange.started, v.exchange.id, self._out_seq, v))
        if not out:
            return
        watermark = min(m.pending_since() for m in self._machines.values())
        assert self.sink is not None
        while out and out[0][0] < watermark:
            self.sink(heapq.heappop(out)[3])

    def add_source(self, path: str, fmt: SourceFormat, exchanges: int, skipped: int) -> None:
        self._sources[path] = SourceInfo(path, fmt, exchanges, skipped)

    def add_session(self, paths: Sequence[str]) -> None:
        self._sessions.append(SessionInfo(len(self._sessions) + 1, tuple(paths)))

    def note(self, message: str) -> None:
        """Something the report should tell (how files were ordered or grouped)."""
        if message not in self._notes:
            self._notes.append(message)

    def report(self) -> Report:
        """The report of everything settled so far (call :meth:`flush` first at the end)."""
        verdicts = sorted(self._verdicts, key=lambda v: (v.exchange.started, v.exchange.id))
        findings = sort_findings([*self._findings.findings(), *self.aggregator.findings(),
                                  *self.security.findings()])
        d = self.diagnostics
        return Report(
            engine=self.profile.name,
            sources=tuple(self._sources.values()),
            exchanges=tuple(verdicts),
            findings=tuple(findings),
            skipped=tuple(d.skipped),
            skipped_by_reason=tuple(sorted(d.skipped_by_reason.items())),
            notes=tuple(self._notes) + tuple(d.notes) + self.aggregator.notes(),
            sessions=tuple(self._sessions),
            counts=self.counts if self.sink is not None else None,
        )


def analyze_exchanges(exchanges: Iterable[Exchange],
                      engine: str | EngineProfile = "chromium") -> Report:
    """Analyse exchanges already in memory (tests, notebooks, other tools' output)."""
    analysis = Analysis(engine)
    for exchange in exchanges:
        analysis.feed(exchange)
    analysis.flush()
    return analysis.report()


Progress = Callable[[str, int], None]
"""Called now and then with the file being read and how many exchanges it has given."""


class Sink(Protocol):
    """Where :func:`analyze_paths` writes verdicts as they settle."""

    def write(self, verdict: ExchangeVerdict) -> None: ...

    def reset(self) -> None:
        """Forget what was written: the analysis starts again (a second pass)."""


def analyze_paths(paths: Sequence[str], engine: str | EngineProfile | None = "chromium", *,
                  diagnostics: Diagnostics | None = None,
                  progress: Progress | None = None, one_session: bool = False,
                  sink: Sink | None = None, warn_other_engine: bool = False,
                  read_ahead: bool = False) -> Report:
    """Analyse capture files of any supported format, streamed.

    Several files are one session merged by time, whatever order they are named in, unless
    they clearly are separate sessions (:mod:`corsflow.sessions`; ``one_session`` forces
    one). Each file's exchanges are taken in time order even when the file does not list
    them so (:mod:`corsflow.timeorder`). With several files, ids are prefixed by the file's
    number, its rank by path (``"2:e14"``), so they stay unique and do not depend on the
    order of the arguments.

    With a ``sink``, each verdict is written to it in time order as it settles and the
    report keeps none (its ``counts`` stand for them): memory then follows what is live,
    not the input.

    ``engine=None``: the engine the capture shows (:func:`detect_engine` over its first
    exchanges, chromium when it shows none), named with the reason in the report's first
    note. ``warn_other_engine``: with an engine given, a warning when the capture shows
    another.

    ``read_ahead``: where it pays, each file's reader runs in a child process while this
    one analyses (:mod:`corsflow.ingest.ahead`; the command line asks for it). The report
    is the same.

    Raises IngestError when a file cannot be read at all; damaged records are skipped and
    counted in the report.
    """
    numbered = _numbered(paths)
    choice = EngineChoice(engine, warn_other_engine)
    if choice.profile is None and len(numbered) > 1:
        # The session plan depends on the engine (its Max-Age cap): decided before it, from
        # the start of each file (a first pass reads every file anyway).
        choice.decide(sample_engine(paths))
    profile = choice.profile
    unordered: set[str] = set()
    plan_notes: tuple[str, ...] = ()
    starts: dict[int, float] = {}
    groups = [numbered]
    if len(numbered) > 1:
        # A first pass over each file: its time span (files are opened only when the merge
        # reaches them, so a week of captures is not read all at once), its order, and
        # which files make one session.
        scans = [scan_file(path, number) for number, path in numbered]
        starts = {s.number: s.first for s in scans if s.first is not None}
        unordered = {s.path for s in scans if not s.ordered}
        for path in sorted(unordered):
            log.warning("%s: its exchanges are listed out of time order; sorting them", path)
        if not one_session:
            assert profile is not None
            plan = plan_sessions(scans, profile.max_age_cap)
            groups = [[(s.number, s.path) for s in sorted(g, key=lambda s: s.number)]
                      for g in plan.sessions]
            plan_notes = plan.notes
    attempt = diagnostics if diagnostics is not None else Diagnostics()
    while True:
        try:
            if sink is not None:
                sink.reset()
            report = _run(groups, choice, attempt, progress, unordered, plan_notes,
                          starts, prefix=len(numbered) > 1, sink=sink, read_ahead=read_ahead)
        except OutOfOrder as e:
            # Seen only where no first pass was made: sort that file on a second pass.
            log.warning("%s: its exchanges are listed out of time order; reading it again "
                        "to sort them", e.path)
            unordered.add(e.path)
            attempt = Diagnostics(keep=attempt.keep)
            continue
        if diagnostics is not None and attempt is not diagnostics:
            diagnostics.skipped[:] = attempt.skipped
            diagnostics.skipped_by_reason.clear()
            diagnostics.skipped_by_reason.update(attempt.skipped_by_reason)
            diagnostics.notes[:] = attempt.notes
        return report


def _numbered(paths: Sequence[str]) -> list[tuple[int, str]]:
    """Each path with its number: its rank by path (1-based), whatever the argument order."""
    ranked = sorted(range(len(paths)), key=lambda i: paths[i])
    return [(rank, paths[i]) for rank, i in enumerate(ranked, start=1)]


@dataclass(slots=True)
class _Counts:
    format: SourceFormat
    exchanges: int = 0
    skipped: int = 0


def _read(number: int, path: str, counts: _Counts, stream: Iterator[Exchange],
          diagnostics: Diagnostics, prefix: bool,
          progress: Progress | None) -> Iterator[Exchange]:
    """The file's exchanges (ids prefixed when several files are read), counting what it
    gives and what its reader skips even while other files are read in between."""
    while True:
        before = diagnostics.skipped_count
        try:
            exchange = next(stream)
        except StopIteration:
            counts.skipped += diagnostics.skipped_count - before
            if progress is not None:
                progress(path, counts.exchanges)
            return
        counts.skipped += diagnostics.skipped_count - before
        counts.exchanges += 1
        if progress is not None and not counts.exchanges % 500:
            progress(path, counts.exchanges)
        if prefix:
            exchange = dataclasses.replace(exchange, id=f"{number}:{exchange.id}")
        yield exchange


def _run(groups: list[list[tuple[int, str]]], choice: EngineChoice,
         diagnostics: Diagnostics, progress: Progress | None, unordered: set[str],
         plan_notes: tuple[str, ...], starts: dict[int, float], *, prefix: bool,
         sink: Sink | None, read_ahead: bool = False) -> Report:
    counts: dict[int, tuple[str, _Counts]] = {}
    notes: list[str] = []
    """For the report, in the order they arose (some before the engine is chosen)."""
    for note in plan_notes:
        log.warning("%s", note)
        notes.append(note)

    def sorted_note(path: str) -> None:
        notes.append(f"{path} lists its exchanges out of time order: they were sorted by "
                     "start time before the analysis")

    for path in sorted(unordered):
        sorted_note(path)

    def opener(session: int, number: int, path: str) -> Callable[[], Iterator[
            tuple[int, Exchange]]]:
        def open_stream() -> Iterator[tuple[int, Exchange]]:
            fmt = detect_format(path)
            counts[number] = (path, _Counts(fmt))
            # Normalised and sorted with the reading: in the reading child, when there is
            # one (the look-ahead holds thousands of exchanges back); sent to this process,
            # only what it reads. Started already, maybe (reading.start_reading).
            lean, key = lean_reading(path, fmt, path in unordered)
            if read_ahead and (started(path, key) or worth_reading_ahead(path)):
                stream = read_in_child(path, lean, diagnostics, sorted_note, key)
            else:
                stream = ordered(path, fmt, diagnostics, sorted_note,
                                 unordered=path in unordered)
            return _tagged(session, _read(number, path, counts[number][1], iter(stream),
                                          diagnostics, prefix, progress))
        return open_stream

    sources = []
    for session, group in enumerate(groups):
        for number, path in group:
            sources.append((starts.get(number, float("-inf")), number,
                            opener(session, number, path)))
    # One pass over every file, merged by time; each exchange goes to its session's engine,
    # so verdicts settle in time order across sessions too. The engine is told by the first
    # exchanges, held until it is chosen rather than read twice.
    merged = merge_by_time(sources)
    if choice.undecided:
        head = list(islice(merged, DETECT_SAMPLE))
        choice.decide(detect_engine(exchange for _, exchange in head))
        merged = chain(head, merged)
    assert choice.profile is not None
    analysis = Analysis(choice.profile, diagnostics=diagnostics,
                        sink=sink.write if sink is not None else None)
    if choice.note is not None:
        analysis.note(choice.note)
    for group in groups:
        analysis.add_session([path for _, path in group])
    for session, exchange in merged:
        analysis.feed(exchange, session, normalized=True)
    analysis.flush()
    for note in notes:
        analysis.note(note)
    for number in sorted(counts):
        path, c = counts[number]
        analysis.add_source(path, c.format, c.exchanges, c.skipped)
    return analysis.report()


DETECT_SAMPLE = 500
"""Exchanges from the start of a capture that tell which browser made it."""


class EngineChoice:
    """The engine an analysis models: given, or told by the capture once its first
    exchanges are read (:func:`detect_engine`)."""

    def __init__(self, engine: str | EngineProfile | None, warn_other: bool) -> None:
        self.profile: EngineProfile | None = (
            None if engine is None else engine if isinstance(engine, EngineProfile)
            else get_profile(engine))
        self.warn_other = warn_other and engine is not None
        self.decided = False
        self.note: str | None = None
        """The report's first note: which engine is modelled and why (when none was given)."""

    @property
    def undecided(self) -> bool:
        """The capture must still be looked at (to choose, or to warn)."""
        return not self.decided and (self.profile is None or self.warn_other)

    def decide(self, found: Detection) -> None:
        self.decided = True
        if self.profile is not None:
            if found.engine is not None and found.engine != self.profile.name:
                log.warning("--engine %s, but the capture was made by %s (%s)",
                            self.profile.name, found.engine, found.reason)
            return
        self.profile = get_profile(found.engine or "chromium")
        self.note = (f"engine chromium, the default: {found.reason} (--engine chooses another)"
                     if found.engine is None else
                     f"engine {found.engine}, detected from the capture: {found.reason}")


def sample_engine(paths: Sequence[str]) -> Detection:
    """The engine the start of each file shows (its first :data:`DETECT_SAMPLE` exchanges;
    a file that cannot be read is left to the analysis to name)."""
    sample: list[Exchange] = []
    for path in paths:
        try:
            _, stream = open_capture(path, Diagnostics(keep=0))
            sample.extend(islice(stream, DETECT_SAMPLE))
        except (CorsflowError, OSError):
            continue
    return detect_engine(sample)


def _tagged(session: int, stream: Iterator[Exchange]) -> Iterator[tuple[int, Exchange]]:
    for exchange in stream:
        yield session, exchange


def merge_by_time(sources: list[tuple[float, int, Callable[[], Iterator[tuple[int, Exchange]]]]]
                  ) -> Iterator[tuple[int, Exchange]]:
    """The streams merged by start time, each opened only when the merge reaches its first
    start (``-inf``: at once): files that do not overlap are read one after the other."""
    waiting = sorted(sources, key=lambda s: (s[0], s[1]))
    heap: list[tuple[float, int, tuple[int, Exchange], Iterator[tuple[int, Exchange]]]] = []
    opened = 0

    def advance(rank: int, stream: Iterator[tuple[int, Exchange]]) -> None:
        item = next(stream, None)
        if item is not None:
            heapq.heappush(heap, (item[1].started, rank, item, stream))

    while heap or opened < len(waiting):
        while opened < len(waiting) and (not heap or waiting[opened][0] <= heap[0][0]):
            advance(waiting[opened][1], waiting[opened][2]())
            opened += 1
        if not heap:
            continue
        _, rank, item, stream = heapq.heappop(heap)
        yield item
        advance(rank, stream)
