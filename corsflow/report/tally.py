"""Facts every renderer derives from a :class:`~corsflow.analysis.Report`, in plain Python.

The terminal, Markdown, HTML, pandas and matplotlib renderers all need the same few things:
what a preflight cost, which preflights were avoidable, which requests a preflight stood for,
the findings about an exchange, counts per origin and per endpoint. They are computed here
once, without pandas, so the terminal report never imports it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..analysis import Report
from ..engine.events import ExchangeVerdict, Finding
from ..findings import SEVERITY_ORDER
from ..urls import endpoint

CORS_ROLES = ("preflight", "preflighted", "simple")
REQUEST_ROLES = ("preflighted", "simple")

AVOIDABLE_CODES = frozenset(
    {
        "RedundantPreflight",  # a cached result already covered it
        "AvoidablePreflight",  # sent only because of a header or Content-Type the page chose
        "MaxAgeTooShort",  # a repeat a longer Max-Age would have saved
        "MaxAgeDisabled",  # the same, with Max-Age 0
    }
)
"""Findings whose ``exchange_ids`` are preflights the browser need not have sent. (Other
findings about preflights, such as MaxAgeMissing or PerUrlPreflights, name every preflight
concerned, not only those a fix would save; their ``saved`` field counts those.)"""


def is_avoidable_finding(finding: Finding) -> bool:
    """Whether a finding's exchanges are preflights that could have been avoided."""
    return finding.code in AVOIDABLE_CODES


def duration_ms(v: ExchangeVerdict) -> float | None:
    """The exchange's duration in milliseconds, as the capture states it; None when unknown."""
    ex = v.exchange
    if ex.timings is not None and ex.timings.total is not None:
        return ex.timings.total
    if ex.response is not None and ex.response.finished is not None:
        return max(0.0, (ex.response.finished - ex.started) * 1000.0)
    return None


def wait_ms(v: ExchangeVerdict) -> float | None:
    t = v.exchange.timings
    return t.wait if t is not None else None


def origin_label(origin: str | None) -> str:
    """How an absent Origin header is shown in groupings."""
    return origin if origin is not None else "(no Origin)"


@dataclass(slots=True)
class Counts:
    """What happened in one group of exchanges (an origin, an endpoint, the whole report)."""

    exchanges: int = 0
    requests: int = 0
    """Cross-origin requests (``preflighted`` and ``simple``), preflights not included."""
    preflighted: int = 0
    simple: int = 0
    other: int = 0
    preflights: int = 0
    cache_hits: int = 0
    redundant: int = 0
    avoidable: int = 0
    """Preflights that were redundant or that an avoidable-preflight finding names."""
    blocked: int = 0
    """Requests the browser blocked (a failed preflight is counted in ``failed_preflights``)."""
    unknown: int = 0
    """Requests whose verdict the capture cannot settle."""
    failed_preflights: int = 0
    preflight_ms: float = 0.0
    request_ms: float = 0.0
    """Time spent in the group's cross-origin requests (not preflights), where known."""
    methods: Counter[str] = field(default_factory=Counter)

    @property
    def preflight_share(self) -> float | None:
        """Preflight time as a share of all cross-origin time (preflights + requests)."""
        total = self.preflight_ms + self.request_ms
        return self.preflight_ms / total if total > 0 else None

    def add(self, v: ExchangeVerdict, avoidable: bool) -> None:
        self.exchanges += 1
        ms = duration_ms(v)
        if v.role == "other":
            self.other += 1
            return
        if v.role == "preflight":
            self.preflights += 1
            self.failed_preflights += v.verdict == "blocked"
            self.redundant += bool(v.redundant)
            self.avoidable += avoidable
            self.preflight_ms += ms or 0.0
            return
        self.requests += 1
        self.blocked += v.verdict == "blocked"
        self.unknown += v.verdict == "unknown"
        self.methods[v.exchange.method] += 1
        self.request_ms += ms or 0.0
        if v.role == "preflighted":
            self.preflighted += 1
            self.cache_hits += v.cache == "hit"
        else:
            self.simple += 1


