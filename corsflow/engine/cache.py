"""#cors-preflight-cache, simulated the way an engine profile says its browser keeps it.

Theory of operation: an entry is keyed by (request origin, full URL) — plus the credentials
flag where the engine keys by it — and holds, per allowed method and header name, when that
permission expires and which preflight granted it. A replacing engine (Chromium, WebKit)
gives every token of an entry the same expiry and swaps the whole entry on each new
preflight; a merging one (Firefox, the standard) refreshes and adds tokens one by one.
Time is the capture's: callers pass ``now`` in epoch seconds. State is bounded: entries are
capped as the browser caps them and expired ones are swept as time moves on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ..frozen import quick_init
from .fetch import is_cors_safelisted_method
from .profiles import EngineProfile

CacheKey = tuple[str, str, bool | None]
Lookup = Literal["hit", "miss", "stale", "insufficient", "uncacheable"]


@dataclass(slots=True)
class _Grant:
    expires: float
    preflight_id: str
    stored: float


@dataclass(slots=True)
class CacheEntry:
    credentialed: bool | None
    """Whether the result was for a credentialed request; None when the capture did not
    show the mode (it serves uncredentialed lookups only, and proves nothing about them)."""
    stored: float
    methods: dict[str, _Grant] = field(default_factory=dict)
    headers: dict[str, _Grant] = field(default_factory=dict)
    """Lower-case header names (and ``*``)."""
    _expires: float | None = field(default=None, init=False, repr=False, compare=False)
    """:meth:`expires` as of the last change to the grants (None: not known yet). Sweeps
    ask every entry, far more often than grants change."""

    def expires(self) -> float:
        if self._expires is None:
            grants = [*self.methods.values(), *self.headers.values()]
            self._expires = max((g.expires for g in grants), default=self.stored)
        return self._expires


@quick_init
@dataclass(frozen=True, slots=True)
class CacheAnswer:
    """The result of looking a request up."""

    outcome: Lookup
    preflight_id: str | None = None
    """On a hit: the preflight whose cached result is used."""
    detail: str = ""
    credentialed: bool | None = None
    """On a hit: whether the cached result was for a credentialed request (None: for a
    request whose mode the capture did not show)."""
    stored: float | None = None
    """On a hit: when that preflight's result was stored."""


ERASED_GRACE = 0.1
"""Seconds an erased entry may still have served a request seen after the erasure: fetches
started together look the cache up at once, and a sibling's preflight (whose lookup erased
the entry) may reach the wire before a request that had already found the entry."""


