"""One analysis: exchanges in, a :class:`Report` out. The one library every surface uses.

The CLI, the mitmproxy addon and the notebook API are thin shells over this module:
:class:`Analysis` is fed exchanges one at a time (from files or live flows) and can produce a
:class:`Report` at any moment; :func:`analyze_paths` runs it over capture files.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from .engine.events import ExchangeVerdict, Finding
from .engine.machine import CorsMachine
from .engine.profiles import EngineProfile, get_profile
from .errors import Diagnostics, Skipped
from .findings import Aggregator, findings_for, sort_findings
from .findings.security import SecurityReview
from .ingest import open_capture
from .model import Exchange, SourceFormat


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """One input of the analysis."""

    path: str
    format: SourceFormat
    exchanges: int = 0
    skipped: int = 0


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
    redacted: int | None = None
    """How many secret values outputs had replaced (:func:`corsflow.redact.redact_report`);
    None: not redacted."""
    _index: dict[str, ExchangeVerdict] = field(default_factory=dict, repr=False, compare=False)

    def get(self, exchange_id: str) -> ExchangeVerdict | None:
        """The verdict of one exchange by its id."""
        if not self._index and self.exchanges:
            self._index.update((v.exchange.id, v) for v in self.exchanges)
        return self._index.get(exchange_id)


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
    counts, so memory stays bounded by what is live.
    """

    def __init__(self, engine: str | EngineProfile = "chromium", *,
                 keep_exchanges: bool = True, keep_all_headers: bool = False,
                 diagnostics: Diagnostics | None = None) -> None:
        self.profile = engine if isinstance(engine, EngineProfile) else get_profile(engine)
        self.machine = CorsMachine(self.profile, cors_headers_only=not keep_all_headers)
        self.aggregator = Aggregator(self.profile)
        self.security = SecurityReview()
        self.diagnostics = diagnostics if diagnostics is not None else Diagnostics()
        self.keep_exchanges = keep_exchanges
        self.keep_all_headers = keep_all_headers
        self._verdicts: list[ExchangeVerdict] = []
        self._findings: dict[tuple[str, str, str | None, str], Finding] = {}
        self._sources: dict[str, SourceInfo] = {}
        self.settled = 0

    def feed(self, exchange: Exchange) -> Fed:
        """Add one exchange; returns what it settled (possibly earlier exchanges)."""
        self.security.observe(exchange)  # before the engine keeps only the CORS headers
        return self._take(self.machine.feed(exchange))

    def flush(self) -> Fed:
        """Settle everything still pending (end of input, or a live report on demand).

        The engine is then restarted empty except for its preflight cache, so later
        exchanges can still be fed."""
        return self._take(self.machine.close())

    def _take(self, verdicts: list[ExchangeVerdict]) -> Fed:
        findings: list[Finding] = []
        for v in verdicts:
            findings.extend(findings_for(v, self.profile))
            self.aggregator.add(v)
        self.settled += len(verdicts)
        if self.keep_exchanges:
            self._verdicts.extend(verdicts)
        for f in findings:
            _merge_into(self._findings, f)
        return Fed(tuple(verdicts), tuple(findings))

    def add_source(self, path: str, fmt: SourceFormat, exchanges: int, skipped: int) -> None:
        self._sources[path] = SourceInfo(path, fmt, exchanges, skipped)

    def report(self) -> Report:
        """The report of everything settled so far (call :meth:`flush` first at the end)."""
        verdicts = sorted(self._verdicts, key=lambda v: (v.exchange.started, v.exchange.id))
        findings = sort_findings([*self._findings.values(), *self.aggregator.findings(),
                                  *self.security.findings()])
        d = self.diagnostics
        return Report(
            engine=self.profile.name,
            sources=tuple(self._sources.values()),
            exchanges=tuple(verdicts),
            findings=tuple(findings),
            skipped=tuple(d.skipped),
            skipped_by_reason=tuple(sorted(d.skipped_by_reason.items())),
            notes=tuple(d.notes) + self.aggregator.notes(),
        )


def _merge_into(merged: dict[tuple[str, str, str | None, str], Finding], f: Finding,
                keep_ids: int = 50) -> None:
    """One finding per distinct message: a failure repeated on 300 identical requests is one
    finding that counts 300 (and lists the first ``keep_ids`` of them)."""
    key = (f.code, f.severity, f.url, f.message)
    first = merged.get(key)
    if first is None:
        merged[key] = f
        return
    ids = first.exchange_ids
    if len(ids) < keep_ids:
        ids = ids + tuple(i for i in f.exchange_ids if i not in ids)[: keep_ids - len(ids)]
    merged[key] = dataclasses.replace(
        first, exchange_ids=ids,
        count=(first.count or len(first.exchange_ids)) + (f.count or len(f.exchange_ids)))


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


def analyze_paths(paths: Sequence[str], engine: str | EngineProfile = "chromium", *,
                  diagnostics: Diagnostics | None = None,
                  progress: Progress | None = None) -> Report:
    """Analyse capture files of any supported format, streamed, as one session.

    Raises IngestError when a file cannot be read at all; damaged records are skipped and
    counted in the report. With several files, ids are prefixed by the file's number
    (``"2:e14"``) so they stay unique.
    """
    analysis = Analysis(engine, diagnostics=diagnostics)
    for number, path in enumerate(paths, start=1):
        before = analysis.diagnostics.skipped_count
        fmt, stream = open_capture(path, analysis.diagnostics)
        count = 0
        for exchange in stream:
            if len(paths) > 1:
                exchange = dataclasses.replace(exchange, id=f"{number}:{exchange.id}")
            analysis.feed(exchange)
            count += 1
            if progress is not None and not count % 500:
                progress(path, count)
        if progress is not None:
            progress(path, count)
        analysis.add_source(path, fmt, count, analysis.diagnostics.skipped_count - before)
    analysis.flush()
    return analysis.report()
