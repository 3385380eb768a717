"""Replay a session with the servers' answers changed, and count what the browser would do.

Theory of operation: the page's requests do not depend on the servers' answers, only what
the browser makes of them does. So the replay walks the page's requests in capture order
(one per actual request, and one per preflight the browser sent for a request it then never
sent), rewrites the responses of the servers a :class:`ChangeSet` touches, and lets the
engine's own preflight cache (:class:`PreflightCache`) and checks (``preflight_check``,
``cors_check``) decide again which preflights are sent, which are cache hits and which
requests are blocked. Servers the change set does not touch keep the verdicts the analysis
gave them. A request the capture never shows answered (it was blocked) gets the answer
the changed server would send, built from what the same server sent for the same endpoint;
such outcomes are marked ``predicted``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..engine.cache import PreflightCache
from ..engine.events import ExchangeVerdict
from ..engine.fetch import CheckResult, PreflightOutcome, cors_check, preflight_check
from ..engine.profiles import EngineProfile, get_profile
from ..frozen import quick_init
from ..model import Headers, Response
from ..urls import path_template, url_origin
from .rules import ChangeSet, EditMemo

if TYPE_CHECKING:
    from ..analysis import Report


@quick_init
@dataclass(frozen=True, slots=True)
class PageRequest:
    """One request the page made, whatever the browser did with it."""

    id: str
    """The exchange that shows it: the actual request, or the preflight of a request the
    browser never sent."""
    origin: str
    server: str
    method: str
    url: str
    unsafe: tuple[str, ...]
    credentialed: bool
    started: float
    request: ExchangeVerdict | None
    """The actual request as captured (None: never sent)."""
    preflight: ExchangeVerdict | None
    """The preflight the browser sent for it, if any."""
    needs_preflight: bool


@quick_init
@dataclass(frozen=True, slots=True)
class Outcome:
    """What the browser did (or, after a change, would do) with one page request."""

    verdict: str
    """``allowed``, ``blocked`` or ``unknown``."""
    preflight: bool
    """A preflight was sent for it."""
    cache_hit: bool
    preflight_ms: float
    cors_error: str | None = None
    predicted: bool = False
    """The verdict rests on a response the capture does not show (the request was blocked
    in the capture), built from what the same server answered elsewhere."""


@dataclass(slots=True)
class Totals:
    """Counts over page requests: the before/after columns of a what-if."""

    requests: int = 0
    preflights: int = 0
    cache_hits: int = 0
    blocked: int = 0
    unknown: int = 0
    preflight_ms: float = 0.0

    def add(self, o: Outcome) -> None:
        self.requests += 1
        self.preflights += o.preflight
        self.cache_hits += o.cache_hit
        self.blocked += o.verdict == "blocked"
        self.unknown += o.verdict == "unknown"
        self.preflight_ms += o.preflight_ms

    def as_dict(self) -> dict[str, float | int]:
        return {"requests": self.requests, "preflights": self.preflights,
                "cache_hits": self.cache_hits, "blocked": self.blocked,
                "unknown": self.unknown, "preflight_ms": round(self.preflight_ms, 1)}


@dataclass(frozen=True, slots=True)
class Replay:
    """A session replayed with one change set."""

    changes: ChangeSet
    requests: tuple[PageRequest, ...]
    before: tuple[Outcome, ...]
    after: tuple[Outcome, ...]
    replayed_servers: frozenset[str]

    def totals(self, key: str | None = None) -> dict[str, tuple[Totals, Totals]]:
        """Before/after totals per ``"origin"`` (the page's), per ``"server"``, or all
        (``None``: one row, ``""``)."""
        out: dict[str, tuple[Totals, Totals]] = {}
        for r, b, a in zip(self.requests, self.before, self.after, strict=True):
            name = "" if key is None else (r.origin if key == "origin" else r.server)
            pair = out.setdefault(name, (Totals(), Totals()))
            pair[0].add(b)
            pair[1].add(a)
        return dict(sorted(out.items()))

    @property
    def fixes(self) -> tuple[str, ...]:
        """Page requests blocked as captured and allowed after the change."""
        return tuple(r.id for r, b, a in zip(self.requests, self.before, self.after, strict=True)
                     if b.verdict == "blocked" and a.verdict == "allowed")

    @property
    def breaks(self) -> tuple[str, ...]:
        """Page requests allowed as captured and blocked after the change."""
        return tuple(r.id for r, b, a in zip(self.requests, self.before, self.after, strict=True)
                     if b.verdict == "allowed" and a.verdict == "blocked")

    @property
    def predicted(self) -> int:
        return sum(a.predicted for a in self.after)


# --- the page's requests ---------------------------------------------------------------------


def page_requests(exchanges: Iterable[ExchangeVerdict]) -> list[PageRequest]:
    """The page's requests, in capture order, from the analysis' verdicts."""
    verdicts = list(exchanges)
    paired = {v.preflight_id for v in verdicts
              if v.role in ("preflighted", "simple") and v.cache == "miss" and v.preflight_id}
    by_id = {v.exchange.id: v for v in verdicts if v.role == "preflight"}
    out: list[PageRequest] = []
    for v in verdicts:
        ex = v.exchange
        origin = v.origin or ""
        if v.role in ("preflighted", "simple"):
            pre = by_id.get(v.preflight_id or "") if v.cache == "miss" else None
            out.append(PageRequest(
                ex.id, origin, url_origin(ex.url), ex.method, ex.url, v.unsafe_headers,
                v.credentials == "include",
                pre.exchange.started if pre is not None else ex.started, v, pre,
                v.role == "preflighted"))
        elif v.role == "preflight" and ex.id not in paired:
            method = (ex.request_headers.get("access-control-request-method") or "").strip()
            out.append(PageRequest(
                ex.id, origin, url_origin(ex.url), method, ex.url, v.unsafe_headers,
                v.credentials == "include", ex.started, None, v, True))
    out.sort(key=lambda r: r.started)
    return out


def _duration_ms(v: ExchangeVerdict) -> float:
    ex = v.exchange
    if ex.timings is not None and ex.timings.total is not None:
        return max(ex.timings.total, 0.0)
    if ex.response is not None and ex.response.finished is not None:
        return max((ex.response.finished - ex.started) * 1000, 0.0)
    return 0.0


def outcome_as_captured(r: PageRequest) -> Outcome:
    """The analysis' own account of a page request."""
    pre, req = r.preflight, r.request
    ms = _duration_ms(pre) if pre is not None else 0.0
    hit = req is not None and req.cache == "hit"
    if req is not None:
        return Outcome(req.verdict or "unknown", pre is not None, hit, ms, req.cors_error)
    assert pre is not None
    # A preflight no request followed: blocked when it failed; else the request is unknown.
    verdict = "blocked" if pre.verdict == "blocked" else "unknown"
    return Outcome(verdict, True, False, ms, pre.cors_error)


# --- the replay ------------------------------------------------------------------------------


@dataclass(slots=True)
class _ServerAnswers:
    """What one server was seen to answer, to stand in for answers the capture lacks."""

    preflight_ms: list[float] = field(default_factory=list)
    preflights: dict[tuple[str, str], Response] = field(default_factory=dict)
    """(page origin, path template) -> the last preflight response."""
    actuals: dict[tuple[str, str], Response] = field(default_factory=dict)
    """(page origin, path template) -> the last actual response."""

    def median_ms(self) -> float:
        from statistics import median  # rarely needed, and slow to import

        return median(self.preflight_ms) if self.preflight_ms else 0.0


def _observe(requests: list[PageRequest]) -> dict[str, _ServerAnswers]:
    seen: dict[str, _ServerAnswers] = {}
    for r in requests:
        s = seen.setdefault(r.server, _ServerAnswers())
        key = (r.origin, path_template(r.url))
        if r.preflight is not None and r.preflight.exchange.response is not None:
            s.preflight_ms.append(_duration_ms(r.preflight))
            s.preflights[key] = r.preflight.exchange.response
        if r.request is not None and r.request.exchange.response is not None:
            s.actuals[key] = r.request.exchange.response
            s.actuals.setdefault((r.origin, ""), r.request.exchange.response)
    return seen


def replay(report: Report | Iterable[ExchangeVerdict], changes: ChangeSet,
           engine: str | EngineProfile | None = None, *,
           servers: Iterable[str] | None = None,
           requests: list[PageRequest] | None = None) -> Replay:
    """Replay the session of ``report`` with ``changes`` applied.

    Only the servers the change set touches are replayed (``servers`` names others to
    replay all the same: replaying a server with no change reproduces the analysis)."""
    if isinstance(engine, EngineProfile):
        profile = engine
    else:
        name = engine or getattr(report, "engine", "chromium")
        profile = get_profile(str(name))
    if requests is None:
        exchanges = report.exchanges if hasattr(report, "exchanges") else report
        requests = page_requests(exchanges)
    before = [outcome_as_captured(r) for r in requests]
    all_servers = {r.server for r in requests}
    forced = set(servers) & all_servers if servers else set()
    chosen = changes.servers(all_servers) | forced
    after = list(before)
    seen = _observe(requests)
    caches: dict[str, PreflightCache] = {}
    touched: dict[str, bool] = {}
    memo = _Memo()
    fresh = _FreshSession.of(requests, profile)
    for i, r in enumerate(requests):
        hit = touched.get(r.url)
        if hit is None:
            hit = touched[r.url] = r.server in forced or changes.touches(r.url)
        if hit:
            cache = caches.get(r.server)
            if cache is None:
                cache = caches[r.server] = PreflightCache(profile)
            after[i] = _replay_one(r, before[i], changes, cache, profile, seen[r.server], memo,
                                   fresh)
    return Replay(changes, tuple(requests), tuple(before), tuple(after), frozenset(chosen))


def _preflight_request_headers(r: PageRequest) -> Headers:
    items = [("Origin", r.origin), ("Access-Control-Request-Method", r.method)]
    if r.unsafe:
        items.append(("Access-Control-Request-Headers", ",".join(r.unsafe)))
    return Headers(tuple(items))


@dataclass(slots=True)
class _Memo:
    """What one replay computes again and again for the same few header sets (a session's
    answers differ in little but their time)."""

    edits: EditMemo = field(default_factory=dict)
    preflights: dict[tuple[int, Headers, str, str, tuple[str, ...], bool], PreflightOutcome] = \
        field(default_factory=dict)
    checks: dict[tuple[Headers, str, bool], CheckResult] = field(default_factory=dict)

    def preflight_check(self, response: Response, r: PageRequest,
                        profile: EngineProfile) -> PreflightOutcome:
        key = (response.status, response.headers, r.origin, r.method, r.unsafe, r.credentialed)
        result = self.preflights.get(key)
        if result is None:
            result = self.preflights[key] = preflight_check(
                response.status, response.headers.index(), r.origin, r.method, r.unsafe,
                r.credentialed, profile)
        return result

    def cors_check(self, headers: Headers, r: PageRequest) -> CheckResult:
        key = (headers, r.origin, r.credentialed)
        result = self.checks.get(key)
        if result is None:
            result = self.checks[key] = cors_check(headers.index(), r.origin, r.credentialed)
        return result


@dataclass(slots=True)
class _FreshSession:
    """An engine whose fresh session uses no preflight result until its cache starts
    working (profile.fresh_session_preflights): the replay counts no cache hit on a result
    stored before the capture shows it started, unless the capture shows that very hit."""

    working_from: float
    """When the capture shows the cache working: the result of one URL's n-th captured
    preflight, or the one a captured cache hit used (infinity: never)."""
    early: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, requests: list[PageRequest], profile: EngineProfile) -> _FreshSession | None:
        n = profile.fresh_session_preflights
        if not n:
            return None
        stored = {r.preflight.exchange.id: _stored_at(r.preflight) for r in requests
                  if r.preflight is not None}
        counts: dict[tuple[str, str], int] = {}
        working = float("inf")
        for r in requests:  # in time order
            pre, req = r.preflight, r.request
            if pre is not None and pre.verdict == "allowed":
                key = (r.origin, r.url)
                counts[key] = counts.get(key, 0) + 1
                if counts[key] >= n:
                    working = min(working, stored[pre.exchange.id])
            if req is not None and req.cache == "hit" and req.preflight_id in stored:
                working = min(working, stored[req.preflight_id])
        return cls(working)

    def store(self, preflight_id: str, at: float) -> None:
        if at < self.working_from:
            self.early.add(preflight_id)

    def unused(self, preflight_id: str | None) -> bool:
        """The result a lookup found may not have been used: stored too early."""
        return preflight_id in self.early