@dataclass(slots=True)
class PreflightCache:
    profile: EngineProfile
    _entries: dict[CacheKey, CacheEntry] = field(default_factory=dict)
    _last_sweep: float = 0.0
    _erased: dict[CacheKey, tuple[CacheEntry, float]] = field(default_factory=dict)
    """The entries erased in the last moments, with when (see ERASED_GRACE); a few."""

    def __len__(self) -> int:
        return len(self._entries)

    def _key(self, origin: str, url: str, credentialed: bool) -> CacheKey:
        return (origin, url, credentialed if self.profile.credentials_in_key else None)

    def forget_url(self, origin: str, url: str, now: float | None = None) -> None:
        """Drop every result for (origin, url), credentialed or not (at ``now``, when known:
        see :meth:`lookup`'s ``grace``)."""
        for key in [k for k in self._entries if k[0] == origin and k[1] == url]:
            self._erase(key, now)

    def _erase(self, key: CacheKey, now: float | None) -> None:
        entry = self._entries.pop(key)
        if now is None:
            return
        self._erased.pop(key, None)
        self._erased[key] = (entry, now)
        if len(self._erased) > 64:
            del self._erased[next(iter(self._erased))]

    def _cacheable_url(self, url: str) -> bool:
        limit = self.profile.max_url_length
        return limit is None or len(url) < limit

    # -- lookup -------------------------------------------------------------------------------

    def lookup(
        self,
        origin: str,
        url: str,
        method: str,
        unsafe_names: tuple[str, ...],
        credentialed: bool,
        now: float,
        *,
        mutate: bool = True,
        grace: bool = False,
    ) -> CacheAnswer:
        """Can the request skip its preflight? #cors-preflight-cache, "method cache entry
        match" and "header-name cache entry match" for every CORS-unsafe name.

        With ``mutate`` (the browser's own lookup) a stale entry is dropped and, for engines
        that do it, an insufficient one too. ``mutate=False`` only asks. With ``grace``, an
        entry erased less than ERASED_GRACE before ``now`` still answers (the request may
        have looked it up first).
        """
        if not self._cacheable_url(url):
            return CacheAnswer("uncacheable", detail=f"URL of {len(url)} characters is not cached")
        key = self._key(origin, url, credentialed)
        entry = self._entries.get(key)
        if entry is None and grace:
            erased = self._erased.get(key)
            if erased is not None and now - erased[1] <= ERASED_GRACE:
                entry, mutate = erased[0], False
        if entry is None:
            return CacheAnswer("miss", detail="no cached result for this origin and URL")
        if entry.expires() <= now:
            if mutate:
                del self._entries[key]
            return CacheAnswer("stale", detail="the cached result has expired")
        if credentialed and not entry.credentialed:
            if mutate and self.profile.erases_on_insufficient_hit:
                self._erase(key, now)
            return CacheAnswer("insufficient",
                               detail="the cached result is not for credentialed requests")
        used: list[_Grant] = []
        missing = self._uncovered(entry, method, unsafe_names, now, used)
        if missing:
            if mutate and self.profile.erases_on_insufficient_hit:
                self._erase(key, now)
            return CacheAnswer("insufficient", detail=f"the cached result does not allow {missing}")
        # A merged entry (Firefox) holds grants of several preflights: the hit lasts as long
        # as the first of them to expire, so that preflight is the one that authorised it.
        grant = min(used, key=lambda g: g.expires) if used else max(
            [*entry.methods.values(), *entry.headers.values()],
            key=lambda g: g.expires,
        )
        return CacheAnswer("hit", preflight_id=grant.preflight_id,
                           credentialed=entry.credentialed, stored=grant.stored)

    def _uncovered(self, entry: CacheEntry, method: str, unsafe_names: tuple[str, ...],
                   now: float, used: list[_Grant]) -> str | None:
        wildcard_mode = self.profile.wildcard_in_cache
        star_ok = not entry.credentialed and wildcard_mode != "never"

        def live(grants: dict[str, _Grant], token: str) -> _Grant | None:
            g = grants.get(token)
            return g if g is not None and g.expires > now else None

        if not is_cors_safelisted_method(method):
            compared = method.upper() if self.profile.method_uppercased_before_compare else method
            grant = live(entry.methods, compared) or (live(entry.methods, "*") if star_ok else None)
            if grant is None:
                return f"method {method}"
            used.append(grant)
        for name in unsafe_names:
            grant = live(entry.headers, name)
            if grant is None and star_ok and (
                name != "authorization" or wildcard_mode == "all"
            ):
                grant = live(entry.headers, "*")
            if grant is None:
                return f"header {name}"
            used.append(grant)
        return None

    # -- store --------------------------------------------------------------------------------

    def store(
        self,
        origin: str,
        url: str,
        credentialed: bool | None,
        methods: tuple[str, ...],
        headers: tuple[str, ...],
        max_age: float,
        now: float,
        preflight_id: str,
    ) -> bool:
        """Record a successful preflight's result; False when the engine would not cache it.
        ``credentialed`` None: the request's mode is not known; the result is kept as an
        uncredentialed one (what the engine does with the fetch() default)."""
        if max_age <= 0 or not self._cacheable_url(url):
            return False
        self._sweep(now)
        key = self._key(origin, url, bool(credentialed))
        expires = now + max_age
        entry = self._entries.get(key) if self.profile.merges_entries else None
        if entry is None or entry.expires() <= now:
            entry = CacheEntry(credentialed=credentialed, stored=now)
            self._entries.pop(key, None)
        # Re-inserting moves the key to the end: dict order is the eviction (LRU) order.
        self._entries.pop(key, None)
        self._entries[key] = entry
        entry.credentialed = _merged(entry.credentialed, credentialed) \
            if self.profile.merges_entries else credentialed
        grant = _Grant(expires, preflight_id, now)
        entry._expires = None  # the grants change
        for m in methods:
            entry.methods[m] = grant
        for h in headers:
            entry.headers[h.lower()] = grant
        if not methods and not headers:
            # An entry that grants nothing still records that a preflight happened, so the
            # safelisted-method / no-unsafe-header case is a hit (the use-CORS-preflight flag).
            entry.methods.setdefault("", grant)
        self._evict()
        return True

    def _evict(self) -> None:
        cap = self.profile.max_entries
        if cap is None or len(self._entries) <= cap:
            return
        # Chromium purges 10 entries from a random position when full; a simulation must be
        # repeatable, so the oldest go first (Firefox's LRU does exactly that).
        excess = len(self._entries) - cap
        for key in list(self._entries)[: max(excess, 10 if cap >= 1024 else excess)]:
            del self._entries[key]

    def _sweep(self, now: float) -> None:
        """Drop expired entries now and then, so state is bounded by what is live."""
        if now - self._last_sweep < 60 and len(self._entries) < 4096:
            return
        self._last_sweep = now
        for key in [k for k, e in self._entries.items() if e.expires() <= now]:
            del self._entries[key]


def _merged(before: bool | None, added: bool | None) -> bool | None:
    """A merged entry is credentialed only when all its grants were: known uncredentialed
    as soon as one was, unknown while one's mode is unknown and none was uncredentialed."""
    if before is False or added is False:
        return False
    if before is None or added is None:
        return None
    return True
