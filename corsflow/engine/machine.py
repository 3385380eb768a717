"""The pairing state machine: exchanges in capture order in, settled verdicts out (sans-IO).

Theory of operation
-------------------
Captures do not list exchanges in the order the browser issued them: a pcap or a proxy
completes exchanges out of order, and Chrome's HAR dates an actual request a few
milliseconds *before* the preflight sent for it. So exchanges first wait in a small reorder
buffer ordered by start time and are processed once the capture has moved ``window``
seconds past them; a request that needs a preflight may look ahead into that buffer for it.

Processing keeps, per (origin, URL):
- preflights waiting for the request they were sent for (``_waiting``). A preflight's verdict
  is settled when its request arrives (which also tells the credentials mode) or when
  ``pair_timeout`` seconds of capture time pass without one;
- the simulated preflight cache (:class:`PreflightCache`), which decides cache hits for
  requests that arrive without a preflight and flags preflights sent while a valid cached
  result covered them.

Nothing here is unbounded: the buffer holds ``window`` seconds of traffic, waiting
preflights expire after ``pair_timeout``, and the cache is capped and swept by expiry.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field, replace
from functools import lru_cache
from urllib.parse import urljoin, urlsplit

from ..model import Exchange
from .cache import PreflightCache
from .compact import cors_headers_only
from .events import Credentials, ExchangeVerdict, MaxAge, TraceStep
from .fetch import (
    CheckResult,
    PreflightOutcome,
    cors_check,
    is_redirect_status,
    preflight_check,
)
from .infer import RequestView, is_no_cache_mode_value, split_header_names, view_request
from .normalize import normalize
from .profiles import EngineProfile

CORS_FAILURE = "net::ERR_FAILED"
"""What Chromium records (HAR ``_error``, Playwright ``_failureText``) for a request it
blocked by CORS."""

RECORDS_BLOCKED_REQUESTS = frozenset({"Playwright"})
"""HAR creators that record every request the page made, a blocked one as a failure with
no response (Playwright: status -1, ``_failureText``), but no preflights. A preflighted
request they recorded with its response was sent, so its preflight (or a cached result)
passed: its own response decides its verdict."""

MODEL_CONTRADICTED = "the capture contradicts the engine model"
"""The unknown_reason of a request the browser sent although the model says it could not."""

PRIVATE_NETWORK_ERRORS = frozenset({"PreflightMissingAllowPrivateNetwork",
                                    "PreflightInvalidAllowPrivateNetwork"})

PREFLIGHT_CORS_CHECK_ERRORS = frozenset({
    "PreflightMissingAllowOriginHeader", "PreflightAllowOriginMismatch",
    "PreflightInvalidAllowOriginValue", "PreflightMultipleAllowOriginValues",
    "PreflightWildcardOriginNotAllowed", "PreflightInvalidAllowCredentials"})
"""A preflight refused by the CORS check of its response (#cors-check), before its status
(in Chromium and Firefox) and its Allow-Methods/-Headers are looked at."""


@lru_cache(maxsize=256)
def _not_cors_trace(reason: str) -> tuple[TraceStep, ...]:
    """Most exchanges of a capture are not CORS requests, for a handful of reasons: they
    share one trace each rather than carry a copy."""
    return (TraceStep("Is it a CORS request?", "info", f"no: {reason}", "#http-cors-protocol"),)


_SHARED_MAX = 4096
_SHARED_STEPS: dict[TraceStep, TraceStep] = {}
_SHARED_TRACES: dict[tuple[TraceStep, ...], tuple[TraceStep, ...]] = {}


def _share_trace(steps: list[TraceStep]) -> tuple[TraceStep, ...]:
    """The trace as a tuple shared with every verdict whose trace reads the same (bounded
    memos): requests from one origin to one API mostly repeat the same steps, and a report
    keeps every verdict."""
    if len(_SHARED_STEPS) >= _SHARED_MAX:
        _SHARED_STEPS.clear()
    if len(_SHARED_TRACES) >= _SHARED_MAX:
        _SHARED_TRACES.clear()
    trace = tuple([_SHARED_STEPS.setdefault(step, step) for step in steps])
    return _SHARED_TRACES.setdefault(trace, trace)


def _headers_map(exchange: Exchange) -> dict[str, tuple[str, ...]]:
    """Response headers as lower-case name -> values, for the checks."""
    if exchange.response is None:
        return {}
    # Not cached on the headers: the verdict keeps them, and the index would double them.
    return exchange.response.headers.index()


@dataclass(slots=True)
class _Preflight:
    exchange: Exchange
    view: RequestView
    outcomes: dict[bool, PreflightOutcome | None]
    """Outcome of the checks when credentialed (True) and not (False); None: no response."""
    covered: dict[bool, str | None]
    """Whether the cache already covered it when it was sent, per credentials mode (the
    preflight id that did), before this preflight changed anything."""
    covered_at: dict[bool, float | None]
    """When each of those results was stored."""
    deadline: float
    siblings: tuple[float, ...] = ()
    """When other preflights to the URL went out, less than LOOKUP_LAG before or after it:
    in an engine whose lookups erase what they find insufficient, one sent after the result
    that covered this one was stored may have erased it first."""
    lenient: dict[bool, PreflightOutcome | None] | None = None
    """On a Private Network Access preflight: the outcomes without its private-network check,
    for Chromium's warning mode (the check fails, the request is sent all the same)."""


PAIR_TIMEOUT = 30.0
"""Seconds of capture time a preflight waits for the request it was sent for."""


@dataclass(slots=True)
class CorsMachine:
    """Feed exchanges with :meth:`feed`; each call returns the verdicts it settled.
    Call :meth:`close` at the end of the capture to settle the rest."""

    profile: EngineProfile
    window: float = 2.0
    pair_timeout: float = PAIR_TIMEOUT
    cors_headers_only: bool = True
    """Once an exchange is read, keep only the headers the verdict and the findings use, so
    what the verdicts carry (and a report keeps) does not grow with the capture's headers."""
    cache: PreflightCache = field(init=False)
    _buffer: list[tuple[float, int, Exchange]] = field(default_factory=list)
    _ahead: dict[tuple[str, str], list[tuple[float, int, Exchange]]] = field(default_factory=dict)
    """The preflights in the buffer, by (origin, URL), for :meth:`_look_ahead`."""
    _taken: set[int] = field(default_factory=set)
    _seq: int = 0
    _newest: float = float("-inf")
    _waiting: dict[tuple[str, str], list[_Preflight]] = field(default_factory=dict)
    _deadlines: list[tuple[float, int, tuple[str, str], str]] = field(default_factory=list)
    _maybe_unstored: dict[str, None] = field(default_factory=dict)
    """Preflights sent with the cache bypassed whose result the engine may not have stored
    (Chromium: fetch() 'no-store' stores nothing, 'reload' and 'Disable cache' do; the wire
    cannot tell them apart). The newest few thousand, oldest first."""
    _early: dict[str, None] = field(default_factory=dict)
    """Results stored while the session may still have been fresh, which the engine then
    never uses (profile.fresh_session_preflights). The newest few thousand, oldest first."""
    _last_preflight: dict[tuple[str, str], float] = field(default_factory=dict)
    """Per (origin, URL), when the last preflight processed went out (the newest few
    thousand URLs)."""
    _round_trips: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    """Per (origin, URL), when the last few CORS requests were answered: a request answered
    between a result's store and a preflight shows the page went on after it (see
    :meth:`_just_stored`). The newest few thousand URLs."""
    _fresh_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    """Until the session is past that warm-up: the results stored per (origin, URL)."""
    _warm: bool = False
    _cleared: set[str] = field(default_factory=set)
    """Preflights whose failure already dropped their URL's results when they arrived (it was
    certain then): their verdict, settled later, must not drop newer results again."""

    def __post_init__(self) -> None:
        self.cache = PreflightCache(self.profile)

    # -- input --------------------------------------------------------------------------------

    def feed(self, exchange: Exchange, *, normalized: bool = False) -> list[ExchangeVerdict]:
        """Add one exchange; returns the verdicts it settled. ``normalized``: the caller
        already passed it through :func:`normalize` (done once, it is not cheap)."""
        if not normalized:
            exchange = normalize(exchange)
        self._seq += 1
        item = (exchange.started, self._seq, exchange)
        heapq.heappush(self._buffer, item)
        if exchange.method == "OPTIONS":
            headers = exchange.request_headers
            origin = headers.get("origin")
            if origin is not None and "access-control-request-method" in headers:
                self._ahead.setdefault((origin, exchange.url), []).append(item)
        self._newest = max(self._newest, exchange.started)
        out: list[ExchangeVerdict] = []
        self._release(self._newest - self.window, out)
        return out

    def close(self) -> list[ExchangeVerdict]:
        """End of input: process everything buffered and settle every waiting preflight."""
        out: list[ExchangeVerdict] = []
        self._release(float("inf"), out)
        return out

    def pending_since(self) -> float:
        """The earliest start time of an exchange fed but not yet settled (infinity when
        none): every verdict still to come is of an exchange that started no earlier, so
        settled verdicts before it can be written out in time order."""
        earliest = self._buffer[0][0] if self._buffer else float("inf")
        for waiting in self._waiting.values():
            for p in waiting:
                earliest = min(earliest, p.exchange.started)
        return earliest

    @property
    def live_state(self) -> int:
        """How many objects the machine holds (buffered, waiting, cached): for bounds tests."""
        return len(self._buffer) + sum(map(len, self._waiting.values())) + len(self.cache)

    def _release(self, watermark: float, out: list[ExchangeVerdict]) -> None:
        while self._buffer and self._buffer[0][0] <= watermark:
            started, seq, exchange = heapq.heappop(self._buffer)
            if exchange.method == "OPTIONS":
                self._forget_ahead(seq, exchange)
            if seq in self._taken:
                self._taken.discard(seq)
                continue
            n = len(out)
            self._expire(started, out)
            self._process(exchange, out)
            self._forget_failed(out, n)
        n = len(out)
        self._expire(watermark, out)
        self._forget_failed(out, n)

    def _forget_failed(self, out: list[ExchangeVerdict], start: int) -> None:
        """Where the engine does so, a failed CORS request or preflight drops its URL's
        cached results (profiles.failure_clears_url_entries, refused_preflight_clears_url)."""
        for v in out[start:]:
            if v.role == "preflight" and v.exchange.id in self._cleared:
                self._cleared.discard(v.exchange.id)
                continue
            if v.verdict == "blocked" and v.origin is not None and self._clears(
                    v.role, v.cors_error):
                self.cache.forget_url(v.origin, v.exchange.url, v.exchange.started)

    def _clears(self, role: str, error: str | None) -> bool:
        """Whether this failure drops the URL's cached results in the engine."""
        return self.profile.failure_clears_url_entries or (
            self.profile.refused_preflight_clears_url and role == "preflight"
            and error in PREFLIGHT_CORS_CHECK_ERRORS)

    def _forget_ahead(self, seq: int, exchange: Exchange) -> None:
        key = (exchange.request_headers.get("origin") or "", exchange.url)
        items = self._ahead.get(key)
        if items:
            items[:] = [i for i in items if i[1] != seq]
            if not items:
                del self._ahead[key]

    def _expire(self, now: float, out: list[ExchangeVerdict]) -> None:
        while self._deadlines and self._deadlines[0][0] < now:
            _, _, key, pid = heapq.heappop(self._deadlines)
            waiting = self._waiting.get(key)
            if not waiting:
                continue
            for i, p in enumerate(waiting):
                if p.exchange.id == pid:
                    del waiting[i]
                    out.append(self._settle_alone(p))
                    break
            if not waiting:
                del self._waiting[key]

    # -- dispatch -----------------------------------------------------------------------------

    def _process(self, exchange: Exchange, out: list[ExchangeVerdict]) -> None:
        view = view_request(exchange, self.profile)
        if self.cors_headers_only:
            exchange = cors_headers_only(exchange, view.cors)
        if view.preflight:
            self._on_preflight(exchange, view)
        elif not view.cors:
            out.append(ExchangeVerdict(exchange, "other", view.origin, None,
                                       trace=_not_cors_trace(view.not_cors_reason or "")))
        else:
            self._on_request(exchange, view, out)

    # -- preflights ---------------------------------------------------------------------------

    def _on_preflight(self, exchange: Exchange, view: RequestView) -> None:
        assert view.origin is not None and view.requested_method is not None
        outcomes: dict[bool, PreflightOutcome | None] = {}
        lenient: dict[bool, PreflightOutcome | None] | None = None
        for creds in (False, True):
            if exchange.response is None:
                outcomes[creds] = None
            else:
                outcomes[creds] = preflight_check(
                    exchange.response.status, _headers_map(exchange), view.origin,
                    view.requested_method, view.requested_headers, creds, self.profile,
                    view.private_network)
        if view.private_network and exchange.response is not None:
            lenient = {creds: preflight_check(
                exchange.response.status, _headers_map(exchange), view.origin,
                view.requested_method, view.requested_headers, creds, self.profile)
                for creds in (False, True)}
        answers = {
            creds: self.cache.lookup(view.origin, exchange.url, view.requested_method,
                                     view.requested_headers, creds, exchange.started,
                                     mutate=False)
            for creds in (False, True)
        }
        end = exchange.response.finished if exchange.response and exchange.response.finished \
            else exchange.started
        pending = _Preflight(exchange, view, outcomes,
                             {creds: a.preflight_id for creds, a in answers.items()},
                             {creds: a.stored for creds, a in answers.items()},
                             end + self.pair_timeout, self._siblings(view.origin, exchange),
                             lenient)
        # The credentials mode is known here only when the cache shows it; otherwise the
        # uncredentialed lookup is the one that erases least (a credentialed request's may
        # have erased a little more). A credentialed one erases the uncredentialed result
        # it found insufficient, where the engine does that.
        credentialed = self._credentialed_by_cache(pending)
        self._looked_up(pending, credentialed)
        sure = [outcomes[True]] if credentialed else list(outcomes.values())
        if all(o is not None and not o.check.ok and self._clears("preflight", o.check.error)
               for o in sure):
            # It fails in the mode it was sent in (or whatever the mode) in a way that drops
            # the URL's results: the engine drops them now, not when the verdict settles.
            self.cache.forget_url(view.origin, exchange.url, exchange.started)
            self._cleared.add(exchange.id)
        key = (view.origin, exchange.url)
        self._waiting.setdefault(key, []).append(pending)
        self._seq += 1
        heapq.heappush(self._deadlines, (pending.deadline, self._seq, key, exchange.id))

    def _take_waiting(self, exchange: Exchange, view: RequestView) -> _Preflight | None:
        """The preflight sent for this request: waiting, or just ahead in the buffer."""
        assert view.origin is not None
        key = (view.origin, exchange.url)
        browser = exchange.hints.browser
        if browser is not None and (browser.preflight_id is not None or browser.cache):
            # Chromium's NetLog links a request to the preflight sent for it (or logs that
            # it looked the cache up and sent none): the browser's word, not a guess. A
            # request it never sent is dated before its preflight.
            found = next((p for p in self._waiting.get(key, [])
                          if p.exchange.id == browser.preflight_id), None)
            if found is None and browser.preflight_id is not None:
                found = self._look_ahead(exchange, view, browser.preflight_id)
        else:
            found = self._pick(self._waiting.get(key, []), exchange, view)
            if found is None and exchange.source.format == "har":
                # Only a HAR dates a request before its preflight (Chrome's); on the wire
                # and in a proxy a request comes after the preflight it waited for.
                found = self._look_ahead(exchange, view)
        if found is not None:
            waiting = self._waiting.get(key, [])
            waiting.remove(found)
            if not waiting:
                self._waiting.pop(key, None)
        return found

    def _pick(self, candidates: list[_Preflight], exchange: Exchange,
              view: RequestView) -> _Preflight | None:
        same_method = [p for p in candidates if p.view.requested_method == exchange.method] or [
            # mitmproxy's HAR export upper-cases methods: a `patch` preflight's request shows
            # as PATCH there. Case only decides when nothing matches exactly.
            p for p in candidates
            if (p.view.requested_method or "").upper() == exchange.method.upper()]
        wanted = set(view.unsafe_names)
        exact = [p for p in same_method if set(p.view.requested_headers) == wanted]
        # The inferred header set can miss or add a header the browser treats otherwise, so
        # a preflight asking for a subset or superset still fits; a disjoint one was for
        # another request (one the browser then blocked, say).
        close = [p for p in same_method
                 if set(p.view.requested_headers) <= wanted or wanted <= set(p.view.requested_headers)]
        if not view.preflight_reasons:
            # A request that needs no preflight takes only one that asked for nothing beyond
            # its method (a forced preflight): one that asked for headers was another
            # request's, in flight beside it or blocked.
            close = []
        if (exchange.response is not None and exchange.failure is None
                and any(self._refused(p, view) for p in exact + close)
                and self._cache_serves(exchange, view, view.credentials == "include")):
            # A preflight that fails in the mode it was sent in was for a request the
            # browser blocked: a request it sent, which a cached result still covers, went on
            # that result (and where none covers it, the model is contradicted: said so).
            # Timing alone cannot tell: through a proxy a request may follow its preflight's
            # answer by tens of milliseconds.
            exact, close = ([p for p in ps if not self._refused(p, view)]
                            for ps in (exact, close))
        if exchange.source.format != "har":
            # On the wire and in a proxy a request goes out after its preflight's answer
            # came back; only a HAR's clock may say otherwise.
            exact, close = ([p for p in ps if _answered(p.exchange) <= exchange.started]
                            for ps in (exact, close))
        pool = exact or close
        if not pool:
            return None
        # The browser sends a request as soon as its preflight is answered: of several that
        # fit, the one answered last before the request started is its own; older ones were
        # for requests the browser blocked (or the capture lost), and settle alone.
        before = [p for p in pool if _answered(p.exchange) <= exchange.started]
        return max(before, key=lambda p: _answered(p.exchange)) if before else pool[0]

    def _look_ahead(self, exchange: Exchange, view: RequestView,
                    preflight_id: str | None = None) -> _Preflight | None:
        """Chrome's HAR dates the actual request before its preflight: find that preflight
        in the reorder buffer (linked by ``_initiator.url``, or within the window; or the
        one ``preflight_id`` names)."""
        best: tuple[float, int, Exchange] | None = None
        # When the response's head arrived: a redirect's body can end well after that.
        response = exchange.response
        answered = _answered(exchange) if response and response.finished is not None else None
        wanted = set(view.unsafe_names)
        for item in self._ahead.get((view.origin or "", exchange.url), ()):
            started, seq, candidate = item
            if seq in self._taken or started - exchange.started > self.window:
                continue
            if preflight_id is not None:
                if candidate.id == preflight_id:
                    best = item
                    break
                continue
            if answered is not None and started > answered:
                continue  # sent after this request was answered: not its preflight
            acrm = (candidate.request_headers.get("access-control-request-method") or "").strip()
            if acrm.upper() != exchange.method.upper():
                continue
            asked = set(split_header_names(
                candidate.request_headers.get("access-control-request-headers")))
            if asked != wanted and (not view.preflight_reasons
                                    or not (asked <= wanted or wanted <= asked)):
                continue  # the fit _pick asks for; a request needing none takes only an exact one
            if best is None or item[:2] < best[:2]:
                best = item
        if best is None:
            return None
        self._taken.add(best[1])
        self._forget_ahead(best[1], best[2])
        pre_view = view_request(best[2], self.profile)
        self._on_preflight(cors_headers_only(best[2], True) if self.cors_headers_only
                           else best[2], pre_view)
        waiting = self._waiting.get((pre_view.origin or "", best[2].url), [])
        if preflight_id is not None:
            return next((p for p in waiting if p.exchange.id == preflight_id), None)
        return self._pick(waiting, exchange, view)

    def _settle_alone(self, p: _Preflight) -> ExchangeVerdict:
        """A preflight that no request followed within the pairing timeout."""
        ex = p.exchange
        trace = [TraceStep("Request sent after the preflight", "info",
                           "none in the capture", "#cors-preflight-fetch")]
        omit, include = p.outcomes[False], p.outcomes[True]
        if omit is None or include is None:
            return self._preflight_verdict(
                p, "unknown", None, False, trace,
                unknown_reason=f"the preflight got no response ({ex.failure or 'none captured'})")
        if self._credentialed_by_cache(p):
            trace.append(self._credentialed_step(p))
            return self._preflight_verdict(p, "allowed" if include.check.ok else "blocked",
                                           include, True, trace, credentials="include")
        if omit.check.ok and include.check.ok:
            return self._preflight_verdict(p, "allowed", omit, False, trace)
        if not omit.check.ok and not include.check.ok:
            if include.check.error != omit.check.error:
                # Blocked either way, but the browser names the first check that fails, and
                # that depends on the mode: say which one is assumed, as for a response.
                trace.append(TraceStep(
                    "Credentials mode", "info",
                    f"assumed not credentialed (fetch()'s default; no request follows it to "
                    f"tell); had the page used credentials: 'include', the browser would "
                    f"report {include.check.error} instead", "#cors-protocol-and-credentials"))
            return self._preflight_verdict(p, "blocked", omit, False, trace)
        # Only one credentials mode passes, and the mode is not on the wire. No request in
        # the capture fits a blocked credentialed request, but just as well a capture that
        # ended (or a filter that dropped the request, or a one-directional trace): the
        # capture does not prove a failure, so it is not reported as one.
        passing_creds = include.check.ok
        failing = omit if passing_creds else include
        trace.append(TraceStep(
            "Credentials mode", "unknown",
            f"the preflight passes only {'with' if passing_creds else 'without'} credentials "
            f"(otherwise {failing.check.error}); no request follows it in the capture, so "
            "its credentials mode, and whether it was blocked, cannot be told",
            "#cors-protocol-and-credentials"))
        return self._preflight_verdict(
            p, "unknown", None, False, trace,
            unknown_reason=f"it passes only {'with' if passing_creds else 'without'} "
                           f"credentials (otherwise {failing.check.error}) and the capture has "
                           "no request after it to tell which mode was used: the capture may "
                           "have ended, or a filter dropped the request")

    def _siblings(self, origin: str, exchange: Exchange) -> tuple[float, ...]:
        """When other preflights to the URL went out within LOOKUP_LAG of this one (the last
        one processed, and those still in the reorder buffer); notes this one's time."""
        key = (origin, exchange.url)
        last = self._last_preflight.pop(key, None)
        self._last_preflight[key] = exchange.started
        if len(self._last_preflight) > 4096:
            del self._last_preflight[next(iter(self._last_preflight))]
        near = [started for started, _, ex in self._ahead.get(key, ())
                if ex is not exchange and 0 <= started - exchange.started < LOOKUP_LAG]
        if last is not None and exchange.started - last < LOOKUP_LAG:
            near.append(last)
        return tuple(near)

    def _erased_by_sibling(self, p: _Preflight, creds: bool) -> bool:
        """A sibling sent after the covering result was stored may have looked it up, found
        it insufficient and erased it, before this preflight's lookup."""
        stored = p.covered_at[creds]
        return (self.profile.erases_on_insufficient_hit and stored is not None
                and any(t > stored for t in p.siblings))

    def _round_trip(self, origin: str, exchange: Exchange) -> None:
        if exchange.response is None:
            return
        key = (origin, exchange.url)
        times = self._round_trips.pop(key, [])
        times.append(_answered(exchange))
        self._round_trips[key] = times[-4:]
        if len(self._round_trips) > 4096:
            del self._round_trips[next(iter(self._round_trips))]

    def _just_stored(self, p: _Preflight, creds: bool) -> bool:
        """The result that covered the preflight was stored too shortly before it was sent
        to say the browser had it at its lookup: no request to the URL was answered in
        between (the page going on after a round trip would show it had)."""
        stored = p.covered_at[creds]
        if stored is None or p.exchange.started - stored >= LOOKUP_LAG:
            return False
        assert p.view.origin is not None
        answered = self._round_trips.get((p.view.origin, p.exchange.url), ())
        return not any(stored <= a <= p.exchange.started for a in answered)

    def _credentialed_by_cache(self, p: _Preflight) -> bool:
        """A cached result covered this preflight's request if uncredentialed, yet the
        browser sent the preflight (and not because its HTTP cache was bypassed, nor while a
        fresh session ignores its results): it was credentialed. (Had that result been for
        a credentialed request, whose mode the capture may not show, it would have covered
        this one in either mode.)"""
        return (p.covered[False] is not None and p.covered[True] is None
                and not p.view.cache_bypass and p.covered[False] not in self._early
                and not self._just_stored(p, False) and not self._erased_by_sibling(p, False))

    def _cache_serves(self, exchange: Exchange, view: RequestView, creds: bool) -> bool:
        assert view.origin is not None
        return self.cache.lookup(view.origin, exchange.url, exchange.method, view.unsafe_names,
                                 creds, exchange.started, mutate=False).outcome == "hit"

    def _refused(self, p: _Preflight, view: RequestView) -> bool:
        """The preflight fails in the mode it was sent in: the request's, when the capture
        shows it; the one the cache shows; or whichever it was."""
        if view.credentials != "unknown":
            modes = [view.credentials == "include"]
        elif self._credentialed_by_cache(p):
            modes = [True]
        else:
            modes = [False, True]
        return all((o := p.outcomes[m]) is not None and not o.check.ok for m in modes)

    @staticmethod
    def _credentialed_step(p: _Preflight) -> TraceStep:
        return TraceStep(
            "Credentials mode", "info",
            f"inferred 'include': the uncredentialed result of {p.covered[False]} was still "
            "cached, and only a credentialed request would not have used it",
            "#cors-preflight-cache")

    def _preflight_verdict(self, p: _Preflight, verdict: str, outcome: PreflightOutcome | None,
                           creds: bool, trace: list[TraceStep], *,
                           unknown_reason: str | None = None,
                           credentials: Credentials = "unknown",
                           private_network_warning: str | None = None) -> ExchangeVerdict:
        ex, view = p.exchange, p.view
        if verdict == "allowed" and outcome is not None:
            self._store(p, creds if credentials != "unknown" else None)
        steps = [TraceStep("CORS-preflight request", "info",
                           f"asks for {view.requested_method}"
                           + (f" with {', '.join(view.requested_headers)}"
                              if view.requested_headers else "")
                           + f" from {view.origin}", "#cors-preflight-fetch")]
        if outcome is not None:
            steps.extend(outcome.check.trace)
        if private_network_warning is not None:
            steps.append(TraceStep(
                "Private Network Access", "fail",
                f"{private_network_warning}: the browser sent the request all the same, so it "
                "enforced Private Network Access in warning mode only; where it is enforced, "
                "this preflight fails", "#cors-preflight"))
        covered_by = p.covered[creds]
        redundant: bool | None = covered_by is not None
        cause = None
        if covered_by in self._maybe_unstored and not view.cache_bypass:
            redundant, covered_by = None, None
            steps.append(TraceStep(
                "Preflight cache", "unknown",
                f"the only cached result that could have covered it came from a preflight sent "
                f"with the cache bypassed; {self.profile.name} stores none for fetch() with "
                "cache 'no-store' (it does for 'reload' and DevTools' 'Disable cache'), and the "
                "capture cannot tell them apart", "#cors-preflight-cache"))
        elif covered_by is not None and self._just_stored(p, creds):
            steps.append(TraceStep(
                "Preflight cache", "unknown",
                f"the cached result that covered it (from {covered_by}) was stored "
                f"{(ex.started - (p.covered_at[creds] or ex.started)) * 1000:.0f} ms before "
                "this preflight was sent: the browser may have looked the cache up before "
                "that (fetches started together do)", "#cors-preflight-cache"))
            redundant, covered_by = None, None
        elif covered_by is not None and self._erased_by_sibling(p, creds):
            steps.append(TraceStep(
                "Preflight cache", "unknown",
                f"a cached result (from {covered_by}) covered it, but another preflight to "
                f"this URL went out within {LOOKUP_LAG * 1000:.0f} ms of it: "
                f"{self.profile.name} erases a result a lookup finds insufficient, and that "
                "preflight's lookup may have come first", "#cors-preflight-cache"))
            redundant, covered_by = None, None
        elif covered_by in self._early:
            steps.append(TraceStep(
                "Preflight cache", "unknown",
                f"the cached result that covered it (from {covered_by}) was stored before any "
                f"URL had been preflighted {self.profile.fresh_session_preflights} times: a "
                f"fresh {self.profile.name} session may use none of the results it stores "
                "until then, and the capture cannot tell whether this session was fresh",
                "#cors-preflight-cache"))
            redundant, covered_by = None, None
        no_cache_mode = is_no_cache_mode_value(ex.request_headers.get("cache-control") or "")
        skipped_lookup = no_cache_mode and "no-cache" not in self.profile.cache_modes_looked_up
        if redundant and skipped_lookup:
            cause = "fetch-no-cache"
            steps.append(TraceStep(
                "Preflight cache", "info",
                f"a valid cached result (from {covered_by}) already covered this request; the "
                "preflight carries Cache-Control: max-age=0 (fetch() with cache 'no-cache'), "
                f"and {self.profile.name} does not look the preflight cache up for it",
                "#cors-preflight-cache"))
        elif redundant:
            cause = ("devtools-disable-cache" if view.cache_bypass
                     else "cache-not-used")
            steps.append(TraceStep(
                "Preflight cache", "info",
                f"a valid cached result (from {covered_by}) already covered this request; "
                + ("the preflight carries Pragma/Cache-Control no-cache: the cache was "
                   "bypassed (DevTools' 'Disable cache', a hard reload, or fetch() with cache "
                   "'no-store' or 'reload'), and the browser does not look the preflight "
                   "cache up for such a request"
                   if view.cache_bypass else
                   "the browser did not use it (another tab or profile, an evicted entry, "
                   "or a different partition)"),
                "#cors-preflight-cache"))
        steps.extend(trace)
        error = outcome.check.error if outcome is not None and verdict == "blocked" else None
        param = outcome.check.failed_parameter if outcome is not None and error else None
        max_age = _max_age(outcome) if outcome is not None and outcome.check.ok else None
        return ExchangeVerdict(
            ex, "preflight", view.origin, verdict,  # type: ignore[arg-type]
            cors_error=error, failed_parameter=param, unknown_reason=unknown_reason,
            redundant=redundant, redundant_cause=cause, credentials=credentials,
            unsafe_headers=view.requested_headers, max_age=max_age, trace=_share_trace(steps),
            private_network=view.private_network,
            private_network_warning=private_network_warning,
        )

    def _looked_up(self, p: _Preflight, creds: bool) -> None:
        """Replay the lookup the browser made before sending the preflight: a stale or (where
        the engine does so) insufficient entry was erased then, whatever the preflight's
        outcome (Chromium 156, scenario cache-erase-on-insufficient)."""
        assert p.view.origin is not None
        self.cache.lookup(p.view.origin, p.exchange.url, p.view.requested_method or "",
                          p.view.requested_headers, creds, p.exchange.started)

    def _store(self, p: _Preflight, creds: bool | None) -> None:
        """Cache the result of an allowed preflight; ``creds`` None: the mode is not known
        (the outcome without credentials, which was the one checked, is stored)."""
        outcome = p.outcomes[bool(creds)]
        assert outcome is not None and p.view.origin is not None
        if p.view.origin == "null" and self.profile.opaque_origin_cache != "shared":
            # Opaque origins all send "null": Chromium never reuses their results, WebKit
            # keeps one entry per opaque origin, which the capture cannot tell apart
            # (tests/browser opaque-origins). Only Firefox's shared entry can be modelled.
            return
        ex = p.exchange
        if p.view.cache_bypass and "no-store" not in self.profile.cache_modes_stored:
            self._maybe_unstored[ex.id] = None
            if len(self._maybe_unstored) > 4096:
                del self._maybe_unstored[next(iter(self._maybe_unstored))]
        stored_at = ex.response.finished if ex.response and ex.response.finished else ex.started
        self.cache.store(p.view.origin, ex.url, creds, outcome.methods or (),
                         outcome.headers or (), outcome.max_age.seconds, stored_at, ex.id)
        if self.profile.fresh_session_preflights and not self._warm:
            self._warming(p.view.origin, ex.url, ex.id)

    def _warming(self, origin: str, url: str, preflight_id: str) -> None:
        """Count a result stored while the session may be fresh: its cache may not work
        until one URL's result is the profile's n-th; from that one on it surely does."""
        key = (origin, url)
        count = self._fresh_counts.pop(key, 0) + 1
        if count >= self.profile.fresh_session_preflights:
            self._warm = True
            self._fresh_counts.clear()
            return
        self._fresh_counts[key] = count
        self._early[preflight_id] = None
        if len(self._early) > 4096:
            del self._early[next(iter(self._early))]
        if len(self._fresh_counts) > 4096:
            del self._fresh_counts[next(iter(self._fresh_counts))]

    def _used(self, preflight_id: str | None) -> None:
        """The capture shows the engine used this result (a request went without a
        preflight): the session was past its warm-up when the result was stored, so it and
        every later one were usable."""
        if preflight_id is None or preflight_id not in self._early:
            return
        while self._early.popitem()[0] != preflight_id:
            pass
        self._warm = True
        self._fresh_counts.clear()

    # -- actual requests --------------------------------------------------------------------------

    def _on_request(self, exchange: Exchange, view: RequestView,
                    out: list[ExchangeVerdict]) -> None:
        assert view.origin is not None
        trace = [TraceStep("Is it a CORS request?", "pass",
                           f"Origin {view.origin} differs from the URL's origin",
                           "#http-cors-protocol")]
        self._round_trip(view.origin, exchange)
        preflight = self._take_waiting(exchange, view)
        if view.preflight_reasons:
            trace.append(TraceStep("Needs a preflight", "info",
                                   "; ".join(view.preflight_reasons), "#cors-preflight-fetch"))
        if preflight is not None:
            self._paired(exchange, view, preflight, trace, out)
            return
        if not view.preflight_reasons:
            trace.append(TraceStep("Needs a preflight", "info",
                                   "no: a CORS-safelisted method and only safelisted headers",
                                   "#cors-safelisted-request-header"))
            out.append(self._actual(exchange, view, "simple", trace, None, None))
            return
        creds = view.credentials == "include"
        # grace: a sibling started with it may have erased the result just after this
        # request found it, and reached the wire first.
        answer = self.cache.lookup(view.origin, exchange.url, exchange.method,
                                   view.unsafe_names, creds, exchange.started, grace=True)
        if answer.outcome == "hit":
            self._used(answer.preflight_id)
            trace.append(TraceStep("Preflight cache", "pass",
                                   f"hit: the result of preflight {answer.preflight_id} is used",
                                   "#cors-preflight-cache"))
            credentials = view.credentials
            if credentials == "unknown" and answer.credentialed is False:
                # An uncredentialed result serves only uncredentialed requests; a
                # credentialed one would have needed (and shown) a preflight of its own.
                credentials = "omit"
                trace.append(TraceStep(
                    "Credentials mode", "info",
                    "inferred 'omit': the cached result it used was for uncredentialed "
                    "requests", "#cors-preflight-cache"))
            out.append(self._actual(exchange, view, "preflighted", trace,
                                    answer.preflight_id, "hit", credentials=credentials))
            return
        trace.append(TraceStep("Preflight", "unknown",
                               f"none in the capture ({answer.detail})", "#cors-preflight-fetch"))
        if exchange.hints.creator in RECORDS_BLOCKED_REQUESTS and exchange.response is not None:
            trace.append(TraceStep(
                "Preflight", "pass",
                f"{exchange.hints.creator} records a request the browser blocked with no "
                "response; this one has its response, so it was sent: its preflight, or a "
                "cached result, allowed it", "#cors-preflight-fetch"))
            out.append(self._actual(exchange, view, "preflighted", trace, None, None))
            return
        out.append(self._actual(
            exchange, view, "preflighted", trace, None, None,
            unknown_reason="its preflight is not in the capture: the capturing tool may omit "
                           "preflights (Playwright's HAR does), or it was sent before the "
                           "capture began"))

    def _paired(self, exchange: Exchange, view: RequestView, p: _Preflight,
                trace: list[TraceStep], out: list[ExchangeVerdict]) -> None:
        trace.append(TraceStep("Preflight", "info",
                               f"preflight {p.exchange.id} was sent for this request",
                               "#cors-preflight-fetch"))
        omit, include = p.outcomes[False], p.outcomes[True]
        credentials: Credentials = view.credentials
        if credentials == "include":
            creds = True
        elif omit is not None and include is not None and omit.check.ok != include.check.ok:
            # The request was sent, so its preflight passed; or the browser recorded it
            # blocked without a response, so it failed: either tells the credentials mode.
            sent = exchange.response is not None or exchange.failure != CORS_FAILURE
            creds = include.check.ok if sent else not include.check.ok
            credentials = "include" if creds else "omit"
            trace.append(TraceStep(
                "Credentials mode", "info",
                f"inferred '{credentials}': the preflight "
                + ("passes only in that mode and the browser went on to send the request"
                   if sent else "fails only in that mode and the browser blocked the request"),
                "#cors-protocol-and-credentials"))
        elif self._credentialed_by_cache(p):
            creds, credentials = True, "include"
            trace.append(self._credentialed_step(p))
        else:
            creds = False
        outcome = p.outcomes[creds]
        if outcome is None:
            out.append(self._preflight_verdict(
                p, "unknown", None, creds, [],
                unknown_reason=f"the preflight got no response ({p.exchange.failure or 'none captured'})",
                credentials=credentials))
            out.append(self._actual(exchange, view, "preflighted", trace, p.exchange.id, "miss",
                                    unknown_reason="its preflight has no response in the capture",
                                    credentials=credentials))
            return
        warned = None
        if (not outcome.check.ok and outcome.check.error in PRIVATE_NETWORK_ERRORS
                and p.lenient is not None and exchange.response is not None
                and exchange.failure is None):
            lenient = p.lenient[creds]
            if lenient is not None and lenient.check.ok:
                # The browser sent the request although the private-network check failed:
                # Chromium ran Private Network Access in its warning mode.
                warned, outcome = outcome.check.error, lenient
        if outcome.check.ok:
            out.append(self._preflight_verdict(p, "allowed", outcome, creds, [],
                                               credentials=credentials,
                                               private_network_warning=warned))
            out.append(self._actual(exchange, view, "preflighted", trace, p.exchange.id, "miss",
                                    credentials=credentials))
            return
        pre = self._preflight_verdict(p, "blocked", outcome, creds, [], credentials=credentials)
        out.append(pre)
        if exchange.response is not None and exchange.failure is None:
            # The browser sent the request and accepted the answer although our model says
            # the preflight fails: the model is wrong for this case. Say so, do not hide it.
            trace.append(TraceStep(
                "Model check", "fail",
                f"the browser sent this request, but the {self.profile.name} model says its "
                f"preflight fails with {outcome.check.error}", None))
            out.append(self._actual(exchange, view, "preflighted", trace, p.exchange.id, "miss",
                                    credentials=credentials,
                                    unknown_reason=MODEL_CONTRADICTED))
            return
        trace.append(TraceStep("Preflight result", "fail",
                               f"the preflight failed ({outcome.check.error}), so the browser "
                               "did not let the request through", "#cors-preflight-fetch"))
        out.append(replace(
            self._actual(exchange, view, "preflighted", trace, p.exchange.id, "miss",
                         credentials=credentials, check=False),
            verdict="blocked", cors_error=outcome.check.error,
            failed_parameter=outcome.check.failed_parameter))

    def _actual(self, exchange: Exchange, view: RequestView, role: str,
                trace: list[TraceStep], preflight_id: str | None, cache: str | None, *,
                unknown_reason: str | None = None, credentials: Credentials | None = None,
                check: bool = True) -> ExchangeVerdict:
        """The verdict of an actual request from the CORS check of its own response."""
        credentials = credentials or view.credentials
        verdict, error, param = "unknown", None, None
        if not check:
            pass
        elif exchange.response is None and exchange.failure == CORS_FAILURE:
            verdict, unknown_reason = "blocked", None
            trace.append(TraceStep(
                "Recorded failure", "fail",
                f"the browser recorded {CORS_FAILURE}, Chromium's error for a CORS block; the "
                "capture has no response to show which check failed", "#cors-check"))
        elif exchange.response is None:
            unknown_reason = unknown_reason or (
                f"no response in the capture ({exchange.failure})" if exchange.failure
                else "no response in the capture")
            trace.append(TraceStep("CORS check", "unknown", unknown_reason, "#cors-check"))
        else:
            result, credentials, note = self._response_check(exchange, view, credentials)
            trace.extend(result.trace)
            if note:
                trace.append(note)
            if result.error is None:
                redirect = _redirect_check(exchange)
                if redirect is not None:
                    trace.extend(redirect.trace)
                    result = redirect
            if result.error is not None:
                verdict, error, param = "blocked", result.error, result.failed_parameter
                unknown_reason = None
            elif unknown_reason is None:
                verdict = "allowed"
        return ExchangeVerdict(
            exchange, role, view.origin, verdict,  # type: ignore[arg-type]
            cors_error=error, failed_parameter=param,
            unknown_reason=unknown_reason if verdict == "unknown" else None,
            preflight_id=preflight_id, cache=cache,  # type: ignore[arg-type]
            credentials=credentials, unsafe_headers=view.unsafe_names,
            preflight_reasons=view.preflight_reasons, trace=_share_trace(trace),
        )

    def _response_check(self, exchange: Exchange, view: RequestView,
                        credentials: Credentials) -> tuple[CheckResult, Credentials,
                                                           TraceStep | None]:
        assert view.origin is not None
        headers = _headers_map(exchange)
        if credentials != "unknown":
            return cors_check(headers, view.origin, credentials == "include"), credentials, None
        omit = cors_check(headers, view.origin, False)
        include = cors_check(headers, view.origin, True)
        if omit.ok == include.ok:
            return omit, credentials, None
        # The two modes disagree; a failure the browser recorded settles it.
        if exchange.failure:
            return include, "include", TraceStep(
                "Credentials mode", "info",
                f"the response passes only when not credentialed and the browser recorded a "
                f"failure ({exchange.failure}): the request was credentialed",
                "#cors-protocol-and-credentials")
        # Nothing settles it: take the fetch() default ('same-origin', so no credentials on a
        # cross-origin request), which also fits the absence of a Cookie header, and say so.
        return omit, "unknown", TraceStep(
            "Credentials mode", "info",
            f"assumed not credentialed (no Cookie header was sent); had the page used "
            f"credentials: 'include', this would fail with {include.error}",
            "#cors-protocol-and-credentials")


LOOKUP_LAG = 0.1
"""Seconds by which a preflight may go out after the cache lookup that sent it (fetches
started together look up at once; their preflights queue for connections)."""


def _answered(exchange: Exchange) -> float:
    """When the response's head arrived (the request's start when there is none): the moment
    the browser acts on it. A redirect's or a preflight's body may end later."""
    response = exchange.response
    if response is None or response.finished is None:
        return exchange.started
    receive = exchange.timings.receive if exchange.timings is not None else None
    return max(exchange.started, response.finished - (receive or 0.0) / 1000)


def _redirect_check(exchange: Exchange) -> CheckResult | None:
    """#http-redirect-fetch: "If request's mode is "cors", locationURL includes credentials,
    and request's origin is not same origin with locationURL's origin, then return a network
    error" (Chromium: RedirectContainsCredentials, checked after the redirect's CORS check)."""
    response = exchange.response
    if response is None or not is_redirect_status(response.status):
        return None
    location = response.headers.get("location")
    if not location:
        return None
    try:
        target = urljoin(exchange.url, location)
        parts = urlsplit(target)
    except ValueError:
        return None  # an unparsable Location ("http://[::1"): no credentials can be read in it
    if parts.username is None and parts.password is None:
        return None
    step = TraceStep("Redirect: Location without credentials", "fail",
                     f"the redirect goes to {location!r}, which carries a user name or password",
                     "#http-redirect-fetch")
    return CheckResult("RedirectContainsCredentials", target, (step,))


def _max_age(outcome: PreflightOutcome) -> MaxAge:
    m = outcome.max_age
    problem = None
    if m.raw is None:
        problem = "missing"
    elif m.invalid:
        problem = "invalid"
    elif m.parsed is not None and m.parsed <= 0:
        problem = "disabled"
    elif m.clamped:
        problem = "above-cap"
    return MaxAge(m.raw, m.parsed, m.seconds, m.clamped, problem)  # type: ignore[arg-type]