def _stored_at(pre: ExchangeVerdict) -> float:
    ex = pre.exchange
    return ex.response.finished if ex.response is not None and ex.response.finished \
        else ex.started


def _replay_one(r: PageRequest, was: Outcome, changes: ChangeSet, cache: PreflightCache,
                profile: EngineProfile, seen: _ServerAnswers, memo: _Memo,
                fresh: _FreshSession | None = None) -> Outcome:
    req = r.request
    if req is not None and req.verdict == "unknown" and req.unknown_reason and r.needs_preflight \
            and r.preflight is None and req.cache is None:
        return was  # its preflight is not in the capture: nothing to replay it from
    preflight_sent, hit, ms = False, False, 0.0
    key = (r.origin, path_template(r.url))
    if r.needs_preflight:
        # A preflight the browser sent although a cached result covered it (DevTools'
        # "Disable cache", another tab) is sent again: its cause is not the server's.
        forced = r.preflight is not None and bool(r.preflight.redundant)
        answer = cache.lookup(r.origin, r.url, r.method, r.unsafe, r.credentialed, r.started)
        if answer.outcome == "hit" and not forced and not (
                fresh is not None and not was.cache_hit and fresh.unused(answer.preflight_id)):
            hit = True
        else:
            preflight_sent = True
            pre = r.preflight
            base = pre.exchange.response if pre is not None else seen.preflights.get(key)
            ms = _duration_ms(pre) if pre is not None else seen.median_ms()
            if base is None:
                return Outcome("unknown", True, False, ms)
            response = changes.respond(base, "OPTIONS", r.url, r.origin,
                                       _preflight_request_headers(r), True,
                                       memo=memo.edits) or base
            result = memo.preflight_check(response, r, profile)
            if not result.check.ok:
                return Outcome("blocked", True, False, ms, result.check.error)
            stored_at = (r.started + ms / 1000) if pre is None else _stored_at(pre)
            stored_id = pre.exchange.id if pre is not None else f"{r.id}~preflight"
            cache.store(r.origin, r.url, r.credentialed, result.methods or (),
                        result.headers or (), result.max_age.seconds, stored_at, stored_id)
            if fresh is not None:
                fresh.store(stored_id, stored_at)
            if req is None and pre is not None and pre.verdict != "blocked":
                # A preflight that passed and no request followed in the capture.
                return Outcome("unknown", True, False, ms)
    # The actual request's own response.
    actual_headers = Headers((("Origin", r.origin),))
    recorded = req.exchange.response if req is not None else None
    predicted = recorded is None
    if recorded is not None:
        changed = changes.respond(recorded, r.method, r.url, r.origin, actual_headers, False,
                                  memo=memo.edits)
        if changed is None and not _preflight_stage(was.cors_error):
            return Outcome(was.verdict, preflight_sent, hit, ms, was.cors_error)
        response = changed or recorded
    elif req is not None and (req.verdict == "unknown" or not r.needs_preflight):
        # No answer in the capture: unknown stays unknown; a simple request the browser
        # blocked is predicted only when the change touches its answer.
        if req.verdict == "unknown":
            return Outcome("unknown", preflight_sent, hit, ms)
        base = _actual_base(r, seen, key)
        changed = changes.respond(base, r.method, r.url, r.origin, actual_headers, False,
                                  memo=memo.edits)
        if changed is None:
            return Outcome(was.verdict, preflight_sent, hit, ms, was.cors_error)
        response = changed
    else:
        base = _actual_base(r, seen, key)
        response = changes.respond(base, r.method, r.url, r.origin, actual_headers,
                                   False, memo=memo.edits) or base
    check = memo.cors_check(response.headers, r)
    if check.ok:
        return Outcome("allowed", preflight_sent, hit, ms, None, predicted)
    return Outcome("blocked", preflight_sent, hit, ms, check.error, predicted)


def _actual_base(r: PageRequest, seen: _ServerAnswers, key: tuple[str, str]) -> Response:
    """The answer the server would most likely give to a request the capture shows no
    answer for: what it answered this page on the same endpoint; else what its CORS layer
    put on this endpoint's preflight (Allow-Origin, Allow-Credentials, Vary); else what it
    answered this page on another endpoint."""
    base = seen.actuals.get(key)
    if base is not None:
        return base
    pre_base = seen.preflights.get(key)
    if pre_base is None and (r.origin, "") in seen.actuals:
        return seen.actuals[(r.origin, "")]
    kept = tuple((n, v) for n, v in (pre_base.headers.items if pre_base else ())
                 if n.lower() in ("access-control-allow-origin",
                                  "access-control-allow-credentials", "vary"))
    return Response(200, Headers(kept))


def _preflight_stage(cors_error: str | None) -> bool:
    return cors_error is not None and (cors_error.startswith("Preflight")
                                       or cors_error.endswith("PreflightResponse"))
