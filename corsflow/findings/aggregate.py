"""Findings that need the whole capture: re-preflights a longer Max-Age would have saved, per-URL
fragmentation, avoidable preflights. :class:`Aggregator` keeps one small record per group
(origin, server, endpoint...), not per exchange, and a bounded number of groups: past
``max_groups`` of a kind, new origins and servers count in one group of "other" ones, so
traffic of endless variety (a proxy left running, a hostile client) keeps memory flat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from ..engine.events import ExchangeVerdict, Finding, Severity
from ..engine.profiles import EngineProfile
from ..urls import endpoint, path_template, url_origin
from .catalogue import make_finding as _finding

# --- findings that need the whole capture ---------------------------------------------------------

_K = TypeVar("_K", bound=tuple[str, ...])

OTHER_ORIGINS = "(other origins)"
OTHER_SERVERS = "(other servers)"
"""Stand-ins for the origins and servers counted together past the bound on groups."""
MAX_KEYS = 20_000
"""Preflight keys remembered to spot re-preflights (the oldest forgotten first)."""
MAX_URLS = 200
"""Distinct URLs counted per per-URL group ("200+" past it)."""


@dataclass(slots=True)
class _KeyState:
    """The last allowed preflight of one (origin, URL, method, headers) key."""

    last_id: str
    last_time: float
    last_effective: float
    last_problem: str | None
    last_raw: str | None


@dataclass(slots=True)
class _Group:
    ids: list[str] = field(default_factory=list)
    count: int = 0
    saved: int = 0
    values: set[str] = field(default_factory=set)
    urls: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Aggregator:
    """Accumulates what needs more than one exchange; :meth:`findings` can be called any time."""

    profile: EngineProfile
    keep_ids: int = 50
    """At most this many exchange ids are listed per finding (the count says the rest)."""
    max_groups: int = 1000
    """Groups kept per kind of finding before new ones count together as "other"."""
    _keys: dict[tuple[str, str, str, tuple[str, ...]], _KeyState] = field(default_factory=dict)
    _max_age: dict[tuple[str, str, str], _Group] = field(default_factory=dict)
    _per_url: dict[tuple[str, str, str], _Group] = field(default_factory=dict)
    _avoidable: dict[tuple[str, ...], _Group] = field(default_factory=dict)
    """By (origin, endpoint, *reasons)."""
    _without_preflight: dict[tuple[str], _Group] = field(default_factory=dict)
    _unpaired: dict[tuple[str], _Group] = field(default_factory=dict)

    def _group(self, groups: dict[_K, _Group], key: _K, other: _K) -> _Group:
        """The group of ``key``, or past the bound the shared group ``other``."""
        g = groups.get(key)
        if g is None:
            if len(groups) >= self.max_groups:
                key = other
                g = groups.get(key)
            if g is None:
                g = groups[key] = _Group()
        return g

    def _add(self, group: _Group, exchange_id: str) -> None:
        if len(group.ids) < self.keep_ids:
            group.ids.append(exchange_id)

    def add(self, v: ExchangeVerdict) -> None:
        ex = v.exchange
        if v.role == "preflight":
            self._add_preflight(v)
        elif v.role == "preflighted":
            if v.preflight_id is None and v.cache is None:
                g = self._group(self._without_preflight, (v.origin or "",), (OTHER_ORIGINS,))
                self._add(g, ex.id)
                g.saved += 1
            elif v.cache == "miss" and v.preflight_reasons and all(
                    _client_choice(r) for r in v.preflight_reasons):
                key = (v.origin or "", endpoint(ex.url), *v.preflight_reasons)
                g = self._group(self._avoidable, key,
                                (OTHER_ORIGINS, OTHER_SERVERS, *v.preflight_reasons))
                self._add(g, v.preflight_id or ex.id)
                g.saved += 1

    def _add_preflight(self, v: ExchangeVerdict) -> None:
        ex = v.exchange
        origin = v.origin or ""
        if v.verdict == "allowed" and not v.redundant:
            per_url = self._group(
                self._per_url, (origin, url_origin(ex.url) + path_template(ex.url), ex.method),
                (OTHER_ORIGINS, OTHER_SERVERS, ex.method))
            self._add(per_url, ex.id)
            per_url.saved += 1
            if len(per_url.urls) < MAX_URLS:
                per_url.urls.add(ex.url)
        if v.verdict == "allowed" and v.preflight_id is None and self._is_unpaired(v):
            g = self._group(self._unpaired, (origin,), (OTHER_ORIGINS,))
            self._add(g, ex.id)
            g.saved += 1
        if v.verdict != "allowed" or v.max_age is None:
            return
        key = (origin, ex.url, _requested_method(v), v.unsafe_headers)
        prev = self._keys.get(key)
        m = v.max_age
        server = url_origin(ex.url)
        if m.problem == "missing":
            g = self._group(self._max_age, ("MaxAgeMissing", origin, server),
                            ("MaxAgeMissing", OTHER_ORIGINS, OTHER_SERVERS))
            self._add(g, ex.id)
            g.count += 1
            if len(g.urls) < MAX_URLS:
                g.urls.add(path_template(ex.url))
        if prev is not None and not v.redundant:
            gap = ex.started - prev.last_time
            # Re-preflighted after the cached result expired, within what a longer Max-Age
            # could have covered: the earlier response's Max-Age cost this preflight.
            if prev.last_effective < gap <= self.profile.max_age_cap:
                code = {"missing": "MaxAgeMissing", "disabled": "MaxAgeDisabled",
                        None: "MaxAgeTooShort"}.get(prev.last_problem)
                if code is not None:
                    g = self._group(self._max_age, (code, origin, server),
                                    (code, OTHER_ORIGINS, OTHER_SERVERS))
                    if code != "MaxAgeMissing":
                        self._add(g, ex.id)
                        g.count += 1
                    g.saved += 1
                    if len(g.values) < MAX_URLS:
                        g.values.add(prev.last_raw if prev.last_raw is not None else "absent")
                    if len(g.urls) < MAX_URLS:
                        g.urls.add(path_template(ex.url))
        self._keys[key] = _KeyState(ex.id, ex.started, m.effective, m.problem, m.raw)
        if len(self._keys) > MAX_KEYS:
            # Bounded: forget the oldest keys (a re-preflight after this many others is rare).
            for old in list(self._keys)[:MAX_KEYS // 10]:
                del self._keys[old]

    @staticmethod
    def _is_unpaired(v: ExchangeVerdict) -> bool:
        return any(s.step == "Request sent after the preflight" for s in v.trace)

    def notes(self) -> tuple[str, ...]:
        """Report-wide observations about what the capture lacks."""
        missing = sum(g.saved for g in self._without_preflight.values())
        if not missing:
            return ()
        note = (f"{missing} request(s) needed a preflight that is not in the capture (Playwright's "
                "HAR, for one, leaves preflights out): which preflight authorised them, and "
                "whether the cache was used, is unknown")
        return (note,)

    def findings(self) -> list[Finding]:
        out: list[Finding] = []
        cap = self.profile.max_age_cap
        for (code, origin, server), g in sorted(self._max_age.items()):
            paths = ", ".join(sorted(g.urls)[:3]) + ("..." if len(g.urls) > 3 else "")
            where = f"{server} ({paths})"
            saved = (f"; {g.saved} re-preflight(s) followed that a longer Max-Age would have "
                     "saved" if g.saved else "")
            if code == "MaxAgeMissing":
                msg = (f"{g.count} preflight response(s) from {where} to {origin} send no "
                       f"Access-Control-Max-Age, so results are cached for 5 s{saved}")
            elif code == "MaxAgeTooShort":
                msg = (f"{g.saved} preflight(s) from {origin} to {where} were repeated after "
                       f"Access-Control-Max-Age {', '.join(sorted(g.values))} expired")
            else:
                msg = (f"{g.saved} preflight(s) from {origin} to {where} were repeated because "
                       f"Access-Control-Max-Age is {', '.join(sorted(g.values))}")
            hint = (f"send `Access-Control-Max-Age: {cap}` on the OPTIONS responses of {server} "
                    f"({self.profile.name}'s cap)"
                    + (f"; it would have saved {g.saved} preflight(s)" if g.saved else ""))
            severity: Severity | None = "info" if code == "MaxAgeMissing" and not g.saved \
                else None
            out.append(_finding(code, msg, tuple(g.ids), hint, origin=_named(origin),
                                url=_named(server),
                                count=g.count, saved=g.saved, severity=severity))
        for (origin, template, _method), g in sorted(self._per_url.items()):
            if len(g.urls) >= 3 and g.saved >= 3:
                out.append(_finding(
                    "PerUrlPreflights",
                    f"{g.saved} preflights from {origin} for {len(g.urls)}"
                    f"{'+' if len(g.urls) >= MAX_URLS else ''} different URLs of {template}: the "
                    "preflight cache is per URL, so Max-Age cannot help",
                    tuple(g.ids),
                    "make these requests simple (no custom headers, a safelisted Content-Type), "
                    "move the varying part out of the URL (into the body), or serve the API "
                    "from the page's own origin",
                    origin=_named(origin), url=_named(template), count=g.saved))
        for (origin, ep, *reasons), g in sorted(self._avoidable.items()):
            out.append(_finding(
                "AvoidablePreflight",
                f"{g.saved} preflight(s) from {origin} to {ep} only because of "
                f"{' and '.join(reasons)}",
                tuple(g.ids),
                _avoidable_hint(tuple(reasons)),
                origin=_named(origin), url=_named(ep), count=g.saved, saved=g.saved))
        for (origin,), g in sorted(self._without_preflight.items()):
            out.append(_finding(
                "RequestWithoutPreflight",
                f"{g.saved} request(s) from {origin} needed a preflight that is not in the "
                "capture: their verdicts are unknown",
                tuple(g.ids),
                "capture with a tool that records preflights (Chrome DevTools' HAR export, "
                "mitmproxy, or a pcap); Playwright's HAR leaves them out",
                origin=_named(origin), count=g.saved))
        for (origin,), g in sorted(self._unpaired.items()):
            out.append(_finding(
                "PreflightWithoutRequest",
                f"{g.saved} preflight(s) from {origin} passed but no request followed in the "
                "capture",
                tuple(g.ids),
                "check whether the capture was cut short or the page aborted the requests",
                origin=_named(origin), count=g.saved))
        return out


def _named(where: str) -> str | None:
    """An origin or server for the finding's fields; None for the ones counted together."""
    return None if where in (OTHER_ORIGINS, OTHER_SERVERS) else where


def _requested_method(v: ExchangeVerdict) -> str:
    return v.exchange.request_headers.get("access-control-request-method") or ""


def _client_choice(reason: str) -> bool:
    """A preflight reason the page's own code could drop (not a method, not Authorization)."""
    if reason.startswith("method "):
        return False
    return reason != "header authorization"


def _avoidable_hint(reasons: tuple[str, ...]) -> str:
    parts = []
    for r in reasons:
        if r.startswith("Content-Type"):
            parts.append("send the body as text/plain (and parse it as JSON on the server)")
        else:
            parts.append(f"drop the {r.removeprefix('header ')} header (or move it into the "
                         "body or the query)")
    return ("; ".join(parts) + "; or, if they must stay, make the preflights cacheable with "
            "`Access-Control-Max-Age: 7200`")