@dataclass(frozen=True, slots=True)
class Tally:
    """The report, indexed the ways renderers look at it."""

    report: Report
    by_id: dict[str, ExchangeVerdict]
    findings_for: dict[str, tuple[Finding, ...]]
    """Findings naming each exchange id, most severe first."""
    authorised: dict[str, tuple[str, ...]]
    """Preflight id -> ids of the requests whose ``preflight_id`` names it, in capture order."""
    avoidable: frozenset[str]
    """Ids of avoidable preflights."""
    total: Counts
    origins: dict[str, Counts]
    """Per request Origin (``(no Origin)`` for none), in order of first appearance."""
    cors_by_origin: dict[str, list[ExchangeVerdict]]
    """The cross-origin exchanges of each origin, in capture order."""
    endpoints: dict[str, Counts]
    """Per endpoint (see :func:`~corsflow.report.endpoints.endpoint`), cross-origin only."""
    first_started: float | None

    def findings_of(self, exchange_id: str) -> tuple[Finding, ...]:
        return self.findings_for.get(exchange_id, ())

    def hint_for(self, exchange_id: str) -> str | None:
        """The first fix hint a finding about this exchange offers."""
        for f in self.findings_of(exchange_id):
            if f.hint:
                return f.hint
        return None


def tally(report: Report) -> Tally:
    """Index a report once for rendering."""
    by_id = {v.exchange.id: v for v in report.exchanges}
    findings_for: defaultdict[str, list[Finding]] = defaultdict(list)
    avoidable: set[str] = {v.exchange.id for v in report.exchanges if v.redundant}
    for f in sorted(report.findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 9)):
        for xid in f.exchange_ids:
            findings_for[xid].append(f)
        if is_avoidable_finding(f):
            avoidable.update(
                x for x in f.exchange_ids if x in by_id and by_id[x].role == "preflight"
            )
    authorised: defaultdict[str, list[str]] = defaultdict(list)
    for v in report.exchanges:
        if v.preflight_id is not None and v.role != "preflight":
            authorised[v.preflight_id].append(v.exchange.id)

    total = Counts()
    origins: dict[str, Counts] = {}
    endpoints: dict[str, Counts] = {}
    cors_by_origin: dict[str, list[ExchangeVerdict]] = {}
    for v in report.exchanges:
        is_avoidable = v.exchange.id in avoidable
        total.add(v, is_avoidable)
        label = origin_label(v.origin)
        origins.setdefault(label, Counts()).add(v, is_avoidable)
        if v.role in CORS_ROLES:
            endpoints.setdefault(endpoint(v.exchange.url), Counts()).add(v, is_avoidable)
            cors_by_origin.setdefault(label, []).append(v)
    return Tally(
        report=report,
        by_id=by_id,
        findings_for={k: tuple(fs) for k, fs in findings_for.items()},
        authorised={k: tuple(ids) for k, ids in authorised.items()},
        avoidable=frozenset(avoidable),
        total=total,
        origins=origins,
        cors_by_origin=cors_by_origin,
        endpoints=endpoints,
        first_started=min((v.exchange.started for v in report.exchanges), default=None),
    )


def failures(t: Tally, verdicts: Iterable[ExchangeVerdict]) -> list[ExchangeVerdict]:
    """What the browser refused: blocked requests, and failed preflights whose request is not
    in the capture (a browser does not send the request after a failed preflight, and some
    tools record nothing for it)."""
    return [
        v
        for v in verdicts
        if v.verdict == "blocked" and (v.role != "preflight" or not t.authorised.get(v.exchange.id))
    ]


def failed_step(v: ExchangeVerdict) -> str | None:
    """The decision step that failed, in words, when the trace has one."""
    for step in v.trace:
        if step.outcome == "fail":
            return f"{step.step}: {step.detail}" if step.detail else step.step
    return None
